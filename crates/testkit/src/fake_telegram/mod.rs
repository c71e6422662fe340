//! A fake Telegram Bot API on 127.0.0.1: the real paths (`/bot<token>/<method>`), JSON shapes
//! (`{"ok":true,"result":…}` / `{"ok":false,"error_code":…,"description":…}`), long polling
//! `getUpdates` with offset confirmation, and injectable 429s. Tests push updates and read what
//! the bot sent.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

mod server;

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
            .route(
                "/{bot}/{method}",
                axum::routing::post(server::handle).get(server::handle),
            )
            .route("/file/{bot}/{*path}", axum::routing::get(server::download))
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
