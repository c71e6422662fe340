//! The `claude` provider against a fake `claude` executable speaking stream-json, which calls
//! a NanoClaw tool through `nanoclaw-agent mcp` (rmcp over stdio).
//! Needs testkit's `fake-claude` binary: `cargo test --workspace` builds it.

mod support;

use support::Ws;

#[tokio::test]
async fn claude_stream_json_with_mcp_tool_and_resume() {
    let ws = Ws::new();
    let log = ws.path().join("claude-argv.jsonl");
    // The MCP server process finds the session through the environment, like in a container.
    std::env::set_var("NANOCLAW_WORKSPACE", ws.path());
    std::env::set_var("NANOCLAW_AGENT_DIR", ws.agent());
    let mut r = ws.runner(ws.claude_cfg(&log));
    let id = ws.chat("hello claude");
    assert!(r.poll_once().await.unwrap());
    let out = ws.out();
    // The MCP tool's row, written by the `nanoclaw-agent mcp` process: odd seq, chat route.
    let progress = out
        .iter()
        .find(|o| o.content["text"] == "working on it")
        .expect("send_message via MCP");
    assert_eq!(progress.seq % 2, 1);
    assert_eq!(progress.channel_type.as_deref(), Some("cli"));
    let last = ws.last_text();
    assert!(
        last.starts_with("claude done (resumed=false, tools=17"),
        "{last}"
    );
    assert!(last.contains("mcp=sent (seq"), "{last}");
    assert_eq!(
        progress.in_reply_to.as_deref(),
        Some(id.as_str()),
        "the MCP server knows the turn it serves"
    );
    // The turn is withdrawn once it is over.
    let published: Option<String> = ws
        .outbound()
        .query_row(
            "SELECT value FROM session_state WHERE key = ?1",
            [nanoclaw_agent::mcp::TURN_KEY],
            |r| r.get(0),
        )
        .ok();
    assert_eq!(published, None);

    // A trigger from elsewhere than the default route (a group's thread): the MCP send goes
    // back there, as in the native loop (tests/brain.rs).
    let id = ws.insert_routed(
        "chat",
        serde_json::json!({"sender": "Ann", "senderId": "cli:local", "text": "in the thread"}),
        true,
        ("telegram", "telegram:-10042", Some("7")),
    );
    assert!(r.poll_once().await.unwrap());
    let out = ws.out();
    let sent = out
        .iter()
        .rev()
        .find(|o| o.content["text"] == "working on it")
        .unwrap();
    assert_eq!(sent.in_reply_to.as_deref(), Some(id.as_str()));
    assert_eq!(
        (
            sent.channel_type.as_deref(),
            sent.platform_id.as_deref(),
            sent.thread_id.as_deref()
        ),
        (Some("telegram"), Some("telegram:-10042"), Some("7"))
    );

    // The session id is kept: the next turn resumes it.
    ws.chat("again");
    assert!(r.poll_once().await.unwrap());
    assert!(
        ws.last_text().contains("resumed=true"),
        "{}",
        ws.last_text()
    );
    let argv: Vec<Vec<String>> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(argv.len(), 3);
    for a in &argv {
        for flag in [
            "-p",
            "--input-format",
            "--output-format",
            "--dangerously-skip-permissions",
            "--mcp-config",
        ] {
            assert!(a.contains(&flag.to_string()), "{flag} missing in {a:?}");
        }
        assert!(a.contains(&"stream-json".to_string()));
    }
    assert!(!argv[0].contains(&"--resume".to_string()));
    let i = argv[1]
        .iter()
        .position(|a| a == "--resume")
        .expect("--resume on the second turn");
    assert!(argv[1][i + 1].starts_with("fake-session-"));

    // /clear from an admin drops the session id: a fresh Claude session follows.
    ws.chat("/clear");
    assert!(r.poll_once().await.unwrap());
    ws.chat("fresh start");
    assert!(r.poll_once().await.unwrap());
    assert!(ws.last_text().contains("resumed=false"));

    // A failed run reaches the user as an error, acked failed.
    let id = ws.chat("fail-please");
    assert!(r.poll_once().await.unwrap());
    assert!(
        ws.last_text().contains("Claude Code failed"),
        "{}",
        ws.last_text()
    );
    assert_eq!(ws.ack_status(&id).as_deref(), Some("failed"));

    // A CLI that exits without a result (as it does refusing to run as root) is reported
    // with its own reason, in one line.
    let id = ws.chat("refuse-please");
    assert!(r.poll_once().await.unwrap());
    let last = ws.last_text();
    assert!(
        last.contains("Claude Code exited (exit status: 1): --dangerously-skip-permissions cannot be used with root/sudo privileges"),
        "{last}"
    );
    assert!(!last.contains('\n'), "{last}");
    assert_eq!(ws.ack_status(&id).as_deref(), Some("failed"));
}
