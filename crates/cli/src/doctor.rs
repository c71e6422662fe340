//! `nanoclaw doctor`: checks what NanoClaw needs and says how to fix each problem.

use std::process::ExitCode;

use nanoclaw_host::channels::{Check, SPECS};
use nanoclaw_host::{config::Settings, runners::runtime::docker};
use nanoclaw_protocol::Home;

/// One check's verdict.
pub enum Verdict {
    Ok(String),
    Warn(String),
    Fail(String),
}

impl Verdict {
    /// A channel's own check, its line prefixed with the channel type.
    fn of_channel(channel: &str, check: Check) -> Self {
        match check {
            Check::Ok(m) => Verdict::Ok(format!("{channel}: {m}")),
            Check::Warn(m) => Verdict::Warn(format!("{channel}: {m}")),
            Check::Fail(m) => Verdict::Fail(format!("{channel}: {m}")),
        }
    }
}

fn print(name: &str, v: &Verdict) {
    match v {
        Verdict::Ok(m) => println!("ok    {name}: {m}"),
        Verdict::Warn(m) => println!("warn  {name}: {m}"),
        Verdict::Fail(m) => println!("FAIL  {name}: {m}"),
    }
}

/// Runs every check; exit 1 when one fails.
pub fn doctor(home: Home) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(&home)?;
    let mut checks: Vec<(&str, Verdict)> = crate::install::checks(&home, &settings);
    let wanted = settings.get("NANOCLAW_RUNTIME");
    let image = settings
        .get("NANOCLAW_IMAGE")
        .unwrap_or_else(|| docker::DEFAULT_IMAGE.into());
    let engine = crate::run::runtime()?.block_on(async {
        match docker::connect().await {
            Ok(d) => Ok(d.inspect_image(&image).await.is_ok()),
            Err(e) => Err(e.to_string()),
        }
    });
    let process_ok = wanted.as_deref() == Some("process");
    checks.push((
        "engine",
        match (&engine, process_ok) {
            (Ok(_), _) => Verdict::Ok("Docker engine reachable".into()),
            (Err(e), true) => Verdict::Warn(format!("{e}; NANOCLAW_RUNTIME=process runs agents without container isolation")),
            (Err(e), false) => Verdict::Fail(format!(
                "{e}. Fix: start Docker (or Podman with DOCKER_HOST), or set NANOCLAW_RUNTIME=process to run without isolation"
            )),
        },
    ));
    if engine.is_ok() {
        checks.push((
            "image",
            match engine {
                Ok(true) => Verdict::Ok(format!("{image} present")),
                _ => Verdict::Fail(format!("{image} missing. Fix: nanoclaw image build --slim")),
            },
        ));
    }
    if wanted.as_deref() != Some("docker") {
        let cfg = nanoclaw_host::runners::runtime::sandbox::Config::from_settings(&settings);
        let sb =
            crate::run::runtime()?.block_on(nanoclaw_host::runners::runtime::sandbox::probe(&cfg));
        let docker_first = wanted.is_none() && matches!(engine, Ok(true));
        checks.push((
            "sandbox",
            match sb.warning() {
                None => {
                    Verdict::Ok(format!(
                    "bubblewrap works: runners of the process runtime see only their own folders{}",
                    if docker_first { " (used when Docker is not)" } else { "" }
                ))
                }
                Some(w) if docker_first => {
                    Verdict::Ok(format!("{w} (only if Docker is unavailable)"))
                }
                Some(w) => Verdict::Warn(w),
            },
        ));
    }
    let provider = settings.default_provider();
    // The provider table says which settings configure it; the one found is named.
    let cred = match nanoclaw_protocol::providers::get(&provider) {
        Some(p) if !p.credentials.is_empty() => p.credential_found(|k| settings.secret(k)),
        _ => Some("none needed"),
    };
    checks.push((
        "credentials",
        match cred {
            Some(what) => Verdict::Ok(format!("provider {provider}: {what}")),
            None => Verdict::Fail(format!(
                "provider {provider} has no credential. Fix: add it to {} (mode 0600)",
                home.env_file().display()
            )),
        },
    ));
    // Claude Code is the image's in a container; the host's own is what the process runtime runs.
    let process_runtime = wanted.as_deref() == Some("process")
        || (wanted.as_deref() != Some("docker") && !matches!(engine, Ok(true)));
    if provider == "claude" && process_runtime {
        checks.push(("claude", claude_cli(&settings)?));
    }
    let running = nanoclaw_host::host_running(&home);
    if let (false, Some(why)) = (running, crate::breaker::describe(&home)) {
        checks.push((
            "startup",
            Verdict::Warn(format!("{why}. Fix: see logs/nanoclaw.error.log, then `nanoclaw run` in a terminal to watch it start")),
        ));
    }
    checks.push(("host", if running {
        Verdict::Ok(format!("running ({})", home.cli_sock().display()))
    } else {
        Verdict::Warn("not running. Start it with `nanoclaw run` (or `nanoclaw chat` starts one for its lifetime)".into())
    }));
    if running {
        if let Some(v) = crate::status::ask_host(&home) {
            for (name, state) in v["channels"].as_object().into_iter().flatten() {
                let state = state.as_str().unwrap_or_default();
                checks.push((
                    "channel",
                    if state == "connected" {
                        Verdict::Ok(format!("{name}: connected"))
                    } else {
                        Verdict::Warn(format!("{name}: {state} (see logs/nanoclaw.log)"))
                    },
                ));
            }
        }
    }
    for spec in SPECS {
        for check in (spec.doctor)(&settings) {
            checks.push(("channel", Verdict::of_channel(spec.channel_type, check)));
        }
    }
    let loose = nanoclaw_host::perms::check(&home);
    checks.push((
        "privacy",
        if loose.is_empty() {
            Verdict::Ok("home, data, logs, DBs and sockets are private to their owner".into())
        } else {
            Verdict::Warn(
                loose
                    .iter()
                    .map(|l| {
                        format!(
                            "{} is {:o} (other users can reach it). Fix: chmod {:o} {}",
                            l.path.display(),
                            l.mode,
                            l.want,
                            l.path.display()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
                    + " (`nanoclaw run` does this at start)",
            )
        },
    ));
    checks.push(("disk", disk(&home)));
    let failed_logs = std::fs::read_dir(home.logs_dir().join("containers"))
        .map(|d| d.count())
        .unwrap_or(0);
    if failed_logs > 0 {
        checks.push((
            "containers",
            Verdict::Warn(format!(
                "{failed_logs} failed container log(s) kept in {}",
                home.logs_dir().join("containers").display()
            )),
        ));
    }
    for (name, v) in &checks {
        print(name, v);
    }
    Ok(
        if checks.iter().any(|(_, v)| matches!(v, Verdict::Fail(_))) {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        },
    )
}

/// The Claude Code CLI the runner would start: found, answering `--version`, and accepting the
/// flags and environment the provider runs it with as this user (root included).
fn claude_cli(settings: &Settings) -> anyhow::Result<Verdict> {
    let Some(bin) = settings.claude_cli() else {
        return Ok(Verdict::Fail(format!(
            "Claude Code CLI not found ({} unset, no `claude` on PATH). Fix: `pip install claude-agent-sdk` and set {} to its claude_agent_sdk/_bundled/claude, or `npm install -g @anthropic-ai/claude-code`",
            nanoclaw_protocol::env::CLAUDE_BIN,
            nanoclaw_protocol::env::CLAUDE_BIN
        )));
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    use nanoclaw_agent::providers::claude::{probe, ProbeFailure};
    let probe = probe(&bin);
    Ok(match crate::run::runtime()?.block_on(probe) {
        Ok(version) => Verdict::Ok(format!(
            "{version} at {}{}",
            bin.display(),
            if root {
                " (as root: started with IS_SANDBOX=1, which it needs to skip permission prompts)"
            } else {
                ""
            }
        )),
        Err(ProbeFailure::Refuses(why)) if root => Verdict::Fail(format!(
            "{why}. Fix: run NanoClaw as a non-root user, or use the Docker runtime"
        )),
        Err(why) => Verdict::Fail(format!(
            "{why}. Fix: install Claude Code (`pip install claude-agent-sdk`, its claude_agent_sdk/_bundled/claude) or point {} at a working one",
            nanoclaw_protocol::env::CLAUDE_BIN
        )),
    })
}

fn disk(home: &Home) -> Verdict {
    let probe = if home.root().exists() {
        home.root().to_path_buf()
    } else {
        std::path::PathBuf::from("/")
    };
    let Ok(c) = std::ffi::CString::new(probe.to_string_lossy().as_bytes()) else {
        return Verdict::Warn("cannot check free space".into());
    };
    // SAFETY: statvfs fills the struct we own from a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Verdict::Warn("cannot check free space".into());
    }
    let free_gb = st.f_bavail as f64 * st.f_frsize as f64 / 1e9;
    if free_gb < 1.0 {
        Verdict::Fail(format!("{free_gb:.2} GB free. Fix: free some disk space"))
    } else {
        Verdict::Ok(format!("{free_gb:.0} GB free"))
    }
}
