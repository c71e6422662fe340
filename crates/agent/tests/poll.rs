//! The runner's poll loop on real session DBs: batching, context rows, on_wake, bad rows,
//! scheduling, crash recovery, seq parity.

use nanoclaw_agent::{Config, Runner};
use nanoclaw_protocol::schema;
use rusqlite::{params, Connection};

/// A reply row: (seq, in_reply_to, content, platform_id, thread_id).
type OutRow = (i64, String, String, Option<String>, Option<String>);

struct Ws {
    dir: tempfile::TempDir,
}

impl Ws {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        schema::open_inbound_rw(&dir.path().join("inbound.db")).unwrap();
        Self { dir }
    }
    fn cfg(&self) -> Config {
        let mut c = Config::from_env();
        c.workspace = self.dir.path().to_path_buf();
        c.agent_dir = self.dir.path().join("agent");
        c.provider = "mock".into();
        c
    }
    fn runner(&self) -> Runner {
        nanoclaw_agent::build(self.cfg()).unwrap()
    }
    fn inbound(&self) -> Connection {
        Connection::open(self.dir.path().join("inbound.db")).unwrap()
    }
    #[allow(clippy::too_many_arguments)]
    fn insert(
        &self,
        id: &str,
        seq: i64,
        kind: &str,
        content: &str,
        trigger: bool,
        on_wake: bool,
        after: Option<&str>,
    ) {
        self.inbound()
            .execute(
                "INSERT INTO messages_in(id, seq, kind, timestamp, content, trigger, on_wake, process_after, platform_id, channel_type, thread_id)
                 VALUES (?1, ?2, ?3, '2026-01-01T00:00:00.000Z', ?4, ?5, ?6, ?7, 'local', 'cli', 't1')",
                params![id, seq, kind, content, trigger, on_wake, after],
            )
            .unwrap();
    }
    fn chat(&self, id: &str, seq: i64, text: &str, trigger: bool) {
        self.insert(
            id,
            seq,
            "chat",
            &format!(r#"{{"sender":"a","senderId":"cli:local","text":"{text}"}}"#),
            trigger,
            false,
            None,
        );
    }
    fn out(&self) -> Vec<OutRow> {
        let c = Connection::open(self.dir.path().join("outbound.db")).unwrap();
        let mut st = c.prepare("SELECT seq, in_reply_to, content, platform_id, thread_id FROM messages_out ORDER BY seq").unwrap();
        st.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }
}

#[tokio::test]
async fn echo_with_odd_seq_and_copied_routing() {
    let ws = Ws::new();
    ws.chat("m1", 100, "hi", true);
    let mut r = ws.runner();
    assert!(r.poll_once().await.unwrap());
    let out = ws.out();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, 101, "next odd above the max of both tables");
    assert_eq!(out[0].1, "m1");
    assert!(out[0].2.contains("echo: hi"));
    assert_eq!(
        (out[0].3.as_deref(), out[0].4.as_deref()),
        (Some("local"), Some("t1"))
    );
    assert!(r.acked("completed").unwrap().contains("m1"));
    assert!(!r.poll_once().await.unwrap(), "nothing new: no turn");
}

#[tokio::test]
async fn context_rows_ride_along_and_batches_are_capped() {
    let ws = Ws::new();
    let mut r = ws.runner();
    for i in 0..12 {
        ws.chat(&format!("c{i}"), 2 + 2 * i, &format!("ctx {i}"), false);
    }
    assert!(
        !r.poll_once().await.unwrap(),
        "context alone never starts a turn"
    );
    ws.chat("t", 100, "now answer", true);
    assert!(r.poll_once().await.unwrap());
    let done = r.acked("completed").unwrap();
    assert_eq!(done.len(), 13, "context acked with the trigger");
    assert!(ws.out()[0].2.contains("echo: now answer"));
}

#[tokio::test]
async fn on_wake_only_on_first_poll_and_bad_rows_failed() {
    let ws = Ws::new();
    ws.insert(
        "w1",
        2,
        "task",
        r#"{"prompt":"wake task"}"#,
        true,
        true,
        None,
    );
    ws.insert("bad", 4, "chat", "{oops", true, false, None);
    ws.insert("odd", 6, "telepathy", "{}", true, false, None);
    let mut r = ws.runner();
    assert!(r.poll_once().await.unwrap());
    assert!(ws.out()[0].2.contains("echo: wake task"));
    let failed = r.acked("failed").unwrap();
    assert!(failed.contains("bad") && failed.contains("odd"));
    // A later on_wake row is not taken by the same runner.
    ws.insert("w2", 8, "task", r#"{"prompt":"late"}"#, true, true, None);
    assert!(!r.poll_once().await.unwrap());
}

#[tokio::test]
async fn future_rows_wait_until_due_and_stale_acks_are_cleared() {
    let ws = Ws::new();
    let soon =
        nanoclaw_protocol::time::fmt(chrono::Utc::now() + chrono::Duration::milliseconds(300));
    ws.insert(
        "later",
        2,
        "chat",
        r#"{"text":"later"}"#,
        true,
        false,
        Some(&soon),
    );
    let mut r = ws.runner();
    assert!(!r.poll_once().await.unwrap());
    // Polled as the runner's loop does (no file changes in between) until the row is taken:
    // never before it is due, and by a deadline well past it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !r.poll_once().await.unwrap() {
        assert!(
            std::time::Instant::now() < deadline,
            "not taken once due, with no file change"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        nanoclaw_protocol::time::now() >= soon,
        "taken before it was due"
    );
    // A runner that died mid-turn left a 'processing' ack: a new runner clears it.
    let c = Connection::open(ws.dir.path().join("outbound.db")).unwrap();
    c.execute(
        "INSERT INTO processing_ack VALUES ('x', 'processing', 't')",
        [],
    )
    .unwrap();
    let r2 = ws.runner();
    assert!(!r2.acked("processing").unwrap().contains("x"));
}

#[tokio::test]
async fn task_pre_scripts_feed_the_agent_or_keep_it_asleep() {
    let ws = Ws::new();
    std::fs::create_dir_all(ws.dir.path().join("agent")).unwrap();
    ws.insert(
        "t1",
        2,
        "task",
        r#"{"prompt":"check","script":"echo price=42"}"#,
        true,
        false,
        None,
    );
    let mut r = ws.runner();
    assert!(r.poll_once().await.unwrap());
    // The mock echoes the prompt; the script output reached the formatter (checked in unit
    // tests); here: the turn ran and the row completed.
    assert!(ws.out()[0].2.contains("echo: check"));
    ws.insert(
        "t2",
        4,
        "task",
        r#"{"prompt":"check again","script":"echo '{\"wakeAgent\": false}'"}"#,
        true,
        false,
        None,
    );
    assert!(r.poll_once().await.unwrap());
    assert_eq!(ws.out().len(), 1, "no turn, no reply");
    assert!(r.acked("completed").unwrap().contains("t2"));
}
