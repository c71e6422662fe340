//! Shared pieces of the hostile-runner suite.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use nanoclaw_testkit::fake_model::FakeModel;
use nanoclaw_testkit::TestHome;

/// The real key the host holds; it must never reach a runner, a file it can read, or a chat.
pub const REAL_KEY: &str = "sk-ant-real-HOSTILE-0123456789";

/// Which runtime a scenario runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rt {
    Process,
    Docker,
}

impl Rt {
    /// Both runtimes where an engine answers (always in CI), else the process runtime only.
    pub fn all() -> Vec<Rt> {
        if nanoclaw_testkit::docker::engine() {
            nanoclaw_testkit::docker::slim_image();
            vec![Rt::Process, Rt::Docker]
        } else {
            vec![Rt::Process]
        }
    }
}

/// A home whose agent is driven by `fake` (the anthropic provider through the credential proxy).
pub fn home(rt: Rt, fake: &FakeModel) -> TestHome {
    let h = TestHome::new()
        .env("NANOCLAW_PROVIDER", "anthropic")
        .env("ANTHROPIC_BASE_URL", &fake.anthropic_url())
        .env("ANTHROPIC_API_KEY", REAL_KEY)
        .env("NANOCLAW_MODEL_RETRY_BASE_MS", "10");
    match rt {
        Rt::Process => h,
        Rt::Docker => h.env("NANOCLAW_RUNTIME", "docker"),
    }
}

/// A home in `rt` with the mock provider: for attacks the hostile runner plays by writing its
/// own files and rows (it controls them) rather than through a model's tools.
pub fn runtime_home(rt: Rt) -> TestHome {
    match rt {
        Rt::Process => TestHome::new(),
        Rt::Docker => TestHome::new().env("NANOCLAW_RUNTIME", "docker"),
    }
}

/// `chat -m` with a bound; returns (success, stdout).
pub fn chat(home: &TestHome, text: &str) -> (bool, String) {
    let o = home.run(&["chat", "-m", text, "--timeout", "60"]);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).trim().to_string(),
    )
}

/// Peak resident set of a live process (VmHWM), in bytes.
pub fn peak_rss(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// The host's log so far.
pub fn host_log(home: &TestHome) -> String {
    std::fs::read_to_string(home.path().join("logs/nanoclaw.log")).unwrap_or_default()
}

/// Waits until the host's log contains `needle` (an attack's audit line).
pub fn audited(home: &TestHome, needle: &str, limit: Duration) -> bool {
    nanoclaw_testkit::eventually(limit, || host_log(home).contains(needle).then_some(())).is_some()
}

/// A file outside every session that an attack tries to reach; returns its path.
pub fn bait(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}
