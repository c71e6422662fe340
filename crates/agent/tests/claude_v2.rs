//! The `claude` provider resumes the conversation NanoClaw v2's runner kept
//! (`session_state['continuation:claude']`), keeps it under that key, and adopts the keys used
//! before (ours, `claude_session_id`; v2's old `sdk_session_id`). Against the stream-json fake.
//! Its own test binary: it sets process-wide environment for the fake.

mod support;

use rusqlite::OptionalExtension;
use support::Ws;

fn resumed(log: &std::path::Path) -> Vec<Option<String>> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let a: Vec<String> = serde_json::from_str(l).unwrap();
            a.iter()
                .position(|x| x == "--resume")
                .map(|i| a[i + 1].clone())
        })
        .collect()
}

fn state(ws: &Ws, key: &str) -> Option<String> {
    ws.outbound()
        .query_row(
            "SELECT value FROM session_state WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .optional()
        .unwrap()
}

#[tokio::test]
async fn claude_resumes_v2s_continuation_and_adopts_legacy_keys() {
    // A v2 session: its conversation id under continuation:claude.
    let (ws, fx) = Ws::v2();
    let log = ws.path().join("argv.jsonl");
    std::env::set_var("NANOCLAW_WORKSPACE", ws.path());
    std::env::set_var("NANOCLAW_AGENT_DIR", ws.agent());
    let mut r = ws.runner(ws.claude_cfg(&log));
    assert!(r.poll_once().await.unwrap());
    assert_eq!(resumed(&log), vec![Some(fx.continuation.clone())]);
    assert!(
        ws.last_text().contains("resumed=true"),
        "{}",
        ws.last_text()
    );
    assert_eq!(
        state(&ws, "continuation:claude"),
        Some(fx.continuation.clone())
    );
    assert_eq!(state(&ws, "claude_session_id"), None);

    // A v2 conversation Claude Code cannot find here (its transcript is not in the Claude state
    // this runner sees): the turn runs fresh, once, and the new id replaces it.
    ws.outbound()
        .execute(
            "UPDATE session_state SET value = 'missing-v2-conv' WHERE key = 'continuation:claude'",
            [],
        )
        .unwrap();
    ws.inbound()
        .execute(
            "UPDATE messages_in SET status = 'completed' WHERE id = ?1",
            [&fx.pending_chats[0].0],
        )
        .unwrap();
    assert!(r.poll_once().await.unwrap());
    assert_eq!(
        resumed(&log)[1..],
        [Some("missing-v2-conv".to_string()), None],
        "tried, then fresh"
    );
    assert!(
        ws.last_text().contains("resumed=false"),
        "{}",
        ws.last_text()
    );
    assert!(state(&ws, "continuation:claude")
        .unwrap()
        .starts_with("fake-session-"));
    assert_eq!(
        ws.ack_status(&fx.pending_chats[1].0).as_deref(),
        Some("completed")
    );

    // Our old key (a folder an earlier version of ours ran) is adopted and dropped.
    let ws2 = Ws::new();
    let log2 = ws2.path().join("argv.jsonl");
    std::env::set_var("NANOCLAW_WORKSPACE", ws2.path());
    std::env::set_var("NANOCLAW_AGENT_DIR", ws2.agent());
    let mut r2 = ws2.runner(ws2.claude_cfg(&log2));
    ws2.outbound()
        .execute_batch(
            "INSERT INTO session_state(key, value, updated_at) VALUES
               ('claude_session_id', 'ours-before', 't'), ('sdk_session_id', 'v2-legacy', 't')",
        )
        .unwrap();
    ws2.chat("hello");
    assert!(r2.poll_once().await.unwrap());
    assert_eq!(resumed(&log2), vec![Some("ours-before".to_string())]);
    assert_eq!(
        state(&ws2, "continuation:claude").as_deref(),
        Some("ours-before")
    );
    assert_eq!(state(&ws2, "claude_session_id"), None);
    assert_eq!(state(&ws2, "sdk_session_id"), None);

    // v2's pre-per-provider key alone is adopted too; a fresh session starts without --resume
    // and keeps the new id under v2's key.
    ws2.outbound()
        .execute_batch(
            "DELETE FROM session_state;
             INSERT INTO session_state(key, value, updated_at) VALUES ('sdk_session_id', 'v2-legacy', 't')",
        )
        .unwrap();
    ws2.chat("again");
    assert!(r2.poll_once().await.unwrap());
    assert_eq!(
        resumed(&log2).last().cloned().flatten().as_deref(),
        Some("v2-legacy")
    );
    ws2.outbound()
        .execute_batch("DELETE FROM session_state")
        .unwrap();
    ws2.chat("fresh");
    assert!(r2.poll_once().await.unwrap());
    assert_eq!(resumed(&log2).last().cloned().flatten(), None);
    assert!(state(&ws2, "continuation:claude")
        .unwrap()
        .starts_with("fake-session-"));
}
