//! Typed message content (DESIGN §4). Every struct keeps unknown fields in `extra`, so a
//! newer writer's fields survive a round trip through an older reader.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// Largest accepted `content` JSON, in bytes; larger rows are refused with an error.
pub const MAX_CONTENT_BYTES: usize = 2 * 1024 * 1024;

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

fn parse_json<T: serde::de::DeserializeOwned>(kind: &str, content: &str) -> Result<T> {
    if content.len() > MAX_CONTENT_BYTES {
        return Err(Error::Content(format!(
            "{kind} content is {} bytes, over the {MAX_CONTENT_BYTES}-byte limit",
            content.len()
        )));
    }
    serde_json::from_str(content).map_err(|e| Error::Content(format!("{kind} content: {e}")))
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

/// An `ask_question` option, normalised as NanoClaw v2 does before delivery and persistence:
/// `label` on the button, `selectedLabel` shown once chosen, `value` handed to the agent.
/// Bare strings are accepted for all three.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuestionOption {
    /// Button text.
    pub label: String,
    /// Shown on the card after the choice.
    pub selected_label: String,
    /// What the agent receives.
    pub value: String,
}

impl QuestionOption {
    /// A string, or an object with a non-empty `label` (older writers: `text` / `value`).
    pub fn normalize(raw: &Value) -> Option<Self> {
        let s = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let label = match raw {
            Value::String(_) => s(Some(raw))?,
            _ => ["label", "text", "value"]
                .iter()
                .find_map(|k| s(raw.get(k)))?,
        };
        Some(Self {
            selected_label: s(raw.get("selectedLabel")).unwrap_or_else(|| label.clone()),
            value: s(raw.get("value")).unwrap_or_else(|| label.clone()),
            label,
        })
    }

    /// Every usable option of a list (unusable ones are left out).
    pub fn normalize_all(raw: &[Value]) -> Vec<Self> {
        raw.iter().filter_map(Self::normalize).collect()
    }

    /// The card's text once this option was chosen.
    pub fn chosen_text(&self) -> String {
        if self.selected_label == self.label {
            format!("✓ {}", self.label)
        } else {
            self.selected_label.clone()
        }
    }
}

/// A `send_card` card (`{title, description, children, actions}`, NanoClaw v2's shape) read
/// leniently: unknown fields are ignored, children may be strings or `{text}` objects, and only
/// actions with a label and an http(s) URL survive — a card is fire-and-forget, so a button
/// without a link would have nowhere to land.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CardView {
    /// Title.
    pub title: String,
    /// Description, then each child, one paragraph each.
    pub lines: Vec<String>,
    /// Link buttons: (label, url).
    pub links: Vec<(String, String)>,
}

impl CardView {
    /// Reads a card body.
    pub fn parse(card: &Value) -> Self {
        let text = |v: &Value| {
            v.as_str()
                .or_else(|| v.get("text").and_then(Value::as_str))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let title = card.get("title").and_then(text).unwrap_or_default();
        let lines = card
            .get("description")
            .into_iter()
            .chain(
                card.get("children")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            )
            .filter_map(text)
            .collect();
        let links = card
            .get("actions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| {
                let label = a.get("label").and_then(Value::as_str)?.trim();
                let url = a.get("url").and_then(Value::as_str)?.trim();
                let web = url.starts_with("https://") || url.starts_with("http://");
                (!label.is_empty() && web && !url.contains(char::is_whitespace))
                    .then(|| (label.to_string(), url.to_string()))
            })
            .collect();
        Self {
            title,
            lines,
            links,
        }
    }

    /// Nothing to show.
    pub fn is_empty(&self) -> bool {
        self.title.is_empty() && self.lines.is_empty() && self.links.is_empty()
    }

