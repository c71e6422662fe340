//! The edges of the trust boundary: the home is private to the host user, and a platform that
//! is down at start does not take the host (and the terminal) with it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use nanoclaw_testkit::fake_telegram::FakeTelegram;
use nanoclaw_testkit::{eventually, TestHome};
use serde_json::Value;

fn mode(p: &Path) -> u32 {
    p.symlink_metadata()
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_home_its_dbs_logs_and_sockets_are_private_and_an_open_install_is_tightened() {
    let home = TestHome::new();
    let root = home.path().to_path_buf();
    // An install from before: everything world-readable.
    for d in ["data", "logs"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join(".env"), "SOME_SECRET=x\n").unwrap();
    std::fs::write(root.join("data/cli-transcript.jsonl"), "").unwrap();
    std::fs::write(root.join("logs/nanoclaw.log"), "").unwrap();
    for (p, m) in [
        ("", 0o755),
        ("data", 0o755),
        ("logs", 0o755),
        (".env", 0o644),
        ("data/cli-transcript.jsonl", 0o644),
        ("logs/nanoclaw.log", 0o644),
    ] {
        std::fs::set_permissions(root.join(p), std::fs::Permissions::from_mode(m)).unwrap();
    }
    let o = home.run(&["doctor"]);
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.starts_with("warn  privacy:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains(&format!("Fix: chmod 700 {}", root.join("data").display()))
            && line.contains(&format!("Fix: chmod 600 {}", root.join(".env").display())),
        "{line}"
    );

    let host = home.start_host(&[]);
    let o = home.run(&["chat", "-m", "hi", "--timeout", "30"]);
    assert!(o.status.success());
    let session = home.session_dirs().pop().expect("a session");
    for d in ["", "data", "logs"] {
        assert_eq!(mode(&root.join(d)), 0o700, "{d}/");
    }
    for f in [
        ".env",
        "data/v2.db",
        "data/cli-transcript.jsonl",
        "data/cli.sock",
        "data/control.sock",
        "logs/nanoclaw.log",
        "logs/nanoclaw.error.log",
    ] {
        assert_eq!(mode(&root.join(f)), 0o600, "{f}");
    }
    for f in ["inbound.db", "outbound.db"] {
        assert_eq!(mode(&session.join(f)), 0o600, "{f}");
    }
    let log = std::fs::read_to_string(root.join("logs/nanoclaw.log")).unwrap();
    assert!(log.contains("home was readable by other users"), "{log}");
    let out = stdout(&home.run(&["doctor"]));
    assert!(out.contains("ok    privacy:"), "{out}");
    host.stop();
}

const TOKEN: &str = "123456:TEST-token";

/// A loopback port with nothing listening on it (bound once, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn status(home: &TestHome) -> String {
    stdout(&home.run(&["status"]))
}

#[test]
fn telegram_down_at_start_retries_in_the_background_while_the_terminal_serves() {
    let port = closed_port();
    let home = TestHome::new()
        .env("TELEGRAM_BOT_TOKEN", TOKEN)
        .env("TELEGRAM_API_URL", &format!("http://127.0.0.1:{port}"))
        .env("TELEGRAM_POLL_TIMEOUT", "1")
        .env("NANOCLAW_CHANNEL_RETRY_MS", "200");
    let host = home.start_host(&[]);
    // The terminal answers although Telegram cannot be reached.
    let o = home.run(&["chat", "-m", "hi", "--timeout", "30"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout(&o).trim(), "echo: hi");
    let s = status(&home);
    let line = s
        .lines()
        .find(|l| l.trim_start().starts_with("telegram:"))
        .unwrap_or_else(|| panic!("{s}"));
    assert!(
        line.contains("connecting") || line.contains("retrying ("),
        "not connected: {s}"
    );
    // The first try fails for good (a barrier: the retry state is recorded with its reason).
    let retrying = eventually(Duration::from_secs(30), || {
        let s = status(&home);
        s.lines()
            .find(|l| l.contains("telegram: retrying (") && l.contains("next try in"))
            .map(str::to_string)
    })
    .expect("telegram shows as retrying");
    assert!(retrying.contains("connection refused"), "{retrying}");
    let doctor = stdout(&home.run(&["doctor"]));
    assert!(
        doctor
            .lines()
            .any(|l| l.starts_with("warn  channel: telegram: retrying (")),
        "{doctor}"
    );

    // The Bot API comes up on that port: the bot connects and routes a message.
    let fake = FakeTelegram::start_on(TOKEN, &format!("127.0.0.1:{port}"));
    eventually(Duration::from_secs(60), || {
        status(&home).contains("telegram: connected").then_some(())
    })
    .unwrap_or_else(|| panic!("telegram never connected: {}", status(&home)));
    home.wire_telegram(555, false, "public", "mention", "shared");
    fake.message(555, "private", 42, "back online?", None);
    let sent: Vec<Value> = eventually(Duration::from_secs(20), || {
        let r: Vec<Value> = fake
            .calls("sendMessage")
            .into_iter()
            .filter(|c| c["chat_id"] == 555)
            .collect();
        (!r.is_empty()).then_some(r)
    })
    .expect("a reply through Telegram");
    assert_eq!(sent[0]["text"], "echo: back online?");
    let log = std::fs::read_to_string(home.path().join("logs/nanoclaw.log")).unwrap();
    assert!(
        log.contains("channel cannot connect; retrying in the background"),
        "{log}"
    );
    host.stop();
}

/// A runner that finished a message (reply and `completed` ack, one transaction) and died
/// before the host synced that ack: the message is done, not retried and answered twice.
/// (Seen in the chaos test once sandboxed runners outlived their host by a few milliseconds.)
#[test]
fn work_a_dead_runner_finished_is_not_retried() {
    let home = TestHome::new().env("NANOCLAW_RETRY_BASE_MS", "10");
    let host = home.start_host(&[]);
    let o = home.run(&["chat", "-m", "first", "--timeout", "30"]);
    assert!(o.status.success());
    drop(host);
    // As if the host had synced the runner's 'processing' ack, then lost the runner before
    // seeing its 'completed' one.
    let dir = home.session_dirs().pop().unwrap();
    let c = rusqlite::Connection::open(dir.join("inbound.db")).unwrap();
    let n = c
        .execute(
            "UPDATE messages_in SET status='processing' WHERE json_extract(content, '$.text')='first'",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(c);
    let _host = home.start_host(&[]);
    // A second turn in the same session: its reply is delivered after the startup passes.
    let o = home.run(&["chat", "-m", "second", "--timeout", "30"]);
    assert!(o.status.success());
    let c = rusqlite::Connection::open(dir.join("inbound.db")).unwrap();
    let (status, tries): (String, i64) = c
        .query_row(
            "SELECT status, COALESCE(tries, 0) FROM messages_in WHERE json_extract(content, '$.text')='first'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((status.as_str(), tries), ("completed", 0));
    let firsts = home
        .transcript()
        .iter()
        .filter(|l| l["text"] == "echo: first")
        .count();
    assert_eq!(firsts, 1, "{:?}", home.transcript());
}
