//! `sessions`: one conversation = one folder = one runner when running.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

/// One session.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    /// Id (also the folder name).
    pub id: String,
    /// Agent group.
    pub agent_group_id: String,
    /// Chat (None for agent-shared sessions).
    pub messaging_group_id: Option<String>,
    /// Thread (per-thread sessions).
    pub thread_id: Option<String>,
    /// Provider override.
    pub agent_provider: Option<String>,
    /// active | closed.
    pub status: String,
    /// running | idle | stopped.
    pub container_status: String,
    /// Last activity.
    pub last_active: Option<String>,
    /// Creation time.
    pub created_at: String,
}

const COLS: &str =
    "id, agent_group_id, messaging_group_id, thread_id, agent_provider, status, container_status, last_active, created_at";

fn from_row(r: &Row) -> rusqlite::Result<Session> {
    Ok(Session {
        id: r.get(0)?,
        agent_group_id: r.get(1)?,
        messaging_group_id: r.get(2)?,
        thread_id: r.get(3)?,
        agent_provider: r.get(4)?,
        status: super::or(r, 5, "active".into())?,
        container_status: super::or(r, 6, "stopped".into())?,
        last_active: r.get(7)?,
        created_at: r.get(8)?,
    })
}

/// By id.
pub fn get(c: &Connection, id: &str) -> rusqlite::Result<Option<Session>> {
    c.prepare_cached(&format!("SELECT {COLS} FROM sessions WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()
}

/// The active session for a key (`mg`/`thread` None mean "not part of the key").
pub fn find(
    c: &Connection,
    agent_group: &str,
    mg: Option<&str>,
    thread: Option<&str>,
) -> rusqlite::Result<Option<Session>> {
    c.prepare_cached(&format!(
        "SELECT {COLS} FROM sessions WHERE agent_group_id=?1 AND messaging_group_id IS ?2
         AND thread_id IS ?3 AND status='active' ORDER BY created_at LIMIT 1"
    ))?
    .query_row(params![agent_group, mg, thread], from_row)
    .optional()
}

/// Inserts a new active session.
pub fn create(
    c: &Connection,
    agent_group: &str,
    mg: Option<&str>,
    thread: Option<&str>,
) -> rusqlite::Result<Session> {
    let s = Session {
        id: nanoclaw_protocol::new_id("sess"),
        agent_group_id: agent_group.into(),
        messaging_group_id: mg.map(Into::into),
        thread_id: thread.map(Into::into),
        agent_provider: None,
        status: "active".into(),
        container_status: "stopped".into(),
        last_active: None,
        created_at: super::now(),
    };
    c.execute(
        &format!("INSERT INTO sessions({COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"),
        params![
            s.id,
            s.agent_group_id,
            s.messaging_group_id,
            s.thread_id,
            s.agent_provider,
            s.status,
            s.container_status,
            s.last_active,
            s.created_at
        ],
    )?;
    Ok(s)
}

/// Every active session.
pub fn active(c: &Connection) -> rusqlite::Result<Vec<Session>> {
    let mut st = c.prepare(&format!(
        "SELECT {COLS} FROM sessions WHERE status='active'"
    ))?;
    let rows = st.query_map([], from_row)?;
    rows.collect()
}

/// Records the runner state.
pub fn set_container_status(c: &Connection, id: &str, status: &str) -> rusqlite::Result<()> {
    c.prepare_cached("UPDATE sessions SET container_status=?2, last_active=?3 WHERE id=?1")?
        .execute(params![id, status, super::now()])?;
    Ok(())
}
