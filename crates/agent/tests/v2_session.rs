//! The runner in a session folder NanoClaw v2.0.64 made and left mid-conversation: its rows are
//! read, formatted and answered, seq parity continues above v2's, its history and tasks stay
//! as they are, and the agent's memory (`CLAUDE.local.md`) is in its prompt.

mod support;

use nanoclaw_agent::store::Store;
use nanoclaw_agent::tools::{Set, Toolbox};
use rusqlite::OptionalExtension;
use support::Ws;

#[tokio::test]
async fn a_v2_session_continues_under_our_runner() {
    let (ws, fx) = Ws::v2();
    let history_acks: Vec<(String, String)> = {
        let c = ws.outbound();
        let mut st = c
            .prepare("SELECT message_id, status FROM processing_ack ORDER BY message_id")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let mut r = ws.runner(ws.cfg("mock"));
    // One turn per pending v2 message, oldest first (a chat-sdk row, then a chat row).
    for (id, text) in &fx.pending_chats {
        assert!(r.poll_once().await.unwrap(), "a turn for {id}");
        let last = ws.out().pop().unwrap();
        assert_eq!(last.content["text"], format!("echo: {text}"));
        assert_eq!(last.in_reply_to.as_deref(), Some(id.as_str()));
        assert_eq!(last.channel_type.as_deref(), Some("cli"));
        assert_eq!(ws.ack_status(id).as_deref(), Some("completed"));
        // The host's ack sync (which is also what makes the runner look again).
        ws.inbound()
            .execute(
                "UPDATE messages_in SET status = 'completed' WHERE id = ?1",
                [id],
            )
            .unwrap();
    }
    assert!(!r.poll_once().await.unwrap(), "nothing else is due");
    // Our rows continue v2's numbering with the runner's parity.
    let ours: Vec<_> = ws
        .out()
        .into_iter()
        .filter(|o| !fx.outbound_ids.contains(&o.id))
        .collect();
    assert_eq!(ours.len(), fx.pending_chats.len());
    for o in &ours {
        assert_eq!(o.seq % 2, 1, "runner seqs are odd");
        assert!(
            o.seq > fx.max_seq,
            "{} not above v2's {}",
            o.seq,
            fx.max_seq
        );
    }
    // v2's rows are untouched: its outbound history, acks, tasks and the conversation id.
    let v2_out: Vec<String> = ws
        .out()
        .into_iter()
        .filter(|o| fx.outbound_ids.contains(&o.id))
        .map(|o| o.id)
        .collect();
    assert_eq!(v2_out.len(), fx.outbound_ids.len());
    for (id, status) in &history_acks {
        assert_eq!(ws.ack_status(id).as_deref(), Some(status.as_str()), "{id}");
    }
    for (id, ..) in &fx.tasks {
        assert_eq!(ws.ack_status(id), None, "task {id} was not taken");
    }
    let cont: Option<String> = ws
        .outbound()
        .query_row(
            "SELECT value FROM session_state WHERE key = 'continuation:claude'",
            [],
            |r| r.get(0),
        )
        .optional()
        .unwrap();
    assert_eq!(cont.as_deref(), Some(fx.continuation.as_str()));
}

/// A row v2's host put in backoff (`datetime('now', '+N seconds')`, SQLite's format) waits for
/// its time: the two formats are compared as instants.
#[tokio::test]
async fn v2_backoff_times_are_honoured() {
    let (ws, fx) = Ws::v2();
    let later = (chrono::Utc::now() + chrono::Duration::hours(1))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    for (id, _) in &fx.pending_chats {
        ws.inbound()
            .execute(
                "UPDATE messages_in SET process_after = ?2, tries = 1 WHERE id = ?1",
                [id, &later],
            )
            .unwrap();
    }
    let mut r = ws.runner(ws.cfg("mock"));
    assert!(
        !r.poll_once().await.unwrap(),
        "a row in backoff until {later} is not due yet"
    );
}

#[test]
fn the_prompt_has_the_agents_memory_and_skips_v2s_composed_claude_md() {
    let (ws, _) = Ws::v2();
    let cfg = ws.cfg("mock");
    let store = Store::open(ws.path()).unwrap().shared();
    let tb = Toolbox::new(&cfg, store, Set::All);
    // No memory yet: the agent is still told where it lives.
    let p = nanoclaw_agent::prompt::system(&cfg, &tb);
    assert!(p.contains("CLAUDE.local.md"), "{p}");
    assert!(p.contains("It is empty so far"), "{p}");
    // v2's composed entry point (imports of container paths) and the memory beside it.
    std::fs::write(
        ws.agent().join("CLAUDE.md"),
        "<!-- Composed at spawn — do not edit. Edit CLAUDE.local.md for per-group content. -->\n\
         @./.claude-shared.md\n@./.claude-fragments/module-core.md\n",
    )
    .unwrap();
    std::fs::write(
        ws.agent().join("CLAUDE.local.md"),
        "# Memory\n- Ann likes green tea\n",
    )
    .unwrap();
    let p = nanoclaw_agent::prompt::system(&cfg, &tb);
    assert!(p.contains("- Ann likes green tea"), "{p}");
    assert!(p.contains(&ws.agent().join("CLAUDE.local.md").display().to_string()));
    assert!(p.contains("you may edit it"), "{p}");
    assert!(!p.contains("@./.claude-shared.md"), "{p}");
    assert!(!p.contains("Composed at spawn"), "{p}");
    // Our own CLAUDE.md (instructions written for this agent) still comes first.
    std::fs::write(ws.agent().join("CLAUDE.md"), "You are the tea butler.\n").unwrap();
    std::fs::create_dir_all(ws.path().join("global")).unwrap();
    std::fs::write(ws.path().join("global/CLAUDE.md"), "Be kind.\n").unwrap();
    let p = nanoclaw_agent::prompt::system(&cfg, &tb);
    let (g, a, m) = (
        p.find("Be kind.").unwrap(),
        p.find("tea butler").unwrap(),
        p.find("Ann likes green tea").unwrap(),
    );
    assert!(g < a && a < m, "{p}");
    // A runaway memory file is capped.
    std::fs::write(ws.agent().join("CLAUDE.local.md"), "x".repeat(200_000)).unwrap();
    let p = nanoclaw_agent::prompt::system(&cfg, &tb);
    assert!(p.len() < 100_000);
    assert!(p.contains("only its beginning is shown"));
}
