//! The terminal channel (`cli`, platform `local`, user `cli:local`) on `data/cli.sock`.
//!
//! Wire format: JSON lines. Client → host `{"type":"message","text":…,"agent"?:folder}`.
//! Host → client `{"type":"accepted","ids":[…]}`, `{"type":"error","error":…}`,
//! `{"type":"reply","id":…,"text":…,"in_reply_to":…}`, `{"type":"turn_done","id":…,"status":…}`.
//! Every reply is appended (and synced) to `data/cli-transcript.jsonl` before it is shown: that
//! file is this platform's record, which makes sends reconcilable after a host crash.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::broadcast;

use super::ChannelContext;
use super::{Capabilities, Channel, InboundEvent, OutboundItem, Reconciled};
use crate::HostEvent;

/// Channel type of the terminal.
pub const CHANNEL: &str = "cli";
/// Platform id of the default terminal chat.
pub const PLATFORM: &str = "local";
/// Longest accepted line from a client (a bit over ingress's text limit, so ingress reports it).
const MAX_LINE: usize = 4 * 1024 * 1024;

/// The terminal channel.
pub struct CliChannel {
    sock: PathBuf,
    transcript: PathBuf,
    sent: Mutex<Option<HashSet<String>>>,
    replies: broadcast::Sender<Value>,
}

impl CliChannel {
    /// A terminal channel for a home.
    pub fn new(home: &nanoclaw_protocol::Home) -> Self {
        Self {
            sock: home.cli_sock(),
            transcript: home.data_dir().join("cli-transcript.jsonl"),
            sent: Mutex::new(None),
            replies: broadcast::channel(1024).0,
        }
    }

    fn with_sent<T>(&self, f: impl FnOnce(&mut HashSet<String>) -> T) -> T {
        let mut g = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        let set = g.get_or_insert_with(|| {
            std::fs::read_to_string(&self.transcript)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter_map(|v| v["id"].as_str().map(str::to_string))
                .collect()
        });
        f(set)
    }

    /// Platform id for a terminal chat with one agent (`local` is the default agent's).
    pub fn platform_for(agent: Option<&str>) -> String {
        match agent {
            None | Some("main") => PLATFORM.to_string(),
            Some(folder) => format!("{PLATFORM}:{folder}"),
        }
    }
}

#[async_trait]
impl Channel for CliChannel {
    fn channel_type(&self) -> &'static str {
        CHANNEL
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    async fn start(self: Arc<Self>, ctx: ChannelContext) -> anyhow::Result<()> {
        // Anyone who can connect chats as the owner: the socket is the host user's only
        // (control::server::bind removes a stale file and sets 0600).
        let listener = crate::control::server::bind(&self.sock)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", self.sock.display()))?;
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let me = me.clone();
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    if let Err(e) = me.serve(stream, ctx).await {
                        tracing::debug!(error = %e, "terminal client ended");
                    }
                });
            }
        });
        Ok(())
    }

    async fn send(&self, item: &OutboundItem) -> Result<Option<String>, super::SendError> {
        // The host already turned what the terminal cannot do into plain messages.
        let Some(text) = super::text_of(&item.content) else {
            return Ok(None);
        };
        if crate::failpoint_active("cli_send_error") {
            return Err(anyhow::anyhow!(
                "injected send failure (NANOCLAW_FAILPOINT=cli_send_error)"
            )
            .into());
        }
        let line = json!({
            "type": "reply",
            "id": item.message_out_id,
            "platform_id": item.platform_id,
            "in_reply_to": item.in_reply_to,
            "text": text,
        });
        let path = self.transcript.clone();
        let rec = line.to_string();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)?;
            f.write_all(rec.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_data()
        })
        .await
        .map_err(super::SendError::transient)?
        .map_err(super::SendError::transient)?;
        self.with_sent(|s| s.insert(item.message_out_id.clone()));
        let _ = self.replies.send(line);
        Ok(Some(item.message_out_id.clone()))
    }

    async fn reconcile(&self, message_out_id: &str) -> Reconciled {
        if self.with_sent(|s| s.contains(message_out_id)) {
            Reconciled::Sent(Some(message_out_id.to_string()))
        } else {
            Reconciled::NotSent
        }
    }

    async fn stop(&self) {
        let _ = std::fs::remove_file(&self.sock);
    }
}

