//! One send: the outbox files, the write-ahead intent, the channel call and what the agent
//! is told when a send is refused.

use super::*;

/// Rows refused at read time: each is audited, and the agent is told why with its next turn
/// (one inbound write for the whole page); the write phase records them `failed`.
pub(super) async fn tell_refused(
    host: &Arc<Host>,
    sess: &db::sessions::Session,
    refused: &[Refused],
) -> anyhow::Result<()> {
    if refused.is_empty() {
        return Ok(());
    }
    let mut notes = Vec::with_capacity(refused.len());
    for r in refused {
        tracing::warn!(session = %sess.id, id = %r.shown_id, reason = %r.reason, "outbound row refused");
        let note = serde_json::json!({"action": "delivery_failed", "status": "error",
            "result": {"messageId": r.shown_id, "error": r.reason}});
        let mut row = crate::sessions::NewInbound::new("system", note.to_string());
        row.trigger = false;
        notes.push(row);
    }
    let dir = host.home.session(&sess.agent_group_id, &sess.id)?;
    crate::sessions::write_inbound_batched(dir.dir(), notes).await?;
    Ok(())
}

/// A row that can never be sent: recorded `failed` (the audit) and the agent told why with its
/// next turn, so a reply is never lost silently.
pub(super) async fn dropped(
    host: &Arc<Host>,
    sess: &db::sessions::Session,
    row: &DueOut,
    reason: &str,
) -> anyhow::Result<Option<Fate>> {
    tracing::warn!(session = %sess.id, id = %row.id, reason, "outbound row dropped");
    let note = serde_json::json!({"action": "delivery_failed", "status": "error",
        "result": {"messageId": row.id, "error": reason}});
    host.note_system(sess, note.to_string()).await?;
    Ok(Some(Fate {
        out_id: row.id.clone(),
        status: DeliveryStatus::Failed,
        platform_message_id: None,
        sent: false,
    }))
}

/// Largest outbox file sent (`NANOCLAW_MAX_FILE_BYTES`): Telegram's bot upload limit.
pub(super) const DEFAULT_MAX_FILE_BYTES: u64 = 50 * 1024 * 1024;

/// Checks a row's outbox files beneath the session folder and, with `read`, reads each once:
/// `outbox/<id>/<name>` must be a regular file reached through no link, at most `cap` bytes.
/// The folder and every name in it are the agent's, so anything else (a link to the host's
/// `.env`, a FIFO, /dev/zero, a 300 MB sparse file) fails the row; the error is the reason the
/// agent is told.
pub(super) fn outbox_files(
    session: &str,
    dir: &std::path::Path,
    id: &str,
    names: &[String],
    cap: u64,
    read: bool,
) -> Result<Vec<crate::channels::OutFile>, String> {
    use nanoclaw_protocol::beneath::{Dir, Error};
    let root = Dir::open(dir).map_err(|e| format!("session folder: {e}"))?;
    let mut out = Vec::new();
    for name in names {
        let refused = |why: String| {
            tracing::warn!(session, id, file = %name, reason = %why, "outbox file refused");
            Err(format!("file {name:?} not sent: {why}"))
        };
        if nanoclaw_protocol::names::validate(name).is_err()
            || nanoclaw_protocol::names::validate(id).is_err()
        {
            return refused("not a plain file name".into());
        }
        let rel = std::path::Path::new("outbox").join(id).join(name);
        let data = if read {
            root.read(&rel, cap)
        } else {
            root.open_file(&rel, cap).map(|_| Vec::new())
        };
        match data {
            Ok(data) => out.push(crate::channels::OutFile {
                name: name.clone(),
                data: data.into(),
            }),
            Err(Error::TooLarge { cap, .. }) => {
                return refused(format!("larger than the {cap}-byte limit"))
            }
            Err(e) => return refused(e.to_string()),
        }
    }
    Ok(out)
}

