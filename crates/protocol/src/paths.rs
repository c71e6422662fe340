//! The on-disk layout of a NanoClaw home (DESIGN §3), NanoClaw v2 compatible.

use std::path::{Path, PathBuf};

use crate::{names, Result};

/// A NanoClaw home directory and the well-known paths inside it.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Wraps a home root; nothing is created.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    /// The home root.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `data/`.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }
    /// `data/v2.db`, the central DB.
    pub fn central_db(&self) -> PathBuf {
        self.data_dir().join("v2.db")
    }
    /// `data/cli.sock`, the terminal channel.
    pub fn cli_sock(&self) -> PathBuf {
        self.data_dir().join("cli.sock")
    }
    /// `data/control.sock`, the admin API.
    pub fn control_sock(&self) -> PathBuf {
        self.data_dir().join("control.sock")
    }
    /// `data/host.lock`, held by the one running host.
    pub fn host_lock(&self) -> PathBuf {
        self.data_dir().join("host.lock")
    }
    /// `data/v2-sessions/`.
    pub fn sessions_dir(&self) -> PathBuf {
        self.data_dir().join("v2-sessions")
    }
    /// `data/v2-sessions/<agent_group_id>/<session_id>/` (both ids validated).
    pub fn session(&self, agent_group_id: &str, session_id: &str) -> Result<SessionPaths> {
        names::validate(agent_group_id)?;
        names::validate(session_id)?;
        Ok(SessionPaths::new(
            self.sessions_dir().join(agent_group_id).join(session_id),
        ))
    }
    /// `data/v2-sessions/<agent_group_id>/.claude-shared/`.
    pub fn claude_shared(&self, agent_group_id: &str) -> Result<PathBuf> {
        names::validate(agent_group_id)?;
        Ok(self
            .sessions_dir()
            .join(agent_group_id)
            .join(".claude-shared"))
    }
    /// `groups/`.
    pub fn groups_dir(&self) -> PathBuf {
        self.root.join("groups")
    }
    /// `groups/<folder>/` (folder validated).
    pub fn group_dir(&self, folder: &str) -> Result<PathBuf> {
        names::validate(folder)?;
        Ok(self.groups_dir().join(folder))
    }
    /// `groups/global/`.
    pub fn global_dir(&self) -> PathBuf {
        self.groups_dir().join("global")
    }
    /// `logs/`.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// `nanoclaw.toml`.
    pub fn config_file(&self) -> PathBuf {
        self.root.join("nanoclaw.toml")
    }
    /// `.env` (secrets).
    pub fn env_file(&self) -> PathBuf {
        self.root.join(".env")
    }
}

/// The paths of one session folder; the same layout is seen by the runner at `/workspace`.
#[derive(Debug, Clone)]
pub struct SessionPaths {
    dir: PathBuf,
}

impl SessionPaths {
    /// Wraps a session folder.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    /// The session folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// `inbound.db`.
    pub fn inbound_db(&self) -> PathBuf {
        self.dir.join("inbound.db")
    }
    /// `outbound.db`.
    pub fn outbound_db(&self) -> PathBuf {
        self.dir.join("outbound.db")
    }
    /// `.heartbeat`.
    pub fn heartbeat(&self) -> PathBuf {
        self.dir.join(".heartbeat")
    }
    /// `inbox/<message_id>/` (id validated).
    pub fn inbox(&self, message_id: &str) -> Result<PathBuf> {
        names::validate(message_id)?;
        Ok(self.dir.join("inbox").join(message_id))
    }
    /// `outbox/<message_id>/` (id validated).
    pub fn outbox(&self, message_id: &str) -> Result<PathBuf> {
        names::validate(message_id)?;
        Ok(self.dir.join("outbox").join(message_id))
    }
}
