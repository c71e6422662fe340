//! Updates in: long polling with the offset kept after each routed update, messages turned
//! into events, and their files downloaded to a staging folder.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::api::ApiError;
use super::{TelegramChannel, CHANNEL, MAX_DOWNLOAD};
use crate::channels::{ChannelContext, InboundEvent, StagedFile, ROUTE_ATTEMPTS};

/// The file a message carries, with a file name and MIME type: documents, photos (largest
/// size), voice notes, audio, video, round video notes, animations and stickers — so nothing a
/// person sends is silently ignored.
pub(super) fn media_of(m: &Value) -> Option<(Value, String, String)> {
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

impl TelegramChannel {
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
            reply_to: m
                .get("reply_to_message")
                .filter(|r| r.is_object())
                .map(|r| crate::channels::ReplyTo {
                    platform_message_id: r["message_id"].as_i64().map(|i| i.to_string()),
                    sender: r["from"]["first_name"]
                        .as_str()
                        .or(r["from"]["username"].as_str())
                        .map(str::to_string),
                    text: r["text"]
                        .as_str()
                        .or(r["caption"].as_str())
                        .map(str::to_string),
                }),
        })
    }

    pub(super) async fn poll(self: Arc<Self>, ctx: ChannelContext) {
        let mut offset: i64 = ctx
            .state("offset")
            .await
            .ok()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let timeout = ctx.setting_u64("TELEGRAM_POLL_TIMEOUT", 25);
        // Failed routings per update id (only the few at the head of the queue).
        let mut failures: std::collections::HashMap<i64, u32> = Default::default();
        loop {
            let body = json!({"offset": offset, "timeout": timeout, "allowed_updates": ["message", "edited_message", "callback_query"]});
            let updates = tokio::select! {
                r = self.call("getUpdates", &body) => r,
                _ = ctx.shutdown() => return,
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
                    self.on_callback(&ctx, cb).await;
                } else if let Some(mut ev) = self.event(&u) {
                    self.download_files(&ctx, &u, &mut ev).await;
                    if let Err(e) = ctx.route(ev.clone()).await {
                        // Not confirmed: the update comes back on the next poll, a few times;
                        // then it is recorded and skipped so the chats behind it are served.
                        let n = failures.entry(id).or_insert(0);
                        *n += 1;
                        if *n < ROUTE_ATTEMPTS {
                            tracing::error!(update = id, error = %e, "routing a Telegram update failed");
                            tokio::time::sleep(Duration::from_millis(200 << *n)).await;
                            break;
                        }
                        ctx.give_up(&ev, &e).await;
                    }
                    failures.remove(&id);
                }
                offset = id + 1;
                if let Err(e) = ctx.set_state("offset", &offset.to_string()).await {
                    tracing::error!(error = %e, "cannot persist the Telegram offset");
                }
            }
        }
    }

    /// Downloads a message's file (see [`media_of`]) into a staging folder.
    async fn download_files(&self, ctx: &ChannelContext, u: &Value, ev: &mut InboundEvent) {
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
            .download(ctx, f["file_id"].as_str().unwrap_or_default(), &name)
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
        ctx: &ChannelContext,
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
        let dir = ctx.staging_dir().await?;
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
}
