//! End-to-end: the real `nanoclaw` and `nanoclaw-agent` binaries in a temporary home.

use std::time::{Duration, Instant};

use nanoclaw_testkit::{eventually, CliClient, TestHome};
use rusqlite::Connection;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn chat_embedded_on_a_fresh_home_echoes() {
    let home = TestHome::new();
    let o = home.run(&["chat", "-m", "hi", "--timeout", "30"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "echo: hi\n");
    // First use created the main agent, the terminal wiring and the owner.
    let c = home.central();
    let folder: String = c
        .query_row("SELECT folder FROM agent_groups", [], |r| r.get(0))
        .unwrap();
    assert_eq!(folder, "main");
    let role: String = c
        .query_row(
            "SELECT role FROM user_roles WHERE user_id='cli:local'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(role, "owner");
    // Seq parity in the session: host rows even, runner rows odd.
    let dir = &home.session_dirs()[0];
    let inb = Connection::open(dir.join("inbound.db")).unwrap();
    let out = Connection::open(dir.join("outbound.db")).unwrap();
    let s_in: i64 = inb
        .query_row("SELECT seq FROM messages_in", [], |r| r.get(0))
        .unwrap();
    let s_out: i64 = out
        .query_row("SELECT seq FROM messages_out", [], |r| r.get(0))
        .unwrap();
    assert_eq!(s_in % 2, 0);
    assert_eq!(s_out % 2, 1);
    assert!(s_out > s_in);
    // No runner outlives the embedded host.
    assert!(
        nanoclaw_testkit::runner_pids(home.path()).is_empty(),
        "runner left behind"
    );
}

#[test]
fn chat_against_a_running_host_and_clean_shutdown() {
    let home = TestHome::new();
    let host = home.start_host(&[]);
    for text in ["hi", "second message"] {
        let o = home.run(&["chat", "-m", text, "--timeout", "30"]);
        assert!(o.status.success(), "stderr: {}", stderr(&o));
        assert_eq!(stdout(&o), format!("echo: {text}\n"));
    }
    // Between turns the session's runner is idle, not running.
    let idle = eventually(Duration::from_secs(5), || {
        let s: String = home
            .central()
            .query_row("SELECT container_status FROM sessions", [], |r| r.get(0))
            .ok()?;
        (s == "idle").then_some(())
    });
    assert!(idle.is_some(), "container_status not idle between turns");
    let log = host.stop();
    assert!(log.contains("host stopped"), "{log}");
    let logs = std::fs::read_to_string(home.path().join("logs/nanoclaw.log")).unwrap();
    assert!(logs.contains("runner started"));
    assert!(home.path().join("logs/nanoclaw.error.log").exists());
    let status: String = home
        .central()
        .query_row("SELECT container_status FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(status, "stopped");
    assert!(
        nanoclaw_testkit::runner_pids(home.path()).is_empty(),
        "runner left behind"
    );
}

/// A SIGKILLed host leaves no runner behind.
#[test]
fn no_orphan_runner_after_host_sigkill() {
    let home = TestHome::new();
    let mut host = home.start_host(&[]);
    let o = home.run(&["chat", "-m", "hi", "--timeout", "30"]);
    assert!(o.status.success());
    assert_eq!(nanoclaw_testkit::runner_pids(home.path()).len(), 1);
    host.signal(libc::SIGKILL);
    host.wait_exit(Duration::from_secs(10)).unwrap();
    let gone = eventually(Duration::from_secs(5), || {
        nanoclaw_testkit::runner_pids(home.path())
            .is_empty()
            .then_some(())
    });
    assert!(gone.is_some(), "orphan runner survived the host");
}

#[test]
fn chat_bad_input_is_a_clear_error() {
    let home = TestHome::new();
    let big = "x".repeat(1024 * 1024);
    let mut child = home
        .cmd(&["chat", "-m", "-", "--timeout", "30"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), big.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("too large") && e.lines().count() == 1, "{e}");
    let o = home.run(&["chat", "-m", "x", "--timeout", "-1"]);
    assert!(!o.status.success());
    assert!(!stderr(&o).contains("panicked"));
}

#[test]
fn timeout_is_a_clear_non_zero_exit() {
    let home = TestHome::new();
    let o = home.run(&["chat", "-m", "mock:sleep 5000", "--timeout", "0.5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no complete reply within 0.5s"),
        "{}",
        stderr(&o)
    );
}

/// The host dies (SIGKILL) right after the platform send, before `delivered` is written (and,
/// second round, right before the send). After a restart: exactly one copy of the reply.
#[test]
fn host_killed_between_send_and_delivered_delivers_exactly_once() {
    for point in ["after_send", "before_send"] {
        let home = TestHome::new();
        let mut host = home.start_host(&[("NANOCLAW_FAILPOINT", point)]);
        let mut cli = CliClient::connect(home.path()).unwrap();
        cli.send("hello once").unwrap();
        let st = host
            .wait_exit(Duration::from_secs(30))
            .expect("host killed itself at the failpoint");
        assert!(!st.success());
        drop(cli);
        assert_eq!(
            home.transcript().len(),
            usize::from(point == "after_send"),
            "{point}"
        );
        let host = home.start_host(&[]);
        let delivered = eventually(Duration::from_secs(20), || {
            let d = home.session_dirs().into_iter().next()?;
            let c = Connection::open(d.join("inbound.db")).ok()?;
            let n: i64 = c
                .query_row("SELECT COUNT(*) FROM delivered", [], |r| r.get(0))
                .ok()?;
            (n == 1 && !home.transcript().is_empty() && home.at_rest()).then_some(())
        });
        // At rest (its record written, no intent left): a second copy could not come later.
        assert!(
            delivered.is_some(),
            "{point}: reply delivered after restart"
        );
        let t = home.transcript();
        assert_eq!(t.len(), 1, "{point}: exactly one copy, got {t:?}");
        assert_eq!(t[0]["text"], "echo: hello once");
        let intents: i64 = home
            .central()
            .query_row("SELECT COUNT(*) FROM delivery_intents", [], |r| r.get(0))
            .unwrap();
        assert_eq!(intents, 0);
        drop(host);
    }
}

/// A runner killed mid-turn: the batch is retried with backoff, then failed after 5 tries and
/// the user is told.
#[test]
fn runner_killed_mid_turn_is_retried_then_failed() {
    let home = TestHome::new();
    let host = home.start_host(&[("NANOCLAW_RETRY_BASE_MS", "100")]);
    let start = Instant::now();
    let o = home.run(&["chat", "-m", "mock:crash", "--timeout", "60"]);
    let took = start.elapsed();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("failed"), "{}", stderr(&o));
    // Backoff 100·(1+2+4+8) ms between the five tries.
    assert!(
        took >= Duration::from_millis(1500),
        "retried too fast: {took:?}"
    );
    assert_given_up_and_still_answering(&home, "mock:crash");
    drop(host);
}

/// The message holding `text` failed after five tries, the chat was told, and the session
/// answers the next message.
fn assert_given_up_and_still_answering(home: &TestHome, text: &str) {
    let dir = &home.session_dirs()[0];
    let c = Connection::open(dir.join("inbound.db")).unwrap();
    let (status, tries): (String, i64) = c
        .query_row(
            "SELECT status, tries FROM messages_in WHERE content LIKE '%' || ?1 || '%'",
            [text],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((status.as_str(), tries), ("failed", 5));
    assert!(home.transcript().iter().any(|l| l["text"]
        .as_str()
        .unwrap_or("")
        .contains("could not process")));
    let o = home.run(&["chat", "-m", "still there?", "--timeout", "30"]);
    assert_eq!(stdout(&o), "echo: still there?\n");
}

/// A turn that is alive (heartbeat ticking) but makes no progress is stopped after the bound
/// and its message retried, then failed with the user told.
#[test]
fn a_stuck_turn_is_stopped_retried_then_failed() {
    let home = TestHome::new();
    let host = home.start_host(&[
        ("NANOCLAW_RETRY_BASE_MS", "50"),
        ("NANOCLAW_SWEEP_INTERVAL_MS", "100"),
        ("NANOCLAW_TURN_STUCK_MS", "300"),
    ]);
    let o = home.run(&["chat", "-m", "mock:sleep 600000", "--timeout", "60"]);
    assert!(!o.status.success());
    let log = std::fs::read_to_string(home.path().join("logs/nanoclaw.log")).unwrap();
    assert!(log.contains("turn is stuck"), "{log}");
    assert_given_up_and_still_answering(&home, "mock:sleep");
    drop(host);
}

/// Idle runners stop after IDLE_TIMEOUT; the next message starts a new one.
#[test]
fn idle_runner_stops_and_restarts_on_demand() {
    let home = TestHome::new();
    let _host = home.start_host(&[
        ("IDLE_TIMEOUT", "300"),
        ("NANOCLAW_SWEEP_INTERVAL_MS", "100"),
    ]);
    let o = home.run(&["chat", "-m", "one", "--timeout", "30"]);
    assert_eq!(stdout(&o), "echo: one\n");
    let stopped = eventually(Duration::from_secs(10), || {
        let s: String = home
            .central()
            .query_row("SELECT container_status FROM sessions", [], |r| r.get(0))
            .ok()?;
        (s == "stopped").then_some(())
    });
    assert!(stopped.is_some(), "runner did not idle out");
    let o = home.run(&["chat", "-m", "two", "--timeout", "30"]);
    assert_eq!(stdout(&o), "echo: two\n");
}

/// Malformed content and unknown kinds on either side are skipped with a record, never a crash;
/// good messages around them are still answered.
#[test]
fn bad_rows_are_skipped_not_fatal() {
    let home = TestHome::new();
    let _host = home.start_host(&[]);
    let o = home.run(&["chat", "-m", "first", "--timeout", "30"]);
    assert_eq!(stdout(&o), "echo: first\n");
    let dir = home.session_dirs().remove(0);
    {
        // Rows a buggy or newer writer might leave: bad JSON, an unknown kind.
        let c = Connection::open(dir.join("inbound.db")).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c.execute_batch(
            "INSERT INTO messages_in(id, seq, kind, timestamp, content) VALUES ('bad-json', 1000, 'chat', '2026-01-01T00:00:00.000Z', '{not json');
             INSERT INTO messages_in(id, seq, kind, timestamp, content) VALUES ('bad-kind', 1002, 'telepathy', '2026-01-01T00:00:00.000Z', '{}');",
        )
        .unwrap();
    }
    let o = home.run(&["chat", "-m", "second", "--timeout", "30"]);
    assert_eq!(stdout(&o), "echo: second\n");
    let failed = eventually(Duration::from_secs(10), || {
        let c = Connection::open(dir.join("inbound.db")).ok()?;
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM messages_in WHERE id IN ('bad-json','bad-kind') AND status='failed'", [], |r| r.get(0))
            .ok()?;
        (n == 2).then_some(())
    });
    assert!(failed.is_some(), "bad inbound rows are acked failed");
    let log = std::fs::read_to_string(
        dir.parent()
            .unwrap()
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("logs/sessions")
            .join(format!(
                "{}.log",
                dir.file_name().unwrap().to_string_lossy()
            )),
    )
    .unwrap();
    assert!(log.contains("inbound row skipped"), "{log}");
    assert!(!log.contains("panicked"));
}

/// `doctor` names each problem with a fix, and fails when the engine is unreachable.
#[test]
fn doctor_reports_problems_with_fixes() {
    let home = TestHome::new();
    let o = home
        .cmd(&["doctor"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env_remove("NANOCLAW_RUNTIME")
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("FAIL  engine:") && l.contains("Fix:")),
        "{out}"
    );
    assert!(out.contains("ok    disk:"), "{out}");
    assert!(out.contains("warn  host: not running"), "{out}");
    // With the process runtime chosen explicitly, no engine is only a warning.
    let o = home
        .cmd(&["doctor"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stdout(&o));
    let o = home
        .cmd(&["doctor"])
        .env("NANOCLAW_PROVIDER", "anthropic")
        .env_remove("ANTHROPIC_API_KEY")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert!(
        stdout(&o).contains("FAIL  credentials: provider anthropic has no credential. Fix:"),
        "{}",
        stdout(&o)
    );
}

/// A send that keeps failing is retried with backoff, then recorded `failed` and the agent is
/// told with a system message.
#[test]
fn failing_sends_retry_then_fail_and_tell_the_agent() {
    let home = TestHome::new();
    let _host = home.start_host(&[
        ("NANOCLAW_FAILPOINT", "cli_send_error"),
        ("NANOCLAW_SEND_RETRY_BASE_MS", "50"),
    ]);
    let mut cli = CliClient::connect(home.path()).unwrap();
    cli.send("hello?").unwrap();
    let t0 = Instant::now();
    let failed = eventually(Duration::from_secs(20), || {
        let d = home.session_dirs().into_iter().next()?;
        let c = Connection::open(d.join("inbound.db")).ok()?;
        let st: String = c
            .query_row("SELECT status FROM delivered", [], |r| r.get(0))
            .ok()?;
        let told: i64 = c
            .query_row("SELECT COUNT(*) FROM messages_in WHERE kind='system' AND content LIKE '%delivery_failed%'", [], |r| r.get(0))
            .ok()?;
        (st == "failed" && told == 1).then_some(())
    });
    assert!(
        failed.is_some(),
        "send not recorded failed / agent not told"
    );
    // Backoff 50·(1+2+4+8) ms between the five attempts.
    assert!(
        t0.elapsed() >= Duration::from_millis(750),
        "{:?}",
        t0.elapsed()
    );
    assert!(home.transcript().is_empty());
}

/// A runner whose heartbeat stops is stopped by the sweep and its work retried.
#[test]
fn runner_without_heartbeat_is_stopped_and_work_retried() {
    let home = TestHome::new();
    let _host = home.start_host(&[
        ("NANOCLAW_HEARTBEAT_MS", "600000"),
        ("NANOCLAW_STALE_MS", "300"),
        ("NANOCLAW_SWEEP_INTERVAL_MS", "100"),
        ("NANOCLAW_RETRY_BASE_MS", "50"),
    ]);
    let mut cli = CliClient::connect(home.path()).unwrap();
    // Longer than the stop's 5-second grace: the runner is killed mid-turn, not allowed to
    // finish it (a 5-second turn raced the grace period).
    cli.send("mock:sleep 15000").unwrap();
    let retried = eventually(Duration::from_secs(20), || {
        let d = home.session_dirs().into_iter().next()?;
        let c = Connection::open(d.join("inbound.db")).ok()?;
        let tries: i64 = c
            .query_row("SELECT tries FROM messages_in", [], |r| r.get(0))
            .ok()?;
        (tries >= 1).then_some(())
    });
    assert!(retried.is_some(), "stuck work was not retried");
    let log = std::fs::read_to_string(home.path().join("logs/nanoclaw.log")).unwrap();
    assert!(log.contains("runner has no heartbeat"), "{log}");
}

/// `service install` writes a systemd unit and a launchd agent (to a temp dir, not activated),
/// named after the home: two homes get two services, and a unit of an earlier release under
/// the fixed name is replaced when it runs this home (and left alone when it runs another).
#[test]
fn service_install_writes_per_home_systemd_and_launchd_files() {
    let (home, other) = (TestHome::new(), TestHome::new());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let files = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    // An earlier release's fixed-name unit for this home.
    std::fs::write(
        dir.path().join("nanoclaw.service"),
        format!(
            "[Service]\nExecStart=\"/old/nanoclaw\" --home \"{}\" run\n",
            home.path().display()
        ),
    )
    .unwrap();
    for h in [&home, &other] {
        for platform in ["linux", "macos"] {
            let o = h.run(&[
                "service",
                "install",
                "--platform",
                platform,
                "--dir",
                d,
                "--no-activate",
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
        }
    }
    let names = files();
    assert_eq!(
        names.len(),
        4,
        "two homes, two services each platform: {names:?}"
    );
    assert!(
        !names.contains(&"nanoclaw.service".to_string()),
        "the old unit of this home was moved: {names:?}"
    );
    let units: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("nanoclaw-") && n.ends_with(".service"))
        .collect();
    let plists: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("com.nanoclaw-") && n.ends_with(".plist"))
        .collect();
    assert_eq!((units.len(), plists.len()), (2, 2), "{names:?}");
    let mine = units
        .iter()
        .find(|u| {
            std::fs::read_to_string(dir.path().join(u))
                .unwrap()
                .contains(&home.path().display().to_string())
        })
        .unwrap()
        .to_string();
    let unit = std::fs::read_to_string(dir.path().join(&mine)).unwrap();
    assert!(
        unit.contains(&nanoclaw_testkit::bin("nanoclaw").display().to_string()),
        "{unit}"
    );
    assert!(unit.contains("\" run\n") && unit.contains("[Install]\nWantedBy=default.target"));
    let o = home.run(&["service", "status", "--platform", "linux", "--dir", d]);
    assert!(stdout(&o).contains(&mine) && stdout(&o).contains("host: not running"));
    let o = home.run(&[
        "service",
        "uninstall",
        "--platform",
        "linux",
        "--dir",
        d,
        "--no-activate",
    ]);
    assert!(o.status.success());
    assert!(!dir.path().join(&mine).exists());
    assert_eq!(files().len(), 3, "the other home's service stays");
    // A fixed-name unit of another home is not touched.
    std::fs::write(
        dir.path().join("nanoclaw.service"),
        "ExecStart=\"x\" --home \"/elsewhere\" run\n",
    )
    .unwrap();
    let o = home.run(&[
        "service",
        "install",
        "--platform",
        "linux",
        "--dir",
        d,
        "--no-activate",
    ]);
    assert!(o.status.success());
    assert!(dir.path().join("nanoclaw.service").exists());
}

#[test]
fn status_shows_host_sessions_and_channels() {
    let home = TestHome::new();
    let o = home.run(&["status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("host:      not running") && stdout(&o).contains("sessions:  none yet"),
        "{}",
        stdout(&o)
    );
    let _host = home.start_host(&[]);
    assert!(home
        .run(&["chat", "-m", "hi", "--timeout", "30"])
        .status
        .success());
    let o = home.run(&["status"]);
    let out = stdout(&o);
    assert!(
        out.contains("host:      running") && out.contains("channels:  cli"),
        "{out}"
    );
    assert!(out.contains("sessions:  1 ("), "{out}");
}

#[test]
fn the_host_degrades_what_a_channel_cannot_do() {
    // The terminal declares no edits and no reactions: an edit arrives as a message of its
    // own, a reaction is skipped (and recorded as delivered, never retried).
    let home = TestHome::new();
    let _host = home.start_host(&[]);
    let o = home.run(&["chat", "-m", "hi", "--timeout", "30"]);
    assert!(o.status.success());
    let dir = &home.session_dirs()[0];
    let out = Connection::open(dir.join("outbound.db")).unwrap();
    let first: i64 = out
        .query_row("SELECT MAX(seq) FROM messages_out", [], |r| r.get(0))
        .unwrap();
    for (i, content) in [
        serde_json::json!({"operation": "edit", "messageId": first, "text": "better answer"}),
        serde_json::json!({"operation": "reaction", "messageId": first, "emoji": "👍"}),
    ]
    .iter()
    .enumerate()
    {
        nanoclaw_testkit::runner_insert(dir, &format!("op{i}"), "cli", "local", content, &[]);
    }
    let inb = Connection::open(dir.join("inbound.db")).unwrap();
    let settled = eventually(Duration::from_secs(10), || {
        let n: i64 = inb
            .query_row("SELECT COUNT(*) FROM delivered WHERE message_out_id IN ('op0','op1') AND status='delivered'", [], |r| r.get(0))
            .unwrap();
        (n == 2).then_some(())
    });
    assert!(settled.is_some(), "both rows settled");
    let lines: Vec<String> = home.transcript().iter().map(|l| l.to_string()).collect();
    assert!(
        lines.iter().any(|l| l.contains("better answer")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("👍")));
}

#[test]
fn recurring_outbound_message_is_sent_at_each_occurrence_exactly_once() {
    let home = TestHome::new();
    let _host = home.start_host(&[]);
    let o = home.run(&["chat", "-m", "hi", "--timeout", "30"]);
    assert!(o.status.success());
    let dir = &home.session_dirs()[0];
    // The runner's side: a message repeated every 2 seconds (six-field cron).
    nanoclaw_testkit::runner_insert(
        dir,
        "tick",
        "cli",
        "local",
        &serde_json::json!({"text": "tick"}),
        &[("recurrence", "*/2 * * * * *")],
    );
    let ticks = || {
        home.transcript()
            .iter()
            .filter(|l| l["text"] == "tick")
            .count()
    };
    let got = eventually(Duration::from_secs(15), || (ticks() >= 3).then_some(()));
    assert!(got.is_some(), "ticks: {}", ticks());
    let inb = Connection::open(dir.join("inbound.db")).unwrap();
    let delivered = || -> Vec<String> {
        inb.prepare(
            "SELECT message_out_id FROM delivered WHERE message_out_id LIKE 'tick.r%' ORDER BY 1",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    // A send reaches the transcript just before its `delivered` record is committed.
    let occurrences = eventually(Duration::from_secs(5), || {
        let d = delivered();
        (d.len() >= 2).then_some(d)
    })
    .unwrap_or_else(delivered);
    assert!(occurrences.len() >= 2, "{occurrences:?}");
    // One send per occurrence: the transcript never has more ticks than delivered records.
    assert!(
        ticks() <= occurrences.len() + 1 + 1,
        "{} ticks for {occurrences:?}",
        ticks()
    );
}

/// DESIGN §11.2 on the real binaries: the host is SIGKILLed at random moments while messages
/// arrive (routing, turns, sends and restarts' reconciliation all get hit), then runners are
/// SIGKILLed at random moments under a live host; in the end every accepted message has its
/// reply exactly once (or, killed five times, is failed with the user told). The seed is
/// printed; timing makes a replay with `NANOCLAW_CHAOS_SEED` likely, not certain, to repeat.
#[test]
fn random_host_kills_lose_and_double_nothing() {
    let seed: u64 = std::env::var("NANOCLAW_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("chaos seed {seed} (NANOCLAW_CHAOS_SEED={seed} to replay)");
    let mut rng = seed | 1;
    let mut next = move |max: u64| {
        // xorshift64: enough randomness for kill timing, reproducible from the seed.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % max
    };
    let home = TestHome::new();
    let env = [
        ("NANOCLAW_RETRY_BASE_MS", "50"),
        ("NANOCLAW_SEND_RETRY_BASE_MS", "50"),
    ];
    let mut accepted: Vec<String> = Vec::new();
    let mut maybe: Vec<String> = Vec::new();
    for round in 0..8 {
        let mut host = home.start_host(&env);
        let pid = host.pid() as i32;
        let delay = Duration::from_millis(5 + next(150));
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            // SAFETY: signal to the test's own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        });
        if let Ok(mut cli) = CliClient::connect(home.path()) {
            for i in 0..4 {
                let text = format!("m-{round}-{i}");
                if cli.send(&text).is_err() {
                    break;
                }
                match cli.until("accepted") {
                    Ok(_) => accepted.push(text),
                    // Killed before it could confirm: the message may or may not be in.
                    Err(_) => {
                        maybe.push(text);
                        break;
                    }
                }
            }
        }
        killer.join().unwrap();
        host.wait_exit(Duration::from_secs(10))
            .expect("host killed");
    }
    // Then the runner dies at random moments under a live host: its batches are retried.
    let host = home.start_host(&env);
    let mut cli = CliClient::connect(home.path()).unwrap();
    for round in 0..6 {
        for i in 0..3 {
            let text = format!("r-{round}-{i}");
            cli.send(&text).unwrap();
            cli.until("accepted").unwrap();
            accepted.push(text);
        }
        std::thread::sleep(Duration::from_millis(next(60)));
        for pid in nanoclaw_testkit::runner_pids(home.path()) {
            // SAFETY: a runner this test's host started.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
    }
    drop(cli);
    drop(host);
    let host = home.start_host(&env);
    let echoes = |t: &[serde_json::Value], m: &str| {
        t.iter()
            .filter(|l| l["text"] == format!("echo: {m}").as_str())
            .count()
    };
    // A message whose turn was killed five times is failed (and the user told): not lost.
    let failed = || -> Vec<String> {
        let c = Connection::open(home.session_dirs()[0].join("inbound.db")).unwrap();
        let mut st = c
            .prepare(
                "SELECT json_extract(content, '$.text') FROM messages_in WHERE status = 'failed'",
            )
            .unwrap();
        st.query_map([], |r| r.get(0)).unwrap().flatten().collect()
    };
    let all_answered = eventually(Duration::from_secs(60), || {
        let (t, f) = (home.transcript(), failed());
        accepted
            .iter()
            .all(|m| echoes(&t, m) >= 1 || f.contains(m))
            .then_some(())
    });
    // Before counting doubles, the session must be at rest: no turn to run, every reply
    // recorded as delivered, no send in flight. Only then can no further echo arrive.
    let rested = all_answered
        .and_then(|()| eventually(Duration::from_secs(30), || home.at_rest().then_some(())));
    let t = home.transcript();
    assert!(
        rested.is_some() || all_answered.is_none(),
        "seed {seed}: the session never came to rest"
    );
    assert!(
        all_answered.is_some(),
        "seed {seed}: unanswered {:?}",
        accepted
            .iter()
            .filter(|m| echoes(&t, m) == 0 && !failed().contains(m))
            .collect::<Vec<_>>()
    );
    for m in accepted.iter().chain(&maybe) {
        assert!(echoes(&t, m) <= 1, "seed {seed}: {m} answered twice: {t:?}");
    }
    assert!(accepted.len() >= 8, "seed {seed}: too few messages got in");
    let intents: i64 = home
        .central()
        .query_row("SELECT COUNT(*) FROM delivery_intents", [], |r| r.get(0))
        .unwrap();
    assert_eq!(intents, 0, "seed {seed}");
    drop(host);
}

#[test]
fn a_runner_that_cannot_start_is_reported_at_once_with_the_fix() {
    let home = TestHome::new().env("NANOCLAW_AGENT_BIN", "/nonexistent/nanoclaw-agent");
    let t0 = Instant::now();
    let o = home.run(&["chat", "-m", "hi", "--timeout", "120"]);
    let took = t0.elapsed();
    let err = stderr(&o);
    assert!(
        !o.status.success(),
        "a turn that cannot run is not a success"
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "a failure, not the timeout (2): {err}"
    );
    assert!(err.contains("could not start"), "{err}");
    assert!(
        err.contains("/nonexistent/nanoclaw-agent") && err.contains("NANOCLAW_AGENT_BIN"),
        "the cause and the fix: {err}"
    );
    // The barrier is the exit itself; the bound only says it was not the 120 s timeout.
    assert!(took < Duration::from_secs(30), "reported after {took:?}");
    // Nothing was lost: the message waits for a runner that can start.
    let dir = &home.session_dirs()[0];
    let inb = Connection::open(dir.join("inbound.db")).unwrap();
    let pending: i64 = inb
        .query_row(
            "SELECT count(*) FROM messages_in WHERE status='pending'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(pending, 1);
}
