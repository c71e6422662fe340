//! `nanoclaw run`: the host in the foreground until SIGTERM/SIGINT.

use std::process::ExitCode;

use nanoclaw_host::Host;
use nanoclaw_protocol::Home;

/// Builds the async runtime the host runs on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Resolves on SIGTERM or SIGINT.
pub async fn signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Runs the host.
pub fn run(home: Home) -> anyhow::Result<ExitCode> {
    // Before the first file is created (the home is tightened by Host::open).
    nanoclaw_host::perms::umask();
    let _logs = nanoclaw_host::logging::init(&home, true)?;
    runtime()?.block_on(async {
        // Another host of ours serving this home is not a crash of this one: say so at once.
        if nanoclaw_host::host_running(&home) {
            anyhow::bail!(
                "another nanoclaw host is already running for {} (stop it, or use `nanoclaw chat` to talk to it)",
                home.root().display()
            );
        }
        let unit = std::time::Duration::from_millis(
            std::env::var("NANOCLAW_STARTUP_BACKOFF_UNIT_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000),
        );
        let rec = crate::breaker::before_start(&home, unit).await?;
        let started = async {
            let host = Host::open(home.clone()).await?;
            host.start().await?;
            anyhow::Ok(host)
        }
        .await;
        let host = match started {
            Ok(h) => h,
            Err(e) => {
                crate::breaker::failed(&home, rec, &e);
                return Err(e);
            }
        };
        eprintln!(
            "nanoclaw is running (home {}); Ctrl-C to stop",
            host.home.root().display()
        );
        signal().await;
        tracing::info!("shutdown requested");
        host.shutdown().await;
        crate::breaker::clean(&home);
        Ok(ExitCode::SUCCESS)
    })
}
