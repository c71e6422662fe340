//! Session resolution, provisioning and the host's writes to a session's inbound.db.
//!
//! Every inbound write opens the file, writes in one IMMEDIATE transaction and closes it
//! (DESIGN §3): the runner only ever sees committed state, and no handle outlives the write.

use std::path::Path;

use nanoclaw_protocol::status::SessionMode;
use nanoclaw_protocol::{schema, seq, Home, SessionPaths};
use rusqlite::{params, Connection, TransactionBehavior};

use crate::db::{self, sessions::Session, wirings::Wiring};

/// A `messages_in` row to write; seq is assigned at write time.
#[derive(Debug, Clone)]
pub struct NewInbound {
    /// Row id (`msg-…`).
    pub id: String,
    /// chat | task | webhook | system.
    pub kind: String,
    /// 1 wakes the agent, 0 is context only.
    pub trigger: bool,
    /// Routing: channel.
    pub channel_type: Option<String>,
    /// Routing: chat.
    pub platform_id: Option<String>,
    /// Routing: thread.
    pub thread_id: Option<String>,
    /// Content JSON.
    pub content: String,
    /// When it becomes due (None = now).
    pub process_after: Option<String>,
    /// Cron expression for recurring rows.
    pub recurrence: Option<String>,
    /// Series of a recurring row.
    pub series_id: Option<String>,
    /// Origin session for agent-to-agent messages.
    pub source_session_id: Option<String>,
}

impl NewInbound {
    /// A row with a fresh id and no scheduling.
    pub fn new(kind: &str, content: String) -> Self {
        Self {
            id: nanoclaw_protocol::new_id("msg"),
            kind: kind.into(),
            trigger: true,
            channel_type: None,
            platform_id: None,
            thread_id: None,
            content,
            process_after: None,
            recurrence: None,
            series_id: None,
            source_session_id: None,
        }
    }
}

/// Finds or creates the session a wiring routes `thread` to. Runs under the central DB lock,
/// so concurrent first messages of a chat make exactly one session.
pub fn resolve(
    c: &Connection,
    home: &Home,
    w: &Wiring,
    thread: Option<&str>,
) -> anyhow::Result<Session> {
    let (mg, thread) = match w.session_mode {
        SessionMode::AgentShared => (None, None),
        SessionMode::PerThread => (Some(w.messaging_group_id.as_str()), thread),
        SessionMode::Shared => (Some(w.messaging_group_id.as_str()), None),
    };
    if let Some(s) = db::sessions::find(c, &w.agent_group_id, mg, thread)? {
        return Ok(s);
    }
    let s = db::atomic(c, |tx| {
        let s = db::sessions::create(tx, &w.agent_group_id, mg, thread)?;
        provision(home, &s)?;
        Ok(s)
    })?;
    tracing::info!(session = %s.id, agent_group = %s.agent_group_id, mode = %w.session_mode, "session created");
    Ok(s)
}

/// Creates the session folder and both DBs (idempotent; upgrades older folders).
pub fn provision(home: &Home, s: &Session) -> anyhow::Result<SessionPaths> {
    let p = home.session(&s.agent_group_id, &s.id)?;
    std::fs::create_dir_all(p.dir().join("inbox"))?;
    std::fs::create_dir_all(p.dir().join("outbox"))?;
    schema::open_inbound_rw(&p.inbound_db())?;
    schema::provision_outbound(&p.outbound_db())?;
    // The conversation itself: the host user's (or, with Docker on a root host, after the
    // hand-over, the container user's) only.
    crate::perms::private_file(&p.inbound_db())?;
    crate::perms::private_file(&p.outbound_db())?;
    Ok(p)
}

/// The host's in-process state for writing one session's inbound.db.
#[derive(Default)]
struct Writer {
    /// Serialises the host's writers: it is the file's only writer, so SQLite's lock waits are
    /// then only ever against the runner's short reads.
    lock: std::sync::Mutex<()>,
    /// Group-commit queue and whether a writer task is draining it.
    queue: std::sync::Mutex<(Waiting, bool)>,
}

/// The writer of a session folder, created once per folder for the life of the process
/// (leaked, so guards can be `'static` without unsafe code; bounded by the session count).
fn writer(dir: &Path) -> &'static Writer {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static WRITERS: OnceLock<Mutex<HashMap<std::path::PathBuf, &'static Writer>>> = OnceLock::new();
    let mut map = WRITERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    map.entry(dir.to_path_buf())
        .or_insert_with(|| Box::leak(Box::default()))
}

/// The host's in-process lock for writing one session's inbound.db.
pub fn write_lock(dir: &Path) -> std::sync::MutexGuard<'static, ()> {
    writer(dir).lock.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes rows into a session's inbound.db, assigning even seqs. Returns `(id, seq)` pairs.
