//! Step 2 of ingress: an admitted sender's reply that picks an option of the chat's open
//! question (by number or exact label) is its answer — the way questions work on channels
//! without buttons.

use std::sync::Arc;

use rusqlite::Connection;

use super::{user_id, Accepted, RouteOutcome};
use crate::access::questions::{self, Open};
use crate::channels::InboundEvent;
use crate::Host;

/// The open question of the message's chat (and thread) this text answers, with the option.
pub(super) fn detect(c: &Connection, ev: &InboundEvent) -> anyhow::Result<Option<(Open, usize)>> {
    questions::text_answer(
        c,
        &ev.channel_type,
        &ev.platform_id,
        ev.thread_id.as_deref(),
        &ev.text,
    )
    .map_err(Into::into)
}

/// A numbered (or exact-label) reply to the chat's open question is its answer — the way
/// questions work on channels without buttons. Only the asked chat (and thread) can answer,
/// and only a sender `questions::authorize` lets through; a refused or stale answer is routed
/// as the ordinary message it then is (None).
pub(super) async fn answer(
    host: &Arc<Host>,
    ev: &InboundEvent,
    q: questions::Open,
    index: usize,
) -> anyhow::Result<Option<RouteOutcome>> {
    let (choice, message_id) =
        match questions::answer(host, &q, index, &user_id(ev), &ev.sender_name).await {
            Ok(c) => c,
            Err(questions::AnswerError::Other(e)) => return Err(e),
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
