//! Telegram over the Bot API (`TELEGRAM_API_URL`, default the public one): long polling
//! `getUpdates` with the offset persisted after each routed update, so no update is lost or
//! handled twice across restarts (a redelivered update maps to the same inbound row).
//!
//! Ids: chats `telegram:<chat_id>`, users `telegram:<user_id>`, forum topics → thread_id.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nanoclaw_protocol::content::{CardView, Outbound, QuestionOption};
use serde_json::{json, Value};

use super::{Capabilities, Channel, InboundEvent, OutboundItem, StagedFile};
use crate::{db, Host};

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

/// The emoji as Telegram spells reactions: models write "❤️" (with the emoji variation
/// selector), Telegram only knows "❤". Telegram itself decides which emoji it allows.
pub fn reaction(emoji: &str) -> String {
    emoji.trim().chars().filter(|c| *c != '\u{fe0f}').collect()
}

/// The file a message carries, with a file name and MIME type: documents, photos (largest
/// size), voice notes, audio, video, round video notes, animations and stickers — so nothing a
/// person sends is silently ignored.
fn media_of(m: &Value) -> Option<(Value, String, String)> {
    let id = &m["message_id"];
    if let Some(p) = m["photo"].as_array().and_then(|sizes| sizes.last()) {
        return Some((p.clone(), format!("photo-{id}.jpg"), "image/jpeg".into()));
    }
    // (field, default name, default MIME type)
    const KINDS: &[(&str, &str, &str)] = &[
        ("document", "file", "application/octet-stream"),
        ("voice", "voice-{}.ogg", "audio/ogg"),
        ("audio", "audio-{}.mp3", "audio/mpeg"),
        ("video", "video-{}.mp4", "video/mp4"),
        ("video_note", "video-note-{}.mp4", "video/mp4"),
        ("animation", "animation-{}.mp4", "video/mp4"),
        ("sticker", "sticker-{}.webp", "image/webp"),
    ];
    KINDS.iter().find_map(|(field, name, mime)| {
        let f = m.get(*field)?;
        let name = f["file_name"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| name.replace("{}", &id.to_string()));
        let mime = f["mime_type"].as_str().unwrap_or(mime).to_string();
        Some((f.clone(), name, mime))
    })
}

