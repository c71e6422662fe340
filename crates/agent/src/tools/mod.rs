//! Tools: the built-ins of the native loop, the NanoClaw tools, and skills, behind one registry
//! ([`REGISTRY`]); the tools of external MCP servers beside it, found at runtime.
//!
//! Names and inputs are a contract (DESIGN §7). A tool never crashes the runner: every failure
//! comes back to the model as a tool error it can read and act on.

pub mod bash;
pub mod external;
pub mod fs;
pub mod nanoclaw;
pub mod paths;
pub mod registry;
pub mod skills;
pub mod web;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::store::{Route, Shared};
use crate::Config;

pub use paths::Roots;
pub use registry::{Tool, ToolFuture, REGISTRY};

/// Largest tool output handed back to the model, in bytes.
pub const MAX_OUTPUT: usize = 30_000;

/// A tool as the model sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Name (the contract).
    pub name: &'static str,
    /// What it does, for the model.
    pub description: &'static str,
    /// JSON schema of the input.
    pub input_schema: Value,
}

/// A tool's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    /// Text for the model.
    pub text: String,
    /// Whether it failed.
    pub is_error: bool,
}

impl From<Result<String, String>> for ToolOutput {
    fn from(r: Result<String, String>) -> Self {
        match r {
            Ok(text) => Self {
                text,
                is_error: false,
            },
            Err(text) => Self {
                text,
                is_error: true,
            },
        }
    }
}

/// A required string argument.
pub fn arg_str<'a>(input: &'a Value, key: &str) -> Result<&'a str, String> {
    input
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string argument {key:?}"))
}

/// An optional integer argument.
pub fn arg_u64(input: &Value, key: &str) -> Option<u64> {
    input
        .get(key)
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
}

/// Caps output at [`MAX_OUTPUT`] (on a char boundary) with a note saying how much was cut.
pub fn cap_output(mut s: String) -> String {
    if s.len() <= MAX_OUTPUT {
        return s;
    }
    let total = s.len();
    let mut cut = MAX_OUTPUT;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s.push_str(&format!(
        "\n[… output truncated: {total} bytes, showing the first {cut}]"
    ));
    s
}

/// The turn a tool call belongs to: default route and the message being answered.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TurnInfo {
    /// Route of the batch's trigger message.
    pub route: Route,
    /// Its id.
    pub in_reply_to: Option<String>,
}

/// Which tools a toolbox offers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Set {
    /// Built-ins + NanoClaw tools + skills (native loop).
    All,
    /// NanoClaw tools only (the MCP server for Claude Code, which has its own built-ins).
    NanoClaw,
}

/// Everything tools need, shared for a runner's life.
pub struct Toolbox {
    /// The session store.
    pub store: Shared,
    /// File roots.
    pub roots: Roots,
    /// Session folder.
    pub workspace: PathBuf,
    /// HTTP client for web_fetch.
    pub http: reqwest::Client,
    /// Skills found at start.
    pub skills: Vec<skills::Skill>,
    /// How long ask_user_question waits.
    pub question_timeout: std::time::Duration,
    /// How long a system request waits for the host's answer.
    pub system_timeout: std::time::Duration,
    set: Set,
    turn: Mutex<TurnInfo>,
    external: std::sync::OnceLock<Vec<Arc<external::Server>>>,
}

impl Toolbox {
    /// Builds the toolbox of a runner.
    pub fn new(cfg: &Config, store: Shared, set: Set) -> Self {
        let mut read_only = vec![cfg.global_dir.clone()];
        read_only.extend(cfg.skills_dirs.iter().cloned());
        Self {
            roots: Roots {
                agent: cfg.agent_dir.clone(),
                session: cfg.workspace.clone(),
                read_only,
            },
            workspace: cfg.workspace.clone(),
            http: reqwest::Client::new(),
            skills: skills::discover(&cfg.skills_dirs, &cfg.agent_dir),
            question_timeout: cfg.question_timeout,
            system_timeout: cfg.system_timeout,
            store,
            set,
            turn: Mutex::new(TurnInfo::default()),
            external: std::sync::OnceLock::new(),
        }
    }

    /// Connects the external MCP servers of the container config (once; native loop only).
    pub async fn connect_external(&self, config: Option<&str>) {
        if self.set != Set::All || self.external.get().is_some() {
            return;
        }
        let servers = match config {
            Some(c) => external::connect(c).await,
            None => vec![],
        };
        let _ = self.external.set(servers);
    }

    /// Sets the turn context for the calls that follow.
    pub fn set_turn(&self, t: TurnInfo) {
        *self.turn.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }

    /// The current turn context.
    pub fn turn(&self) -> TurnInfo {
        self.turn.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The tools on offer.
    pub fn specs(&self) -> Vec<ToolSpec> {
        let mut v: Vec<ToolSpec> = REGISTRY
            .iter()
            .filter(|t| self.set.offers(t.set()) && t.offered(self))
            .map(|t| t.spec())
            .collect();
        for server in self.external.get().into_iter().flatten() {
            v.extend(server.specs.iter().cloned());
        }
        v
    }

    /// Runs a tool by name.
    pub async fn call(&self, name: &str, input: &Value) -> ToolOutput {
        let r = if name.starts_with(external::PREFIX) {
            let servers = self.external.get().map(Vec::as_slice).unwrap_or_default();
            match servers.iter().find_map(|s| s.owns(name).map(|t| (s, t))) {
                Some((server, tool)) => server.call(tool, input).await,
                None => Err(format!("unknown tool {name:?}")),
            }
        } else {
            match registry::find(self.set, name) {
                Some(tool) => tool.call(self, input).await,
                None => Err(format!("unknown tool {name:?}")),
            }
        };
        r.into()
    }
}
