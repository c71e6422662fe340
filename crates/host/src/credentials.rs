//! The credential proxy: runners call model APIs through the host, which adds the real key.
//!
//! A runner gets only `…_BASE_URL=http://<host>:<port>/s/<session>/<provider>` and a per-session
//! placeholder token as its API key. The proxy accepts a request only when the token belongs to
//! the session named in the path (none, or another session's, is refused), swaps in the real
//! credential and streams the upstream response back chunk by chunk (SSE is never buffered).
//!
//! Only the model endpoints a runner calls are relayed ([`allowed`]): the real key also opens
//! the provider's files, batches and admin APIs, which a hostile agent must not reach through
//! us. Anything else is refused with 403 and an audit line, never forwarded.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::config::Settings;

/// Headers never forwarded in either direction (hop-by-hop, or rewritten here).
const SKIP: &[&str] = &[
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "x-api-key",
    "authorization",
    "keep-alive",
    "upgrade",
];

/// The running proxy.
pub struct Proxy {
    port: u16,
    runner_host: String,
    tokens: Mutex<HashMap<String, String>>,
    upstream: Upstreams,
    client: reqwest::Client,
}

/// Where each provider's calls go, with which real credential.
#[derive(Clone)]
struct Upstreams {
    anthropic_base: String,
    anthropic_key: Option<String>,
    anthropic_oauth: Option<String>,
    openai_base: String,
    openai_key: Option<String>,
}

impl Proxy {
    /// Starts listening on loopback and on each of `also` (the container networks' gateways),
    /// on one port.
    pub async fn start(
        settings: &Settings,
        also: impl IntoIterator<Item = IpAddr>,
        runner_host: &str,
    ) -> anyhow::Result<Arc<Self>> {
        let upstream = Upstreams {
            anthropic_base: settings
                .get("ANTHROPIC_BASE_URL")
                .unwrap_or_else(|| "https://api.anthropic.com".into()),
            anthropic_key: settings.secret("ANTHROPIC_API_KEY"),
            anthropic_oauth: settings.secret("CLAUDE_CODE_OAUTH_TOKEN"),
            openai_base: settings
                .get("OPENAI_BASE_URL")
                .unwrap_or_else(|| "https://api.openai.com/v1".into()),
            openai_key: settings.secret("OPENAI_API_KEY"),
        };
        let loopback = tokio::net::TcpListener::bind((
            Ipv4Addr::LOCALHOST,
            settings.u64("NANOCLAW_PROXY_PORT", 0) as u16,
        ))
        .await?;
        let port = loopback.local_addr()?.port();
        let mut extra = vec![];
        for ip in also {
            match tokio::net::TcpListener::bind(SocketAddr::new(ip, port)).await {
                Ok(l) => extra.push(l),
                Err(e) => {
                    tracing::warn!(%ip, port, error = %e, "credential proxy cannot listen for containers; model calls from containers will fail");
                }
            }
        }
        let proxy = Arc::new(Self {
            port,
            runner_host: runner_host.to_string(),
            tokens: Mutex::default(),
            upstream,
            client: reqwest::Client::builder().build()?,
        });
        let app = axum::Router::new()
            .route("/s/{session}/{provider}", axum::routing::any(forward_root))
            .route(
                "/s/{session}/{provider}/{*rest}",
                axum::routing::any(forward),
            )
            .with_state(proxy.clone());
        for l in std::iter::once(loopback).chain(extra) {
            let app = app.clone();
            tokio::spawn(async move {
                if let Err(e) = axum::serve(l, app).await {
                    tracing::error!(error = %e, "credential proxy stopped");
                }
            });
        }
        tracing::info!(port, "credential proxy listening");
        Ok(proxy)
    }

    /// The port (same on every address).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The session's placeholder token (created on first use).
    pub fn token_for(&self, session: &str) -> String {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(session.to_string())
            .or_insert_with(|| format!("ncp-{}", uuid::Uuid::new_v4().simple()))
            .clone()
    }

    /// Environment for a session's runner: proxy URLs and the placeholder token, never a key.
    pub fn runner_env(&self, session: &str) -> Vec<(String, String)> {
        let token = self.token_for(session);
        let base = format!("http://{}:{}/s/{session}", self.runner_host, self.port);
        vec![
            ("ANTHROPIC_BASE_URL".into(), format!("{base}/anthropic")),
            ("ANTHROPIC_API_KEY".into(), token.clone()),
            ("OPENAI_BASE_URL".into(), format!("{base}/openai")),
            ("OPENAI_API_KEY".into(), token),
        ]
    }

    fn authorised(&self, session: &str, headers: &HeaderMap) -> bool {
        let Some(expected) = self
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(session)
            .cloned()
        else {
            return false;
        };
        let presented = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| {
                headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::to_string)
            });
        // Constant-time comparison: the token is a secret of the session.
        presented.is_some_and(|p| {
            p.len() == expected.len()
                && p.bytes()
                    .zip(expected.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        })
    }
}

