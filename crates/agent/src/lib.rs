//! The NanoClaw agent-runner: polls inbound.db, runs a provider, writes outbound.db (DESIGN §7).
//!
//! It never writes inbound.db; everything it says goes to outbound.db, and its liveness is a
//! file touch (`.heartbeat`), never a DB write.

pub mod config;
pub mod heartbeat;
pub mod poll;
pub mod providers;

pub use config::Config;
pub use poll::Runner;
