//! Liveness: `.heartbeat`'s mtime, touched from its own thread so a long provider call or tool
//! never makes the runner look dead.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Sets the file's mtime to now, creating it if needed.
pub fn touch(path: &Path) -> std::io::Result<()> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    f.set_modified(std::time::SystemTime::now())
}

/// Touches `path` now and then every `every`, for the life of the process.
pub fn spawn(path: PathBuf, every: Duration) {
    if let Err(e) = touch(&path) {
        tracing::warn!(error = %e, path = %path.display(), "cannot touch heartbeat");
    }
    std::thread::Builder::new()
        .name("heartbeat".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            if let Err(e) = touch(&path) {
                tracing::warn!(error = %e, "cannot touch heartbeat");
            }
        })
        .expect("spawn heartbeat thread");
}
