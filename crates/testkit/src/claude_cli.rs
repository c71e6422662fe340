//! The real Claude Code CLI for tests: the binary PyPI's `claude-agent-sdk` wheel bundles
//! (`claude_agent_sdk/_bundled/claude`), which `.ci/run` installs.

use std::path::PathBuf;
use std::process::Command;

/// The wheel `.ci/run` installs; its bundled CLI is what the real-CLI tests were measured on.
pub const PINNED: &str = "claude-agent-sdk==0.2.184";

/// Set (to `1`) where the real CLI must be present: its tests fail instead of skipping.
pub const REQUIRE_ENV: &str = "NANOCLAW_REQUIRE_REAL_CLAUDE";

/// The bundled CLI of the installed `claude-agent-sdk`: `$NANOCLAW_REAL_CLAUDE` if set, else
/// asked of `python3` (the interpreter that has the package is the one pip installed into).
pub fn claude_cli() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NANOCLAW_REAL_CLAUDE") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import claude_agent_sdk, os; print(os.path.join(os.path.dirname(claude_agent_sdk.__file__), '_bundled', 'claude'))",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    p.is_file().then_some(p)
}

/// The real CLI for a test, or `None` to skip it (with a note); panics when [`REQUIRE_ENV`] is
/// set and the CLI is missing, so CI cannot pass by skipping.
pub fn require() -> Option<PathBuf> {
    match claude_cli() {
        Some(p) => Some(p),
        None if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") => {
            panic!("{REQUIRE_ENV}=1 but the real Claude Code CLI is missing: pip install {PINNED}")
        }
        None => {
            eprintln!("skipped: no real Claude Code CLI (pip install {PINNED}; {REQUIRE_ENV}=1 makes this a failure)");
            None
        }
    }
}
