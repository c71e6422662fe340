//! Channel adapters: a platform turned into (channel_type, platform_id, thread_id, message) and back.
//!
//! Adding a channel = its folder (an implementation of [`Channel`] that reaches the host only
//! through its [`ChannelContext`], and its [`Spec`]: settings, doctor checks, setup step), one
//! line naming that spec in [`SPECS`] and a cargo feature. Routing, delivery and runtimes never
//! name a channel; `run`, `status`, `doctor` and `setup` read [`SPECS`].

pub mod cli;
mod context;
pub mod markdown;
mod registry;
#[cfg(feature = "telegram")]
pub mod telegram;

use std::sync::Arc;

use async_trait::async_trait;
use nanoclaw_protocol::content::{CardView, Outbound, QuestionOption};

pub use context::{ChannelContext, Press, PressOutcome, ROUTE_ATTEMPTS};
pub use registry::{
    compiled, no_checks, single_token, start_all, Check, Registry, SettingSpec, SetupStep, Spec,
    State, SPECS,
};

/// What a platform can do; the host degrades gracefully for what it cannot.
#[derive(Debug, Clone, Copy, Default)]
pub struct Capabilities {
    /// Sub-threads.
    pub threads: bool,
    /// @mentions of the bot.
    pub mentions: bool,
    /// Editing sent messages.
    pub edits: bool,
    /// Reactions.
    pub reactions: bool,
    /// Buttons / cards.
    pub buttons: bool,
    /// File uploads.
    pub files: bool,
    /// Typing indicator.
    pub typing: bool,
    /// Can DM a user who never wrote first.
    pub cold_dm: bool,
}

/// A message normalised by an adapter, ready for ingress.
#[derive(Debug, Clone, Default)]
pub struct InboundEvent {
    /// Channel.
    pub channel_type: String,
    /// Namespaced chat id.
    pub platform_id: String,
    /// Sub-thread.
    pub thread_id: Option<String>,
    /// Sender's id on the platform (the user row is `<channel_type>:<handle>`).
    pub sender_handle: String,
    /// Sender's display name.
    pub sender_name: String,
    /// Text.
    pub text: String,
    /// The bot was mentioned (or replied to).
    pub is_mention: bool,
    /// A group chat (false = DM).
    pub is_group: bool,
    /// Chat display name.
    pub chat_name: Option<String>,
    /// The platform's id of this message, when it has one: makes routing idempotent (a
    /// redelivered update maps to the same row and is ignored).
    pub platform_message_id: Option<String>,
    /// Files the adapter downloaded to a staging folder; ingress moves them into each
    /// session's inbox/<message_id>/.
    pub attachments: Vec<StagedFile>,
    /// The message this one answers, as the platform quoted it.
    pub reply_to: Option<ReplyTo>,
}

/// What a reply answers: shown to the agent as a short quote (NanoClaw v2's `replyTo`).
#[derive(Debug, Clone, Default)]
pub struct ReplyTo {
    /// The platform's id of the message replied to.
    pub platform_message_id: Option<String>,
    /// Who wrote it.
    pub sender: Option<String>,
    /// Its text (ingress keeps a short excerpt).
    pub text: Option<String>,
}

/// A downloaded inbound file waiting for its session.
#[derive(Debug, Clone, Default)]
pub struct StagedFile {
    /// Validated file name.
    pub name: String,
    /// Where it was downloaded.
    pub path: std::path::PathBuf,
    /// MIME type as the platform said.
    pub mime: String,
    /// Size in bytes.
    pub size: u64,
}

/// One outbound row handed to an adapter.
#[derive(Debug, Clone)]
pub struct OutboundItem {
    /// `messages_out.id`: adapters that can use an idempotency key use this one.
    pub message_out_id: String,
    /// Chat.
    pub platform_id: String,
    /// Thread.
    pub thread_id: Option<String>,
    /// The inbound row this answers.
    pub in_reply_to: Option<String>,
    /// For edits and reactions: the platform's id of the message they target.
    pub target_platform_message_id: Option<String>,
    /// What to do.
    pub content: Outbound,
    /// Files to upload, read once from the outbox through `protocol::beneath` (regular files,
    /// no links, within the size cap); cloning one for a retry is a reference count.
    pub files: Vec<OutFile>,
}

/// One outbox file, read and checked by delivery.
#[derive(Debug, Clone)]
pub struct OutFile {
    /// Validated file name.
    pub name: String,
    /// Its content.
    pub data: bytes::Bytes,
}

