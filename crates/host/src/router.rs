//! The router (DESIGN §6): chat → wirings → sessions → inbound.db rows → wake.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nanoclaw_protocol::content::{Chat, Inbound};
use regex::Regex;
use rusqlite::{params, Connection};

use crate::channels::InboundEvent;
use crate::db::{self, unregistered::Reason};
use crate::sessions::{self, NewInbound};
use crate::Host;

/// What `RouteOutcome::dropped` says when the message was a pairing code.
pub const PAIRED: &str = "paired: you are now the owner and this chat talks to your main agent";

/// Longest accepted message text in bytes; longer messages are refused with a clear error.
pub const MAX_TEXT_BYTES: usize = 512 * 1024;

/// One row the router wrote.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Session.
    pub session_id: String,
    /// `messages_in.id`.
    pub message_id: String,
    /// Whether it wakes the agent.
    pub trigger: bool,
}

/// Result of routing one event.
#[derive(Debug, Default, Clone)]
pub struct RouteOutcome {
    /// Rows written (fan-out: one per engaged wiring).
    pub accepted: Vec<Accepted>,
    /// Why nothing engaged, when that is worth telling the sender.
    pub dropped: Option<String>,
    /// Handled by the host itself (e.g. an approval decided): what to tell the sender.
    pub notice: Option<String>,
}

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

struct Plan {
    session: db::sessions::Session,
    trigger: bool,
    /// The chat's destination name for the agent, when its session hears more than one chat
    /// (the agent answers there by that name).
    from: Option<String>,
}

/// Longest quote of a replied-to message shown to the agent, in characters.
const QUOTE_CHARS: usize = 280;

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
    if w.session_mode != "agent-shared" && channels < 2 {
        return Ok(None);
    }
    c.prepare_cached(
        "SELECT local_name FROM agent_destinations WHERE agent_group_id = ?1 AND target_type = 'channel' AND target_id = ?2 ORDER BY local_name LIMIT 1",
    )?
    .query_row(params![w.agent_group_id, mg], |r| r.get(0))
    .optional()
}

