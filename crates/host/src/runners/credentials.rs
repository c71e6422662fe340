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

use nanoclaw_protocol::providers::{self, Upstream, UPSTREAMS};

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

/// Where one upstream's calls go, with which real credential (header name and value).
#[derive(Clone)]
struct Route {
    upstream: &'static Upstream,
    base: String,
    auth: Option<(&'static str, String)>,
}

/// One route per upstream of the provider table (`protocol::providers::UPSTREAMS`).
type Upstreams = Vec<Route>;

impl Proxy {
    /// Starts listening on loopback and on each of `also` (the container networks' gateways),
    /// on one port.
    pub async fn start(
        settings: &Settings,
        also: impl IntoIterator<Item = IpAddr>,
        runner_host: &str,
    ) -> anyhow::Result<Arc<Self>> {
        let upstream: Upstreams = UPSTREAMS
            .iter()
            .map(|&u| Route {
                upstream: u,
                base: settings
                    .get(u.base_url_var)
                    .unwrap_or_else(|| u.default_base_url.into()),
                auth: u
                    .credentials
                    .iter()
                    .find_map(|(key, auth)| settings.secret(key).map(|s| auth.header(&s))),
            })
            .collect();
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
        UPSTREAMS
            .iter()
            .flat_map(|u| {
                [
                    (u.base_url_var.into(), format!("{base}/{}", u.route)),
                    (u.key_var.into(), token.clone()),
                ]
            })
            .collect()
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

/// Whether `method rest` of the upstream `route` may be relayed with the real key: only the
/// endpoints a runner needs (`protocol::providers::Upstream::endpoints` — the native loops in
/// `crates/agent/src/providers` and Claude Code call only these; Claude Code adds
/// `?beta=true`, and queries pass through). `rest` is compared whole, so
/// `v1/messages/../files` or a trailing segment is not a model call.
pub fn allowed(route: &str, method: &str, rest: &str) -> bool {
    providers::upstream(route)
        .is_some_and(|u| u.endpoints.iter().any(|(m, r)| *m == method && *r == rest))
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
    let Some(route) = proxy.upstream.iter().find(|r| r.upstream.route == provider) else {
        return refuse(StatusCode::NOT_FOUND, "not_found_error", "unknown provider");
    };
    let (base, auth) = (&route.base, route.auth.clone());
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
