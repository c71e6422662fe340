//! The provider table: every model provider a runner can run, with what the host (default
//! provider, credential proxy), `nanoclaw setup` and `nanoclaw doctor` need to know about it.
//!
//! Adding a provider: its file under `crates/agent/src/providers/`, one row in [`PROVIDERS`]
//! (and, for a new kind of API, one [`Upstream`]), and its constructor in the runner's
//! `providers::by_name`. Everything else reads this table.

/// How the credential proxy presents a real credential upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `x-api-key: <key>` (Anthropic keys).
    ApiKeyHeader,
    /// `authorization: Bearer <token>`.
    Bearer,
}

impl Auth {
    /// The header name and value carrying `secret`.
    pub fn header(self, secret: &str) -> (&'static str, String) {
        match self {
            Self::ApiKeyHeader => ("x-api-key", secret.to_string()),
            Self::Bearer => ("authorization", format!("Bearer {secret}")),
        }
    }
}

/// A model API the credential proxy relays: the runner calls
/// `http://<host>:<port>/s/<session>/<route>/<path>` with a placeholder key, and the host adds
/// the real credential and forwards to `<base>/<path>`.
#[derive(Debug)]
pub struct Upstream {
    /// The proxy path segment after the session.
    pub route: &'static str,
    /// The variable with the base URL: on the host the real API's (a setting), in the runner's
    /// environment the proxy's.
    pub base_url_var: &'static str,
    /// The real API's base when the host's setting is absent.
    pub default_base_url: &'static str,
    /// The runner's variable with the per-session placeholder key.
    pub key_var: &'static str,
    /// The host's secrets the proxy may add, in order of preference, and how each is sent.
    pub credentials: &'static [(&'static str, Auth)],
    /// The only `(method, path below the base)` pairs relayed; anything else is refused.
    pub endpoints: &'static [(&'static str, &'static str)],
}

/// Anthropic's Messages API (the native loop and Claude Code).
pub const ANTHROPIC: Upstream = Upstream {
    route: "anthropic",
    base_url_var: "ANTHROPIC_BASE_URL",
    default_base_url: "https://api.anthropic.com",
    key_var: "ANTHROPIC_API_KEY",
    credentials: &[
        ("ANTHROPIC_API_KEY", Auth::ApiKeyHeader),
        ("CLAUDE_CODE_OAUTH_TOKEN", Auth::Bearer),
    ],
    // Claude Code adds `?beta=true`; queries pass through.
    endpoints: &[
        ("POST", "v1/messages"),
        ("POST", "v1/messages/count_tokens"),
    ],
};

/// An OpenAI-compatible chat-completions API; its base already ends in `/v1` (or the
/// server's own prefix).
pub const OPENAI: Upstream = Upstream {
    route: "openai",
    base_url_var: "OPENAI_BASE_URL",
    default_base_url: "https://api.openai.com/v1",
    key_var: "OPENAI_API_KEY",
    credentials: &[("OPENAI_API_KEY", Auth::Bearer)],
    endpoints: &[("POST", "chat/completions")],
};

/// Every API the credential proxy relays.
pub const UPSTREAMS: &[&Upstream] = &[&ANTHROPIC, &OPENAI];

/// What `nanoclaw setup` asks for a provider.
#[derive(Debug)]
pub struct Setup {
    /// The `.env` key its secret is stored under (one of the provider's `credentials`).
    pub key: &'static str,
    /// The interactive question for the secret.
    pub prompt: &'static str,
    /// What the secret is called in a refusal ("the key is empty").
    pub noun: &'static str,
    /// A base URL asked before the secret; when one is given the secret may be left empty
    /// (local OpenAI-compatible servers need none).
    pub base_url: Option<BaseUrl>,
}

/// A base URL question of `nanoclaw setup`.
#[derive(Debug)]
pub struct BaseUrl {
    /// The interactive question.
    pub prompt: &'static str,
    /// The answer Enter keeps.
    pub default: &'static str,
}

/// One row of the provider table.
#[derive(Debug)]
pub struct Provider {
    /// Its name (`NANOCLAW_PROVIDER`, `agent_provider`, `container_configs.provider`).
    pub name: &'static str,
    /// The settings any one of which configures it, in the order they are looked for (doctor;
    /// the default provider). Empty: it needs none.
    pub credentials: &'static [&'static str],
    /// The API the credential proxy relays for it, if it calls one.
    pub upstream: Option<&'static Upstream>,
    /// Whether it takes a model name (`NANOCLAW_MODEL`; setup asks for one).
    pub takes_model: bool,
    /// What setup asks for it (nothing for a provider without credentials).
    pub setup: Option<Setup>,
}

