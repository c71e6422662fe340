//! Path resolution for file tools: everything resolves inside the workspace roots.
//!
//! Relative paths start at the agent folder (the tools' cwd). A path is accepted only when it
//! stays under a root after resolving `..` and symlinks of its existing part, so neither
//! `../../etc/passwd` nor a symlink planted in the workspace can reach outside.

use std::path::{Component, Path, PathBuf};

/// Where file tools may read and write.
#[derive(Debug, Clone)]
pub struct Roots {
    /// The agent folder: cwd of tools, read-write.
    pub agent: PathBuf,
    /// The session folder (`/workspace`), read-write except the session DBs.
    pub session: PathBuf,
    /// Shared read-only folders (global, skills).
    pub read_only: Vec<PathBuf>,
}

/// Files of the protocol that tools must never write.
const PROTECTED: &[&str] = &["inbound.db", "outbound.db", ".heartbeat"];

fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Canonicalises the longest existing prefix and appends the rest.
fn real(p: &Path) -> PathBuf {
    let mut existing = p.to_path_buf();
    let mut tail = Vec::new();
    while !existing.exists() {
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                tail.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut out = existing.canonicalize().unwrap_or(existing);
    for t in tail.into_iter().rev() {
        out.push(t);
    }
    out
}

fn canon(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

impl Roots {
    /// Resolves a tool's path argument; `write` asks for a writable location.
    pub fn resolve(&self, path: &str, write: bool) -> Result<PathBuf, String> {
        if path.is_empty() {
            return Err("path is empty".into());
        }
        if path.contains('\0') {
            return Err("path contains a NUL byte".into());
        }
        let joined = if Path::new(path).is_absolute() {
            PathBuf::from(path)
        } else {
            self.agent.join(path)
        };
        let resolved = real(&lexical(&joined));
        let (agent, session) = (canon(&self.agent), canon(&self.session));
        let in_agent = resolved.starts_with(&agent);
        let in_session = resolved.starts_with(&session);
        let in_ro = self
            .read_only
            .iter()
            .any(|r| resolved.starts_with(canon(r)));
        if !(in_agent || in_session || in_ro) {
            return Err(format!("{path}: outside the workspace"));
        }
        if write {
            if !(in_agent || in_session) {
                return Err(format!("{path}: read-only location"));
            }
            if !in_agent
                && resolved.parent() == Some(session.as_path())
                && resolved
                    .file_name()
                    .is_some_and(|n| PROTECTED.iter().any(|p| n == *p))
            {
                return Err(format!("{path}: protected session file"));
            }
        }
        Ok(resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_inside() {
        let d = tempfile::tempdir().unwrap();
        let session = d.path().join("sess");
        let agent = session.join("agent");
        std::fs::create_dir_all(&agent).unwrap();
        std::fs::write(session.join("outbound.db"), "").unwrap();
        let roots = Roots {
            agent: agent.clone(),
            session: session.clone(),
            read_only: vec![],
        };
        assert!(roots
            .resolve("notes.txt", true)
            .unwrap()
            .ends_with("agent/notes.txt"));
        assert!(roots.resolve("../../../etc/passwd", false).is_err());
        assert!(roots.resolve("/etc/passwd", false).is_err());
        assert!(roots.resolve("../outbound.db", true).is_err());
        assert!(roots.resolve("../outbound.db", false).is_ok());
        std::os::unix::fs::symlink("/etc", agent.join("link")).unwrap();
        assert!(roots.resolve("link/passwd", false).is_err());
    }
}
