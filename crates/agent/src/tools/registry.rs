//! The one list of tools: [`Toolbox::specs`], [`Toolbox::call`] and the MCP server (through
//! `specs`/`call` of a [`Set::NanoClaw`] toolbox) all read [`REGISTRY`].
//!
//! External MCP tools are not in it: their servers are discovered at runtime (`external.rs`).

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

use super::{bash, fs, nanoclaw, skills, web, Set, ToolSpec, Toolbox};

/// A running tool call: text for the model, or an error it reads.
pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;

/// A tool: its contract (name, description, input schema), which toolboxes offer it, and its call.
///
/// Tools are reached as `&dyn Tool` in one static list, and `async fn` in a trait cannot be
/// called through `dyn`: `call` returns a boxed future instead, as `Provider::turn` does.
pub trait Tool: Sync {
    /// Name (the contract).
    fn name(&self) -> &'static str;
    /// What it does, for the model.
    fn description(&self) -> &'static str;
    /// JSON schema of the input.
    fn input_schema(&self) -> Value;
    /// The narrowest toolbox set offering it: [`Set::NanoClaw`] tools are in every toolbox
    /// (the MCP server's included), [`Set::All`] ones only in the native loop's.
    fn set(&self) -> Set;
    /// Whether `specs` lists it in `tb` (the `skill` tool only when there are skills). Calls
    /// by name are served either way.
    fn offered(&self, _tb: &Toolbox) -> bool {
        true
    }
    /// Runs it.
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a>;
    /// The tool as the model sees it.
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: self.name(),
            description: self.description(),
            input_schema: self.input_schema(),
        }
    }
}

/// Every tool, in the order the model sees them: built-ins, `skill`, the NanoClaw tools.
pub static REGISTRY: &[&dyn Tool] = &[
    &bash::Bash,
    &fs::Read,
    &fs::Write,
    &fs::Edit,
    &fs::Glob,
    &fs::Grep,
    &web::WebFetch,
    &skills::SkillTool,
    &nanoclaw::messages::SendMessage,
    &nanoclaw::messages::SendFile,
    &nanoclaw::messages::EditMessage,
    &nanoclaw::messages::AddReaction,
    &nanoclaw::messages::SendCard,
    &nanoclaw::questions::AskUserQuestion,
    &nanoclaw::tasks::ScheduleTask,
    &nanoclaw::tasks::ListTasks,
    &nanoclaw::tasks::UpdateTask,
    &nanoclaw::tasks::PAUSE_TASK,
    &nanoclaw::tasks::RESUME_TASK,
    &nanoclaw::tasks::CANCEL_TASK,
    &nanoclaw::agents::SendToAgent,
    &nanoclaw::agents::CreateAgent,
    &nanoclaw::requests::InstallPackages,
    &nanoclaw::requests::AddMcpServer,
    &nanoclaw::requests::RequestRebuild,
];

impl Set {
    /// Whether a toolbox of this set offers a tool declaring `tool`.
    pub fn offers(self, tool: Set) -> bool {
        self == Set::All || tool == Set::NanoClaw
    }
}

/// The tool a toolbox of `set` runs under `name`.
pub fn find(set: Set, name: &str) -> Option<&'static dyn Tool> {
    REGISTRY
        .iter()
        .copied()
        .find(|t| t.name() == name && set.offers(t.set()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_not_external() {
        let mut seen = std::collections::HashSet::new();
        for t in REGISTRY {
            assert!(seen.insert(t.name()), "{} twice in REGISTRY", t.name());
            // `Toolbox::call` sends these names to the external servers first.
            assert!(!t.name().starts_with(super::super::external::PREFIX));
            assert_eq!(t.spec().name, t.name());
        }
    }

    #[test]
    fn a_nanoclaw_toolbox_finds_only_nanoclaw_tools() {
        for t in REGISTRY {
            assert!(find(Set::All, t.name()).is_some());
            assert_eq!(
                find(Set::NanoClaw, t.name()).is_some(),
                t.set() == Set::NanoClaw
            );
        }
        assert!(find(Set::All, "nope").is_none());
    }
}
