//! Runner configuration, all from the environment the runtime sets.

use std::path::PathBuf;
use std::time::Duration;

/// Settings of one runner.
#[derive(Debug, Clone)]
pub struct Config {
    /// Session folder (`/workspace` in a container).
    pub workspace: PathBuf,
    /// Agent group folder.
    pub agent_dir: PathBuf,
    /// Shared read-only folder.
    pub global_dir: PathBuf,
    /// Provider name.
    pub provider: String,
    /// Model name, when the provider needs one.
    pub model: Option<String>,
    /// Session id.
    pub session_id: String,
    /// Poll interval while active.
    pub poll: Duration,
    /// Poll interval after 30 s without work.
    pub idle_poll: Duration,
    /// Heartbeat touch interval.
    pub heartbeat: Duration,
    /// Exit when the parent process goes away (process runtime).
    pub exit_with_parent: bool,
}

fn var(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

fn millis(k: &str, default: u64) -> Duration {
    Duration::from_millis(var(k).and_then(|v| v.parse().ok()).unwrap_or(default))
}

impl Config {
    /// Reads the environment; defaults are the container paths of DESIGN §8.
    pub fn from_env() -> Self {
        Self {
            workspace: var("NANOCLAW_WORKSPACE")
                .unwrap_or_else(|| "/workspace".into())
                .into(),
            agent_dir: var("NANOCLAW_AGENT_DIR")
                .unwrap_or_else(|| "/workspace/agent".into())
                .into(),
            global_dir: var("NANOCLAW_GLOBAL_DIR")
                .unwrap_or_else(|| "/workspace/global".into())
                .into(),
            provider: var("NANOCLAW_PROVIDER").unwrap_or_else(|| "mock".into()),
            model: var("NANOCLAW_MODEL"),
            session_id: var("NANOCLAW_SESSION_ID").unwrap_or_default(),
            poll: millis("NANOCLAW_POLL_MS", 10),
            idle_poll: millis("NANOCLAW_IDLE_POLL_MS", 100),
            heartbeat: millis("NANOCLAW_HEARTBEAT_MS", 5_000),
            exit_with_parent: var("NANOCLAW_EXIT_WITH_PARENT").as_deref() == Some("1"),
        }
    }
}
