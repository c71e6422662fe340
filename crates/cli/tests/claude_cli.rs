//! The `claude` provider with the REAL Claude Code CLI (the binary PyPI's `claude-agent-sdk`
//! wheel bundles, see testkit's `claude_cli`): `nanoclaw run` with the process runtime, Claude
//! Code talking to the testkit's fake Messages API through the host's credential proxy, and
//! the NanoClaw tools through `nanoclaw-agent mcp`. Skipped without the CLI unless
//! `NANOCLAW_REQUIRE_REAL_CLAUDE=1` (`.ci/run` sets it), which makes a missing CLI a failure.
//! CI runs as root: these tests run Claude Code as whoever runs them, root included.

use nanoclaw_testkit::claude_cli;
use nanoclaw_testkit::fake_model::{FakeModel, Reply};
use nanoclaw_testkit::TestHome;
use serde_json::json;

const REAL_KEY: &str = "sk-ant-real-claude-cli-0123";

/// A model for Claude Code: asked to "report progress", it first calls the NanoClaw
/// `send_message` tool; the tool's result is answered with a final text; anything else gets a
/// plain reply.
fn model() -> FakeModel {
    let fake = FakeModel::start();
    fake.require_key(REAL_KEY);
    fake.respond_with(|req| {
        let last = req.last_user_text();
        Some(if last.contains("sent (seq") {
            Reply::text("All done.")
        } else if req.all_text().contains("report progress")
            && req
                .tool_names()
                .iter()
                .any(|t| t == "mcp__nanoclaw__send_message")
        {
            Reply::tool(
                "mcp__nanoclaw__send_message",
                json!({"text": "working on it"}),
            )
        } else {
            Reply::text("Hello from the real Claude Code.")
        })
    });
    fake
}

fn home_for(fake: &FakeModel, cli: &std::path::Path) -> TestHome {
    TestHome::new()
        .env("NANOCLAW_PROVIDER", "claude")
        .env("NANOCLAW_CLAUDE_BIN", cli.to_str().unwrap())
        .env("ANTHROPIC_BASE_URL", &fake.anthropic_url())
        .env("ANTHROPIC_API_KEY", REAL_KEY)
}

fn chat(home: &TestHome, text: &str) -> (bool, String, String) {
    let o = home.run(&["chat", "-m", text, "--timeout", "120"]);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).trim().to_string(),
        String::from_utf8_lossy(&o.stderr).trim().to_string(),
    )
}

#[test]
fn real_claude_code_answers_and_its_mcp_sends_are_shown_by_chat() {
    let Some(cli) = claude_cli::require() else {
        return;
    };
    let fake = model();
    let home = home_for(&fake, &cli);
    let host = home.start_host(&[]);

    // A plain reply reaches `chat -m`.
    let (ok, out, err) = chat(&home, "hello");
    assert!(ok, "chat failed: {out}\n{err}\n{}", host_log(&home));
    assert_eq!(out, "Hello from the real Claude Code.", "{err}");

    // A send through the NanoClaw MCP tool during the turn belongs to it: `chat -m` shows it
    // before the final answer.
    let (ok, out, err) = chat(&home, "please report progress");
    assert!(ok, "chat failed: {out}\n{err}\n{}", host_log(&home));
    assert_eq!(out, "working on it\nAll done.", "{err}");

    // What Claude Code called: only the Messages API (`?beta=true`), always with the real key
    // the proxy added, and our tools on the request itself (not deferred behind ToolSearch).
    let reqs = fake.received();
    assert!(reqs.len() >= 3, "{} requests", reqs.len());
    for r in &reqs {
        assert_eq!(
            r.headers.get("x-api-key").map(String::as_str),
            Some(REAL_KEY)
        );
    }
    assert!(reqs.iter().any(|r| r
        .tool_names()
        .iter()
        .any(|t| t == "mcp__nanoclaw__send_message")));
    // Telemetry is off: nothing queued in the agent's folder (Claude Code's HOME).
    let telemetry = home.path().join("groups/main/.claude/telemetry");
    assert!(
        std::fs::read_dir(&telemetry).map_or(true, |d| d.count() == 0),
        "telemetry queued in {}",
        telemetry.display()
    );
    host.stop();
}

/// `doctor` runs the real CLI the way the provider does (as root on CI) and reports its
/// version; a missing CLI is a failure with the fix.
#[test]
fn doctor_checks_the_real_claude_cli() {
    let Some(cli) = claude_cli::require() else {
        return;
    };
    let fake = FakeModel::start();
    let home = home_for(&fake, &cli);
    let (_, line) = doctor_claude_line(&home);
    assert!(line.starts_with("ok "), "{line}");
    assert!(line.contains("(Claude Code)"), "{line}");

    let home = TestHome::new()
        .env("NANOCLAW_PROVIDER", "claude")
        .env("NANOCLAW_CLAUDE_BIN", "/nonexistent/claude")
        .env("ANTHROPIC_API_KEY", REAL_KEY);
    let (o, line) = doctor_claude_line(&home);
    assert!(line.starts_with("FAIL"), "{line}");
    assert!(line.contains("Fix:"), "{line}");
    assert!(!o.status.success());
}

/// `nanoclaw doctor`'s run and its `claude:` line.
fn doctor_claude_line(home: &TestHome) -> (std::process::Output, String) {
    let o = home.run(&["doctor"]);
    let report = String::from_utf8_lossy(&o.stdout).to_string();
    let line = report
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("claude:"))
        .unwrap_or_else(|| panic!("no claude line: {report}"))
        .to_string();
    (o, line)
}

fn host_log(home: &TestHome) -> String {
    std::fs::read_to_string(home.path().join("logs/nanoclaw.log"))
        .map(|l| l.lines().rev().take(40).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

/// A Claude Code that refuses the provider's flags (as 2.1.327 refuses
/// `--dangerously-skip-permissions` to root without `IS_SANDBOX=1`) is a doctor failure
/// quoting its reason, in one line. Needs no real CLI.
#[test]
fn doctor_quotes_a_refusing_claude_cli() {
    let dir = tempfile::tempdir().unwrap();
    let cli = dir.path().join("claude");
    std::fs::write(
        &cli,
        "#!/bin/sh\n[ \"$1\" = --version ] && { echo '9.9.9 (Claude Code)'; exit 0; }\necho 'flag refused for security reasons' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = TestHome::new()
        .env("NANOCLAW_PROVIDER", "claude")
        .env("NANOCLAW_CLAUDE_BIN", cli.to_str().unwrap())
        .env("ANTHROPIC_API_KEY", REAL_KEY);
    let (_, line) = doctor_claude_line(&home);
    assert!(
        line.starts_with("FAIL  claude: 9.9.9 (Claude Code) refuses to run: flag refused for security reasons. Fix:"),
        "{line}"
    );
}
