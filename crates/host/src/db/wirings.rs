//! `messaging_group_agents`: which agent groups a chat reaches, and how.

use rusqlite::{params, Connection, Row};
use serde::Serialize;

/// One wiring.
#[derive(Debug, Clone, Serialize)]
pub struct Wiring {
    /// Id.
    pub id: String,
    /// Chat.
    pub messaging_group_id: String,
    /// Agent.
    pub agent_group_id: String,
    /// pattern | mention | mention-sticky.
    pub engage_mode: String,
    /// Regex for `pattern`.
    pub engage_pattern: Option<String>,
    /// all | known.
    pub sender_scope: String,
    /// drop | accumulate.
    pub ignored_message_policy: String,
    /// shared | per-thread | agent-shared.
    pub session_mode: String,
    /// Higher first.
    pub priority: i64,
    /// Creation time.
    pub created_at: String,
}

/// Columns in insert order.
pub const COLS: &str = "id, messaging_group_id, agent_group_id, engage_mode, engage_pattern, sender_scope, ignored_message_policy, session_mode, priority, created_at";

fn from_row(r: &Row) -> rusqlite::Result<Wiring> {
    Ok(Wiring {
        id: r.get(0)?,
        messaging_group_id: r.get(1)?,
        agent_group_id: r.get(2)?,
        engage_mode: super::or(r, 3, "mention".into())?,
        engage_pattern: r.get(4)?,
        sender_scope: super::or(r, 5, "all".into())?,
        ignored_message_policy: super::or(r, 6, "drop".into())?,
        session_mode: super::or(r, 7, "shared".into())?,
        priority: super::or(r, 8, 0)?,
        created_at: r.get(9)?,
    })
}

/// Wirings of a chat, highest priority first.
pub fn for_messaging_group(c: &Connection, mg: &str) -> rusqlite::Result<Vec<Wiring>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLS} FROM messaging_group_agents WHERE messaging_group_id = ?1
         ORDER BY priority DESC, created_at, id"
    ))?;
    let rows = st.query_map([mg], from_row)?;
    rows.collect()
}

/// A wiring to create; defaults as in NanoClaw v2.
#[derive(Debug, Clone)]
pub struct NewWiring<'a> {
    /// Chat.
    pub messaging_group_id: &'a str,
    /// Agent.
    pub agent_group_id: &'a str,
    /// Engage mode.
    pub engage_mode: &'a str,
    /// Pattern.
    pub engage_pattern: Option<&'a str>,
    /// Sender scope.
    pub sender_scope: &'a str,
    /// Ignored policy.
    pub ignored_message_policy: &'a str,
    /// Session mode.
    pub session_mode: &'a str,
    /// Priority.
    pub priority: i64,
}

impl<'a> NewWiring<'a> {
    /// Defaults: mention, all, drop, shared, priority 0.
    pub fn new(messaging_group_id: &'a str, agent_group_id: &'a str) -> Self {
        Self {
            messaging_group_id,
            agent_group_id,
            engage_mode: "mention",
            engage_pattern: None,
            sender_scope: "all",
            ignored_message_policy: "drop",
            session_mode: "shared",
            priority: 0,
        }
    }

    /// Engages on every message (pattern `.`), the other defaults as [`NewWiring::new`].
    pub fn every_message(messaging_group_id: &'a str, agent_group_id: &'a str) -> Self {
        Self {
            engage_mode: "pattern",
            engage_pattern: Some("."),
            ..Self::new(messaging_group_id, agent_group_id)
        }
    }
}

/// Creates a wiring and, in the same transaction, the agent's destination for the chat.
pub fn create(c: &Connection, w: &NewWiring) -> anyhow::Result<String> {
    if w.engage_mode == "pattern" {
        regex::Regex::new(w.engage_pattern.unwrap_or("."))
            .map_err(|e| anyhow::anyhow!("engage_pattern is not a valid regex: {e}"))?;
    }
    let id = nanoclaw_protocol::new_id("wire");
    super::atomic(c, |tx| {
        tx.execute(
        &format!("INSERT INTO messaging_group_agents({COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"),
        params![
            id,
            w.messaging_group_id,
            w.agent_group_id,
            w.engage_mode,
            w.engage_pattern,
            w.sender_scope,
            w.ignored_message_policy,
            w.session_mode,
            w.priority,
            super::now()
        ],
    )?;
        super::destinations::ensure_for_wiring(tx, w.agent_group_id, w.messaging_group_id)?;
        Ok(())
    })?;
    Ok(id)
}
