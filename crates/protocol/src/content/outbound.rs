//! `messages_out.content`, NanoClaw v2's shapes included.

use serde_json::{Map, Value};

use super::{parse_json, CardView};
use crate::{Error, Result};

/// A parsed `messages_out.content`.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// Plain message `{text, files?}`.
    Message {
        /// Text to send.
        text: String,
        /// File names inside outbox/<id>/.
        files: Vec<String>,
        /// Unknown fields.
        extra: Map<String, Value>,
    },
    /// `{operation:"edit", messageId, text}`.
    Edit {
        /// Target message (seq or id).
        message_id: Value,
        /// New text.
        text: String,
    },
    /// `{operation:"reaction", messageId, emoji}`.
    Reaction {
        /// Target message (seq or id).
        message_id: Value,
        /// Emoji.
        emoji: String,
    },
    /// `{operation:"ask_question", questionId, title, question, options[]}`.
    AskQuestion {
        /// Question id, echoed back in the answer.
        question_id: String,
        /// Card title.
        title: String,
        /// The question.
        question: String,
        /// Options.
        options: Vec<Value>,
    },
    /// `{card, fallbackText}`.
    Card {
        /// Card body.
        card: Value,
        /// Text for channels without cards.
        fallback_text: String,
    },
    /// `kind:"system"` `{action, payload}`: a request the host executes.
    System {
        /// Requested action.
        action: String,
        /// Arguments.
        payload: Value,
    },
}

fn str_field(m: &Map<String, Value>, k: &str) -> String {
    m.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl Outbound {
    /// Parses a `messages_out` row's content by kind and shape.
    pub fn parse(kind: &str, content: &str) -> Result<Self> {
        let m: Map<String, Value> = parse_json(kind, content)?;
        if kind == "system" {
            // Ours: `{action, payload}`. NanoClaw v2's runner puts the arguments beside the
            // action (`{action:"schedule_task", taskId, prompt, processAfter, …}`).
            let payload = match m.get("payload") {
                Some(p) => p.clone(),
                None => {
                    let mut args = m.clone();
                    args.remove("action");
                    Value::Object(args)
                }
            };
            return Ok(Self::System {
                action: str_field(&m, "action"),
                payload,
            });
        }
        if kind != "chat" && kind != "message" && kind != "chat-sdk" {
            return Err(Error::Content(format!("unknown outbound kind {kind:?}")));
        }
        // NanoClaw v2's `chat-sdk` rows name their shape with `type` (`ask_question`, `card`).
        let op = m.get("operation").and_then(Value::as_str).or_else(|| {
            m.get("type")
                .and_then(Value::as_str)
                .filter(|t| *t == "ask_question")
        });
        Ok(match op {
            Some("edit") => Self::Edit {
                message_id: m.get("messageId").cloned().unwrap_or(Value::Null),
                text: str_field(&m, "text"),
            },
            Some("reaction") => Self::Reaction {
                message_id: m.get("messageId").cloned().unwrap_or(Value::Null),
                emoji: str_field(&m, "emoji"),
            },
            Some("ask_question") => Self::AskQuestion {
                question_id: str_field(&m, "questionId"),
                title: str_field(&m, "title"),
                question: str_field(&m, "question"),
                options: m
                    .get("options")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            },
            Some(other) => {
                return Err(Error::Content(format!("unknown operation {other:?}")));
            }
            None if m.contains_key("card") => {
                let fallback_text = str_field(&m, "fallbackText");
                if fallback_text.trim().is_empty() && CardView::parse(&m["card"]).is_empty() {
                    return Err(Error::Content(
                        "empty card: no title, description, children, link or fallbackText".into(),
                    ));
                }
                Self::Card {
                    card: m["card"].clone(),
                    fallback_text,
                }
            }
            None => {
                let files = m
                    .get("files")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let mut extra = m.clone();
                let text = str_field(&m, "text");
                extra.remove("text");
                extra.remove("files");
                Self::Message { text, files, extra }
            }
        })
    }

    /// A plain text message's content JSON.
    pub fn text_json(text: &str) -> String {
        serde_json::json!({ "text": text }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_shapes() {
        assert!(matches!(
            Outbound::parse("chat", r#"{"text":"a","files":["f.txt"]}"#).unwrap(),
            Outbound::Message { ref files, .. } if files == &["f.txt"]
        ));
        assert!(matches!(
            Outbound::parse("chat", r#"{"operation":"edit","messageId":3,"text":"b"}"#).unwrap(),
            Outbound::Edit { .. }
        ));
        assert!(matches!(
            Outbound::parse("chat", r#"{"card":{"a":1},"fallbackText":"t"}"#).unwrap(),
            Outbound::Card { .. }
        ));
        assert!(Outbound::parse("chat", r#"{"card":{"a":1}}"#).is_err());
        assert!(matches!(
            Outbound::parse("system", r#"{"action":"x","payload":{}}"#).unwrap(),
            Outbound::System { .. }
        ));
    }
}
