//! `nanoclaw-agent mcp`: the NanoClaw tools as a stdio MCP server (rmcp), for providers with a
//! tool loop of their own (Claude Code). It shares nothing with the runner process but the
//! session DBs: rows it writes take the next odd seq under SQLite's write lock like the runner's.
//!
//! The turn it serves (trigger route, `in_reply_to`) is published by the runner in outbound.db's
//! session_state under [`TURN_KEY`] and read again at every call: the DB is already what both
//! processes share and trust, the read is one indexed row, and a Claude Code process that
//! outlives a turn still stamps each call with the turn that is running when it is made.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::Value;

use crate::store::{self, Shared, Store};
use crate::tools::{Set, Toolbox, TurnInfo};
use crate::Config;

/// session_state key of the running turn's [`TurnInfo`] (JSON), for the MCP server.
pub const TURN_KEY: &str = "turn:mcp";

/// Publishes the turn the MCP server's calls belong to (`None`: no turn is running).
pub fn publish_turn(store: &Shared, turn: Option<&TurnInfo>) -> anyhow::Result<()> {
    let s = store::lock(store);
    match turn {
        Some(t) => s.state_set(TURN_KEY, &serde_json::to_string(t)?),
        None => s.state_delete(TURN_KEY),
    }
}

/// The turn published by the runner; a missing or unreadable one is no turn (sends fall back
/// to the session's default route, as outside a turn in the native loop).
pub fn published_turn(store: &Shared) -> TurnInfo {
    let raw = store::lock(store).state_get(TURN_KEY);
    match raw {
        Ok(Some(v)) => serde_json::from_str(&v).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "unreadable {TURN_KEY} in session_state; no turn context");
            TurnInfo::default()
        }),
        Ok(None) => TurnInfo::default(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read {TURN_KEY}; no turn context");
            TurnInfo::default()
        }
    }
}

/// The MCP face of a toolbox.
#[derive(Clone)]
pub struct Server {
    tools: Arc<Toolbox>,
}

impl Server {
    /// A server over the session of `cfg`, offering the NanoClaw tools.
    pub fn new(cfg: &Config) -> anyhow::Result<Self> {
        let store = Store::open(&cfg.workspace)?.shared();
        Ok(Self {
            tools: Arc::new(Toolbox::new(cfg, store, Set::NanoClaw)),
        })
    }

    /// The tools `tools/list` answers with: the NanoClaw set of the registry.
    fn listed(&self) -> Vec<Tool> {
        self.tools
            .specs()
            .into_iter()
            .map(|s| {
                let schema = match s.input_schema {
                    Value::Object(m) => m,
                    _ => Default::default(),
                };
                Tool::new(s.name, s.description, Arc::new(schema))
            })
            .collect()
    }
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions(
            "NanoClaw tools: talk to the user's chats, schedule tasks, reach other agents.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.listed()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let input = Value::Object(request.arguments.unwrap_or_default());
        // Concurrent calls all belong to the turn running now: whichever sets it last sets the
        // same facts.
        self.tools.set_turn(published_turn(&self.tools.store));
        let out = self.tools.call(&request.name, &input).await;
        let content = vec![ContentBlock::text(out.text)];
        Ok(if out.is_error {
            CallToolResult::error(content)
        } else {
            CallToolResult::success(content)
        }
        .into())
    }
}

/// Serves MCP on stdin/stdout until the client goes away.
pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    let server = Server::new(&cfg)?;
    let running = server
        .serve(rmcp::transport::io::stdio())
        .await
        .map_err(|e| anyhow::anyhow!("MCP handshake failed: {e}"))?;
    running.waiting().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::REGISTRY;

    /// Claude Code sees exactly the NanoClaw tools of the registry (no built-in, no `skill`
    /// even with skills: it has its own).
    #[test]
    fn serves_every_nanoclaw_tool_of_the_registry() {
        let dir = tempfile::tempdir().unwrap();
        let skills = dir.path().join("skills");
        std::fs::create_dir_all(skills.join("notes")).unwrap();
        std::fs::write(skills.join("notes/SKILL.md"), "---\nname: notes\n---\n").unwrap();
        let mut cfg = Config::from_env();
        cfg.workspace = dir.path().to_path_buf();
        cfg.agent_dir = dir.path().join("agent");
        cfg.global_dir = dir.path().join("global");
        cfg.skills_dirs = vec![skills];
        let served: Vec<String> = Server::new(&cfg)
            .unwrap()
            .listed()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        let nanoclaw: Vec<String> = REGISTRY
            .iter()
            .filter(|t| t.set() == Set::NanoClaw)
            .map(|t| t.name().to_string())
            .collect();
        assert_eq!(served, nanoclaw);
        assert_eq!(served.len(), 17);
    }
}
