//! Agent-to-agent messages: an outbound row addressed to `channel_type='agent'` becomes a chat
//! row in the target agent's session, and the answer finds its way back through
//! `source_session_id` to the exact session that asked.

use std::sync::Arc;

use nanoclaw_protocol::content::{Chat, Inbound};

use crate::db::{self, sessions::Session};
use crate::sessions::{self, NewInbound};
use crate::Host;

/// Where an agent-addressed row goes.
pub enum Target {
    /// The asking session (this row answers a message that came from another agent).
    Reply(Session),
    /// A new conversation with an agent group the sender may address.
    Agent(String),
}

/// Decides where a row from `from` addressed to agent group `to_group` goes. `None`: refused.
pub async fn target(
    host: &Arc<Host>,
    from: &Session,
    in_reply_to: Option<&str>,
    to_group: &str,
) -> anyhow::Result<Option<Target>> {
    if let Some(orig) = in_reply_to {
        let dir = host
            .home
            .session(&from.agent_group_id, &from.id)?
            .dir()
            .to_path_buf();
        let orig = orig.to_string();
        let source: Option<String> =
            tokio::task::spawn_blocking(move || -> anyhow::Result<Option<String>> {
                let c = nanoclaw_protocol::schema::open_rw(&dir.join("inbound.db"))?;
                use rusqlite::OptionalExtension;
                Ok(c.query_row(
                    "SELECT source_session_id FROM messages_in WHERE id=?1",
                    [&orig],
                    |r| r.get(0),
                )
                .optional()?
                .flatten())
            })
            .await??;
        if let Some(sid) = source {
            let s = host
                .db
                .call(move |c| Ok(db::sessions::get(c, &sid)?))
                .await?;
            // Only an answer to the agent that asked, and only back to that agent group.
            if let Some(s) = s.filter(|s| s.agent_group_id == to_group) {
                return Ok(Some(Target::Reply(s)));
            }
        }
    }
    let allowed = host.route_allowed(from, "agent", to_group, None).await?;
    Ok(allowed.then(|| Target::Agent(to_group.to_string())))
}

/// Writes the message into the target session and wakes it; returns the new row's id.
pub async fn deliver(
    host: &Arc<Host>,
    from: &Session,
    target: Target,
    text: &str,
) -> anyhow::Result<String> {
    let home = host.home.clone();
    let (from_ag, from_id) = (from.agent_group_id.clone(), from.id.clone());
    let (session, sender) = host
        .db
        .call(move |c| {
            let s = match target {
                Target::Reply(s) => s,
                Target::Agent(ag) => match db::sessions::find(c, &ag, None, None)? {
                    Some(s) => s,
                    None => db::atomic(c, |c| {
                        let s = db::sessions::create(c, &ag, None, None)?;
                        sessions::provision(&home, &s)?;
                        Ok(s)
                    })?,
                },
            };
            let name = db::agent_groups::get(c, &from_ag)?
                .map(|g| g.name)
                .unwrap_or_else(|| from_ag.clone());
            Ok((s, name))
        })
        .await?;
    let content = Inbound::Chat(Chat {
        sender,
        sender_id: format!("agent:{}", from.agent_group_id),
        text: text.to_string(),
        ..Default::default()
    })
    .to_json();
    let mut row = NewInbound::new("chat", content);
    row.channel_type = Some("agent".into());
    row.platform_id = Some(from.agent_group_id.clone());
    row.source_session_id = Some(from_id);
    let id = row.id.clone();
    let dir = host
        .home
        .session(&session.agent_group_id, &session.id)?
        .dir()
        .to_path_buf();
    sessions::write_inbound_batched(&dir, vec![row]).await?;
    host.wake(&session.id).await;
    Ok(id)
}
