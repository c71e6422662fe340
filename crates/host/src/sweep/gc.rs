//! Retention: files that may go once they are old — inbox folders of messages that are done,
//! outbox folders of rows whose delivery is settled, failed containers' logs, archived
//! transcripts. Nothing still needed goes: an inbox of a pending message, an outbox of a row
//! not yet delivered. Session folders are the agent's, so they are listed and removed through
//! `protocol::beneath` (a link is removed itself, never followed).
//!
//! `RETENTION_DAYS` (30) for all, or `RETENTION_INBOX_DAYS`, `RETENTION_OUTBOX_DAYS`,
//! `RETENTION_CONTAINER_LOGS_DAYS`, `RETENTION_TRANSCRIPTS_DAYS`; 0 keeps forever.
//! `nanoclaw gc [--dry-run]`, and a daily run inside the host.

use std::path::{Path, PathBuf};

use nanoclaw_protocol::beneath::{Dir, FileType};
use nanoclaw_protocol::status::MessageStatus;
use nanoclaw_protocol::Home;
use rusqlite::{Connection, OptionalExtension};

use crate::config::Settings;

/// Most entries looked at in one folder per run (a hostile folder may hold millions).
const MAX_ENTRIES: usize = 10_000;

/// What kind of artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `inbox/<message_id>/` of a session.
    Inbox,
    /// `outbox/<message_out_id>/` of a session.
    Outbox,
    /// `logs/containers/<file>`.
    ContainerLog,
    /// `groups/<folder>/conversations/<file>`.
    Transcript,
}

impl Kind {
    /// Name in listings.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Inbox => "inbox",
            Kind::Outbox => "outbox",
            Kind::ContainerLog => "container-log",
            Kind::Transcript => "transcript",
        }
    }
}

/// Days each kind is kept (None = forever).
#[derive(Debug, Clone)]
pub struct Policy {
    inbox: Option<u64>,
    outbox: Option<u64>,
    container_logs: Option<u64>,
    transcripts: Option<u64>,
}

impl Policy {
    /// From the settings.
    pub fn from_settings(s: &Settings) -> Self {
        let all = s.u64("RETENTION_DAYS", 30);
        let days = |k: &str| Some(s.u64(k, all)).filter(|d| *d > 0);
        Self {
            inbox: days("RETENTION_INBOX_DAYS"),
            outbox: days("RETENTION_OUTBOX_DAYS"),
            container_logs: days("RETENTION_CONTAINER_LOGS_DAYS"),
            transcripts: days("RETENTION_TRANSCRIPTS_DAYS"),
        }
    }
}

/// One artifact to remove: `rel` beneath the trusted folder `root`.
#[derive(Debug, Clone)]
pub struct Item {
    /// Kind.
    pub kind: Kind,
    /// A folder the host made (a session folder, logs/containers, a group's folder).
    pub root: PathBuf,
    /// The artifact beneath it.
    pub rel: PathBuf,
}

impl Item {
    /// Its full path, for listings.
    pub fn path(&self) -> PathBuf {
        self.root.join(&self.rel)
    }
}

/// Entries of `root/rel` older than `days` (seconds since the epoch `now`), as items.
fn old(root: &Path, rel: &str, days: Option<u64>, now: i64, kind: Kind) -> Vec<(Item, FileType)> {
    let Some(days) = days else { return vec![] };
    let cutoff = now - (days as i64) * 86_400;
    let listed = Dir::open(root)
        .and_then(|d| d.open_dir(rel))
        .and_then(|d| d.list(MAX_ENTRIES));
    match listed {
        Ok(entries) => entries
            .into_iter()
            .filter(|e| e.mtime < cutoff)
            .map(|e| {
                (
                    Item {
                        kind,
                        root: root.to_path_buf(),
                        rel: Path::new(rel).join(&e.name),
                    },
                    e.kind,
                )
            })
            .collect(),
        Err(e) if e.is_not_found() => vec![],
        Err(e) => {
            tracing::warn!(folder = %root.join(rel).display(), error = %e, "retention: folder not listed");
            vec![]
        }
    }
}

/// The folders a pass looks into, read from the central DB (briefly: the walk itself runs
/// without the DB).
#[derive(Debug, Clone, Default)]
pub struct Targets {
    sessions: Vec<(String, String)>,
    folders: Vec<String>,
}

impl Targets {
    /// Every session (agent group, id) and agent folder.
    pub fn read(c: &Connection) -> rusqlite::Result<Self> {
        let mut st = c.prepare("SELECT agent_group_id, id FROM sessions ORDER BY id")?;
        let sessions = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut st = c.prepare("SELECT folder FROM agent_groups ORDER BY folder")?;
        let folders = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(Self { sessions, folders })
    }
}

