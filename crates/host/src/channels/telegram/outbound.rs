//! Rows out: text split to Telegram's limit (HTML, plain when refused), questions with
//! buttons, cards with link buttons, files, edits and reactions.

use std::time::Duration;

use nanoclaw_protocol::content::{CardView, Outbound, QuestionOption};
use serde_json::{json, Value};

use super::api::ApiError;
use super::callbacks::callback_data;
use super::{TelegramChannel, MAX_CALLBACK_DATA, MAX_CAPTION, MAX_TEXT};
use crate::channels::{text_of, OutFile, OutboundItem, SendError};

/// The emoji as Telegram spells reactions: models write "❤️" (with the emoji variation
/// selector), Telegram only knows "❤". Telegram itself decides which emoji it allows.
pub fn reaction(emoji: &str) -> String {
    emoji.trim().chars().filter(|c| *c != '\u{fe0f}').collect()
}

/// Splits text into pieces of at most `max` characters, preferring paragraph, line, then word
/// boundaries.
pub fn split(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.chars().count() > max {
        let cut_byte = rest
            .char_indices()
            .nth(max)
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let window = &rest[..cut_byte];
        let at = ["\n\n", "\n", " "]
            .iter()
            .find_map(|sep| window.rfind(sep).filter(|&i| i > 0).map(|i| i + sep.len()))
            .unwrap_or(cut_byte);
        out.push(rest[..at].trim_end().to_string());
        rest = &rest[at..];
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest.to_string());
    }
    out
}

