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
use nanoclaw_protocol::status::{DeliveryStatus, MessageStatus};
use nanoclaw_protocol::{schema, time};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::channels::{OutboundItem, Reconciled};
use crate::db;
use crate::{Host, HostEvent};

pub mod agents;
mod read;
mod reconcile;
mod retry;
mod send;
mod targets;
mod write;

use read::*;
pub use reconcile::reconcile_intents;
use send::*;
use targets::*;
use write::*;

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
    host.clone()
        .spawn(async move {
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
            status: MessageStatus::Failed,
        });
    }
    Ok(applied.outcome)
}
