//! Session folders as NanoClaw v2.0.64 leaves them: its session DDL (written here from the
//! facts of v2's `src/db/schema.ts` — no defaults on `kind`/`timestamp`/`content`, no index
//! but the series one) and rows the way v2's host, Chat SDK bridge, scheduling module and
//! agent-runner write them (ids `<platform msg>:<agent group>`, SQLite `datetime('now')` times
//! next to ISO ones, tasks with `"script": null`, system actions with their arguments beside
//! `action`, the Claude conversation under `continuation:claude`).

use std::path::Path;

use rusqlite::{params, Connection};
use serde_json::{json, Value};

/// v2's inbound.db tables (host-owned).
pub const INBOUND_DDL: &str = include_str!("../fixtures/v2.0.64/session_inbound.sql");

/// v2's outbound.db tables (container-owned).
pub const OUTBOUND_DDL: &str = include_str!("../fixtures/v2.0.64/session_outbound.sql");

/// What a v2 session left behind, for the assertions of a test.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// Every messages_in row id written (history and pending).
    pub inbound_ids: Vec<String>,
    /// Every messages_out row id written.
    pub outbound_ids: Vec<String>,
    /// The largest seq of either table.
    pub max_seq: i64,
    /// Pending rows that must reach the agent: (id, text).
    pub pending_chats: Vec<(String, String)>,
    /// Tasks that must stay as they are: (id, status, process_after, recurrence).
    pub tasks: Vec<(String, String, String, Option<String>)>,
    /// messages_out rows v2's host never delivered: (id, what the user must see).
    pub unsent: Vec<(String, String)>,
    /// A recurring task v2's runner completed before v2's host re-armed it.
    pub rearm: String,
    /// The agent's id of the unsent v2 question.
    pub question: String,
    /// The id of the unsent v2 `schedule_task` request.
    pub unsent_schedule: String,
    /// `continuation:claude` left by v2's runner.
    pub continuation: String,
}

fn open(path: &Path, ddl: &str) -> Connection {
    let c = Connection::open(path).expect("open session DB");
    c.pragma_update(None, "journal_mode", "DELETE").unwrap();
    c.execute_batch(ddl).expect("v2 DDL");
    c
}

