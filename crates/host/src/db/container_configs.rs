//! `container_configs`: per agent group container and runner settings, in NanoClaw v2's shape
//! plus our `limits`. Columns are read raw here; each consumer parses its own JSON and reports
//! what it cannot read (a bad value must not stop the runner from starting).

use rusqlite::{Connection, OptionalExtension};

/// One agent group's row (absent row = every default).
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    /// Provider (v2: after the session's, before the default).
    pub provider: Option<String>,
    /// Model id.
    pub model: Option<String>,
    /// Reasoning effort (v2: low | medium | high …), passed to the runner.
    pub effort: Option<String>,
    /// Image to run instead of the default one.
    pub image_tag: Option<String>,
    /// The name the agent answers to, over `ASSISTANT_NAME`.
    pub assistant_name: Option<String>,
    /// Most messages in one prompt.
    pub max_messages_per_prompt: Option<i64>,
    /// JSON `"all"` or a list of skill names.
    pub skills: String,
    /// JSON `{name: {command, args, env}}`.
    pub mcp_servers: String,
    /// JSON list of Debian packages.
    pub packages_apt: String,
    /// JSON list of npm packages.
    pub packages_npm: String,
    /// JSON `[{hostPath, containerPath, readonly}]`.
    pub additional_mounts: String,
    /// disabled | group | global.
    pub cli_scope: String,
    /// Ours: JSON `{memoryMb, cpus, pids, network}`.
    pub limits: String,
}

impl Default for ContainerConfig {
    /// The column defaults.
    fn default() -> Self {
        Self {
            provider: None,
            model: None,
            effort: None,
            image_tag: None,
            assistant_name: None,
            max_messages_per_prompt: None,
            skills: "\"all\"".into(),
            mcp_servers: "{}".into(),
            packages_apt: "[]".into(),
            packages_npm: "[]".into(),
            additional_mounts: "[]".into(),
            cli_scope: "group".into(),
            limits: "{}".into(),
        }
    }
}

/// The row of an agent group, if it has one.
pub fn get(c: &Connection, agent_group: &str) -> rusqlite::Result<Option<ContainerConfig>> {
    c.prepare_cached(
        "SELECT provider, model, effort, image_tag, assistant_name, max_messages_per_prompt,
                skills, mcp_servers, packages_apt, packages_npm, additional_mounts, cli_scope, limits
         FROM container_configs WHERE agent_group_id = ?1",
    )?
    .query_row([agent_group], |r| {
        Ok(ContainerConfig {
            provider: r.get::<_, Option<String>>(0)?.filter(|s| !s.is_empty()),
            model: r.get::<_, Option<String>>(1)?.filter(|s| !s.is_empty()),
            effort: r.get::<_, Option<String>>(2)?.filter(|s| !s.is_empty()),
            image_tag: r.get::<_, Option<String>>(3)?.filter(|s| !s.is_empty()),
            assistant_name: r.get::<_, Option<String>>(4)?.filter(|s| !s.is_empty()),
            max_messages_per_prompt: r.get(5)?,
            skills: r.get(6)?,
            mcp_servers: r.get(7)?,
            packages_apt: r.get(8)?,
            packages_npm: r.get(9)?,
            additional_mounts: r.get(10)?,
            cli_scope: r.get(11)?,
            limits: r.get(12)?,
        })
    })
    .optional()
}
