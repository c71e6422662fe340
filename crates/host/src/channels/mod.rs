//! Channel adapters: a platform turned into (channel_type, platform_id, thread_id, message) and back.
//!
//! Adding a channel = one module + one line in [`Registry::from_settings`] (+ a cargo feature
//! for heavy ones). Routing, delivery and runtimes never name a channel.

pub mod cli;
pub mod markdown;
#[cfg(feature = "telegram")]
pub mod telegram;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use nanoclaw_protocol::content::{CardView, Outbound, QuestionOption};

use crate::Host;

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

/// A message normalised by an adapter, ready for the router.
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
    /// Files the adapter downloaded to a staging folder; the router moves them into each
    /// session's inbox/<message_id>/.
    pub attachments: Vec<StagedFile>,
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

/// A send the platform refused for good (bad request, blocked bot, disallowed emoji…): the
/// host fails the row at once and tells the agent, instead of retrying what cannot succeed.
/// Adapters return it inside their `anyhow::Error`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

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
    /// Starts receiving; inbound events go to `host.route(…)`. Called again after an error
    /// until it succeeds (so it must not leave half a start behind); [`Fatal`] stops the host.
    async fn start(self: Arc<Self>, host: Arc<Host>) -> anyhow::Result<()>;
    /// Sends one outbound item; returns the platform message id.
    async fn send(&self, item: &OutboundItem) -> anyhow::Result<Option<String>>;
    /// Answers whether an in-flight send reached the platform.
    async fn reconcile(&self, _message_out_id: &str) -> Reconciled {
        Reconciled::Unknown
    }
    /// Typing indicator on/off (no-op where unsupported).
    async fn typing(&self, _platform_id: &str, _thread_id: Option<&str>, _on: bool) {}
    /// Stops receiving.
    async fn stop(&self) {}
}

/// Where a channel's connection stands.
#[derive(Debug, Clone)]
pub enum State {
    /// The first start is under way.
    Connecting,
    /// Started.
    Connected,
    /// The last start failed; the next one is at `next`.
    Retrying {
        /// The last error.
        reason: String,
        /// When the next try starts.
        next: std::time::Instant,
    },
    /// Gave up (a [`Fatal`] error after the host had started).
    Failed(String),
}

impl State {
    /// One line for `status` and `doctor`, e.g. "retrying (connection refused), next try in 8 s".
    pub fn describe(&self) -> String {
        match self {
            State::Connecting => "connecting".into(),
            State::Connected => "connected".into(),
            State::Retrying { reason, next } => format!(
                "retrying ({reason}), next try in {} s",
                next.saturating_duration_since(std::time::Instant::now())
                    .as_secs_f64()
                    .ceil() as u64
            ),
            State::Failed(reason) => format!("not connected: {reason}"),
        }
    }
}

/// The channels this host runs, by channel_type.
#[derive(Default, Clone)]
pub struct Registry {
    by_type: HashMap<&'static str, Arc<dyn Channel>>,
    states: Arc<std::sync::Mutex<HashMap<&'static str, State>>>,
}

/// Channel types this build has an adapter for (enabled or not).
pub fn compiled() -> Vec<&'static str> {
    let mut v = vec!["cli"];
    #[cfg(feature = "telegram")]
    v.push("telegram");
    v
}

