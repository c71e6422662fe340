//! Step 4 of ingress: the message as a chat row (with what it quotes and which chat spoke),
//! its attachments copied into each session's inbox, the rows written into each session's
//! inbound.db, and the wake.

use std::sync::Arc;

use nanoclaw_protocol::content::{Chat, Inbound};

use super::engage::Plan;
use super::{stable_id, user_id, Accepted, RouteOutcome};
use crate::channels::InboundEvent;
use crate::sessions::{self, NewInbound};
use crate::Host;

/// Longest quote of a replied-to message shown to the agent, in characters.
const QUOTE_CHARS: usize = 280;

/// Writes the message into every planned session; `dropped` is what the outcome reports.
pub(super) async fn write(
    host: &Arc<Host>,
    ev: &InboundEvent,
    plans: Vec<Plan>,
    dropped: Option<String>,
) -> anyhow::Result<RouteOutcome> {
    let mut extra = serde_json::Map::new();
    // Kept so the agent can react to or quote this message on its platform later.
    if let Some(m) = &ev.platform_message_id {
        extra.insert("platformMessageId".into(), m.clone().into());
    }
    // What it answers, in NanoClaw v2's shape: the formatter shows it as a quote.
    if let Some(r) = &ev.reply_to {
        let text: Option<String> = r.text.as_ref().map(|t| {
            let mut q: String = t.chars().take(QUOTE_CHARS).collect();
            if t.chars().count() > QUOTE_CHARS {
                q.push('…');
            }
            q
        });
        extra.insert(
            "replyTo".into(),
            serde_json::json!({"id": r.platform_message_id, "sender": r.sender, "text": text}),
        );
    }
    let chat = Chat {
        sender: ev.sender_name.clone(),
        sender_id: user_id(ev),
        text: ev.text.clone(),
        is_mention: Some(ev.is_mention),
        extra,
        ..Default::default()
    };
    let content = Inbound::Chat(chat.clone()).to_json();
    let mut out = RouteOutcome {
        accepted: Vec::with_capacity(plans.len()),
        dropped,
        notice: None,
    };
    let mut failed: Option<anyhow::Error> = None;
    for p in plans {
        // Which chat spoke, for a session that hears several.
        let content = match &p.from {
            Some(name) => {
                let mut c = chat.clone();
                c.extra.insert("from".into(), name.clone().into());
                Inbound::Chat(c).to_json()
            }
            None => content.clone(),
        };
        let mut row = NewInbound::new("chat", content.clone());
        if let Some(pm) = &ev.platform_message_id {
            row.id = stable_id(&ev.channel_type, &ev.platform_id, pm);
        }
        if !ev.attachments.is_empty() {
            let paths = host
                .home
                .session(&p.session.agent_group_id, &p.session.id)?;
            // Copies of up to 20 MB: off the async workers.
            let (c, id, files) = (content.clone(), row.id.clone(), ev.attachments.clone());
            row.content =
                tokio::task::spawn_blocking(move || with_attachments(&c, &paths, &id, &files))
                    .await??;
        }
        row.trigger = p.trigger;
        row.channel_type = Some(ev.channel_type.clone());
        row.platform_id = Some(ev.platform_id.clone());
        row.thread_id = ev.thread_id.clone();
        let id = row.id.clone();
        let dir = host
            .home
            .session(&p.session.agent_group_id, &p.session.id)?
            .dir()
            .to_path_buf();
        // One session's broken state fails that session only: the others of a fan-out are
        // still served. Only when nothing could be written is the event an error (retried).
        let written = match sessions::write_inbound_batched(&dir, vec![row]).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(session = %p.session.id, error = %e, "routing into one session failed; the others are still served");
                failed.get_or_insert(e);
                continue;
            }
        };
        if written.is_empty() {
            tracing::debug!(id = %id, "message already routed (redelivery); skipped");
            continue;
        }
        if p.trigger {
            host.wake(&p.session.id).await;
            host.start_typing(
                &ev.channel_type,
                &ev.platform_id,
                ev.thread_id.as_deref(),
                &id,
            );
        }
        out.accepted.push(Accepted {
            session_id: p.session.id,
            message_id: id,
            trigger: p.trigger,
        });
    }
    if let Some(e) = failed {
        if out.accepted.is_empty() {
            return Err(e);
        }
    }
    for f in &ev.attachments {
        if let Some(dir) = f.path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    Ok(out)
}

/// Copies staged files into the session's inbox/<message_id>/ and lists them in the content
/// (paths relative to the session folder, which is the runner's workspace).
fn with_attachments(
    content: &str,
    paths: &nanoclaw_protocol::SessionPaths,
    message_id: &str,
    files: &[crate::channels::StagedFile],
) -> anyhow::Result<String> {
    use nanoclaw_protocol::beneath::{Dir, FileType};
    use std::path::Path;
    paths.inbox(message_id)?; // validates the id
                              // The session folder is the agent's: `inbox` or `inbox/<id>` (the id is predictable) may be
                              // a link planted to make the host write elsewhere. Whatever is there that is not a folder
                              // is removed (a link itself, never its target); the folder for this message is made anew;
                              // files are created O_EXCL beneath it, so a name raced in afterwards is refused, not
                              // written through.
    let root = Dir::open(paths.dir())?;
    let sub = Path::new("inbox").join(message_id);
    for rel in [Path::new("inbox"), sub.as_path()] {
        let kind = root.kind(rel)?;
        let is_dir = kind == Some(FileType::Directory);
        if let Some(kind) = kind.filter(|_| !is_dir) {
            tracing::warn!(session = %paths.dir().display(), path = %rel.display(), ?kind, "agent-planted inbox entry removed");
        }
        // `inbox` stays when it is a folder; this message's folder is always made anew (one
        // left by an earlier routing of the same update, or planted with links inside).
        if kind.is_some() && (!is_dir || rel == sub) {
            root.remove_all(rel)?;
        }
    }
    let inbox = root.create_dir_all(&sub, 0o755).inspect_err(|e| {
        tracing::warn!(session = %paths.dir().display(), error = %e, "inbox write refused");
    })?;
    let mut list = Vec::new();
    for f in files {
        let name = nanoclaw_protocol::names::validate(&f.name)?;
        let mut src = std::fs::File::open(&f.path)?;
        let mut dst = inbox.create_new(name, 0o644).inspect_err(|e| {
            tracing::warn!(session = %paths.dir().display(), error = %e, "inbox write refused");
        })?;
        std::io::copy(&mut src, &mut dst)?;
        list.push(
            serde_json::json!({"name": name, "path": format!("inbox/{message_id}/{name}"),
            "mimeType": f.mime, "size": f.size}),
        );
    }
    let mut v: serde_json::Value = serde_json::from_str(content)?;
    v["attachments"] = serde_json::Value::Array(list);
    Ok(v.to_string())
}
