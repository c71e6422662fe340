//! `unregistered_senders`: audit of dropped messages, in NanoClaw v2's shape: one row per chat
//! (channel type, platform id) with the latest reason, sender and a running count.

use rusqlite::{params, Connection};

/// Why a message was dropped.
#[derive(Debug, Clone, Copy)]
pub enum Reason {
    /// The chat has no wiring.
    UnknownChat,
    /// strict policy refused an unknown sender.
    UnknownSender,
    /// sender_scope=known refused the sender.
    NotInScope,
    /// Content could not be accepted (too large, malformed).
    BadInput,
    /// request_approval policy: the message waits for an approver.
    AwaitingApproval,
    /// Routing failed again and again (e.g. a session's files are broken): skipped, so it is
    /// not retried forever ahead of other chats.
    RouteFailed,
}

impl Reason {
    /// Stored value: v2's where v2 has one.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownChat => "no_agent_wired",
            Self::UnknownSender => "unknown_sender_strict",
            Self::AwaitingApproval => "unknown_sender_request_approval",
            Self::NotInScope => "sender_scope_not_member",
            Self::BadInput => "bad_input",
            Self::RouteFailed => "route_failed",
        }
    }
}

/// Records (or counts again) a dropped message.
#[allow(clippy::too_many_arguments)]
pub fn record(
    c: &Connection,
    channel_type: &str,
    platform_id: &str,
    user_id: Option<&str>,
    sender_name: Option<&str>,
    reason: Reason,
    messaging_group_id: Option<&str>,
    agent_group_id: Option<&str>,
) -> rusqlite::Result<()> {
    let now = super::now();
    c.prepare_cached(
        "INSERT INTO unregistered_senders(channel_type, platform_id, user_id, sender_name, reason,
            messaging_group_id, agent_group_id, message_count, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?8)
         ON CONFLICT(channel_type, platform_id) DO UPDATE SET
            user_id = COALESCE(excluded.user_id, user_id),
            sender_name = COALESCE(excluded.sender_name, sender_name),
            reason = excluded.reason,
            messaging_group_id = COALESCE(excluded.messaging_group_id, messaging_group_id),
            agent_group_id = COALESCE(excluded.agent_group_id, agent_group_id),
            message_count = message_count + 1, last_seen = excluded.last_seen",
    )?
    .execute(params![
        channel_type,
        platform_id,
        user_id,
        sender_name,
        reason.as_str(),
        messaging_group_id,
        agent_group_id,
        now
    ])?;
    Ok(())
}
