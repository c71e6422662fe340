//! `messages_in.content`, NanoClaw v2's shapes included.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::parse_json;
use crate::{Error, Result};

/// `messages_in` kind `chat`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chat {
    /// Display name of the sender.
    #[serde(default)]
    pub sender: String,
    /// `users.id` of the sender (`<channel_type>:<handle>`).
    #[serde(default)]
    pub sender_id: String,
    /// Message text.
    #[serde(default)]
    pub text: String,
    /// Attachments (paths under inbox/ once saved).
    #[serde(default)]
    pub attachments: Vec<Value>,
    /// Sent by the assistant's own account.
    #[serde(default)]
    pub is_from_me: bool,
    /// The bot was mentioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_mention: Option<bool>,
    /// Answer to this question…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question_id: Option<String>,
    /// …with this option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_option: Option<Value>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `messages_in` kind `task`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// What the agent should do.
    #[serde(default)]
    pub prompt: String,
    /// Optional pre-script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `messages_in` kind `webhook`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    /// Sender of the webhook.
    #[serde(default)]
    pub source: String,
    /// Event name.
    #[serde(default)]
    pub event: String,
    /// Raw payload.
    #[serde(default)]
    pub payload: Value,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `messages_in` kind `system`: the host's answer to a system request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemResponse {
    /// The action answered.
    #[serde(default)]
    pub action: String,
    /// ok / error / …
    #[serde(default)]
    pub status: String,
    /// Details.
    #[serde(default)]
    pub result: Value,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A parsed `messages_in.content`.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A chat message.
    Chat(Chat),
    /// A scheduled task.
    Task(Task),
    /// A webhook event.
    Webhook(Webhook),
    /// A system response.
    System(SystemResponse),
}

/// Parses content into `T` after dropping top-level `null`s of `fields` (NanoClaw v2 writes
/// `"script": null`, and a JavaScript writer may leave any field null): a null where we keep a
/// plain value means "not given", not a malformed row.
fn parse_lenient<T: serde::de::DeserializeOwned>(
    kind: &str,
    content: &str,
    fields: &[&str],
) -> Result<T> {
    let mut m: Map<String, Value> = parse_json(kind, content)?;
    for f in fields {
        if m.get(*f).is_some_and(Value::is_null) {
            m.remove(*f);
        }
    }
    serde_json::from_value(Value::Object(m))
        .map_err(|e| Error::Content(format!("{kind} content: {e}")))
}

/// A chat row's content, NanoClaw v2's shapes included: `chat-sdk` rows (v2's Chat SDK
/// bridge) carry a nested `author {userId, fullName, userName}`, which fills `sender` /
/// `senderId` when the flat fields are missing. (A raw `author.userId` is namespaced with the
/// row's channel by the reader that knows it.)
fn parse_chat(kind: &str, content: &str) -> Result<Chat> {
    let mut c: Chat = parse_lenient(
        kind,
        content,
        &["sender", "senderId", "text", "attachments", "isFromMe"],
    )?;
    let author = c.extra.get("author").cloned().unwrap_or(Value::Null);
    let field = |k: &str| {
        author
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    if c.sender.trim().is_empty() {
        if let Some(n) = field("fullName").or_else(|| field("userName")) {
            c.sender = n;
        } else if let Some(n) = c.extra.get("senderName").and_then(Value::as_str) {
            c.sender = n.to_string();
        }
    }
    if c.sender_id.is_empty() {
        if let Some(id) = field("userId") {
            c.sender_id = id;
        }
    }
    Ok(c)
}

impl Inbound {
    /// Parses a row's content by its kind; unknown kinds and malformed JSON are errors to log and skip.
    /// NanoClaw v2's kinds are understood too: `chat-sdk` is a chat message, and a `system` row
    /// may be v2's `{type:"question_response", questionId, selectedOption}`.
    pub fn parse(kind: &str, content: &str) -> Result<Self> {
        Ok(match kind {
            "chat" | "chat-sdk" => Self::Chat(parse_chat(kind, content)?),
            "task" => Self::Task(parse_lenient(kind, content, &["prompt"])?),
            "webhook" => Self::Webhook(parse_lenient(kind, content, &["source", "event"])?),
            "system" => Self::System(parse_lenient(
                kind,
                content,
                &["action", "status", "result"],
            )?),
            other => return Err(Error::Content(format!("unknown inbound kind {other:?}"))),
        })
    }
    /// The row's `kind` column value.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Chat(_) => "chat",
            Self::Task(_) => "task",
            Self::Webhook(_) => "webhook",
            Self::System(_) => "system",
        }
    }
    /// Serialises back to the `content` column.
    pub fn to_json(&self) -> String {
        match self {
            Self::Chat(c) => serde_json::to_string(c),
            Self::Task(c) => serde_json::to_string(c),
            Self::Webhook(c) => serde_json::to_string(c),
            Self::System(c) => serde_json::to_string(c),
        }
        .expect("content types always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_preserves_unknown_fields() {
        let raw = r#"{"sender":"Ann","senderId":"cli:local","text":"hi","attachments":[],"isFromMe":false,"future":{"x":1}}"#;
        let Inbound::Chat(c) = Inbound::parse("chat", raw).unwrap() else {
            panic!()
        };
        assert_eq!(c.text, "hi");
        let back: Value = serde_json::from_str(&Inbound::Chat(c).to_json()).unwrap();
        assert_eq!(back["future"]["x"], 1);
    }

    #[test]
    fn unknown_numbers_survive_a_round_trip_exactly() {
        // Found by the content fuzz target: without serde_json's float_roundtrip, this came
        // back one ULP off (3.5555559199994363e40 → 3.555555919999436e40).
        let raw = r#"{"op":35555559199994355555591999949775559999555,"text":"x","f":0.30000000000000004}"#;
        let first = Inbound::parse("chat", raw).unwrap();
        assert_eq!(Inbound::parse("chat", &first.to_json()).unwrap(), first);
    }
}
