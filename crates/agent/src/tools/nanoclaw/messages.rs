//! Messages to chats: send_message, send_file, edit_message, add_reaction, send_card.

use serde_json::{json, Value};

use super::{arg_seq, opt_str};
use crate::store;
use crate::tools::{arg_str, Set, Tool, ToolFuture, Toolbox};

/// Largest file `send_file` copies.
const MAX_FILE: u64 = 50 * 1024 * 1024;

/// The `to` argument of the tools that write to a chat.
fn to() -> Value {
    json!({"type": "string", "description": "destination name (default: the current chat)"})
}

/// The `send_message` tool.
pub struct SendMessage;

impl Tool for SendMessage {
    fn name(&self) -> &'static str {
        "send_message"
    }
    fn description(&self) -> &'static str {
        "Send a message now (before your final answer)."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"text": {"type": "string"}, "to": to()}, "required": ["text"]})
    }
    fn set(&self) -> Set {
        Set::NanoClaw
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(async move { send_message(tb, input) })
    }
}

/// The `send_file` tool.
pub struct SendFile;

impl Tool for SendFile {
    fn name(&self) -> &'static str {
        "send_file"
    }
    fn description(&self) -> &'static str {
        "Send a file from the workspace, with optional text."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"path": {"type": "string"}, "text": {"type": "string"},
                "filename": {"type": "string"}, "to": to()}, "required": ["path"]})
    }
    fn set(&self) -> Set {
        Set::NanoClaw
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(async move { send_file(tb, input) })
    }
}

/// The `edit_message` tool.
pub struct EditMessage;

impl Tool for EditMessage {
    fn name(&self) -> &'static str {
        "edit_message"
    }
    fn description(&self) -> &'static str {
        "Edit a message you sent, by its seq (`messageId` is accepted too)."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"seq": {"type": "integer"}, "messageId": {"type": "integer"}, "text": {"type": "string"}}, "required": ["text"]})
    }
    fn set(&self) -> Set {
        Set::NanoClaw
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(async move { operation(tb, input, "edit", "text") })
    }
}

/// The `add_reaction` tool.
pub struct AddReaction;

impl Tool for AddReaction {
    fn name(&self) -> &'static str {
        "add_reaction"
    }
    fn description(&self) -> &'static str {
        "React to a message by its seq (`messageId` is accepted too) with an emoji."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"seq": {"type": "integer"}, "messageId": {"type": "integer"}, "emoji": {"type": "string"}}, "required": ["emoji"]})
    }
    fn set(&self) -> Set {
        Set::NanoClaw
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(async move { operation(tb, input, "reaction", "emoji") })
    }
}

/// The `send_card` tool.
pub struct SendCard;

impl Tool for SendCard {
    fn name(&self) -> &'static str {
        "send_card"
    }
    fn description(&self) -> &'static str {
        "Display a structured card and return at once (no answer is collected; use ask_user_question for that). Link actions become buttons where the platform has them; elsewhere the card is sent as text."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"card": {"type": "object", "properties": {
                    "title": {"type": "string"}, "description": {"type": "string"},
                    "children": {"type": "array", "items": {"type": "string"}},
                    "actions": {"type": "array", "items": {"type": "object", "properties": {"label": {"type": "string"}, "url": {"type": "string"}}, "required": ["label", "url"]}}}},
                "fallback_text": {"type": "string"}, "to": to()}, "required": ["card"]})
    }
    fn set(&self) -> Set {
        Set::NanoClaw
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(async move { send_card(tb, input) })
    }
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
