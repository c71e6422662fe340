//! Every content kind an agent or the host writes, parsed as the host and runner parse rows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nanoclaw_host::channels::text_of;
use nanoclaw_protocol::content::{CardView, Inbound, Outbound};
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let object: Option<Map<String, Value>> = serde_json::from_str(s).ok();

    for kind in ["chat", "task", "webhook", "system"] {
        if let Ok(v) = Inbound::parse(kind, s) {
            assert_eq!(v.kind(), kind);
            // What the host writes back reads the same (unknown fields included).
            let again = Inbound::parse(kind, &v.to_json()).expect("re-serialised content parses");
            assert_eq!(again, v, "round trip of {s:?}");
        }
    }
    assert!(Inbound::parse("telepathy", s).is_err());
    assert!(Outbound::parse("telepathy", s).is_err());

    let chat = Outbound::parse("chat", s);
    // `message` is the runner's older name for the same shapes.
    assert_eq!(chat.as_ref().ok(), Outbound::parse("message", s).ok().as_ref());
    if let Ok(out) = &chat {
        let m = object.as_ref().expect("parsed content is a JSON object");
        let text = text_of(out);
        match out {
            Outbound::Message { text: t, files, extra } => {
                assert_eq!(text.as_deref(), Some(t.as_str()));
                assert!(!extra.contains_key("text") && !extra.contains_key("files"));
                let strings = m.get("files").and_then(Value::as_array).map_or(0, |a| {
                    a.iter().filter(|v| v.is_string()).count()
                });
                assert_eq!(files.len(), strings);
            }
            Outbound::Card { card, fallback_text } => {
                assert!(!fallback_text.trim().is_empty() || !CardView::parse(card).is_empty());
                assert!(text.is_some());
            }
            Outbound::AskQuestion { question, .. } => {
                assert!(text.expect("a question has text").contains(question.as_str()));
            }
            Outbound::Edit { .. } | Outbound::Reaction { .. } => assert!(text.is_none()),
            Outbound::System { .. } => panic!("a chat row parsed as a system request"),
        }
    }
    if let Ok(out) = Outbound::parse("system", s) {
        assert!(matches!(out, Outbound::System { .. }));
        assert!(text_of(&out).is_none());
    }
});