/// Routes one inbound event: records, filters, writes and wakes.
pub async fn route(host: &Arc<Host>, ev: InboundEvent) -> anyhow::Result<RouteOutcome> {
    if ev.text.len() > MAX_TEXT_BYTES {
        let (ct, pid, user) = (
            ev.channel_type.clone(),
            ev.platform_id.clone(),
            user_id(&ev),
        );
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
        return Ok(RouteOutcome {
            accepted: vec![],
            dropped: Some(format!(
                "message too large: {} bytes (limit {MAX_TEXT_BYTES})",
                ev.text.len()
            )),
            notice: None,
        });
    }
    // Questions are consulted only for a sender the chat admits (inside `plan`, after the
    // policy): a stranger's "1" is dropped as any stranger's message is.
    let h = host.clone();
    let ev2 = ev.clone();
    let (plans, dropped) = match host.db.call(move |c| plan(&h, c, &ev2, true)).await? {
        Planned::Route(plans, dropped) => (plans, dropped),
        Planned::Answer(q, index) => {
            if let Some(out) = answer_open_question(host, &ev, *q, index).await? {
                return Ok(out);
            }
            let (h, ev2) = (host.clone(), ev.clone());
            match host.db.call(move |c| plan(&h, c, &ev2, false)).await? {
                Planned::Route(plans, dropped) => (plans, dropped),
                Planned::Answer(..) => unreachable!("plan without answers never answers"),
            }
        }
    };
    if dropped.as_deref() == Some(PAIRED) {
        host.notify(
            &ev.channel_type,
            &ev.platform_id,
            ev.thread_id.as_deref(),
            "Paired! You are now the owner, and this chat talks to your main agent.",
        )
        .await;
    }
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
        sender_id: user_id(&ev),
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

/// A numbered (or exact-label) reply to the chat's open question is its answer — the way
/// questions work on channels without buttons. Only the asked chat (and thread) can answer,
/// and only a sender `questions::authorize` lets through; a refused or stale answer is routed
/// as the ordinary message it then is (None).
async fn answer_open_question(
    host: &Arc<Host>,
    ev: &InboundEvent,
    q: crate::questions::Open,
    index: usize,
) -> anyhow::Result<Option<RouteOutcome>> {
    let (choice, message_id) =
        match crate::questions::answer(host, &q, index, &user_id(ev), &ev.sender_name).await {
            Ok(c) => c,
            Err(crate::questions::AnswerError::Other(e)) => return Err(e),
            Err(e) => {
                tracing::debug!(error = %e, "text reply was not an answer after all");
                return Ok(None);
            }
        };
    tracing::info!(question = %q.question_id, choice = %choice.value, "question answered by text reply");
    Ok(Some(match message_id {
        Some(message_id) => RouteOutcome {
            accepted: vec![Accepted {
                session_id: q.session_id,
                message_id,
                trigger: true,
            }],
            ..Default::default()
        },
        None => RouteOutcome {
            notice: Some(format!("{}: done.", choice.label)),
            ..Default::default()
        },
    }))
}

/// Records an event that was given up on after [`ROUTE_ATTEMPTS`] failed routings (the audit of
/// `ctl dropped-messages`), so a channel can confirm it and serve the next one.
pub async fn give_up(host: &Arc<Host>, ev: &InboundEvent, error: &anyhow::Error) {
    let (ct, pid, user, name) = (
        ev.channel_type.clone(),
        ev.platform_id.clone(),
        user_id(ev),
        ev.sender_name.clone(),
    );
    tracing::warn!(channel = %ct, platform = %pid, error = %error, "update could not be routed; recorded and skipped");
    let r = host
        .db
        .call(move |c| {
            Ok(db::unregistered::record(
                c,
                &ct,
                &pid,
                Some(&user),
                Some(&name),
                Reason::RouteFailed,
                None,
                None,
            )?)
        })
        .await;
    if let Err(e) = r {
        tracing::error!(error = %e, "could not record a skipped update");
    }
}

/// Routings of one platform update before it is recorded and skipped: a failure that repeats
/// (one session's broken files) must not hold up every other chat behind it.
pub const ROUTE_ATTEMPTS: u32 = 3;

/// A row id derived from the platform's message id, so a redelivered message maps to the same row.
fn stable_id(channel: &str, platform_id: &str, message: &str) -> String {
    let h = nanoclaw_protocol::fnv1a(format!("{channel}\0{platform_id}\0{message}").as_bytes());
    format!("msg-{channel}-{h:016x}")
}

fn user_id(ev: &InboundEvent) -> String {
    format!("{}:{}", ev.channel_type, ev.sender_handle)
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

/// What `plan` decided.
enum Planned {
    /// Rows to write (and why nothing engaged, if so).
    Route(Vec<Plan>, Option<String>),
    /// An admitted sender's reply that picks an option of the chat's open question.
    Answer(Box<crate::questions::Open>, usize),
}

/// The decision part, under the central DB lock (atomic session creation). `answers`: whether
/// a reply to an open question is taken as its answer (false once the answer was refused).
fn plan(
    host: &Host,
    c: &mut Connection,
    ev: &InboundEvent,
    answers: bool,
) -> anyhow::Result<Planned> {
    let (mg, _) = db::messaging_groups::find_or_create(
        c,
        &ev.channel_type,
        &ev.platform_id,
        ev.chat_name.as_deref(),
        ev.is_group,
    )?;
    let user = user_id(ev);
    db::users::ensure(c, &user, &ev.channel_type, Some(&ev.sender_name))?;
    if crate::pairing::try_pair(c, ev, &mg.id, &user)? {
        return Ok(Planned::Route(vec![], Some(PAIRED.into())));
    }
    let wirings = db::wirings::for_messaging_group(c, &mg.id)?;
    let audit = |c: &Connection, reason: Reason, ag: Option<&str>| {
        db::unregistered::record(
            c,
            &ev.channel_type,
            &ev.platform_id,
            Some(&user),
            Some(&ev.sender_name),
            reason,
            Some(&mg.id),
            ag,
        )
    };
    if wirings.is_empty() {
        if mg.denied_at.is_some() {
            // The owner refused this chat (NanoClaw v2's channel registration): it stays quiet.
            tracing::debug!(chat = %mg.id, "message from a denied chat dropped");
            return Ok(Planned::Route(vec![], None));
        }
        audit(c, Reason::UnknownChat, None)?;
        tracing::info!(channel = %ev.channel_type, platform = %ev.platform_id, "message from an unwired chat dropped");
        return Ok(Planned::Route(
            vec![],
            Some("this chat is not wired to any agent".into()),
        ));
    }
    if !db::users::is_known_in_chat(c, &user, &mg.id)? {
        match mg.unknown_sender_policy.as_str() {
            "public" => {}
            "request_approval" => {
                audit(
                    c,
                    Reason::AwaitingApproval,
                    Some(&wirings[0].agent_group_id),
                )?;
                return Ok(Planned::Route(
                    vec![],
                    Some(park_for_approval(
                        c,
                        ev,
                        &mg.id,
                        &wirings[0].agent_group_id,
                        &user,
                    )?),
                ));
            }
            _ => {
                audit(c, Reason::UnknownSender, None)?;
                tracing::info!(sender = %user, chat = %mg.id, "unknown sender dropped (strict)");
                return Ok(Planned::Route(
                    vec![],
                    Some("you are not allowed to talk to this agent".into()),
                ));
            }
        }
    }
    if answers {
        if let Some((q, index)) = crate::questions::text_answer(
            c,
            &ev.channel_type,
            &ev.platform_id,
            ev.thread_id.as_deref(),
            &ev.text,
        )? {
            return Ok(Planned::Answer(Box::new(q), index));
        }
    }
    let mut plans = Vec::new();
    for w in wirings {
        let engaged = match w.engage_mode.as_str() {
            "pattern" => host
                .router
                .matches(w.engage_pattern.as_deref().unwrap_or("."), &ev.text),
            "mention-sticky" => {
                ev.is_mention
                    || !ev.is_group
                    || ev
                        .thread_id
                        .as_deref()
                        .is_some_and(|t| sticky(c, &w.id, t).unwrap_or(false))
            }
            _ => ev.is_mention || !ev.is_group,
        };
        if w.sender_scope == "known" && !db::users::is_known_to(c, &user, &w.agent_group_id)? {
            audit(c, Reason::NotInScope, Some(&w.agent_group_id))?;
            continue;
        }
        if engaged && w.engage_mode == "mention-sticky" {
            if let Some(t) = ev.thread_id.as_deref() {
                c.execute(
                    "INSERT OR IGNORE INTO sticky_threads(wiring_id, thread_id, created_at) VALUES (?1, ?2, ?3)",
                    params![w.id, t, db::now()],
                )?;
            }
        }
        let trigger = if engaged {
            true
        } else if w.ignored_message_policy == "accumulate" {
            false
        } else {
            continue;
        };
        let session = sessions::resolve(c, &host.home, &w, ev.thread_id.as_deref())?;
        let from = origin_name(c, &w, &w.messaging_group_id)?;
        plans.push(Plan {
            session,
            trigger,
            from,
        });
    }
    Ok(Planned::Route(plans, None))
}

fn sticky(c: &Connection, wiring: &str, thread: &str) -> rusqlite::Result<bool> {
    c.prepare_cached(
        "SELECT EXISTS(SELECT 1 FROM sticky_threads WHERE wiring_id=?1 AND thread_id=?2)",
    )?
    .query_row([wiring, thread], |r| r.get(0))
}
