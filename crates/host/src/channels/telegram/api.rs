//! The Bot API client: one call, calls with Telegram's flood control and 5xx retries, HTML
//! with a plain-text fallback, and errors classified once.

use std::time::Duration;

use serde_json::{json, Value};

use super::{TelegramChannel, MAX_TEXT};
use crate::channels::{root_cause, SendError};

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

impl From<ApiError> for SendError {
    /// A refusal Telegram would repeat (4xx other than 429) is [`SendError::Refused`], so the
    /// host does not retry it.
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Api {
                retryable: false, ..
            } => SendError::Refused(e.to_string()),
            other => SendError::Transient(other.into()),
        }
    }
}

impl TelegramChannel {
    /// One Bot API call (no retries).
    pub async fn call(&self, method: &str, body: &Value) -> Result<Value, ApiError> {
        let resp = self
            .client
            .post(format!("{}/{method}", self.api))
            .json(body)
            .send()
            .await
            .map_err(|e| ApiError::Transport(root_cause(&e.without_url())))?;
        let status = resp.status().as_u16();
        let v: Value = resp
            .json()
            .await
            .map_err(|e| ApiError::Transport(root_cause(&e.without_url())))?;
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
    pub(super) async fn call_retrying(
        &self,
        method: &str,
        body: &Value,
    ) -> Result<Value, ApiError> {
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

    /// Sends `md` as Telegram HTML in `body`; when Telegram refuses the markup, as plain text
    /// (the words matter more than the styling).
    pub(super) async fn call_formatted(
        &self,
        method: &str,
        mut body: Value,
        md: &str,
    ) -> Result<Value, ApiError> {
        let html = crate::channels::markdown::to_telegram_html(md);
        if html.chars().count() > MAX_TEXT {
            body["text"] = json!(md);
            return self.call_retrying(method, &body).await;
        }
        body["text"] = json!(html);
        body["parse_mode"] = json!("HTML");
        match self.call_retrying(method, &body).await {
            Err(ApiError::Api { description, .. })
                if description.contains("can't parse entities") =>
            {
                tracing::warn!(error = %description, "Telegram refused the HTML; sent as plain text");
                body["text"] = json!(md);
                body.as_object_mut().map(|o| o.remove("parse_mode"));
                self.call_retrying(method, &body).await
            }
            other => other,
        }
    }

    pub(super) fn chat_id(platform_id: &str) -> anyhow::Result<i64> {
        platform_id
            .strip_prefix("telegram:")
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("not a Telegram chat id: {platform_id}"))
    }
}
