//! `agent_groups`: a workspace (folder) with its instructions, memory and container config.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

/// One agent group.
#[derive(Debug, Clone, Serialize)]
pub struct AgentGroup {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Folder under `groups/` (validated).
    pub folder: String,
    /// Provider override.
    pub agent_provider: Option<String>,
    /// Creation time.
    pub created_at: String,
}

const COLS: &str = "id, name, folder, agent_provider, created_at";

fn from_row(r: &Row) -> rusqlite::Result<AgentGroup> {
    Ok(AgentGroup {
        id: r.get(0)?,
        name: r.get(1)?,
        folder: r.get(2)?,
        agent_provider: r.get(3)?,
        created_at: r.get(4)?,
    })
}

/// By id.
pub fn get(c: &Connection, id: &str) -> rusqlite::Result<Option<AgentGroup>> {
    c.query_row(
        &format!("SELECT {COLS} FROM agent_groups WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

/// By folder.
pub fn by_folder(c: &Connection, folder: &str) -> rusqlite::Result<Option<AgentGroup>> {
    c.query_row(
        &format!("SELECT {COLS} FROM agent_groups WHERE folder = ?1"),
        [folder],
        from_row,
    )
    .optional()
}

/// Creates an agent group; the folder must be a valid name.
pub fn create(c: &Connection, name: &str, folder: &str) -> anyhow::Result<AgentGroup> {
    nanoclaw_protocol::names::validate(folder)?;
    let g = AgentGroup {
        id: nanoclaw_protocol::new_id("ag"),
        name: name.to_string(),
        folder: folder.to_string(),
        agent_provider: None,
        created_at: super::now(),
    };
    c.execute(
        &format!("INSERT INTO agent_groups({COLS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
        params![g.id, g.name, g.folder, g.agent_provider, g.created_at],
    )?;
    Ok(g)
}
