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
                // Which chat spoke, when the session hears several: the destination name the
                // agent answers there by.
                if let Some(from) = c.extra.get("from").and_then(Value::as_str) {
                    let _ = write!(p.text, " from=\"{}\"", escape(from));
                }
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
                // A reply quotes its original (NanoClaw v2's `replyTo {id, sender, text}`).
                if let Some(r) = c.extra.get("replyTo") {
                    let field = |k| r.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
                    if let (Some(from), Some(text)) = (field("sender"), field("text")) {
                        let _ = writeln!(
                            p.text,
                            "<quoted_message from=\"{}\">{}</quoted_message>",
                            escape(from),
                            escape(text)
                        );
                    }
                }
                p.text.push_str(&escape(&c.text));
                for a in &c.attachments {
                    let field = |k| a.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
                    // Ours: `path`; NanoClaw v2: `localPath` (`inbox/<id>/<file>`), `filename`.
                    let path = field("path")
                        .or_else(|| field("localPath"))
                        .unwrap_or_default();
                    let name = field("name").or_else(|| field("filename")).unwrap_or(path);
                    let mime = field("mimeType")
                        .or_else(|| field("mime_type"))
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
                // A string from our pre-script; NanoClaw v2 stored the script's JSON as is.
                let out = match t.extra.get("scriptOutput") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(v) => Some(v.to_string()),
                };
                if let Some(out) = out {
                    let _ = write!(p.text, "\n<script_output>{}</script_output>", escape(&out));
                }
                p.text.push_str("</scheduled_task>\n");
            }
            Inbound::Webhook(w) => {
                // Without a `payload`, the event's own fields are the payload (as v2 shows it).
                let payload = match &w.payload {
                    Value::Null => Value::Object(w.extra.clone()),
                    p => p.clone(),
                };
                let _ = writeln!(
                    p.text,
                    "<webhook seq=\"{}\" source=\"{}\" event=\"{}\" time=\"{time}\">{}</webhook>",
                    it.seq,
                    escape(&w.source),
                    escape(&w.event),
                    escape(&payload.to_string())
                );
            }
            Inbound::System(s) => {
                // NanoClaw v2's answer to a question its runner asked before the switch:
                // `{type:"question_response", questionId, selectedOption}` (the same type with
                // `status`/`result` answers one of its requests: shown as below).
                let v2_type = s.extra.get("type").and_then(Value::as_str);
                if v2_type == Some("question_response") && s.extra.contains_key("selectedOption") {
                    let q = s.extra.get("questionId").and_then(Value::as_str);
                    let choice = match s.extra.get("selectedOption") {
                        Some(Value::String(v)) => v.clone(),
                        Some(Value::Null) | None => String::new(),
                        Some(v) => v.to_string(),
                    };
                    let _ = writeln!(
                        p.text,
                        "<system_response seq=\"{}\" action=\"question_response\" status=\"answered\"><answer question=\"{}\">{}</answer></system_response>",
                        it.seq,
                        escape(q.unwrap_or_default()),
                        escape(&choice)
                    );
                    continue;
                }
                let result = match &s.result {
                    Value::String(r) => r.clone(),
                    // Other typed v2 rows (`cli_response {requestId, frame}`): their fields.
                    Value::Null if v2_type.is_some() => {
                        let mut rest = s.extra.clone();
                        rest.remove("type");
                        Value::Object(rest).to_string()
                    }
                    other => other.to_string(),
                };
                let action = match (s.action.as_str(), v2_type) {
                    ("", Some(t)) => t,
                    (a, _) => a,
                };
                let _ = writeln!(
                    p.text,
                    "<system_response seq=\"{}\" action=\"{}\" status=\"{}\">{}</system_response>",
                    it.seq,
                    escape(action),
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

    /// Rows NanoClaw v2.0.64 left pending at switchover, parsed by their kind as the poll
    /// loop does.
    #[test]
    fn nanoclaw_v2_rows_are_formatted() {
        let parse = |seq, kind: &str, content: serde_json::Value| {
            item(seq, Inbound::parse(kind, &content.to_string()).unwrap())
        };
        let p = batch(
            &[
                parse(
                    2,
                    "chat-sdk",
                    serde_json::json!({"text": "look at this", "author": {"userId": "U1", "fullName": "Ann B"},
                    "senderId": "U1", "sender": "Ann B",
                    "replyTo": {"id": "99", "sender": "Bot", "text": "earlier <words>"},
                    "attachments": [{"type": "image", "name": "cat.jpg", "mimeType": "image/jpeg",
                        "localPath": "inbox/103:ag/cat.jpg", "size": 10}]}),
                ),
                parse(
                    4,
                    "task",
                    serde_json::json!({"prompt": "check the feed", "script": null,
                    "scriptOutput": {"wakeAgent": true, "data": {"new": 3}}}),
                ),
                parse(
                    6,
                    "system",
                    serde_json::json!({"type": "question_response", "questionId": "q-1",
                    "selectedOption": "yes", "userId": "telegram:1"}),
                ),
                // v2's writeSystemResponse: the same type answering a request.
                parse(
                    8,
                    "system",
                    serde_json::json!({"type": "question_response", "questionId": "req-9",
                    "status": "ok", "result": {"agentGroupId": "ag-2"}}),
                ),
                parse(
                    12,
                    "webhook",
                    serde_json::json!({"source": "github", "event": "push", "ref": "main"}),
                ),
                parse(
                    10,
                    "system",
                    serde_json::json!({"type": "cli_response", "requestId": "r-1",
                    "frame": {"ok": true, "data": "3 groups"}}),
                ),
            ],
            Tz::UTC,
            Path::new("/ws"),
        );
        assert!(p.text.contains("sender=\"Ann B\""), "{}", p.text);
        assert!(p
            .text
            .contains("<quoted_message from=\"Bot\">earlier &lt;words&gt;</quoted_message>"));
        assert!(p.text.contains(
            "<attachment name=\"cat.jpg\" path=\"inbox/103:ag/cat.jpg\" type=\"image/jpeg\"/>"
        ));
        assert_eq!(
            p.media,
            vec![(
                PathBuf::from("/ws/inbox/103:ag/cat.jpg"),
                "image/jpeg".into()
            )]
        );
        assert!(
            p.text.contains("check the feed\n<script_output>{"),
            "{}",
            p.text
        );
        assert!(p.text.contains("&quot;new&quot;:3"));
        assert!(p.text.contains(
            "action=\"question_response\" status=\"answered\"><answer question=\"q-1\">yes</answer>"
        ));
        assert!(
            p.text.contains("seq=\"8\" action=\"question_response\" status=\"ok\">{&quot;agentGroupId&quot;:&quot;ag-2&quot;}<"),
            "{}",
            p.text
        );
        assert!(p.text.contains("seq=\"10\" action=\"cli_response\""));
        assert!(p.text.contains("3 groups"), "{}", p.text);
        assert!(p.text.contains("event=\"push\""));
        assert!(
            p.text.contains("{&quot;ref&quot;:&quot;main&quot;}"),
            "{}",
            p.text
        );
    }

    #[test]
    fn the_chat_that_spoke_is_named_and_escaped() {
        let mut c = Chat {
            sender: "Ann".into(),
            text: "hi".into(),
            ..Default::default()
        };
        c.extra.insert("from".into(), "kitchen\"x".into());
        let p = batch(&[item(4, Inbound::Chat(c))], Tz::UTC, Path::new("/w"));
        assert!(p.text.contains(" from=\"kitchen&quot;x\">hi"), "{}", p.text);
        let plain = Chat {
            sender: "Ann".into(),
            text: "hi".into(),
            ..Default::default()
        };
        let p = batch(&[item(6, Inbound::Chat(plain))], Tz::UTC, Path::new("/w"));
        assert!(!p.text.contains("from="), "{}", p.text);
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
