//! Requests an approver decides: install_packages, add_mcp_server, request_rebuild. They
//! return at once; the decision arrives later as a system message.

use serde_json::{json, Value};

use crate::tools::{arg_str, Set, Tool, ToolFuture, Toolbox};

/// The `install_packages` tool.
pub struct InstallPackages;

impl Tool for InstallPackages {
    fn name(&self) -> &'static str {
        "install_packages"
    }
    fn description(&self) -> &'static str {
        "Ask to install apt/npm packages into your container image (an approver decides)."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"apt": {"type": "array", "items": {"type": "string"}},
                "npm": {"type": "array", "items": {"type": "string"}}, "reason": {"type": "string"}}, "required": ["reason"]})
    }
    fn set(&self) -> Set {
        Set::NanoClaw
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(install_packages(tb, input))
    }
}

/// The `add_mcp_server` tool.
pub struct AddMcpServer;

impl Tool for AddMcpServer {
    fn name(&self) -> &'static str {
        "add_mcp_server"
    }
    fn description(&self) -> &'static str {
        "Ask to add an MCP server to your configuration (an approver decides)."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"name": {"type": "string"}, "command": {"type": "string"},
                "args": {"type": "array", "items": {"type": "string"}}, "env": {"type": "object"}}, "required": ["name", "command"]})
    }
    fn set(&self) -> Set {
        Set::NanoClaw
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(add_mcp_server(tb, input))
    }
}

/// The `request_rebuild` tool.
pub struct RequestRebuild;

impl Tool for RequestRebuild {
    fn name(&self) -> &'static str {
        "request_rebuild"
    }
    fn description(&self) -> &'static str {
        "Ask for your container image to be rebuilt."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"reason": {"type": "string"}}, "required": ["reason"]})
    }
    fn set(&self) -> Set {
        Set::NanoClaw
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(request_rebuild(tb, input))
    }
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

async fn request_rebuild(tb: &Toolbox, input: &Value) -> Result<String, String> {
    let reason = arg_str(input, "reason")?;
    tb.system("request_rebuild", json!({"reason": reason}), false)
        .await
}
