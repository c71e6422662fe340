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
        let host = Host::open(home).await?;
        host.start().await?;
        eprintln!(
            "nanoclaw is running (home {}); Ctrl-C to stop",
            host.home.root().display()
        );
        signal().await;
        tracing::info!("shutdown requested");
        host.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
