//! `claude`: Claude Code in headless stream-json mode, one process per turn.
//!
//! `claude -p --input-format stream-json --output-format stream-json --verbose` reads user
//! messages as JSON lines and prints `system`/`init`, `assistant` and `result` lines. Its
//! session id is kept in session_state (`continuation:claude`, v2's key) so the next turn passes `--resume` (a `/clear` drops
//! it). The NanoClaw tools come from `nanoclaw-agent mcp`, registered with `--mcp-config`; the
//! turn they serve is published for it in session_state ([`crate::mcp::publish_turn`]).
//! Permissions are bypassed: the sandbox (container, workspace mounts) is the boundary. Claude
//! Code refuses that as root unless told it is sandboxed (`IS_SANDBOX=1`, set when the runner
//! is root: the runner is exactly that sandbox), so a host or container run as root works too.
//! Telemetry and non-essential traffic are off unless the runner's environment says otherwise:
//! the only network path Claude Code has is the credential proxy.
//! A run that ends without a result reports the CLI's own last stderr line.
//! Messages that arrive mid-turn wait for the next turn (the CLI takes one prompt per run here).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::{Input, Provider, TurnFuture};
use crate::store::{self, Shared};
use crate::tools::Toolbox;
use crate::Config;

/// Flags of every run: headless, stream-json both ways, no permission prompts.
const BASE_ARGS: &[&str] = &[
    "-p",
    "--input-format",
    "stream-json",
    "--output-format",
    "stream-json",
    "--verbose",
    "--dangerously-skip-permissions",
];

/// Variables Claude Code gets by default on top of the runner's environment; one the runner's
/// environment already sets (e.g. `DISABLE_TELEMETRY=0`) wins. Without the first two, 2.1.327
/// sends a keyless `GET /api/hello` and writes `.claude/telemetry/` files; without the last it
/// offers MCP tools only behind its `ToolSearch` tool, so the NanoClaw tools (how the agent
/// talks at all) would not be on every request as they are in the native loop.
const DEFAULT_ENV: &[(&str, &str)] = &[
    ("DISABLE_TELEMETRY", "1"),
    ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
    ("DISABLE_AUTOUPDATER", "1"),
    ("ENABLE_TOOL_SEARCH", "false"),
];

/// The environment Claude Code is started with beyond the runner's own: [`DEFAULT_ENV`] where
/// unset, and `IS_SANDBOX=1` when running as root (without it Claude Code refuses
/// `--dangerously-skip-permissions` as root: "cannot be used with root/sudo privileges").
pub fn child_env() -> Vec<(&'static str, &'static str)> {
    let mut env: Vec<_> = DEFAULT_ENV
        .iter()
        .copied()
        .filter(|(k, _)| std::env::var_os(k).is_none())
        .collect();
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        env.push(("IS_SANDBOX", "1"));
    }
    env
}

/// `bin` with [`child_env`] and pipes, started in `dir`.
fn command(bin: &Path, args: &[String], dir: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(bin);
    c.args(args)
        .envs(child_env())
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// The last line worth showing a user from Claude Code's stderr: the last non-blank one,
/// capped (a stack trace's frames are skipped for the message above them).
fn last_meaningful(lines: &[String]) -> Option<String> {
    let l = lines
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| !l.is_empty() && !l.starts_with("at ") && *l != "}" && *l != "^")?;
    let mut l = l.to_string();
    if l.len() > 300 {
        let mut cut = 300;
        while !l.is_char_boundary(cut) {
            cut -= 1;
        }
        l.truncate(cut);
        l.push('…');
    }
    Some(l)
}

/// Why [`probe`] found a Claude Code unusable, in one line.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeFailure {
    /// It does not start or answer `--version` (missing, not executable, hangs).
    Broken(String),
    /// It runs but refuses the provider's flags or environment (e.g. as root).
    Refuses(String),
}

impl std::fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Broken(m) | Self::Refuses(m) => f.write_str(m),
        }
    }
}

