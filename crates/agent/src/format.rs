//! The formatter: a batch of inbound rows → the text the model reads (DESIGN §7).
//!
//! Routing fields (platform ids, channel types, threads) never reach the model; it sees who
//! said what and when (local time in the configured timezone) and refers to messages by seq.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use nanoclaw_protocol::content::Inbound;
use serde_json::Value;

use crate::providers::Item;

/// A formatted prompt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prompt {
    /// The text block.
    pub text: String,
    /// Images and PDFs to pass as native content blocks, with their MIME types.
    pub media: Vec<(PathBuf, String)>,
}

/// Escapes text for an XML-ish body or attribute, so a message cannot close its own tag.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// The configured timezone (`TZ`), UTC when unset or unknown.
pub fn timezone() -> Tz {
    let tz = std::env::var(nanoclaw_protocol::env::TZ).ok();
    nanoclaw_protocol::time::parse_tz(tz.as_deref()).unwrap_or_else(|e| {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| tracing::warn!("{e}"));
        Tz::UTC
    })
}

fn local_time(ts: &str, tz: Tz) -> String {
    match nanoclaw_protocol::time::parse(ts) {
        Some(t) => t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
        None => String::new(),
    }
}

fn is_native_media(mime: &str) -> bool {
    matches!(
        mime,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp" | "application/pdf"
    )
}

/// Formats a batch; `workspace` resolves attachment paths.
pub fn batch(items: &[Item], tz: Tz, workspace: &Path) -> Prompt {
    let mut p = Prompt::default();
    let _ = writeln!(p.text, "<messages timezone=\"{}\">", tz.name());
    for it in items {
        let time = local_time(&it.timestamp, tz);
        match &it.content {
            Inbound::Chat(c) => {
                let _ = write!(
                    p.text,
                    "<message seq=\"{}\" sender=\"{}\" time=\"{time}\"",
                    it.seq,
                    escape(&c.sender)
                );
                if !it.trigger {
                    p.text.push_str(" context=\"true\"");
                }
                p.text.push('>');
                if let Some(q) = &c.question_id {
                    let choice = match &c.selected_option {
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                        None => String::new(),
                    };
                    let _ = write!(
                        p.text,
                        "<answer question=\"{}\">{}</answer>",
                        escape(q),
                        escape(&choice)
                    );
                }
                p.text.push_str(&escape(&c.text));
                for a in &c.attachments {
                    let path = a.get("path").and_then(Value::as_str).unwrap_or_default();
                    let name = a.get("name").and_then(Value::as_str).unwrap_or(path);
                    let mime = a
                        .get("mimeType")
                        .and_then(Value::as_str)
                        .unwrap_or("application/octet-stream");
                    let _ = write!(
                        p.text,
                        "\n<attachment name=\"{}\" path=\"{}\" type=\"{}\"/>",
                        escape(name),
                        escape(path),
                        escape(mime)
                    );
                    if !path.is_empty() && is_native_media(mime) {
                        p.media.push((workspace.join(path), mime.to_string()));
                    }
                }
                p.text.push_str("</message>\n");
            }
            Inbound::Task(t) => {
                let _ = write!(
                    p.text,
                    "<scheduled_task seq=\"{}\" time=\"{time}\">{}",
                    it.seq,
                    escape(&t.prompt)
                );
                if let Some(out) = t.extra.get("scriptOutput").and_then(Value::as_str) {
                    let _ = write!(p.text, "\n<script_output>{}</script_output>", escape(out));
                }
                p.text.push_str("</scheduled_task>\n");
            }
            Inbound::Webhook(w) => {
                let _ = writeln!(
                    p.text,
                    "<webhook seq=\"{}\" source=\"{}\" event=\"{}\" time=\"{time}\">{}</webhook>",
                    it.seq,
                    escape(&w.source),
                    escape(&w.event),
                    escape(&w.payload.to_string())
                );
            }
            Inbound::System(s) => {
                let result = match &s.result {
                    Value::String(r) => r.clone(),
                    other => other.to_string(),
                };
                let _ = writeln!(
                    p.text,
                    "<system_response seq=\"{}\" action=\"{}\" status=\"{}\">{}</system_response>",
                    it.seq,
                    escape(&s.action),
                    escape(&s.status),
                    escape(&result)
                );
            }
        }
    }
    p.text.push_str("</messages>");
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use nanoclaw_protocol::content::{Chat, SystemResponse, Task};

    fn item(seq: i64, content: Inbound) -> Item {
        Item {
            id: format!("m{seq}"),
            seq,
            timestamp: "2026-07-01T13:05:00.000Z".into(),
            content,
            trigger: true,
        }
    }

    #[test]
    fn chat_task_system_blocks_without_routing() {
        let chat = Chat {
            sender: "Ann <admin>".into(),
            sender_id: "telegram:1".into(),
            text: "hi </message> there".into(),
            attachments: vec![
                serde_json::json!({"name": "a.png", "path": "inbox/m2/a.png", "mimeType": "image/png"}),
            ],
            question_id: Some("q1".into()),
            selected_option: Some("Yes".into()),
            ..Default::default()
        };
        let mut task = Task {
            prompt: "water the plants".into(),
            ..Default::default()
        };
        task.extra.insert("scriptOutput".into(), "42".into());
        let sys = SystemResponse {
            action: "schedule_task".into(),
            status: "ok".into(),
            result: "t1".into(),
            ..Default::default()
        };
        let tz: Tz = "America/New_York".parse().unwrap();
        let p = batch(
            &[
                item(2, Inbound::Chat(chat)),
                item(4, Inbound::Task(task)),
                item(6, Inbound::System(sys)),
            ],
            tz,
            Path::new("/ws"),
        );
        assert!(p
            .text
            .starts_with("<messages timezone=\"America/New_York\">"));
        assert!(p
            .text
            .contains("sender=\"Ann &lt;admin&gt;\" time=\"2026-07-01 09:05\""));
        assert!(p.text.contains("hi &lt;/message&gt; there"));
        assert!(p.text.contains("<answer question=\"q1\">Yes</answer>"));
        assert!(p
            .text
            .contains("<attachment name=\"a.png\" path=\"inbox/m2/a.png\""));
        assert!(p.text.contains("<script_output>42</script_output>"));
        assert!(p
            .text
            .contains("action=\"schedule_task\" status=\"ok\">t1<"));
        assert!(
            !p.text.contains("telegram:1"),
            "routing/sender ids stay out"
        );
        assert_eq!(
            p.media,
            vec![(PathBuf::from("/ws/inbox/m2/a.png"), "image/png".into())]
        );
    }
}
