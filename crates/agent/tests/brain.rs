//! The native tool loop against the testkit's fake model APIs (real paths, SSE, error bodies),
//! on real session DBs: tool loops, retries, auth errors, compaction, resume, commands.

mod support;

use nanoclaw_testkit::fake_model::{FakeModel, Reply};
use serde_json::json;
use support::Ws;

fn cfg_for(ws: &Ws, fake: &FakeModel, provider: &str) -> nanoclaw_agent::Config {
    let mut c = ws.cfg(provider);
    c.anthropic_base_url = fake.anthropic_url();
    c.anthropic_api_key = Some("sk-test".into());
    c.openai_base_url = fake.openai_url();
    c.openai_api_key = Some("sk-test".into());
    c
}

async fn tool_loops(provider: &str) {
    let fake = FakeModel::start();
    let ws = Ws::new();
    std::fs::write(ws.agent().join("notes.txt"), "the code is 4711\n").unwrap();
    let mut r = ws.runner(cfg_for(&ws, &fake, provider));

    // read → answer
    fake.push([
        Reply::tool("read", json!({"path": "notes.txt"})),
        Reply::text("The code is 4711."),
    ]);
    ws.chat("what is the code?");
    assert!(r.poll_once().await.unwrap());
    assert_eq!(ws.last_text(), "The code is 4711.");
    let reqs = fake.received();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[0].tool_names().contains(&"bash".to_string()));
    assert!(reqs[0].last_user_text().contains("what is the code?"));
    assert!(
        reqs[1].last_user_text().contains("the code is 4711"),
        "tool result sent back: {}",
        reqs[1].last_user_text()
    );

    // bash → answer
    fake.push([
        Reply::tool("bash", json!({"command": "echo $((6*7))"})),
        Reply::text("42"),
    ]);
    ws.chat("compute");
    assert!(r.poll_once().await.unwrap());
    assert!(fake.received()[3].last_user_text().contains("42"));
    assert_eq!(ws.last_text(), "42");

    // edit a file → verify content
    fake.push([
        Reply::tool(
            "edit",
            json!({"path": "notes.txt", "old_string": "4711", "new_string": "1234"}),
        ),
        Reply::tool("read", json!({"path": "notes.txt"})),
        Reply::text("updated"),
    ]);
    ws.chat("change the code to 1234");
    assert!(r.poll_once().await.unwrap());
    assert_eq!(
        std::fs::read_to_string(ws.agent().join("notes.txt")).unwrap(),
        "the code is 1234\n"
    );
    assert!(fake.received()[6]
        .last_user_text()
        .contains("the code is 1234"));

    // A tool error (path outside the workspace) goes back to the model, not a crash.
    fake.push([
        Reply::tool("read", json!({"path": "../../../../etc/passwd"})),
        Reply::text("cannot"),
    ]);
    ws.chat("read passwd");
    assert!(r.poll_once().await.unwrap());
    let seen = fake.received()[8].last_user_text();
    assert!(seen.contains("outside the workspace"), "{seen}");
    assert_eq!(ws.last_text(), "cannot");
    // Every reply has an odd seq and the chat's routing.
    for o in ws.out() {
        assert_eq!(o.seq % 2, 1);
        assert_eq!(o.channel_type.as_deref(), Some("cli"));
    }
}

#[tokio::test]
async fn anthropic_tool_loops() {
    tool_loops("anthropic").await;
}

#[tokio::test]
async fn openai_tool_loops() {
    tool_loops("openai").await;
}

#[tokio::test]
async fn anthropic_request_shape_caching_and_headers() {
    let fake = FakeModel::start();
    let ws = Ws::new();
    std::fs::write(ws.agent().join("CLAUDE.md"), "You love tea.").unwrap();
    let mut r = ws.runner(cfg_for(&ws, &fake, "anthropic"));
    ws.chat("hi");
    assert!(r.poll_once().await.unwrap());
    let req = &fake.received()[0];
    assert_eq!(
        req.headers.get("x-api-key").map(String::as_str),
        Some("sk-test")
    );
    assert_eq!(
        req.headers.get("anthropic-version").map(String::as_str),
        Some("2023-06-01")
    );
    assert_eq!(req.body["stream"], true);
    assert_eq!(req.body["system"][0]["cache_control"]["type"], "ephemeral");
    let tools = req.body["tools"].as_array().unwrap();
    assert_eq!(tools.last().unwrap()["cache_control"]["type"], "ephemeral");
    assert!(req.body["system"][0]["text"]
        .as_str()
        .unwrap()
        .contains("You love tea."));
    // Routing fields never reach the model.
    assert!(!req.all_text().contains("\"local\""));
    assert!(req.last_user_text().contains("<messages"));
}

