//! Filesystem attacks: links, FIFOs and huge files planted in the session folder must never make
//! the host read, write or delete outside it (issue 9, point 1: protocol::beneath).
//!
//! The agent owns its session folder and its outbound.db, so most scenarios play the hostile
//! runner directly: the test plants links/files in the session folder and writes the
//! messages_out row itself, exactly what an agent with a shell can do.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nanoclaw_testkit::eventually;
use nanoclaw_testkit::fake_model::{FakeModel, Reply};
use nanoclaw_testkit::fake_telegram::FakeTelegram;
use nanoclaw_testkit::TestHome;
use serde_json::{json, Value};

use crate::support::{self, Rt};

const TOKEN: &str = "123456:TEST-token";
const CHAT: i64 = 555;

/// A home on `rt` with a Telegram chat wired to the main agent, a first exchange done (so the
/// session folder exists); returns the fake, the home, the host and the session folder.
fn telegram_home(
    rt: Rt,
    model: &FakeModel,
    extra: &[(&str, &str)],
) -> (FakeTelegram, TestHome, nanoclaw_testkit::HostProc, PathBuf) {
    let fake = FakeTelegram::start(TOKEN);
    let mut home = support::home(rt, model).telegram(&fake);
    for (k, v) in extra {
        home = home.env(k, v);
    }
    let host = home.start_host(&[]);
    home.wire_telegram(CHAT, false, "public", "mention", "shared");
    model.push([Reply::text("hello")]);
    fake.message(CHAT, "private", 42, "hi", None);
    wait_sends(&fake, 1);
    let dir = home.session_dirs().into_iter().next().expect("a session");
    (fake, home, host, dir)
}

fn sends(fake: &FakeTelegram) -> usize {
    fake.calls("sendMessage").len()
}

fn wait_sends(fake: &FakeTelegram, n: usize) {
    eventually(Duration::from_secs(60), || (sends(fake) >= n).then_some(()))
        .unwrap_or_else(|| panic!("expected {n} sendMessage calls"));
}

/// Plays the runner: a messages_out row (next odd seq) for the chat carrying `files`.
fn runner_sends_files(dir: &Path, id: &str, files: &[&str]) {
    let out = rusqlite::Connection::open(dir.join("outbound.db")).unwrap();
    out.busy_timeout(Duration::from_secs(10)).unwrap();
    let inb = rusqlite::Connection::open(dir.join("inbound.db")).unwrap();
    let max_in: i64 = inb
        .query_row("SELECT COALESCE(MAX(seq),0) FROM messages_in", [], |r| {
            r.get(0)
        })
        .unwrap();
    drop(inb);
    let max_out: i64 = out
        .query_row("SELECT COALESCE(MAX(seq),0) FROM messages_out", [], |r| {
            r.get(0)
        })
        .unwrap();
    let m = max_in.max(max_out);
    let seq = if m % 2 == 0 { m + 1 } else { m + 2 };
    let content = json!({"text": "here you go", "files": files});
    out.execute(
        "INSERT INTO messages_out(id, seq, timestamp, kind, platform_id, channel_type, content) VALUES (?1, ?2, ?3, 'chat', ?4, 'telegram', ?5)",
        rusqlite::params![id, seq, nanoclaw_protocol::time::now(), format!("telegram:{CHAT}"), content.to_string()],
    )
    .unwrap();
}

/// The fate the host recorded for an outbound row.
fn fate(dir: &Path, id: &str) -> Option<String> {
    let c = rusqlite::Connection::open(dir.join("inbound.db")).ok()?;
    c.query_row(
        "SELECT status FROM delivered WHERE message_out_id = ?1",
        [id],
        |r| r.get(0),
    )
    .ok()
}

fn wait_fate(dir: &Path, id: &str) -> String {
    eventually(Duration::from_secs(30), || fate(dir, id))
        .unwrap_or_else(|| panic!("row {id} never got a fate"))
}

/// What the agent was told: the system notes in its inbound.db.
fn notes(dir: &Path) -> String {
    let c = rusqlite::Connection::open(dir.join("inbound.db")).unwrap();
    let mut st = c
        .prepare("SELECT content FROM messages_in WHERE kind = 'system'")
        .unwrap();
    let rows: Vec<String> = st.query_map([], |r| r.get(0)).unwrap().flatten().collect();
    rows.join("\n")
}

