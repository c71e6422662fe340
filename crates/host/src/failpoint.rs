//! Failpoints: crash and fault injection at named steps, for the chaos tests.

/// Kills the process with SIGKILL when `NANOCLAW_FAILPOINT` names this point: lets crash tests
/// stop the host at an exact step (e.g. between a send and its `delivered` write).
pub fn failpoint(name: &str) {
    if std::env::var("NANOCLAW_FAILPOINT").is_ok_and(|v| v == name) {
        tracing::error!(failpoint = name, "failpoint hit: killing the host");
        // SAFETY: sending a signal to ourselves.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Whether `NANOCLAW_FAILPOINT` names this point (for injected, non-fatal failures in tests).
pub fn failpoint_active(name: &str) -> bool {
    std::env::var("NANOCLAW_FAILPOINT").is_ok_and(|v| v == name)
}
