//! Runtimes start a session's runner: `process` (a child process) now, Docker next.

pub mod docker;
pub mod network;
pub mod process;
pub mod sandbox;

use std::path::PathBuf;

use async_trait::async_trait;

/// Picks the runtime: `NANOCLAW_RUNTIME=docker|process` is strict; unset means Docker when an
/// engine and the image are there, else the `process` runtime with a warning.
pub async fn select(
    home: &nanoclaw_protocol::Home,
    settings: &crate::config::Settings,
) -> anyhow::Result<std::sync::Arc<dyn Runtime>> {
    let process = || -> std::sync::Arc<dyn Runtime> {
        std::sync::Arc::new(process::ProcessRuntime::new(settings).with_home(home))
    };
    match settings.get("NANOCLAW_RUNTIME").as_deref() {
        Some("process") => Ok(process()),
        Some("docker") => Ok(std::sync::Arc::new(
            docker::DockerRuntime::new(home, settings).await?,
        )),
        Some(other) => {
            anyhow::bail!("NANOCLAW_RUNTIME={other} is not a runtime: use docker or process")
        }
        None => match docker::DockerRuntime::new(home, settings).await {
            Ok(d) => Ok(std::sync::Arc::new(d)),
            Err(e) => {
                tracing::warn!(reason = %e, "Docker runtime unavailable; using the process runtime (weaker isolation). Set NANOCLAW_RUNTIME to choose explicitly");
                Ok(process())
            }
        },
    }
}

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
    /// Host path of the agent group's provider state (`.claude-shared`).
    pub claude_shared: PathBuf,
    /// Host path of the bundled skills (mounted read-only).
    pub skills_dir: PathBuf,
    /// Container limits of the agent group.
    pub limits: crate::runners::image::Limits,
    /// Approved packages of the agent group (its own image on top of the base when non-empty).
    pub packages: crate::runners::image::Packages,
    /// Extra mounts that passed the mount allowlist.
    pub extra_mounts: Vec<crate::runners::mounts::Mount>,
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
    /// Ends it at once (a stuck turn: waiting for it to finish is what does not work).
    async fn kill(&mut self);
}

/// A way to run runners.
#[async_trait]
pub trait Runtime: Send + Sync {
    /// `process`, `docker`.
    fn name(&self) -> &'static str;
    /// What the user must know about this runtime's isolation (shown by the host at start,
    /// `nanoclaw chat` and `nanoclaw doctor`); None when runners are isolated.
    async fn warning(&self) -> Option<String> {
        None
    }
    /// Starts a runner.
    async fn start(&self, spec: &RunnerSpec) -> anyhow::Result<Box<dyn RunnerHandle>>;
    /// Where runners reach the host: extra addresses the host must listen on (for the
    /// credential proxy) and the host name runners use for it.
    async fn host_endpoint(&self) -> (Vec<std::net::IpAddr>, String) {
        (vec![], "127.0.0.1".into())
    }
    /// Removes runners of this install left by a previous host.
    async fn cleanup_orphans(&self) -> anyhow::Result<()> {
        Ok(())
    }
}
