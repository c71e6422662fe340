//! Move in (issue 10): a session NanoClaw v2.0.64 wrote (its DDL, its rows: history, tasks,
//! replies it never delivered, messages its runner never took) continues under our host and
//! runner, the real binaries: same session id, seq parity continued above v2's, history and
//! tasks untouched, v2's unsent rows delivered or acted on, v2's pending messages answered.

use std::time::Duration;

use nanoclaw_testkit::{eventually, v2_session as v2, TestHome};
use rusqlite::{Connection, OptionalExtension};

fn said(home: &TestHome, text: &str) -> bool {
    home.transcript()
        .iter()
        .any(|l| l.to_string().contains(text))
}

#[test]
fn a_v2_session_continues_unchanged() {
    continues_unchanged(TestHome::new());
}

/// The same in a container: v2's files reach the runner through the mounts (inbound.db
/// read-only) and the hand-over to the container's user.
#[test]
fn a_v2_session_continues_unchanged_in_docker() {
    if !nanoclaw_testkit::docker::engine() {
        return;
    }
    nanoclaw_testkit::docker::slim_image();
    continues_unchanged(TestHome::new().env("NANOCLAW_RUNTIME", "docker"));
}

fn continues_unchanged(home: TestHome) {
    // Our host makes the terminal's session (the central DB is not this test's subject)...
    let host = home.start_host(&[]);
    let o = home.run(&["chat", "-m", "hi", "--timeout", "30"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    drop(host);
    let dir = home.session_dirs().pop().expect("the terminal's session");
    let ag = home.main_group();
    // ...whose folder then holds what v2 left there: its DDL, its rows, its runner's state.
    let fx = v2::write_session(&dir, &ag, "cli", "local");

    let host = home.start_host(&[]);
    // v2's undelivered replies go out (a card as its fallback text on the terminal), and the
    // messages its runner never took are answered, in order.
    let wanted: Vec<String> = fx
        .unsent
        .iter()
        .map(|(_, t)| t.clone())
        .chain(fx.pending_chats.iter().map(|(_, t)| format!("echo: {t}")))
        .collect();
    let all = eventually(Duration::from_secs(30), || {
        wanted.iter().all(|w| said(&home, w)).then_some(())
    });
    assert!(
        all.is_some(),
        "wanted {wanted:?} in the transcript: {:?}",
        home.transcript()
    );
    // The question v2's runner asked is answered by number; the agent gets its own id back.
    let o = home.run(&["chat", "-m", "2", "--timeout", "30"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let answer: String = eventually(Duration::from_secs(10), || {
        Connection::open(dir.join("inbound.db"))
            .ok()?
            .query_row(
                "SELECT content FROM messages_in WHERE json_extract(content, '$.questionId') = ?1",
                [&fx.question],
                |r| r.get(0),
            )
            .ok()
    })
    .expect("the answer reaches the session with the agent's question id");
    assert!(answer.contains("\"selectedOption\":\"black\""), "{answer}");
    // The conversation goes on in the same session.
    let o = home.run(&["chat", "-m", "after the move", "--timeout", "30"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("echo: after the move"));
    // At rest but for the tasks due in the future (which keep `TestHome::at_rest` false): every
    // outbound row has its fate, every message its answer.
    let settled = || -> Option<()> {
        let inb = Connection::open(dir.join("inbound.db")).ok()?;
        let open: i64 = inb
            .query_row(
                "SELECT COUNT(*) FROM messages_in WHERE kind != 'task' AND status IN ('pending', 'processing')",
                [],
                |r| r.get(0),
            )
            .ok()?;
        inb.execute(
            "ATTACH DATABASE ?1 AS ob",
            [dir.join("outbound.db").to_str()?],
        )
        .ok()?;
        let unsent: i64 = inb
            .query_row(
                "SELECT COUNT(*) FROM ob.messages_out o
                 WHERE NOT EXISTS (SELECT 1 FROM delivered d WHERE d.message_out_id = o.id)",
                [],
                |r| r.get(0),
            )
            .ok()?;
        (open == 0 && unsent == 0).then_some(())
    };
    assert!(
        eventually(Duration::from_secs(20), settled).is_some(),
        "the session settles"
    );
    assert_eq!(
        home.session_dirs(),
        vec![dir.clone()],
        "same session, same id"
    );
    drop(host);

    let inb = Connection::open(dir.join("inbound.db")).unwrap();
    let out = Connection::open(dir.join("outbound.db")).unwrap();
    // History intact: every v2 row is still there.
    for id in &fx.inbound_ids {
        let n: i64 = inb
            .query_row(
                "SELECT COUNT(*) FROM messages_in WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "inbound {id}");
    }
    for id in &fx.outbound_ids {
        let n: i64 = out
            .query_row(
                "SELECT COUNT(*) FROM messages_out WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "outbound {id}");
    }
    // Pending, paused and recurring tasks untouched.
    for (id, status, after, recurrence) in &fx.tasks {
        let row: (String, String, Option<String>) = inb
            .query_row(
                "SELECT status, process_after, recurrence FROM messages_in WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            row,
            (status.clone(), after.clone(), recurrence.clone()),
            "task {id}"
        );
    }
    // The recurring task v2's runner finished goes on: one next occurrence, same series.
    let next: Vec<(String, String, Option<String>)> = {
        let mut st = inb
            .prepare(
                "SELECT status, process_after, recurrence FROM messages_in
                 WHERE series_id = ?1 AND id != ?1",
            )
            .unwrap();
        st.query_map([&fx.rearm], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    // (A missed run may have been made up once since; then its own next one waits.)
    let pending: Vec<_> = next.iter().filter(|n| n.0 == "pending").collect();
    assert_eq!(pending.len(), 1, "{next:?}");
    assert_eq!(pending[0].2.as_deref(), Some("0 7 * * *"));
    assert!(pending[0].1.as_str() > "2026-11-30T07:00:00.000Z");
    assert!(next.len() <= 2, "{next:?}");
    // v2's unsent rows were each delivered once; its schedule_task request became a task.
    for (id, _) in &fx.unsent {
        let st: Option<String> = inb
            .query_row(
                "SELECT status FROM delivered WHERE message_out_id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()
            .unwrap();
        assert_eq!(st.as_deref(), Some("delivered"), "{id}");
    }
    for (_, text) in &fx.unsent {
        let times = home
            .transcript()
            .iter()
            .filter(|l| l.to_string().contains(text.as_str()))
            .count();
        assert_eq!(times, 1, "{text} sent once");
    }
    let task: (String, i64, String, String) = inb
        .query_row(
            "SELECT status, seq, process_after, content FROM messages_in WHERE kind = 'task' AND series_id = ?1",
            [&fx.unsent_schedule],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("v2's schedule_task request is a task now");
    assert_eq!(task.0, "pending");
    assert_eq!(task.2, "2099-03-01T10:00:00.000Z");
    assert!(task.3.contains("buy more tea"));
    // seq continues with parity above v2's: host rows even, runner rows odd.
    let seqs = |c: &Connection, table: &str, ids: &[String]| -> Vec<i64> {
        let mut st = c
            .prepare(&format!("SELECT id, seq FROM {table} ORDER BY seq"))
            .unwrap();
        st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .filter(|(id, _)| !ids.contains(id))
            .map(|(_, s)| s)
            .collect()
    };
    let new_in = seqs(&inb, "messages_in", &fx.inbound_ids);
    let new_out = seqs(&out, "messages_out", &fx.outbound_ids);
    assert!(
        new_in.len() >= 2 && new_out.len() >= 3,
        "{new_in:?} {new_out:?}"
    );
    assert!(
        new_in.iter().all(|s| s % 2 == 0 && *s > fx.max_seq),
        "{new_in:?}"
    );
    assert!(
        new_out.iter().all(|s| s % 2 == 1 && *s > fx.max_seq),
        "{new_out:?}"
    );
    // v2's runner state is kept (a v2 runner pointed back resumes its conversation).
    let cont: String = out
        .query_row(
            "SELECT value FROM session_state WHERE key = 'continuation:claude'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(cont, fx.continuation);
}

/// v2 rows no version understands (an unknown kind, broken JSON, an operation from the future)
/// are audited drops with a log line, and the session goes on.
#[test]
fn v2_rows_we_cannot_understand_are_audited_not_stalled() {
    let home = TestHome::new();
    let host = home.start_host(&[]);
    let o = home.run(&["chat", "-m", "hi", "--timeout", "30"]);
    assert!(o.status.success());
    drop(host);
    let dir = home.session_dirs().pop().unwrap();
    let ag = home.main_group();
    let fx = v2::write_session(&dir, &ag, "cli", "local");
    {
        let out = Connection::open(dir.join("outbound.db")).unwrap();
        out.execute_batch(&format!(
            "INSERT INTO messages_out (id, seq, timestamp, kind, platform_id, channel_type, content) VALUES
               ('odd-1', {s1}, datetime('now'), 'telepathy', 'local', 'cli', '{{\"text\":\"?\"}}'),
               ('odd-2', {s2}, datetime('now'), 'chat', 'local', 'cli', '{{not json'),
               ('odd-3', {s3}, datetime('now'), 'chat-sdk', 'local', 'cli', '{{\"operation\":\"teleport\"}}');",
            s1 = fx.max_seq + 1,
            s2 = fx.max_seq + 3,
            s3 = fx.max_seq + 5,
        ))
        .unwrap();
        let inb = Connection::open(dir.join("inbound.db")).unwrap();
        inb.execute(
            "INSERT INTO messages_in (id, seq, kind, timestamp, status, content, trigger, platform_id, channel_type)
             VALUES ('weird-in', ?1, 'hologram', datetime('now'), 'pending', '{}', 1, 'local', 'cli')",
            [fx.max_seq + 7],
        )
        .unwrap();
    }
    let host = home.start_host(&[]);
    let o = home.run(&["chat", "-m", "still fine?", "--timeout", "30"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("echo: still fine?"));
    let inb = Connection::open(dir.join("inbound.db")).unwrap();
    for id in ["odd-1", "odd-2", "odd-3"] {
        let st: Option<String> = eventually(Duration::from_secs(20), || {
            inb.query_row(
                "SELECT status FROM delivered WHERE message_out_id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()
            .unwrap()
        });
        assert_eq!(st.as_deref(), Some("failed"), "{id} recorded failed");
    }
    let weird: Option<String> = eventually(Duration::from_secs(20), || {
        Connection::open(dir.join("outbound.db"))
            .unwrap()
            .query_row(
                "SELECT status FROM processing_ack WHERE message_id = 'weird-in'",
                [],
                |r| r.get(0),
            )
            .optional()
            .unwrap()
    });
    assert_eq!(weird.as_deref(), Some("failed"), "the runner skipped it");
    let log = host.stop();
    assert!(log.contains("outbound row dropped"), "{log}");
}

/// v2's runner wrote edits and reactions with the platform's message id already resolved
/// (`messageId: "102"` from `delivered`, or an inbound row id `<platform id>:<agent group>`):
/// left unsent at switchover, they still reach the right Telegram messages.
#[test]
fn v2_edits_and_reactions_reach_the_right_telegram_messages() {
    use nanoclaw_testkit::fake_telegram::FakeTelegram;
    const TOKEN: &str = "123:v2-edits";
    let fake = FakeTelegram::start(TOKEN);
    let home = TestHome::new().telegram(&fake);
    let _host = home.start_host(&[]);
    home.wire_telegram(555, false, "public", "mention", "shared");
    fake.message(555, "private", 42, "hello", None);
    let reply = fake.wait_replies(555, 1).remove(0);
    let reply_mid = reply["_message_id"].as_i64().unwrap();
    let dir = home.session_dirs().remove(0);
    let ag = home.main_group();
    // A message of the chat as v2's router recorded it (id namespaced by agent group, no
    // platformMessageId in its content), written as the host would.
    {
        let inb = Connection::open(dir.join("inbound.db")).unwrap();
        inb.busy_timeout(Duration::from_secs(5)).unwrap();
        inb.execute(
            "INSERT INTO messages_in (id, seq, kind, timestamp, status, platform_id, channel_type, content, series_id)
             VALUES (?1, 1000, 'chat-sdk', '2026-11-30T08:00:00.000Z', 'completed', 'telegram:555', 'telegram',
                     '{\"text\":\"old\",\"sender\":\"Ann\",\"senderId\":\"42\"}', ?1)",
            [format!("77:{ag}")],
        )
        .unwrap();
    }
    let pmid = reply_mid.to_string();
    let v2_id = format!("77:{ag}");
    for (id, content) in [
        (
            "v2-edit",
            serde_json::json!({"operation": "edit", "messageId": pmid, "text": "edited by v2"}),
        ),
        (
            "v2-react",
            serde_json::json!({"operation": "reaction", "messageId": v2_id, "emoji": "👍"}),
        ),
    ] {
        nanoclaw_testkit::runner_insert(&dir, id, "telegram", "telegram:555", &content, &[]);
    }
    let edit = eventually(Duration::from_secs(10), || {
        fake.calls("editMessageText").into_iter().next()
    })
    .expect("edit sent");
    assert_eq!(edit["text"], "edited by v2");
    assert_eq!(edit["message_id"], reply_mid);
    let reaction = eventually(Duration::from_secs(10), || {
        fake.calls("setMessageReaction").into_iter().next()
    })
    .expect("reaction sent");
    assert_eq!(
        reaction["message_id"], 77,
        "v2's inbound row id names Telegram message 77"
    );
}