/// Everything that may go now (`now` in seconds since the epoch).
pub fn plan(home: &Home, t: &Targets, policy: &Policy, now: i64) -> anyhow::Result<Vec<Item>> {
    let mut out = vec![];
    for (ag, id) in &t.sessions {
        let Ok(paths) = home.session(ag, id) else {
            continue;
        };
        let dir = paths.dir().to_path_buf();
        let inbox = old(&dir, "inbox", policy.inbox, now, Kind::Inbox);
        let outbox = old(&dir, "outbox", policy.outbox, now, Kind::Outbox);
        if inbox.is_empty() && outbox.is_empty() {
            continue;
        }
        // The session's own records say what is settled; without them nothing goes.
        let db = match nanoclaw_protocol::schema::open_rw(&paths.inbound_db()) {
            Ok(db) => db,
            Err(e) => {
                tracing::warn!(session = %id, error = %e, "retention: inbound.db unreadable; its files are kept");
                continue;
            }
        };
        for (item, _) in inbox {
            let mid = item
                .rel
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let status: Option<Option<String>> = db
                .query_row(
                    "SELECT status FROM messages_in WHERE id = ?1",
                    [&mid],
                    |r| r.get(0),
                )
                .optional()?;
            // A message still to be handled keeps its files; one that is done or gone does not.
            // Read as text and parsed here: a status this build does not know counts as done,
            // as it always did, rather than failing the run.
            let status = status
                .flatten()
                .and_then(|s| s.parse::<MessageStatus>().ok());
            if !matches!(
                status,
                Some(MessageStatus::Pending | MessageStatus::Processing | MessageStatus::Paused)
            ) {
                out.push(item);
            }
        }
        for (item, _) in outbox {
            let oid = item
                .rel
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let settled: bool = db.query_row(
                "SELECT EXISTS(SELECT 1 FROM delivered WHERE message_out_id = ?1)",
                [&oid],
                |r| r.get(0),
            )?;
            if settled {
                out.push(item);
            }
        }
    }
    let logs = home.logs_dir();
    out.extend(
        old(
            &logs,
            "containers",
            policy.container_logs,
            now,
            Kind::ContainerLog,
        )
        .into_iter()
        .filter(|(_, k)| *k == FileType::RegularFile)
        .map(|(i, _)| i),
    );
    for folder in &t.folders {
        let Ok(dir) = home.group_dir(folder) else {
            continue;
        };
        out.extend(
            old(
                &dir,
                "conversations",
                policy.transcripts,
                now,
                Kind::Transcript,
            )
            .into_iter()
            .map(|(i, _)| i),
        );
    }
    Ok(out)
}

/// Removes the items; returns how many went, logging each one that could not.
pub fn remove(items: &[Item]) -> usize {
    let mut n = 0;
    for it in items {
        match Dir::open(&it.root).and_then(|d| d.remove_all(&it.rel)) {
            Ok(()) => n += 1,
            Err(e) => {
                tracing::warn!(path = %it.path().display(), error = %e, "retention: not removed")
            }
        }
    }
    n
}

/// One retention pass (plan and remove), for the host's daily run; blocking.
pub fn run(home: &Home, t: &Targets, policy: &Policy) -> anyhow::Result<usize> {
    let items = plan(home, t, policy, chrono::Utc::now().timestamp())?;
    let n = remove(&items);
    if n > 0 {
        tracing::info!(removed = n, "retention: old files removed");
    }
    Ok(n)
}

/// The daily retention pass (this module): the first a minute after start
/// (`NANOCLAW_GC_FIRST_MS`), then every `NANOCLAW_GC_INTERVAL_MS` (a day).
pub(crate) async fn daily(host: std::sync::Arc<crate::Host>) {
    let first = host.settings.millis("NANOCLAW_GC_FIRST_MS", 60_000);
    let every = host.settings.millis("NANOCLAW_GC_INTERVAL_MS", 86_400_000);
    let mut next = tokio::time::Instant::now() + first;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = host.shutdown_signal() => return,
        }
        let policy = Policy::from_settings(&host.settings);
        let home = host.home.clone();
        let pass = async {
            let targets = host.db.call(|c| Ok(Targets::read(c)?)).await?;
            tokio::task::spawn_blocking(move || run(&home, &targets, &policy)).await?
        };
        if let Err(e) = pass.await {
            tracing::warn!(error = %e, "retention pass failed");
        }
        next += every;
    }
}
