//! Runner configuration, all from the environment the runtime sets (names in
//! `nanoclaw_protocol::env` and the provider table's upstreams).

use std::path::PathBuf;
use std::time::Duration;

use nanoclaw_protocol::env;
use nanoclaw_protocol::providers::{self, ANTHROPIC, OPENAI};

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
    /// Skills folders (bundled, shared).
    pub skills_dirs: Vec<PathBuf>,
    /// The assistant's name.
    pub assistant_name: String,
    /// Context window in tokens; compaction starts at three quarters of it.
    pub context_limit: u64,
    /// Output token cap per model call.
    pub max_tokens: u32,
    /// Tool steps allowed in one turn.
    pub max_steps: u32,
    /// How long ask_user_question waits for an answer.
    pub question_timeout: Duration,
    /// How long a system request waits for the host.
    pub system_timeout: Duration,
    /// Sender ids allowed to run admin commands (`NANOCLAW_ADMIN_USER_IDS`).
    pub admins: Vec<String>,
    /// Messages API base (the host's proxy).
    pub anthropic_base_url: String,
    /// Key for it (the proxy's placeholder token).
    pub anthropic_api_key: Option<String>,
    /// Bearer token alternative (`ANTHROPIC_AUTH_TOKEN`).
    pub anthropic_auth_token: Option<String>,
    /// OpenAI-compatible base, with `/v1`.
    pub openai_base_url: String,
    /// Key for it (optional for local servers).
    pub openai_api_key: Option<String>,
    /// Model call attempts (`NANOCLAW_MODEL_RETRY_ATTEMPTS`).
    pub retry_attempts: u32,
    /// First retry backoff (`NANOCLAW_MODEL_RETRY_BASE_MS`).
    pub retry_base: Duration,
    /// The Claude Code CLI (`NANOCLAW_CLAUDE_BIN`, default `claude` on PATH).
    pub claude_bin: PathBuf,
    /// This runner's own executable (serves `mcp` to Claude Code).
    pub self_bin: PathBuf,
    /// Arguments before `mcp` when starting `self_bin` again (`["agent"]` inside `nanoclaw`).
    pub self_args: Vec<String>,
    /// External MCP servers of the container config (JSON object), if any.
    pub mcp_servers: Option<String>,
}

fn var(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

fn num(k: &str, default: u64) -> u64 {
    var(k).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn millis(k: &str, default: u64) -> Duration {
    Duration::from_millis(var(k).and_then(|v| v.parse().ok()).unwrap_or(default))
}

impl Config {
    /// Reads the environment; defaults are the container paths of DESIGN §8.
    pub fn from_env() -> Self {
        Self {
            workspace: var(env::WORKSPACE)
                .unwrap_or_else(|| "/workspace".into())
                .into(),
            agent_dir: var(env::AGENT_DIR)
                .unwrap_or_else(|| "/workspace/agent".into())
                .into(),
            global_dir: var(env::GLOBAL_DIR)
                .unwrap_or_else(|| "/workspace/global".into())
                .into(),
            provider: var(env::PROVIDER).unwrap_or_else(|| providers::FALLBACK.into()),
            model: var(env::MODEL),
            session_id: var(env::SESSION_ID).unwrap_or_default(),
            poll: millis(env::POLL_MS, 10),
            idle_poll: millis(env::IDLE_POLL_MS, 100),
            heartbeat: millis(env::HEARTBEAT_MS, 5_000),
            exit_with_parent: var(env::EXIT_WITH_PARENT).as_deref() == Some("1"),
            skills_dirs: var(env::SKILLS_DIR)
                .unwrap_or_else(|| "/workspace/skills".into())
                .split(':')
                .map(PathBuf::from)
                .collect(),
            assistant_name: var(env::ASSISTANT_NAME).unwrap_or_else(|| "Andy".into()),
            context_limit: num(env::CONTEXT_LIMIT, 200_000),
            max_tokens: num(env::MAX_TOKENS, 8192) as u32,
            max_steps: num(env::MAX_STEPS, 50).max(1) as u32,
            question_timeout: millis(env::QUESTION_TIMEOUT_MS, 600_000),
            system_timeout: millis(env::SYSTEM_TIMEOUT_MS, 30_000),
            admins: crate::commands::admins_from_env(),
            anthropic_base_url: var(ANTHROPIC.base_url_var)
                .unwrap_or_else(|| ANTHROPIC.default_base_url.into()),
            anthropic_api_key: var(ANTHROPIC.key_var),
            anthropic_auth_token: var(env::ANTHROPIC_AUTH_TOKEN),
            openai_base_url: var(OPENAI.base_url_var)
                .unwrap_or_else(|| OPENAI.default_base_url.into()),
            openai_api_key: var(OPENAI.key_var),
            retry_attempts: num(env::MODEL_RETRY_ATTEMPTS, 5).max(1) as u32,
            retry_base: millis(env::MODEL_RETRY_BASE_MS, 1000),
            claude_bin: var(env::CLAUDE_BIN)
                .unwrap_or_else(|| "claude".into())
                .into(),
            self_bin: std::env::current_exe().unwrap_or_else(|_| "nanoclaw-agent".into()),
            self_args: Vec::new(),
            mcp_servers: var(env::MCP_SERVERS),
        }
    }
}
