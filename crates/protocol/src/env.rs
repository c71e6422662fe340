//! The runner's environment: the variables the host (its runtimes, `runners.rs`, the
//! credential proxy) sets and the runner (`crates/agent/src/config.rs`) reads. One name in one
//! place, so neither side can rename a variable the other still uses.

/// The session folder (`/workspace` in a container).
pub const WORKSPACE: &str = "NANOCLAW_WORKSPACE";
/// The agent group's folder (`/workspace/agent` in a container).
pub const AGENT_DIR: &str = "NANOCLAW_AGENT_DIR";
/// The shared read-only folder (`/workspace/global` in a container).
pub const GLOBAL_DIR: &str = "NANOCLAW_GLOBAL_DIR";
/// Skills folders, `:`-separated (`/workspace/skills` in a container).
pub const SKILLS_DIR: &str = "NANOCLAW_SKILLS_DIR";
/// `1`: exit when the parent goes away (the process runtime).
pub const EXIT_WITH_PARENT: &str = "NANOCLAW_EXIT_WITH_PARENT";
/// The session id.
pub const SESSION_ID: &str = "NANOCLAW_SESSION_ID";
/// The agent group id.
pub const AGENT_GROUP_ID: &str = "NANOCLAW_AGENT_GROUP_ID";
/// The provider's name (a row of [`crate::providers::PROVIDERS`]); also the host's setting of
/// the default provider.
pub const PROVIDER: &str = "NANOCLAW_PROVIDER";
/// The model, when the provider takes one.
pub const MODEL: &str = "NANOCLAW_MODEL";
/// Sender ids allowed to run admin commands, `,`-separated.
pub const ADMIN_USER_IDS: &str = "NANOCLAW_ADMIN_USER_IDS";
/// The name the agent answers to (NanoClaw v2's name for it).
pub const ASSISTANT_NAME: &str = "ASSISTANT_NAME";
/// The configured timezone (parsed by [`crate::time::parse_tz`]).
pub const TZ: &str = "TZ";
/// External MCP servers of the container config, a JSON object.
pub const MCP_SERVERS: &str = "NANOCLAW_MCP_SERVERS";
/// Poll interval while active, ms.
pub const POLL_MS: &str = "NANOCLAW_POLL_MS";
/// Poll interval when idle, ms.
pub const IDLE_POLL_MS: &str = "NANOCLAW_IDLE_POLL_MS";
/// Heartbeat touch interval, ms.
pub const HEARTBEAT_MS: &str = "NANOCLAW_HEARTBEAT_MS";
/// Context window in tokens.
pub const CONTEXT_LIMIT: &str = "NANOCLAW_CONTEXT_LIMIT";
/// Output token cap per model call.
pub const MAX_TOKENS: &str = "NANOCLAW_MAX_TOKENS";
/// Tool steps allowed in one turn.
pub const MAX_STEPS: &str = "NANOCLAW_MAX_STEPS";
/// First model-call retry backoff, ms.
pub const MODEL_RETRY_BASE_MS: &str = "NANOCLAW_MODEL_RETRY_BASE_MS";
/// Model call attempts.
pub const MODEL_RETRY_ATTEMPTS: &str = "NANOCLAW_MODEL_RETRY_ATTEMPTS";
/// How long ask_user_question waits, ms.
pub const QUESTION_TIMEOUT_MS: &str = "NANOCLAW_QUESTION_TIMEOUT_MS";
/// How long a system request waits for the host, ms.
pub const SYSTEM_TIMEOUT_MS: &str = "NANOCLAW_SYSTEM_TIMEOUT_MS";
/// The Claude Code CLI.
pub const CLAUDE_BIN: &str = "NANOCLAW_CLAUDE_BIN";
/// The runner's log filter.
pub const RUST_LOG: &str = "RUST_LOG";
/// A bearer token for the Messages API instead of a key (the runner reads it; the host never
/// sets it: the proxy's placeholder goes in [`crate::providers::ANTHROPIC`]'s key variable).
pub const ANTHROPIC_AUTH_TOKEN: &str = "ANTHROPIC_AUTH_TOKEN";

/// Host settings passed on to the runner unchanged when set (environment, `nanoclaw.toml` or
/// `.env`); the rest of the runner's environment is computed by the host.
pub const PASSTHROUGH: &[&str] = &[
    MODEL,
    POLL_MS,
    HEARTBEAT_MS,
    IDLE_POLL_MS,
    CONTEXT_LIMIT,
    MAX_TOKENS,
    MAX_STEPS,
    MODEL_RETRY_BASE_MS,
    MODEL_RETRY_ATTEMPTS,
    QUESTION_TIMEOUT_MS,
    SYSTEM_TIMEOUT_MS,
    CLAUDE_BIN,
    RUST_LOG,
];
