//! The runner's entry point, shared by the standalone `nanoclaw-agent` binary (what the images
//! carry) and `nanoclaw agent` (the same runner inside the `nanoclaw` binary, which the
//! process runtime starts: one build gives both, so they can never be of different versions).

use std::process::ExitCode;

use crate::{heartbeat, Config};

/// Runs the runner. `args` are its own arguments (`["mcp"]` for the MCP server, else none);
/// `reinvoke` is what to put before them to start this runner again from `current_exe()`
/// (`["agent"]` inside `nanoclaw`), for the MCP server Claude Code starts.
pub fn main(args: &[String], reinvoke: &[String]) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rmcp=warn".into()),
        )
        .init();
    let mut cfg = Config::from_env();
    cfg.self_args = reinvoke.to_vec();
    if args.first().map(String::as_str) == Some("mcp") {
        // stdout is the MCP channel: logs stay on stderr (set up above).
        return match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(crate::mcp::serve(cfg)))
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if nanoclaw_protocol::providers::get(&cfg.provider).is_none() {
        eprintln!(
            "error: {}",
            nanoclaw_protocol::providers::unknown(&cfg.provider)
        );
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cfg: Config) -> anyhow::Result<()> {
    #[cfg(target_os = "linux")]
    if cfg.exit_with_parent {
        // SAFETY: sets this process's own parent-death signal.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        }
    }
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() };
    heartbeat::spawn(cfg.workspace.join(".heartbeat"), cfg.heartbeat);
    let exit_with_parent = cfg.exit_with_parent;
    tracing::info!(session = %cfg.session_id, provider = %cfg.provider, "runner started");
    let mut runner = crate::build(cfg)?;
    runner.connect_external().await;
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        // SAFETY: getppid has no preconditions.
        if exit_with_parent && unsafe { libc::getppid() } != parent {
            tracing::info!("host went away; exiting");
            return Ok(());
        }
        // A turn is awaited to its end: writes are transactions, so a signal never leaves half a turn.
        if let Err(e) = runner.poll_once().await {
            tracing::warn!(error = %format!("{e:#}"), "poll failed; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(runner.interval()) => {}
            _ = term.recv() => { tracing::info!("stopping"); return Ok(()); }
            _ = int.recv() => { tracing::info!("stopping"); return Ok(()); }
        }
    }
}
