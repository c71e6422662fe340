//! The NanoClaw agent-runner: polls inbound.db, runs a provider, writes outbound.db (DESIGN §7).
//!
//! It never writes inbound.db; everything it says goes to outbound.db, and its liveness is a
//! file touch (`.heartbeat`), never a DB write.

pub mod commands;
pub mod config;
pub mod entry;
pub mod format;
pub mod heartbeat;
pub mod mcp;
pub mod output;
pub mod poll;
pub mod prompt;
pub mod providers;
pub mod store;
pub mod tools;

pub use config::Config;
pub use poll::Runner;

use std::sync::Arc;

/// Opens the store, tools and provider of a runner.
pub fn build(cfg: Config) -> anyhow::Result<Runner> {
    let store = store::Store::open(&cfg.workspace)?.shared();
    let tools = Arc::new(tools::Toolbox::new(&cfg, store.clone(), tools::Set::All));
    let provider = providers::by_name(&cfg.provider, &cfg, tools.clone())?;
    Runner::new(cfg, store, tools, provider)
}