impl Registry {
    /// Builds the enabled channels. Register new adapters here.
    pub fn from_settings(
        home: &nanoclaw_protocol::Home,
        settings: &crate::config::Settings,
    ) -> Self {
        let _ = settings; // unused when no optional adapter is compiled in
        let mut r = Self::default();
        r.register(Arc::new(cli::CliChannel::new(home)));
        // One line per adapter, each behind its cargo feature.
        #[cfg(feature = "telegram")]
        r.extend(telegram::from_settings(settings));
        r
    }
    /// Adds an adapter when its settings enable it.
    pub fn extend(&mut self, ch: Option<Arc<dyn Channel>>) {
        if let Some(ch) = ch {
            self.register(ch);
        }
    }
    /// Adds an adapter.
    pub fn register(&mut self, ch: Arc<dyn Channel>) {
        self.by_type.insert(ch.channel_type(), ch);
    }
    /// The adapter for a channel type.
    pub fn get(&self, channel_type: &str) -> Option<&Arc<dyn Channel>> {
        self.by_type.get(channel_type)
    }
    /// All adapters.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Channel>> {
        self.by_type.values()
    }
    fn set_state(&self, channel: &'static str, st: State) {
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(channel, st);
    }
    /// Channel type → [`State::describe`], for `status` and `doctor`.
    pub fn states(&self) -> std::collections::BTreeMap<String, String> {
        let st = self.states.lock().unwrap_or_else(|p| p.into_inner());
        self.by_type
            .keys()
            .map(|k| {
                let s = st
                    .get(k)
                    .map_or_else(|| "not started".into(), State::describe);
                (k.to_string(), s)
            })
            .collect()
    }
}

/// How long the host waits for the first start of the platform channels before serving
/// without them (a slow or unreachable platform must not hold up the terminal).
const FIRST_START_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Starts every channel: the terminal at once (it is local; failing it stops the host), the
/// others each in their own task that retries with backoff (`NANOCLAW_CHANNEL_RETRY_MS`,
/// default 2 s, doubling up to 5 min) until the platform answers. A [`Fatal`] error during
/// the first seconds stops the host with that error.
pub async fn start_all(host: &Arc<Host>) -> anyhow::Result<()> {
    let mut firsts = Vec::new();
    for ch in host.channels.all().cloned().collect::<Vec<_>>() {
        let kind = ch.channel_type();
        if kind == cli::CHANNEL {
            ch.start(host.clone()).await?;
            host.channels.set_state(kind, State::Connected);
            continue;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        host.channels.set_state(kind, State::Connecting);
        tokio::spawn(supervise(host.clone(), ch, tx));
        firsts.push(rx);
    }
    let deadline = tokio::time::Instant::now() + FIRST_START_WAIT;
    for rx in firsts {
        if let Ok(Ok(Err(e))) = tokio::time::timeout_at(deadline, rx).await {
            return Err(e);
        }
    }
    Ok(())
}

/// Starts one platform channel, retrying until it is up. `first` hears the first outcome: a
/// [`Fatal`] error, or Ok (started, or retrying in the background).
async fn supervise(
    host: Arc<Host>,
    ch: Arc<dyn Channel>,
    first: tokio::sync::oneshot::Sender<anyhow::Result<()>>,
) {
    let kind = ch.channel_type();
    let base = host.settings.millis("NANOCLAW_CHANNEL_RETRY_MS", 2000);
    let max = std::time::Duration::from_secs(300);
    let mut first = Some(first);
    let mut delay = base;
    let mut tries = 0u32;
    loop {
        tries += 1;
        match ch.clone().start(host.clone()).await {
            Ok(()) => {
                host.channels.set_state(kind, State::Connected);
                if tries > 1 {
                    tracing::info!(channel = kind, tries, "channel connected after retrying");
                }
                if let Some(f) = first.take() {
                    let _ = f.send(Ok(()));
                }
                return;
            }
            Err(e) if e.is::<Fatal>() => {
                tracing::error!(channel = kind, error = %e, "channel cannot start; not retrying");
                host.channels.set_state(kind, State::Failed(e.to_string()));
                if let Some(f) = first.take() {
                    let _ = f.send(Err(e));
                }
                return;
            }
            Err(e) => {
                let reason = format!("{e}");
                tracing::warn!(channel = kind, error = %reason, retry_in_ms = delay.as_millis() as u64, "channel cannot connect; retrying in the background");
                host.channels.set_state(
                    kind,
                    State::Retrying {
                        reason,
                        next: std::time::Instant::now() + delay,
                    },
                );
                if let Some(f) = first.take() {
                    let _ = f.send(Ok(()));
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = host.shutdown_signal() => return,
        }
        delay = (delay * 2).min(max);
    }
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
