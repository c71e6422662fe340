//! Other agents: send_to_agent (a chat row to an agent destination), create_agent.

use serde_json::{json, Value};

use super::opt_str;
use crate::tools::{arg_str, Set, Tool, ToolFuture, Toolbox};

/// The `send_to_agent` tool.
pub struct SendToAgent;

impl Tool for SendToAgent {
    fn name(&self) -> &'static str {
        "send_to_agent"
    }
    fn description(&self) -> &'static str {
        "Send a message to another agent (an agent destination)."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"to": {"type": "string"}, "text": {"type": "string"}}, "required": ["to", "text"]})
    }
    fn set(&self) -> Set {
        Set::NanoClaw
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(async move { send_to_agent(tb, input) })
    }
}

/// The `create_agent` tool.
pub struct CreateAgent;

impl Tool for CreateAgent {
    fn name(&self) -> &'static str {
        "create_agent"
    }
    fn description(&self) -> &'static str {
        "Create a new agent you can talk to."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"name": {"type": "string"}, "instructions": {"type": "string"}}, "required": ["name"]})
    }
    fn set(&self) -> Set {
        Set::NanoClaw
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(create_agent(tb, input))
    }
}

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
