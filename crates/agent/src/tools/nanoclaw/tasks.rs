//! Scheduled tasks: checked here, kept by the host (system requests answered with the result).

use serde_json::{json, Value};

use super::{arg_task, first_str, opt_str};
use crate::store;
use crate::tools::{arg_str, Set, Tool, ToolFuture, Toolbox};

/// The input of the tools that name one task.
fn task_id() -> Value {
    json!({"type": "object", "properties": {"id": {"type": "string"}, "taskId": {"type": "string"}}})
}

/// The `schedule_task` tool.
pub struct ScheduleTask;

impl Tool for ScheduleTask {
    fn name(&self) -> &'static str {
        "schedule_task"
    }
    fn description(&self) -> &'static str {
        "Schedule a prompt for later: once (`at`, ISO time; a time without offset is local), recurring (`cron`, local timezone), or both (first run at `at`, then by `cron`). `processAfter` and `recurrence` are accepted for `at` and `cron`. An optional shell `script` runs first; its output is given to you."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"prompt": {"type": "string"}, "at": {"type": "string"},
                "cron": {"type": "string"}, "processAfter": {"type": "string"}, "recurrence": {"type": "string"},
                "script": {"type": "string"}}, "required": ["prompt"]})
    }
    fn set(&self) -> Set {
        Set::NanoClaw
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(schedule(tb, input))
    }
}

/// The `list_tasks` tool.
pub struct ListTasks;

impl Tool for ListTasks {
    fn name(&self) -> &'static str {
        "list_tasks"
    }
    fn description(&self) -> &'static str {
        "List scheduled tasks of this conversation (one per series), optionally only `pending` or `paused` ones."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"status": {"type": "string", "enum": ["pending", "paused"]}}})
    }
    fn set(&self) -> Set {
        Set::NanoClaw
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(async move { list_tasks(tb, input) })
    }
}

/// The `update_task` tool.
pub struct UpdateTask;

impl Tool for UpdateTask {
    fn name(&self) -> &'static str {
        "update_task"
    }
    fn description(&self) -> &'static str {
        "Change a scheduled task (its id from list_tasks; `taskId` is accepted too): any of prompt, cron/recurrence (empty string: one-shot), at/processAfter (next run), script (empty string: none). Omitted fields stay."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"id": {"type": "string"}, "taskId": {"type": "string"}, "prompt": {"type": "string"},
                "cron": {"type": "string"}, "recurrence": {"type": "string"}, "at": {"type": "string"}, "processAfter": {"type": "string"},
                "script": {"type": "string"}}})
    }
    fn set(&self) -> Set {
        Set::NanoClaw
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(update_task(tb, input))
    }
}

/// `pause_task`, `resume_task` and `cancel_task`: one shape (a task id), one host request
/// named after the tool.
pub struct TaskState {
    name: &'static str,
    description: &'static str,
}

/// The `pause_task` tool.
pub const PAUSE_TASK: TaskState = TaskState {
    name: "pause_task",
    description: "Pause a scheduled task (`taskId` is accepted for `id`).",
};

/// The `resume_task` tool.
pub const RESUME_TASK: TaskState = TaskState {
    name: "resume_task",
    description: "Resume a paused task (`taskId` is accepted for `id`).",
};

/// The `cancel_task` tool.
pub const CANCEL_TASK: TaskState = TaskState {
    name: "cancel_task",
    description: "Cancel a scheduled task (`taskId` is accepted for `id`).",
};

impl Tool for TaskState {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        self.description
    }
    fn input_schema(&self) -> Value {
        task_id()
    }
    fn set(&self) -> Set {
        Set::NanoClaw
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(task_state(tb, self.name, input))
    }
}

/// Checked here so the model hears at once; the host parses it again in the timezone.
fn check_at(a: &str) -> Result<(), String> {
    let iso = chrono::DateTime::parse_from_rfc3339(a).is_ok()
        || ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
            .iter()
            .any(|f| chrono::NaiveDateTime::parse_from_str(a, f).is_ok());
    if iso {
        Ok(())
    } else {
        Err(format!(
            "`at` {a:?} is not an ISO date-time (e.g. 2026-12-01T09:00)"
        ))
    }
}

async fn schedule(tb: &Toolbox, input: &Value) -> Result<String, String> {
    let prompt = arg_str(input, "prompt")?;
    let at = first_str(input, &["at", "processAfter"]);
    let cron = first_str(input, &["cron", "recurrence"]);
    if at.is_none() && cron.is_none() {
        return Err("give `at` (ISO time), `cron`, or both".into());
    }
    if let Some(a) = at {
        check_at(a)?;
    }
    let mut payload = json!({"prompt": prompt});
    for (k, v) in [
        ("at", at),
        ("cron", cron),
        ("script", opt_str(input, "script")),
    ] {
        if let Some(v) = v {
            payload[k] = json!(v);
        }
    }
    tb.system("schedule_task", payload, true).await
}

fn list_tasks(tb: &Toolbox, input: &Value) -> Result<String, String> {
    match opt_str(input, "status") {
        Some(s) if !["pending", "paused"].contains(&s) => {
            Err(format!("status must be pending or paused, not {s:?}"))
        }
        status => store::lock(&tb.store)
            .tasks(status)
            .map_err(|e| e.to_string()),
    }
    .map(|t| {
        if t.is_empty() {
            "no scheduled tasks".into()
        } else {
            Value::Array(t).to_string()
        }
    })
}

/// Only the fields given change; an empty `cron`/`script` clears it (as in v2).
async fn update_task(tb: &Toolbox, input: &Value) -> Result<String, String> {
    let id = arg_task(input)?;
    let mut payload = json!({"id": id});
    let given = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| input.get(*k).and_then(Value::as_str))
    };
    if let Some(p) = given(&["prompt"]).filter(|p| !p.trim().is_empty()) {
        payload["prompt"] = json!(p);
    }
    if let Some(a) = given(&["at", "processAfter"]).filter(|a| !a.is_empty()) {
        check_at(a)?;
        payload["at"] = json!(a);
    }
    for (ours, keys) in [
        ("cron", &["cron", "recurrence"][..]),
        ("script", &["script"][..]),
    ] {
        if let Some(v) = given(keys) {
            payload[ours] = if v.is_empty() { Value::Null } else { json!(v) };
        }
    }
    if payload.as_object().is_some_and(|o| o.len() == 1) {
        return Err("nothing to change: give prompt, cron, at or script".into());
    }
    tb.system("update_task", payload, true).await
}

/// pause_task, resume_task, cancel_task: the host's action of the tool's name.
async fn task_state(tb: &Toolbox, action: &str, input: &Value) -> Result<String, String> {
    let id = arg_task(input)?;
    tb.system(action, json!({"id": id}), true).await
}
