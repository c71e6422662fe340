//! One host per home: the exclusive lock, and the sockets of a host that takes none (v2).

use nanoclaw_protocol::Home;

/// Takes the exclusive host lock of a home, or says who holds it.
pub(super) fn take_lock(home: &Home) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all(home.data_dir())?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(home.host_lock())?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        anyhow::bail!(
            "another nanoclaw host is already running for {} (stop it, or use `nanoclaw chat` to talk to it)",
            home.root().display()
        );
    }
    Ok(f)
}

/// A socket of another host that serves this home although our lock is free: NanoClaw v2
/// listens on `data/ncl.sock` (its admin CLI) and `data/cli.sock` (its terminal channel), and
/// takes no lock we could see. A socket file nobody listens on (a host that died) is no one.
pub async fn foreign_host(home: &Home) -> Option<std::path::PathBuf> {
    for sock in [home.data_dir().join("ncl.sock"), home.cli_sock()] {
        if tokio::net::UnixStream::connect(&sock).await.is_ok() {
            return Some(sock);
        }
    }
    None
}

/// Is a host running for this home right now?
pub fn host_running(home: &Home) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(f) = std::fs::OpenOptions::new()
        .write(true)
        .open(home.host_lock())
    else {
        return false;
    };
    // SAFETY: flock on a descriptor we own; released when `f` drops.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 }
}
