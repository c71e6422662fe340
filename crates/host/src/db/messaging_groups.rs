//! `messaging_groups`: one chat on one platform.

use nanoclaw_protocol::status::UnknownSenderPolicy;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

/// One chat.
#[derive(Debug, Clone, Serialize)]
pub struct MessagingGroup {
    /// Id.
    pub id: String,
    /// Channel (`cli`, `telegram`…).
    pub channel_type: String,
    /// Namespaced platform id (`telegram:123`).
    pub platform_id: String,
    /// Display name.
    pub name: Option<String>,
    /// Group chat (vs DM).
    pub is_group: bool,
    /// What happens to a message from a sender the chat does not know.
    pub unknown_sender_policy: UnknownSenderPolicy,
    /// Creation time.
    pub created_at: String,
    /// When the owner refused the chat (v2): it then stays quiet.
    pub denied_at: Option<String>,
}

const COLS: &str =
    "id, channel_type, platform_id, name, is_group, unknown_sender_policy, created_at";

fn from_row(r: &Row) -> rusqlite::Result<MessagingGroup> {
    Ok(MessagingGroup {
        id: r.get(0)?,
        channel_type: r.get(1)?,
        platform_id: r.get(2)?,
        name: r.get(3)?,
        is_group: super::or(r, 4, false)?,
        // A policy v2 spelled otherwise reads as strict, as admission always treated it.
        unknown_sender_policy: super::choice::read(r, 5, "messaging_groups.unknown_sender_policy")?,
        created_at: r.get(6)?,
        denied_at: r.get(7)?,
    })
}

/// By id.
pub fn get(c: &Connection, id: &str) -> rusqlite::Result<Option<MessagingGroup>> {
    c.query_row(
        &format!("SELECT {COLS}, denied_at FROM messaging_groups WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

/// By (channel_type, platform_id).
pub fn find(
    c: &Connection,
    channel_type: &str,
    platform_id: &str,
) -> rusqlite::Result<Option<MessagingGroup>> {
    c.query_row(
        &format!(
            "SELECT {COLS}, denied_at FROM messaging_groups WHERE channel_type = ?1 AND platform_id = ?2"
        ),
        [channel_type, platform_id],
        from_row,
    )
    .optional()
}

/// Creates a chat with the given unknown-sender policy.
pub fn create(
    c: &Connection,
    channel_type: &str,
    platform_id: &str,
    name: Option<&str>,
    is_group: bool,
    policy: UnknownSenderPolicy,
) -> rusqlite::Result<MessagingGroup> {
    let g = MessagingGroup {
        id: nanoclaw_protocol::new_id("mg"),
        channel_type: channel_type.into(),
        platform_id: platform_id.into(),
        name: name.map(str::to_string),
        is_group,
        unknown_sender_policy: policy,
        created_at: super::now(),
        denied_at: None,
    };
    c.execute(
        &format!("INSERT INTO messaging_groups({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![
            g.id,
            g.channel_type,
            g.platform_id,
            g.name,
            g.is_group,
            g.unknown_sender_policy,
            g.created_at
        ],
    )?;
    Ok(g)
}

/// Finds the chat or records it (an unknown chat gets the strict policy and no wiring).
pub fn find_or_create(
    c: &Connection,
    channel_type: &str,
    platform_id: &str,
    name: Option<&str>,
    is_group: bool,
) -> rusqlite::Result<(MessagingGroup, bool)> {
    if let Some(g) = find(c, channel_type, platform_id)? {
        return Ok((g, false));
    }
    Ok((
        create(
            c,
            channel_type,
            platform_id,
            name,
            is_group,
            UnknownSenderPolicy::Strict,
        )?,
        true,
    ))
}
