//! Questions, host side (DESIGN §6): a delivered `ask_question` card is recorded in
//! `pending_questions` (+ `question_cards`: its platform message and expiry); a button press or,
//! where a channel has no buttons, a numbered text reply becomes a `chat` messages_in row with
//! `questionId` and `selectedOption` in the asking session. Stale questions expire.

use std::sync::Arc;

use nanoclaw_protocol::content::QuestionOption;
use rusqlite::{params, OptionalExtension};
use serde_json::{json, Value};

use crate::sessions::{self, NewInbound};
use crate::Host;

/// A question waiting for its answer.
#[derive(Debug, Clone)]
pub struct Open {
    /// Question id (echoed in the answer).
    pub question_id: String,
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
}

/// How long an unanswered question stays open (`NANOCLAW_QUESTION_TTL_MS`, default 24 h).
fn ttl(host: &Host) -> chrono::Duration {
    chrono::Duration::milliseconds(
        host.settings
            .u64("NANOCLAW_QUESTION_TTL_MS", 24 * 3600 * 1000) as i64,
    )
}

/// Records a question card once it was sent.
#[allow(clippy::too_many_arguments)]
pub async fn record(
    host: &Arc<Host>,
    session_id: &str,
    message_out_id: &str,
    question_id: &str,
    question: &str,
    options: &[QuestionOption],
    route: (&str, &str, Option<&str>),
    platform_message_id: Option<String>,
) -> anyhow::Result<()> {
    let (s, m, q, t) = (
        session_id.to_string(),
        message_out_id.to_string(),
        question_id.to_string(),
        question.to_string(),
    );
    let (ct, pid, th) = (
        route.0.to_string(),
        route.1.to_string(),
        route.2.map(str::to_string),
    );
    let opts = serde_json::to_string(options)?;
    // An approval card lives as long as its request.
    let ttl = if question_id.starts_with(crate::approvals::PREFIX) {
        crate::approvals::ttl(host)
    } else {
        ttl(host)
    };
    let expires = nanoclaw_protocol::time::fmt(chrono::Utc::now() + ttl);
    host.db
        .call(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO pending_questions(question_id, session_id, message_out_id, platform_id, channel_type, thread_id, title, options_json, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![q, s, m, pid, ct, th, t, opts, nanoclaw_protocol::time::now()],
            )?;
            c.execute(
                "INSERT OR REPLACE INTO question_cards(question_id, platform_message_id, expires_at) VALUES (?1, ?2, ?3)",
                params![q, platform_message_id, expires],
            )?;
            Ok(())
        })
        .await
}

const OPEN_SELECT: &str = "SELECT q.question_id, q.session_id, COALESCE(q.title, ''), COALESCE(q.options_json, '[]'), c.platform_message_id,
    COALESCE(q.channel_type, ''), COALESCE(q.platform_id, ''), q.thread_id
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
    })
}

/// An open (unexpired) question by id.
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

/// The newest open question in a chat (for numbered text replies).
pub async fn latest_in_chat(
    host: &Arc<Host>,
    channel_type: &str,
    platform_id: &str,
) -> anyhow::Result<Option<Open>> {
    let (ct, pid) = (channel_type.to_string(), platform_id.to_string());
    host.db
        .call(move |c| {
            Ok(c.query_row(
                &format!("{OPEN_SELECT} WHERE q.channel_type = ?1 AND q.platform_id = ?2 AND c.expires_at > ?3 ORDER BY q.created_at DESC LIMIT 1"),
                params![ct, pid, nanoclaw_protocol::time::now()],
                open_row,
            )
            .optional()?)
        })
        .await
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

/// Answers a question: the asking session gets the option's value (the chosen option is
/// returned with the new row's id); the question closes.
pub async fn answer(
    host: &Arc<Host>,
    q: &Open,
    index: usize,
    sender_id: &str,
    sender_name: &str,
) -> anyhow::Result<(QuestionOption, Option<String>)> {
    let choice = q
        .options
        .get(index)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no option {index}"))?;
    let qid = q.question_id.clone();
    // Closing first makes a double press harmless: only the first one finds the question.
    let closed = host
        .db
        .call(move |c| {
            Ok(c.execute(
                "DELETE FROM pending_questions WHERE question_id = ?1",
                [&qid],
            )?)
        })
        .await?;
    if closed == 0 {
        anyhow::bail!("question already answered");
    }
    if q.question_id.starts_with(crate::approvals::PREFIX) {
        crate::approvals::decide(host, &q.question_id, index == 0, sender_id).await?;
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
        "questionId": q.question_id, "selectedOption": choice.value, "attachments": [], "isFromMe": false});
    let mut row = NewInbound::new("chat", content.to_string());
    row.channel_type = Some(q.channel_type.clone());
    row.platform_id = Some(q.platform_id.clone());
    row.thread_id = q.thread_id.clone();
    let dir = host
        .home
        .session(&sess.agent_group_id, &sess.id)?
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
mod tests {
    use super::*;

    #[test]
    fn numbered_or_labelled_replies() {
        let o = QuestionOption::normalize_all(&[
            json!("Tea"),
            json!({"label": "Coffee", "value": "cof"}),
        ]);
        assert_eq!(choice_from_text("2", &o), Some(1));
        assert_eq!(choice_from_text(" coffee ", &o), Some(1));
        assert_eq!(choice_from_text("3", &o), None);
        assert_eq!(choice_from_text("maybe", &o), None);
        assert_eq!(choice_from_text("COF", &o), Some(1));
    }
}
