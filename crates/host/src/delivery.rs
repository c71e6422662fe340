//! The per-session pass: sync acks, recover dead work, re-arm recurrences, deliver outbound rows.
//!
//! One mechanism serves the fast path (a running session's outbound.db changed), the runner-exit
//! path and the sweep. Passes of one session are serialised by the session lock, so a row is
//! never handed to two sends at once; the `delivered` row plus the `delivery_intents` write-ahead
//! record make each send happen once even across a host crash.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use nanoclaw_protocol::content::Outbound;
use nanoclaw_protocol::{schema, time};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::channels::{OutboundItem, Reconciled};
use crate::db;
use crate::{Host, HostEvent};

/// Attempts a failing send gets before it is recorded `failed`.
pub const SEND_ATTEMPTS: u32 = 5;
/// Processing attempts of an inbound row before it is `failed` (DESIGN §6 sweep).
pub const MAX_TRIES: i64 = 5;

/// What the runner state is, as the caller knows it.
#[derive(Debug, Clone, Copy)]
pub struct RunnerView<'a> {
    /// A runner is alive for this session.
    pub alive: bool,
    /// When the live (or, with `alive: false`, the just-exited) runner started, in protocol
    /// time: only acks written since then are that runner's.
    pub started_at: Option<&'a str>,
}

/// What a pass found, for the caller's scheduling.
#[derive(Debug, Default, Clone)]
pub struct PassOutcome {
    /// Due pending trigger rows exist (a stopped session must be woken).
    pub due_now: bool,
    /// Earliest future `process_after` / `deliver_after`.
    pub next_due: Option<chrono::DateTime<Utc>>,
    /// Rows are in `processing`.
    pub busy: bool,
}

struct DueOut {
    id: String,
    kind: String,
    in_reply_to: Option<String>,
    channel_type: Option<String>,
    platform_id: Option<String>,
    thread_id: Option<String>,
    content: String,
}

/// Where an inbound row came from: `(channel_type, platform_id, thread_id)`.
#[derive(Debug, Clone)]
struct Origin {
    channel_type: Option<String>,
    platform_id: Option<String>,
    thread_id: Option<String>,
}

/// A row whose recurrence is due to be re-armed.
struct Recurring {
    id: String,
    cron: String,
    process_after: Option<String>,
    timestamp: String,
    series_id: Option<String>,
}

/// Everything a pass reads, gathered before any write (autocommit statements only).
struct Reads {
    acks: Vec<(String, String, String)>,
    stuck: Vec<(String, i64, Origin)>,
    due_out: Vec<DueOut>,
    next_out: Option<String>,
    max_out: i64,
    /// Rows that can never be read as a message (absurd seq, undecodable or oversize fields).
    refused: Vec<Refused>,
    /// The pass stopped at its row or byte bound: the rest waits for the next pass, at once.
    more: bool,
}

/// Bounds on what one pass reads from a runner's file (DESIGN §3: sizes capped): an agent
/// controls outbound.db, so nothing it writes is read whole unless it fits.
pub mod bounds {
    /// Due rows looked at per pass (paged by seq; the next page follows at once).
    pub const PAGE_ROWS: i64 = 100;
    /// Content bytes fetched per pass, past the first row.
    pub const PASS_BYTES: i64 = 8 << 20;
    /// Largest content of one outbound row (twice the 512 KiB text limit, for JSON escapes).
    pub const MAX_CONTENT_BYTES: i64 = 1 << 20;
    /// Largest id of an outbound row; a longer one is never read (it could not be recorded).
    pub const MAX_ID_BYTES: i64 = 256;
    /// Largest routing or scheduling field (kind, ids, channel, chat, thread, times, cron).
    pub const MAX_FIELD_BYTES: i64 = 4096;
}

/// A row refused at read time; its fate is recorded with the id's exact bytes (which need not
/// be UTF-8), and the agent is told why.
struct Refused {
    id: RawId,
    shown_id: String,
    reason: String,
}