#[test]
fn an_outbox_link_to_a_host_secret_is_never_uploaded() {
    for rt in Rt::all() {
        let model = FakeModel::start();
        let (fake, home, _host, dir) = telegram_home(rt, &model, &[]);
        let outside = tempfile::tempdir().unwrap();
        let secret = support::bait(outside.path(), "host.env", "BOT_TOKEN=very-secret");
        // The file itself a link, and (second row) the row's outbox folder a link.
        std::fs::create_dir_all(dir.join("outbox/out-evil-1")).unwrap();
        symlink(&secret, dir.join("outbox/out-evil-1/notes.txt")).unwrap();
        std::fs::write(outside.path().join("notes.txt"), "BOT_TOKEN=very-secret").unwrap();
        symlink(outside.path(), dir.join("outbox/out-evil-2")).unwrap();
        runner_sends_files(&dir, "out-evil-1", &["notes.txt"]);
        runner_sends_files(&dir, "out-evil-2", &["notes.txt"]);
        for id in ["out-evil-1", "out-evil-2"] {
            assert_eq!(wait_fate(&dir, id), "failed", "{rt:?}: {id}");
        }
        assert!(
            fake.uploads()
                .iter()
                .all(|u| !String::from_utf8_lossy(&u.bytes).contains("very-secret")),
            "{rt:?}: the host uploaded a file outside the session"
        );
        assert!(support::audited(
            &home,
            "outbox file refused",
            Duration::from_secs(5)
        ));
        let told = eventually(Duration::from_secs(10), || {
            let n = notes(&dir);
            (n.contains("out-evil-1") && n.contains("out-evil-2")).then_some(n)
        })
        .expect("the agent is told why");
        assert!(told.contains("symbolic link"), "{told}");
        // The host kept serving the chat.
        let before = sends(&fake);
        model.push([Reply::text("still here")]);
        fake.message(CHAT, "private", 42, "ping", None);
        wait_sends(&fake, before + 1);
    }
}

#[test]
fn outbox_cleanup_never_deletes_through_a_link() {
    for rt in Rt::all() {
        let model = FakeModel::start();
        let (fake, _home, _host, dir) = telegram_home(rt, &model, &[]);
        let victim = tempfile::tempdir().unwrap();
        let id = "out-evil-3";
        std::fs::create_dir_all(victim.path().join(id)).unwrap();
        std::fs::write(victim.path().join(id).join("report.txt"), "report").unwrap();
        std::fs::write(victim.path().join(id).join("keep.txt"), "keep me").unwrap();
        // `outbox` itself is the agent's link to a folder of the host's.
        std::fs::remove_dir_all(dir.join("outbox")).unwrap();
        symlink(victim.path(), dir.join("outbox")).unwrap();
        runner_sends_files(&dir, id, &["report.txt"]);
        assert_eq!(wait_fate(&dir, id), "failed", "{rt:?}");
        assert!(
            victim.path().join(id).join("keep.txt").exists(),
            "{rt:?}: the host deleted a folder outside the session"
        );
        assert!(fake.uploads().is_empty(), "{rt:?}");
    }
}

#[test]
fn fifos_dev_zero_and_huge_sparse_files_in_the_outbox_fail_their_row_and_stay_unread() {
    for rt in Rt::all() {
        let model = FakeModel::start();
        let (fake, home, host, dir) =
            telegram_home(rt, &model, &[("NANOCLAW_MAX_FILE_BYTES", "1048576")]);
        let base = support::peak_rss(host.pid());
        let box_ = |id: &str| {
            let d = dir.join("outbox").join(id);
            std::fs::create_dir_all(&d).unwrap();
            d
        };
        let f = std::fs::File::create(box_("out-big").join("big.bin")).unwrap();
        f.set_len(300 * 1024 * 1024).unwrap();
        let fifo = box_("out-fifo").join("pipe.txt");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        symlink("/dev/zero", box_("out-zero").join("zero.bin")).unwrap();
        runner_sends_files(&dir, "out-big", &["big.bin"]);
        runner_sends_files(&dir, "out-fifo", &["pipe.txt"]);
        runner_sends_files(&dir, "out-zero", &["zero.bin"]);
        for id in ["out-big", "out-fifo", "out-zero"] {
            assert_eq!(wait_fate(&dir, id), "failed", "{rt:?}: {id}");
        }
        assert!(fake.uploads().is_empty(), "{rt:?}");
        let grown = support::peak_rss(host.pid()).saturating_sub(base);
        assert!(
            grown < 64 * 1024 * 1024,
            "{rt:?}: host grew by {grown} bytes"
        );
        let log = support::host_log(&home);
        assert!(log.matches("outbox file refused").count() >= 3, "{log}");
        let n = notes(&dir);
        assert!(n.contains("limit") && n.contains("FIFO"), "{n}");
        // A legitimate file still goes out.
        std::fs::write(box_("out-ok").join("ok.txt"), "fine").unwrap();
        runner_sends_files(&dir, "out-ok", &["ok.txt"]);
        assert_eq!(wait_fate(&dir, "out-ok"), "delivered", "{rt:?}");
        assert_eq!(fake.uploads()[0].bytes, b"fine");
    }
}

