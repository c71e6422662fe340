//! `agent_destinations`: the names an agent can address (chats and other agents).

use rusqlite::{params, Connection};
use serde::Serialize;

/// A destination resolved for projection into a session's inbound.db.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Destination {
    /// Local name the agent uses.
    pub name: String,
    /// Human name.
    pub display_name: Option<String>,
    /// channel | agent.
    pub target_type: String,
    /// For channels.
    pub channel_type: Option<String>,
    /// For channels.
    pub platform_id: Option<String>,
    /// For agents.
    pub agent_group_id: Option<String>,
}

/// Local name for a chat: its name or platform id, normalised to a safe identifier.
fn local_name_for(name: Option<&str>, channel_type: &str, platform_id: &str) -> String {
    let base = name.unwrap_or(platform_id);
    nanoclaw_protocol::names::normalize_folder(base)
        .or_else(|_| {
            nanoclaw_protocol::names::normalize_folder(&format!("{channel_type}-{platform_id}"))
        })
        .unwrap_or_else(|_| channel_type.to_string())
}

/// Makes sure `agent_group` has a destination naming the chat `mg` (idempotent).
pub fn ensure_for_wiring(c: &Connection, agent_group: &str, mg: &str) -> anyhow::Result<()> {
    let exists: bool = c.query_row(
        "SELECT EXISTS(SELECT 1 FROM agent_destinations WHERE agent_group_id=?1 AND target_type='channel' AND target_id=?2)",
        params![agent_group, mg],
        |r| r.get(0),
    )?;
    if exists {
        return Ok(());
    }
    let (name, ct, pid): (Option<String>, String, String) = c.query_row(
        "SELECT name, channel_type, platform_id FROM messaging_groups WHERE id=?1",
        [mg],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let base = local_name_for(name.as_deref(), &ct, &pid);
    // Names are unique per agent group: suffix on collision.
    let mut local = base.clone();
    let mut n = 2;
    while c.query_row(
        "SELECT EXISTS(SELECT 1 FROM agent_destinations WHERE agent_group_id=?1 AND local_name=?2)",
        params![agent_group, local],
        |r| r.get::<_, bool>(0),
    )? {
        local = format!("{base}-{n}");
        n += 1;
    }
    c.execute(
        "INSERT INTO agent_destinations(agent_group_id, local_name, target_type, target_id, created_at)
         VALUES (?1, ?2, 'channel', ?3, ?4)",
        params![agent_group, local, mg, super::now()],
    )?;
    Ok(())
}

/// Every destination of an agent group, resolved to routing fields.
pub fn for_agent_group(c: &Connection, agent_group: &str) -> rusqlite::Result<Vec<Destination>> {
    let mut st = c.prepare_cached(
        "SELECT d.local_name, d.target_type, d.target_id,
                mg.name, mg.channel_type, mg.platform_id, ag.name
         FROM agent_destinations d
         LEFT JOIN messaging_groups mg ON d.target_type='channel' AND mg.id = d.target_id
         LEFT JOIN agent_groups ag ON d.target_type='agent' AND ag.id = d.target_id
         WHERE d.agent_group_id = ?1 ORDER BY d.local_name",
    )?;
    let rows = st.query_map([agent_group], |r| {
        let target_type: String = r.get(1)?;
        let target_id: String = r.get(2)?;
        let agent = target_type == "agent";
        Ok(Destination {
            name: r.get(0)?,
            display_name: if agent { r.get(6)? } else { r.get(3)? },
            channel_type: if agent {
                Some("agent".into())
            } else {
                r.get(4)?
            },
            platform_id: if agent {
                Some(target_id.clone())
            } else {
                r.get(5)?
            },
            agent_group_id: agent.then_some(target_id),
            target_type,
        })
    })?;
    rows.collect()
}
