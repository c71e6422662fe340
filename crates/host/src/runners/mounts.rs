//! Extra mounts for containers, only through the mount allowlist
//! (`~/.config/nanoclaw/mount-allowlist.json`, outside the home dir and never mounted).
//!
//! Allowlist: `{"allowedRoots": [{"path": "~/projects", "allowReadWrite": false}],
//! "blockedPatterns": ["secret"]}`. A request (`container_configs.additional_mounts`, a JSON array of
//! `{"hostPath": …, "containerPath"?: …, "readonly"?: bool}`) is canonicalised (symlinks and `..`
//! resolved) before the checks, so neither can escape an allowed root.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Names never mounted, wherever they are.
const ALWAYS_BLOCKED: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".aws",
    ".env",
    ".netrc",
    ".docker",
    "credentials",
    ".kube",
    ".config/nanoclaw",
];

/// One allowed root.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Root {
    /// Directory (may start with `~/`).
    pub path: String,
    /// Whether mounts under it may be read-write.
    #[serde(default)]
    pub allow_read_write: bool,
}

/// The allowlist file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Allowlist {
    /// Roots under which mounts are allowed.
    #[serde(default)]
    pub allowed_roots: Vec<Root>,
    /// Extra path fragments to refuse.
    #[serde(default)]
    pub blocked_patterns: Vec<String>,
}

/// One requested mount.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// Path on the host.
    pub host_path: String,
    /// Name under `/workspace/extra/` (defaults to the host folder's name).
    pub container_path: Option<String>,
    /// Read-only (the default).
    pub readonly: Option<bool>,
}

/// A validated bind mount.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    /// Canonical host path.
    pub host: PathBuf,
    /// Path in the container.
    pub container: String,
    /// Read-only.
    pub readonly: bool,
}

fn expand(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

/// The allowlist's location.
pub fn allowlist_path() -> Option<PathBuf> {
    std::env::var_os("NANOCLAW_MOUNT_ALLOWLIST")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".config/nanoclaw/mount-allowlist.json"))
        })
}

/// Loads the allowlist; a missing file allows nothing.
pub fn load(path: Option<&Path>) -> anyhow::Result<Allowlist> {
    match path.map(std::fs::read_to_string) {
        Some(Ok(text)) => {
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("mount allowlist: {e}"))
        }
        _ => Ok(Allowlist::default()),
    }
}

/// Validates requested mounts; each refusal is an error naming the path and the reason.
pub fn validate(
    allow: &Allowlist,
    nanoclaw_home: &Path,
    requests: &[Request],
) -> anyhow::Result<Vec<Mount>> {
    let home = std::fs::canonicalize(nanoclaw_home).unwrap_or_else(|_| nanoclaw_home.to_path_buf());
    let mut out = Vec::new();
    for r in requests {
        let host = std::fs::canonicalize(expand(&r.host_path))
            .map_err(|e| anyhow::anyhow!("extra mount {:?}: {e}", r.host_path))?;
        let text = host.to_string_lossy();
        if host.starts_with(&home) || home.starts_with(&host) {
            anyhow::bail!(
                "extra mount {:?}: the NanoClaw home (data, secrets) is never mounted",
                r.host_path
            );
        }
        if let Some(b) = ALWAYS_BLOCKED
            .iter()
            .map(|s| s.to_string())
            .chain(allow.blocked_patterns.iter().cloned())
            .find(|b| text.contains(b.as_str()))
        {
            anyhow::bail!("extra mount {:?}: blocked ({b})", r.host_path);
        }
        let root = allow
            .allowed_roots
            .iter()
            .find(|root| {
                std::fs::canonicalize(expand(&root.path)).is_ok_and(|rp| host.starts_with(rp))
            })
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "extra mount {:?}: not under an allowed root of the mount allowlist",
                    r.host_path
                )
            })?;
        let name = match &r.container_path {
            Some(n) => n.clone(),
            None => host
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        nanoclaw_protocol::names::validate(&name)
            .map_err(|e| anyhow::anyhow!("extra mount {:?}: {e}", r.host_path))?;
        let readonly = r.readonly.unwrap_or(true) || !root.allow_read_write;
        out.push(Mount {
            host,
            container: format!("/workspace/extra/{name}"),
            readonly,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(p: &Path, rw: bool) -> Request {
        Request {
            host_path: p.to_string_lossy().into_owned(),
            container_path: None,
            readonly: Some(!rw),
        }
    }

    #[test]
    fn only_allowed_roots_never_home_never_escapes() {
        let t = tempfile::tempdir().unwrap();
        let allowed = t.path().join("projects");
        let other = t.path().join("private");
        let home = t.path().join("nchome");
        for d in [
            &allowed,
            &other,
            &home,
            &allowed.join("app"),
            &allowed.join(".ssh"),
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::os::unix::fs::symlink(&other, allowed.join("link")).unwrap();
        let allow = Allowlist {
            allowed_roots: vec![Root {
                path: allowed.to_string_lossy().into(),
                allow_read_write: false,
            }],
            blocked_patterns: vec![],
        };
        let ok = validate(&allow, &home, &[req(&allowed.join("app"), true)]).unwrap();
        assert_eq!(ok[0].container, "/workspace/extra/app");
        assert!(ok[0].readonly, "read-write needs allowReadWrite");
        for bad in [
            other.clone(),
            allowed.join("link"),
            allowed.join("app/../../private"),
            home.clone(),
            allowed.join(".ssh"),
        ] {
            assert!(
                validate(&allow, &home, &[req(&bad, false)]).is_err(),
                "{bad:?}"
            );
        }
        let mut r = req(&allowed.join("app"), false);
        r.container_path = Some("../etc".into());
        assert!(validate(&allow, &home, &[r]).is_err());
        assert!(validate(
            &Allowlist::default(),
            &home,
            &[req(&allowed.join("app"), false)]
        )
        .is_err());
    }
}
