//! Every NanoClaw tool: the messages_out row it writes (kind, routing, content shape, odd seq)
//! and its error for a bad destination or a path outside the workspace. Plus built-in tool edges.

mod support;

use std::sync::Arc;
use std::time::Duration;

use nanoclaw_agent::store::{Route, Store};
use nanoclaw_agent::tools::{Set, ToolOutput, Toolbox, TurnInfo};
use serde_json::{json, Value};
use support::{Out, Ws};

fn toolbox(ws: &Ws) -> Arc<Toolbox> {
    let store = Store::open(ws.path()).unwrap().shared();
    let tb = Toolbox::new(&ws.cfg("mock"), store, Set::All);
    tb.set_turn(TurnInfo {
        route: Route {
            channel_type: Some("telegram".into()),
            platform_id: Some("telegram:5".into()),
            thread_id: Some("77".into()),
        },
        in_reply_to: Some("in-1".into()),
    });
    Arc::new(tb)
}

fn ws_with_dests() -> Ws {
    let ws = Ws::new();
    ws.destination(
        "family",
        "channel",
        Some("telegram"),
        Some("telegram:-100"),
        None,
    );
    ws.destination("helper", "agent", None, None, Some("ag-helper"));
    ws
}

async fn ok(tb: &Toolbox, name: &str, input: Value) -> String {
    let o = tb.call(name, &input).await;
    assert!(!o.is_error, "{name} failed: {}", o.text);
    o.text
}

async fn err(tb: &Toolbox, name: &str, input: Value) -> String {
    let o: ToolOutput = tb.call(name, &input).await;
    assert!(o.is_error, "{name} should fail: {}", o.text);
    o.text
}

fn last(ws: &Ws) -> Out {
    let o = ws.out().pop().expect("a row");
    assert_eq!(o.seq % 2, 1, "runner rows have odd seqs");
    o
}

