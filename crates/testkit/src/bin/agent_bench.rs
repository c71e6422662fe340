//! `agent-bench`: the runner on its own, against the fake Messages API (process runtime).
//!
//! ```text
//! cargo build --release && target/release/agent-bench [ROUNDS]
//! ```
//!
//! - cold start: spawning `nanoclaw-agent` on a session with one pending message → the model
//!   request arrives at the fake;
//! - idle RSS of the runner after a turn;
//! - tool-loop overhead per step: gap between consecutive model requests of a `read` tool loop
//!   (the fake answers at once, so the gap is the runner's own work: stream parse, tool,
//!   request build).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nanoclaw_testkit::fake_model::{FakeModel, Reply};
use nanoclaw_testkit::{bin, percentile};
use serde_json::json;

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn session(dir: &std::path::Path, text: &str) {
    std::fs::create_dir_all(dir.join("agent")).unwrap();
    let c = nanoclaw_protocol::schema::open_inbound_rw(&dir.join("inbound.db")).unwrap();
    c.execute(
        "INSERT INTO messages_in(id, seq, kind, timestamp, content, platform_id, channel_type) VALUES ('m1', 2, 'chat', ?1, ?2, 'local', 'cli')",
        rusqlite::params![nanoclaw_protocol::time::now(), json!({"sender": "bench", "senderId": "cli:local", "text": text}).to_string()],
    )
    .unwrap();
}

fn spawn(dir: &std::path::Path, fake: &FakeModel) -> std::process::Child {
    Command::new(bin("nanoclaw-agent"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NANOCLAW_WORKSPACE", dir)
        .env("NANOCLAW_AGENT_DIR", dir.join("agent"))
        .env("NANOCLAW_GLOBAL_DIR", dir.join("global"))
        .env("NANOCLAW_SKILLS_DIR", dir.join("skills"))
        .env("NANOCLAW_PROVIDER", "anthropic")
        .env("ANTHROPIC_BASE_URL", fake.anthropic_url())
        .env("ANTHROPIC_API_KEY", "bench")
        .env("RUST_LOG", "warn")
        .env("NANOCLAW_MAX_STEPS", "1000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nanoclaw-agent (cargo build --release first)")
}

fn wait_requests(fake: &FakeModel, n: usize) {
    let t0 = Instant::now();
    while fake.count() < n {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the runner sent no request"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(30);
    println!("command: target/release/agent-bench {rounds}");
    let fake = FakeModel::start();
    let mut cold = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..rounds {
        let dir = tempfile::tempdir().unwrap();
        session(dir.path(), "hello");
        let before = fake.count();
        let t0 = Instant::now();
        let mut child = spawn(dir.path(), &fake);
        wait_requests(&fake, before + 1);
        cold.push((fake.received()[before].at - t0).as_secs_f64() * 1e3);
        if rss.len() < 5 {
            std::thread::sleep(Duration::from_millis(1000));
            rss.push(rss_kb(child.id()) as f64 / 1024.0);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    cold.sort_by(f64::total_cmp);
    rss.sort_by(f64::total_cmp);
    println!(
        "runner cold start → first model request, n={rounds}: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&cold, 50.0),
        percentile(&cold, 99.0)
    );
    println!(
        "runner idle RSS after a turn: {:.1} MB (max of {})",
        rss.last().copied().unwrap_or(0.0),
        rss.len()
    );

    // Tool loop: STEPS read calls, then an answer.
    const STEPS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    session(dir.path(), "loop");
    std::fs::write(
        dir.path().join("agent/notes.txt"),
        "some notes\n".repeat(20),
    )
    .unwrap();
    let before = fake.count();
    fake.push(
        (0..STEPS)
            .map(|_| Reply::tool("read", json!({"path": "notes.txt"})))
            .chain([Reply::text("done")]),
    );
    let mut child = spawn(dir.path(), &fake);
    wait_requests(&fake, before + STEPS + 1);
    let reqs = fake.received();
    let mut gaps: Vec<f64> = reqs[before..]
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64() * 1e3)
        .collect();
    gaps.sort_by(f64::total_cmp);
    println!(
        "tool loop overhead per step (read tool, fake model answers at once; grows with the conversation resent each step), n={}: p50 {:.2} ms, p99 {:.2} ms",
        gaps.len(),
        percentile(&gaps, 50.0),
        percentile(&gaps, 99.0)
    );
    let _ = child.kill();
    let _ = child.wait();
}