/// The id ingress gives a Telegram message (ingress::stable_id).
fn telegram_row_id(message_id: i64) -> String {
    let key = format!("telegram\0telegram:{CHAT}\0{message_id}");
    format!(
        "msg-telegram-{:016x}",
        nanoclaw_protocol::fnv1a(key.as_bytes())
    )
}

#[test]
fn a_planted_inbox_link_is_never_written_through() {
    for rt in Rt::all() {
        let model = FakeModel::start();
        let (fake, home, _host, dir) = telegram_home(rt, &model, &[]);
        let victim = tempfile::tempdir().unwrap();
        let keys = support::bait(victim.path(), "authorized_keys", "ssh-ed25519 OWNER");
        // The next message ids are predictable: plant each of the next few as a link to a
        // host folder, where the attachment's name is the owner's authorized_keys.
        for m in 100..=160 {
            symlink(victim.path(), dir.join("inbox").join(telegram_row_id(m))).unwrap();
        }
        model.push([Reply::text("got it")]);
        let before = sends(&fake);
        fake.document(
            CHAT,
            42,
            "authorized_keys",
            "text/plain",
            b"ssh-ed25519 ATTACKER",
            Some("see attached"),
        );
        wait_sends(&fake, before + 1);
        assert_eq!(
            std::fs::read_to_string(&keys).unwrap(),
            "ssh-ed25519 OWNER",
            "{rt:?}: the host wrote through the agent's link"
        );
        assert_eq!(
            std::fs::read_dir(victim.path()).unwrap().count(),
            1,
            "{rt:?}: the host created a file outside the session"
        );
        // The attachment landed in a real folder of the session.
        let c = rusqlite::Connection::open(dir.join("inbound.db")).unwrap();
        let content: String = c
            .query_row(
                "SELECT content FROM messages_in WHERE content LIKE '%attachments%' ORDER BY seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let v: Value = serde_json::from_str(&content).unwrap();
        let path = v["attachments"][0]["path"].as_str().unwrap().to_string();
        let landed = dir.join(&path);
        assert!(
            !std::fs::symlink_metadata(landed.parent().unwrap())
                .unwrap()
                .file_type()
                .is_symlink(),
            "{rt:?}"
        );
        assert_eq!(std::fs::read(&landed).unwrap(), b"ssh-ed25519 ATTACKER");
        assert!(support::audited(
            &home,
            "agent-planted inbox entry removed",
            Duration::from_secs(5)
        ));
    }
}

#[test]
fn the_write_tool_does_not_create_a_dangling_links_target() {
    // The process runtime: there the link's target is on the host (in a container it would be
    // in the container's own read-only root).
    let model = FakeModel::start();
    let home = support::home(Rt::Process, &model);
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("created-by-agent.txt");
    let read_target = support::bait(outside.path(), "secret.txt", "TOP SECRET");
    model.push([
        Reply::tool(
            "bash",
            json!({"command": format!("ln -s {} dangling && ln -s {} peek", target.display(), read_target.display())}),
        ),
        Reply::tool("write", json!({"path": "dangling", "content": "escaped"})),
        Reply::tool("read", json!({"path": "peek"})),
        Reply::tool("edit", json!({"path": "peek", "old_string": "TOP", "new_string": "NOT"})),
        Reply::text("done"),
    ]);
    let _host = home.start_host(&[]);
    let (ok, out) = support::chat(&home, "go");
    assert!(ok, "{out}");
    assert!(
        !target.exists(),
        "write created a file outside the workspace"
    );
    assert_eq!(std::fs::read_to_string(&read_target).unwrap(), "TOP SECRET");
    let told = model
        .received()
        .iter()
        .map(|r| r.all_text())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(told.contains("symbolic link"), "{told}");
    assert!(!told.contains("TOP SECRET"), "read followed the link");
}
