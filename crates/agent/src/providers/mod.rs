//! Providers behind one trait, chosen by name. Register new ones in [`by_name`].

pub mod mock;

use std::future::Future;
use std::pin::Pin;

use nanoclaw_protocol::content::Inbound;

use crate::Config;

/// One inbound row as the provider sees it (routing stays with the runner).
#[derive(Debug, Clone)]
pub struct Item {
    /// `messages_in.id`.
    pub id: String,
    /// seq, for referring to messages.
    pub seq: i64,
    /// Parsed content.
    pub content: Inbound,
    /// Whether it asked for a turn (false = context).
    pub trigger: bool,
}

/// What one turn produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply {
    /// Text to send.
    pub text: String,
}

/// Boxed future of a turn.
pub type TurnFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<Vec<Reply>>> + Send + 'a>>;

/// A model provider.
pub trait Provider: Send {
    /// Runs one turn over a batch.
    fn turn<'a>(&'a mut self, batch: &'a [Item]) -> TurnFuture<'a>;
}

/// The provider registry.
pub fn by_name(name: &str, _cfg: &Config) -> anyhow::Result<Box<dyn Provider>> {
    match name {
        "mock" => Ok(Box::new(mock::Mock)),
        other => anyhow::bail!("unknown provider {other:?} (available: mock)"),
    }
}