/// Checks that `bin` is a Claude Code this provider can run, the way it runs it (its flags, its
/// environment, as the current user), without a prompt, so no model is called. Its version
/// (`--version`'s line) or why not (for `nanoclaw doctor`).
pub async fn probe(bin: &Path) -> Result<String, ProbeFailure> {
    let limit = Duration::from_secs(30);
    let dir = std::env::temp_dir();
    let dir = &dir;
    let run = |args: Vec<String>| async move {
        let child = command(bin, &args, dir)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        match tokio::time::timeout(limit, child.wait_with_output()).await {
            Ok(Ok(o)) => Ok(o),
            Ok(Err(e)) => Err(format!("{}: {e}", bin.display())),
            Err(_) => Err(format!("{} did not answer in {limit:?}", bin.display())),
        }
    };
    let why = |o: &std::process::Output| {
        let err = String::from_utf8_lossy(&o.stderr);
        let lines: Vec<String> = err.lines().map(str::to_string).collect();
        last_meaningful(&lines).unwrap_or_else(|| format!("exited ({})", o.status))
    };
    let v = run(vec!["--version".into()])
        .await
        .map_err(ProbeFailure::Broken)?;
    if !v.status.success() {
        return Err(ProbeFailure::Broken(format!(
            "`{} --version` failed: {}",
            bin.display(),
            why(&v)
        )));
    }
    let version = String::from_utf8_lossy(&v.stdout).trim().to_string();
    let o = run(BASE_ARGS.iter().map(|s| s.to_string()).collect())
        .await
        .map_err(ProbeFailure::Broken)?;
    if !o.status.success() {
        return Err(ProbeFailure::Refuses(format!(
            "{version} refuses to run: {}",
            why(&o)
        )));
    }
    Ok(version)
}

/// session_state key of Claude Code's session id: NanoClaw v2's `continuation:<provider>`, so
/// a session moved in from v2 resumes its conversation, and v2's runner pointed back at the
/// folder resumes ours.
pub const SESSION_KEY: &str = "continuation:claude";

/// Keys that held the id before: ours until we took v2's, and v2's own before it kept one
/// continuation per provider (`sdk_session_id`, always Claude's in practice).
pub const LEGACY_KEYS: &[&str] = &["claude_session_id", "sdk_session_id"];

/// The conversation to resume. A legacy key is adopted into [`SESSION_KEY`] when that has no
/// value of its own, and then dropped either way (as v2's `migrateLegacyContinuation` does), so
/// no later turn reads a stale id.
pub fn continuation(store: &Shared) -> anyhow::Result<Option<String>> {
    let s = store::lock(store);
    let mut current = s.state_get(SESSION_KEY)?;
    for key in LEGACY_KEYS {
        if let Some(old) = s.state_get(key)? {
            if current.is_none() && !old.is_empty() {
                s.state_set(SESSION_KEY, &old)?;
                tracing::info!(
                    from = key,
                    "adopted the Claude conversation id under {SESSION_KEY}"
                );
                current = Some(old);
            }
            s.state_delete(key)?;
        }
    }
    Ok(current.filter(|c| !c.is_empty()))
}

/// Claude Code did not find the conversation it was asked to resume.
#[derive(Debug)]
struct NotFound;

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Claude Code found no conversation to resume")
    }
}

impl std::error::Error for NotFound {}

/// The Claude Code provider.
pub struct Claude {
    cfg: Config,
    store: Shared,
    tools: std::sync::Arc<Toolbox>,
}

impl Claude {
    /// A provider using `cfg.claude_bin`.
    pub fn new(cfg: &Config, tools: std::sync::Arc<Toolbox>) -> Self {
        Self {
            cfg: cfg.clone(),
            store: tools.store.clone(),
            tools,
        }
    }

    fn args(&self, resume: Option<&str>) -> Vec<String> {
        let mcp = json!({"mcpServers": {"nanoclaw": {
            "type": "stdio",
            "command": self.cfg.self_bin.to_string_lossy(),
            "args": self.cfg.self_args.iter().map(String::as_str).chain(["mcp"]).collect::<Vec<_>>(),
        }}});
        let mut a: Vec<String> = BASE_ARGS.iter().map(|s| s.to_string()).collect();
        a.extend(["--mcp-config".into(), mcp.to_string()]);
        a.extend([
            "--append-system-prompt".into(),
            crate::prompt::system(&self.cfg, &self.tools),
        ]);
        if let Some(m) = &self.cfg.model {
            a.extend(["--model".into(), m.clone()]);
        }
        if let Some(r) = resume {
            a.extend(["--resume".into(), r.to_string()]);
        }
        a
    }

    /// One turn. A conversation Claude Code cannot find (a v2 conversation whose transcript is
    /// not in the Claude state this runner sees) is dropped and the turn run again fresh, once:
    /// otherwise every later turn would fail the same way.
    async fn run(&mut self, prompt: String) -> anyhow::Result<String> {
        crate::mcp::publish_turn(&self.store, Some(&self.tools.turn()))?;
        let r = self.run_resuming(prompt).await;
        // A tool call after the turn (none is expected: the CLI exits) is not stamped with it.
        if let Err(e) = crate::mcp::publish_turn(&self.store, None) {
            tracing::warn!(error = %e, "cannot withdraw the turn published for the MCP server");
        }
        r
    }

