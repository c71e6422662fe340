//! External MCP servers from the agent group's container config (`NANOCLAW_MCP_SERVERS`:
//! `{"name": {"command", "args"?, "env"?}}`), reached with rmcp's client over stdio. Their
//! tools are offered to the native loop as `mcp__<server>__<tool>`.

use std::sync::Arc;

use rmcp::model::{CallToolRequestParams, ContentBlock};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;

use super::ToolSpec;

/// One connected server.
pub struct Server {
    name: String,
    client: RunningService<RoleClient, ()>,
    /// Its tools, as offered to the model.
    pub specs: Vec<ToolSpec>,
}

/// Prefix of external tool names.
pub const PREFIX: &str = "mcp__";

fn leak(s: String) -> &'static str {
    // Tool specs are built once per runner from a handful of servers: leaking keeps
    // `ToolSpec` borrow-free like the built-ins' static names.
    Box::leak(s.into_boxed_str())
}

/// Starts and lists every configured server; a server that fails is logged and skipped.
pub async fn connect(config: &str) -> Vec<Arc<Server>> {
    let servers: serde_json::Map<String, Value> = match serde_json::from_str(config) {
        Ok(Value::Object(m)) => m,
        _ => {
            tracing::warn!("NANOCLAW_MCP_SERVERS is not a JSON object; no external MCP servers");
            return vec![];
        }
    };
    let mut out = Vec::new();
    for (name, spec) in servers {
        if nanoclaw_protocol::names::validate(&name).is_err() {
            tracing::warn!(server = %name, "MCP server name refused");
            continue;
        }
        match start(&name, &spec).await {
            Ok(s) => out.push(Arc::new(s)),
            Err(e) => {
                tracing::warn!(server = %name, error = %format!("{e:#}"), "MCP server unavailable")
            }
        }
    }
    out
}

async fn start(name: &str, spec: &Value) -> anyhow::Result<Server> {
    let command = spec["command"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no command"))?;
    let mut cmd = tokio::process::Command::new(command);
    for a in spec["args"].as_array().into_iter().flatten() {
        if let Some(a) = a.as_str() {
            cmd.arg(a);
        }
    }
    for (k, v) in spec["env"].as_object().into_iter().flatten() {
        if let Some(v) = v.as_str() {
            cmd.env(k, v);
        }
    }
    let transport = TokioChildProcess::new(cmd)?;
    let client = ().serve(transport).await.map_err(|e| anyhow::anyhow!("handshake: {e}"))?;
    let tools = client.list_all_tools().await?;
    let specs = tools
        .into_iter()
        .map(|t| ToolSpec {
            name: leak(format!("{PREFIX}{name}__{}", t.name)),
            description: leak(t.description.map(|d| d.to_string()).unwrap_or_default()),
            input_schema: Value::Object((*t.input_schema).clone()),
        })
        .collect();
    Ok(Server {
        name: name.to_string(),
        client,
        specs,
    })
}

impl Server {
    /// Whether a tool name belongs to this server; returns the server's own tool name.
    pub fn owns<'a>(&self, tool: &'a str) -> Option<&'a str> {
        tool.strip_prefix(PREFIX)?
            .strip_prefix(self.name.as_str())?
            .strip_prefix("__")
    }

    /// Calls one of its tools.
    pub async fn call(&self, tool: &str, input: &Value) -> Result<String, String> {
        let mut params = CallToolRequestParams::new(tool.to_string());
        if let Value::Object(m) = input {
            params = params.with_arguments(m.clone());
        }
        let r = self
            .client
            .call_tool(params)
            .await
            .map_err(|e| format!("MCP call failed: {e}"))?;
        let text = r
            .content
            .iter()
            .filter_map(|c| match c {
                ContentBlock::Text(t) => Some(t.text.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n");
        if r.is_error.unwrap_or(false) {
            Err(text)
        } else {
            Ok(text)
        }
    }
}
