//! `claude`: Claude Code in headless stream-json mode, one process per turn.
//!
//! `claude -p --input-format stream-json --output-format stream-json --verbose` reads user
//! messages as JSON lines and prints `system`/`init`, `assistant` and `result` lines. Its
//! session id is kept in session_state (`continuation:claude`, v2's key) so the next turn passes `--resume` (a `/clear` drops
//! it). The NanoClaw tools come from `nanoclaw-agent mcp`, registered with `--mcp-config`.
//! Permissions are bypassed: the sandbox (container, workspace mounts) is the boundary.
//! Messages that arrive mid-turn wait for the next turn (the CLI takes one prompt per run here).

use std::process::Stdio;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::{Input, Provider, TurnFuture};
use crate::store::{self, Shared};
use crate::tools::Toolbox;
use crate::Config;

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
        let mut a: Vec<String> = [
            "-p",
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
            "--verbose",
            "--dangerously-skip-permissions",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
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
        let mut child = tokio::process::Command::new(&self.cfg.claude_bin)
            .args(self.args(resume))
            .current_dir(&self.cfg.agent_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
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
        drop(stdin); // one prompt per run: EOF lets the CLI finish after its answer
                     // stderr still reaches the runner's log, line by line; "No conversation found" (the
                     // CLI's answer to a `--resume` it cannot find) is noted.
        let mut errs = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let stderr = tokio::spawn(async move {
            let mut not_found = false;
            while let Ok(Some(l)) = errs.next_line().await {
                not_found |= l.contains("No conversation found");
                eprintln!("{l}");
            }
            not_found
        });
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut result: Option<anyhow::Result<String>> = None;
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
                Some("result") => {
                    let text = v["result"].as_str().unwrap_or_default().to_string();
                    result = Some(
                        if v["is_error"].as_bool().unwrap_or(false)
                            || v["subtype"].as_str().is_some_and(|s| s != "success")
                        {
                            Err(anyhow::anyhow!(
                                "Claude Code failed ({}): {text}",
                                v["subtype"].as_str().unwrap_or("error")
                            ))
                        } else {
                            Ok(text)
                        },
                    );
                }
                _ => {}
            }
        }
        let status = child.wait().await?;
        let not_found = stderr.await.unwrap_or(false);
        match result {
            Some(r) => r,
            None if not_found && resume.is_some() => Err(NotFound.into()),
            None => anyhow::bail!("Claude Code exited ({status}) without a result"),
        }
    }
}

impl Provider for Claude {
    fn turn<'a>(&'a mut self, input: Input<'a>) -> TurnFuture<'a> {
        let prompt = input.prompt.text.clone();
        Box::pin(self.run(prompt))
    }
}
