//! The `process` runtime: `nanoclaw-agent` as a child process, for machines without an engine.
//!
//! Isolation is weaker than a container (same user), but where bubblewrap works the runner sees
//! only its own folders and the system ([`super::sandbox`]); elsewhere it runs unsandboxed and
//! the host says so. The child dies with the host: Linux parent-death signal, plus the
//! runner's own parent check elsewhere.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use nanoclaw_protocol::env as var;
use tokio::process::{Child, Command};

use super::sandbox::{self, Sandbox};
use super::{Exit, RunnerHandle, RunnerSpec, Runtime};

/// Runs runners as child processes.
pub struct ProcessRuntime {
    agent_bin: PathBuf,
    /// Arguments before the runner's own (`agent` when the runner is `nanoclaw agent`).
    agent_args: Vec<String>,
    sandbox_cfg: sandbox::Config,
    sandbox: tokio::sync::OnceCell<Sandbox>,
    /// `data/v2-sessions` of the home, to find runners a killed host left behind.
    sessions_dir: Option<PathBuf>,
}

impl ProcessRuntime {
    /// Uses `NANOCLAW_AGENT_BIN`; else, inside the `nanoclaw` binary, that same binary as
    /// `nanoclaw agent` (so `cargo run` builds everything it runs, and host and runner are
    /// always one version); else `nanoclaw-agent` next to the current executable (tests,
    /// benches), else `$PATH`.
    pub fn new(settings: &crate::config::Settings) -> Self {
        let (agent_bin, agent_args) = runner_command(settings);
        Self {
            agent_bin,
            agent_args,
            sandbox_cfg: sandbox::Config::from_settings(settings),
            sandbox: tokio::sync::OnceCell::new(),
            sessions_dir: None,
        }
    }

    /// The home whose orphaned runners [`Runtime::cleanup_orphans`] removes.
    pub fn with_home(mut self, home: &nanoclaw_protocol::Home) -> Self {
        self.sessions_dir = Some(home.sessions_dir());
        self
    }

    /// The sandbox verdict, probed once.
    pub async fn sandbox(&self) -> &Sandbox {
        self.sandbox
            .get_or_init(|| async {
                let s = sandbox::probe(&self.sandbox_cfg).await;
                match s.warning() {
                    Some(w) => tracing::warn!("{w}"),
                    None => tracing::info!("runtime: process, sandboxed with bubblewrap"),
                }
                s
            })
            .await
    }
}

/// The runner's program and the arguments before its own.
fn runner_command(settings: &crate::config::Settings) -> (PathBuf, Vec<String>) {
    if let Some(bin) = settings.get("NANOCLAW_AGENT_BIN") {
        return (bin.into(), vec![]);
    }
    let exe = std::env::current_exe().ok();
    if let Some(exe) = exe
        .as_ref()
        .filter(|e| e.file_stem().is_some_and(|n| n == "nanoclaw"))
    {
        return (exe.clone(), vec!["agent".into()]);
    }
    let bin = exe
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
    (bin, vec![])
}