async fn overloaded_is_retried_and_401_is_reported_as_auth(provider: &str) {
    let fake = FakeModel::start();
    let ws = Ws::new();
    let mut r = ws.runner(cfg_for(&ws, &fake, provider));
    fake.push([
        Reply::error(529, "overloaded_error", "Overloaded"),
        Reply::error(500, "api_error", "Internal server error"),
        Reply::text("made it"),
    ]);
    ws.chat("hello");
    assert!(r.poll_once().await.unwrap());
    assert_eq!(ws.last_text(), "made it");
    assert_eq!(fake.received().len(), 3);

    fake.require_key("the-real-key");
    let id = ws.chat("hello again");
    assert!(r.poll_once().await.unwrap());
    let text = ws.last_text();
    assert!(text.contains("authentication problem"), "{text}");
    assert_eq!(fake.received().len(), 4, "a 401 is not retried");
    assert_eq!(ws.ack_status(&id).as_deref(), Some("failed"));
}

#[tokio::test]
async fn openai_401_is_reported_as_auth() {
    let fake = FakeModel::start();
    fake.require_key("the-real-key");
    let ws = Ws::new();
    let mut r = ws.runner(cfg_for(&ws, &fake, "openai"));
    ws.chat("hello");
    assert!(r.poll_once().await.unwrap());
    assert!(ws.last_text().contains("authentication problem"));
    assert_eq!(
        fake.received()[0]
            .headers
            .get("authorization")
            .map(String::as_str),
        Some("Bearer sk-test")
    );
}

#[tokio::test]
async fn anthropic_overloaded_retried_401_auth() {
    overloaded_is_retried_and_401_is_reported_as_auth("anthropic").await;
}

#[tokio::test]
async fn openai_overloaded_retried_401_auth() {
    overloaded_is_retried_and_401_is_reported_as_auth("openai").await;
}