/// Plays the host: answers every system request with `status`/`result` (echoing requestId).
fn host_answers(ws: &Ws, status: &'static str, result: Value) -> std::thread::JoinHandle<()> {
    let dir = ws.path().to_path_buf();
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_millis(1500);
        let mut answered = std::collections::HashSet::new();
        while std::time::Instant::now() < deadline {
            if let Ok(c) = rusqlite::Connection::open(dir.join("outbound.db")) {
                let rows: Vec<String> = c
                    .prepare("SELECT content FROM messages_out WHERE kind='system'")
                    .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
                    .unwrap_or_default();
                for r in rows {
                    let v: Value = serde_json::from_str(&r).unwrap();
                    let req = v["payload"]["requestId"].as_str().unwrap().to_string();
                    if answered.insert(req.clone()) {
                        let inb = rusqlite::Connection::open(dir.join("inbound.db")).unwrap();
                        let seq: i64 = inb
                            .query_row("SELECT COALESCE(MAX(seq),0)+2 FROM messages_in", [], |r| {
                                r.get(0)
                            })
                            .unwrap();
                        let content = json!({"action": v["action"], "status": status, "result": result, "requestId": req});
                        inb.execute(
                            "INSERT INTO messages_in(id, seq, kind, timestamp, content) VALUES (?1, ?2, 'system', '2026-01-01T00:00:00.000Z', ?3)",
                            rusqlite::params![format!("sys-{seq}"), seq * 1000, content.to_string()],
                        )
                        .unwrap();
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

#[tokio::test]
async fn send_message_default_and_named_and_bad_destination() {
    let ws = ws_with_dests();
    let tb = toolbox(&ws);
    ok(&tb, "send_message", json!({"text": "on my way"})).await;
    let o = last(&ws);
    assert_eq!(
        (o.kind.as_str(), o.content["text"].as_str()),
        ("chat", Some("on my way"))
    );
    assert_eq!(o.platform_id.as_deref(), Some("telegram:5"));
    assert_eq!(o.thread_id.as_deref(), Some("77"));
    assert_eq!(o.in_reply_to.as_deref(), Some("in-1"));
    ok(
        &tb,
        "send_message",
        json!({"text": "hi all", "to": "family"}),
    )
    .await;
    let o = last(&ws);
    assert_eq!(
        (o.channel_type.as_deref(), o.platform_id.as_deref()),
        (Some("telegram"), Some("telegram:-100"))
    );
    let e = err(&tb, "send_message", json!({"text": "x", "to": "strangers"})).await;
    assert!(
        e.contains("unknown destination") && e.contains("family"),
        "{e}"
    );
    err(&tb, "send_message", json!({"text": "  "})).await;
    assert_eq!(ws.out().len(), 2);
}

#[tokio::test]
async fn send_file_copies_into_outbox_and_refuses_outside_paths() {
    let ws = ws_with_dests();
    let tb = toolbox(&ws);
    std::fs::write(ws.agent().join("report.pdf"), b"%PDF-1.4 data").unwrap();
    ok(
        &tb,
        "send_file",
        json!({"path": "report.pdf", "text": "here", "filename": "May.pdf"}),
    )
    .await;
    let o = last(&ws);
    assert_eq!(o.content["files"], json!(["May.pdf"]));
    assert_eq!(o.content["text"], "here");
    let copied = ws.path().join("outbox").join(&o.id).join("May.pdf");
    assert_eq!(std::fs::read(copied).unwrap(), b"%PDF-1.4 data");
    assert!(err(&tb, "send_file", json!({"path": "/etc/passwd"}))
        .await
        .contains("outside the workspace"));
    assert!(err(
        &tb,
        "send_file",
        json!({"path": "report.pdf", "filename": "../x"})
    )
    .await
    .contains("invalid"));
    assert!(err(
        &tb,
        "send_file",
        json!({"path": "report.pdf", "to": "nobody"})
    )
    .await
    .contains("unknown destination"));
    assert_eq!(ws.out().len(), 1);
}

#[tokio::test]
async fn edit_and_reaction_reference_existing_seqs() {
    let ws = ws_with_dests();
    let tb = toolbox(&ws);
    ok(&tb, "send_message", json!({"text": "draft"})).await;
    let sent = last(&ws).seq;
    ok(&tb, "edit_message", json!({"seq": sent, "text": "final"})).await;
    let o = last(&ws);
    assert_eq!(
        o.content,
        json!({"operation": "edit", "messageId": sent, "text": "final"})
    );
    let inbound = ws.chat("hello");
    let in_seq: i64 = ws
        .inbound()
        .query_row("SELECT seq FROM messages_in WHERE id=?1", [&inbound], |r| {
            r.get(0)
        })
        .unwrap();
    ok(&tb, "add_reaction", json!({"seq": in_seq, "emoji": "👍"})).await;
    assert_eq!(
        last(&ws).content,
        json!({"operation": "reaction", "messageId": in_seq, "emoji": "👍"})
    );
    assert!(err(&tb, "edit_message", json!({"seq": 999, "text": "x"}))
        .await
        .contains("no message with seq 999"));
    err(&tb, "add_reaction", json!({"seq": in_seq, "emoji": ""})).await;
}

#[tokio::test]
async fn send_card_and_bad_card() {
    let ws = ws_with_dests();
    let tb = toolbox(&ws);
    ok(
        &tb,
        "send_card",
        json!({"card": {"title": "Weather", "description": "Sunny",
            "actions": [{"label": "Radar", "url": "https://radar.example"}]}, "to": "family"}),
    )
    .await;
    let o = last(&ws);
    assert_eq!(o.kind, "chat");
    assert_eq!(o.seq % 2, 1);
    assert_eq!(o.content["card"]["title"], "Weather");
    // Without a fallback, text-only channels get the whole card, link included.
    assert_eq!(
        o.content["fallbackText"],
        "**Weather**\n\nSunny\n\nRadar: https://radar.example"
    );
    assert_eq!(o.platform_id.as_deref(), Some("telegram:-100"));
    ok(
        &tb,
        "send_card",
        json!({"card": {"title": "T"}, "fallback_text": "plain"}),
    )
    .await;
    assert_eq!(last(&ws).content["fallbackText"], "plain");
    err(&tb, "send_card", json!({"card": "not an object"})).await;
    assert!(err(&tb, "send_card", json!({"card": {"body": "?"}}))
        .await
        .contains("the card is empty"));
    err(
        &tb,
        "send_card",
        json!({"card": {"title": "T"}, "to": "nobody"}),
    )
    .await;
}

#[tokio::test]
async fn ask_user_question_waits_for_the_answer() {
    let ws = ws_with_dests();
    let tb = toolbox(&ws);
    let dir = ws.path().to_path_buf();
    // The host: once the question row exists, the user's answer arrives in inbound.db.
    let answer = std::thread::spawn(move || {
        for _ in 0..200 {
            let c = rusqlite::Connection::open(dir.join("outbound.db")).unwrap();
            let q: Option<String> = c
                .query_row("SELECT json_extract(content,'$.questionId') FROM messages_out WHERE json_extract(content,'$.operation')='ask_question'", [], |r| r.get(0))
                .ok();
            if let Some(q) = q {
                let content = json!({"sender": "Ann", "senderId": "telegram:5", "text": "Tea", "questionId": q, "selectedOption": "Tea"});
                rusqlite::Connection::open(dir.join("inbound.db")).unwrap().execute(
                    "INSERT INTO messages_in(id, seq, kind, timestamp, content) VALUES ('ans', 500, 'chat', '2026-01-01T00:00:00.000Z', ?1)",
                    [content.to_string()],
                ).unwrap();
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let mut tbm = Arc::try_unwrap(tb).ok().unwrap();
    tbm.question_timeout = Duration::from_secs(5);
    let text = ok(
        &tbm,
        "ask_user_question",
        json!({"title": "Drink", "question": "Tea or coffee?", "options": ["Tea", "Coffee"]}),
    )
    .await;
    answer.join().unwrap();
    assert_eq!(text, "the user chose: Tea");
    let o = ws
        .out()
        .into_iter()
        .find(|o| o.content["operation"] == "ask_question")
        .unwrap();
    // Stored normalised, as NanoClaw v2 does.
    assert_eq!(
        o.content["options"],
        json!([{"label": "Tea", "selectedLabel": "Tea", "value": "Tea"},
            {"label": "Coffee", "selectedLabel": "Coffee", "value": "Coffee"}])
    );
    assert_eq!(o.content["title"], "Drink");
    assert_eq!(
        ws.ack_status("ans").as_deref(),
        Some("completed"),
        "the answer does not start another turn"
    );
    // Without options it refuses; without an answer it times out with a clear error.
    err(
        &tbm,
        "ask_user_question",
        json!({"title": "x", "question": "y", "options": []}),
    )
    .await;
    assert!(err(
        &tbm,
        "ask_user_question",
        json!({"title": "x", "question": "y", "options": ["a", {"value": 3}]}),
    )
    .await
    .contains("{label, selectedLabel?, value?}"));
    tbm.question_timeout = Duration::from_millis(100);
    assert!(err(
        &tbm,
        "ask_user_question",
        json!({"title": "x", "question": "y", "options": ["a"]})
    )
    .await
    .contains("no answer"));
}

#[tokio::test]
async fn scheduling_tools_are_system_requests_answered_by_the_host() {
    let ws = ws_with_dests();
    let tb = toolbox(&ws);
    let host = host_answers(&ws, "ok", json!("task-1"));
    let text = ok(
        &tb,
        "schedule_task",
        json!({"prompt": "water plants", "cron": "0 9 * * *", "script": "echo hi"}),
    )
    .await;
    assert_eq!(text, "task-1");
    let o = last(&ws);
    assert_eq!(o.kind, "system");
    assert_eq!(o.content["action"], "schedule_task");
    assert_eq!(o.content["payload"]["cron"], "0 9 * * *");
    assert_eq!(o.content["payload"]["script"], "echo hi");
    for tool in ["pause_task", "resume_task", "cancel_task"] {
        ok(&tb, tool, json!({"id": "task-1"})).await;
        let o = last(&ws);
        assert_eq!(
            (o.kind.as_str(), o.content["action"].as_str()),
            ("system", Some(tool))
        );
        assert_eq!(o.content["payload"]["id"], "task-1");
    }
    host.join().unwrap();
    err(&tb, "schedule_task", json!({"prompt": "x"})).await;
    err(
        &tb,
        "schedule_task",
        json!({"prompt": "x", "at": "tomorrow"}),
    )
    .await;
    err(&tb, "pause_task", json!({})).await;
    // list_tasks reads the host's task rows directly.
    ws.inbound().execute("INSERT INTO messages_in(id, seq, kind, timestamp, content, status, series_id, recurrence, process_after) VALUES ('t1', 9000, 'task', '2026-01-01T00:00:00.000Z', '{\"prompt\":\"water plants\"}', 'pending', 'task-1', '0 9 * * *', '2026-01-02T09:00:00.000Z')", []).unwrap();
    let list = ok(&tb, "list_tasks", json!({})).await;
    assert!(
        list.contains("task-1") && list.contains("water plants"),
        "{list}"
    );
}

#[tokio::test]
async fn host_errors_come_back_as_tool_errors() {
    let ws = ws_with_dests();
    let tb = toolbox(&ws);
    let host = host_answers(&ws, "error", json!("no such task"));
    assert!(err(&tb, "cancel_task", json!({"id": "nope"}))
        .await
        .contains("no such task"));
    host.join().unwrap();
}

#[tokio::test]
async fn agents_and_self_modification_requests() {
    let ws = ws_with_dests();
    let tb = toolbox(&ws);
    ok(
        &tb,
        "send_to_agent",
        json!({"to": "helper", "text": "research this"}),
    )
    .await;
    let o = last(&ws);
    assert_eq!(
        (o.channel_type.as_deref(), o.platform_id.as_deref()),
        (Some("agent"), Some("ag-helper"))
    );
    assert!(
        err(&tb, "send_to_agent", json!({"to": "family", "text": "x"}))
            .await
            .contains("not an agent")
    );
    assert!(
        err(&tb, "send_to_agent", json!({"to": "ghost", "text": "x"}))
            .await
            .contains("unknown destination")
    );

    let host = host_answers(&ws, "ok", json!("created agent researcher"));
    assert_eq!(
        ok(
            &tb,
            "create_agent",
            json!({"name": "Researcher", "instructions": "dig"})
        )
        .await,
        "created agent researcher"
    );
    assert_eq!(last(&ws).content["payload"]["name"], "Researcher");
    host.join().unwrap();
    err(&tb, "create_agent", json!({"name": "../.."})).await;

    ok(
        &tb,
        "install_packages",
        json!({"apt": ["ffmpeg"], "npm": ["@scope/pkg"], "reason": "video"}),
    )
    .await;
    let o = last(&ws);
    assert_eq!(o.content["action"], "install_packages");
    assert_eq!(o.content["payload"]["apt"], json!(["ffmpeg"]));
    assert!(err(
        &tb,
        "install_packages",
        json!({"apt": ["ffmpeg; rm -rf /"], "reason": "x"})
    )
    .await
    .contains("invalid apt package name"));
    let many: Vec<String> = (0..21).map(|i| format!("p{i}")).collect();
    assert!(
        err(&tb, "install_packages", json!({"apt": many, "reason": "x"}))
            .await
            .contains("at most 20 packages per agent group")
    );

    ok(
        &tb,
        "add_mcp_server",
        json!({"name": "weather", "command": "weather-mcp", "args": ["--fast"]}),
    )
    .await;
    assert_eq!(last(&ws).content["payload"]["command"], "weather-mcp");
    err(
        &tb,
        "add_mcp_server",
        json!({"name": "../x", "command": "y"}),
    )
    .await;

    ok(&tb, "request_rebuild", json!({"reason": "new packages"})).await;
    assert_eq!(last(&ws).content["action"], "request_rebuild");
}

#[tokio::test]
async fn install_packages_refuses_at_once_what_the_host_would_refuse() {
    let ws = Ws::new();
    let tb = toolbox(&ws);
    assert!(ws.out().is_empty());
    // The host refuses versions, options and shell characters when the approver says yes;
    // the tool runs the same check (nanoclaw_protocol::packages) before anyone is asked, and
    // says what the host would say.
    for (apt, npm, host_says) in [
        (
            vec![],
            vec!["lodash@4"],
            "invalid npm package name \"lodash@4\"",
        ),
        (
            vec![],
            vec!["@scope/pkg@1.2.3"],
            "invalid npm package name \"@scope/pkg@1.2.3\"",
        ),
        (
            vec!["-oAPT::x"],
            vec![],
            "invalid apt package name \"-oAPT::x\"",
        ),
    ] {
        let e = err(
            &tb,
            "install_packages",
            json!({"apt": apt, "npm": npm, "reason": "x"}),
        )
        .await;
        assert_eq!(e, host_says);
        assert_eq!(
            e,
            nanoclaw_protocol::packages::validate(&apt, &npm)
                .unwrap_err()
                .to_string()
        );
    }
    assert!(ws.out().is_empty(), "a refused request reached the host");
    ok(
        &tb,
        "install_packages",
        json!({"npm": ["lodash", "@types/node"], "reason": "x"}),
    )
    .await;
    assert_eq!(
        last(&ws).content["payload"]["npm"],
        json!(["lodash", "@types/node"])
    );
}

#[tokio::test]
async fn builtin_tools_edges() {
    let ws = Ws::new();
    let tb = toolbox(&ws);
    ok(
        &tb,
        "write",
        json!({"path": "dir/a.md", "content": "alpha\nbeta\n"}),
    )
    .await;
    assert!(ok(
        &tb,
        "read",
        json!({"path": "dir/a.md", "offset": 2, "limit": 1})
    )
    .await
    .contains("2\tbeta"));
    assert!(ok(&tb, "glob", json!({"pattern": "**/*.md"}))
        .await
        .contains("dir/a.md"));
    assert!(ok(&tb, "grep", json!({"pattern": "be.a"}))
        .await
        .contains("dir/a.md:2:beta"));
    ok(&tb, "write", json!({"path": "dup.txt", "content": "x x"})).await;
    assert!(err(
        &tb,
        "edit",
        json!({"path": "dup.txt", "old_string": "x", "new_string": "y"})
    )
    .await
    .contains("2 times"));
    ok(
        &tb,
        "edit",
        json!({"path": "dup.txt", "old_string": "x", "new_string": "y", "replace_all": true}),
    )
    .await;
    assert!(err(
        &tb,
        "write",
        json!({"path": "../inbound.db", "content": ""})
    )
    .await
    .contains("protected"));
    assert!(err(&tb, "bash", json!({"command": "exit 3"}))
        .await
        .contains("exit status 3"));
    let slow = err(
        &tb,
        "bash",
        json!({"command": "sleep 5", "timeout_ms": 200}),
    )
    .await;
    assert!(slow.contains("timed out"), "{slow}");
    let big = ok(
        &tb,
        "bash",
        json!({"command": "head -c 100000 /dev/zero | tr '\\0' a"}),
    )
    .await;
    assert!(big.contains("output truncated"));
    assert!(err(&tb, "web_fetch", json!({"url": "file:///etc/passwd"}))
        .await
        .contains("only http"));
    assert!(err(&tb, "nope", json!({})).await.contains("unknown tool"));
}

#[tokio::test]
async fn skills_are_listed_and_loaded_on_demand() {
    let ws = Ws::new();
    let bundled = ws.path().join("bundled");
    std::fs::create_dir_all(bundled.join("weather")).unwrap();
    std::fs::write(
        bundled.join("weather/SKILL.md"),
        "---\nname: weather\ndescription: Forecasts for a city\n---\nUse wttr.in.\n",
    )
    .unwrap();
    std::fs::create_dir_all(ws.agent().join("skills/weather")).unwrap();
    std::fs::write(
        ws.agent().join("skills/weather/SKILL.md"),
        "---\nname: weather\ndescription: My own forecasts\n---\nAsk the barometer.\n",
    )
    .unwrap();
    let mut cfg = ws.cfg("mock");
    cfg.skills_dirs = vec![bundled];
    let store = Store::open(ws.path()).unwrap().shared();
    let tb = Toolbox::new(&cfg, store, Set::All);
    assert_eq!(
        tb.skills.len(),
        1,
        "the agent's own skill overrides the bundled one"
    );
    assert_eq!(tb.skills[0].description, "My own forecasts");
    assert!(tb.specs().iter().any(|s| s.name == "skill"));
    let prompt = nanoclaw_agent::prompt::system(&cfg, &tb);
    assert!(prompt.contains("weather: My own forecasts"));
    assert!(ok(&tb, "skill", json!({"name": "weather"}))
        .await
        .contains("barometer"));
    assert!(err(&tb, "skill", json!({"name": "nope"}))
        .await
        .contains("no skill"));
}

/// NanoClaw v2's argument names keep working beside ours, so existing CLAUDE.md instructions
/// and agent habits carry over: `messageId`, `processAfter` + `recurrence`, `taskId`,
/// `update_task`, a `list_tasks` status filter, `ask_user_question`'s `timeout`.
#[tokio::test]
async fn v2_argument_forms_beside_ours() {
    let ws = ws_with_dests();
    let tb = toolbox(&ws);
    ok(&tb, "send_message", json!({"text": "draft"})).await;
    let sent = last(&ws).seq;
    ok(
        &tb,
        "edit_message",
        json!({"messageId": sent, "text": "final"}),
    )
    .await;
    assert_eq!(
        last(&ws).content,
        json!({"operation": "edit", "messageId": sent, "text": "final"})
    );
    ok(
        &tb,
        "add_reaction",
        json!({"messageId": sent, "emoji": "👍"}),
    )
    .await;
    assert_eq!(last(&ws).content["operation"], "reaction");

    let host = host_answers(&ws, "ok", json!("done"));
    // A first run and a cron together, with v2's names.
    ok(
        &tb,
        "schedule_task",
        json!({"prompt": "standup", "processAfter": "2026-12-01T09:00:00", "recurrence": "0 9 * * 1-5"}),
    )
    .await;
    let p = last(&ws).content["payload"].clone();
    assert_eq!(
        (p["at"].as_str(), p["cron"].as_str()),
        (Some("2026-12-01T09:00:00"), Some("0 9 * * 1-5"))
    );
    for tool in ["pause_task", "resume_task", "cancel_task"] {
        ok(&tb, tool, json!({"taskId": "task-7"})).await;
        assert_eq!(last(&ws).content["payload"]["id"], "task-7", "{tool}");
    }
    ok(
        &tb,
        "update_task",
        json!({"taskId": "task-7", "prompt": "standup (short)", "recurrence": "", "processAfter": "2026-12-02T10:30:00"}),
    )
    .await;
    let o = last(&ws);
    assert_eq!(o.content["action"], "update_task");
    let p = &o.content["payload"];
    assert_eq!(p["id"], "task-7");
    assert_eq!(p["prompt"], "standup (short)");
    assert!(
        p["cron"].is_null() && p.get("cron").is_some(),
        "empty recurrence clears it: {p}"
    );
    assert_eq!(p["at"], "2026-12-02T10:30:00");
    assert!(p.get("script").is_none(), "an omitted field is left alone");
    host.join().unwrap();
    err(&tb, "update_task", json!({"taskId": "task-7"})).await;
    err(&tb, "update_task", json!({"prompt": "x"})).await;
    err(
        &tb,
        "update_task",
        json!({"taskId": "t", "processAfter": "soon"}),
    )
    .await;

    // list_tasks: one row per series, filtered by status.
    let inb = ws.inbound();
    for (id, seq, status, series) in [
        ("a1", 9000, "completed", "s-a"),
        ("a2", 9002, "pending", "s-a"),
        ("b1", 9004, "paused", "s-b"),
    ] {
        inb.execute(
            "INSERT INTO messages_in(id, seq, kind, timestamp, content, status, series_id, process_after) VALUES (?1, ?2, 'task', '2026-01-01T00:00:00.000Z', '{\"prompt\":\"p\"}', ?3, ?4, '2026-01-02T09:00:00.000Z')",
            rusqlite::params![id, seq, status, series],
        )
        .unwrap();
    }
    let all: Value = serde_json::from_str(&ok(&tb, "list_tasks", json!({})).await).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    let paused: Value =
        serde_json::from_str(&ok(&tb, "list_tasks", json!({"status": "paused"})).await).unwrap();
    assert_eq!(paused.as_array().unwrap().len(), 1);
    assert_eq!(paused[0]["id"], "s-b");
    err(&tb, "list_tasks", json!({"status": "done"})).await;

    // `timeout` in seconds bounds the wait for an answer.
    let t0 = std::time::Instant::now();
    let e = err(
        &tb,
        "ask_user_question",
        json!({"title": "t", "question": "q?", "options": ["yes"], "timeout": 0.3}),
    )
    .await;
    assert!(e.contains("no answer"), "{e}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "the model's timeout was used"
    );
}
