//! A fake Telegram Bot API on 127.0.0.1: the real paths (`/bot<token>/<method>`), JSON shapes
//! (`{"ok":true,"result":…}` / `{"ok":false,"error_code":…,"description":…}`), long polling
//! `getUpdates` with offset confirmation, and injectable 429s. Tests push updates and read what
//! the bot sent.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

#[derive(Default)]
struct Inner {
    updates: VecDeque<Value>,
    next_update: i64,
    next_message: i64,
    sent: Vec<(String, Value)>,
    fail_429: Vec<(String, u64)>,
    polls: u64,
    files: std::collections::HashMap<String, Vec<u8>>,
    reject_html: usize,
    uploads: Vec<Upload>,
    /// Text of each message the bot sent, by (chat, message_id): edits are checked against it.
    bot_texts: std::collections::HashMap<(i64, i64), String>,
    /// Messages Telegram no longer lets the bot edit (older than 48 h).
    frozen: std::collections::HashSet<i64>,
    /// A webhook URL set on the bot: getUpdates is refused (409) while it is.
    webhook: Option<String>,
}

/// Reactions Telegram accepts from bots (Bot API `ReactionTypeEmoji`); anything else is
/// `400 REACTION_INVALID`.
const REACTIONS: &[&str] = &[
    "👍",
    "👎",
    "❤",
    "🔥",
    "🥰",
    "👏",
    "😁",
    "🤔",
    "🤯",
    "😱",
    "🤬",
    "😢",
    "🎉",
    "🤩",
    "🤮",
    "💩",
    "🙏",
    "👌",
    "🕊",
    "🤡",
    "🥱",
    "🥴",
    "😍",
    "🐳",
    "❤\u{200d}🔥",
    "🌚",
    "🌭",
    "💯",
    "🤣",
    "⚡",
    "🍌",
    "🏆",
    "💔",
    "🤨",
    "😐",
    "🍓",
    "🍾",
    "💋",
    "🖕",
    "😈",
    "😴",
    "😭",
    "🤓",
    "👻",
    "👨\u{200d}💻",
    "👀",
    "🎃",
    "🙈",
    "😇",
    "😨",
    "🤝",
    "✍",
    "🤗",
    "🫡",
    "🎅",
    "🎄",
    "☃",
    "💅",
    "🤪",
    "🗿",
    "🆒",
    "💘",
    "🙉",
    "🦄",
    "😘",
    "💊",
    "🙊",
    "😎",
    "👾",
    "🤷\u{200d}♂",
    "🤷",
    "🤷\u{200d}♀",
    "😡",
];

/// A file the bot uploaded (sendDocument / sendPhoto, multipart).
#[derive(Debug, Clone)]
pub struct Upload {
    /// `sendDocument` or `sendPhoto`.
    pub method: String,
    /// Text fields (chat_id, caption, …).
    pub fields: Value,
    /// The file part's name.
    pub filename: String,
    /// The file part's bytes.
    pub bytes: Vec<u8>,
}

/// The fake's shared state.
#[derive(Clone)]
pub struct FakeTelegram {
    token: String,
    inner: Arc<Mutex<Inner>>,
    notify: Arc<tokio::sync::Notify>,
    url: String,
    _rt: Arc<tokio::runtime::Runtime>,
}

/// The bot's own identity in the fake.
pub const BOT_ID: i64 = 7_000_001;
/// The bot's username.
pub const BOT_USERNAME: &str = "nano_test_bot";

impl FakeTelegram {
    /// Starts a fake accepting `token`, on its own runtime thread.
    pub fn start(token: &str) -> Self {
        Self::start_on(token, "127.0.0.1:0")
    }