/// A row id exactly as the runner stored it.
#[derive(Clone)]
enum RawId {
    /// TEXT, possibly not UTF-8: bound back as TEXT with the same bytes, so the
    /// `delivered` record matches the row.
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl rusqlite::ToSql for RawId {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            RawId::Text(b) => ValueRef::Text(b),
            RawId::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// A text value an agent wrote, if it is UTF-8 (never a panic or a failed pass).
fn utf8(v: rusqlite::types::ValueRef<'_>) -> Option<String> {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Text(b) | ValueRef::Blob(b) => String::from_utf8(b.to_vec()).ok(),
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Null => None,
    }
}

/// A row's fate, recorded in `delivered` by the pass's single write transaction.
struct Fate {
    out_id: String,
    status: &'static str,
    platform_message_id: Option<String>,
    /// A send went through (its intent is dropped once the fate is on disk).
    sent: bool,
}

/// What the write transaction decided.
struct Applied {
    finished: Vec<(String, String)>,
    exhausted: Vec<(String, Origin)>,
    outcome: PassOutcome,
}

/// Runs one pass over a session: read, send, then one write transaction. Cheap when nothing
/// changed. A crash between a send and the write is covered by that send's intent.
///
/// The pass runs as a task of its own, so a caller that is cancelled (the outbound watcher is
/// aborted when its runner exits) cannot stop it between a send and its `delivered` record:
/// a pass dropped there released the session lock, and the next pass sent the row again.
pub async fn pass(
    host: &Arc<Host>,
    session_id: &str,
    view: RunnerView<'_>,
) -> anyhow::Result<PassOutcome> {
    let (host, session_id) = (host.clone(), session_id.to_string());
    let (alive, started_at) = (view.alive, view.started_at.map(str::to_string));
    tokio::spawn(async move {
        let view = RunnerView {
            alive,
            started_at: started_at.as_deref(),
        };
        run_pass(&host, &session_id, view).await
    })
    .await?
}

async fn run_pass(
    host: &Arc<Host>,
    session_id: &str,
    view: RunnerView<'_>,
) -> anyhow::Result<PassOutcome> {
    let lock = host.session_lock(session_id);
    let _guard = lock.lock().await;
    let Some(sess) = host
        .db
        .call({
            let id = session_id.to_string();
            move |c| Ok(db::sessions::get(c, &id)?)
        })
        .await?
    else {
        return Ok(PassOutcome::default());
    };
    let paths = host.home.session(&sess.agent_group_id, &sess.id)?;
    let dir = paths.dir().to_path_buf();
    if !paths.inbound_db().exists() {
        return Ok(PassOutcome::default());
    }
    let alive = view.alive;
    let started = view.started_at.map(str::to_string);
    let reads = {
        let (dir, started) = (dir.clone(), started.clone());
        let tz = host.settings.timezone();
        tokio::task::spawn_blocking(move || read_phase(&dir, alive, started.as_deref(), tz))
            .await??
    };
    tell_refused(host, &sess, &reads.refused).await?;

    let mut fates = Vec::new();
    let mut retry_in: Option<Duration> = None;
    for row in &reads.due_out {
        match deliver_one(host, &sess, &paths, row).await {
            Ok(Some(f)) => fates.push(f),
            Ok(None) => {
                // A failing send: come back when its backoff ends, not at the next sweep.
                let d = host
                    .send_retry_delay(&row.id)
                    .unwrap_or(Duration::from_secs(1));
                retry_in = Some(retry_in.map_or(d, |r| r.min(d)));
            }
            Err(e) => {
                tracing::warn!(session = %sess.id, id = %row.id, error = %e, "delivery failed; will retry")
            }
        }
    }

    let tz = host.settings.timezone();
    let retry_base = host.settings.millis("NANOCLAW_RETRY_BASE_MS", 5_000);
    let (applied, fates) = tokio::task::spawn_blocking(move || {
        let applied = write_phase(
            &dir,
            reads,
            &fates,
            alive,
            started.as_deref(),
            tz,
            retry_base,
        );
        (applied, fates)
    })
    .await?;
    let mut applied = applied?;
    if let Some(d) = retry_in {
        let at = Utc::now() + chrono::Duration::from_std(d)?;
        applied.outcome.next_due = Some(applied.outcome.next_due.map_or(at, |n| n.min(at)));
    }
    // The `delivered` rows are durable now: the write-ahead intents can go.
    let sent: Vec<String> = fates
        .iter()
        .filter(|f| f.sent)
        .map(|f| f.out_id.clone())
        .collect();
    if !sent.is_empty() {
        let sid = sess.id.clone();
        host.db
            .call(move |c| {
                for id in &sent {
                    db::intents::end(c, &sid, id)?;
                }
                Ok(())
            })
            .await?;
    }

    for (id, status) in applied.finished {
        host.emit(HostEvent::TurnDone {
            message_id: id,
            status,
        });
    }
    for (id, o) in applied.exhausted {
        let thread = o.thread_id;
        if let (Some(ct), Some(pid)) = (o.channel_type, o.platform_id) {
            host.notify(
                &ct,
                &pid,
                thread.as_deref(),
                "Sorry, I could not process your message after several attempts. Please try again.",
            )
            .await;
        }
        host.emit(HostEvent::TurnDone {
            message_id: id,
            status: "failed".into(),
        });
    }
    Ok(applied.outcome)
}

/// Reads the runner's file (acks, replies) and the rows a dead runner left, without any write
/// transaction: no lock on outbound.db is ever held while waiting to write inbound.db.
fn read_phase(
    dir: &std::path::Path,
    alive: bool,
    started_at: Option<&str>,
    tz: chrono_tz::Tz,
) -> anyhow::Result<Reads> {
    let c = schema::open_inbound_write(dir)?;
    let now_s = time::now();
    let acks = {
        // Only the three statuses and a timestamp-sized time are read: a runner's ack is hostile.
        let mut st = c.prepare_cached(
            "SELECT a.message_id, a.status, a.status_changed FROM ob.processing_ack a
             JOIN main.messages_in m ON m.id = a.message_id
             WHERE m.status IN ('pending', 'processing') AND a.status != m.status
               AND a.status IN ('processing', 'completed', 'failed')
               AND COALESCE(octet_length(a.status_changed), 0) <= 64",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                utf8(r.get_ref(0)?),
                utf8(r.get_ref(1)?),
                utf8(r.get_ref(2)?),
            ))
        })?;
        let mut acks = Vec::new();
        for row in rows {
            if let (Some(id), Some(status), Some(changed)) = row? {
                acks.push((id, status, changed));
            }
        }
        acks
    };
    // In flight in a dead runner: `processing`, or still `pending` with a `processing` ack that
    // runner wrote (it died before the host synced the ack).
    let stuck = if alive {
        Vec::new()
    } else {
        let mut st = c.prepare_cached(
            "SELECT m.id, COALESCE(m.tries, 0), m.channel_type, m.platform_id, m.thread_id
             FROM main.messages_in m
             WHERE m.status = 'processing'
                OR (m.status = 'pending' AND ?1 IS NOT NULL AND EXISTS (
                    SELECT 1 FROM ob.processing_ack a WHERE a.message_id = m.id
                      AND a.status = 'processing' AND a.status_changed >= ?1))",
        )?;
        let rows = st.query_map([started_at], |r| {
            let origin = Origin {
                channel_type: r.get(2)?,
                platform_id: r.get(3)?,
                thread_id: r.get(4)?,
            };
            Ok((r.get(0)?, r.get(1)?, origin))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let (due_out, refused, more) = due_rows(&c, &now_s)?;
    let mut next_out: Option<String> = c
        .query_row(
            "SELECT MIN(deliver_after) FROM ob.messages_out o WHERE deliver_after > ?1
             AND octet_length(deliver_after) <= 64
             AND NOT EXISTS (SELECT 1 FROM main.delivered d WHERE d.message_out_id = o.id)",
            [&now_s],
            |r| Ok(utf8(r.get_ref(0)?)),
        )
        .optional()?
        .flatten();
    let mut due_out = due_out;
    for (row, next) in recurring_out(&c, tz)? {
        if let Some(row) = row {
            due_out.push(row);
        }
        if next_out.as_ref().is_none_or(|n| next < *n) {
            next_out = Some(next);
        }
    }
    let max_out = nanoclaw_protocol::seq::max_seq(&c, "ob.messages_out")?;
    Ok(Reads {
        acks,
        stuck,
        due_out,
        next_out,
        max_out,
        refused,
        more,
    })
}

/// The next page of due outbound rows, in seq order, within [`bounds`]: sizes, types and seqs
/// are checked in SQL before any content is fetched (`octet_length` reads only the record
/// header), then each row is fetched alone. A row that can never be a message is refused.
fn due_rows(c: &Connection, now_s: &str) -> anyhow::Result<(Vec<DueOut>, Vec<Refused>, bool)> {
    use bounds::*;
    use rusqlite::types::ValueRef;
    struct Meta {
        rowid: i64,
        id: RawId,
        seq_ok: bool,
        fields_ok: bool,
        content_len: i64,
    }
    let metas: Vec<Meta> = {
        let mut st = c.prepare_cached(&format!(
            "SELECT o.rowid, o.id,
               typeof(o.seq) = 'integer' AND o.seq BETWEEN 0 AND {max_seq},
               COALESCE(octet_length(o.kind), 0) <= {MAX_FIELD_BYTES}
                 AND COALESCE(octet_length(o.in_reply_to), 0) <= {MAX_FIELD_BYTES}
                 AND COALESCE(octet_length(o.channel_type), 0) <= {MAX_FIELD_BYTES}
                 AND COALESCE(octet_length(o.platform_id), 0) <= {MAX_FIELD_BYTES}
                 AND COALESCE(octet_length(o.thread_id), 0) <= {MAX_FIELD_BYTES}
                 AND COALESCE(octet_length(o.recurrence), 0) <= {MAX_FIELD_BYTES},
               COALESCE(octet_length(o.content), 0)
             FROM ob.messages_out o
             WHERE typeof(o.id) IN ('text', 'blob') AND octet_length(o.id) <= {MAX_ID_BYTES}
               AND NOT EXISTS (SELECT 1 FROM main.delivered d WHERE d.message_out_id = o.id)
               AND (o.deliver_after IS NULL OR octet_length(o.deliver_after) > {MAX_FIELD_BYTES}
                    OR o.deliver_after <= ?1)
             ORDER BY o.seq LIMIT {PAGE_ROWS}",
            max_seq = nanoclaw_protocol::seq::MAX_SEQ,
        ))?;
        let rows = st.query_map([now_s], |r| {
            // The exact bytes are kept for the fate record (a lossy copy would not match).
            let id = match r.get_ref(1)? {
                ValueRef::Blob(b) => RawId::Blob(b.to_vec()),
                v => RawId::Text(v.as_bytes().map(<[u8]>::to_vec).unwrap_or_default()),
            };
            Ok(Meta {
                rowid: r.get(0)?,
                id,
                seq_ok: r.get(2)?,
                fields_ok: r.get(3)?,
                content_len: r.get(4)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut more = metas.len() as i64 >= PAGE_ROWS;
    let (mut due, mut refused, mut bytes) = (Vec::new(), Vec::new(), 0i64);
    for m in metas {
        let id = match &m.id {
            RawId::Text(t) => String::from_utf8(t.clone()).ok(),
            RawId::Blob(_) => None,
        };
        let shown_id = match &m.id {
            RawId::Text(b) | RawId::Blob(b) => String::from_utf8_lossy(b).into_owned(),
        };
        let mut refuse = |reason: String| {
            refused.push(Refused {
                id: m.id.clone(),
                shown_id: shown_id.clone(),
                reason,
            })
        };
        let Some(id) = id else {
            refuse("the row id is not valid UTF-8 text".into());
            continue;
        };
        if !m.seq_ok {
            refuse(format!(
                "the row's seq is not an integer between 0 and {}",
                nanoclaw_protocol::seq::MAX_SEQ
            ));
            continue;
        }
        if !m.fields_ok {
            refuse(format!(
                "a routing field of the row is over {MAX_FIELD_BYTES} bytes"
            ));
            continue;
        }
        if m.content_len > MAX_CONTENT_BYTES {
            refuse(format!(
                "the message content is {} bytes (limit {MAX_CONTENT_BYTES})",
                m.content_len
            ));
            continue;
        }
        if bytes > 0 && bytes + m.content_len > PASS_BYTES {
            more = true;
            break;
        }
        bytes += m.content_len;
        // The row may have changed since the page was read: the bound is checked again.
        let row = c
            .query_row(
                &format!(
                    "SELECT kind, in_reply_to, channel_type, platform_id, thread_id,
                       CASE WHEN octet_length(content) <= {MAX_CONTENT_BYTES} THEN content END
                     FROM ob.messages_out WHERE rowid = ?1"
                ),
                [m.rowid],
                |r| {
                    let opt = |i| -> rusqlite::Result<Result<Option<String>, ()>> {
                        Ok(match r.get_ref(i)? {
                            ValueRef::Null => Ok(None),
                            v => utf8(v).map(Some).ok_or(()),
                        })
                    };
                    Ok((opt(0)?, opt(1)?, opt(2)?, opt(3)?, opt(4)?, opt(5)?))
                },
            )
            .optional()?;
        let Some((kind, in_reply_to, channel_type, platform_id, thread_id, content)) = row else {
            continue; // gone since the page was read
        };
        let (
            Ok(Some(kind)),
            Ok(in_reply_to),
            Ok(channel_type),
            Ok(platform_id),
            Ok(thread_id),
            Ok(Some(content)),
        ) = (
            kind,
            in_reply_to,
            channel_type,
            platform_id,
            thread_id,
            content,
        )
        else {
            refuse(
                "the row has a field that is not valid UTF-8 text (or no kind or content)".into(),
            );
            continue;
        };
        due.push(DueOut {
            id,
            kind,
            in_reply_to,
            channel_type,
            platform_id,
            thread_id,
            content,
        });
    }
    Ok((due, refused, more))
}

/// Recurring outbound rows (`recurrence` = cron) already delivered once: each occurrence is
/// sent as `<id>.r<occurrence unix time>`, so its `delivered` record (and intent) make it exactly
/// once like any row. (The suffix is the occurrence's Unix time: ids must stay valid file
/// names, since a row's outbox folder is named after it.) Returns the occurrence due now, if any, and the next one's time.
fn recurring_out(
    c: &rusqlite::Connection,
    tz: chrono_tz::Tz,
) -> anyhow::Result<Vec<(Option<DueOut>, String)>> {
    let mut st = c.prepare_cached(
        "SELECT o.id, o.kind, o.in_reply_to, o.channel_type, o.platform_id, o.thread_id, o.content,
                o.recurrence, COALESCE(o.deliver_after, o.timestamp),
                (SELECT MAX(d2.message_out_id) FROM main.delivered d2
                  WHERE substr(d2.message_out_id, 1, length(o.id) + 2) = o.id || '.r'),
                d.status
         FROM ob.messages_out o LEFT JOIN main.delivered d ON d.message_out_id = o.id
         WHERE o.recurrence IS NOT NULL AND o.recurrence != '' AND COALESCE(d.status, '') != 'failed'
           AND octet_length(o.id) <= ?1 AND octet_length(o.content) <= ?2
           AND octet_length(o.recurrence) <= ?3 AND COALESCE(octet_length(o.deliver_after), 0) <= ?3
           AND COALESCE(octet_length(o.kind), 0) + COALESCE(octet_length(o.in_reply_to), 0)
             + COALESCE(octet_length(o.channel_type), 0) + COALESCE(octet_length(o.platform_id), 0)
             + COALESCE(octet_length(o.thread_id), 0) <= ?3
         ORDER BY o.seq LIMIT ?4",
    )?;
    // An undecodable row is refused by the first-send path (`due_rows`), which records it
    // failed; here it is only skipped.
    let rows = st.query_map(
        rusqlite::params![
            bounds::MAX_ID_BYTES,
            bounds::MAX_CONTENT_BYTES,
            bounds::MAX_FIELD_BYTES,
            bounds::PAGE_ROWS
        ],
        |r| {
            let t = |i| -> rusqlite::Result<Option<String>> { Ok(utf8(r.get_ref(i)?)) };
            Ok((
                (t(0)?, t(1)?, t(2)?, t(3)?, t(4)?, t(5)?, t(6)?),
                t(7)?,
                t(8)?,
                t(9)?,
                r.get_ref(10)?.data_type() != rusqlite::types::Type::Null,
            ))
        },
    )?;
    let now = Utc::now();
    let mut out = Vec::new();
    for row in rows {
        let (fields, cron, first, last_occ, sent_once) = row?;
        let (
            (
                Some(id),
                Some(kind),
                in_reply_to,
                channel_type,
                platform_id,
                thread_id,
                Some(content),
            ),
            Some(cron),
            Some(first),
        ) = (fields, cron, first)
        else {
            continue;
        };
        let base = DueOut {
            id,
            kind,
            in_reply_to,
            channel_type,
            platform_id,
            thread_id,
            content,
        };
        let last = last_occ
            .as_deref()
            .and_then(|l| l.rsplit_once(".r"))
            .and_then(|(_, t)| t.parse::<i64>().ok())
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .or_else(|| time::parse(&first));
        let Some(last) = last else { continue };
        match crate::scheduling::due_occurrence(&cron, tz, last, now) {
            // Not sent yet (this pass sends it): only its next occurrence matters, so a timer
            // comes back for it.
            Ok((_, next)) if !sent_once => out.push((None, time::fmt(next))),
            Ok((due, next)) => {
                let due = due.map(|d| DueOut {
                    id: format!("{}.r{:010}", base.id, d.timestamp()),
                    ..base
                });
                out.push((due, time::fmt(next)));
            }
            Err(e) => {
                tracing::warn!(id = %base.id, error = %e, "outbound recurrence ignored");
            }
        }
    }
    Ok(out)
}

/// Applies a pass in one transaction: ack sync, retries, recurrences, delivery fates.
fn write_phase(
    dir: &std::path::Path,
    reads: Reads,
    fates: &[Fate],
    alive: bool,
    started_at: Option<&str>,
    tz: chrono_tz::Tz,
    retry_base: Duration,
) -> anyhow::Result<Applied> {
    let _w = crate::sessions::write_lock(dir);
    // inbound.db alone: outbound.db's figures came from the read phase, and an attached file
    // would be read-locked for the whole write transaction (BEGIN IMMEDIATE starts a read
    // transaction on every attached database), holding up the runner's commits.
    let mut c = schema::open_rw(&dir.join("inbound.db"))?;
    let now = Utc::now();
    let now_s = time::fmt(now);
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;

    // 1. processing_ack → messages_in.
    let mut finished = Vec::new();
    for (id, status, changed) in reads.acks {
        let take = match status.as_str() {
            "completed" | "failed" => true,
            // A 'processing' ack counts only if the live runner wrote it: a dead runner's ack
            // would otherwise flip a row reset for retry back to 'processing'.
            "processing" => alive && started_at.is_some_and(|s| changed.as_str() >= s),
            _ => false,
        };
        if take {
            tx.execute(
                "UPDATE main.messages_in SET status=?2 WHERE id=?1",
                params![id, status],
            )?;
            if status != "processing" {
                finished.push((id, status));
            }
        }
    }

    // 2. Work of a dead runner goes back to pending with backoff, or fails after MAX_TRIES.
    let mut exhausted = Vec::new();
    for (id, tries, origin) in reads.stuck {
        // Its runner finished it before dying (the reply and the ack are one transaction):
        // retrying would answer it twice (seen in the chaos test once runners lived a few
        // milliseconds longer than their host, inside bubblewrap).
        if finished.iter().any(|(f, _)| f == &id) {
            continue;
        }
        let tries = tries + 1;
        if tries >= MAX_TRIES {
            tx.execute(
                "UPDATE main.messages_in SET status='failed', tries=?2 WHERE id=?1",
                params![id, tries],
            )?;
            tracing::warn!(id = %id, tries, "message failed after its last try");
            exhausted.push((id, origin));
        } else {
            let backoff = retry_base * 2u32.pow((tries - 1) as u32);
            let after = time::fmt(now + chrono::Duration::from_std(backoff)?);
            tx.execute(
                "UPDATE main.messages_in SET status='pending', tries=?2, process_after=?3 WHERE id=?1",
                params![id, tries, after],
            )?;
            tracing::info!(id = %id, tries, retry_at = %after, "runner died mid-turn; message will be retried");
        }
    }

    // 3. Recurring rows re-arm from their scheduled time.
    let recurring: Vec<Recurring> = {
        let mut st = tx.prepare_cached(
            "SELECT id, recurrence, process_after, timestamp, series_id FROM main.messages_in
             WHERE status IN ('completed', 'failed') AND recurrence IS NOT NULL",
        )?;
        let rows = st.query_map([], |r| {
            Ok(Recurring {
                id: r.get(0)?,
                cron: r.get(1)?,
                process_after: r.get(2)?,
                timestamp: r.get(3)?,
                series_id: r.get(4)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for r in recurring {
        let scheduled = r
            .process_after
            .as_deref()
            .or(Some(r.timestamp.as_str()))
            .and_then(time::parse)
            .unwrap_or(now);
        match crate::scheduling::next_occurrence(&r.cron, tz, scheduled, now) {
            Ok(next) => {
                let max =
                    nanoclaw_protocol::seq::max_seq(&tx, "main.messages_in")?.max(reads.max_out);
                let seq = nanoclaw_protocol::seq::next(nanoclaw_protocol::seq::Side::Host, max);
                tx.execute(
                    "INSERT INTO main.messages_in(id, seq, kind, timestamp, status, process_after, recurrence,
                       series_id, tries, trigger, platform_id, channel_type, thread_id, content, source_session_id, on_wake)
                     SELECT ?2, ?3, kind, ?4, 'pending', ?5, recurrence, COALESCE(series_id, id), 0, trigger,
                       platform_id, channel_type, thread_id, content, source_session_id, on_wake
                     FROM main.messages_in WHERE id=?1",
                    params![r.id, nanoclaw_protocol::new_id("msg"), seq, now_s, time::fmt(next)],
                )?;
                let series = r.series_id.as_deref().unwrap_or(&r.id);
                tracing::info!(series, next = %time::fmt(next), "recurring message re-armed");
            }
            Err(e) => tracing::warn!(id = %r.id, error = %e, "recurrence dropped"),
        }
        tx.execute(
            "UPDATE main.messages_in SET recurrence=NULL WHERE id=?1",
            [&r.id],
        )?;
    }

    // 4. Fates of this pass's outbound rows.
    for f in fates {
        tx.execute(
            "INSERT OR IGNORE INTO main.delivered(message_out_id, platform_message_id, status, delivered_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![f.out_id, f.platform_message_id, f.status, now_s],
        )?;
    }

    // 4b. Rows refused at read time, recorded with their ids' exact bytes.
    for r in &reads.refused {
        tx.execute(
            "INSERT OR IGNORE INTO main.delivered(message_out_id, platform_message_id, status, delivered_at)
             VALUES (?1, NULL, 'failed', ?2)",
            params![r.id, now_s],
        )?;
    }

    // 5. What is left to do, for scheduling.
    let due_now: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM main.messages_in WHERE status='pending' AND trigger=1
           AND (process_after IS NULL OR process_after <= ?1))",
        [&now_s],
        |r| r.get(0),
    )?;
    let next_in: Option<String> = tx
        .query_row(
            "SELECT MIN(process_after) FROM main.messages_in WHERE status='pending' AND process_after > ?1",
            [&now_s],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    let busy: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM main.messages_in WHERE status='processing')",
        [],
        |r| r.get(0),
    )?;
    tx.commit()?;
    let next_due = [next_in, reads.next_out]
        .into_iter()
        .flatten()
        .filter_map(|s| time::parse(&s))
        .chain(reads.more.then_some(now))
        .min();
    Ok(Applied {
        finished,
        exhausted,
        outcome: PassOutcome {
            due_now,
            next_due,
            busy,
        },
    })
}

/// Records one row's fate at once (reconciliation at start, outside any pass).
fn record_delivered(
    dir: &std::path::Path,
    out_id: &str,
    platform_msg: Option<&str>,
    status: &str,
) -> anyhow::Result<()> {
    let _w = crate::sessions::write_lock(dir);
    let c = schema::open_rw(&dir.join("inbound.db"))?;
    c.execute(
        "INSERT OR IGNORE INTO delivered(message_out_id, platform_message_id, status, delivered_at) VALUES (?1, ?2, ?3, ?4)",
        params![out_id, platform_msg, status, time::now()],
    )?;
    Ok(())
}

/// The platform message id behind a seq (or row id) the agent refers to: an odd seq is one of
/// its own sent messages (`delivered`), an even one a message it received (`platformMessageId`);
/// a string is first NanoClaw v2's form (see below).
fn platform_message_of(
    dir: &std::path::Path,
    reference: &serde_json::Value,
) -> anyhow::Result<Option<String>> {
    let c = schema::open_inbound_write(dir)?;
    // NanoClaw v2's runner resolved the seq itself before writing the row: a string
    // `messageId` is then the platform id the host recorded for one of this session's sent
    // rows, or the id of one of its inbound rows (only ids this session's own records know are
    // used). Our runner writes the seq as a number; a string that names no such record but is
    // a number is still read as a seq.
    if let Some(id) = reference.as_str().filter(|s| !s.is_empty()) {
        if let Some(found) = v2_platform_message(dir, &c, id)? {
            return Ok(Some(found));
        }
    }
    let seq = reference
        .as_i64()
        .or_else(|| reference.as_str().and_then(|s| s.parse().ok()));
    let found: Option<String> = match seq {
        Some(seq) if seq % 2 == 1 => c
            .query_row(
                "SELECT d.platform_message_id FROM ob.messages_out o JOIN main.delivered d ON d.message_out_id = o.id WHERE o.seq = ?1",
                [seq],
                |r| r.get(0),
            )
            .optional()?
            .flatten(),
        Some(seq) => {
            let id: Option<String> = c
                .query_row(
                    "SELECT id FROM main.messages_in WHERE seq = ?1",
                    [seq],
                    |r| r.get(0),
                )
                .optional()?;
            match id {
                Some(id) => received_platform_message(dir, &c, &id)?,
                None => None,
            }
        }
        None => None,
    };
    Ok(found)
}

/// NanoClaw v2's `messageId` of an edit or reaction: a platform id in this session's
/// `delivered`, or an inbound row id.
fn v2_platform_message(
    dir: &std::path::Path,
    c: &Connection,
    id: &str,
) -> anyhow::Result<Option<String>> {
    let sent: Option<String> = c
        .query_row(
            "SELECT platform_message_id FROM main.delivered
             WHERE platform_message_id = ?1 AND status = 'delivered' LIMIT 1",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    if sent.is_some() {
        return Ok(sent);
    }
    received_platform_message(dir, c, id)
}

/// The platform message id of one of this session's inbound rows (by row id): our rows carry
/// `platformMessageId`; NanoClaw v2's are named `<platform message id>:<agent group id>`.
fn received_platform_message(
    dir: &std::path::Path,
    c: &Connection,
    id: &str,
) -> anyhow::Result<Option<String>> {
    let received: Option<Option<String>> = c
        .query_row(
            "SELECT CASE WHEN json_valid(content)
                 THEN CAST(json_extract(content, '$.platformMessageId') AS TEXT) END
             FROM main.messages_in WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match received {
        None => None,
        Some(Some(p)) => Some(p),
        Some(None) => {
            let ag = dir
                .parent()
                .and_then(std::path::Path::file_name)
                .and_then(std::ffi::OsStr::to_str);
            ag.and_then(|ag| id.strip_suffix(&format!(":{ag}")))
                .filter(|p| !p.is_empty())
                .map(str::to_string)
        }
    })
}

/// Rows refused at read time: each is audited, and the agent is told why with its next turn
/// (one inbound write for the whole page); the write phase records them `failed`.
async fn tell_refused(
    host: &Arc<Host>,
    sess: &db::sessions::Session,
    refused: &[Refused],
) -> anyhow::Result<()> {
    if refused.is_empty() {
        return Ok(());
    }
    let mut notes = Vec::with_capacity(refused.len());
    for r in refused {
        tracing::warn!(session = %sess.id, id = %r.shown_id, reason = %r.reason, "outbound row refused");
        let note = serde_json::json!({"action": "delivery_failed", "status": "error",
            "result": {"messageId": r.shown_id, "error": r.reason}});
        let mut row = crate::sessions::NewInbound::new("system", note.to_string());
        row.trigger = false;
        notes.push(row);
    }
    let dir = host.home.session(&sess.agent_group_id, &sess.id)?;
    crate::sessions::write_inbound_batched(dir.dir(), notes).await?;
    Ok(())
}

/// A row that can never be sent: recorded `failed` (the audit) and the agent told why with its
/// next turn, so a reply is never lost silently.
async fn dropped(
    host: &Arc<Host>,
    sess: &db::sessions::Session,
    row: &DueOut,
    reason: &str,
) -> anyhow::Result<Option<Fate>> {
    tracing::warn!(session = %sess.id, id = %row.id, reason, "outbound row dropped");
    let note = serde_json::json!({"action": "delivery_failed", "status": "error",
        "result": {"messageId": row.id, "error": reason}});
    host.note_system(sess, note.to_string()).await?;
    Ok(Some(Fate {
        out_id: row.id.clone(),
        status: "failed",
        platform_message_id: None,
        sent: false,
    }))
}

/// Largest outbox file sent (`NANOCLAW_MAX_FILE_BYTES`): Telegram's bot upload limit.
const DEFAULT_MAX_FILE_BYTES: u64 = 50 * 1024 * 1024;

/// Checks a row's outbox files beneath the session folder and, with `read`, reads each once:
/// `outbox/<id>/<name>` must be a regular file reached through no link, at most `cap` bytes.
/// The folder and every name in it are the agent's, so anything else (a link to the host's
/// `.env`, a FIFO, /dev/zero, a 300 MB sparse file) fails the row; the error is the reason the
/// agent is told.
fn outbox_files(
    session: &str,
    dir: &std::path::Path,
    id: &str,
    names: &[String],
    cap: u64,
    read: bool,
) -> Result<Vec<crate::channels::OutFile>, String> {
    use nanoclaw_protocol::beneath::{Dir, Error};
    let root = Dir::open(dir).map_err(|e| format!("session folder: {e}"))?;
    let mut out = Vec::new();
    for name in names {
        let refused = |why: String| {
            tracing::warn!(session, id, file = %name, reason = %why, "outbox file refused");
            Err(format!("file {name:?} not sent: {why}"))
        };
        if nanoclaw_protocol::names::validate(name).is_err()
            || nanoclaw_protocol::names::validate(id).is_err()
        {
            return refused("not a plain file name".into());
        }
        let rel = std::path::Path::new("outbox").join(id).join(name);
        let data = if read {
            root.read(&rel, cap)
        } else {
            root.open_file(&rel, cap).map(|_| Vec::new())
        };
        match data {
            Ok(data) => out.push(crate::channels::OutFile {
                name: name.clone(),
                data: data.into(),
            }),
            Err(Error::TooLarge { cap, .. }) => {
                return refused(format!("larger than the {cap}-byte limit"))
            }
            Err(e) => return refused(e.to_string()),
        }
    }
    Ok(out)
}

/// Deletes `outbox/<id>` beneath the session folder, never following a link (a link there is
/// removed itself; a link on the way is left and reported).
async fn clear_outbox(
    sess: &db::sessions::Session,
    paths: &nanoclaw_protocol::SessionPaths,
    id: &str,
) {
    let (dir, id, sid) = (paths.dir().to_path_buf(), id.to_string(), sess.id.clone());
    let done = tokio::task::spawn_blocking(move || {
        nanoclaw_protocol::names::validate(&id).map_err(|e| e.to_string())?;
        nanoclaw_protocol::beneath::Dir::open(&dir)
            .and_then(|d| d.remove_all(std::path::Path::new("outbox").join(&id)))
            .map_err(|e| e.to_string())
    })
    .await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(session = %sid, error = %e, "outbox not cleared"),
        Err(e) => tracing::warn!(session = %sid, error = %e, "outbox not cleared"),
    }
}

/// Sends one due row. Returns its fate, or None when it should be tried again later.
async fn deliver_one(
    host: &Arc<Host>,
    sess: &db::sessions::Session,
    paths: &nanoclaw_protocol::SessionPaths,
    row: &DueOut,
) -> anyhow::Result<Option<Fate>> {
    let fate = |status: &'static str, platform_message_id: Option<String>, sent: bool| {
        Ok(Some(Fate {
            out_id: row.id.clone(),
            status,
            platform_message_id,
            sent,
        }))
    };
    let content = match Outbound::parse(&row.kind, &row.content) {
        Ok(c) => c,
        Err(e) => return dropped(host, sess, row, &format!("bad content: {e}")).await,
    };
    if let Outbound::System { action, payload } = &content {
        crate::actions::handle(host, sess, action, payload).await?;
        return fate("delivered", None, false);
    }
    let (ct, pid) = match (&row.channel_type, &row.platform_id) {
        (Some(ct), Some(pid)) => (ct.clone(), pid.clone()),
        _ => match host.default_route(sess).await? {
            Some(r) => r,
            None => return dropped(host, sess, row, "the message has no destination").await,
        },
    };
    if ct == "agent" {
        let text = match &content {
            Outbound::Message { .. } | Outbound::Card { .. } => {
                crate::channels::text_of(&content).unwrap_or_default()
            }
            _ => return dropped(host, sess, row, "only messages can go to another agent").await,
        };
        return match crate::agents::target(host, sess, row.in_reply_to.as_deref(), &pid).await? {
            Some(t) => {
                let id = crate::agents::deliver(host, sess, t, &text).await?;
                fate("delivered", Some(id), false)
            }
            None => {
                dropped(
                    host,
                    sess,
                    row,
                    &format!("agent {pid} is not one of your destinations"),
                )
                .await
            }
        };
    }
    if !host
        .route_allowed(sess, &ct, &pid, row.thread_id.as_deref())
        .await?
    {
        let why = format!("{ct}:{pid} is not one of your destinations");
        return dropped(host, sess, row, &why).await;
    }
    let Some(channel) = host.channels.get(&ct).cloned() else {
        let why = format!("the {ct} channel is not running");
        return dropped(host, sess, row, &why).await;
    };
    // Degradation decided once, here, from the adapter's declared capabilities.
    let caps = channel.capabilities();
    let content = match content {
        Outbound::Reaction { .. } if !caps.reactions => {
            tracing::info!(session = %sess.id, id = %row.id, channel = %ct, "channel has no reactions; reaction skipped");
            return fate("delivered", None, false);
        }
        // Without edits, the new text arrives as a message of its own.
        Outbound::Edit { text, .. } if !caps.edits => Outbound::Message {
            text,
            files: vec![],
            extra: Default::default(),
        },
        other => other,
    };
    let files = match &content {
        Outbound::Message { files, .. } if !files.is_empty() => {
            let (dir, id, names) = (paths.dir().to_path_buf(), row.id.clone(), files.clone());
            let cap = host
                .settings
                .u64("NANOCLAW_MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES);
            // A channel that cannot upload still gets the files checked (and the row failed
            // on a bad one) but not read.
            let read = caps.files;
            let sid = sess.id.clone();
            match tokio::task::spawn_blocking(move || {
                outbox_files(&sid, &dir, &id, &names, cap, read)
            })
            .await?
            {
                Ok(f) => f,
                Err(why) => return dropped(host, sess, row, &why).await,
            }
        }
        _ => Vec::new(),
    };
    let target_platform_message_id = match &content {
        Outbound::Edit { message_id, .. } | Outbound::Reaction { message_id, .. } => {
            let (dir, m) = (paths.dir().to_path_buf(), message_id.clone());
            tokio::task::spawn_blocking(move || platform_message_of(&dir, &m)).await??
        }
        _ => None,
    };
    // The agent's question id is its own (DESIGN §3): the card carries a host-made id, so no
    // agent can name an approval or another session's question; its id comes back in the answer.
    let (content, agent_question_id) = match content {
        Outbound::AskQuestion {
            question_id,
            title,
            question,
            options,
        } => (
            Outbound::AskQuestion {
                question_id: crate::questions::new_id(),
                title,
                question,
                options,
            },
            Some(question_id),
        ),
        other => (other, None),
    };
    let item = OutboundItem {
        message_out_id: row.id.clone(),
        platform_id: pid,
        thread_id: row.thread_id.clone(),
        in_reply_to: row.in_reply_to.clone(),
        target_platform_message_id,
        content,
        files,
    };
    if !host.send_allowed_now(&row.id) {
        return Ok(None);
    }
    let (sid, oid) = (sess.id.clone(), row.id.clone());
    let earlier = host
        .db
        .call({
            let ct = ct.clone();
            move |c| Ok(db::intents::begin(c, &sid, &oid, &ct)?)
        })
        .await?;
    // An intent left by an earlier attempt whose fate never reached disk (its write phase
    // failed after the send): that send may have happened, so ask the platform, as at start.
    if earlier {
        match channel.reconcile(&row.id).await {
            Reconciled::NotSent => {}
            Reconciled::Sent(p) => return fate("delivered", p, true),
            Reconciled::Unknown => {
                tracing::warn!(id = %row.id, "platform cannot tell whether an earlier send happened; not re-sending (at most once)");
                return fate("delivered", None, true);
            }
        }
    }
    crate::failpoint("before_send");
    let result = channel.send(&item).await;
    crate::failpoint("after_send");
    // The outbox copy is kept until the row's fate is final (a retry needs the files).
    let clear_outbox = || clear_outbox(sess, paths, &row.id);
    match result {
        Ok(pmid) => {
            clear_outbox().await;
            host.send_settled(&row.id);
            if let Outbound::AskQuestion {
                question_id,
                question,
                title,
                options,
            } = &item.content
            {
                let shown = if question.is_empty() { title } else { question };
                if let Err(e) = crate::questions::record(
                    host,
                    crate::questions::NewCard {
                        id: question_id,
                        session_id: &sess.id,
                        message_out_id: &row.id,
                        agent_question_id: agent_question_id.as_deref(),
                        kind: crate::questions::Kind::Question,
                        for_user: None,
                        question: shown,
                        options: &nanoclaw_protocol::content::QuestionOption::normalize_all(
                            options,
                        ),
                        route: (&ct, &item.platform_id, item.thread_id.as_deref()),
                        platform_message_id: pmid.clone(),
                    },
                )
                .await
                {
                    tracing::error!(session = %sess.id, error = %e, "question sent but not recorded; its answer will arrive as plain text");
                }
            }
            fate("delivered", pmid, true)
        }
        // A refusal the platform would repeat fails at once; anything else gets its retries.
        Err(e)
            if e.downcast_ref::<crate::channels::Refused>().is_some()
                || host.send_failed(&row.id) >= SEND_ATTEMPTS =>
        {
            tracing::error!(session = %sess.id, id = %row.id, error = %e, "send failed for the last time");
            host.send_settled(&row.id);
            clear_outbox().await;
            let note = serde_json::json!({"action": "delivery_failed", "status": "error", "result": {"messageId": row.id, "error": e.to_string()}});
            host.note_system(sess, note.to_string()).await?;
            fate("failed", None, true)
        }
        Err(e) => {
            tracing::warn!(session = %sess.id, id = %row.id, error = %e, "send failed; will retry");
            let (sid, oid) = (sess.id.clone(), row.id.clone());
            host.db
                .call(move |c| Ok(db::intents::end(c, &sid, &oid)?))
                .await?;
            Ok(None)
        }
    }
}

/// At start: settles sends that were in flight when the host last stopped.
pub async fn reconcile_intents(host: &Arc<Host>) -> anyhow::Result<()> {
    let intents = host.db.call(|c| Ok(db::intents::all(c)?)).await?;
    for (sid, oid, ct) in intents {
        // One unreadable session must not keep the host from starting; its intent stays for
        // the next start (its passes cannot send while its files are unreadable either).
        if let Err(e) = reconcile_one(host, &sid, &oid, &ct).await {
            tracing::error!(session = %sid, id = %oid, error = %e, "could not reconcile an interrupted send");
        }
    }
    Ok(())
}

async fn reconcile_one(host: &Arc<Host>, sid: &str, oid: &str, ct: &str) -> anyhow::Result<()> {
    let (sid, oid) = (sid.to_string(), oid.to_string());
    let sess = host
        .db
        .call({
            let sid = sid.clone();
            move |c| Ok(db::sessions::get(c, &sid)?)
        })
        .await?;
    if let Some(sess) = sess {
        let dir = host
            .home
            .session(&sess.agent_group_id, &sess.id)?
            .dir()
            .to_path_buf();
        let already: bool = {
            let (dir, oid) = (dir.clone(), oid.clone());
            tokio::task::spawn_blocking(move || -> anyhow::Result<bool> {
                let c = schema::open_rw(&dir.join("inbound.db"))?;
                Ok(c.query_row(
                    "SELECT EXISTS(SELECT 1 FROM delivered WHERE message_out_id=?1)",
                    [&oid],
                    |r| r.get(0),
                )?)
            })
            .await??
        };
        if !already {
            let verdict = match host.channels.get(ct) {
                Some(ch) => ch.reconcile(&oid).await,
                None => Reconciled::Unknown,
            };
            tracing::info!(session = %sid, id = %oid, ?verdict, "reconciled an interrupted send");
            let pmid = match verdict {
                Reconciled::NotSent => None,
                Reconciled::Sent(p) => Some(p),
                Reconciled::Unknown => {
                    tracing::warn!(id = %oid, "platform cannot tell whether the send happened; not re-sending (at most once)");
                    Some(None)
                }
            };
            if let Some(p) = pmid {
                let (dir, oid) = (dir.clone(), oid.clone());
                tokio::task::spawn_blocking(move || {
                    record_delivered(&dir, &oid, p.as_deref(), "delivered")
                })
                .await??;
            }
        }
    }
    host.db
        .call(move |c| Ok(db::intents::end(c, &sid, &oid)?))
        .await?;
    Ok(())
}
