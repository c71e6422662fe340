//! The server side of the fake: the Bot API methods, file downloads and error bodies.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{Inner, Upload, BOT_ID, BOT_USERNAME, REACTIONS};

pub(super) type St = (String, Arc<Mutex<Inner>>, Arc<tokio::sync::Notify>);

fn err(code: u16, description: &str, extra: Option<Value>) -> Response {
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if let Some(p) = extra {
        body["parameters"] = p;
    }
    (axum::http::StatusCode::from_u16(code).unwrap(), Json(body)).into_response()
}

pub(super) async fn download(
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

pub(super) async fn handle(
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
