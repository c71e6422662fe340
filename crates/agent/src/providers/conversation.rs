//! The provider-neutral conversation of the native loop: persisted in session_state so it
//! survives a runner restart, archived as markdown when compacted.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::{self, Shared};

/// session_state key of the conversation.
pub const STATE_KEY: &str = "conversation";

/// Who speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The user side (messages, tool results).
    User,
    /// The model.
    Assistant,
}

/// One piece of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image or PDF, base64.
    Media {
        /// MIME type.
        mime: String,
        /// Base64 data.
        data: String,
    },
    /// A tool call by the model.
    ToolUse {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
        /// Arguments.
        input: Value,
    },
    /// A tool's answer.
    ToolResult {
        /// Call id answered.
        id: String,
        /// Output text.
        text: String,
        /// Failed?
        is_error: bool,
    },
}

/// One message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Msg {
    /// Speaker.
    pub role: Role,
    /// Content.
    pub parts: Vec<Part>,
}

impl Msg {
    /// A user text message.
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            parts: vec![Part::Text { text: text.into() }],
        }
    }
    /// An assistant text message.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            parts: vec![Part::Text { text: text.into() }],
        }
    }
    /// The text parts joined.
    pub fn text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("")
    }
}

/// Loads the saved conversation (empty when none or unreadable).
pub fn load(store: &Shared) -> Vec<Msg> {
    match store::lock(store).state_get(STATE_KEY) {
        Ok(Some(s)) => serde_json::from_str(&s).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "saved conversation unreadable; starting fresh");
            Vec::new()
        }),
        _ => Vec::new(),
    }
}

/// Saves the conversation.
pub fn save(store: &Shared, history: &[Msg]) -> anyhow::Result<()> {
    let s = serde_json::to_string(history)?;
    store::lock(store).state_set(STATE_KEY, &s)
}

/// A rough token count (4 bytes per token), for when the API has not told us.
pub fn estimate_tokens(history: &[Msg]) -> u64 {
    let bytes: usize = history
        .iter()
        .flat_map(|m| &m.parts)
        .map(|p| match p {
            Part::Text { text } => text.len(),
            Part::Media { data, .. } => data.len() / 4,
            Part::ToolUse { input, .. } => input.to_string().len(),
            Part::ToolResult { text, .. } => text.len(),
        })
        .sum();
    (bytes / 4) as u64
}

/// The conversation as markdown (the archive written before compaction).
pub fn to_markdown(history: &[Msg], title: &str) -> String {
    let mut out = format!("# {title}\n\n");
    for m in history {
        let who = match m.role {
            Role::User => "User",
            Role::Assistant => "Assistant",
        };
        for p in &m.parts {
            let _ = match p {
                Part::Text { text } => writeln!(out, "**{who}:** {text}\n"),
                Part::Media { mime, .. } => writeln!(out, "**{who}:** _[{mime} attachment]_\n"),
                Part::ToolUse { name, input, .. } => {
                    writeln!(out, "**{who} → {name}:** `{input}`\n")
                }
                Part::ToolResult { text, is_error, .. } => writeln!(
                    out,
                    "**Tool{}:**\n\n```\n{text}\n```\n",
                    if *is_error { " error" } else { "" }
                ),
            };
        }
    }
    out
}

/// Writes the archive under `<agent>/conversations/`; returns its path.
pub fn archive(agent_dir: &Path, session: &str, history: &[Msg]) -> anyhow::Result<PathBuf> {
    let dir = agent_dir.join("conversations");
    std::fs::create_dir_all(&dir)?;
    let stamp = chrono::Utc::now().format("%Y-%m-%d-%H%M%S%.3f");
    let short: String = session
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect();
    let path = dir.join(format!("{stamp}-{short}.md"));
    std::fs::write(
        &path,
        to_markdown(
            history,
            &format!("Conversation {session} (archived {stamp})"),
        ),
    )?;
    Ok(path)
}
