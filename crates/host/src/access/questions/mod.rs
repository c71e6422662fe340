//! Questions, host side (DESIGN §6): a delivered `ask_question` card is recorded in
//! `pending_questions` (+ `question_cards`: its platform message, expiry, owner and kind); a
//! button press or, where a channel has no buttons, a numbered text reply becomes a `chat`
//! messages_in row with `questionId` and `selectedOption` in the asking session. Stale
//! questions expire.
//!
//! Trust boundary (DESIGN §3): the id an agent gives its question is its own. The card and
//! the records carry an id the host made (`new_id`), the agent's id only rides along as data
//! and comes back in the answer, so no agent can name, replace or answer an approval or
//! another session's question. Who may answer is checked at the answer (`authorize`), for
//! every channel alike.

use std::sync::Arc;

use nanoclaw_protocol::content::QuestionOption;
use nanoclaw_protocol::status::UnknownSenderPolicy;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use crate::db;
use crate::sessions::{self, NewInbound};
use crate::Host;

/// What a card decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An agent's `ask_user_question`: the answer goes to the asking session.
    Question,
    /// A self-modification approval (`approvals.rs`): only its approver or an admin decides.
    Approval,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Question => "question",
            Kind::Approval => "approval",
        }
    }
}

/// A question waiting for its answer.
#[derive(Debug, Clone)]
pub struct Open {
    /// The host's id of the question (on the card, in callback data).
    pub question_id: String,
    /// The id the asking agent gave it (echoed in the answer).
    pub agent_question_id: String,
    /// Asking session.
    pub session_id: String,
    /// The question text shown.
    pub title: String,
    /// Options, normalised.
    pub options: Vec<QuestionOption>,
    /// The card's message on the platform.
    pub platform_message_id: Option<String>,
    /// Route of the card.
    pub channel_type: String,
    /// Chat of the card.
    pub platform_id: String,
    /// Thread of the card.
    pub thread_id: Option<String>,
    /// What the card decides.
    pub kind: Kind,
    /// The one person the card was sent to, when it was (an approval's approver).
    pub for_user: Option<String>,
}

/// A card about to be recorded.
#[derive(Debug, Clone)]
pub struct NewCard<'a> {
    /// The host's id (`new_id()`, or the approval id).
    pub id: &'a str,
    /// Asking session.
    pub session_id: &'a str,
    /// The outbound row (or approval) that carried it.
    pub message_out_id: &'a str,
    /// The agent's own id for it, echoed in the answer (None: the host's id).
    pub agent_question_id: Option<&'a str>,
    /// What it decides.
    pub kind: Kind,
    /// The one person it is for, if any.
    pub for_user: Option<&'a str>,
    /// Text shown.
    pub question: &'a str,
    /// Options, normalised.
    pub options: &'a [QuestionOption],
    /// `(channel_type, platform_id, thread_id)` of the card.
    pub route: (&'a str, &'a str, Option<&'a str>),
    /// The card's message on the platform.
    pub platform_message_id: Option<String>,
}

