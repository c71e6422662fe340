//! The `process` runtime: `nanoclaw-agent` as a child process, for machines without an engine.
//!
//! Isolation is weaker than a container (same user, same filesystem view). The child dies with
//! the host: Linux parent-death signal, plus the runner's own parent check elsewhere.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::process::{Child, Command};

use super::{Exit, RunnerHandle, RunnerSpec, Runtime};

/// Runs runners as child processes.
pub struct ProcessRuntime {
    agent_bin: PathBuf,
    /// Arguments before the runner's own (`agent` when the runner is `nanoclaw agent`).
    agent_args: Vec<String>,
}

impl ProcessRuntime {
    /// Uses `NANOCLAW_AGENT_BIN`; else, inside the `nanoclaw` binary, that same binary as
    /// `nanoclaw agent` (so `cargo run` builds everything it runs, and host and runner are
    /// always one version); else `nanoclaw-agent` next to the current executable (tests,
    /// benches), else `$PATH`.
    pub fn new(settings: &crate::config::Settings) -> Self {
        if let Some(bin) = settings.get("NANOCLAW_AGENT_BIN") {
            return Self {
                agent_bin: bin.into(),
                agent_args: vec![],
            };
        }
        let exe = std::env::current_exe().ok();
        if let Some(exe) = exe
            .as_ref()
            .filter(|e| e.file_stem().is_some_and(|n| n == "nanoclaw"))
        {
            return Self {
                agent_bin: exe.clone(),
                agent_args: vec!["agent".into()],
            };
        }
        let agent_bin = exe
            .and_then(|exe| {
                let dir = exe.parent()?;
                // Test binaries live in target/<profile>/deps; the runner one level up.
                [
                    dir.join("nanoclaw-agent"),
                    dir.parent()?.join("nanoclaw-agent"),
                ]
                .into_iter()
                .find(|p| p.is_file())
            })
            .unwrap_or_else(|| PathBuf::from("nanoclaw-agent"));
        Self {
            agent_bin,
            agent_args: vec![],
        }
    }
}

#[async_trait]
impl Runtime for ProcessRuntime {
    fn name(&self) -> &'static str {
        "process"
    }

    async fn start(&self, spec: &RunnerSpec) -> anyhow::Result<Box<dyn RunnerHandle>> {
        if let Some(dir) = spec.log_file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log_file)?;
        let mut cmd = Command::new(&self.agent_bin);
        cmd.args(&self.agent_args)
            .env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            )
            .env("HOME", &spec.agent_dir)
            .env("NANOCLAW_WORKSPACE", &spec.session_dir)
            .env("NANOCLAW_AGENT_DIR", &spec.agent_dir)
            .env("NANOCLAW_GLOBAL_DIR", &spec.global_dir)
            .env("NANOCLAW_EXIT_WITH_PARENT", "1")
            .env("NANOCLAW_SKILLS_DIR", &spec.skills_dir)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&spec.agent_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| {
            anyhow::anyhow!(
                "cannot start the runner {}: {e} (build it with `cargo build --release`, or set NANOCLAW_AGENT_BIN)",
                self.agent_bin.display()
            )
        })?;
        Ok(Box::new(ProcessHandle { child }))
    }
}

struct ProcessHandle {
    child: Child,
}

#[async_trait]
impl RunnerHandle for ProcessHandle {
    fn id(&self) -> String {
        self.child.id().map(|p| p.to_string()).unwrap_or_default()
    }

    async fn wait(&mut self) -> Exit {
        match self.child.wait().await {
            Ok(st) => {
                use std::os::unix::process::ExitStatusExt;
                Exit {
                    code: st.code(),
                    killed: st.signal().is_some(),
                }
            }
            Err(_) => Exit {
                code: None,
                killed: true,
            },
        }
    }

    async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: plain signal to our own child.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
