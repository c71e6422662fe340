//! The NanoClaw tools: they talk to the host by writing messages_out rows (odd seq).
//!
//! The runner never writes inbound.db: anything that changes the host's state (tasks, agents,
//! packages) is a `kind:'system'` request the host executes and answers with a system
//! messages_in row carrying the same `requestId`.

use std::time::{Duration, Instant};

use nanoclaw_protocol::content::QuestionOption;
use serde_json::{json, Value};

use super::{arg_str, ToolSpec, Toolbox};
use crate::store::{self, OutRow, Route};

/// Largest file `send_file` copies.
const MAX_FILE: u64 = 50 * 1024 * 1024;

fn spec(name: &'static str, description: &'static str, input_schema: Value) -> ToolSpec {
    ToolSpec {
        name,
        description,
        input_schema,
    }
}

/// Schemas of the NanoClaw tools.
pub fn specs() -> Vec<ToolSpec> {
    let to =
        json!({"type": "string", "description": "destination name (default: the current chat)"});
    let task_id = json!({"type": "object", "properties": {"id": {"type": "string"}, "taskId": {"type": "string"}}});
    vec![
        spec("send_message", "Send a message now (before your final answer).",
            json!({"type": "object", "properties": {"text": {"type": "string"}, "to": to}, "required": ["text"]})),
        spec("send_file", "Send a file from the workspace, with optional text.",
            json!({"type": "object", "properties": {"path": {"type": "string"}, "text": {"type": "string"},
                "filename": {"type": "string"}, "to": to}, "required": ["path"]})),
        spec("edit_message", "Edit a message you sent, by its seq (`messageId` is accepted too).",
            json!({"type": "object", "properties": {"seq": {"type": "integer"}, "messageId": {"type": "integer"}, "text": {"type": "string"}}, "required": ["text"]})),
        spec("add_reaction", "React to a message by its seq (`messageId` is accepted too) with an emoji.",
            json!({"type": "object", "properties": {"seq": {"type": "integer"}, "messageId": {"type": "integer"}, "emoji": {"type": "string"}}, "required": ["emoji"]})),
        spec("send_card", "Display a structured card and return at once (no answer is collected; use ask_user_question for that). Link actions become buttons where the platform has them; elsewhere the card is sent as text.",
            json!({"type": "object", "properties": {"card": {"type": "object", "properties": {
                    "title": {"type": "string"}, "description": {"type": "string"},
                    "children": {"type": "array", "items": {"type": "string"}},
                    "actions": {"type": "array", "items": {"type": "object", "properties": {"label": {"type": "string"}, "url": {"type": "string"}}, "required": ["label", "url"]}}}},
                "fallback_text": {"type": "string"}, "to": to}, "required": ["card"]})),
        spec("ask_user_question", "Ask the user a multiple-choice question and wait for the answer (their option's value). Options are strings, or {label, selectedLabel?, value?} objects: label on the button, selectedLabel shown once chosen, value returned to you.",
            json!({"type": "object", "properties": {"title": {"type": "string"}, "question": {"type": "string"},
                "options": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "object", "properties": {
                    "label": {"type": "string"}, "selectedLabel": {"type": "string"}, "value": {"type": "string"}}, "required": ["label"]}]}},
                "timeout": {"type": "number", "description": "seconds to wait for the answer"}},
                "required": ["title", "question", "options"]})),
        spec("schedule_task", "Schedule a prompt for later: once (`at`, ISO time; a time without offset is local), recurring (`cron`, local timezone), or both (first run at `at`, then by `cron`). `processAfter` and `recurrence` are accepted for `at` and `cron`. An optional shell `script` runs first; its output is given to you.",
            json!({"type": "object", "properties": {"prompt": {"type": "string"}, "at": {"type": "string"},
                "cron": {"type": "string"}, "processAfter": {"type": "string"}, "recurrence": {"type": "string"},
                "script": {"type": "string"}}, "required": ["prompt"]})),
        spec("list_tasks", "List scheduled tasks of this conversation (one per series), optionally only `pending` or `paused` ones.",
            json!({"type": "object", "properties": {"status": {"type": "string", "enum": ["pending", "paused"]}}})),
        spec("update_task", "Change a scheduled task (its id from list_tasks; `taskId` is accepted too): any of prompt, cron/recurrence (empty string: one-shot), at/processAfter (next run), script (empty string: none). Omitted fields stay.",
            json!({"type": "object", "properties": {"id": {"type": "string"}, "taskId": {"type": "string"}, "prompt": {"type": "string"},
                "cron": {"type": "string"}, "recurrence": {"type": "string"}, "at": {"type": "string"}, "processAfter": {"type": "string"},
                "script": {"type": "string"}}})),
        spec("pause_task", "Pause a scheduled task (`taskId` is accepted for `id`).", task_id.clone()),
        spec("resume_task", "Resume a paused task (`taskId` is accepted for `id`).", task_id.clone()),
        spec("cancel_task", "Cancel a scheduled task (`taskId` is accepted for `id`).", task_id),
        spec("send_to_agent", "Send a message to another agent (an agent destination).",
            json!({"type": "object", "properties": {"to": {"type": "string"}, "text": {"type": "string"}}, "required": ["to", "text"]})),
        spec("create_agent", "Create a new agent you can talk to.",
            json!({"type": "object", "properties": {"name": {"type": "string"}, "instructions": {"type": "string"}}, "required": ["name"]})),
        spec("install_packages", "Ask to install apt/npm packages into your container image (an approver decides).",
            json!({"type": "object", "properties": {"apt": {"type": "array", "items": {"type": "string"}},
                "npm": {"type": "array", "items": {"type": "string"}}, "reason": {"type": "string"}}, "required": ["reason"]})),
        spec("add_mcp_server", "Ask to add an MCP server to your configuration (an approver decides).",
            json!({"type": "object", "properties": {"name": {"type": "string"}, "command": {"type": "string"},
                "args": {"type": "array", "items": {"type": "string"}}, "env": {"type": "object"}}, "required": ["name", "command"]})),
        spec("request_rebuild", "Ask for your container image to be rebuilt.",
            json!({"type": "object", "properties": {"reason": {"type": "string"}}, "required": ["reason"]})),
    ]
}