/// Writes a v2.0.64 session into `dir` (`inbound.db` + `outbound.db`, replacing whatever is
/// there) on the route `(channel_type, platform_id)`, for agent group `ag`.
pub fn write_session(dir: &Path, ag: &str, channel_type: &str, platform_id: &str) -> Fixture {
    std::fs::create_dir_all(dir).unwrap();
    for f in [
        "inbound.db",
        "outbound.db",
        "inbound.db-journal",
        "outbound.db-journal",
    ] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let inb = open(&dir.join("inbound.db"), INBOUND_DDL);
    let out = open(&dir.join("outbound.db"), OUTBOUND_DDL);
    let (ct, pid) = (channel_type, platform_id);
    inb.execute(
        "INSERT INTO session_routing(id, channel_type, platform_id, thread_id) VALUES (1, ?1, ?2, NULL)",
        params![ct, pid],
    )
    .unwrap();
    let mut fx = Fixture {
        inbound_ids: vec![],
        outbound_ids: vec![],
        max_seq: 0,
        pending_chats: vec![],
        tasks: vec![],
        unsent: vec![],
        unsent_schedule: String::new(),
        question: String::new(),
        rearm: String::new(),
        continuation: "v2-claude-conversation-7f3a".into(),
    };
    // Host rows: v2's writeSessionMessage (every column), even seqs from 2.
    #[allow(clippy::too_many_arguments)]
    let add_in = |fx: &mut Fixture,
                  id: &str,
                  kind: &str,
                  ts: &str,
                  status: &str,
                  process_after: Option<&str>,
                  recurrence: Option<&str>,
                  series: Option<&str>,
                  content: Value| {
        let seq = fx.max_seq + if fx.max_seq % 2 == 0 { 2 } else { 1 };
        inb.execute(
            "INSERT INTO messages_in (id, seq, kind, timestamp, status, platform_id, channel_type, thread_id, content,
               process_after, recurrence, series_id, trigger, source_session_id, on_wake)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8, ?9, ?10, COALESCE(?11, ?1), 1, NULL, 0)",
            params![id, seq, kind, ts, status, pid, ct, content.to_string(), process_after, recurrence, series],
        )
        .unwrap();
        fx.max_seq = seq;
        fx.inbound_ids.push(id.to_string());
    };
    // Runner rows: v2's writeMessageOut (timestamp datetime('now')), odd seqs.
    let add_out = |fx: &mut Fixture,
                   id: &str,
                   kind: &str,
                   reply_to: Option<&str>,
                   content: Value| {
        let seq = fx.max_seq + if fx.max_seq % 2 == 0 { 1 } else { 2 };
        out.execute(
            "INSERT INTO messages_out (id, seq, in_reply_to, timestamp, deliver_after, recurrence, kind, platform_id, channel_type, thread_id, content)
             VALUES (?1, ?2, ?3, datetime('now'), NULL, NULL, ?4, ?5, ?6, NULL, ?7)",
            params![id, seq, reply_to, kind, pid, ct, content.to_string()],
        )
        .unwrap();
        fx.max_seq = seq;
        fx.outbound_ids.push(id.to_string());
    };
    let ack = |id: &str, status: &str| {
        out.execute(
            "INSERT OR REPLACE INTO processing_ack (message_id, status, status_changed) VALUES (?1, ?2, datetime('now'))",
            params![id, status],
        )
        .unwrap();
    };
    let delivered = |id: &str, pmid: Option<&str>| {
        inb.execute(
            "INSERT OR IGNORE INTO delivered (message_out_id, platform_message_id, status, delivered_at) VALUES (?1, ?2, 'delivered', datetime('now'))",
            params![id, pmid],
        )
        .unwrap();
    };

    // History: a conversation v2 finished.
    let first = format!("101:{ag}");
    add_in(
        &mut fx,
        &first,
        "chat",
        "2026-11-30T08:00:00.000Z",
        "completed",
        None,
        None,
        None,
        json!({"sender": "Ann", "senderId": format!("{ct}:ann"), "text": "remember I like tea",
               "attachments": [], "isFromMe": false, "isMention": true}),
    );
    ack(&first, "completed");
    add_out(
        &mut fx,
        "msg-1701-abc",
        "chat",
        Some(&first),
        json!({"text": "Noted: tea."}),
    );
    delivered("msg-1701-abc", Some("5001"));
    let sdk = format!("102:{ag}");
    add_in(
        &mut fx,
        &sdk,
        "chat-sdk",
        "2026-11-30T08:05:00.000Z",
        "completed",
        None,
        None,
        None,
        json!({"id": "102", "text": "and green tea", "author": {"userId": "ann", "fullName": "Ann", "isBot": false},
               "senderId": "ann", "sender": "Ann", "senderName": "Ann", "attachments": []}),
    );
    ack(&sdk, "completed");
    add_out(
        &mut fx,
        "msg-1702-def",
        "chat",
        Some(&sdk),
        json!({"text": "Green tea it is."}),
    );
    delivered("msg-1702-def", Some("5002"));
    // A v2 system action the host handled (delivered, no platform id).
    add_out(
        &mut fx,
        "task-1703-ghi",
        "system",
        None,
        json!({"action": "schedule_task", "taskId": "task-1703-ghi", "prompt": "morning tea reminder",
               "script": null, "processAfter": "2026-11-30T09:00:00.000Z", "recurrence": "0 9 * * *",
               "platformId": pid, "channelType": ct, "threadId": null}),
    );
    delivered("task-1703-ghi", None);
    // Its first occurrence ran (completed); the next is pending (v2's handleRecurrence: a new
    // row in the same series, process_after from the cron).
    add_in(
        &mut fx,
        "task-1703-ghi",
        "task",
        "2026-11-30 08:06:00",
        "completed",
        Some("2026-11-30T09:00:00.000Z"),
        None,
        None,
        json!({"prompt": "morning tea reminder", "script": null}),
    );
    ack("task-1703-ghi", "completed");
    add_in(
        &mut fx,
        "task-1703-ghi-r1",
        "task",
        "2026-11-30 09:00:05",
        "pending",
        Some("2099-01-01T09:00:00.000Z"),
        Some("0 9 * * *"),
        Some("task-1703-ghi"),
        json!({"prompt": "morning tea reminder", "script": null}),
    );
    fx.tasks.push((
        "task-1703-ghi-r1".into(),
        "pending".into(),
        "2099-01-01T09:00:00.000Z".into(),
        Some("0 9 * * *".into()),
    ));
    // A one-shot far away, and a paused one.
    add_in(
        &mut fx,
        "task-1704-jkl",
        "task",
        "2026-11-30 10:00:00",
        "pending",
        Some("2098-06-01T12:00:00.000Z"),
        None,
        None,
        json!({"prompt": "renew the passport", "script": "echo '{\"wakeAgent\": true}'"}),
    );
    fx.tasks.push((
        "task-1704-jkl".into(),
        "pending".into(),
        "2098-06-01T12:00:00.000Z".into(),
        None,
    ));
    add_in(
        &mut fx,
        "task-1705-mno",
        "task",
        "2026-11-30 10:01:00",
        "paused",
        Some("2097-01-01T00:00:00.000Z"),
        Some("0 18 * * 5"),
        None,
        json!({"prompt": "weekly review", "script": null}),
    );
    fx.tasks.push((
        "task-1705-mno".into(),
        "paused".into(),
        "2097-01-01T00:00:00.000Z".into(),
        Some("0 18 * * 5".into()),
    ));
    // A recurring task whose run v2's runner finished, before v2's host cloned its next
    // occurrence (its sweep hook): the series must go on exactly once.
    add_in(
        &mut fx,
        "task-1706-rec",
        "task",
        "2026-11-30 06:00:00",
        "pending",
        Some("2026-11-30T07:00:00.000Z"),
        Some("0 7 * * *"),
        None,
        json!({"prompt": "stretch", "script": null}),
    );
    ack("task-1706-rec", "completed");
    fx.rearm = "task-1706-rec".into();
    out.execute(
        "INSERT INTO session_state (key, value, updated_at) VALUES ('continuation:claude', ?1, ?2)",
        params![fx.continuation, "2026-11-30T10:02:00.000Z"],
    )
    .unwrap();

    // In flight at switchover: v2's host stopped before delivering these...
    add_out(
        &mut fx,
        "msg-1710-pqr",
        "chat",
        Some(&sdk),
        json!({"text": "v2 said this last"}),
    );
    fx.unsent
        .push(("msg-1710-pqr".into(), "v2 said this last".into()));
    add_out(
        &mut fx,
        "card-1711-stu",
        "chat-sdk",
        None,
        json!({"type": "card", "card": {"title": "Tea stock", "children": ["green: 2 boxes"]},
               "fallbackText": "Tea stock: green 2 boxes"}),
    );
    fx.unsent
        .push(("card-1711-stu".into(), "Tea stock: green 2 boxes".into()));
    // v2's ask_user_question card (its runner was waiting for the answer when it stopped).
    add_out(
        &mut fx,
        "q-1713-yz",
        "chat-sdk",
        None,
        json!({"type": "ask_question", "questionId": "q-1713-yz", "title": "Tea time",
               "question": "Green or black?", "options": ["Green", {"label": "Black", "value": "black"}]}),
    );
    fx.unsent
        .push(("q-1713-yz".into(), "Green or black?".into()));
    fx.question = "q-1713-yz".into();
    fx.unsent_schedule = "task-1712-vwx".into();
    add_out(
        &mut fx,
        "task-1712-vwx",
        "system",
        None,
        json!({"action": "schedule_task", "taskId": "task-1712-vwx", "prompt": "buy more tea",
               "script": null, "processAfter": "2099-03-01T10:00:00.000Z", "recurrence": null,
               "platformId": pid, "channelType": ct, "threadId": null}),
    );
    // ...and the runner had not taken these yet.
    let waiting = format!("103:{ag}");
    add_in(
        &mut fx,
        &waiting,
        "chat-sdk",
        "2026-11-30T10:03:00.000Z",
        "pending",
        None,
        None,
        None,
        json!({"id": "103", "text": "are you still there?", "author": {"userId": "ann", "fullName": "Ann"},
               "senderId": "ann", "sender": "Ann", "attachments": []}),
    );
    fx.pending_chats
        .push((waiting, "are you still there?".into()));
    let chat = format!("104:{ag}");
    add_in(
        &mut fx,
        &chat,
        "chat",
        "2026-11-30T10:04:00.000Z",
        "pending",
        None,
        None,
        None,
        json!({"sender": "Ann", "senderId": format!("{ct}:ann"), "text": "hello again", "attachments": [],
               "isFromMe": false}),
    );
    fx.pending_chats.push((chat, "hello again".into()));
    fx
}