/// Deletes `outbox/<id>` beneath the session folder, never following a link (a link there is
/// removed itself; a link on the way is left and reported).
pub(super) async fn clear_outbox(
    sess: &db::sessions::Session,
    paths: &nanoclaw_protocol::SessionPaths,
    id: &str,
) {
    let (dir, id, sid) = (paths.dir().to_path_buf(), id.to_string(), sess.id.clone());
    let done = tokio::task::spawn_blocking(move || {
        nanoclaw_protocol::names::validate(&id).map_err(|e| e.to_string())?;
        nanoclaw_protocol::beneath::Dir::open(&dir)
            .and_then(|d| d.remove_all(std::path::Path::new("outbox").join(&id)))
            .map_err(|e| e.to_string())
    })
    .await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(session = %sid, error = %e, "outbox not cleared"),
        Err(e) => tracing::warn!(session = %sid, error = %e, "outbox not cleared"),
    }
}

/// Sends one due row. Returns its fate, or None when it should be tried again later.
pub(super) async fn deliver_one(
    host: &Arc<Host>,
    sess: &db::sessions::Session,
    paths: &nanoclaw_protocol::SessionPaths,
    row: &DueOut,
) -> anyhow::Result<Option<Fate>> {
    let fate = |status: DeliveryStatus, platform_message_id: Option<String>, sent: bool| {
        Ok(Some(Fate {
            out_id: row.id.clone(),
            status,
            platform_message_id,
            sent,
        }))
    };
    let content = match Outbound::parse(&row.kind, &row.content) {
        Ok(c) => c,
        Err(e) => return dropped(host, sess, row, &format!("bad content: {e}")).await,
    };
    if let Outbound::System { action, payload } = &content {
        crate::actions::handle(host, sess, action, payload).await?;
        return fate(DeliveryStatus::Delivered, None, false);
    }
    let (ct, pid) = match (&row.channel_type, &row.platform_id) {
        (Some(ct), Some(pid)) => (ct.clone(), pid.clone()),
        _ => match host.default_route(sess).await? {
            Some(r) => r,
            None => return dropped(host, sess, row, "the message has no destination").await,
        },
    };
    if ct == "agent" {
        let text = match &content {
            Outbound::Message { .. } | Outbound::Card { .. } => {
                crate::channels::text_of(&content).unwrap_or_default()
            }
            _ => return dropped(host, sess, row, "only messages can go to another agent").await,
        };
        return match crate::delivery::agents::target(host, sess, row.in_reply_to.as_deref(), &pid)
            .await?
        {
            Some(t) => {
                let id = crate::delivery::agents::deliver(host, sess, t, &text).await?;
                fate(DeliveryStatus::Delivered, Some(id), false)
            }
            None => {
                dropped(
                    host,
                    sess,
                    row,
                    &format!("agent {pid} is not one of your destinations"),
                )
                .await
            }
        };
    }
    if !host
        .route_allowed(sess, &ct, &pid, row.thread_id.as_deref())
        .await?
    {
        let why = format!("{ct}:{pid} is not one of your destinations");
        return dropped(host, sess, row, &why).await;
    }
    let Some(channel) = host.channels.get(&ct).cloned() else {
        let why = format!("the {ct} channel is not running");
        return dropped(host, sess, row, &why).await;
    };
    // Degradation decided once, here, from the adapter's declared capabilities.
    let caps = channel.capabilities();
    let content = match content {
        Outbound::Reaction { .. } if !caps.reactions => {
            tracing::info!(session = %sess.id, id = %row.id, channel = %ct, "channel has no reactions; reaction skipped");
            return fate(DeliveryStatus::Delivered, None, false);
        }
        // Without edits, the new text arrives as a message of its own.
        Outbound::Edit { text, .. } if !caps.edits => Outbound::Message {
            text,
            files: vec![],
            extra: Default::default(),
        },
        other => other,
    };
    let files = match &content {
        Outbound::Message { files, .. } if !files.is_empty() => {
            let (dir, id, names) = (paths.dir().to_path_buf(), row.id.clone(), files.clone());
            let cap = host
                .settings
                .u64("NANOCLAW_MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES);
            // A channel that cannot upload still gets the files checked (and the row failed
            // on a bad one) but not read.
            let read = caps.files;
            let sid = sess.id.clone();
            match tokio::task::spawn_blocking(move || {
                outbox_files(&sid, &dir, &id, &names, cap, read)
            })
            .await?
            {
                Ok(f) => f,
                Err(why) => return dropped(host, sess, row, &why).await,
            }
        }
        _ => Vec::new(),
    };
    let target_platform_message_id = match &content {
        Outbound::Edit { message_id, .. } | Outbound::Reaction { message_id, .. } => {
            let (dir, m) = (paths.dir().to_path_buf(), message_id.clone());
            tokio::task::spawn_blocking(move || platform_message_of(&dir, &m)).await??
        }
        _ => None,
    };
    // The agent's question id is its own (DESIGN §3): the card carries a host-made id, so no
    // agent can name an approval or another session's question; its id comes back in the answer.
    let (content, agent_question_id) = match content {
        Outbound::AskQuestion {
            question_id,
            title,
            question,
            options,
        } => (
            Outbound::AskQuestion {
                question_id: crate::access::questions::new_id(),
                title,
                question,
                options,
            },
            Some(question_id),
        ),
        other => (other, None),
    };
    let item = OutboundItem {
        message_out_id: row.id.clone(),
        platform_id: pid,
        thread_id: row.thread_id.clone(),
        in_reply_to: row.in_reply_to.clone(),
        target_platform_message_id,
        content,
        files,
    };
    if !host.send_allowed_now(&row.id) {
        return Ok(None);
    }
    let (sid, oid) = (sess.id.clone(), row.id.clone());
    let earlier = host
        .db
        .call({
            let ct = ct.clone();
            move |c| Ok(db::intents::begin(c, &sid, &oid, &ct)?)
        })
        .await?;
    // An intent left by an earlier attempt whose fate never reached disk (its write phase
    // failed after the send): that send may have happened, so ask the platform, as at start.
    if earlier {
        match channel.reconcile(&row.id).await {
            Reconciled::NotSent => {}
            Reconciled::Sent(p) => return fate(DeliveryStatus::Delivered, p, true),
            Reconciled::Unknown => {
                tracing::warn!(id = %row.id, "platform cannot tell whether an earlier send happened; not re-sending (at most once)");
                return fate(DeliveryStatus::Delivered, None, true);
            }
        }
    }
    crate::failpoint("before_send");
    let result = channel.send(&item).await;
    crate::failpoint("after_send");
    // The outbox copy is kept until the row's fate is final (a retry needs the files).
    let clear_outbox = || clear_outbox(sess, paths, &row.id);
    match result {
        Ok(pmid) => {
            clear_outbox().await;
            host.send_settled(&row.id);
            if let Outbound::AskQuestion {
                question_id,
                question,
                title,
                options,
            } = &item.content
            {
                let shown = if question.is_empty() { title } else { question };
                if let Err(e) = crate::access::questions::record(
                    host,
                    crate::access::questions::NewCard {
                        id: question_id,
                        session_id: &sess.id,
                        message_out_id: &row.id,
                        agent_question_id: agent_question_id.as_deref(),
                        kind: crate::access::questions::Kind::Question,
                        for_user: None,
                        question: shown,
                        options: &nanoclaw_protocol::content::QuestionOption::normalize_all(
                            options,
                        ),
                        route: (&ct, &item.platform_id, item.thread_id.as_deref()),
                        platform_message_id: pmid.clone(),
                    },
                )
                .await
                {
                    tracing::error!(session = %sess.id, error = %e, "question sent but not recorded; its answer will arrive as plain text");
                }
            }
            fate(DeliveryStatus::Delivered, pmid, true)
        }
        // A refusal the platform would repeat fails at once; anything else gets its retries.
        Err(e)
            if matches!(e, crate::channels::SendError::Refused(_))
                || host.send_failed(&row.id) >= SEND_ATTEMPTS =>
        {
            tracing::error!(session = %sess.id, id = %row.id, error = %e, "send failed for the last time");
            host.send_settled(&row.id);
            clear_outbox().await;
            let note = serde_json::json!({"action": "delivery_failed", "status": "error", "result": {"messageId": row.id, "error": e.to_string()}});
            host.note_system(sess, note.to_string()).await?;
            fate(DeliveryStatus::Failed, None, true)
        }
        Err(e) => {
            tracing::warn!(session = %sess.id, id = %row.id, error = %e, "send failed; will retry");
            let (sid, oid) = (sess.id.clone(), row.id.clone());
            host.db
                .call(move |c| Ok(db::intents::end(c, &sid, &oid)?))
                .await?;
            Ok(None)
        }
    }
}