fn refuse(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = serde_json::json!({"type": "error", "error": {"type": kind, "message": message}});
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn forward_root(
    state: State<Arc<Proxy>>,
    Path((session, provider)): Path<(String, String)>,
    req: Request,
) -> Response {
    relay(state.0, session, provider, String::new(), req).await
}

async fn forward(
    state: State<Arc<Proxy>>,
    Path((session, provider, rest)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    relay(state.0, session, provider, rest, req).await
}

/// The endpoints a runner needs, per provider: the native loops (`crates/agent/src/providers`)
/// and Claude Code call only these (Claude Code adds `?beta=true`; queries pass through).
/// The OpenAI-compatible base already ends in `/v1` (or the server's own prefix).
const ALLOWED: &[(&str, &str, &str)] = &[
    ("anthropic", "POST", "v1/messages"),
    ("anthropic", "POST", "v1/messages/count_tokens"),
    ("openai", "POST", "chat/completions"),
];

/// Whether `method rest` of `provider` may be relayed with the real key. `rest` is compared
/// whole, so `v1/messages/../files` or a trailing segment is not a model call.
pub fn allowed(provider: &str, method: &str, rest: &str) -> bool {
    ALLOWED
        .iter()
        .any(|(p, m, r)| *p == provider && *m == method && *r == rest)
}

async fn relay(
    proxy: Arc<Proxy>,
    session: String,
    provider: String,
    rest: String,
    req: Request,
) -> Response {
    // A client's reachability probe of the base URL: a plain answer that needs no key and
    // relays nothing, so it is not worth an audit line.
    if rest.is_empty() && matches!(req.method().as_str(), "HEAD" | "GET") {
        return StatusCode::OK.into_response();
    }
    if !proxy.authorised(&session, req.headers()) {
        tracing::warn!(session = %session, "credential proxy: missing or foreign token refused");
        return refuse(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid proxy token for this session",
        );
    }
    let u = &proxy.upstream;
    let (base, auth): (&str, Option<(&str, String)>) = match provider.as_str() {
        "anthropic" => (
            &u.anthropic_base,
            u.anthropic_key
                .clone()
                .map(|k| ("x-api-key", k))
                .or_else(|| {
                    u.anthropic_oauth
                        .clone()
                        .map(|t| ("authorization", format!("Bearer {t}")))
                }),
        ),
        "openai" => (
            &u.openai_base,
            u.openai_key
                .clone()
                .map(|k| ("authorization", format!("Bearer {k}"))),
        ),
        _ => return refuse(StatusCode::NOT_FOUND, "not_found_error", "unknown provider"),
    };
    if !allowed(&provider, req.method().as_str(), &rest) {
        // The path is the agent's choice: logged escaped and cut, so it cannot forge lines.
        let path: String = rest.chars().take(200).collect();
        tracing::warn!(session = %session, provider = %provider, method = %req.method(), path = ?path, "credential proxy: endpoint not allowed, refused");
        return refuse(
            StatusCode::FORBIDDEN,
            "permission_error",
            "only the model endpoints are available through the NanoClaw credential proxy",
        );
    }
    let mut url = format!("{}/{}", base.trim_end_matches('/'), rest);
    if let Some(q) = req.uri().query() {
        url.push('?');
        url.push_str(q);
    }
    let mut headers = reqwest::header::HeaderMap::new();
    for (k, v) in req.headers() {
        if !SKIP.contains(&k.as_str()) {
            if let (Ok(k), Ok(v)) = (
                reqwest::header::HeaderName::from_bytes(k.as_ref()),
                reqwest::header::HeaderValue::from_bytes(v.as_bytes()),
            ) {
                headers.insert(k, v);
            }
        }
    }
    if let Some((name, value)) = auth {
        if let Ok(v) = reqwest::header::HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    // Every allowed endpoint is a POST.
    let method = reqwest::Method::POST;
    let body = reqwest::Body::wrap_stream(req.into_body().into_data_stream());
    let upstream = match proxy
        .client
        .request(method, &url)
        .headers(headers)
        .body(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(provider = %provider, error = %e, "credential proxy: upstream unreachable");
            return refuse(
                StatusCode::BAD_GATEWAY,
                "api_error",
                "the model API is unreachable from the host",
            );
        }
    };
    let mut resp = Response::builder().status(upstream.status().as_u16());
    for (k, v) in upstream.headers() {
        if !SKIP.contains(&k.as_str()) {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_ref()),
                HeaderValue::from_bytes(v.as_bytes()),
            ) {
                resp = resp.header(k, v);
            }
        }
    }
    resp.body(Body::from_stream(upstream.bytes_stream()))
        .unwrap_or_else(|_| {
            refuse(
                StatusCode::BAD_GATEWAY,
                "api_error",
                "bad upstream response",
            )
        })
}
