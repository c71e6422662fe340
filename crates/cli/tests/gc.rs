//! Retention end to end: `nanoclaw gc --dry-run` lists exactly the expired artifacts and `gc`
//! removes them, while the files of a pending message and of an undelivered row stay, fresh
//! files stay, and a link an agent planted is removed itself, never followed.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nanoclaw_testkit::TestHome;
use rusqlite::Connection;

/// Makes `path` (itself, not what a link names) look `days` old.
fn age(path: &Path, days: i64) {
    let t = libc::timespec {
        tv_sec: chrono::Utc::now().timestamp() - days * 86_400,
        tv_nsec: 0,
    };
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string and two timespecs we own.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            [t, t].as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(rc, 0, "utimensat {}", path.display());
}

fn put(dir: &Path, days: i64) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("f.txt"), "x").unwrap();
    age(&dir.join("f.txt"), days);
    age(dir, days);
}

#[test]
fn gc_removes_exactly_what_expired() {
    let home = TestHome::new();
    let o = home.run(&["chat", "-m", "hi", "--timeout", "30"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sess = home.session_dirs().remove(0);
    let inbound = Connection::open(sess.join("inbound.db")).unwrap();
    let done: String = inbound
        .query_row(
            "SELECT id FROM messages_in WHERE status = 'completed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    inbound
        .execute(
            "INSERT INTO messages_in(id, seq, kind, timestamp, status, content) VALUES ('msg-waiting', 1000, 'chat', '2026-01-01T00:00:00.000Z', 'pending', '{\"text\":\"later\"}')",
            [],
        )
        .unwrap();
    let delivered: String = inbound
        .query_row("SELECT message_out_id FROM delivered", [], |r| r.get(0))
        .unwrap();
    drop(inbound);

    put(&sess.join("inbox").join(&done), 40);
    put(&sess.join("inbox/msg-waiting"), 40);
    put(&sess.join("inbox/msg-fresh"), 1);
    put(&sess.join("outbox").join(&delivered), 40);
    put(&sess.join("outbox/out-not-sent-yet"), 40);
    let secret = home.path().join(".env");
    std::fs::write(&secret, "TOKEN=keep-me\n").unwrap();
    std::os::unix::fs::symlink(&secret, sess.join("inbox/msg-link")).unwrap();
    age(&sess.join("inbox/msg-link"), 40);
    let logs = home.path().join("logs/containers");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("old.log"), "x").unwrap();
    age(&logs.join("old.log"), 40);
    std::fs::write(logs.join("new.log"), "x").unwrap();
    let conv = home.path().join("groups/main/conversations");
    std::fs::create_dir_all(&conv).unwrap();
    std::fs::write(conv.join("old.md"), "x").unwrap();
    age(&conv.join("old.md"), 40);

    let expired = [
        sess.join("inbox").join(&done),
        sess.join("inbox/msg-link"),
        sess.join("outbox").join(&delivered),
        logs.join("old.log"),
        conv.join("old.md"),
    ];
    let kept = [
        sess.join("inbox/msg-waiting"),
        sess.join("inbox/msg-fresh"),
        sess.join("outbox/out-not-sent-yet"),
        logs.join("new.log"),
    ];
    let o = home.run(&["gc", "--dry-run"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let listed: Vec<&str> = out.lines().filter(|l| !l.contains("to remove")).collect();
    assert_eq!(listed.len(), expired.len(), "{out}");
    for p in &expired {
        assert!(
            out.contains(&p.display().to_string()),
            "{} not listed: {out}",
            p.display()
        );
        assert!(
            std::fs::symlink_metadata(p).is_ok(),
            "dry run removed {}",
            p.display()
        );
    }
    assert!(
        out.contains("5 to remove (dry run: nothing removed)"),
        "{out}"
    );

    let o = home.run(&["gc"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("5 removed"));
    for p in &expired {
        assert!(
            std::fs::symlink_metadata(p).is_err(),
            "{} still there",
            p.display()
        );
    }
    for p in &kept {
        assert!(p.exists(), "{} was removed", p.display());
    }
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "TOKEN=keep-me\n",
        "a link was followed"
    );
    // RETENTION_DAYS=0 keeps everything.
    put(&sess.join("inbox").join(&done), 400);
    let o = home
        .cmd(&["gc", "--dry-run"])
        .env("RETENTION_DAYS", "0")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 to remove"));
}