impl CliChannel {
    async fn serve(self: Arc<Self>, stream: UnixStream, ctx: ChannelContext) -> anyhow::Result<()> {
        let (rd, mut wr) = stream.into_split();
        let mut lines = BufReader::new(rd);
        let mut replies = self.replies.subscribe();
        let mut events = ctx.events();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Value>(64);
        let mut buf = Vec::new();
        loop {
            tokio::select! {
                // In order: a turn's replies are broadcast before its TurnDone, and a client
                // stops reading at turn_done — a random pick could send turn_done first and
                // the reply would never be shown.
                biased;
                n = read_line_capped(&mut lines, &mut buf) => {
                    if n? == 0 { return Ok(()); }
                    let reply = match serde_json::from_slice::<Value>(&buf) {
                        Ok(v) => self.handle(&ctx, v).await,
                        Err(e) => json!({"type": "error", "error": format!("bad request: {e}")}),
                    };
                    buf.clear();
                    let _ = tx.send(reply).await;
                }
                Some(v) = rx.recv() => write_json(&mut wr, &v).await?,
                r = replies.recv() => match r {
                    Ok(v) => write_json(&mut wr, &v).await?,
                    Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!(n, "terminal client lagged"),
                    Err(_) => return Ok(()),
                },
                e = events.recv() => match e {
                    Ok(HostEvent::TurnDone { message_id, status }) => {
                        write_json(&mut wr, &json!({"type": "turn_done", "id": message_id, "status": status})).await?
                    }
                    Ok(HostEvent::RunnerFailed { session_id, error }) => {
                        write_json(&mut wr, &json!({"type": "runner_failed", "session": session_id, "error": error})).await?
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return Ok(()),
                },
            }
        }
    }

    async fn handle(&self, ctx: &ChannelContext, req: Value) -> Value {
        match req["type"].as_str() {
            Some("message") => {}
            Some("ping") => return json!({"type": "pong"}),
            // What `chat`, `status` and `doctor` show about the running host.
            Some("status") => return ctx.status().await,
            other => {
                return json!({"type": "error", "error": format!("unknown request type {other:?}")})
            }
        }
        let agent = req["agent"].as_str();
        if let Some(a) = agent {
            if let Err(e) = ctx.ensure_terminal_wiring(a).await {
                return json!({"type": "error", "error": e.to_string()});
            }
        }
        let ev = InboundEvent {
            channel_type: CHANNEL.into(),
            platform_id: Self::platform_for(agent),
            thread_id: None,
            sender_handle: PLATFORM.into(),
            sender_name: std::env::var("USER").unwrap_or_else(|_| "you".into()),
            text: req["text"].as_str().unwrap_or_default().to_string(),
            is_mention: true,
            is_group: false,
            chat_name: Some("terminal".into()),
            platform_message_id: None,
            attachments: vec![],
            reply_to: None,
        };
        match ctx.route(ev).await {
            Ok(out) if out.accepted.is_empty() && out.notice.is_some() => {
                json!({"type": "notice", "text": out.notice})
            }
            Ok(out) if out.accepted.is_empty() => {
                json!({"type": "error", "error": out.dropped.unwrap_or_else(|| "message was not routed to any agent".into())})
            }
            Ok(out) => {
                json!({"type": "accepted",
                    "ids": out.accepted.iter().map(|a| &a.message_id).collect::<Vec<_>>(),
                    "sessions": out.accepted.iter().map(|a| &a.session_id).collect::<Vec<_>>()})
            }
            Err(e) => json!({"type": "error", "error": e.to_string()}),
        }
    }
}

async fn write_json(wr: &mut tokio::net::unix::OwnedWriteHalf, v: &Value) -> std::io::Result<()> {
    let mut s = v.to_string();
    s.push('\n');
    wr.write_all(s.as_bytes()).await
}

/// Reads one line into `buf` (without the newline); a line over [`MAX_LINE`] is an error.
async fn read_line_capped<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<usize> {
    // Cancel-safe: the serve loop's select! drops this future whenever a reply goes out first.
    // Bytes move from the reader into `buf` with no await in between, and `buf` keeps a
    // partial line until the caller clears it after a whole one, so a long message arriving
    // in chunks is never cut.
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            return Ok(buf.len());
        }
        if let Some(i) = avail.iter().position(|&b| b == b'\n') {
            buf.extend_from_slice(&avail[..i]);
            r.consume(i + 1);
            return Ok(buf.len() + 1);
        }
        let n = avail.len();
        buf.extend_from_slice(avail);
        r.consume(n);
        if buf.len() > MAX_LINE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "request line too long",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_line_read_in_chunks_survives_cancelled_reads() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let mut rd = BufReader::with_capacity(16, rx);
        let mut buf = Vec::new();
        let line = "x".repeat(100);
        tx.write_all(&line.as_bytes()[..40]).await.unwrap();
        // A read that is dropped mid-line, as select! does when a reply goes out first.
        let cut = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            read_line_capped(&mut rd, &mut buf),
        )
        .await;
        assert!(cut.is_err(), "no newline yet");
        tx.write_all(&line.as_bytes()[40..]).await.unwrap();
        tx.write_all(b"\n").await.unwrap();
        let n = read_line_capped(&mut rd, &mut buf).await.unwrap();
        assert_eq!(n, 101);
        assert_eq!(buf, line.as_bytes());
    }
}
