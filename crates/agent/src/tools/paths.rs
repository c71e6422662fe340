//! Path resolution for file tools: everything resolves inside the workspace roots.
//!
//! Relative paths start at the agent folder (the tools' cwd). A path names a root (the most
//! specific one it lies in, after `..` is folded lexically) and a path beneath it; the file is
//! then reached through `protocol::beneath` from that root's handle, so no symlink anywhere
//! below the root is ever followed — not to read, not to write, and not a dangling one to
//! create its target (the host applies the same rules to the same folders).

use std::path::{Component, Path, PathBuf};

use nanoclaw_protocol::beneath::{Dir, Error};

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

fn canon(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// A tool's path: a root and the path beneath it.
#[derive(Debug, Clone)]
pub struct Located {
    /// The root, as configured.
    pub root: PathBuf,
    /// Beneath the root (empty for the root itself).
    pub rel: PathBuf,
    /// The full path, for messages and walks.
    pub shown: PathBuf,
}

impl Located {
    /// The root's handle.
    pub fn dir(&self) -> Result<Dir, String> {
        Dir::open(&self.root).map_err(|e| self.explain(e))
    }

    /// A one-line reason for the model.
    pub fn explain(&self, e: Error) -> String {
        let p = self.shown.display();
        match e {
            Error::Link { path } => format!(
                "{p}: {} is a symbolic link (file tools never follow links)",
                path.display()
            ),
            Error::NotRegular { kind, .. } => format!("{p}: not a regular file ({kind})"),
            Error::TooLarge { cap, .. } => format!("{p}: larger than {cap} bytes"),
            Error::Escapes { .. } => format!("{p}: outside the workspace"),
            Error::Io { source, .. } => format!("{p}: {source}"),
        }
    }
}

impl Roots {
    /// Places a tool's path argument beneath its root; `write` asks for a writable location.
    pub fn locate(&self, path: &str, write: bool) -> Result<Located, String> {
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
        let shown = lexical(&joined);
        // (root, writable, is the session root); the most specific root wins (the agent folder
        // may sit inside the session folder).
        let mut roots = vec![(&self.agent, true, false), (&self.session, true, true)];
        roots.extend(self.read_only.iter().map(|r| (r, false, false)));
        let mut best: Option<(usize, &PathBuf, PathBuf, bool, bool)> = None;
        for (root, writable, session) in roots {
            for form in [lexical(root), canon(root)] {
                if let Ok(rel) = shown.strip_prefix(&form) {
                    let depth = form.components().count();
                    if best.as_ref().is_none_or(|b| depth > b.0) {
                        best = Some((depth, root, rel.to_path_buf(), writable, session));
                    }
                }
            }
        }
        let Some((_, root, rel, writable, session)) = best else {
            return Err(format!("{path}: outside the workspace"));
        };
        if write {
            if !writable {
                return Err(format!("{path}: read-only location"));
            }
            if session
                && rel.components().count() == 1
                && PROTECTED.iter().any(|p| rel.as_os_str() == *p)
            {
                return Err(format!("{path}: protected session file"));
            }
        }
        Ok(Located {
            root: root.clone(),
            rel,
            shown,
        })
    }

    /// Opens a regular file for reading beneath its root (no link followed), at most `cap`
    /// bytes; returns it with where it is.
    pub fn open_file(
        &self,
        path: &str,
        cap: u64,
    ) -> Result<(nanoclaw_protocol::beneath::Opened, Located), String> {
        let loc = self.locate(path, false)?;
        if loc.rel.as_os_str().is_empty() {
            return Err(format!("{}: is a directory", loc.shown.display()));
        }
        let dir = loc.dir()?;
        match dir.open_file(&loc.rel, cap) {
            Ok(o) => Ok((o, loc)),
            Err(e) => Err(loc.explain(e)),
        }
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
        let l = roots.locate("notes.txt", true).unwrap();
        assert_eq!(l.root, agent);
        assert_eq!(l.rel, Path::new("notes.txt"));
        assert!(roots.locate("../../../etc/passwd", false).is_err());
        assert!(roots.locate("/etc/passwd", false).is_err());
        assert!(roots.locate("../outbound.db", true).is_err());
        let l = roots.locate("../outbound.db", false).unwrap();
        assert_eq!(
            (l.root, l.rel),
            (session.clone(), PathBuf::from("outbound.db"))
        );
        std::os::unix::fs::symlink("/etc", agent.join("link")).unwrap();
        let e = roots.open_file("link/passwd", 1 << 20).unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
        // A link that stays inside is refused too: there is no link resolution to get wrong.
        std::fs::write(agent.join("real.txt"), "x").unwrap();
        std::os::unix::fs::symlink(agent.join("real.txt"), agent.join("inside")).unwrap();
        assert!(roots.open_file("inside", 1 << 20).is_err());
    }
}