    /// A fake on a given address (a test that first lets the host find the port closed).
    pub fn start_on(token: &str, addr: &str) -> Self {
        let rt = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime"),
        );
        let inner = Arc::new(Mutex::new(Inner {
            next_update: 1,
            next_message: 100,
            ..Default::default()
        }));
        let notify = Arc::new(tokio::sync::Notify::new());
        let state = (token.to_string(), inner.clone(), notify.clone());
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(addr))
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let app = axum::Router::new()
            .route("/{bot}/{method}", axum::routing::post(handle).get(handle))
            .route("/file/{bot}/{*path}", axum::routing::get(download))
            .with_state(state);
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            token: token.into(),
            inner,
            notify,
            url,
            _rt: rt,
        }
    }

    /// Base URL for `TELEGRAM_API_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The accepted token.
    pub fn token(&self) -> &str {
        &self.token
    }

    fn push(&self, mut update: Value) -> i64 {
        let mut g = self.inner.lock().unwrap();
        let id = g.next_update;
        g.next_update += 1;
        update["update_id"] = json!(id);
        g.updates.push_back(update);
        drop(g);
        self.notify.notify_waiters();
        id
    }

    /// Queues a text message from user `from` in chat `chat` (`private`, `group`, `supergroup`),
    /// optionally in a forum topic. Returns the update id.
    pub fn message(
        &self,
        chat: i64,
        chat_type: &str,
        from: i64,
        text: &str,
        topic: Option<i64>,
    ) -> i64 {
        let msg = self.text_message(chat, chat_type, from, text, topic);
        self.push(json!({"message": msg}))
    }

    /// Queues a reply to an earlier message (id `to`, by `to_name`, saying `to_text`), as
    /// Telegram sends it: the original rides along in `reply_to_message`. A negative chat id
    /// is a supergroup, a positive one a DM.
    pub fn reply(
        &self,
        chat: i64,
        from: i64,
        text: &str,
        to: i64,
        to_name: &str,
        to_text: &str,
    ) -> i64 {
        let chat_type = if chat < 0 { "supergroup" } else { "private" };
        let mut msg = self.text_message(chat, chat_type, from, text, None);
        msg["reply_to_message"] = json!({
            "message_id": to,
            "date": 1_763_000_000,
            "chat": msg["chat"].clone(),
            "from": {"id": 4242, "is_bot": false, "first_name": to_name},
            "text": to_text,
        });
        self.push(json!({"message": msg}))
    }

    fn text_message(
        &self,
        chat: i64,
        chat_type: &str,
        from: i64,
        text: &str,
        topic: Option<i64>,
    ) -> Value {
        let mid = {
            let mut g = self.inner.lock().unwrap();
            g.next_message += 1;
            g.next_message
        };
        let mut chat_obj = json!({"id": chat, "type": chat_type});
        if chat_type == "private" {
            chat_obj["first_name"] = json!(format!("User{from}"));
        } else {
            chat_obj["title"] = json!(format!("Group {chat}"));
        }
        if topic.is_some() {
            chat_obj["is_forum"] = json!(true);
        }
        let mut msg = json!({
            "message_id": mid,
            "date": 1_764_000_000,
            "chat": chat_obj,
            "from": {"id": from, "is_bot": false, "first_name": format!("User{from}")},
            "text": text,
        });
        if let Some(t) = topic {
            msg["message_thread_id"] = json!(t);
            msg["is_topic_message"] = json!(true);
        }
        if let Some(pos) = text.find(&format!("@{BOT_USERNAME}")) {
            msg["entities"] =
                json!([{"type": "mention", "offset": pos, "length": BOT_USERNAME.len() + 1}]);
        }
        msg
    }

    fn next_message_id(&self) -> i64 {
        let mut g = self.inner.lock().unwrap();
        g.next_message += 1;
        g.next_message
    }

    /// Queues a document message (the bytes are served by getFile + the file path).
    pub fn document(
        &self,
        chat: i64,
        from: i64,
        name: &str,
        mime: &str,
        bytes: &[u8],
        caption: Option<&str>,
    ) -> i64 {
        let fields = json!({"file_name": name, "mime_type": mime});
        self.media(chat, from, "document", fields, bytes, caption)
    }

    /// Queues a DM carrying a file in `field` (`document`, `voice`, `audio`, `video`,
    /// `video_note`, `animation`, `sticker`) with the platform's other `fields` (mime_type,
    /// duration, emoji…); its bytes are served by getFile + the file path.
    pub fn media(
        &self,
        chat: i64,
        from: i64,
        field: &str,
        mut fields: Value,
        bytes: &[u8],
        caption: Option<&str>,
    ) -> i64 {
        let mid = self.next_message_id();
        let file_id = format!("{field}-{mid}");
        self.inner
            .lock()
            .unwrap()
            .files
            .insert(file_id.clone(), bytes.to_vec());
        fields["file_id"] = json!(file_id);
        fields["file_unique_id"] = json!(format!("u{mid}"));
        fields["file_size"] = json!(bytes.len());
        let mut msg = json!({
            "message_id": mid, "date": 1_764_000_000,
            "chat": {"id": chat, "type": "private", "first_name": format!("User{from}")},
            "from": {"id": from, "is_bot": false, "first_name": format!("User{from}")},
        });
        msg[field] = fields;
        if let Some(c) = caption {
            msg["caption"] = json!(c);
        }
        self.push(json!({"message": msg}))
    }

    /// Queues a DM sharing a location.
    pub fn location(&self, chat: i64, from: i64, latitude: f64, longitude: f64) -> i64 {
        let mid = self.next_message_id();
        self.push(json!({"message": {
            "message_id": mid, "date": 1_764_000_000,
            "chat": {"id": chat, "type": "private", "first_name": format!("User{from}")},
            "from": {"id": from, "is_bot": false, "first_name": format!("User{from}")},
            "location": {"latitude": latitude, "longitude": longitude},
        }}))
    }

    /// A user presses an inline button of a message the bot sent.
    pub fn press(&self, chat: i64, from: i64, message_id: i64, data: &str) -> i64 {
        let id = self.next_message_id();
        self.push(json!({"callback_query": {
            "id": format!("cb{id}"),
            "from": {"id": from, "is_bot": false, "first_name": format!("User{from}")},
            "message": {"message_id": message_id, "date": 1_764_000_000, "chat": {"id": chat, "type": "private"}, "text": ""},
            "chat_instance": "1",
            "data": data,
        }}))
    }

    /// The next `n` sendMessage calls with `parse_mode` answer Telegram's 400 "can't parse entities".
    pub fn reject_html(&self, n: usize) {
        self.inner.lock().unwrap().reject_html = n;
    }

    /// Files the bot uploaded.
    pub fn uploads(&self) -> Vec<Upload> {
        self.inner.lock().unwrap().uploads.clone()
    }

    /// The bot's messages (`sendMessage`) to `chat`.
    pub fn replies_to(&self, chat: i64) -> Vec<Value> {
        self.calls("sendMessage")
            .into_iter()
            .filter(|c| c["chat_id"] == chat)
            .collect()
    }

    /// Waits (20 s at most) until the bot sent `n` messages to `chat`; returns them all.
    pub fn wait_replies(&self, chat: i64, n: usize) -> Vec<Value> {
        crate::eventually(std::time::Duration::from_secs(20), || {
            let r = self.replies_to(chat);
            (r.len() >= n).then_some(r)
        })
        .unwrap_or_else(|| {
            panic!(
                "expected {n} replies in chat {chat}, got {:?}",
                self.replies_to(chat)
            )
        })
    }

    /// Calls the bot made to `method`, in order (request bodies).
    pub fn calls(&self, method: &str) -> Vec<Value> {
        self.inner
            .lock()
            .unwrap()
            .sent
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Sets a webhook on the bot, as another tool might have (setWebhook).
    pub fn set_webhook(&self, url: &str) {
        self.inner.lock().unwrap().webhook = Some(url.to_string());
    }

    /// The webhook currently set, if any.
    pub fn webhook(&self) -> Option<String> {
        self.inner.lock().unwrap().webhook.clone()
    }

    /// Makes a sent message too old to edit (Telegram's 48-hour limit).
    pub fn freeze(&self, message_id: i64) {
        self.inner.lock().unwrap().frozen.insert(message_id);
    }

    /// The next `n` calls to `method` answer 429 with `retry_after` seconds.
    pub fn fail_with_429(&self, method: &str, n: usize, retry_after: u64) {
        let mut g = self.inner.lock().unwrap();
        for _ in 0..n {
            g.fail_429.push((method.to_string(), retry_after));
        }
    }

    /// Updates not yet confirmed by a later offset.
    pub fn unconfirmed(&self) -> usize {
        self.inner.lock().unwrap().updates.len()
    }

    /// How many getUpdates calls were answered.
    pub fn polls(&self) -> u64 {
        self.inner.lock().unwrap().polls
    }
}

