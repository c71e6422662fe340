//! A text reply to an open question or approval card: which option it picks.
//! Input: the reply on the first line; the rest is the options JSON array as stored (or one
//! bare label per line).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nanoclaw_host::access::approvals;
use nanoclaw_host::access::questions::choice_from_text;
use nanoclaw_protocol::content::QuestionOption;
use serde_json::Value;

fn number(t: &str) -> Option<usize> {
    t.parse::<usize>().ok()
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (reply, rest) = s.split_once('\n').unwrap_or((s, ""));
    let raw: Vec<Value> = serde_json::from_str(rest)
        .unwrap_or_else(|_| rest.lines().map(|l| Value::String(l.into())).collect());
    let options = QuestionOption::normalize_all(&raw);
    for o in &options {
        assert!(!o.label.is_empty() && !o.value.is_empty() && !o.selected_label.is_empty());
    }
    let t = reply.trim().trim_end_matches('.');
    let same = |o: &QuestionOption| o.label.eq_ignore_ascii_case(t) || o.value.eq_ignore_ascii_case(t);
    match choice_from_text(reply, &options) {
        // An answer is an existing option, picked by its number or its words.
        Some(i) => {
            assert!(i < options.len());
            assert!(number(t) == Some(i + 1) || (number(t).is_none() && same(&options[i])));
        }
        // A number picks by position only; words that match an option are never dropped.
        None => match number(t) {
            Some(n) => assert!(n == 0 || n > options.len()),
            None => assert!(!options.iter().any(same)),
        },
    }

    // An approval card: only "1" or "Approve" approves.
    let approval = QuestionOption::normalize_all(&approvals::OPTIONS.map(Value::from));
    match choice_from_text(reply, &approval) {
        Some(0) => assert!(number(t) == Some(1) || t.eq_ignore_ascii_case("approve")),
        Some(1) => assert!(number(t) == Some(2) || t.eq_ignore_ascii_case("reject")),
        Some(i) => panic!("approval option {i} does not exist"),
        None => {}
    }
});
