//! The read phase of a pass: acks, a dead runner's rows, due outbound rows and recurrences,
//! read in autocommit statements with every field bounded (an agent writes outbound.db).

use super::*;

pub(super) struct DueOut {
    pub(super) id: String,
    pub(super) kind: String,
    pub(super) in_reply_to: Option<String>,
    pub(super) channel_type: Option<String>,
    pub(super) platform_id: Option<String>,
    pub(super) thread_id: Option<String>,
    pub(super) content: String,
}

/// Where an inbound row came from: `(channel_type, platform_id, thread_id)`.
#[derive(Debug, Clone)]
pub(super) struct Origin {
    pub(super) channel_type: Option<String>,
    pub(super) platform_id: Option<String>,
    pub(super) thread_id: Option<String>,
}

/// A row whose recurrence is due to be re-armed.
pub(super) struct Recurring {
    pub(super) id: String,
    pub(super) cron: String,
    pub(super) process_after: Option<String>,
    pub(super) timestamp: String,
    pub(super) series_id: Option<String>,
}

/// Everything a pass reads, gathered before any write (autocommit statements only).
pub(super) struct Reads {
    /// `(message id, acked status, when)`.
    pub(super) acks: Vec<(String, MessageStatus, String)>,
    pub(super) stuck: Vec<(String, i64, Origin)>,
    pub(super) due_out: Vec<DueOut>,
    pub(super) next_out: Option<String>,
    pub(super) max_out: i64,
    /// Rows that can never be read as a message (absurd seq, undecodable or oversize fields).
    pub(super) refused: Vec<Refused>,
    /// The pass stopped at its row or byte bound: the rest waits for the next pass, at once.
    pub(super) more: bool,
}

/// A row refused at read time; its fate is recorded with the id's exact bytes (which need not
/// be UTF-8), and the agent is told why.
pub(super) struct Refused {
    pub(super) id: RawId,
    pub(super) shown_id: String,
    pub(super) reason: String,
}

/// A row id exactly as the runner stored it.
#[derive(Clone)]
pub(super) enum RawId {
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
pub(super) fn utf8(v: rusqlite::types::ValueRef<'_>) -> Option<String> {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Text(b) | ValueRef::Blob(b) => String::from_utf8(b.to_vec()).ok(),
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Null => None,
    }
}

/// Reads the runner's file (acks, replies) and the rows a dead runner left, without any write
/// transaction: no lock on outbound.db is ever held while waiting to write inbound.db.
pub(super) fn read_phase(
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
                // The query admits only three spellings; anything else is skipped like
                // undecodable text, never an error that stops the pass.
                utf8(r.get_ref(1)?).and_then(|s| s.parse::<MessageStatus>().ok()),
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
pub(super) fn due_rows(
    c: &Connection,
    now_s: &str,
) -> anyhow::Result<(Vec<DueOut>, Vec<Refused>, bool)> {
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
pub(super) fn recurring_out(
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
        match crate::sweep::scheduling::due_occurrence(&cron, tz, last, now) {
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
