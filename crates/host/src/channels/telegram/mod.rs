//! Telegram over the Bot API (`TELEGRAM_API_URL`, default the public one): long polling
//! `getUpdates` with the offset persisted after each routed update, so no update is lost or
//! handled twice across restarts (a redelivered update maps to the same inbound row).
//!
//! Ids: chats `telegram:<chat_id>`, users `telegram:<user_id>`, forum topics → thread_id.
//!
//! `api` is the Bot API client (calls, retries, errors), `inbound` turns updates into events
//! (polling, files), `outbound` sends rows, `callbacks` takes button presses.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::registry::{no_checks, single_token, SettingSpec, SetupStep, Spec};
use super::{Capabilities, Channel, ChannelContext, Fatal, OutboundItem};

mod api;
mod callbacks;
mod inbound;
mod outbound;

pub use api::ApiError;
pub use callbacks::{callback_answer, callback_data};
pub use outbound::{reaction, split};

/// Channel type.
pub const CHANNEL: &str = "telegram";
/// Telegram's message length limit, in characters.
pub const MAX_TEXT: usize = 4096;

/// The Telegram adapter.
pub struct TelegramChannel {
    api: String,
    files_api: String,
    client: reqwest::Client,
    me: std::sync::OnceLock<(i64, String)>,
}

/// Largest file a bot may download through the Bot API.
pub const MAX_DOWNLOAD: u64 = 20 * 1024 * 1024;
/// Caption limit of sendDocument/sendPhoto.
pub const MAX_CAPTION: usize = 1024;
/// callback_data limit, in bytes.
const MAX_CALLBACK_DATA: usize = 64;

/// Telegram's line of the registry: its settings, its setup step and its constructor.
pub static SPEC: Spec = Spec {
    channel_type: CHANNEL,
    settings: &[
        SettingSpec {
            key: "TELEGRAM_BOT_TOKEN",
            secret: true,
            required: true,
            help: "the bot's token from @BotFather",
        },
        SettingSpec {
            key: "TELEGRAM_API_URL",
            secret: false,
            required: false,
            help: "the Bot API base URL (default https://api.telegram.org)",
        },
        SettingSpec {
            key: "TELEGRAM_POLL_TIMEOUT",
            secret: false,
            required: false,
            help: "seconds a getUpdates long poll waits (default 25)",
        },
    ],
    doctor: no_checks,
    setup: Some(SetupStep {
        key: "TELEGRAM_BOT_TOKEN",
        prompt: "Telegram bot token from @BotFather (hidden; Enter to skip)",
        flag: "telegram-token-env",
        flag_help: "Read a Telegram bot token from this environment variable (enables Telegram)",
        noun: "Telegram bot token",
        short_noun: "the token",
        check: single_token,
        pairing: Some(
            "Telegram: start the host, then send this code to your bot in a DM to become its owner:",
        ),
    }),
    build: |_, settings| from_settings(settings),
};

/// The adapter, when `TELEGRAM_BOT_TOKEN` is set (`TELEGRAM_API_URL` overrides the API).
pub fn from_settings(settings: &crate::config::Settings) -> Option<Arc<dyn Channel>> {
    let token = settings.secret("TELEGRAM_BOT_TOKEN")?;
    let api = settings
        .get("TELEGRAM_API_URL")
        .unwrap_or_else(|| "https://api.telegram.org".into());
    Some(Arc::new(TelegramChannel::new(&token, &api)))
}

impl TelegramChannel {
    /// An adapter for a token; `api` is the Bot API base URL.
    pub fn new(token: &str, api: &str) -> Self {
        Self {
            api: format!("{}/bot{token}", api.trim_end_matches('/')),
            files_api: format!("{}/file/bot{token}", api.trim_end_matches('/')),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            me: std::sync::OnceLock::new(),
        }
    }
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

    async fn start(self: Arc<Self>, ctx: ChannelContext) -> anyhow::Result<()> {
        let me = self
            .call_retrying("getMe", &json!({}))
            .await
            .map_err(|e| match e {
                ApiError::Unauthorized(_) => anyhow::Error::new(Fatal(e.to_string())),
                other => anyhow::anyhow!("{other}"),
            })?;
        let id = me["id"].as_i64().unwrap_or_default();
        let username = me["username"].as_str().unwrap_or_default().to_string();
        tracing::info!(bot = %username, "Telegram connected");
        let _ = self.me.set((id, username));
        tokio::spawn(self.clone().poll(ctx));
        Ok(())
    }

    async fn send(
        &self,
        item: &OutboundItem,
    ) -> Result<Option<String>, crate::channels::SendError> {
        self.send_item(item).await
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
    use super::outbound::split;
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