async fn compaction_archives_and_summarises(provider: &str) {
    let fake = FakeModel::start();
    fake.respond_with(|req| {
        req.last_user_text()
            .starts_with("Summarise the conversation")
            .then(|| Reply::text("SUMMARY: Ann likes tea."))
    });
    let ws = Ws::new();
    let mut cfg = cfg_for(&ws, &fake, provider);
    cfg.context_limit = 400; // tokens: the first turn already crosses three quarters of it
    let mut r = ws.runner(cfg);
    ws.chat("I like tea. Remember that.");
    assert!(r.poll_once().await.unwrap());
    let reqs = fake.received();
    assert_eq!(reqs.len(), 2, "turn + summary request");
    assert!(reqs[1].tool_names().is_empty(), "no tools for the summary");
    let archive: Vec<_> = std::fs::read_dir(ws.agent().join("conversations"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(archive.len(), 1);
    let md = std::fs::read_to_string(archive[0].path()).unwrap();
    assert!(
        md.contains("I like tea"),
        "archive holds the full transcript"
    );
    ws.chat("what do I like?");
    assert!(r.poll_once().await.unwrap());
    let next = fake.received()[2].all_text();
    assert!(next.contains("SUMMARY: Ann likes tea."));
    assert!(
        !next.contains("Remember that."),
        "older turns replaced by the summary"
    );
}

#[tokio::test]
async fn anthropic_compaction() {
    compaction_archives_and_summarises("anthropic").await;
}

#[tokio::test]
async fn openai_compaction() {
    compaction_archives_and_summarises("openai").await;
}

async fn conversation_resumes_after_restart_and_clear_is_admin_only(provider: &str) {
    let fake = FakeModel::start();
    let ws = Ws::new();
    {
        let mut r = ws.runner(cfg_for(&ws, &fake, provider));
        ws.chat("my name is Ann");
        assert!(r.poll_once().await.unwrap());
    }
    // A new runner process (same session folder) continues the same conversation.
    let mut r = ws.runner(cfg_for(&ws, &fake, provider));
    ws.chat("what is my name?");
    assert!(r.poll_once().await.unwrap());
    assert!(fake.received()[1].all_text().contains("my name is Ann"));

    // A non-admin cannot clear.
    ws.chat_from("telegram:99", "/clear");
    assert!(r.poll_once().await.unwrap());
    assert!(ws.last_text().contains("admin"), "{}", ws.last_text());
    assert_eq!(
        fake.received().len(),
        2,
        "a refused command never reaches the model"
    );
    // An admin can; the next request starts fresh.
    ws.chat("/clear");
    assert!(r.poll_once().await.unwrap());
    assert!(ws.last_text().contains("cleared"));
    ws.chat("hello");
    assert!(r.poll_once().await.unwrap());
    let fresh = fake.received()[2].all_text();
    assert!(!fresh.contains("my name is Ann"), "{fresh}");
    // Filtered commands are dropped silently.
    let n = ws.out().len();
    ws.chat("/login");
    assert!(r.poll_once().await.unwrap());
    assert_eq!(ws.out().len(), n);
}

#[tokio::test]
async fn anthropic_resume_and_clear() {
    conversation_resumes_after_restart_and_clear_is_admin_only("anthropic").await;
}

#[tokio::test]
async fn openai_resume_and_clear() {
    conversation_resumes_after_restart_and_clear_is_admin_only("openai").await;
}

#[tokio::test]
async fn messages_during_a_turn_join_it_and_max_steps_guard() {
    let fake = FakeModel::start();
    let ws = Ws::new();
    let mut cfg = cfg_for(&ws, &fake, "anthropic");
    cfg.max_steps = 3;
    let inbound = ws.path().join("inbound.db");
    // While the first tool step runs, the "host" writes another message.
    let hook = std::sync::Mutex::new(Some(inbound));
    fake.respond_with(move |req| {
        if req.last_user_text().contains("first") {
            if let Some(p) = hook.lock().unwrap().take() {
                let c = rusqlite::Connection::open(p).unwrap();
                c.execute("INSERT INTO messages_in(id, seq, kind, timestamp, content, trigger) VALUES ('late', 1000, 'chat', '2026-01-01T00:00:00.000Z', '{\"sender\":\"Ann\",\"text\":\"also buy milk\"}', 1)", []).unwrap();
            }
        }
        Some(Reply::tool("bash", json!({"command": "true"})))
    });
    let mut r = ws.runner(cfg);
    ws.chat("first");
    assert!(r.poll_once().await.unwrap());
    let reqs = fake.received();
    assert_eq!(reqs.len(), 3, "stopped at max_steps");
    assert!(
        reqs[1].last_user_text().contains("also buy milk"),
        "late message joined the running turn"
    );
    assert!(ws.last_text().contains("tool steps"));
    assert_eq!(ws.ack_status("late").as_deref(), Some("completed"));
    assert!(
        !r.poll_once().await.unwrap(),
        "the late message is not a new turn"
    );
}

#[tokio::test]
async fn answers_routed_to_destinations_and_internal_dropped() {
    let fake = FakeModel::start();
    let ws = Ws::new();
    ws.destination(
        "family",
        "channel",
        Some("telegram"),
        Some("telegram:-100"),
        None,
    );
    fake.push([Reply::text(
        "<internal>plan</internal>Done.<message to=\"family\">Dinner at 7</message>",
    )]);
    let mut r = ws.runner(cfg_for(&ws, &fake, "anthropic"));
    ws.chat("tell the family");
    assert!(r.poll_once().await.unwrap());
    let out = ws.out();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].content["text"], "Done.");
    assert_eq!(out[0].platform_id.as_deref(), Some("local"));
    assert_eq!(out[1].content["text"], "Dinner at 7");
    assert_eq!(out[1].platform_id.as_deref(), Some("telegram:-100"));
    assert!(fake.received()[0].body["system"][0]["text"]
        .as_str()
        .unwrap()
        .contains("family"));
}

