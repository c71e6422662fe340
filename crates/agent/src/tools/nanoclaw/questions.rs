//! `ask_user_question`: a question card, then a wait for the user's choice.

use nanoclaw_protocol::content::QuestionOption;
use serde_json::{json, Value};

use crate::tools::{arg_str, Set, Tool, ToolFuture, Toolbox};

/// The `ask_user_question` tool.
pub struct AskUserQuestion;

impl Tool for AskUserQuestion {
    fn name(&self) -> &'static str {
        "ask_user_question"
    }
    fn description(&self) -> &'static str {
        "Ask the user a multiple-choice question and wait for the answer (their option's value). Options are strings, or {label, selectedLabel?, value?} objects: label on the button, selectedLabel shown once chosen, value returned to you."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"title": {"type": "string"}, "question": {"type": "string"},
                "options": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "object", "properties": {
                    "label": {"type": "string"}, "selectedLabel": {"type": "string"}, "value": {"type": "string"}}, "required": ["label"]}]}},
                "timeout": {"type": "number", "description": "seconds to wait for the answer"}},
                "required": ["title", "question", "options"]})
    }
    fn set(&self) -> Set {
        Set::NanoClaw
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(ask(tb, input))
    }
}

/// The longest `ask_user_question` may wait (v2 lets the model pick; a day is the question's
/// own lifetime on the host).
const MAX_QUESTION_WAIT_S: f64 = 24.0 * 3600.0;

async fn ask(tb: &Toolbox, input: &Value) -> Result<String, String> {
    let title = arg_str(input, "title")?;
    let question = arg_str(input, "question")?;
    let raw = input
        .get("options")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let options = QuestionOption::normalize_all(&raw);
    if options.is_empty() || options.len() != raw.len() {
        return Err(
            "options must be a non-empty list of strings or {label, selectedLabel?, value?} objects"
                .into(),
        );
    }
    let route = tb.route_to(None)?;
    let qid = nanoclaw_protocol::new_id("q");
    tb.write_row(
        "chat",
        json!({"operation": "ask_question", "questionId": qid, "title": title, "question": question, "options": options}),
        route,
        None,
    )?;
    // v2's `timeout` (seconds), bounded so a question cannot hold the turn for days.
    let wait = input
        .get("timeout")
        .and_then(Value::as_f64)
        .filter(|t| t.is_finite() && *t > 0.0)
        .map(|t| std::time::Duration::from_secs_f64(t.min(MAX_QUESTION_WAIT_S)))
        .unwrap_or(tb.question_timeout);
    match tb.wait_inbound("chat", "questionId", &qid, wait).await {
        Some(answer) => {
            let choice = match answer.get("selectedOption") {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => answer
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            };
            Ok(format!("the user chose: {choice}"))
        }
        None => Err(format!(
            "no answer within {} s; the question stays open",
            wait.as_secs()
        )),
    }
}