type St = (String, Arc<Mutex<Inner>>, Arc<tokio::sync::Notify>);

fn err(code: u16, description: &str, extra: Option<Value>) -> Response {
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if let Some(p) = extra {
        body["parameters"] = p;
    }
    (axum::http::StatusCode::from_u16(code).unwrap(), Json(body)).into_response()
}

async fn download(
    State((token, inner, _)): State<St>,
    Path((bot, path)): Path<(String, String)>,
) -> Response {
    if bot != format!("bot{token}") {
        return err(401, "Unauthorized", None);
    }
    let id = path.rsplit('/').next().unwrap_or_default().to_string();
    match inner.lock().unwrap().files.get(&id) {
        Some(b) => b.clone().into_response(),
        None => err(404, "Not Found", None),
    }
}

async fn handle(
    State((token, inner, notify)): State<St>,
    Path((bot, method)): Path<(String, String)>,
    req: axum::extract::Request,
) -> Response {
    use axum::extract::FromRequest;
    if bot != format!("bot{token}") {
        return err(401, "Unauthorized", None);
    }
    let multipart = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("multipart/form-data"));
    let body = if multipart {
        let Ok(mut mp) = axum::extract::Multipart::from_request(req, &()).await else {
            return err(400, "Bad Request: bad multipart body", None);
        };
        let mut fields = json!({});
        let mut file = None;
        while let Ok(Some(field)) = mp.next_field().await {
            let name = field.name().unwrap_or_default().to_string();
            match field.file_name().map(str::to_string) {
                Some(fname) => {
                    file = Some((fname, field.bytes().await.unwrap_or_default().to_vec()))
                }
                None => fields[name] = json!(field.text().await.unwrap_or_default()),
            }
        }
        let Some((filename, bytes)) = file else {
            return err(400, "Bad Request: there is no file in the request", None);
        };
        if let Some(id) = fields["chat_id"]
            .as_str()
            .and_then(|c| c.parse::<i64>().ok())
        {
            fields["chat_id"] = json!(id);
        }
        fields["filename"] = json!(filename);
        inner.lock().unwrap().uploads.push(Upload {
            method: method.clone(),
            fields: fields.clone(),
            filename,
            bytes,
        });
        fields
    } else {
        axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(json!({}))
    };
    {
        let mut g = inner.lock().unwrap();
        if let Some(i) = g.fail_429.iter().position(|(m, _)| *m == method) {
            let (_, after) = g.fail_429.remove(i);
            return err(
                429,
                &format!("Too Many Requests: retry after {after}"),
                Some(json!({"retry_after": after})),
            );
        }
    }
    let ok = |result: Value| Json(json!({"ok": true, "result": result})).into_response();
    match method.as_str() {
        "getMe" => ok(
            json!({"id": BOT_ID, "is_bot": true, "first_name": "Nano", "username": BOT_USERNAME}),
        ),
        "deleteWebhook" => {
            inner.lock().unwrap().webhook = None;
            ok(json!(true))
        }
        "getUpdates" if inner.lock().unwrap().webhook.is_some() => err(
            409,
            "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            None,
        ),
        "getUpdates" => {
            let offset = body["offset"].as_i64().unwrap_or(0);
            let timeout = body["timeout"].as_u64().unwrap_or(0).min(30);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
            loop {
                let notified = notify.notified();
                {
                    let mut g = inner.lock().unwrap();
                    // An offset confirms every update below it: they are never sent again.
                    while g
                        .updates
                        .front()
                        .is_some_and(|u| u["update_id"].as_i64() < Some(offset))
                    {
                        g.updates.pop_front();
                    }
                    if !g.updates.is_empty() || tokio::time::Instant::now() >= deadline {
                        g.polls += 1;
                        return ok(Value::Array(g.updates.iter().cloned().collect()));
                    }
                }
                let _ = tokio::time::timeout_at(deadline, notified).await;
            }
        }
        "getFile" => {
            let id = body["file_id"].as_str().unwrap_or_default().to_string();
            let size = inner.lock().unwrap().files.get(&id).map(Vec::len);
            match size {
                Some(n) => ok(
                    json!({"file_id": id, "file_unique_id": id, "file_size": n, "file_path": format!("documents/{id}")}),
                ),
                None => err(400, "Bad Request: invalid file_id", None),
            }
        }
        "sendMessage"
        | "editMessageReplyMarkup"
        | "sendChatAction"
        | "editMessageText"
        | "setMessageReaction"
        | "answerCallbackQuery"
        | "sendDocument"
        | "sendPhoto" => {
            let mut g = inner.lock().unwrap();
            if method == "sendMessage" && body.get("parse_mode").is_some() && g.reject_html > 0 {
                g.reject_html -= 1;
                return err(400, "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0", None);
            }
            if method == "setMessageReaction" {
                let emoji = body["reaction"][0]["emoji"].as_str().unwrap_or_default();
                if !REACTIONS.contains(&emoji) {
                    return err(400, "Bad Request: REACTION_INVALID", None);
                }
            }
            let chat = body["chat_id"].as_i64().unwrap_or_default();
            let target = body["message_id"].as_i64().unwrap_or_default();
            if method == "editMessageText" {
                let text = body["text"].as_str().unwrap_or_default().to_string();
                if g.frozen.contains(&target) {
                    return err(400, "Bad Request: message can't be edited", None);
                }
                match g.bot_texts.get(&(chat, target)) {
                    None => return err(400, "Bad Request: message to edit not found", None),
                    Some(t) if *t == text && body.get("reply_markup").is_none() => {
                        return err(400, "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message", None);
                    }
                    _ => {
                        g.bot_texts.insert((chat, target), text);
                    }
                }
            }
            g.sent.push((method.clone(), body.clone()));
            if method == "sendMessage" || method == "sendDocument" || method == "sendPhoto" {
                if body["text"]
                    .as_str()
                    .is_some_and(|t| t.chars().count() > 4096)
                {
                    return err(400, "Bad Request: message is too long", None);
                }
                g.next_message += 1;
                let id = g.next_message;
                let text = body["text"]
                    .as_str()
                    .or(body["caption"].as_str())
                    .unwrap_or_default();
                g.bot_texts.insert((chat, id), text.to_string());
                if let Some(last) = g.sent.last_mut() {
                    last.1["_message_id"] = json!(id);
                }
                ok(
                    json!({"message_id": id, "date": 1_764_000_000, "chat": {"id": body["chat_id"]}, "text": body["text"]}),
                )
            } else {
                ok(json!(true))
            }
        }
        _ => err(404, "Not Found", None),
    }
}