/// Why an answer was not taken.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// The sender may not answer this card.
    #[error("not allowed: {0}")]
    NotAllowed(&'static str),
    /// Somebody answered first, or it expired.
    #[error("question already answered")]
    Closed,
    /// No such option.
    #[error("no option {0}")]
    NoOption(usize),
    /// Anything else (DB, session files).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A fresh host-owned question id (fits Telegram's callback data with its option index).
pub fn new_id() -> String {
    nanoclaw_protocol::new_id("q")
}

/// How long an unanswered question stays open (`NANOCLAW_QUESTION_TTL_MS`, default 24 h).
fn ttl(host: &Host) -> chrono::Duration {
    chrono::Duration::milliseconds(
        host.settings
            .u64("NANOCLAW_QUESTION_TTL_MS", 24 * 3600 * 1000) as i64,
    )
}

/// Records a question card once it was sent. Plain INSERTs: the id is the host's, so an
/// existing record is never replaced (a collision is an error, not a takeover).
pub async fn record(host: &Arc<Host>, card: NewCard<'_>) -> anyhow::Result<()> {
    let (q, s, m) = (
        card.id.to_string(),
        card.session_id.to_string(),
        card.message_out_id.to_string(),
    );
    let t = card.question.to_string();
    let agent_qid = card.agent_question_id.map(str::to_string);
    let (kind, for_user) = (card.kind.as_str(), card.for_user.map(str::to_string));
    let (ct, pid, th) = (
        card.route.0.to_string(),
        card.route.1.to_string(),
        card.route.2.map(str::to_string),
    );
    let opts = serde_json::to_string(card.options)?;
    let pmid = card.platform_message_id;
    // An approval card lives as long as its request.
    let ttl = match card.kind {
        Kind::Approval => crate::access::approvals::ttl(host),
        Kind::Question => ttl(host),
    };
    let expires = nanoclaw_protocol::time::fmt(chrono::Utc::now() + ttl);
    host.db
        .call(move |c| {
            db::atomic(c, |c| {
                c.execute(
                    "INSERT INTO pending_questions(question_id, session_id, message_out_id, platform_id, channel_type, thread_id, title, options_json, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![q, s, m, pid, ct, th, t, opts, nanoclaw_protocol::time::now()],
                )?;
                c.execute(
                    "INSERT INTO question_cards(question_id, platform_message_id, expires_at, agent_question_id, kind, for_user)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![q, pmid, expires, agent_qid, kind, for_user],
                )?;
                Ok(())
            })
        })
        .await
}

const OPEN_SELECT: &str = "SELECT q.question_id, q.session_id, COALESCE(q.title, ''), COALESCE(q.options_json, '[]'), c.platform_message_id,
    COALESCE(q.channel_type, ''), COALESCE(q.platform_id, ''), q.thread_id,
    COALESCE(c.agent_question_id, q.question_id), c.kind, c.for_user
    FROM pending_questions q JOIN question_cards c ON c.question_id = q.question_id";

fn open_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Open> {
    Ok(Open {
        question_id: r.get(0)?,
        session_id: r.get(1)?,
        title: r.get(2)?,
        // v2 rows hold normalised objects; older rows of ours hold bare labels.
        options: QuestionOption::normalize_all(
            &serde_json::from_str::<Vec<Value>>(&r.get::<_, String>(3)?).unwrap_or_default(),
        ),
        platform_message_id: r.get(4)?,
        channel_type: r.get(5)?,
        platform_id: r.get(6)?,
        thread_id: r.get(7)?,
        agent_question_id: r.get(8)?,
        kind: if r.get::<_, String>(9)? == "approval" {
            Kind::Approval
        } else {
            Kind::Question
        },
        for_user: r.get(10)?,
    })
}

/// An open (unexpired) question by its host id.
pub async fn get(host: &Arc<Host>, question_id: &str) -> anyhow::Result<Option<Open>> {
    let q = question_id.to_string();
    host.db
        .call(move |c| {
            Ok(c.query_row(
                &format!("{OPEN_SELECT} WHERE q.question_id = ?1 AND c.expires_at > ?2"),
                params![q, nanoclaw_protocol::time::now()],
                open_row,
            )
            .optional()?)
        })
        .await
}

/// The newest open question in a chat's thread (for numbered text replies).
pub fn latest_in_chat(
    c: &Connection,
    channel_type: &str,
    platform_id: &str,
    thread_id: Option<&str>,
) -> rusqlite::Result<Option<Open>> {
    c.query_row(
        &format!("{OPEN_SELECT} WHERE q.channel_type = ?1 AND q.platform_id = ?2 AND q.thread_id IS ?3 AND c.expires_at > ?4 ORDER BY q.created_at DESC LIMIT 1"),
        params![channel_type, platform_id, thread_id, nanoclaw_protocol::time::now()],
        open_row,
    )
    .optional()
}

/// The open question a short text reply in this chat answers, with the option it picks.
pub fn text_answer(
    c: &Connection,
    channel_type: &str,
    platform_id: &str,
    thread_id: Option<&str>,
    text: &str,
) -> rusqlite::Result<Option<(Open, usize)>> {
    if text.len() > 200 {
        return Ok(None);
    }
    let Some(q) = latest_in_chat(c, channel_type, platform_id, thread_id)? else {
        return Ok(None);
    };
    Ok(choice_from_text(text, &q.options).map(|i| (q, i)))
}

/// Whether `sender` may answer `q` (DESIGN §3, §11.3): an approval only its approver or an
/// admin of the agent group (owners count); a question only a sender the card's chat admits
/// (its unknown-sender policy, and the asking agent's sender scope there) and, where it was
/// for one person, that person. Err holds the reason for the audit line.
pub fn authorize(
    c: &Connection,
    q: &Open,
    sender: &str,
) -> anyhow::Result<Result<(), &'static str>> {
    if q.kind == Kind::Approval {
        if q.for_user.as_deref() == Some(sender) {
            return Ok(Ok(()));
        }
        let group: Option<String> = c
            .query_row(
                "SELECT agent_group_id FROM pending_approvals WHERE approval_id = ?1",
                [&q.question_id],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let Some(group) = group else {
            return Ok(Err("the approval has no agent group"));
        };
        return Ok(
            if db::users::approvers(c, &group)?.iter().any(|u| u == sender) {
                Ok(())
            } else {
                Err("only the approver or an admin of the agent group decides an approval")
            },
        );
    }
    if q.for_user.as_deref().is_some_and(|u| u != sender) {
        return Ok(Err("the question was for someone else"));
    }
    let Some(mg) = db::messaging_groups::find(c, &q.channel_type, &q.platform_id)? else {
        return Ok(Err("the card's chat is not known"));
    };
    if mg.unknown_sender_policy != UnknownSenderPolicy::Public
        && !db::users::is_known_in_chat(c, sender, &mg.id)?
    {
        return Ok(Err("the chat's policy does not admit the sender"));
    }
    let scoped: Option<String> = c
        .query_row(
            "SELECT s.agent_group_id FROM sessions s JOIN messaging_group_agents w
               ON w.agent_group_id = s.agent_group_id AND w.messaging_group_id = ?2
             WHERE s.id = ?1 AND w.sender_scope = 'known'",
            params![q.session_id, mg.id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(ag) = scoped {
        if !db::users::is_known_to(c, sender, &ag)? {
            return Ok(Err("the asking agent admits only known senders"));
        }
    }
    Ok(Ok(()))
}

/// Which option a text reply picks: its number (1-based), its label or its value.
pub fn choice_from_text(text: &str, options: &[QuestionOption]) -> Option<usize> {
    let t = text.trim().trim_end_matches('.');
    if let Ok(n) = t.parse::<usize>() {
        return (1..=options.len()).contains(&n).then(|| n - 1);
    }
    options
        .iter()
        .position(|o| o.label.eq_ignore_ascii_case(t) || o.value.eq_ignore_ascii_case(t))
}

/// Answers a question: the asking session gets the option's value under the agent's own
/// question id (the chosen option is returned with the new row's id); the question closes.
/// The sender is checked first; a refusal is logged here, once for every channel.
pub async fn answer(
    host: &Arc<Host>,
    q: &Open,
    index: usize,
    sender_id: &str,
    sender_name: &str,
) -> Result<(QuestionOption, Option<String>), AnswerError> {
    let choice = q
        .options
        .get(index)
        .cloned()
        .ok_or(AnswerError::NoOption(index))?;
    let (q2, who) = (q.clone(), sender_id.to_string());
    // Checking and closing in one DB call: the check holds for the close. Closing first
    // makes a double press harmless: only the first one finds the question.
    let closed = host
        .db
        .call(move |c| {
            if let Err(why) = authorize(c, &q2, &who)? {
                return Ok(Err(why));
            }
            Ok(Ok(c.execute(
                "DELETE FROM pending_questions WHERE question_id = ?1",
                [&q2.question_id],
            )?))
        })
        .await?;
    match closed {
        Err(why) => {
            tracing::warn!(question = %q.question_id, session = %q.session_id, sender = %sender_id, reason = why,
                "answer refused: sender not allowed");
            return Err(AnswerError::NotAllowed(why));
        }
        Ok(0) => return Err(AnswerError::Closed),
        Ok(_) => {}
    }
    if q.kind == Kind::Approval {
        crate::access::approvals::decide(host, &q.question_id, index == 0, sender_id).await?;
        return Ok((choice, None));
    }
    let sess = {
        let sid = q.session_id.clone();
        host.db
            .call(move |c| Ok(crate::db::sessions::get(c, &sid)?))
            .await?
            .ok_or_else(|| anyhow::anyhow!("the asking session is gone"))?
    };
    let content = json!({"sender": sender_name, "senderId": sender_id, "text": choice.label,
        "questionId": q.agent_question_id, "selectedOption": choice.value, "attachments": [], "isFromMe": false});
    let mut row = NewInbound::new("chat", content.to_string());
    row.channel_type = Some(q.channel_type.clone());
    row.platform_id = Some(q.platform_id.clone());
    row.thread_id = q.thread_id.clone();
    let dir = host
        .home
        .session(&sess.agent_group_id, &sess.id)
        .map_err(anyhow::Error::from)?
        .dir()
        .to_path_buf();
    let id = row.id.clone();
    sessions::write_inbound_batched(&dir, vec![row]).await?;
    host.wake(&sess.id).await;
    Ok((choice, Some(id)))
}

/// Closes expired questions (sweep): the rows go, and where the platform can edit, the card
/// says it expired (which also removes its buttons) so nobody answers into the void.
pub async fn expire(host: &Arc<Host>) -> anyhow::Result<usize> {
    let now = nanoclaw_protocol::time::now();
    let expired: Vec<Open> = host
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let rows = tx
                .prepare(&format!("{OPEN_SELECT} WHERE c.expires_at <= ?1"))?
                .query_map([&now], open_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            tx.execute(
                "DELETE FROM pending_questions WHERE question_id IN (SELECT question_id FROM question_cards WHERE expires_at <= ?1)",
                [&now],
            )?;
            tx.commit()?;
            Ok(rows)
        })
        .await?;
    for q in &expired {
        let (Some(channel), Some(pmid)) = (
            host.channels.get(&q.channel_type),
            q.platform_message_id.clone(),
        ) else {
            continue;
        };
        if !channel.capabilities().edits {
            continue;
        }
        let item = crate::channels::OutboundItem {
            message_out_id: format!("{}-expired", q.question_id),
            platform_id: q.platform_id.clone(),
            thread_id: q.thread_id.clone(),
            in_reply_to: None,
            target_platform_message_id: Some(pmid),
            content: nanoclaw_protocol::content::Outbound::Edit {
                message_id: Value::Null,
                text: format!("{}\n(expired: no answer was given)", q.title),
            },
            files: vec![],
        };
        if let Err(e) = channel.send(&item).await {
            tracing::debug!(question = %q.question_id, error = %e, "could not close the expired card");
        }
    }
    Ok(expired.len())
}

#[cfg(test)]
mod tests;
