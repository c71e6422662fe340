//! Content as other writers leave it: malformed rows, and NanoClaw v2's rows in flight.

use super::*;
use serde_json::Value;

#[test]
fn bad_content_is_an_error_not_a_panic() {
    assert!(Inbound::parse("chat", "{not json").is_err());
    assert!(Inbound::parse("telepathy", "{}").is_err());
    assert!(Inbound::parse("chat", "[1,2]").is_err());
    let big = format!(r#"{{"text":"{}"}}"#, "x".repeat(MAX_CONTENT_BYTES));
    assert!(Inbound::parse("chat", &big).is_err());
    assert!(Outbound::parse("chat", r#"{"operation":"explode"}"#).is_err());
    assert!(Outbound::parse("weird", "{}").is_err());
}

/// Rows as NanoClaw v2.0.64 writes them (router, Chat SDK bridge, scheduling, interactive
/// module; the runner's MCP tools), left in flight at switchover.
#[test]
fn nanoclaw_v2_shapes_in_flight() {
    // v2's Chat SDK bridge: kind chat-sdk, nested author, projected sender fields.
    let sdk = r#"{"id":"m1","text":"hello from slack","author":{"userId":"U42","fullName":"Ann B","userName":"ann","isBot":false},
        "metadata":{"dateSent":"2026-01-01T00:00:00.000Z"},"attachments":[],"senderId":"U42","sender":"Ann B","senderName":"Ann B"}"#;
    let Inbound::Chat(c) = Inbound::parse("chat-sdk", sdk).unwrap() else {
        panic!()
    };
    assert_eq!((c.sender.as_str(), c.sender_id.as_str()), ("Ann B", "U42"));
    assert_eq!(c.text, "hello from slack");
    // An older bridge row: only the nested author.
    let Inbound::Chat(c) = Inbound::parse(
        "chat-sdk",
        r#"{"text":"x","author":{"userId":"U1","userName":"bo"}}"#,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!((c.sender.as_str(), c.sender_id.as_str()), ("bo", "U1"));
    // A task with v2's `"script": null`, and nulls where we keep plain values.
    let Inbound::Task(t) =
        Inbound::parse("task", r#"{"prompt":"water the plants","script":null}"#).unwrap()
    else {
        panic!()
    };
    assert_eq!((t.prompt.as_str(), t.script), ("water the plants", None));
    assert!(Inbound::parse("chat", r#"{"text":null,"sender":null,"attachments":null}"#).is_ok());
    // v2's interactive module answers a question with a system row.
    let Inbound::System(s) = Inbound::parse(
        "system",
        r#"{"type":"question_response","questionId":"q-1","selectedOption":"yes","userId":"telegram:1"}"#,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(s.extra["type"], "question_response");

    // Outbound: v2's runner rows.
    let Outbound::System { action, payload } = Outbound::parse(
        "system",
        r#"{"action":"schedule_task","taskId":"task-1","prompt":"p","script":null,"processAfter":"2026-01-01T09:00:00.000Z","recurrence":null}"#,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(action, "schedule_task");
    assert_eq!(payload["taskId"], "task-1");
    assert_eq!(payload["processAfter"], "2026-01-01T09:00:00.000Z");
    assert!(payload.get("action").is_none());
    let Outbound::AskQuestion {
        question_id,
        options,
        ..
    } = Outbound::parse(
        "chat-sdk",
        r#"{"type":"ask_question","questionId":"q-7","title":"Lunch","question":"Tea?","options":["Yes",{"label":"No","value":"no"}]}"#,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!((question_id.as_str(), options.len()), ("q-7", 2));
    assert!(matches!(
        Outbound::parse(
            "chat-sdk",
            r#"{"type":"card","card":{"title":"Daily"},"fallbackText":"Daily"}"#
        )
        .unwrap(),
        Outbound::Card { .. }
    ));
    assert!(matches!(
        Outbound::parse(
            "chat",
            r#"{"operation":"edit","messageId":"6037840640:42","text":"b"}"#
        )
        .unwrap(),
        Outbound::Edit {
            message_id: Value::String(_),
            ..
        }
    ));
    assert!(matches!(
        Outbound::parse("chat", r#"{"text":"report","files":["r.pdf"]}"#).unwrap(),
        Outbound::Message { ref files, .. } if files == &["r.pdf"]
    ));
}
