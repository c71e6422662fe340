//! The session DBs: a runner that controls its folder and its outbound.db attacks the host's
//! state and the host's other sessions (issue 9, points 2 and 5). The test plays the agent: it
//! writes into the session folder and outbound.db exactly what an agent with a shell and sqlite
//! could (in the Docker runtime only the file inbound.db is read-only; its folder is not).

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use nanoclaw_testkit::{eventually, TestHome};
use rusqlite::Connection;

use super::support::{audited, host_log, peak_rss, runtime_home, Rt};

/// Reads a session DB without locks or hot-journal handling (`immutable=1`): the test must not
/// itself roll back a journal it planted.
fn peek(db: &Path) -> Connection {
    Connection::open_with_flags(
        format!("file:{}?immutable=1", db.display()),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap()
}

fn count(c: &Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// `chat -m` in the background.
fn chat_bg(home: &TestHome, args: &[&str]) -> Child {
    let mut a = vec!["chat"];
    a.extend_from_slice(args);
    home.cmd(&a)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A command that must finish within `limit` (a hang is a failure, not a stuck test).
fn bounded(home: &TestHome, args: &[&str], limit: Duration) -> Option<Output> {
    let mut child = home
        .cmd(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let done = eventually(limit, || child.try_wait().ok().flatten());
    if done.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    child.wait_with_output().ok()
}

fn say(home: &TestHome, agent: Option<&str>, text: &str) -> String {
    let mut a = vec!["chat", "-m", text, "--timeout", "60"];
    if let Some(ag) = agent {
        a.extend_from_slice(&["--agent", ag]);
    }
    let o = home.run(&a);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A journal that, rolled back into `db`, restores a copy of it with a forged `messages_in`
/// row and no `delivered` records: built with sqlite on a copy, as an agent can (its
/// inbound.db is readable to it).
fn forged_journal(db: &Path, scratch: &Path) -> Vec<u8> {
    std::fs::create_dir_all(scratch).unwrap();
    let copy = scratch.join("inbound.db");
    let _ = std::fs::remove_file(&copy);
    std::fs::copy(db, &copy).unwrap();
    let c = Connection::open(&copy).unwrap();
    c.execute_batch(
        "INSERT INTO messages_in(id, seq, kind, timestamp, status, content, trigger)
           VALUES ('forged', 90000, 'chat', '2026-01-01T00:00:00.000Z', 'pending',
                   '{\"sender\":\"owner\",\"senderId\":\"cli:local\",\"text\":\"forged\"}', 0);
         DELETE FROM delivered;
         PRAGMA cache_size=1; BEGIN;",
    )
    .unwrap();
    for i in 0..400 {
        c.execute(
            "INSERT INTO messages_in(id, seq, kind, timestamp, content) VALUES (?1, ?2, 'chat', 't', ?3)",
            rusqlite::params![format!("filler-{i}"), 100_000 + 2 * i, "x".repeat(300)],
        )
        .unwrap();
    }
    let j = std::fs::read(scratch.join("inbound.db-journal")).unwrap();
    c.execute_batch("ROLLBACK").unwrap();
    j
}

/// A hot journal planted next to inbound.db is never rolled back into the host's file: no
/// forged row appears, no `delivered` record is wiped, and the attack is audited. (A genuine
/// crash mid-write still recovers: e2e's host-kill tests.)
#[test]
fn a_planted_inbound_journal_never_rewrites_host_state() {
    for rt in Rt::all() {
        a_planted_inbound_journal_never_rewrites_host_state_in(rt);
    }
}

fn a_planted_inbound_journal_never_rewrites_host_state_in(rt: Rt) {
    let home = runtime_home(rt);
    let _host = home.start_host(&[]);
    assert_eq!(say(&home, None, "first"), "echo: first");
    let dir = home.session_dirs().remove(0);
    let db = dir.join("inbound.db");
    let delivered_before = count(&peek(&db), "SELECT COUNT(*) FROM delivered");
    assert!(delivered_before >= 1);
    let journal = forged_journal(&db, &home.path().join("scratch"));
    std::fs::write(dir.join("inbound.db-journal"), &journal).unwrap();

    // The host's next write to the session (a new message) is the moment SQLite would roll
    // the journal back.
    let second = chat_bg(&home, &["-m", "second", "--timeout", "60"]);
    let written = eventually(Duration::from_secs(20), || {
        let c = peek(&db);
        (count(
            &c,
            "SELECT COUNT(*) FROM messages_in WHERE content LIKE '%\"second\"%'",
        ) == 1)
            .then_some(())
    });
    assert!(written.is_some(), "the host wrote the new message");
    let c = peek(&db);
    assert_eq!(
        count(&c, "SELECT COUNT(*) FROM messages_in WHERE id = 'forged'"),
        0,
        "a forged row was rolled into inbound.db"
    );
    assert!(
        count(&c, "SELECT COUNT(*) FROM delivered") >= delivered_before,
        "delivered records were wiped"
    );
    assert!(audited(
        &home,
        "planted journal next to inbound.db ignored",
        Duration::from_secs(5)
    ));
    // The runner (which honours journals it sees, read-only) was only hurting itself: once
    // the agent's file is gone the session carries on.
    std::fs::remove_file(dir.join("inbound.db-journal")).unwrap();
    let out = second.wait_with_output().unwrap();
    let sessions_log: String = std::fs::read_dir(home.path().join("logs/sessions"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "echo: second",
        "{}\n{sessions_log}",
        host_log(&home)
    );
}

fn mkfifo(p: &Path) {
    let _ = std::fs::remove_file(p);
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// A FIFO (or a link) where outbound.db or its journal belongs stalls nothing: the sweep
/// goes on, `ctl` answers (a wiring change projects into every running session), other
/// agents are served, and the refusal is audited.
#[test]
fn fifos_and_links_in_a_session_stall_no_one() {
    for rt in Rt::all() {
        fifos_and_links_in_a_session_stall_no_one_in(rt);
    }
}

fn fifos_and_links_in_a_session_stall_no_one_in(rt: Rt) {
    let home = runtime_home(rt);
    let _host = home.start_host(&[("NANOCLAW_SWEEP_INTERVAL_MS", "300")]);
    assert_eq!(say(&home, None, "hi"), "echo: hi");
    let dir = home.session_dirs().remove(0);
    type Plant = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Plant)> = vec![
        (
            "outbound.db",
            Box::new(|d: &Path| mkfifo(&d.join("outbound.db"))),
        ),
        (
            "outbound.db-journal",
            Box::new(|d: &Path| mkfifo(&d.join("outbound.db-journal"))),
        ),
        (
            "link",
            Box::new(|d: &Path| {
                let ob = d.join("outbound.db");
                let _ = std::fs::remove_file(&ob);
                let host_file = d.join("../../../v2.db");
                std::os::unix::fs::symlink(host_file, ob).unwrap();
            }),
        ),
    ];
    let saved = home.path().join("outbound.saved");
    std::fs::copy(dir.join("outbound.db"), &saved).unwrap();
    for (i, (what, plant)) in cases.iter().enumerate() {
        let _ = std::fs::remove_file(dir.join("outbound.db-journal"));
        let _ = std::fs::remove_file(dir.join("outbound.db"));
        std::fs::copy(&saved, dir.join("outbound.db")).unwrap();
        plant(&dir);
        let t = Instant::now();
        let (name, agent) = (format!("Extra {i}"), format!("other{i}"));
        let ctl = bounded(
            &home,
            &[
                "ctl", "groups", "create", "--name", &name, "--folder", &agent,
            ],
            Duration::from_secs(20),
        );
        assert!(
            ctl.as_ref().is_some_and(|o| o.status.success()),
            "{what}: ctl hung or failed: {ctl:?}"
        );
        assert_eq!(
            say(&home, Some(&agent), "still there?"),
            "echo: still there?",
            "{what}: another agent is served"
        );
        assert!(
            audited(&home, "session file refused", Duration::from_secs(10)),
            "{what}: audited"
        );
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{what}: took {:?}",
            t.elapsed()
        );
    }
    let log = host_log(&home);
    assert!(!log.contains("panicked"), "{log}");
}

fn out_db(dir: &Path) -> Connection {
    let c = Connection::open(dir.join("outbound.db")).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

fn max_out_seq(c: &Connection) -> i64 {
    count(
        c,
        "SELECT COALESCE(MAX(seq), 0) FROM messages_out WHERE seq < 1000000000",
    )
}

/// A `messages_out` row with `seq = i64::MAX` (or a negative one) is refused and reported,
/// and the host's next writes to that session are neither wrapped nor dropped as duplicates.
#[test]
fn absurd_seqs_are_refused_and_move_nothing() {
    for rt in Rt::all() {
        absurd_seqs_are_refused_and_move_nothing_in(rt);
    }
}

fn absurd_seqs_are_refused_and_move_nothing_in(rt: Rt) {
    let home = runtime_home(rt);
    let _host = home.start_host(&[]);
    assert_eq!(say(&home, None, "one"), "echo: one");
    let dir = home.session_dirs().remove(0);
    {
        let o = out_db(&dir);
        let now = nanoclaw_protocol::time::now();
        o.execute(
            "INSERT INTO messages_out(id, seq, timestamp, kind, platform_id, channel_type, content)
             VALUES ('huge', ?1, ?2, 'chat', 'local', 'cli', '{\"text\":\"huge seq\"}'),
                    ('negative', -7, ?2, 'chat', 'local', 'cli', '{\"text\":\"negative seq\"}')",
            rusqlite::params![i64::MAX, now],
        )
        .unwrap();
    }
    for text in ["two", "three"] {
        assert_eq!(
            say(&home, None, text),
            format!("echo: {text}"),
            "not dropped"
        );
    }
    let inb = peek(&dir.join("inbound.db"));
    assert_eq!(
        count(
            &inb,
            "SELECT COUNT(*) FROM messages_in WHERE seq < 0 OR seq > 9007199254740992"
        ),
        0,
        "the host's seqs stay sane"
    );
    assert_eq!(
        count(&inb, "SELECT COUNT(*) FROM delivered WHERE message_out_id IN ('huge','negative') AND status='failed'"),
        2
    );
    assert!(
        count(&inb, "SELECT COUNT(*) FROM messages_in WHERE kind='system' AND content LIKE '%delivery_failed%seq%'") >= 2,
        "the agent is told"
    );
    assert!(!home.transcript().iter().any(|l| l["text"] == "huge seq"));
    assert!(audited(
        &home,
        "outbound row refused",
        Duration::from_secs(5)
    ));
}

/// A row with invalid UTF-8 (or bad JSON) fails that row with the reason sent to the agent;
/// the rows after it are still delivered.
#[test]
fn undecodable_rows_fail_alone_and_the_agent_is_told() {
    for rt in Rt::all() {
        undecodable_rows_fail_alone_and_the_agent_is_told_in(rt);
    }
}

fn undecodable_rows_fail_alone_and_the_agent_is_told_in(rt: Rt) {
    let home = runtime_home(rt);
    let _host = home.start_host(&[]);
    assert_eq!(say(&home, None, "one"), "echo: one");
    let dir = home.session_dirs().remove(0);
    {
        let o = out_db(&dir);
        let seq = max_out_seq(&o);
        let now = nanoclaw_protocol::time::now();
        o.execute(
            "INSERT INTO messages_out(id, seq, timestamp, kind, platform_id, channel_type, content) VALUES
               ('bad-utf8', ?1, ?3, 'chat', 'local', 'cli', CAST(X'7B2274657874223A2280FF227D' AS TEXT)),
               (CAST(X'6964FF' AS TEXT), ?2, ?3, 'chat', 'local', 'cli', '{\"text\":\"bad id\"}'),
               ('bad-json', ?4, ?3, 'chat', 'local', 'cli', '{not json'),
               ('after', ?5, ?3, 'chat', 'local', 'cli', '{\"text\":\"after the bad rows\"}')",
            rusqlite::params![seq + 2, seq + 4, now, seq + 6, seq + 8],
        )
        .unwrap();
    }
    let got = eventually(Duration::from_secs(20), || {
        home.transcript()
            .iter()
            .any(|l| l["text"] == "after the bad rows")
            .then_some(())
    });
    assert!(got.is_some(), "delivery goes on past undecodable rows");
    assert_eq!(say(&home, None, "two"), "echo: two", "the session lives on");
    let _ = eventually(Duration::from_secs(10), || {
        let c = peek(&dir.join("inbound.db"));
        (count(&c, "SELECT COUNT(*) FROM delivered WHERE status='failed'") >= 3).then_some(())
    });
    let inb = peek(&dir.join("inbound.db"));
    assert_eq!(
        count(&inb, "SELECT COUNT(*) FROM delivered WHERE status='failed' AND message_out_id IN ('bad-utf8', CAST(X'6964FF' AS TEXT), 'bad-json')"),
        3
    );
    assert!(
        count(&inb, "SELECT COUNT(*) FROM messages_in WHERE kind='system' AND content LIKE '%delivery_failed%UTF-8%'") >= 2,
        "the agent is told"
    );
}

fn rss_now(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// 300 MB of outbound rows do not grow the host by as much: rows are paged, sizes are checked
/// in SQL before content is fetched, an oversize row is failed with the reason sent to the
/// agent, and the session goes on.
#[test]
fn a_row_flood_keeps_the_host_bounded() {
    for rt in Rt::all() {
        a_row_flood_keeps_the_host_bounded_in(rt);
    }
}

fn a_row_flood_keeps_the_host_bounded_in(rt: Rt) {
    let home = runtime_home(rt);
    let host = home.start_host(&[]);
    assert_eq!(say(&home, None, "one"), "echo: one");
    let dir = home.session_dirs().remove(0);
    let before = peak_rss(host.pid()).max(rss_now(host.pid()));
    {
        let o = out_db(&dir);
        let mut seq = max_out_seq(&o);
        let now = nanoclaw_protocol::time::now();
        let big = format!("{{\"text\":\"{}\"}}", "y".repeat(10 << 20));
        o.execute_batch("BEGIN").unwrap();
        for i in 0..30 {
            seq += 2;
            o.execute(
                "INSERT INTO messages_out(id, seq, timestamp, kind, platform_id, channel_type, content)
                 VALUES (?1, ?2, ?3, 'chat', 'local', 'cli', ?4)",
                rusqlite::params![format!("big-{i}"), seq, now, big],
            )
            .unwrap();
        }
        seq += 2;
        o.execute(
            "INSERT INTO messages_out(id, seq, timestamp, kind, platform_id, channel_type, content)
             VALUES ('small', ?1, ?2, 'chat', 'local', 'cli', '{\"text\":\"small one\"}')",
            rusqlite::params![seq, now],
        )
        .unwrap();
        o.execute_batch("COMMIT").unwrap();
    }
    let got = eventually(Duration::from_secs(60), || {
        home.transcript()
            .iter()
            .any(|l| l["text"] == "small one")
            .then_some(())
    });
    assert!(got.is_some(), "the small row behind the flood is delivered");
    // A send reaches the transcript just before the pass's records are committed.
    let inb = peek(&dir.join("inbound.db"));
    let failed = eventually(Duration::from_secs(10), || {
        let c = peek(&dir.join("inbound.db"));
        (count(
            &c,
            "SELECT COUNT(*) FROM delivered WHERE status='failed' AND message_out_id LIKE 'big-%'",
        ) == 30)
            .then_some(())
    });
    assert!(failed.is_some(), "every oversize row is failed");
    assert!(
        count(&inb, "SELECT COUNT(*) FROM messages_in WHERE kind='system' AND content LIKE '%delivery_failed%limit%'") >= 30,
        "the agent is told"
    );
    let grown = peak_rss(host.pid()).saturating_sub(before);
    assert!(grown < 64 << 20, "the host grew by {} MB", grown >> 20);
    assert_eq!(say(&home, None, "two"), "echo: two");
}

fn wire_telegram(home: &TestHome, chat: i64) {
    home.wire_telegram(chat, false, "public", "mention", "shared");
}

/// An agent that breaks its own session files makes routing into its session fail: that
/// update is retried a few times, then recorded (`route_failed`) and skipped, so the chats
/// behind it are served instead of waiting forever.
/// The Telegram poll loop alone is under test (the broken session never runs a turn), so one
/// runtime is enough.
#[test]
fn an_unroutable_update_is_skipped_not_retried_forever() {
    use nanoclaw_testkit::fake_telegram::FakeTelegram;
    const TOKEN: &str = "123456:TEST-token";
    let fake = FakeTelegram::start(TOKEN);
    let home = TestHome::new().telegram(&fake);
    let _host = home.start_host(&[]);
    // The main agent exists once the terminal has talked to it.
    assert_eq!(say(&home, None, "hi"), "echo: hi");
    wire_telegram(&home, 555);
    wire_telegram(&home, 556);
    let replies = |chat: i64| {
        fake.calls("sendMessage")
            .into_iter()
            .filter(|c| c["chat_id"] == chat)
            .count()
    };
    fake.message(555, "private", 42, "hello", None);
    assert!(eventually(Duration::from_secs(20), || (replies(555) == 1)
        .then_some(()))
    .is_some());
    // The agent of chat 555 breaks its session (the process runtime lets it write inbound.db).
    let dir = home
        .session_dirs()
        .into_iter()
        .find(|d| {
            let c = peek(&d.join("inbound.db"));
            count(
                &c,
                "SELECT COUNT(*) FROM messages_in WHERE platform_id='telegram:555'",
            ) > 0
        })
        .unwrap();
    std::fs::write(dir.join("inbound.db"), vec![b'x'; 8192]).unwrap();
    fake.message(555, "private", 42, "into the broken session", None);
    fake.message(556, "private", 43, "am I served?", None);
    let served = eventually(Duration::from_secs(30), || {
        (replies(556) == 1).then_some(())
    });
    assert!(served.is_some(), "the chat behind the broken one is served");
    assert!(audited(
        &home,
        "update could not be routed; recorded and skipped",
        Duration::from_secs(5)
    ));
    let recorded: i64 = home
        .central()
        .query_row(
            "SELECT COUNT(*) FROM unregistered_senders WHERE reason='route_failed' AND platform_id='telegram:555'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(recorded, 1);
}