/// An API error as a send error: a refusal Telegram would repeat (4xx other than 429) is
/// [`super::Refused`], so the host does not retry it.
fn send_error(e: ApiError) -> anyhow::Error {
    match e {
        ApiError::Api {
            retryable: false, ..
        } => anyhow::Error::new(super::Refused(e.to_string())),
        other => anyhow::anyhow!("{other}"),
    }
}

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

    /// One Bot API call (no retries).
    pub async fn call(&self, method: &str, body: &Value) -> Result<Value, ApiError> {
        let resp = self
            .client
            .post(format!("{}/{method}", self.api))
            .json(body)
            .send()
            .await
            .map_err(|e| ApiError::Transport(super::root_cause(&e.without_url())))?;
        let status = resp.status().as_u16();
        let v: Value = resp
            .json()
            .await
            .map_err(|e| ApiError::Transport(super::root_cause(&e.without_url())))?;
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

    /// Sends `md` as Telegram HTML in `body`; when Telegram refuses the markup, as plain text
    /// (the words matter more than the styling).
    async fn call_formatted(
        &self,
        method: &str,
        mut body: Value,
        md: &str,
    ) -> Result<Value, ApiError> {
        let html = super::markdown::to_telegram_html(md);
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

    /// Edits a sent message; false when Telegram can no longer edit it.
    async fn edit(&self, chat: i64, target: i64, text: &str) -> anyhow::Result<bool> {
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
            Err(e) => Err(send_error(e)),
        }
    }

    /// Sets a reaction, spelled as Telegram wants it; one it does not allow is refused with a
    /// hint the agent can act on.
    async fn react(&self, chat: i64, target: i64, emoji: &str) -> anyhow::Result<Option<String>> {
        let emoji = reaction(emoji);
        let body = json!({"chat_id": chat, "message_id": target, "reaction": [{"type": "emoji", "emoji": emoji}]});
        match self.call_retrying("setMessageReaction", &body).await {
            Ok(_) => Ok(Some(target.to_string())),
            Err(ApiError::Api { description, .. }) if description.contains("REACTION_INVALID") => {
                Err(anyhow::Error::new(super::Refused(format!(
                    "Telegram does not allow {emoji} as a reaction; allowed ones include 👍 👎 ❤ 🔥 🎉 🙏 👌 😁 🤔 👀 💯"
                ))))
            }
            Err(e) => Err(send_error(e)),
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
        let has_file = media_of(m).is_some();
        let text = match m["text"].as_str().or(m["caption"].as_str()) {
            Some(t) => t.to_string(),
            // What a file or a place says when it comes without words.
            None if m["sticker"]["emoji"].is_string() => {
                format!(
                    "[sticker {}]",
                    m["sticker"]["emoji"].as_str().unwrap_or_default()
                )
            }
            None if m["location"].is_object() => format!(
                "[location {}, {}]",
                m["location"]["latitude"], m["location"]["longitude"]
            ),
            None if has_file => String::new(),
            None => return None,
        };
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
            attachments: vec![],
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
        // Failed routings per update id (only the few at the head of the queue).
        let mut failures: std::collections::HashMap<i64, u32> = Default::default();
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
                // A webhook left on the bot (another tool, an earlier install) blocks polling:
                // this host is the bot's receiver, so it takes the updates back.
                Err(ApiError::Api { description, .. })
                    if description.contains("webhook is active") =>
                {
                    tracing::warn!(
                        "a webhook was set for this bot; removing it so long polling works"
                    );
                    if let Err(e) = self
                        .call("deleteWebhook", &json!({"drop_pending_updates": false}))
                        .await
                    {
                        tracing::error!(error = %e, "deleteWebhook failed");
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                    continue;
                }
                Err(ApiError::Api { description, .. })
                    if description.contains("terminated by other getUpdates") =>
                {
                    tracing::error!("another program is polling this bot's updates (a second NanoClaw with the same TELEGRAM_BOT_TOKEN?); retrying in 10 s");
                    tokio::time::sleep(Duration::from_secs(10)).await;
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
                if let Some(cb) = u.get("callback_query") {
                    self.on_callback(&host, cb).await;
                } else if let Some(mut ev) = self.event(&u) {
                    self.download_files(&host, &u, &mut ev).await;
                    if let Err(e) = host.route(ev.clone()).await {
                        // Not confirmed: the update comes back on the next poll, a few times;
                        // then it is recorded and skipped so the chats behind it are served.
                        let n = failures.entry(id).or_insert(0);
                        *n += 1;
                        if *n < crate::router::ROUTE_ATTEMPTS {
                            tracing::error!(update = id, error = %e, "routing a Telegram update failed");
                            tokio::time::sleep(Duration::from_millis(200 << *n)).await;
                            break;
                        }
                        crate::router::give_up(&host, &ev, &e).await;
                    }
                    failures.remove(&id);
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

impl TelegramChannel {
    /// Downloads a message's file (see [`media_of`]) into a staging folder.
    async fn download_files(&self, host: &Host, u: &Value, ev: &mut InboundEvent) {
        let m = u
            .get("message")
            .or_else(|| u.get("edited_message"))
            .unwrap_or(&Value::Null);
        let file = media_of(m);
        let Some((f, name, mime)) = file else { return };
        let name = nanoclaw_protocol::names::validate(&name)
            .map(str::to_string)
            .unwrap_or_else(|_| "file".into());
        let size = f["file_size"].as_u64().unwrap_or(0);
        if size > MAX_DOWNLOAD {
            ev.text.push_str(&format!("\n[attachment {name} not downloaded: {size} bytes is over the 20 MB Bot API limit]"));
            return;
        }
        match self
            .download(host, f["file_id"].as_str().unwrap_or_default(), &name)
            .await
        {
            Ok((path, size)) => ev.attachments.push(StagedFile {
                name,
                path,
                mime,
                size,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "Telegram file download failed");
                ev.text
                    .push_str(&format!("\n[attachment {name} could not be downloaded]"));
            }
        }
    }

    async fn download(
        &self,
        host: &Host,
        file_id: &str,
        name: &str,
    ) -> anyhow::Result<(std::path::PathBuf, u64)> {
        let f = self
            .call_retrying("getFile", &json!({"file_id": file_id}))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let file_path = f["file_path"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("getFile returned no file_path"))?;
        if file_path.split('/').any(|c| c == "..") {
            anyhow::bail!("refusing file_path {file_path:?}");
        }
        let mut resp = self
            .client
            .get(format!("{}/{file_path}", self.files_api))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.without_url()))?;
        if !resp.status().is_success() {
            anyhow::bail!("file download answered {}", resp.status());
        }
        let dir = host
            .home
            .data_dir()
            .join("tmp")
            .join(nanoclaw_protocol::new_id("tg"));
        tokio::fs::create_dir_all(&dir).await?;
        let path = dir.join(name);
        let mut out = tokio::fs::File::create(&path).await?;
        let mut size = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.without_url()))?
        {
            size += chunk.len() as u64;
            if size > MAX_DOWNLOAD {
                drop(out);
                let _ = tokio::fs::remove_dir_all(&dir).await;
                anyhow::bail!("file over the 20 MB limit");
            }
            tokio::io::AsyncWriteExt::write_all(&mut out, &chunk).await?;
        }
        tokio::io::AsyncWriteExt::flush(&mut out).await?;
        Ok((path, size))
    }

    /// A button press: answer the question in the asking session and update the card.
    async fn on_callback(&self, host: &Arc<Host>, cb: &Value) {
        let id = cb["id"].as_str().unwrap_or_default();
        let data = cb["data"].as_str().unwrap_or_default();
        let chat = cb["message"]["chat"]["id"].as_i64();
        let message_id = cb["message"]["message_id"].as_i64();
        let from = &cb["from"];
        let parsed = callback_answer(data).map(|(q, i)| (q.to_string(), i));
        let mut notice = "This question is no longer open.".to_string();
        if let Some((qid, index)) = parsed {
            match crate::questions::get(host, &qid).await {
                // The press must come from the card itself: its chat and its message.
                Ok(Some(q))
                    if chat.map(|c| format!("telegram:{c}")) == Some(q.platform_id.clone())
                        && (q.platform_message_id.is_none()
                            || q.platform_message_id == message_id.map(|m| m.to_string())) =>
                {
                    let name = from["first_name"]
                        .as_str()
                        .or(from["username"].as_str())
                        .unwrap_or("someone")
                        .to_string();
                    let sender = format!("telegram:{}", from["id"].as_i64().unwrap_or_default());
                    // Who may answer is checked in `questions::answer` (and logged there).
                    match crate::questions::answer(host, &q, index, &sender, &name).await {
                        Ok((choice, _)) => {
                            notice = format!("✓ {}", choice.label);
                            if let (Some(c), Some(m)) = (chat, message_id) {
                                let body = json!({"chat_id": c, "message_id": m, "text": format!("{}\n{}", q.title, choice.chosen_text()),
                                    "reply_markup": {"inline_keyboard": []}});
                                if let Err(e) = self.call_retrying("editMessageText", &body).await {
                                    tracing::warn!(error = %e, "could not update the answered card");
                                }
                            }
                        }
                        Err(crate::questions::AnswerError::NotAllowed(_)) => {
                            notice = "You are not allowed to answer this.".to_string();
                        }
                        Err(e) => tracing::debug!(error = %e, "button press not taken"),
                    }
                }
                Ok(Some(q)) => {
                    // Callback data naming a card it was not pressed on (a forged press):
                    // nothing is answered and the real card is left as it is.
                    tracing::warn!(question = %q.question_id, chat = ?chat, "answer refused: button press from outside its card");
                    notice = "You are not allowed to answer this.".to_string();
                }
                Ok(None) => {
                    // Expired or answered: close the card so nobody presses again.
                    if let (Some(c), Some(m)) = (chat, message_id) {
                        let _ = self
                            .call("editMessageReplyMarkup", &json!({"chat_id": c, "message_id": m, "reply_markup": {"inline_keyboard": []}}))
                            .await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "question lookup failed"),
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
        files: &[super::OutFile],
        text: &str,
    ) -> anyhow::Result<Option<String>> {
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
                    return Err(anyhow::Error::new(super::Refused(msg)));
                }
                anyhow::bail!(msg);
            };
            first.get_or_insert(sent["message_id"].as_i64().map(|i| i.to_string()));
        }
        for piece in split(&rest, MAX_TEXT).into_iter().filter(|p| !p.is_empty()) {
            let mut body = json!({"chat_id": chat, "text": piece});
            if let Some(t) = thread {
                body["message_thread_id"] = json!(t);
            }
            self.call_retrying("sendMessage", &body)
                .await
                .map_err(send_error)?;
        }
        Ok(first.flatten())
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
            .map_err(|e| match e {
                ApiError::Unauthorized(_) => anyhow::Error::new(super::Fatal(e.to_string())),
                other => anyhow::anyhow!("{other}"),
            })?;
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
                let sent = self
                    .call_retrying("sendMessage", &body)
                    .await
                    .map_err(send_error)?;
                return Ok(sent["message_id"].as_i64().map(|i| i.to_string()));
            }
        }
        if !item.files.is_empty() {
            let text = super::text_of(&item.content).unwrap_or_default();
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
        let text = match (
            &item.content,
            card_text.or_else(|| super::text_of(&item.content)),
        ) {
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
            let sent = self
                .call_formatted("sendMessage", body, &piece)
                .await
                .map_err(send_error)?;
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