fn opt_str<'a>(input: &'a Value, key: &str) -> Option<&'a str> {
    input
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The first of `keys` that is given (our name first, then NanoClaw v2's).
fn first_str<'a>(input: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| opt_str(input, k))
}

/// A message's seq: `seq`, or v2's `messageId`.
fn arg_seq(input: &Value) -> Result<i64, String> {
    ["seq", "messageId"]
        .iter()
        .find_map(|k| input.get(*k))
        .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
        .filter(|s| *s > 0)
        .ok_or_else(|| "missing positive integer argument \"seq\"".to_string())
}

/// A task's id: `id`, or v2's `taskId`.
fn arg_task(input: &Value) -> Result<&str, String> {
    first_str(input, &["id", "taskId"]).ok_or_else(|| "missing string argument \"id\"".into())
}

impl Toolbox {
    /// The route for `to` (a destination name), or the turn's default route.
    pub fn route_to(&self, to: Option<&str>) -> Result<Route, String> {
        let mut st = store::lock(&self.store);
        let Some(name) = to else {
            let t = self.turn();
            if t.route.platform_id.is_some() {
                return Ok(t.route);
            }
            return st
                .default_route()
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    "this session has no default route; name a destination with `to`".into()
                });
        };
        let dests = st.destinations().map_err(|e| e.to_string())?;
        match dests.iter().find(|d| d.name == name) {
            Some(d) => Ok(d.route.clone()),
            None => Err(format!(
                "unknown destination {name:?} (known: {})",
                if dests.is_empty() {
                    "none".into()
                } else {
                    dests
                        .iter()
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )),
        }
    }

    fn write_row(
        &self,
        kind: &'static str,
        content: Value,
        route: Route,
        id: Option<String>,
    ) -> Result<(String, i64), String> {
        let row = OutRow {
            id,
            kind,
            content: content.to_string(),
            route,
            in_reply_to: self.turn().in_reply_to,
            deliver_after: None,
        };
        store::lock(&self.store)
            .write(&[row], &[], "")
            .map_err(|e| format!("cannot write to outbound.db: {e}"))?
            .pop()
            .ok_or_else(|| "no row written".into())
    }

    /// Waits for an inbound row of `kind` whose `field` is `value`; acks it so it is not a new turn.
    async fn wait_inbound(
        &self,
        kind: &str,
        field: &str,
        value: &str,
        limit: Duration,
    ) -> Option<Value> {
        let deadline = Instant::now() + limit;
        let mut last = None;
        loop {
            let counter = store::lock(&self.store).inbound_counter();
            if counter != last {
                last = counter;
                let found = store::lock(&self.store)
                    .find_inbound(kind, field, value)
                    .ok()
                    .flatten();
                if let Some((id, content)) = found {
                    let _ = store::lock(&self.store).ack(&[id], "completed");
                    return Some(content);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a system request and waits for the host's answer (or says it is pending).
    async fn system(&self, action: &str, mut payload: Value, wait: bool) -> Result<String, String> {
        let request_id = nanoclaw_protocol::new_id("req");
        payload["requestId"] = json!(request_id);
        let route = self.route_to(None).unwrap_or_default();
        self.write_row(
            "system",
            json!({"action": action, "payload": payload}),
            route,
            None,
        )?;
        if !wait {
            return Ok(format!("{action} requested (request {request_id}); the answer will arrive as a system message"));
        }
        match self
            .wait_inbound("system", "requestId", &request_id, self.system_timeout)
            .await
        {
            Some(reply) => {
                let result = match reply.get("result") {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => String::new(),
                };
                if reply.get("status").and_then(Value::as_str) == Some("ok") {
                    Ok(result)
                } else {
                    Err(format!("{action} failed: {result}"))
                }
            }
            None => Ok(format!(
                "{action} requested (request {request_id}); the host has not answered yet"
            )),
        }
    }
}

/// Runs a NanoClaw tool; None when the name is not one.
pub async fn call(tb: &Toolbox, name: &str, input: &Value) -> Option<Result<String, String>> {
    Some(match name {
        "send_message" => send_message(tb, input),
        "send_file" => send_file(tb, input),
        "edit_message" => operation(tb, input, "edit", "text"),
        "add_reaction" => operation(tb, input, "reaction", "emoji"),
        "send_card" => send_card(tb, input),
        "ask_user_question" => ask(tb, input).await,
        "schedule_task" => schedule(tb, input).await,
        "list_tasks" => match opt_str(input, "status") {
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
        }),
        "pause_task" | "resume_task" | "cancel_task" => match arg_task(input) {
            Ok(id) => tb.system(name, json!({"id": id}), true).await,
            Err(e) => Err(e),
        },
        "update_task" => update_task(tb, input).await,
        "send_to_agent" => send_to_agent(tb, input),
        "create_agent" => create_agent(tb, input).await,
        "install_packages" => install_packages(tb, input).await,
        "add_mcp_server" => add_mcp_server(tb, input).await,
        "request_rebuild" => match arg_str(input, "reason") {
            Ok(reason) => {
                tb.system("request_rebuild", json!({"reason": reason}), false)
                    .await
            }
            Err(e) => Err(e),
        },
        _ => return None,
    })
}

fn send_message(tb: &Toolbox, input: &Value) -> Result<String, String> {
    let text = arg_str(input, "text")?;
    if text.trim().is_empty() {
        return Err("text is empty".into());
    }
    let route = tb.route_to(opt_str(input, "to"))?;
    let (_, seq) = tb.write_row("chat", json!({"text": text}), route, None)?;
    Ok(format!("sent (seq {seq})"))
}

fn send_file(tb: &Toolbox, input: &Value) -> Result<String, String> {
    use nanoclaw_protocol::beneath::{Dir, Error};
    use std::io::Read;
    // Opened beneath its root (no link followed, regular files only, at most 50 MB) and
    // streamed into the outbox; the host checks the copy again with the same rules.
    let (mut src, loc) = tb.roots.open_file(arg_str(input, "path")?, MAX_FILE)?;
    let default_name = loc
        .rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let filename = opt_str(input, "filename").unwrap_or(&default_name);
    let filename = nanoclaw_protocol::names::validate(filename)
        .map_err(|e| e.to_string())?
        .to_string();
    let route = tb.route_to(opt_str(input, "to"))?;
    let id = nanoclaw_protocol::new_id("out");
    nanoclaw_protocol::names::validate(&id).map_err(|e| e.to_string())?;
    let rel = std::path::Path::new("outbox").join(&id);
    let workspace = Dir::open(&tb.workspace).map_err(|e| e.to_string())?;
    // The copy exists before the row: the host may deliver the row the moment it commits.
    let copied = workspace
        .create_dir_all(&rel, 0o755)
        .and_then(|d| d.create_new(&filename, 0o644))
        .and_then(|mut dst| {
            std::io::copy(&mut (&mut src.file).take(MAX_FILE + 1), &mut dst).map_err(|e| {
                Error::Io {
                    path: rel.join(&filename),
                    source: e,
                }
            })
        });
    match copied {
        Ok(n) if n <= MAX_FILE => {}
        Ok(_) => {
            let _ = workspace.remove_all(&rel);
            return Err(format!("{}: over the 50 MB limit", loc.shown.display()));
        }
        Err(e) => {
            let _ = workspace.remove_all(&rel);
            return Err(format!("copy failed: {e}"));
        }
    }
    let text = opt_str(input, "text").unwrap_or_default();
    match tb.write_row(
        "chat",
        json!({"text": text, "files": [filename]}),
        route,
        Some(id),
    ) {
        Ok((_, seq)) => Ok(format!("file {filename} sent (seq {seq})")),
        Err(e) => {
            let _ = workspace.remove_all(&rel);
            Err(e)
        }
    }
}

fn operation(tb: &Toolbox, input: &Value, op: &str, field: &str) -> Result<String, String> {
    let seq = arg_seq(input)?;
    let value = arg_str(input, field)?;
    if value.is_empty() {
        return Err(format!("{field} is empty"));
    }
    if !store::lock(&tb.store)
        .seq_exists(seq)
        .map_err(|e| e.to_string())?
    {
        return Err(format!("no message with seq {seq}"));
    }
    let route = tb.route_to(None)?;
    let (_, s) = tb.write_row(
        "chat",
        json!({"operation": op, "messageId": seq, field: value}),
        route,
        None,
    )?;
    Ok(format!("{op} requested (seq {s})"))
}

fn send_card(tb: &Toolbox, input: &Value) -> Result<String, String> {
    let card = input
        .get("card")
        .filter(|c| c.is_object())
        .ok_or("missing object argument \"card\"")?;
    let view = nanoclaw_protocol::content::CardView::parse(card);
    let fallback =
        match opt_str(input, "fallback_text").filter(|f| !f.trim().is_empty()) {
            Some(f) => f.to_string(),
            None if view.is_empty() => return Err(
                "the card is empty: give it a title, description, children or actions with a url"
                    .into(),
            ),
            // Channels without cards still get the whole card, links included.
            None => view.markdown(true),
        };
    let route = tb.route_to(opt_str(input, "to"))?;
    let (_, seq) = tb.write_row(
        "chat",
        json!({"card": card, "fallbackText": fallback}),
        route,
        None,
    )?;
    Ok(format!("card sent (seq {seq})"))
}

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

/// The longest `ask_user_question` may wait (v2 lets the model pick; a day is the question's
/// own lifetime on the host).
const MAX_QUESTION_WAIT_S: f64 = 24.0 * 3600.0;

fn send_to_agent(tb: &Toolbox, input: &Value) -> Result<String, String> {
    let to = arg_str(input, "to")?;
    let text = arg_str(input, "text")?;
    let route = tb.route_to(Some(to))?;
    if route.channel_type.as_deref() != Some("agent") {
        return Err(format!(
            "{to:?} is not an agent destination (use send_message for chats)"
        ));
    }
    let (_, seq) = tb.write_row("chat", json!({"text": text}), route, None)?;
    Ok(format!(
        "sent to agent {to} (seq {seq}); the reply will arrive as a message"
    ))
}

async fn create_agent(tb: &Toolbox, input: &Value) -> Result<String, String> {
    let name = arg_str(input, "name")?;
    nanoclaw_protocol::names::normalize_folder(name).map_err(|e| e.to_string())?;
    let mut payload = json!({"name": name});
    if let Some(i) = opt_str(input, "instructions") {
        payload["instructions"] = json!(i);
    }
    tb.system("create_agent", payload, true).await
}

async fn install_packages(tb: &Toolbox, input: &Value) -> Result<String, String> {
    let reason = arg_str(input, "reason")?;
    let list = |k: &str| -> Vec<String> {
        input
            .get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (apt, npm) = (list("apt"), list("npm"));
    if apt.is_empty() && npm.is_empty() {
        return Err("name at least one apt or npm package".into());
    }
    // The host's own check (it runs it again on the merged list when the approver says yes):
    // what it would refuse is refused now, in its words, before anyone is asked.
    nanoclaw_protocol::packages::validate(&apt, &npm).map_err(|e| e.to_string())?;
    tb.system(
        "install_packages",
        json!({"apt": apt, "npm": npm, "reason": reason}),
        false,
    )
    .await
}

async fn add_mcp_server(tb: &Toolbox, input: &Value) -> Result<String, String> {
    let name = arg_str(input, "name")?;
    nanoclaw_protocol::names::validate(name).map_err(|e| e.to_string())?;
    let command = arg_str(input, "command")?;
    if command.trim().is_empty() {
        return Err("command is empty".into());
    }
    let args = input.get("args").cloned().unwrap_or(json!([]));
    let env = input.get("env").cloned().unwrap_or(json!({}));
    if !args.is_array() || !env.is_object() {
        return Err("args must be a list and env an object".into());
    }
    tb.system(
        "add_mcp_server",
        json!({"name": name, "command": command, "args": args, "env": env}),
        false,
    )
    .await
}