impl TelegramChannel {
    /// Edits a sent message; false when Telegram can no longer edit it.
    async fn edit(&self, chat: i64, target: i64, text: &str) -> Result<bool, SendError> {
        let t: String = text.chars().take(MAX_TEXT - 512).collect();
        let body = json!({"chat_id": chat, "message_id": target});
        match self.call_formatted("editMessageText", body, &t).await {
            Ok(_) => Ok(true),
            // The same text again: already what the agent wants.
            Err(ApiError::Api { description, .. })
                if description.contains("message is not modified") =>
            {
                Ok(true)
            }
            Err(ApiError::Api { description, .. })
                if description.contains("message to edit not found")
                    || description.contains("message can't be edited") =>
            {
                tracing::info!(error = %description, "message cannot be edited; sending the new text instead");
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sets a reaction, spelled as Telegram wants it; one it does not allow is refused with a
    /// hint the agent can act on.
    async fn react(
        &self,
        chat: i64,
        target: i64,
        emoji: &str,
    ) -> Result<Option<String>, SendError> {
        let emoji = reaction(emoji);
        let body = json!({"chat_id": chat, "message_id": target, "reaction": [{"type": "emoji", "emoji": emoji}]});
        match self.call_retrying("setMessageReaction", &body).await {
            Ok(_) => Ok(Some(target.to_string())),
            Err(ApiError::Api { description, .. }) if description.contains("REACTION_INVALID") => {
                Err(SendError::Refused(format!(
                    "Telegram does not allow {emoji} as a reaction; allowed ones include 👍 👎 ❤ 🔥 🎉 🙏 👌 😁 🤔 👀 💯"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A question as a message with one button per option (None when ids do not fit
    /// Telegram's callback_data limit: the numbered-text fallback is used then).
    fn question_body(
        chat: i64,
        question_id: &str,
        title: &str,
        question: &str,
        options: &[Value],
    ) -> Option<Value> {
        // The index, not the value, rides in callback_data: it must fit Telegram's 64 bytes.
        let rows: Option<Vec<Value>> = QuestionOption::normalize_all(options)
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let data = callback_data(question_id, i);
                (data.len() <= MAX_CALLBACK_DATA)
                    .then(|| json!([{"text": o.label, "callback_data": data}]))
            })
            .collect();
        let text = if title.is_empty() {
            question.to_string()
        } else {
            format!("{title}\n{question}")
        };
        Some(json!({"chat_id": chat, "text": text, "reply_markup": {"inline_keyboard": rows?}}))
    }

    /// Sends files from the outbox: photos with sendPhoto, the rest with sendDocument; the
    /// text rides as the first caption (rest sent as messages).
    async fn send_files(
        &self,
        chat: i64,
        thread: Option<i64>,
        files: &[OutFile],
        text: &str,
    ) -> Result<Option<String>, SendError> {
        let (caption, rest) = if text.chars().count() <= MAX_CAPTION {
            (text.to_string(), String::new())
        } else {
            (String::new(), text.to_string())
        };
        let mut first = None;
        for (i, file) in files.iter().enumerate() {
            // Read once by delivery through protocol::beneath (checked, capped); a retry
            // clones the reference, not the bytes.
            let (bytes, name) = (&file.data, file.name.clone());
            let lower = name.to_lowercase();
            let photo = [".jpg", ".jpeg", ".png", ".webp"]
                .iter()
                .any(|e| lower.ends_with(e))
                && bytes.len() <= 10 * 1024 * 1024;
            let (method, field) = if photo {
                ("sendPhoto", "photo")
            } else {
                ("sendDocument", "document")
            };
            let mut attempt = 0u32;
            let sent = loop {
                let mut form = reqwest::multipart::Form::new()
                    .text("chat_id", chat.to_string())
                    .part(
                        field,
                        reqwest::multipart::Part::stream_with_length(
                            reqwest::Body::from(bytes.clone()),
                            bytes.len() as u64,
                        )
                        .file_name(name.clone()),
                    );
                if i == 0 && !caption.is_empty() {
                    form = form.text("caption", caption.clone());
                }
                if let Some(t) = thread {
                    form = form.text("message_thread_id", t.to_string());
                }
                let resp = self
                    .client
                    .post(format!("{}/{method}", self.api))
                    .multipart(form)
                    .send()
                    .await;
                let v: Value = match resp {
                    Ok(r) => r.json().await.unwrap_or_default(),
                    Err(e) => {
                        json!({"ok": false, "description": e.without_url().to_string(), "error_code": 502})
                    }
                };
                if v["ok"] == true {
                    break v["result"].clone();
                }
                let retry = v["parameters"]["retry_after"].as_u64();
                let code = v["error_code"].as_u64().unwrap_or(0);
                if attempt < 4 && (retry.is_some() || code >= 500) {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_secs(retry.unwrap_or(1).min(60))).await;
                    continue;
                }
                let msg = format!(
                    "Telegram {method}: {}",
                    v["description"].as_str().unwrap_or("failed")
                );
                // Too big, wrong type, blocked bot…: trying again would get the same answer.
                if (400..500).contains(&code) && code != 429 {
                    return Err(SendError::Refused(msg));
                }
                return Err(SendError::Transient(anyhow::anyhow!(msg)));
            };
            first.get_or_insert(sent["message_id"].as_i64().map(|i| i.to_string()));
        }
        for piece in split(&rest, MAX_TEXT).into_iter().filter(|p| !p.is_empty()) {
            let mut body = json!({"chat_id": chat, "text": piece});
            if let Some(t) = thread {
                body["message_thread_id"] = json!(t);
            }
            self.call_retrying("sendMessage", &body).await?;
        }
        Ok(first.flatten())
    }

    /// Sends one outbound row: a question with buttons, files, a card with link buttons,
    /// an edit or reaction, or text split to Telegram's limit.
    pub(super) async fn send_item(&self, item: &OutboundItem) -> Result<Option<String>, SendError> {
        let chat = Self::chat_id(&item.platform_id)?;
        let thread = item
            .thread_id
            .as_deref()
            .and_then(|t| t.parse::<i64>().ok());
        if let Outbound::AskQuestion {
            question_id,
            title,
            question,
            options,
        } = &item.content
        {
            if let Some(mut body) = Self::question_body(chat, question_id, title, question, options)
            {
                if let Some(t) = thread {
                    body["message_thread_id"] = json!(t);
                }
                let sent = self.call_retrying("sendMessage", &body).await?;
                return Ok(sent["message_id"].as_i64().map(|i| i.to_string()));
            }
        }
        if !item.files.is_empty() {
            let text = text_of(&item.content).unwrap_or_default();
            return self.send_files(chat, thread, &item.files, &text).await;
        }
        // A card shows as its own text with its links as URL buttons under it.
        let mut markup = None;
        let card_text = match &item.content {
            Outbound::Card { card, .. } => {
                let view = CardView::parse(card);
                let text = view.markdown(false);
                (!text.is_empty() && text.chars().count() <= MAX_TEXT - 512).then(|| {
                    let rows: Vec<Value> = view
                        .links
                        .iter()
                        .map(|(label, url)| json!([{"text": label, "url": url}]))
                        .collect();
                    if !rows.is_empty() {
                        markup = Some(json!({"inline_keyboard": rows}));
                    }
                    text
                })
            }
            _ => None,
        };
        let text = match (&item.content, card_text.or_else(|| text_of(&item.content))) {
            (_, Some(t)) => t,
            (Outbound::Edit { text, .. } | Outbound::Reaction { emoji: text, .. }, None) => {
                let Some(target) = item
                    .target_platform_message_id
                    .as_deref()
                    .and_then(|m| m.parse::<i64>().ok())
                else {
                    tracing::warn!(id = %item.message_out_id, "edit/reaction target has no Telegram message; skipped");
                    return Ok(None);
                };
                if matches!(item.content, Outbound::Reaction { .. }) {
                    return self.react(chat, target, text).await;
                }
                match self.edit(chat, target, text).await? {
                    true => return Ok(Some(target.to_string())),
                    // Too old to edit (48 h) or gone: the new text arrives as a message of its
                    // own, as on channels without edits.
                    false => text.clone(),
                }
            }
            _ => return Ok(None),
        };
        let mut first = None;
        // Split before converting: HTML grows the text, and a piece stays valid markdown.
        let pieces = split(&text, MAX_TEXT - 512);
        let last = pieces.len().saturating_sub(1);
        for (i, piece) in pieces.into_iter().enumerate() {
            let mut body = json!({"chat_id": chat});
            if let Some(t) = thread {
                body["message_thread_id"] = json!(t);
            }
            if let (true, Some(m)) = (i == last, &markup) {
                body["reply_markup"] = m.clone();
            }
            let sent = self.call_formatted("sendMessage", body, &piece).await?;
            first.get_or_insert(sent["message_id"].as_i64().map(|i| i.to_string()));
        }
        Ok(first.flatten())
    }
}