    async fn run_resuming(&mut self, prompt: String) -> anyhow::Result<String> {
        let resume = continuation(&self.store)?;
        match self.run_once(&prompt, resume.as_deref()).await {
            Err(e) if resume.is_some() && e.downcast_ref::<NotFound>().is_some() => {
                tracing::warn!(
                    conversation = resume.as_deref().unwrap_or_default(),
                    "Claude Code cannot resume this conversation (not in its state here); starting a new one"
                );
                store::lock(&self.store).state_delete(SESSION_KEY)?;
                self.run_once(&prompt, None).await
            }
            other => other,
        }
    }

    async fn run_once(&mut self, prompt: &str, resume: Option<&str>) -> anyhow::Result<String> {
        let mut child = command(
            &self.cfg.claude_bin,
            &self.args(resume),
            &self.cfg.agent_dir,
        )
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot start Claude Code ({}): {e}",
                self.cfg.claude_bin.display()
            )
        })?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let line = json!({"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": prompt}]}});
        stdin.write_all(format!("{line}\n").as_bytes()).await?;
        // One prompt per run: EOF lets the CLI finish after its answer.
        drop(stdin);
        // stderr still reaches the runner's log, line by line; its tail is kept for the error a
        // failed run reports, and "No conversation found" (the CLI's answer to a `--resume` it
        // cannot find) is noted.
        let mut errs = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let stderr = tokio::spawn(async move {
            let mut not_found = false;
            let mut tail: std::collections::VecDeque<String> = Default::default();
            while let Ok(Some(l)) = errs.next_line().await {
                not_found |= l.contains("No conversation found");
                eprintln!("{l}");
                if tail.len() == 20 {
                    tail.pop_front();
                }
                tail.push_back(l);
            }
            (not_found, Vec::from(tail))
        });
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut result: Option<Value> = None;
        while let Some(l) = lines.next_line().await? {
            let Ok(v) = serde_json::from_str::<Value>(&l) else {
                tracing::debug!(line = %l, "non-JSON line from Claude Code");
                continue;
            };
            if let Some(sid) = v["session_id"].as_str().filter(|s| !s.is_empty()) {
                if resume != Some(sid) {
                    store::lock(&self.store).state_set(SESSION_KEY, sid)?;
                }
            }
            match v["type"].as_str() {
                Some("assistant") => {
                    for block in v["message"]["content"].as_array().into_iter().flatten() {
                        if block["type"] == "tool_use" {
                            tracing::debug!(tool = %block["name"], "Claude Code tool call");
                        }
                    }
                }
                Some("result") => result = Some(v),
                _ => {}
            }
        }
        let status = child.wait().await?;
        let (not_found, tail) = stderr.await.unwrap_or_default();
        let reason = last_meaningful(&tail);
        match result {
            Some(v) if is_error(&v) => {
                let text = v["result"]
                    .as_str()
                    .filter(|t| !t.trim().is_empty())
                    .map(str::to_string)
                    .or_else(|| {
                        v["errors"]
                            .as_array()
                            .and_then(|e| e.iter().rev().find_map(Value::as_str))
                            .map(str::to_string)
                    })
                    .or(reason)
                    .unwrap_or_else(|| "no reason given".into());
                Err(anyhow::anyhow!(
                    "Claude Code failed ({}): {}",
                    v["subtype"].as_str().unwrap_or("error"),
                    text.replace('\n', " ")
                ))
            }
            Some(v) => Ok(v["result"].as_str().unwrap_or_default().to_string()),
            None if not_found && resume.is_some() => Err(NotFound.into()),
            None => match reason {
                Some(why) => anyhow::bail!("Claude Code exited ({status}): {why}"),
                None => anyhow::bail!("Claude Code exited ({status}) without a result"),
            },
        }
    }
}

/// Whether a `result` line reports a failure (the CLI sets `is_error` even with subtype
/// `success`, e.g. for an API error).
fn is_error(v: &Value) -> bool {
    v["is_error"].as_bool().unwrap_or(false)
        || v["subtype"].as_str().is_some_and(|s| s != "success")
}

impl Provider for Claude {
    fn turn<'a>(&'a mut self, input: Input<'a>) -> TurnFuture<'a> {
        let prompt = input.prompt.text.clone();
        Box::pin(self.run(prompt))
    }
}