#[async_trait]
impl Runtime for ProcessRuntime {
    fn name(&self) -> &'static str {
        "process"
    }

    async fn warning(&self) -> Option<String> {
        self.sandbox().await.warning()
    }

    /// A sandboxed runner can outlive a SIGKILLed host (bwrap's init may miss its
    /// parent-death signal when its parent dies during setup): kill every runner, and bwrap
    /// around one, whose workspace is in this home, before this host starts its own.
    async fn cleanup_orphans(&self) -> anyhow::Result<()> {
        let Some(dir) = self.sessions_dir.clone() else {
            return Ok(());
        };
        let killed = tokio::task::spawn_blocking(move || kill_orphans(&dir)).await?;
        if killed > 0 {
            tracing::warn!(killed, "removed runners left by a previous host");
        }
        Ok(())
    }

    async fn start(&self, spec: &RunnerSpec) -> anyhow::Result<Box<dyn RunnerHandle>> {
        if let Some(dir) = spec.log_file.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let log = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&spec.log_file)
            .await?
            .into_std()
            .await;
        let sandboxed = match self.sandbox().await {
            Sandbox::Bwrap { bin, masks } => {
                // bwrap needs the runner's real path: it is bound read-only at that path.
                let agent = if self.agent_bin.is_absolute() {
                    self.agent_bin.clone()
                } else {
                    sandbox::which(&self.agent_bin.to_string_lossy())
                        .unwrap_or_else(|| self.agent_bin.clone())
                };
                // bwrap itself would start and then fail to exec a missing runner: that would
                // look like a crash (retried) instead of a start failure the person is told.
                if !agent.is_file() {
                    anyhow::bail!(
                        "cannot start the runner {}: not found (build it with `cargo build --release`, or set NANOCLAW_AGENT_BIN)",
                        agent.display()
                    );
                }
                let mut c = Command::new(bin);
                c.args(sandbox::args(masks, &agent, spec))
                    .arg("--")
                    .arg(&agent)
                    .args(&self.agent_args);
                Some(c)
            }
            Sandbox::None {
                required: true,
                reason,
                ..
            } => anyhow::bail!("NANOCLAW_SANDBOX=on but no sandbox is possible: {reason}"),
            Sandbox::None { .. } => None,
        };
        let is_sandboxed = sandboxed.is_some();
        let mut cmd = sandboxed.unwrap_or_else(|| {
            let mut c = Command::new(&self.agent_bin);
            c.args(&self.agent_args);
            c
        });
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            )
            .env("HOME", &spec.agent_dir)
            .env(var::WORKSPACE, &spec.session_dir)
            .env(var::AGENT_DIR, &spec.agent_dir)
            .env(var::GLOBAL_DIR, &spec.global_dir)
            .env(var::EXIT_WITH_PARENT, "1")
            .env(var::SKILLS_DIR, &spec.skills_dir)
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
        Ok(Box::new(ProcessHandle {
            child,
            sandboxed: is_sandboxed,
        }))
    }
}

struct ProcessHandle {
    child: Child,
    /// The child is bwrap: the runner is its grandchild (bwrap's init in between).
    sandboxed: bool,
}

impl ProcessHandle {
    /// The pid that gets SIGTERM: the runner itself. bwrap does not pass signals on, and its
    /// init (pid 1 of the sandbox) ignores those it has no handler for.
    fn runner_pid(&self) -> Option<u32> {
        let pid = self.child.id()?;
        if !self.sandboxed {
            return Some(pid);
        }
        let Some(init) = first_child(pid) else {
            return Some(pid);
        };
        first_child(init).or(Some(pid))
    }
}

/// The first child of a process (`/proc/<pid>/task/<pid>/children`).
fn first_child(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
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
                // bwrap reports a runner killed by signal N as exit code 128 + N.
                let by_signal = self.sandboxed && st.code().is_some_and(|c| c > 128 && c < 160);
                Exit {
                    code: st.code(),
                    killed: st.signal().is_some() || by_signal,
                }
            }
            Err(_) => Exit {
                code: None,
                killed: true,
            },
        }
    }

    async fn stop(&mut self) {
        if let Some(pid) = self.runner_pid() {
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

    async fn kill(&mut self) {
        if let Some(pid) = self.runner_pid() {
            // SAFETY: plain signal to our own child (under bwrap, the runner inside it).
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
        let _ = self.child.kill().await;
    }
}

/// SIGKILLs `nanoclaw-agent` and `bwrap` processes whose environment has a workspace under
/// `sessions_dir`; returns how many.
fn kill_orphans(sessions_dir: &std::path::Path) -> usize {
    let mut needle = format!("NANOCLAW_WORKSPACE={}", sessions_dir.display()).into_bytes();
    needle.push(b'/');
    let me = std::process::id();
    let mut killed = 0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let mut argv = cmd.split(|&b| b == 0);
        let argv0 = argv.next().unwrap_or_default();
        let name = argv0.rsplit(|&b| b == b'/').next().unwrap_or_default();
        // `nanoclaw agent` is the runner inside the `nanoclaw` binary; never the host itself.
        let embedded = name == b"nanoclaw" && argv.next() == Some(b"agent".as_slice());
        if name != b"nanoclaw-agent" && name != b"bwrap" && !embedded {
            continue;
        }
        let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
        if env.split(|&b| b == 0).any(|v| v.starts_with(&needle)) {
            // SAFETY: a plain signal to a runner of this home that no live host owns (the
            // host lock is held by us).
            if unsafe { libc::kill(pid as i32, libc::SIGKILL) } == 0 {
                killed += 1;
            }
        }
    }
    killed
}
