//! Runtimes start a session's runner: `process` (a child process) now, Docker next.

pub mod process;

use std::path::PathBuf;

use async_trait::async_trait;

/// Everything a runtime needs to start one session's runner.
#[derive(Debug, Clone)]
pub struct RunnerSpec {
    /// Session id.
    pub session_id: String,
    /// Agent group id.
    pub agent_group_id: String,
    /// Host path of the session folder (→ `/workspace`).
    pub session_dir: PathBuf,
    /// Host path of the agent folder (→ `/workspace/agent`).
    pub agent_dir: PathBuf,
    /// Host path of `groups/global` (→ `/workspace/global`, read-only).
    pub global_dir: PathBuf,
    /// Non-secret environment for the runner.
    pub env: Vec<(String, String)>,
    /// Where the runner's stderr goes.
    pub log_file: PathBuf,
}

/// How a runner ended.
#[derive(Debug, Clone)]
pub struct Exit {
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Killed by a signal / the engine.
    pub killed: bool,
}

/// A running runner.
#[async_trait]
pub trait RunnerHandle: Send {
    /// Runtime-specific id (pid, container id).
    fn id(&self) -> String;
    /// Resolves when the runner ends.
    async fn wait(&mut self) -> Exit;
    /// Asks the runner to stop, then forces it after a grace period.
    async fn stop(&mut self);
}

/// A way to run runners.
#[async_trait]
pub trait Runtime: Send + Sync {
    /// `process`, `docker`.
    fn name(&self) -> &'static str;
    /// Starts a runner.
    async fn start(&self, spec: &RunnerSpec) -> anyhow::Result<Box<dyn RunnerHandle>>;
    /// Removes runners of this install left by a previous host.
    async fn cleanup_orphans(&self) -> anyhow::Result<()> {
        Ok(())
    }
}
