//! Telegram over the Bot API (`TELEGRAM_API_URL`, default the public one): long polling
//! `getUpdates` with the offset persisted after each routed update, so no update is lost or
//! handled twice across restarts (a redelivered update maps to the same inbound row).
//!
//! Ids: chats `telegram:<chat_id>`, users `telegram:<user_id>`, forum topics → thread_id.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nanoclaw_protocol::content::Outbound;
use serde_json::{json, Value};

use super::{Capabilities, Channel, InboundEvent, OutboundItem};
use crate::{db, Host};

/// Channel type.
pub const CHANNEL: &str = "telegram";
/// Telegram's message length limit, in characters.
pub const MAX_TEXT: usize = 4096;

/// The Telegram adapter.
pub struct TelegramChannel {
    api: String,
    client: reqwest::Client,
    me: std::sync::OnceLock<(i64, String)>,
}

/// A Bot API failure, classified.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 429: wait this long.
    #[error("rate limited by Telegram (retry after {0} s)")]
    RetryAfter(u64),
    /// 401/404 on the token.
    #[error("Telegram rejected the bot token ({0}): check TELEGRAM_BOT_TOKEN")]
    Unauthorized(String),
    /// Anything else Telegram answered.
    #[error("Telegram {method}: {description}")]
    Api {
        /// Method.
        method: String,
        /// Telegram's description.
        description: String,
        /// Whether trying again may help (5xx).
        retryable: bool,
    },
    /// Network trouble.
    #[error("Telegram unreachable: {0}")]
    Transport(String),
}

impl TelegramChannel {
    /// An adapter for a token; `api` is the Bot API base URL.
    pub fn new(token: &str, api: &str) -> Self {
        Self {
            api: format!("{}/bot{token}", api.trim_end_matches('/')),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            me: std::sync::OnceLock::new(),
        }
    }

