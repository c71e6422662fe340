//! The `process` runtime's sandbox: bubblewrap (`bwrap`) gives the runner a filesystem view of
//! its own folders and the system, nothing else of the home.
//!
//! Inside: the session folder (rw) with `inbound.db` read-only over it, the agent folder (rw),
//! `groups/global` and the skills (ro), extra mounts that passed the allowlist, the runner's
//! binary, `/usr`, `/bin`, `/lib*`, `/etc` (ro, with everything a non-root user could not read
//! masked: shadow files, TLS and SSH keys…), a private `/tmp`, `/proc` of its own pid
//! namespace and a minimal `/dev`. Not inside: the home's `.env`, `nanoclaw.toml`, `data/v2.db`,
//! both sockets, logs, other sessions and agents. The network is shared: the runner reaches the
//! credential proxy on loopback. Paths inside are the host paths, so the runner's environment
//! (`NANOCLAW_WORKSPACE`…) is the same as without a sandbox.
//!
//! `NANOCLAW_SANDBOX=auto` (default) uses bwrap when a probe run works, else runs the runner
//! unsandboxed and says so (log, `nanoclaw chat`, `nanoclaw doctor`); `on` refuses to start a
//! runner without it; `off` opts out. `NANOCLAW_BWRAP` names the binary (default: `bwrap` on
//! `PATH`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::RunnerSpec;

/// What the settings ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Sandbox when possible.
    Auto,
    /// Sandbox or refuse to start runners.
    On,
    /// Never sandbox.
    Off,
}

impl Want {
    /// From `NANOCLAW_SANDBOX`.
    pub fn from_settings(settings: &crate::config::Settings) -> anyhow::Result<Self> {
        match settings.get("NANOCLAW_SANDBOX").as_deref() {
            None | Some("") | Some("auto") => Ok(Self::Auto),
            Some("on") | Some("1") | Some("true") => Ok(Self::On),
            Some("off") | Some("0") | Some("false") => Ok(Self::Off),
            Some(other) => anyhow::bail!("NANOCLAW_SANDBOX={other}: use auto, on or off"),
        }
    }
}

/// The verdict of [`probe`].
#[derive(Debug, Clone)]
pub enum Sandbox {
    /// bwrap works here.
    Bwrap {
        /// The binary.
        bin: PathBuf,
        /// Entries under `/etc` a non-root user could not read, hidden inside (dir = true).
        masks: Vec<(PathBuf, bool)>,
    },
    /// No sandbox: why.
    None {
        /// One line for the user.
        reason: String,
        /// The user asked for it (`NANOCLAW_SANDBOX=off`): said once, not warned about.
        opted_out: bool,
        /// `NANOCLAW_SANDBOX=on`: runners must not start.
        required: bool,
    },
}

impl Sandbox {
    /// One line for logs, `chat` and `doctor`: None when sandboxed.
    pub fn warning(&self) -> Option<String> {
        match self {
            Sandbox::Bwrap { .. } => None,
            Sandbox::None {
                reason, opted_out, ..
            } => Some(if *opted_out {
                format!("runtime: process, sandbox off ({reason}): the agent can read and change everything your user can")
            } else {
                format!("runtime: process WITHOUT a sandbox ({reason}): the agent can read and change everything your user can, including the home's secrets. Fix: install bubblewrap (apt-get install bubblewrap) or use Docker")
            }),
        }
    }
}

/// The sandbox settings of a home (`NANOCLAW_SANDBOX`, `NANOCLAW_BWRAP`).
#[derive(Debug, Clone)]
pub struct Config {
    want: Result<Want, String>,
    bwrap: Option<PathBuf>,
}

impl Config {
    /// Reads the two settings.
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        Self {
            want: Want::from_settings(settings).map_err(|e| e.to_string()),
            bwrap: settings.get("NANOCLAW_BWRAP").map(PathBuf::from),
        }
    }
}

/// Finds bwrap and runs it once the way runners are run; never fails, says why not instead.
pub async fn probe(cfg: &Config) -> Sandbox {
    let want = match &cfg.want {
        Ok(w) => *w,
        Err(e) => {
            return Sandbox::None {
                reason: e.clone(),
                opted_out: false,
                required: true,
            }
        }
    };
    let none = |reason: String| Sandbox::None {
        reason,
        opted_out: false,
        required: want == Want::On,
    };
    if want == Want::Off {
        return Sandbox::None {
            reason: "NANOCLAW_SANDBOX=off".into(),
            opted_out: true,
            required: false,
        };
    }
    let bin = match &cfg.bwrap {
        Some(p) => p.clone(),
        None => match which("bwrap") {
            Some(p) => p,
            None => return none("bubblewrap (bwrap) is not installed".into()),
        },
    };
    let truth = ["/usr/bin/true", "/bin/true"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("/bin/true"));
    let mut cmd = tokio::process::Command::new(&bin);
    cmd.args(base_args())
        .arg("--")
        .arg(&truth)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let out = match tokio::time::timeout(Duration::from_secs(10), cmd.output()).await {
        Err(_) => return none(format!("{} did not finish a test run", bin.display())),
        Ok(Err(e)) => return none(format!("cannot run {}: {e}", bin.display())),
        Ok(Ok(o)) => o,
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().next().unwrap_or("failed").trim().to_string();
        return none(format!(
            "bubblewrap cannot create a sandbox here: {line} (user namespaces may be disabled)"
        ));
    }
    let masks = tokio::task::spawn_blocking(|| unreadable_under(Path::new("/etc")))
        .await
        .unwrap_or_default();
    Sandbox::Bwrap { bin, masks }
}