impl Provider {
    /// The first of its credentials that `lookup` (a settings read) finds set; `None` when none
    /// is (or it needs none: see `credentials.is_empty()`).
    pub fn credential_found(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Option<&'static str> {
        self.credentials
            .iter()
            .copied()
            .find(|k| lookup(k).is_some_and(|v| !v.trim().is_empty()))
    }
}

/// The table, in the order lists show them.
pub const PROVIDERS: &[Provider] = &[
    Provider {
        name: "anthropic",
        credentials: &["ANTHROPIC_API_KEY"],
        upstream: Some(&ANTHROPIC),
        takes_model: true,
        setup: Some(Setup {
            key: "ANTHROPIC_API_KEY",
            prompt: "Anthropic API key (hidden)",
            noun: "the key",
            base_url: None,
        }),
    },
    Provider {
        name: "openai",
        credentials: &["OPENAI_API_KEY", "OPENAI_BASE_URL"],
        upstream: Some(&OPENAI),
        takes_model: true,
        setup: Some(Setup {
            key: "OPENAI_API_KEY",
            prompt: "API key (hidden; Enter for none)",
            noun: "the key",
            base_url: Some(BaseUrl {
                prompt: "Base URL (Ollama: http://localhost:11434/v1)",
                default: OPENAI.default_base_url,
            }),
        }),
    },
    Provider {
        name: "claude",
        credentials: &["CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY"],
        upstream: Some(&ANTHROPIC),
        takes_model: true,
        setup: Some(Setup {
            key: "CLAUDE_CODE_OAUTH_TOKEN",
            prompt: "Claude Code OAuth token from `claude setup-token` (hidden)",
            noun: "the token",
            base_url: None,
        }),
    },
    Provider {
        name: "mock",
        credentials: &[],
        upstream: None,
        takes_model: false,
        setup: None,
    },
];

/// NanoClaw v2's default provider (Claude Code), used when one of its credentials is set.
pub const V2_DEFAULT: &str = "claude";
/// The provider of a home without any credential (answers without a model).
pub const FALLBACK: &str = "mock";

/// The row of `name`.
pub fn get(name: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.name == name)
}

/// Every provider name, in table order.
pub fn names() -> Vec<&'static str> {
    PROVIDERS.iter().map(|p| p.name).collect()
}

/// The refusal of a name not in the table.
pub fn unknown(name: &str) -> String {
    format!(
        "unknown provider {name:?} (available: {})",
        names().join(", ")
    )
}

/// The upstream the proxy serves under `route`.
pub fn upstream(route: &str) -> Option<&'static Upstream> {
    UPSTREAMS.iter().copied().find(|u| u.route == route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_together() {
        let mut seen = std::collections::HashSet::new();
        for p in PROVIDERS {
            assert!(seen.insert(p.name), "{} twice", p.name);
            assert_eq!(get(p.name).map(|r| r.name), Some(p.name));
            if let Some(u) = p.upstream {
                assert!(
                    upstream(u.route).is_some(),
                    "{}: upstream not relayed",
                    p.name
                );
                // Every credential that configures it is one the proxy can send, or the base URL
                // of a server that needs none.
                for c in p.credentials {
                    assert!(
                        u.credentials.iter().any(|(k, _)| k == c) || *c == u.base_url_var,
                        "{}: {c} is not used by the proxy",
                        p.name
                    );
                }
            }
            // Setup stores a key that configures it; a provider with credentials has a setup step.
            match &p.setup {
                Some(s) => assert!(p.credentials.contains(&s.key), "{}", p.name),
                None => assert!(p.credentials.is_empty(), "{}", p.name),
            }
        }
        assert!(get(V2_DEFAULT).is_some() && get(FALLBACK).is_some());
        assert!(get(FALLBACK).unwrap().credentials.is_empty());
    }

    #[test]
    fn lookups() {
        assert_eq!(
            unknown("gpt"),
            "unknown provider \"gpt\" (available: anthropic, openai, claude, mock)"
        );
        let claude = get("claude").unwrap();
        let set = |keys: &'static [&'static str]| {
            move |k: &str| keys.contains(&k).then(|| "x".to_string())
        };
        assert_eq!(
            claude.credential_found(set(&["ANTHROPIC_API_KEY"])),
            Some("ANTHROPIC_API_KEY")
        );
        assert_eq!(
            claude.credential_found(set(&["ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"])),
            Some("CLAUDE_CODE_OAUTH_TOKEN")
        );
        assert_eq!(claude.credential_found(set(&[])), None);
        assert_eq!(
            get("openai")
                .unwrap()
                .credential_found(set(&["OPENAI_BASE_URL"])),
            Some("OPENAI_BASE_URL")
        );
        assert_eq!(
            Auth::Bearer.header("t"),
            ("authorization", "Bearer t".to_string())
        );
        assert!(upstream("files").is_none());
    }
}
