//! Typed message content (DESIGN §4). Every struct keeps unknown fields in `extra`, so a
//! newer writer's fields survive a round trip through an older reader.
//!
//! - `inbound`: `messages_in.content` by kind (chat, task, webhook, system).
//! - `outbound`: `messages_out.content` by kind and shape (message, edit, reaction, question,
//!   card, system request).
//! - `card`: how cards and question options read, leniently, before a channel renders them.

mod card;
mod inbound;
mod outbound;

use crate::{Error, Result};

pub use card::{CardView, QuestionOption};
pub use inbound::{Chat, Inbound, SystemResponse, Task, Webhook};
pub use outbound::Outbound;

/// Largest accepted `content` JSON, in bytes; larger rows are refused with an error.
pub const MAX_CONTENT_BYTES: usize = 2 * 1024 * 1024;

fn parse_json<T: serde::de::DeserializeOwned>(kind: &str, content: &str) -> Result<T> {
    if content.len() > MAX_CONTENT_BYTES {
        return Err(Error::Content(format!(
            "{kind} content is {} bytes, over the {MAX_CONTENT_BYTES}-byte limit",
            content.len()
        )));
    }
    serde_json::from_str(content).map_err(|e| Error::Content(format!("{kind} content: {e}")))
}

#[cfg(test)]
mod tests;
