//! Tools: the built-ins of the native loop, the NanoClaw tools, and skills, behind one registry.
//!
//! Names and inputs are a contract (DESIGN §7). A tool never crashes the runner: every failure
//! comes back to the model as a tool error it can read and act on.

pub mod bash;
pub mod external;
pub mod fs;
pub mod nanoclaw;
pub mod paths;
pub mod skills;
pub mod web;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::store::{self, Route, Shared};
use crate::Config;

pub use paths::Roots;

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
#[derive(Debug, Clone, Default)]
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
        let mut v = Vec::new();
        if self.set == Set::All {
            v.extend(builtin_specs());
            if !self.skills.is_empty() {
                v.push(skills::spec());
            }
        }
        v.extend(nanoclaw::specs());
        for server in self.external.get().into_iter().flatten() {
            v.extend(server.specs.iter().cloned());
        }
        v
    }

    /// Runs a tool by name.
    pub async fn call(&self, name: &str, input: &Value) -> ToolOutput {
        let builtin = self.set == Set::All;
        let r = match name {
            "read" if builtin => fs::read(&self.roots, input),
            "write" if builtin => fs::write(&self.roots, input),
            "edit" if builtin => fs::edit(&self.roots, input),
            "glob" if builtin => fs::glob(&self.roots, input),
            "grep" if builtin => fs::grep(&self.roots, input),
            "web_fetch" if builtin => web::fetch(&self.http, input).await,
            "skill" if builtin => skills::load(&self.skills, input),
            "bash" if builtin => {
                let timeout = bash::timeout_of(input);
                let _ = store::lock(&self.store).set_tool(Some(("bash", timeout)));
                let r = bash::run(&self.roots.agent, input).await;
                let _ = store::lock(&self.store).set_tool(None);
                r
            }
            other if other.starts_with(external::PREFIX) => {
                let servers = self.external.get().map(Vec::as_slice).unwrap_or_default();
                match servers.iter().find_map(|s| s.owns(other).map(|t| (s, t))) {
                    Some((server, tool)) => server.call(tool, input).await,
                    None => Err(format!("unknown tool {other:?}")),
                }
            }
            other => match nanoclaw::call(self, other, input).await {
                Some(r) => r,
                None => Err(format!("unknown tool {other:?}")),
            },
        };
        r.into()
    }
}

fn spec(name: &'static str, description: &'static str, input_schema: Value) -> ToolSpec {
    ToolSpec {
        name,
        description,
        input_schema,
    }
}

/// Schemas of the built-in tools.
pub fn builtin_specs() -> Vec<ToolSpec> {
    vec![
        spec(
            "bash",
            "Run a shell command in the agent folder. Output (stdout+stderr) is capped.",
            json!({"type": "object", "properties": {
                "command": {"type": "string"},
                "timeout_ms": {"type": "integer", "description": "default 120000, max 600000"}},
                "required": ["command"]}),
        ),
        spec(
            "read",
            "Read a text file (numbered lines). Relative paths start in the agent folder.",
            json!({"type": "object", "properties": {
                "path": {"type": "string"},
                "offset": {"type": "integer", "description": "first line, 1-based"},
                "limit": {"type": "integer"}},
                "required": ["path"]}),
        ),
        spec(
            "write",
            "Create or replace a file.",
            json!({"type": "object", "properties": {
                "path": {"type": "string"}, "content": {"type": "string"}},
                "required": ["path", "content"]}),
        ),
        spec(
            "edit",
            "Replace an exact string in a file (must be unique unless replace_all).",
            json!({"type": "object", "properties": {
                "path": {"type": "string"}, "old_string": {"type": "string"},
                "new_string": {"type": "string"}, "replace_all": {"type": "boolean"}},
                "required": ["path", "old_string", "new_string"]}),
        ),
        spec(
            "glob",
            "List files matching a glob pattern (e.g. **/*.md).",
            json!({"type": "object", "properties": {
                "pattern": {"type": "string"}, "path": {"type": "string"}},
                "required": ["pattern"]}),
        ),
        spec(
            "grep",
            "Search file contents with a regular expression; file:line:text results.",
            json!({"type": "object", "properties": {
                "pattern": {"type": "string"}, "path": {"type": "string"},
                "glob": {"type": "string", "description": "only files matching this glob"}},
                "required": ["pattern"]}),
        ),
        spec(
            "web_fetch",
            "Fetch a web page (http/https) as text.",
            json!({"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}),
        ),
    ]
}
