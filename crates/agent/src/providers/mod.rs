//! Providers behind one trait, chosen by name. The names, their credentials and the APIs the
//! credential proxy relays for them are the table `nanoclaw_protocol::providers::PROVIDERS`;
//! a new provider is a row there and its constructor in [`by_name`].

pub mod anthropic;
pub mod claude;
pub mod conversation;
pub mod http;
pub mod mock;
pub mod native;
pub mod openai;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use nanoclaw_protocol::content::Inbound;

use crate::format::Prompt;
use crate::poll::Inject;
use crate::tools::Toolbox;
use crate::Config;

/// One inbound row as the provider sees it (routing stays with the runner).
#[derive(Debug, Clone)]
pub struct Item {
    /// `messages_in.id`.
    pub id: String,
    /// seq, for referring to messages.
    pub seq: i64,
    /// When the host wrote it.
    pub timestamp: String,
    /// Parsed content.
    pub content: Inbound,
    /// Whether it asked for a turn (false = context).
    pub trigger: bool,
}

/// What a turn gets.
pub struct Input<'a> {
    /// The batch.
    pub batch: &'a [Item],
    /// The batch formatted for the model.
    pub prompt: &'a Prompt,
    /// Messages that arrive during the turn.
    pub inject: &'a mut Inject,
}

/// Boxed future of a turn: the model's final text (parsed for destinations by the runner).
pub type TurnFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<String>> + Send + 'a>>;

/// A model provider.
pub trait Provider: Send {
    /// Runs one turn.
    fn turn<'a>(&'a mut self, input: Input<'a>) -> TurnFuture<'a>;
    /// Forgets in-memory conversation state (`/clear`; the runner clears session_state).
    fn clear(&mut self) {}
    /// Compacts the conversation now (`/compact`).
    fn compact(&mut self) -> TurnFuture<'_> {
        Box::pin(async { Ok("Nothing to compact.".to_string()) })
    }
}

/// Constructs the provider of a table row (`nanoclaw_protocol::providers`); every row has an
/// arm here (tested), a name outside the table is refused with the table's list.
pub fn by_name(name: &str, cfg: &Config, tools: Arc<Toolbox>) -> anyhow::Result<Box<dyn Provider>> {
    Ok(match name {
        "mock" => Box::new(mock::Mock),
        "claude" => Box::new(claude::Claude::new(cfg, tools)),
        "anthropic" => Box::new(native::Native::new(
            anthropic::Anthropic::new(cfg)?,
            cfg,
            tools,
        )),
        "openai" => Box::new(native::Native::new(openai::OpenAi::new(cfg), cfg, tools)),
        other => anyhow::bail!(nanoclaw_protocol::providers::unknown(other)),
    })
}
