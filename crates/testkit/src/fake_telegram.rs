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
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let app = axum::Router::new()
            .route("/{bot}/{method}", axum::routing::post(handle).get(handle))
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
        self.push(json!({"message": msg}))
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

async fn handle(
    State((token, inner, notify)): State<St>,
    Path((bot, method)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> Response {
    if bot != format!("bot{token}") {
        return err(401, "Unauthorized", None);
    }
    let body = body.map(|b| b.0).unwrap_or(json!({}));
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
        "sendMessage"
        | "sendChatAction"
        | "editMessageText"
        | "setMessageReaction"
        | "answerCallbackQuery"
        | "sendDocument"
        | "sendPhoto" => {
            let mut g = inner.lock().unwrap();
            g.sent.push((method.clone(), body.clone()));
            if method == "sendMessage" {
                if body["text"]
                    .as_str()
                    .is_some_and(|t| t.chars().count() > 4096)
                {
                    return err(400, "Bad Request: message is too long", None);
                }
                g.next_message += 1;
                let id = g.next_message;
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
