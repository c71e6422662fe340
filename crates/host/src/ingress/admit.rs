//! Step 1 of ingress: is this message let in at all? The size limit, the chat (wired, denied,
//! unknown), a pairing code, and the chat's unknown-sender policy. Nothing later — question
//! answers, engage rules, sessions — sees a message this step refused.

use std::sync::Arc;

use nanoclaw_protocol::status::UnknownSenderPolicy;
use rusqlite::{params, Connection};

use super::{user_id, RouteOutcome};
use crate::channels::InboundEvent;
use crate::db::{self, messaging_groups::MessagingGroup, unregistered::Reason, wirings::Wiring};
use crate::Host;

/// What `RouteOutcome::dropped` says when the message was a pairing code.
pub const PAIRED: &str = "paired: you are now the owner and this chat talks to your main agent";

/// Longest accepted message text in bytes; longer messages are refused with a clear error.
pub const MAX_TEXT_BYTES: usize = 512 * 1024;

/// An admitted message: its chat, its sender's user id and the chat's wirings.
pub(super) struct Admitted {
    pub mg: MessagingGroup,
    pub user: String,
    pub wirings: Vec<Wiring>,
}

/// Refuses a message over [`MAX_TEXT_BYTES`] (audited), before anything else is looked at.
pub(super) async fn too_large(
    host: &Arc<Host>,
    ev: &InboundEvent,
) -> anyhow::Result<Option<RouteOutcome>> {
    if ev.text.len() <= MAX_TEXT_BYTES {
        return Ok(None);
    }
    let (ct, pid, user) = (ev.channel_type.clone(), ev.platform_id.clone(), user_id(ev));
    host.db
        .call(move |c| {
            Ok(db::unregistered::record(
                c,
                &ct,
                &pid,
                Some(&user),
                None,
                Reason::BadInput,
                None,
                None,
            )?)
        })
        .await?;
    tracing::warn!(channel = %ev.channel_type, bytes = ev.text.len(), "message over the size limit dropped");
    Ok(Some(RouteOutcome {
        accepted: vec![],
        dropped: Some(format!(
            "message too large: {} bytes (limit {MAX_TEXT_BYTES})",
            ev.text.len()
        )),
        notice: None,
    }))
}

/// Records a message that went no further, for `ctl dropped-messages`.
pub(super) fn audit(
    c: &Connection,
    ev: &InboundEvent,
    a: &Admitted,
    reason: Reason,
    agent_group: Option<&str>,
) -> rusqlite::Result<()> {
    refused(c, ev, &a.user, &a.mg.id, reason, agent_group)
}

fn refused(
    c: &Connection,
    ev: &InboundEvent,
    user: &str,
    mg: &str,
    reason: Reason,
    agent_group: Option<&str>,
) -> rusqlite::Result<()> {
    db::unregistered::record(
        c,
        &ev.channel_type,
        &ev.platform_id,
        Some(user),
        Some(&ev.sender_name),
        reason,
        Some(mg),
        agent_group,
    )
}

/// The chat and sender policy, under the central DB lock (the chat and user rows are created
/// on first sight). `Err(reason)`: refused, with what to tell the sender (if anything).
pub(super) fn admit(
    c: &mut Connection,
    ev: &InboundEvent,
) -> anyhow::Result<Result<Admitted, Option<String>>> {
    let (mg, _) = db::messaging_groups::find_or_create(
        c,
        &ev.channel_type,
        &ev.platform_id,
        ev.chat_name.as_deref(),
        ev.is_group,
    )?;
    let user = user_id(ev);
    db::users::ensure(c, &user, &ev.channel_type, Some(&ev.sender_name))?;
    if crate::access::pairing::try_pair(c, ev, &mg.id, &user)? {
        return Ok(Err(Some(PAIRED.into())));
    }
    let wirings = db::wirings::for_messaging_group(c, &mg.id)?;
    if wirings.is_empty() {
        if mg.denied_at.is_some() {
            // The owner refused this chat (NanoClaw v2's channel registration): it stays quiet.
            tracing::debug!(chat = %mg.id, "message from a denied chat dropped");
            return Ok(Err(None));
        }
        refused(c, ev, &user, &mg.id, Reason::UnknownChat, None)?;
        tracing::info!(channel = %ev.channel_type, platform = %ev.platform_id, "message from an unwired chat dropped");
        return Ok(Err(Some("this chat is not wired to any agent".into())));
    }
    if !db::users::is_known_in_chat(c, &user, &mg.id)? {
        match mg.unknown_sender_policy {
            UnknownSenderPolicy::Public => {}
            UnknownSenderPolicy::RequestApproval => {
                let ag = &wirings[0].agent_group_id;
                refused(c, ev, &user, &mg.id, Reason::AwaitingApproval, Some(ag))?;
                return Ok(Err(Some(park_for_approval(c, ev, &mg.id, ag, &user)?)));
            }
            UnknownSenderPolicy::Strict => {
                refused(c, ev, &user, &mg.id, Reason::UnknownSender, None)?;
                tracing::info!(sender = %user, chat = %mg.id, "unknown sender dropped (strict)");
                return Ok(Err(Some(
                    "you are not allowed to talk to this agent".into(),
                )));
            }
        }
    }
    Ok(Ok(Admitted { mg, user, wirings }))
}

/// Parks an unknown sender's message in `pending_sender_approvals`, in NanoClaw v2's shape (the
/// event as v2's InboundEvent JSON, the approver chosen now, one in flight per chat and sender),
/// and returns what the sender is told.
fn park_for_approval(
    c: &Connection,
    ev: &InboundEvent,
    mg: &str,
    agent_group: &str,
    user: &str,
) -> anyhow::Result<String> {
    let Some(approver) = db::users::approvers(c, agent_group)?.into_iter().next() else {
        tracing::warn!(sender = %user, agent_group, "unknown sender dropped: request_approval, but the agent group has no owner or admin to approve");
        return Ok("you are not allowed to talk to this agent yet, and no admin can approve you: ask the owner".into());
    };
    let content = serde_json::json!({"text": ev.text, "sender": ev.sender_name, "senderId": ev.sender_handle});
    let event = serde_json::json!({
        "channelType": ev.channel_type,
        "platformId": ev.platform_id,
        "threadId": ev.thread_id,
        "message": {
            "id": ev.platform_message_id,
            "kind": "chat",
            "content": content.to_string(),
            "timestamp": db::now(),
            "isMention": ev.is_mention,
            "isGroup": ev.is_group,
        },
    });
    let parked = c.execute(
        "INSERT OR IGNORE INTO pending_sender_approvals(id, messaging_group_id, agent_group_id,
           sender_identity, sender_name, original_message, approver_user_id, created_at, title, options_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            nanoclaw_protocol::new_id("psa"),
            mg,
            agent_group,
            user,
            ev.sender_name,
            event.to_string(),
            approver,
            db::now(),
            "👤 New sender",
            serde_json::json!([
                {"label": "Allow", "selectedLabel": "✅ Allowed", "value": "approve"},
                {"label": "Deny", "selectedLabel": "❌ Denied", "value": "reject"},
            ])
            .to_string(),
        ],
    )?;
    if parked == 1 {
        tracing::info!(sender = %user, approver, "unknown sender parked for approval");
    } else {
        tracing::info!(sender = %user, "unknown sender already waits for approval; this message is not parked again");
    }
    Ok("your message is waiting for an admin's approval".into())
}
