//! [`ChannelContext`]: everything a channel adapter may ask of the host, and nothing more.
//! Adapters never see `Host`: they hand inbound events to ingress, report button presses
//! (the context checks who pressed and where), keep a little state of their own, stage
//! downloads, read their own settings and wait for shutdown.

use std::path::PathBuf;
use std::sync::Arc;

use super::InboundEvent;
use crate::ingress::RouteOutcome;
use crate::{db, Host, HostEvent};

/// Routings of one platform update before it is recorded and skipped (see
/// [`ChannelContext::give_up`]): a failure that repeats (one session's broken files) must not
/// hold up every chat behind it.
pub const ROUTE_ATTEMPTS: u32 = crate::ingress::ROUTE_ATTEMPTS;

/// A button press as the adapter saw it. Everything in it came from the platform's client and
/// is checked here: the card must be open, the press must come from the card's own chat and
/// message, and the sender must be allowed to answer it.
#[derive(Debug, Clone)]
pub struct Press {
    /// The host's question id the button carries.
    pub question_id: String,
    /// The option's index.
    pub index: usize,
    /// The chat the press came from (namespaced, as in `InboundEvent::platform_id`).
    pub platform_id: String,
    /// The platform's id of the message the button is on, when the platform says.
    pub platform_message_id: Option<String>,
    /// The presser's platform id (the user is `<channel_type>:<handle>`).
    pub sender_handle: String,
    /// The presser's display name.
    pub sender_name: String,
}

/// What became of a press; the adapter updates the card and tells the presser.
#[derive(Debug, Clone, PartialEq)]
pub enum PressOutcome {
    /// Taken: the card can show the choice (`title` and `chosen`, e.g. "✅ Approved").
    Answered {
        /// The question's title.
        title: String,
        /// The chosen option's label.
        label: String,
        /// What the card shows once answered.
        chosen: String,
    },
    /// This sender may not answer this card, or the press did not come from the card.
    NotAllowed,
    /// No such open question (answered, expired, unknown): the card can be closed.
    Gone,
    /// Not taken for another reason (somebody answered in the same instant, a DB error):
    /// logged; the card is left as it is.
    NotTaken,
}

/// The host as one adapter sees it.
#[derive(Clone)]
pub struct ChannelContext {
    host: Arc<Host>,
    channel: &'static str,
}

impl ChannelContext {
    pub(crate) fn new(host: Arc<Host>, channel: &'static str) -> Self {
        Self { host, channel }
    }

    /// Routes one inbound event (idempotent per `platform_message_id`).
    pub async fn route(&self, ev: InboundEvent) -> anyhow::Result<RouteOutcome> {
        self.host.route(ev).await
    }

    /// Records an event that failed to route [`ROUTE_ATTEMPTS`] times and skips it, so the
    /// updates behind it are served; the chat is told.
    pub async fn give_up(&self, ev: &InboundEvent, error: &anyhow::Error) {
        crate::ingress::give_up(&self.host, ev, error).await
    }

    /// Answers a question card from a button press, with every check a card needs.
    pub async fn press(&self, p: Press) -> PressOutcome {
        let q = match crate::access::questions::get(&self.host, &p.question_id).await {
            Ok(Some(q)) => q,
            Ok(None) => return PressOutcome::Gone,
            Err(e) => {
                tracing::warn!(error = %e, "question lookup failed");
                return PressOutcome::NotTaken;
            }
        };
        // The press must come from the card itself: its chat and its message.
        if p.platform_id != q.platform_id
            || (q.platform_message_id.is_some() && q.platform_message_id != p.platform_message_id)
        {
            tracing::warn!(question = %q.question_id, chat = %p.platform_id, "answer refused: button press from outside its card");
            return PressOutcome::NotAllowed;
        }
        let sender = format!("{}:{}", self.channel, p.sender_handle);
        // Who may answer is checked in `questions::answer` (and logged there).
        match crate::access::questions::answer(&self.host, &q, p.index, &sender, &p.sender_name)
            .await
        {
            Ok((choice, _)) => PressOutcome::Answered {
                title: q.title.clone(),
                label: choice.label.clone(),
                chosen: choice.chosen_text(),
            },
            Err(crate::access::questions::AnswerError::NotAllowed(_)) => PressOutcome::NotAllowed,
            Err(e) => {
                tracing::debug!(error = %e, "button press not taken");
                PressOutcome::NotTaken
            }
        }
    }

    /// A value of this channel's own state (e.g. a poll offset), kept across restarts.
    pub async fn state(&self, key: &str) -> anyhow::Result<Option<String>> {
        let (ch, key) = (self.channel, key.to_string());
        self.host
            .db
            .call(move |c| Ok(db::channel_state::get(c, ch, &key)?))
            .await
    }

    /// Sets a value of this channel's own state.
    pub async fn set_state(&self, key: &str, value: &str) -> anyhow::Result<()> {
        let (ch, key, value) = (self.channel, key.to_string(), value.to_string());
        self.host
            .db
            .call(move |c| Ok(db::channel_state::set(c, ch, &key, &value)?))
            .await
    }

    /// A new private folder for one download; ingress moves staged files into the
    /// sessions' inboxes.
    pub async fn staging_dir(&self) -> std::io::Result<PathBuf> {
        let dir = self
            .host
            .home
            .data_dir()
            .join("tmp")
            .join(nanoclaw_protocol::new_id(self.channel));
        tokio::fs::create_dir_all(&dir).await?;
        Ok(dir)
    }

    /// A setting (environment, `nanoclaw.toml`, `.env`).
    pub fn setting(&self, key: &str) -> Option<String> {
        self.host.settings.get(key)
    }

    /// A numeric setting.
    pub fn setting_u64(&self, key: &str, default: u64) -> u64 {
        self.host.settings.u64(key, default)
    }

    /// Resolves when the host shuts down.
    pub async fn shutdown(&self) {
        self.host.shutdown_signal().await
    }

    /// Host events (turns done, runners failed): the terminal shows them to its clients.
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<HostEvent> {
        self.host.subscribe()
    }

    /// What the terminal's `status` request answers: runtime warnings and channel states.
    pub async fn status(&self) -> serde_json::Value {
        let warnings: Vec<String> = self
            .host
            .runners
            .runtime()
            .warning()
            .await
            .into_iter()
            .collect();
        serde_json::json!({"type": "status", "warnings": warnings, "channels": self.host.channels.states()})
    }

    /// Wires the terminal chat of an agent folder (the terminal's `agent` field).
    pub async fn ensure_terminal_wiring(&self, folder: &str) -> anyhow::Result<()> {
        self.host.ensure_terminal_wiring(folder).await
    }
}
