//! `bash {command, timeout_ms?}`: a shell command in the agent folder, bounded in time and output.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use super::{arg_str, arg_u64, cap_output, Set, Tool, ToolFuture, Toolbox};
use crate::store;

/// Default and largest timeouts.
pub const DEFAULT_TIMEOUT_MS: u64 = 120_000;
const MAX_TIMEOUT_MS: u64 = 600_000;

/// The `bash` tool.
pub struct Bash;

impl Tool for Bash {
    fn name(&self) -> &'static str {
        "bash"
    }
    fn description(&self) -> &'static str {
        "Run a shell command in the agent folder. Output (stdout+stderr) is capped."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {
            "command": {"type": "string"},
            "timeout_ms": {"type": "integer", "description": "default 120000, max 600000"}},
            "required": ["command"]})
    }
    fn set(&self) -> Set {
        Set::All
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(async move {
            // container_state tells the host a command is running and for how long it may,
            // so a long command is not taken for a hung runner.
            let timeout = timeout_of(input);
            let _ = store::lock(&tb.store).set_tool(Some(("bash", timeout)));
            let r = run(&tb.roots.agent, input).await;
            let _ = store::lock(&tb.store).set_tool(None);
            r
        })
    }
}

/// The timeout a call declares (what container_state reports to the host).
pub fn timeout_of(input: &Value) -> u64 {
    arg_u64(input, "timeout_ms")
        .unwrap_or(DEFAULT_TIMEOUT_MS)
        .clamp(1, MAX_TIMEOUT_MS)
}

/// Runs the command; a non-zero exit is a tool error carrying the output.
pub async fn run(cwd: &std::path::Path, input: &Value) -> Result<String, String> {
    let command = arg_str(input, "command")?;
    let timeout = Duration::from_millis(timeout_of(input));
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("exec 2>&1; {command}"))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start sh: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut buf = Vec::new();
    let pid = child.id();
    let res = tokio::time::timeout(timeout, async {
        // Reading to EOF first avoids a full pipe blocking the child forever.
        let _ = stdout.read_to_end(&mut buf).await;
        child.wait().await
    })
    .await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    match res {
        Ok(Ok(status)) if status.success() => Ok(cap_output(if text.is_empty() {
            "(no output)".into()
        } else {
            text
        })),
        Ok(Ok(status)) => Err(cap_output(format!(
            "{text}\n(exit status {})",
            status
                .code()
                .map_or("killed by a signal".into(), |c| c.to_string())
        ))),
        Ok(Err(e)) => Err(format!("wait failed: {e}")),
        Err(_) => {
            if let Some(pid) = pid {
                // SAFETY: signals the process group we created for this command.
                unsafe {
                    libc::kill(-(pid as i32), libc::SIGKILL);
                }
            }
            Err(cap_output(format!(
                "{text}\n(timed out after {} ms and was killed)",
                timeout.as_millis()
            )))
        }
    }
}
