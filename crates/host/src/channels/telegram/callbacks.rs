//! Button presses (`callback_query`): the press goes to the host, which checks the card and
//! the presser; the card then shows the choice, or closes when the question is gone.

use serde_json::{json, Value};

use super::TelegramChannel;
use crate::channels::{ChannelContext, Press, PressOutcome};

/// A question button's callback_data: the option's index, not its value, so it fits 64 bytes.
pub fn callback_data(question_id: &str, index: usize) -> String {
    format!("q|{question_id}|{index}")
}

/// The question id and option index of a button press (callback_data is client-supplied: any
/// string may arrive). Question ids may hold `|`; the index is after the last one.
pub fn callback_answer(data: &str) -> Option<(&str, usize)> {
    let (q, i) = data.strip_prefix("q|")?.rsplit_once('|')?;
    Some((q, i.parse().ok()?))
}

impl TelegramChannel {
    /// A button press: answer the question in the asking session and update the card.
    pub(super) async fn on_callback(&self, ctx: &ChannelContext, cb: &Value) {
        let id = cb["id"].as_str().unwrap_or_default();
        let chat = cb["message"]["chat"]["id"].as_i64();
        let message_id = cb["message"]["message_id"].as_i64();
        let from = &cb["from"];
        let outcome = match (
            callback_answer(cb["data"].as_str().unwrap_or_default()),
            chat,
        ) {
            (Some((question_id, index)), Some(c)) => {
                ctx.press(Press {
                    question_id: question_id.to_string(),
                    index,
                    platform_id: format!("telegram:{c}"),
                    platform_message_id: message_id.map(|m| m.to_string()),
                    sender_handle: from["id"].as_i64().unwrap_or_default().to_string(),
                    sender_name: from["first_name"]
                        .as_str()
                        .or(from["username"].as_str())
                        .unwrap_or("someone")
                        .to_string(),
                })
                .await
            }
            _ => PressOutcome::NotTaken,
        };
        let notice = match &outcome {
            PressOutcome::Answered { label, .. } => format!("✓ {label}"),
            PressOutcome::NotAllowed => "You are not allowed to answer this.".to_string(),
            PressOutcome::Gone | PressOutcome::NotTaken => {
                "This question is no longer open.".to_string()
            }
        };
        if let (Some(c), Some(m)) = (chat, message_id) {
            match &outcome {
                PressOutcome::Answered { title, chosen, .. } => {
                    let body = json!({"chat_id": c, "message_id": m, "text": format!("{title}\n{chosen}"),
                        "reply_markup": {"inline_keyboard": []}});
                    if let Err(e) = self.call_retrying("editMessageText", &body).await {
                        tracing::warn!(error = %e, "could not update the answered card");
                    }
                }
                // Expired or answered: close the card so nobody presses again.
                PressOutcome::Gone => {
                    let _ = self
                        .call("editMessageReplyMarkup", &json!({"chat_id": c, "message_id": m, "reply_markup": {"inline_keyboard": []}}))
                        .await;
                }
                // A forged press (data naming another card) leaves the real card as it is.
                PressOutcome::NotAllowed | PressOutcome::NotTaken => {}
            }
        }
        if let Err(e) = self
            .call(
                "answerCallbackQuery",
                &json!({"callback_query_id": id, "text": notice}),
            )
            .await
        {
            tracing::debug!(error = %e, "answerCallbackQuery failed");
        }
    }
}