/// The namespace and system part of every bwrap command line.
fn base_args() -> Vec<OsString> {
    let mut a: Vec<OsString> = [
        "--die-with-parent",
        // TIOCSTI and job control cannot reach the host's terminal.
        "--new-session",
        "--unshare-all",
        // The credential proxy and the model APIs are reached over the network.
        "--share-net",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    // Merged-/usr systems have these as links into /usr; older ones as directories.
    for d in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
        let p = Path::new(d);
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.file_type().is_symlink() => {
                if let Ok(t) = std::fs::read_link(p) {
                    a.extend(["--symlink".into(), t.into_os_string(), d.into()]);
                }
            }
            Ok(m) if m.is_dir() => a.extend(["--ro-bind".into(), d.into(), d.into()]),
            _ => {}
        }
    }
    a.extend(
        ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
            .iter()
            .map(OsString::from),
    );
    a
}

/// The bwrap arguments that run `agent_bin` for `spec` (everything before the program).
pub fn args(
    sandbox_masks: &[(PathBuf, bool)],
    agent_bin: &Path,
    spec: &RunnerSpec,
) -> Vec<OsString> {
    let mut a = base_args();
    let ro = |a: &mut Vec<OsString>, p: &Path| {
        a.extend(["--ro-bind".into(), p.into(), p.into()]);
    };
    // /etc for name resolution, TLS roots, users; what only root may read stays hidden, so a
    // runner of a root host sees no more of it than any local user does.
    a.extend(["--ro-bind".into(), "/etc".into(), "/etc".into()]);
    for (p, dir) in sandbox_masks {
        if *dir {
            a.extend(["--tmpfs".into(), p.into()]);
        } else {
            a.extend(["--ro-bind".into(), "/dev/null".into(), p.into()]);
        }
    }
    // systemd-resolved and friends link resolv.conf out of /etc.
    if let Ok(real) = std::fs::canonicalize("/etc/resolv.conf") {
        if !real.starts_with("/etc") && !real.starts_with("/usr") {
            ro(&mut a, &real);
        }
    }
    // Tools installed outside /usr (~/.local/bin, ~/.cargo/bin…): only directories named
    // bin, never the NanoClaw home.
    let home_root = spec
        .session_dir
        .ancestors()
        .nth(4)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    if let Some(path) = spec
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| OsString::from(v))
        .or_else(|| std::env::var_os("PATH"))
    {
        for d in std::env::split_paths(&path) {
            let named_bin = d.file_name().is_some_and(|n| n == "bin" || n == "sbin");
            let system = ["/usr", "/bin", "/sbin", "/lib", "/etc"]
                .iter()
                .any(|s| d.starts_with(s));
            if d.is_absolute() && named_bin && !system && d.is_dir() && !d.starts_with(&home_root) {
                ro(&mut a, &d);
            }
        }
    }
    ro(&mut a, agent_bin);
    if let Some((_, claude)) = spec
        .env
        .iter()
        .find(|(k, _)| k == nanoclaw_protocol::env::CLAUDE_BIN)
    {
        let p = Path::new(claude);
        if p.is_absolute() && p.exists() && !p.starts_with(&home_root) {
            ro(&mut a, p);
        }
    }
    a.extend([
        "--bind".into(),
        spec.session_dir.clone().into(),
        spec.session_dir.clone().into(),
    ]);
    // The host is inbound.db's only writer (DESIGN §3): read-only over the writable folder.
    ro(&mut a, &spec.session_dir.join("inbound.db"));
    a.extend([
        "--bind".into(),
        spec.agent_dir.clone().into(),
        spec.agent_dir.clone().into(),
    ]);
    ro(&mut a, &spec.global_dir);
    if spec.skills_dir.is_dir() {
        ro(&mut a, &spec.skills_dir);
    }
    for m in &spec.extra_mounts {
        let flag = if m.readonly { "--ro-bind" } else { "--bind" };
        a.extend([flag.into(), m.host.clone().into(), m.host.clone().into()]);
    }
    a.extend(["--chdir".into(), spec.agent_dir.clone().into()]);
    a
}

/// Entries below `root` that a user other than their owner (and not in their group) could
/// not read: files and directories without the "other" read bit. Stops descending at them.
fn unreadable_under(root: &Path) -> Vec<(PathBuf, bool)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    let mut seen = 0usize;
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            seen += 1;
            if seen > 50_000 {
                return out;
            }
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.file_type().is_symlink() {
                continue;
            }
            let private = m.permissions().mode() & 0o004 == 0;
            if m.is_dir() {
                if private {
                    out.push((e.path(), true));
                } else {
                    stack.push(e.path());
                }
            } else if private && m.is_file() {
                out.push((e.path(), false));
            }
        }
    }
    out
}

/// A program on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_entries_are_found_and_not_descended() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::write(r.join("open"), "x").unwrap();
        std::fs::write(r.join("shadow"), "x").unwrap();
        std::fs::set_permissions(r.join("shadow"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::create_dir_all(r.join("ssl/private")).unwrap();
        std::fs::write(r.join("ssl/private/key"), "x").unwrap();
        std::fs::set_permissions(
            r.join("ssl/private"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let mut got = unreadable_under(r);
        got.sort();
        assert_eq!(
            got,
            vec![(r.join("shadow"), false), (r.join("ssl/private"), true)]
        );
    }
}
