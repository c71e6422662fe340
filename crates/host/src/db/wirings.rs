//! `messaging_group_agents`: which agent groups a chat reaches, and how.

use nanoclaw_protocol::status::{EngageMode, IgnoredMessagePolicy, SenderScope, SessionMode};
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
    /// Which messages wake the agent.
    pub engage_mode: EngageMode,
    /// Regex for `pattern`.
    pub engage_pattern: Option<String>,
    /// Whose messages reach the agent.
    pub sender_scope: SenderScope,
    /// What becomes of a message that does not engage.
    pub ignored_message_policy: IgnoredMessagePolicy,
    /// Which session the chat's messages go to.
    pub session_mode: SessionMode,
    /// Higher first.
    pub priority: i64,
    /// Creation time.
    pub created_at: String,
}

/// Columns in insert order.
pub const COLS: &str = "id, messaging_group_id, agent_group_id, engage_mode, engage_pattern, sender_scope, ignored_message_policy, session_mode, priority, created_at";

// The mode and policy columns read through `choice`: NULL (v2 leaves them nullable) and a
// spelling we do not know both read as the column's default, which is what routing always did
// with them, so one odd row never stops a chat's routing.
fn from_row(r: &Row) -> rusqlite::Result<Wiring> {
    use super::choice::read;
    Ok(Wiring {
        id: r.get(0)?,
        messaging_group_id: r.get(1)?,
        agent_group_id: r.get(2)?,
        engage_mode: read(r, 3, "messaging_group_agents.engage_mode")?,
        engage_pattern: r.get(4)?,
        sender_scope: read(r, 5, "messaging_group_agents.sender_scope")?,
        ignored_message_policy: read(r, 6, "messaging_group_agents.ignored_message_policy")?,
        session_mode: read(r, 7, "messaging_group_agents.session_mode")?,
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
    pub engage_mode: EngageMode,
    /// Pattern.
    pub engage_pattern: Option<&'a str>,
    /// Sender scope.
    pub sender_scope: SenderScope,
    /// Ignored policy.
    pub ignored_message_policy: IgnoredMessagePolicy,
    /// Session mode.
    pub session_mode: SessionMode,
    /// Priority.
    pub priority: i64,
}

impl<'a> NewWiring<'a> {
    /// Defaults: mention, all, drop, shared, priority 0.
    pub fn new(messaging_group_id: &'a str, agent_group_id: &'a str) -> Self {
        Self {
            messaging_group_id,
            agent_group_id,
            engage_mode: EngageMode::Mention,
            engage_pattern: None,
            sender_scope: SenderScope::All,
            ignored_message_policy: IgnoredMessagePolicy::Drop,
            session_mode: SessionMode::Shared,
            priority: 0,
        }
    }

    /// Engages on every message (pattern `.`), the other defaults as [`NewWiring::new`].
    pub fn every_message(messaging_group_id: &'a str, agent_group_id: &'a str) -> Self {
        Self {
            engage_mode: EngageMode::Pattern,
            engage_pattern: Some("."),
            ..Self::new(messaging_group_id, agent_group_id)
        }
    }
}

/// Creates a wiring and, in the same transaction, the agent's destination for the chat.
pub fn create(c: &Connection, w: &NewWiring) -> anyhow::Result<String> {
    if w.engage_mode == EngageMode::Pattern {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A wiring v2 left NULL or spelled in a way we do not know still routes, with the
    /// defaults routing always gave such values.
    #[test]
    fn odd_or_missing_modes_read_as_the_defaults() {
        let mut c = Connection::open_in_memory().unwrap();
        super::super::migrations::run(&mut c).unwrap();
        let ag = super::super::agent_groups::create(&c, "A", "a").unwrap();
        let mg = super::super::messaging_groups::find_or_create(&c, "test", "t:1", None, true)
            .unwrap()
            .0;
        let mut w = NewWiring::new(&mg.id, &ag.id);
        w.engage_mode = EngageMode::MentionSticky;
        w.session_mode = SessionMode::PerThread;
        create(&c, &w).unwrap();
        let read = |c: &Connection| for_messaging_group(c, &mg.id).unwrap().remove(0);
        let r = read(&c);
        assert_eq!(r.engage_mode, EngageMode::MentionSticky);
        assert_eq!(r.session_mode, SessionMode::PerThread);

        c.execute(
            "UPDATE messaging_group_agents SET engage_mode = 'always', sender_scope = NULL,
               ignored_message_policy = 'keep', session_mode = 'Per-Thread'",
            [],
        )
        .unwrap();
        let r = read(&c);
        assert_eq!(r.engage_mode, EngageMode::Mention);
        assert_eq!(r.sender_scope, SenderScope::All);
        assert_eq!(r.ignored_message_policy, IgnoredMessagePolicy::Drop);
        assert_eq!(r.session_mode, SessionMode::Shared);

        c.execute(
            "UPDATE messaging_groups SET unknown_sender_policy = 'open'",
            [],
        )
        .unwrap();
        let g = super::super::messaging_groups::get(&c, &mg.id)
            .unwrap()
            .unwrap();
        assert_eq!(
            g.unknown_sender_policy,
            nanoclaw_protocol::status::UnknownSenderPolicy::Strict
        );
    }
}