    /// The card as markdown: bold title, paragraphs, and (`with_links`) one `label: url` line
    /// per link for channels that cannot show link buttons.
    pub fn markdown(&self, with_links: bool) -> String {
        let mut parts = Vec::new();
        if !self.title.is_empty() {
            parts.push(format!("**{}**", self.title));
        }
        parts.extend(self.lines.iter().cloned());
        if with_links && !self.links.is_empty() {
            let links: Vec<String> = self
                .links
                .iter()
                .map(|(l, u)| format!("{l}: {u}"))
                .collect();
            parts.push(links.join("\n"));
        }
        parts.join("\n\n")
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

    #[test]
    fn bad_content_is_an_error_not_a_panic() {
        assert!(Inbound::parse("chat", "{not json").is_err());
        assert!(Inbound::parse("telepathy", "{}").is_err());
        assert!(Inbound::parse("chat", "[1,2]").is_err());
        let big = format!(r#"{{"text":"{}"}}"#, "x".repeat(MAX_CONTENT_BYTES));
        assert!(Inbound::parse("chat", &big).is_err());
        assert!(Outbound::parse("chat", r#"{"operation":"explode"}"#).is_err());
        assert!(Outbound::parse("weird", "{}").is_err());
    }

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

    /// Rows as NanoClaw v2.0.64 writes them (router, Chat SDK bridge, scheduling, interactive
    /// module; the runner's MCP tools), left in flight at switchover.
    #[test]
    fn nanoclaw_v2_shapes_in_flight() {
        // v2's Chat SDK bridge: kind chat-sdk, nested author, projected sender fields.
        let sdk = r#"{"id":"m1","text":"hello from slack","author":{"userId":"U42","fullName":"Ann B","userName":"ann","isBot":false},
            "metadata":{"dateSent":"2026-01-01T00:00:00.000Z"},"attachments":[],"senderId":"U42","sender":"Ann B","senderName":"Ann B"}"#;
        let Inbound::Chat(c) = Inbound::parse("chat-sdk", sdk).unwrap() else {
            panic!()
        };
        assert_eq!((c.sender.as_str(), c.sender_id.as_str()), ("Ann B", "U42"));
        assert_eq!(c.text, "hello from slack");
        // An older bridge row: only the nested author.
        let Inbound::Chat(c) = Inbound::parse(
            "chat-sdk",
            r#"{"text":"x","author":{"userId":"U1","userName":"bo"}}"#,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!((c.sender.as_str(), c.sender_id.as_str()), ("bo", "U1"));
        // A task with v2's `"script": null`, and nulls where we keep plain values.
        let Inbound::Task(t) =
            Inbound::parse("task", r#"{"prompt":"water the plants","script":null}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!((t.prompt.as_str(), t.script), ("water the plants", None));
        assert!(
            Inbound::parse("chat", r#"{"text":null,"sender":null,"attachments":null}"#).is_ok()
        );
        // v2's interactive module answers a question with a system row.
        let Inbound::System(s) = Inbound::parse(
            "system",
            r#"{"type":"question_response","questionId":"q-1","selectedOption":"yes","userId":"telegram:1"}"#,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(s.extra["type"], "question_response");

        // Outbound: v2's runner rows.
        let Outbound::System { action, payload } = Outbound::parse(
            "system",
            r#"{"action":"schedule_task","taskId":"task-1","prompt":"p","script":null,"processAfter":"2026-01-01T09:00:00.000Z","recurrence":null}"#,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(action, "schedule_task");
        assert_eq!(payload["taskId"], "task-1");
        assert_eq!(payload["processAfter"], "2026-01-01T09:00:00.000Z");
        assert!(payload.get("action").is_none());
        let Outbound::AskQuestion {
            question_id,
            options,
            ..
        } = Outbound::parse(
            "chat-sdk",
            r#"{"type":"ask_question","questionId":"q-7","title":"Lunch","question":"Tea?","options":["Yes",{"label":"No","value":"no"}]}"#,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!((question_id.as_str(), options.len()), ("q-7", 2));
        assert!(matches!(
            Outbound::parse(
                "chat-sdk",
                r#"{"type":"card","card":{"title":"Daily"},"fallbackText":"Daily"}"#
            )
            .unwrap(),
            Outbound::Card { .. }
        ));
        assert!(matches!(
            Outbound::parse(
                "chat",
                r#"{"operation":"edit","messageId":"6037840640:42","text":"b"}"#
            )
            .unwrap(),
            Outbound::Edit {
                message_id: Value::String(_),
                ..
            }
        ));
        assert!(matches!(
            Outbound::parse("chat", r#"{"text":"report","files":["r.pdf"]}"#).unwrap(),
            Outbound::Message { ref files, .. } if files == &["r.pdf"]
        ));
    }

    #[test]
    fn cards_render_leniently() {
        let card = serde_json::json!({"title": " Daily ", "description": "Your plate",
            "children": ["• one", {"text": "• two"}, 3, ""],
            "actions": [{"label": "Docs", "url": "https://example.com/d"}, {"label": "Add"},
                {"label": "Evil", "url": "javascript:alert(1)"}, {"label": "", "url": "https://x"}]});
        let v = CardView::parse(&card);
        assert_eq!(v.title, "Daily");
        assert_eq!(v.lines, ["Your plate", "• one", "• two"]);
        assert_eq!(
            v.links,
            [("Docs".to_string(), "https://example.com/d".to_string())]
        );
        assert_eq!(
            v.markdown(true),
            "**Daily**\n\nYour plate\n\n• one\n\n• two\n\nDocs: https://example.com/d"
        );
        assert!(!v.markdown(false).contains("example.com"));
        assert!(CardView::parse(&serde_json::json!("not an object")).is_empty());
    }

    #[test]
    fn question_options_normalise_like_v2() {
        let raw = serde_json::json!(["Tea", {"label": "Go", "selectedLabel": "Going!", "value": "go"},
            {"text": "Old"}, {"label": ""}, 7]);
        let o = QuestionOption::normalize_all(raw.as_array().unwrap());
        assert_eq!(o.len(), 3);
        assert_eq!(
            (o[0].value.as_str(), o[0].chosen_text()),
            ("Tea", "✓ Tea".to_string())
        );
        assert_eq!(
            (o[1].value.as_str(), o[1].chosen_text()),
            ("go", "Going!".to_string())
        );
        assert_eq!(o[2].label, "Old");
        let stored = serde_json::to_value(&o[1]).unwrap();
        assert_eq!(
            stored,
            serde_json::json!({"label": "Go", "selectedLabel": "Going!", "value": "go"})
        );
    }
}
