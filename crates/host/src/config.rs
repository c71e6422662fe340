//! Settings: environment variables override `nanoclaw.toml`; secrets come from `.env`.
//!
//! Each module reads the keys it uses where it uses them (`settings.u64("IDLE_TIMEOUT", …)`),
//! so there is no central struct to keep in sync with the features.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// Loaded settings of one home.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    file: HashMap<String, String>,
    secrets: HashMap<String, String>,
}

impl Settings {
    /// Reads `nanoclaw.toml` and `.env` of a home (both optional).
    pub fn load(home: &nanoclaw_protocol::Home) -> anyhow::Result<Self> {
        let mut file = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(home.config_file()) {
            let table: toml::Table = text
                .parse()
                .map_err(|e| anyhow::anyhow!("{}: {e}", home.config_file().display()))?;
            for (k, v) in table {
                let v = match v {
                    toml::Value::String(s) => s,
                    other => other.to_string(),
                };
                file.insert(k.to_ascii_uppercase(), v);
            }
        }
        Ok(Self {
            file,
            secrets: read_env_file(&home.env_file()),
        })
    }

    /// A setting: env var first, then `nanoclaw.toml` (keys case-insensitive there), then
    /// `.env` (where NanoClaw v2 keeps `ASSISTANT_NAME`, `TZ` and the rest beside its secrets).
    pub fn get(&self, key: &str) -> Option<String> {
        std::env::var(key)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| self.file.get(key).cloned())
            .or_else(|| self.secrets.get(key).cloned().filter(|v| !v.is_empty()))
    }

    /// A secret: env var first, then `.env`.
    pub fn secret(&self, key: &str) -> Option<String> {
        self.get(key)
    }

    /// The name the agent answers to (`ASSISTANT_NAME`, "Andy" as in NanoClaw v2).
    pub fn assistant_name(&self) -> String {
        self.get(nanoclaw_protocol::env::ASSISTANT_NAME)
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "Andy".into())
    }

    /// The provider of a session nobody chose one for: `NANOCLAW_PROVIDER`, else NanoClaw v2's
    /// default (`claude`, Claude Code) when a Claude credential is configured and the CLI is
    /// there, else `anthropic` (our own loop) for an Anthropic key without the CLI, else
    /// `mock`, so a fresh clone with no key still answers.
    pub fn default_provider(&self) -> String {
        use nanoclaw_protocol::providers::{self, FALLBACK, V2_DEFAULT};
        if let Some(p) = self.get(nanoclaw_protocol::env::PROVIDER) {
            return p;
        }
        let has_key = |name: &str| {
            providers::get(name)
                .and_then(|p| p.credential_found(|k| self.secret(k)))
                .is_some()
        };
        if has_key(V2_DEFAULT) && self.claude_cli().is_some() {
            return V2_DEFAULT.into();
        }
        // A Claude key without Claude Code: the same model through our native loop.
        if has_key("anthropic") {
            return "anthropic".into();
        }
        FALLBACK.into()
    }

    /// The Claude Code CLI the runner would start: `NANOCLAW_CLAUDE_BIN`, else `claude` on
    /// `PATH`.
    pub fn claude_cli(&self) -> Option<std::path::PathBuf> {
        if let Some(p) = self.get(nanoclaw_protocol::env::CLAUDE_BIN) {
            return Some(p.into());
        }
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("claude"))
                .find(|f| f.is_file())
        })
    }

    /// A numeric setting; an unparsable value is reported once and the default used.
    pub fn u64(&self, key: &str, default: u64) -> u64 {
        match self.get(key) {
            Some(v) => v.trim().parse().unwrap_or_else(|_| {
                tracing::warn!(key, value = %v, default, "setting is not a number; using the default");
                default
            }),
            None => default,
        }
    }

    /// A duration setting given in milliseconds.
    pub fn millis(&self, key: &str, default_ms: u64) -> Duration {
        Duration::from_millis(self.u64(key, default_ms))
    }

    /// The configured timezone (`TZ`, read by `protocol::time::parse_tz` as the runner reads
    /// it), UTC when unset or unknown (an unknown zone is logged once).
    pub fn timezone(&self) -> chrono_tz::Tz {
        let tz = self.get(nanoclaw_protocol::env::TZ);
        nanoclaw_protocol::time::parse_tz(tz.as_deref()).unwrap_or_else(|e| {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| tracing::warn!("{e}"));
            chrono_tz::UTC
        })
    }
}