    /// One Bot API call (no retries).
    pub async fn call(&self, method: &str, body: &Value) -> Result<Value, ApiError> {
        let resp = self
            .client
            .post(format!("{}/{method}", self.api))
            .json(body)
            .send()
            .await
            .map_err(|e| ApiError::Transport(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let v: Value = resp
            .json()
            .await
            .map_err(|e| ApiError::Transport(e.without_url().to_string()))?;
        if v["ok"] == true {
            return Ok(v["result"].clone());
        }
        let description = v["description"]
            .as_str()
            .unwrap_or("unknown error")
            .to_string();
        Err(match status {
            429 => ApiError::RetryAfter(v["parameters"]["retry_after"].as_u64().unwrap_or(1)),
            401 | 404 if method == "getMe" || status == 401 => ApiError::Unauthorized(description),
            _ => ApiError::Api {
                method: method.into(),
                description,
                retryable: status >= 500,
            },
        })
    }

    /// A call with Telegram's flood control honoured and 5xx/transport errors retried.
    async fn call_retrying(&self, method: &str, body: &Value) -> Result<Value, ApiError> {
        let mut attempt = 0u32;
        loop {
            match self.call(method, body).await {
                Err(ApiError::RetryAfter(s)) if attempt < 4 => {
                    tracing::warn!(method, retry_after = s, "Telegram rate limit; waiting");
                    tokio::time::sleep(Duration::from_secs(s.min(60))).await;
                }
                Err(
                    ApiError::Api {
                        retryable: true, ..
                    }
                    | ApiError::Transport(_),
                ) if attempt < 4 => {
                    tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt))).await;
                }
                other => return other,
            }
            attempt += 1;
        }
    }

    fn chat_id(platform_id: &str) -> anyhow::Result<i64> {
        platform_id
            .strip_prefix("telegram:")
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("not a Telegram chat id: {platform_id}"))
    }

    /// Turns one update into an event (None for updates we do not handle).
    pub fn event(&self, u: &Value) -> Option<InboundEvent> {
        let m = u.get("message").or_else(|| u.get("edited_message"))?;
        let chat = &m["chat"];
        let text = m["text"].as_str().or(m["caption"].as_str())?.to_string();
        let (bot_id, bot_name) = self.me.get().cloned().unwrap_or_default();
        let from = &m["from"];
        let name = [from["first_name"].as_str(), from["last_name"].as_str()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let mention = !bot_name.is_empty()
            && text
                .to_lowercase()
                .contains(&format!("@{}", bot_name.to_lowercase()));
        let reply_to_bot = m["reply_to_message"]["from"]["id"].as_i64() == Some(bot_id);
        let thread = (chat["is_forum"] == true && m["is_topic_message"] == true)
            .then(|| m["message_thread_id"].as_i64().map(|t| t.to_string()))
            .flatten();
        Some(InboundEvent {
            channel_type: CHANNEL.into(),
            platform_id: format!("telegram:{}", chat["id"].as_i64()?),
            thread_id: thread,
            sender_handle: from["id"].as_i64()?.to_string(),
            sender_name: if name.is_empty() {
                from["username"].as_str().unwrap_or("someone").into()
            } else {
                name
            },
            text,
            is_mention: mention || reply_to_bot,
            is_group: chat["type"] != "private",
            chat_name: chat["title"]
                .as_str()
                .or(chat["username"].as_str())
                .or(chat["first_name"].as_str())
                .map(str::to_string),
            platform_message_id: m["message_id"].as_i64().map(|i| i.to_string()),
        })
    }

    async fn poll(self: Arc<Self>, host: Arc<Host>) {
        let mut offset: i64 = host
            .db
            .call(|c| Ok(db::channel_state::get(c, CHANNEL, "offset")?))
            .await
            .ok()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let timeout = host.settings.u64("TELEGRAM_POLL_TIMEOUT", 25);
        loop {
            let body = json!({"offset": offset, "timeout": timeout, "allowed_updates": ["message", "edited_message", "callback_query"]});
            let updates = tokio::select! {
                r = self.call("getUpdates", &body) => r,
                _ = host.shutdown_signal() => return,
            };
            let updates = match updates {
                Ok(Value::Array(u)) => u,
                Ok(_) => vec![],
                Err(ApiError::RetryAfter(s)) => {
                    tokio::time::sleep(Duration::from_secs(s.min(60))).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "getUpdates failed; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
            };
            for u in updates {
                let Some(id) = u["update_id"].as_i64() else {
                    continue;
                };
                if let Some(ev) = self.event(&u) {
                    if let Err(e) = host.route(ev).await {
                        // Not confirmed: the update comes back on the next poll.
                        tracing::error!(update = id, error = %e, "routing a Telegram update failed");
                        break;
                    }
                }
                offset = id + 1;
                let v = offset.to_string();
                if let Err(e) = host
                    .db
                    .call(move |c| Ok(db::channel_state::set(c, CHANNEL, "offset", &v)?))
                    .await
                {
                    tracing::error!(error = %e, "cannot persist the Telegram offset");
                }
            }
        }
    }
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

#[async_trait]
impl Channel for TelegramChannel {
    fn channel_type(&self) -> &'static str {
        CHANNEL
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            threads: true,
            mentions: true,
            edits: true,
            reactions: true,
            buttons: true,
            files: true,
            typing: true,
            cold_dm: false,
        }
    }

    async fn start(self: Arc<Self>, host: Arc<Host>) -> anyhow::Result<()> {
        let me = self
            .call_retrying("getMe", &json!({}))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let id = me["id"].as_i64().unwrap_or_default();
        let username = me["username"].as_str().unwrap_or_default().to_string();
        tracing::info!(bot = %username, "Telegram connected");
        let _ = self.me.set((id, username));
        tokio::spawn(self.clone().poll(host));
        Ok(())
    }

    async fn send(&self, item: &OutboundItem) -> anyhow::Result<Option<String>> {
        let chat = Self::chat_id(&item.platform_id)?;
        let thread = item
            .thread_id
            .as_deref()
            .and_then(|t| t.parse::<i64>().ok());
        let text = match (&item.content, super::text_of(&item.content)) {
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
                let (method, body) = if matches!(item.content, Outbound::Edit { .. }) {
                    let t: String = text.chars().take(MAX_TEXT).collect();
                    (
                        "editMessageText",
                        json!({"chat_id": chat, "message_id": target, "text": t}),
                    )
                } else {
                    (
                        "setMessageReaction",
                        json!({"chat_id": chat, "message_id": target, "reaction": [{"type": "emoji", "emoji": text}]}),
                    )
                };
                self.call_retrying(method, &body)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                return Ok(Some(target.to_string()));
            }
            _ => return Ok(None),
        };
        let mut first = None;
        for piece in split(&text, MAX_TEXT) {
            let mut body = json!({"chat_id": chat, "text": piece});
            if let Some(t) = thread {
                body["message_thread_id"] = json!(t);
            }
            let sent = self
                .call_retrying("sendMessage", &body)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            first.get_or_insert(sent["message_id"].as_i64().map(|i| i.to_string()));
        }
        Ok(first.flatten())
    }

    async fn typing(&self, platform_id: &str, thread_id: Option<&str>, on: bool) {
        // Telegram's indicator lasts ~5 s and stops by itself when a message is sent.
        let (true, Ok(chat)) = (on, Self::chat_id(platform_id)) else {
            return;
        };
        let mut body = json!({"chat_id": chat, "action": "typing"});
        if let Some(t) = thread_id.and_then(|t| t.parse::<i64>().ok()) {
            body["message_thread_id"] = json!(t);
        }
        if let Err(e) = self.call("sendChatAction", &body).await {
            tracing::debug!(error = %e, "typing indicator not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cleanly_under_the_limit() {
        let para = "word ".repeat(1000);
        let text = format!("{para}\n\n{para}");
        let parts = split(&text, MAX_TEXT);
        assert!(parts.iter().all(|p| p.chars().count() <= MAX_TEXT));
        assert_eq!(
            parts.concat().replace([' ', '\n'], ""),
            text.replace([' ', '\n'], "")
        );
        assert_eq!(split("short", MAX_TEXT), vec!["short"]);
        let unbroken = "é".repeat(5000);
        let p = split(&unbroken, MAX_TEXT);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].chars().count(), MAX_TEXT);
    }
}
