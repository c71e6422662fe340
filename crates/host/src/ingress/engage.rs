//! Step 3 of ingress: which of an admitted message's wirings engage (pattern, mention,
//! sticky threads), whether the sender is in each wiring's scope, and the session each
//! engaged (or accumulating) wiring writes into.

use std::collections::HashMap;
use std::sync::Mutex;

use nanoclaw_protocol::status::{EngageMode, IgnoredMessagePolicy, SenderScope, SessionMode};
use regex::Regex;
use rusqlite::{params, Connection};

use super::admit::{audit, Admitted};
use crate::channels::InboundEvent;
use crate::db::{self, unregistered::Reason};
use crate::{sessions, Host};

/// Compiled engage patterns, cached by source.
#[derive(Default)]
pub struct Router {
    patterns: Mutex<HashMap<String, Option<Regex>>>,
}

impl Router {
    fn matches(&self, pattern: &str, text: &str) -> bool {
        let mut cache = self.patterns.lock().unwrap_or_else(|p| p.into_inner());
        let re = cache
            .entry(pattern.to_string())
            .or_insert_with(|| match Regex::new(pattern) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(pattern, error = %e, "invalid engage_pattern; wiring never engages");
                    None
                }
            });
        re.as_ref().is_some_and(|r| r.is_match(text))
    }
}

/// A session the message is written into.
pub(super) struct Plan {
    pub session: db::sessions::Session,
    pub trigger: bool,
    /// The chat's destination name for the agent, when its session hears more than one chat
    /// (the agent answers there by that name).
    pub from: Option<String>,
}

/// The sessions an admitted message goes to (none engaged: nothing, silently).
pub(super) fn plans(
    host: &Host,
    c: &mut Connection,
    ev: &InboundEvent,
    a: &Admitted,
) -> anyhow::Result<Vec<Plan>> {
    let mut plans = Vec::new();
    for w in &a.wirings {
        let engaged = match w.engage_mode {
            EngageMode::Pattern => host
                .router
                .matches(w.engage_pattern.as_deref().unwrap_or("."), &ev.text),
            EngageMode::MentionSticky => {
                ev.is_mention
                    || !ev.is_group
                    || ev
                        .thread_id
                        .as_deref()
                        .is_some_and(|t| sticky(c, &w.id, t).unwrap_or(false))
            }
            EngageMode::Mention => ev.is_mention || !ev.is_group,
        };
        if w.sender_scope == SenderScope::Known
            && !db::users::is_known_to(c, &a.user, &w.agent_group_id)?
        {
            audit(c, ev, a, Reason::NotInScope, Some(&w.agent_group_id))?;
            continue;
        }
        if engaged && w.engage_mode == EngageMode::MentionSticky {
            if let Some(t) = ev.thread_id.as_deref() {
                c.execute(
                    "INSERT OR IGNORE INTO sticky_threads(wiring_id, thread_id, created_at) VALUES (?1, ?2, ?3)",
                    params![w.id, t, db::now()],
                )?;
            }
        }
        let trigger = if engaged {
            true
        } else if w.ignored_message_policy == IgnoredMessagePolicy::Accumulate {
            false
        } else {
            continue;
        };
        let session = sessions::resolve(c, &host.home, w, ev.thread_id.as_deref())?;
        let from = origin_name(c, w, &w.messaging_group_id)?;
        plans.push(Plan {
            session,
            trigger,
            from,
        });
    }
    Ok(plans)
}

/// The destination name of chat `mg` for agent group `ag`, when that agent's session can
/// hear more than one chat: an agent-shared session, or an agent with several channels.
fn origin_name(
    c: &Connection,
    w: &db::wirings::Wiring,
    mg: &str,
) -> rusqlite::Result<Option<String>> {
    use rusqlite::OptionalExtension;
    let channels: i64 = c
        .prepare_cached("SELECT COUNT(*) FROM agent_destinations WHERE agent_group_id = ?1 AND target_type = 'channel'")?
        .query_row([&w.agent_group_id], |r| r.get(0))?;
    if w.session_mode != SessionMode::AgentShared && channels < 2 {
        return Ok(None);
    }
    c.prepare_cached(
        "SELECT local_name FROM agent_destinations WHERE agent_group_id = ?1 AND target_type = 'channel' AND target_id = ?2 ORDER BY local_name LIMIT 1",
    )?
    .query_row(params![w.agent_group_id, mg], |r| r.get(0))
    .optional()
}

fn sticky(c: &Connection, wiring: &str, thread: &str) -> rusqlite::Result<bool> {
    c.prepare_cached(
        "SELECT EXISTS(SELECT 1 FROM sticky_threads WHERE wiring_id=?1 AND thread_id=?2)",
    )?
    .query_row([wiring, thread], |r| r.get(0))
}