/// Parses `KEY=VALUE` lines (comments, blank lines and optional quotes allowed).
fn read_env_file(path: &Path) -> HashMap<String, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                return None;
            }
            let (k, v) = l.trim_start_matches("export ").split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_provider_follows_the_key_and_the_cli() {
        let dir = tempfile::tempdir().unwrap();
        let home = nanoclaw_protocol::Home::new(dir.path());
        let load = |env: &str, toml: &str| {
            std::fs::write(home.env_file(), env).unwrap();
            std::fs::write(home.config_file(), toml).unwrap();
            Settings::load(&home).unwrap()
        };
        if std::env::var_os("NANOCLAW_PROVIDER").is_some() {
            return; // the environment decides; nothing to check here
        }
        assert_eq!(load("", "").default_provider(), "mock");
        let claude = load(
            "ANTHROPIC_API_KEY=sk-ant-x\n",
            "NANOCLAW_CLAUDE_BIN = \"/opt/claude/bin/claude\"\n",
        );
        assert_eq!(claude.default_provider(), "claude");
        let oauth = load(
            "CLAUDE_CODE_OAUTH_TOKEN=tok\n",
            "NANOCLAW_CLAUDE_BIN = \"/opt/claude/bin/claude\"\n",
        );
        assert_eq!(oauth.default_provider(), "claude");
        if std::env::var_os("NANOCLAW_CLAUDE_BIN").is_none() {
            let no_cli = load("ANTHROPIC_API_KEY=sk-ant-x\n", "");
            if no_cli.claude_cli().is_none() {
                assert_eq!(no_cli.default_provider(), "anthropic");
            }
        }
        let chosen = load(
            "ANTHROPIC_API_KEY=sk-ant-x\n",
            "NANOCLAW_PROVIDER = \"openai\"\n",
        );
        assert_eq!(chosen.default_provider(), "openai");
    }

    #[test]
    fn env_file_and_toml() {
        let dir = tempfile::tempdir().unwrap();
        let home = nanoclaw_protocol::Home::new(dir.path());
        std::fs::write(
            home.env_file(),
            "# c\nNC_TEST_SECRET=\"abc\"\nexport NC_X='y'\n",
        )
        .unwrap();
        std::fs::write(
            home.config_file(),
            "nc_test_num = 42\nnc_test_str = \"s\"\n",
        )
        .unwrap();
        let s = Settings::load(&home).unwrap();
        assert_eq!(s.secret("NC_TEST_SECRET").as_deref(), Some("abc"));
        assert_eq!(s.secret("NC_X").as_deref(), Some("y"));
        assert_eq!(s.u64("NC_TEST_NUM", 1), 42);
        assert_eq!(s.u64("NC_TEST_STR", 7), 7);
        // NanoClaw v2 keeps settings (ASSISTANT_NAME, TZ) in .env beside the secrets.
        assert_eq!(s.get("NC_TEST_SECRET").as_deref(), Some("abc"));
    }

    #[test]
    fn timezone_as_the_runner_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let home = nanoclaw_protocol::Home::new(dir.path());
        let tz = |v: &str| {
            std::fs::write(home.env_file(), format!("TZ={v}\n")).unwrap();
            Settings::load(&home).unwrap().timezone()
        };
        if std::env::var_os("TZ").is_some() {
            return; // the environment would win over .env
        }
        assert_eq!(tz(":Europe/Paris"), chrono_tz::Europe::Paris);
        assert_eq!(tz("' Europe/Paris '"), chrono_tz::Europe::Paris);
        assert_eq!(tz("Mars/Olympus"), chrono_tz::UTC);
    }
}