#[tokio::test]
async fn external_mcp_server_tools_join_the_native_loop() {
    let fake = FakeModel::start();
    let ws = Ws::new();
    let mut cfg = cfg_for(&ws, &fake, "anthropic");
    // Any stdio MCP server will do; the runner's own `mcp` mode is one at hand.
    cfg.mcp_servers = Some(
        json!({"nano": {"command": env!("CARGO_BIN_EXE_nanoclaw-agent"), "args": ["mcp"],
            "env": {"NANOCLAW_WORKSPACE": ws.path(), "NANOCLAW_AGENT_DIR": ws.agent()}}, "broken": {"command": "/nonexistent"}})
        .to_string(),
    );
    let mut r = ws.runner(cfg);
    r.connect_external().await;
    fake.push([
        Reply::tool(
            "mcp__nano__send_message",
            json!({"text": "via external MCP"}),
        ),
        Reply::text("done"),
    ]);
    ws.chat("use the external tool");
    assert!(r.poll_once().await.unwrap());
    let first = &fake.received()[0];
    assert!(first
        .tool_names()
        .contains(&"mcp__nano__send_message".to_string()));
    assert!(fake.received()[1].last_user_text().contains("sent (seq"));
    assert!(ws
        .out()
        .iter()
        .any(|o| o.content["text"] == "via external MCP"));
    assert_eq!(ws.last_text(), "done");
}

#[tokio::test]
async fn images_go_to_the_model_as_native_blocks() {
    let fake = FakeModel::start();
    let ws = Ws::new();
    std::fs::create_dir_all(ws.path().join("inbox/m1")).unwrap();
    std::fs::write(ws.path().join("inbox/m1/cat.png"), b"\x89PNG fake").unwrap();
    let mut r = ws.runner(cfg_for(&ws, &fake, "anthropic"));
    ws.insert(
        "chat",
        json!({"sender": "Ann", "senderId": "cli:local", "text": "what is this?",
            "attachments": [{"name": "cat.png", "path": "inbox/m1/cat.png", "mimeType": "image/png", "size": 9}]}),
        true,
    );
    assert!(r.poll_once().await.unwrap());
    let req = &fake.received()[0];
    let content = req.body["messages"][0]["content"].as_array().unwrap();
    assert_eq!(content[0]["type"], "image");
    assert_eq!(content[0]["source"]["media_type"], "image/png");
    assert!(content[1]["text"]
        .as_str()
        .unwrap()
        .contains("path=\"inbox/m1/cat.png\""));
}

#[tokio::test]
async fn compact_command_from_an_admin() {
    let fake = FakeModel::start();
    fake.respond_with(|req| {
        req.last_user_text()
            .starts_with("Summarise the conversation")
            .then(|| Reply::text("SUMMARY: short"))
    });
    let ws = Ws::new();
    let mut r = ws.runner(cfg_for(&ws, &fake, "anthropic"));
    ws.chat("remember the blue door");
    assert!(r.poll_once().await.unwrap());
    ws.chat_from("telegram:99", "/compact");
    assert!(r.poll_once().await.unwrap());
    assert!(ws.last_text().contains("admin"));
    ws.chat("/compact");
    assert!(r.poll_once().await.unwrap());
    assert!(
        ws.last_text().starts_with("Conversation compacted"),
        "{}",
        ws.last_text()
    );
    assert_eq!(
        std::fs::read_dir(ws.agent().join("conversations"))
            .unwrap()
            .count(),
        1
    );
    ws.chat("next");
    assert!(r.poll_once().await.unwrap());
    let last = fake.received().last().unwrap().all_text();
    assert!(last.contains("SUMMARY: short") && !last.contains("remember the blue door"));
}

/// A tool send during a turn carries the turn: `in_reply_to` is the trigger (so `chat -m`
/// shows it) and the route is the trigger's, not the session's default (so an answer to a
/// thread or another agent goes back there). The same facts under the claude provider:
/// tests/claude.rs.
#[tokio::test]
async fn a_tool_send_during_a_turn_carries_the_trigger_route_and_reply_to() {
    let fake = FakeModel::start();
    let ws = Ws::new();
    let mut r = ws.runner(cfg_for(&ws, &fake, "anthropic"));
    fake.push([
        Reply::tool("send_message", json!({"text": "working on it"})),
        Reply::text("done"),
    ]);
    let id = ws.insert_routed(
        "chat",
        json!({"sender": "Ann", "senderId": "cli:local", "text": "in the thread"}),
        true,
        ("telegram", "telegram:-10042", Some("7")),
    );
    assert!(r.poll_once().await.unwrap());
    let out = ws.out();
    let sent = out
        .iter()
        .find(|o| o.content["text"] == "working on it")
        .expect("the tool's row");
    assert_eq!(sent.in_reply_to.as_deref(), Some(id.as_str()));
    assert_eq!(sent.channel_type.as_deref(), Some("telegram"));
    assert_eq!(sent.platform_id.as_deref(), Some("telegram:-10042"));
    assert_eq!(sent.thread_id.as_deref(), Some("7"));
}
