//! Logging: one line per event to stderr (optional), `logs/nanoclaw.log` and, for warnings and
//! errors, `logs/nanoclaw.error.log`. File writes happen on a background thread.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{filter::LevelFilter, fmt, prelude::*, EnvFilter};

/// Keeps the log writers alive; drop it last.
pub struct LogGuard(#[allow(dead_code)] Vec<WorkerGuard>);

/// Installs the global subscriber for a host run.
pub fn init(home: &nanoclaw_protocol::Home, to_stderr: bool) -> anyhow::Result<LogGuard> {
    let dir = home.logs_dir();
    crate::perms::create_private_dir(&dir)?;
    // Logs quote conversations: the host user's only, whatever the umask.
    for name in ["nanoclaw.log", "nanoclaw.error.log"] {
        use std::os::unix::fs::OpenOptionsExt;
        let p = dir.join(name);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(crate::perms::FILE_MODE)
            .open(&p)?;
        crate::perms::private_file(&p)?;
    }
    // A bounded queue of 1,024 lines per file: the default (128,000) preallocates megabytes,
    // most of a quiet host's memory. When the queue is full, lines wait rather than vanish.
    let writer = |name: &str| {
        tracing_appender::non_blocking::NonBlockingBuilder::default()
            .buffered_lines_limit(1024)
            .lossy(false)
            .finish(tracing_appender::rolling::never(&dir, name))
    };
    let (all, g1) = writer("nanoclaw.log");
    let (err, g2) = writer("nanoclaw.error.log");
    let filter = || EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = to_stderr.then(|| {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_filter(filter())
    });
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(
            fmt::layer()
                .with_ansi(false)
                .with_writer(all)
                .with_filter(filter()),
        )
        .with(
            fmt::layer()
                .with_ansi(false)
                .with_writer(err)
                .with_filter(LevelFilter::WARN),
        )
        .try_init();
    Ok(LogGuard(vec![g1, g2]))
}