pub fn write_inbound(dir: &Path, rows: &[NewInbound]) -> anyhow::Result<Vec<(String, i64)>> {
    let _w = write_lock(dir);
    audit_planted_journal(dir);
    let mut c = schema::open_rw(&dir.join("inbound.db"))?;
    // Read the runner's file before the write transaction: no lock on it is held while waiting.
    // A runner that broke its own file does not stop the host's writes to its session: the
    // seq then only needs to be above the host's own rows (parity keeps the sides apart).
    let max_out = match schema::attach_outbound(&c, dir)
        .and_then(|()| seq::max_seq(&c, "ob.messages_out"))
    {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(session_dir = %dir.display(), error = %e, "outbound.db unreadable; inbound write goes on without it");
            0
        }
    };
    // Detached before the write: BEGIN IMMEDIATE would hold a read transaction on the attached
    // (read-only) outbound.db until commit, and a runner committing there while reading
    // inbound.db would wait on us as we wait on it, until both time out ("database is locked").
    let _ = c.execute_batch("DETACH DATABASE ob");
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut max = seq::max_seq(&tx, "main.messages_in")?.max(max_out);
    let now = nanoclaw_protocol::time::now();
    let mut out = Vec::with_capacity(rows.len());
    {
        let mut st = tx.prepare_cached(
            // Only a known id is skipped: a seq collision is an error, never a silent drop.
            "INSERT INTO main.messages_in(id, seq, kind, timestamp, status, process_after, recurrence,
               series_id, tries, trigger, platform_id, channel_type, thread_id, content, source_session_id, on_wake)
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, 0, ?8, ?9, ?10, ?11, ?12, ?13, 0)
             ON CONFLICT(id) DO NOTHING",
        )?;
        for r in rows {
            let s = seq::next(seq::Side::Host, max);
            let series = r
                .series_id
                .clone()
                .or_else(|| r.recurrence.as_ref().map(|_| r.id.clone()));
            // A row id seen before (a redelivered platform message) is skipped, not an error.
            let inserted = st.execute(params![
                r.id,
                s,
                r.kind,
                now,
                r.process_after,
                r.recurrence,
                series,
                r.trigger,
                r.platform_id,
                r.channel_type,
                r.thread_id,
                r.content,
                r.source_session_id
            ])?;
            if inserted == 0 {
                continue;
            }
            max = s;
            out.push((r.id.clone(), s));
        }
    }
    tx.commit()?;
    Ok(out)
}

/// A file next to inbound.db named like its journal was put there by the agent: the host's
/// journal lives in `data/journals/` (`protocol::vfs`), so this one is never read. Logged once
/// per session folder and process, as an attack.
pub fn audit_planted_journal(dir: &Path) {
    if std::fs::symlink_metadata(dir.join("inbound.db-journal")).is_err() {
        return;
    }
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashSet<std::path::PathBuf>>> = OnceLock::new();
    let first = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(dir.to_path_buf());
    if first {
        tracing::warn!(session_dir = %dir.display(), "planted journal next to inbound.db ignored (the host's journal is private)");
    }
}

/// Rows waiting for the next group commit of one session, with their callers' reply channels.
type Waiting = Vec<(
    Vec<NewInbound>,
    tokio::sync::oneshot::Sender<Result<Vec<(String, i64)>, String>>,
)>;

/// Writes rows like [`write_inbound`], but concurrent callers for the same session share one
/// transaction (group commit): the fsync of a rollback-journal commit dominates a write, so
/// batching is what lets one busy chat route more than a thousand messages a second.
pub async fn write_inbound_batched(
    dir: &Path,
    rows: Vec<NewInbound>,
) -> anyhow::Result<Vec<(String, i64)>> {
    let q = &writer(dir).queue;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let lead = {
        let mut g = q.lock().unwrap_or_else(|p| p.into_inner());
        g.0.push((rows, tx));
        // The first caller of an idle queue becomes the writer until the queue is empty.
        !std::mem::replace(&mut g.1, true)
    };
    if lead {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || loop {
            let batch = {
                let mut g = q.lock().unwrap_or_else(|p| p.into_inner());
                if g.0.is_empty() {
                    g.1 = false;
                    return;
                }
                std::mem::take(&mut g.0)
            };
            let all: Vec<NewInbound> = batch.iter().flat_map(|(r, _)| r.iter().cloned()).collect();
            match write_inbound(&dir, &all) {
                Ok(written) => {
                    let mut it = written.into_iter();
                    for (rows, reply) in batch {
                        let _ = reply.send(Ok(it.by_ref().take(rows.len()).collect()));
                    }
                }
                Err(e) => {
                    for (_, reply) in batch {
                        let _ = reply.send(Err(format!("{e:#}")));
                    }
                }
            }
        });
    }
    rx.await?.map_err(anyhow::Error::msg)
}

/// Rewrites `destinations` and `session_routing` from the central DB (before a wake and
/// whenever wiring changes).
pub fn project(c: &Connection, home: &Home, s: &Session) -> anyhow::Result<()> {
    let dests = db::destinations::for_agent_group(c, &s.agent_group_id)?;
    let route = match &s.messaging_group_id {
        Some(mg) => db::messaging_groups::get(c, mg)?.map(|m| (m.channel_type, m.platform_id)),
        None => None,
    };
    let p = home.session(&s.agent_group_id, &s.id)?;
    let _w = write_lock(p.dir());
    // inbound.db alone: a projection needs nothing of the runner's file, so a broken
    // outbound.db cannot fail a wiring change.
    let mut ic = schema::open_rw(&p.inbound_db())?;
    let tx = ic.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute("DELETE FROM main.destinations", [])?;
    for d in &dests {
        tx.execute(
            "INSERT INTO main.destinations(name, display_name, type, channel_type, platform_id, agent_group_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![d.name, d.display_name, d.target_type, d.channel_type, d.platform_id, d.agent_group_id],
        )?;
    }
    tx.execute(
        "INSERT INTO main.session_routing(id, channel_type, platform_id, thread_id) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT(id) DO UPDATE SET channel_type=excluded.channel_type,
           platform_id=excluded.platform_id, thread_id=excluded.thread_id",
        params![
            route.as_ref().map(|r| &r.0),
            route.as_ref().map(|r| &r.1),
            s.thread_id
        ],
    )?;
    tx.commit()?;
    Ok(())
}