/// The text a channel without buttons shows for a message, card or question: a card becomes its
/// fallback text (or, without one, the card rendered with its links), a question its title,
/// question and numbered options. None for operations.
pub fn text_of(content: &Outbound) -> Option<String> {
    match content {
        Outbound::Message { text, .. } => Some(text.clone()),
        Outbound::Card {
            card,
            fallback_text,
        } => Some(if fallback_text.trim().is_empty() {
            CardView::parse(card).markdown(true)
        } else {
            fallback_text.clone()
        }),
        Outbound::AskQuestion {
            title,
            question,
            options,
            ..
        } => {
            let mut t = format!("{title}\n{question}");
            for (i, o) in QuestionOption::normalize_all(options).iter().enumerate() {
                t.push_str(&format!("\n{}. {}", i + 1, o.label));
            }
            Some(t)
        }
        Outbound::Edit { .. } | Outbound::Reaction { .. } | Outbound::System { .. } => None,
    }
}

/// Why a send failed, which decides what the host does next.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The platform refused for good (bad request, blocked bot, disallowed emoji…): the host
    /// fails the row at once and tells the agent, instead of retrying what cannot succeed.
    #[error("{0}")]
    Refused(String),
    /// Anything that may succeed later (network, rate limit, the platform's 5xx): retried
    /// with backoff up to the send attempts.
    #[error(transparent)]
    Transient(#[from] anyhow::Error),
}

impl SendError {
    /// A transient failure from any error.
    pub fn transient(e: impl Into<anyhow::Error>) -> Self {
        Self::Transient(e.into())
    }
}

/// After a crash: did a send that was in flight reach the platform?
#[derive(Debug, Clone, PartialEq)]
pub enum Reconciled {
    /// Yes, with this platform message id.
    Sent(Option<String>),
    /// No: safe to send.
    NotSent,
    /// The platform cannot tell: treated as sent (at most once, logged).
    Unknown,
}

/// A start failure that trying again cannot fix (a rejected token, a bad setting): the host
/// stops with it instead of retrying. Adapters return it inside their `anyhow::Error`; any
/// other start error is retried in the background while the other channels serve.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Fatal(pub String);

/// A platform adapter.
#[async_trait]
pub trait Channel: Send + Sync {
    /// `cli`, `telegram`…
    fn channel_type(&self) -> &'static str;
    /// Declared capabilities.
    fn capabilities(&self) -> Capabilities;
    /// Starts receiving; inbound events go to `ctx.route(…)`. Called again after an error
    /// until it succeeds (so it must not leave half a start behind); [`Fatal`] stops the host.
    async fn start(self: Arc<Self>, ctx: ChannelContext) -> anyhow::Result<()>;
    /// Sends one outbound item; returns the platform message id.
    async fn send(&self, item: &OutboundItem) -> Result<Option<String>, SendError>;
    /// Answers whether an in-flight send reached the platform.
    async fn reconcile(&self, _message_out_id: &str) -> Reconciled {
        Reconciled::Unknown
    }
    /// Typing indicator on/off (no-op where unsupported).
    async fn typing(&self, _platform_id: &str, _thread_id: Option<&str>, _on: bool) {}
    /// Stops receiving.
    async fn stop(&self) {}
}

/// The innermost cause of an error, without the OS error number: "connection refused" rather
/// than "error sending request".
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let s = cur.to_string();
    let s = match s.find(" (os error") {
        Some(i) => &s[..i],
        None => &s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_and_questions_degrade_to_numbered_text() {
        let q = Outbound::parse(
            "chat",
            r#"{"operation":"ask_question","questionId":"q1","title":"Deploy?","question":"Ship it now?","options":["Yes",{"label":"Later"}]}"#,
        )
        .unwrap();
        assert_eq!(
            text_of(&q).unwrap(),
            "Deploy?\nShip it now?\n1. Yes\n2. Later"
        );
        let card = Outbound::parse("chat", r#"{"card":{"x":1},"fallbackText":"plain"}"#).unwrap();
        assert_eq!(text_of(&card).as_deref(), Some("plain"));
        let card = Outbound::parse(
            "chat",
            r#"{"card":{"title":"T","actions":[{"label":"Go","url":"https://e.x"}]}}"#,
        )
        .unwrap();
        assert_eq!(text_of(&card).as_deref(), Some("**T**\n\nGo: https://e.x"));
        let r = Outbound::parse(
            "chat",
            r#"{"operation":"reaction","messageId":2,"emoji":"👍"}"#,
        )
        .unwrap();
        assert_eq!(text_of(&r), None);
    }
}
