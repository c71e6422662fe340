//! The credential proxy against a local fake upstream: the real key is added by the host, the
//! runner's placeholder only works for its own session, and SSE streams through unbuffered.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::HeaderMap;
use nanoclaw_host::runners::credentials::Proxy;

/// Serves `app` on a free local port; its base URL.
async fn serve(app: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

/// A fake Messages API: records request headers, answers with two SSE events 400 ms apart.
async fn upstream(seen: Arc<Mutex<Vec<HeaderMap>>>) -> String {
    let app = axum::Router::new().route(
        "/v1/messages",
        axum::routing::post(move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(headers);
                let stream = async_stream(vec![
                    "event: message_start\ndata: {\"type\":\"message_start\"}\n\n",
                    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
                ]);
                axum::response::Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(Body::from_stream(stream))
                    .unwrap()
            }
        }),
    );
    serve(app).await
}

fn async_stream(
    chunks: Vec<&'static str>,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    futures_util::stream::unfold((chunks, 0usize), |(chunks, i)| async move {
        if i >= chunks.len() {
            return None;
        }
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        Some((Ok(chunks[i].to_string()), (chunks, i + 1)))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adds_the_real_key_checks_the_session_and_streams() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let base = upstream(seen.clone()).await;
    let (_th, _home, settings) = support::settings(
        "ANTHROPIC_API_KEY=sk-ant-REAL-KEY\n",
        &format!("ANTHROPIC_BASE_URL = \"{base}\"\n"),
    );
    let proxy = Proxy::start(&settings, None, "127.0.0.1").await.unwrap();

    let env: std::collections::HashMap<_, _> = proxy.runner_env("sess-a").into_iter().collect();
    assert!(
        !format!("{env:?}").contains("REAL-KEY"),
        "a real key in the runner env"
    );
    let url = format!("{}/v1/messages", env["ANTHROPIC_BASE_URL"]);
    let token = env["ANTHROPIC_API_KEY"].clone();
    let other = proxy.token_for("sess-b");
    let client = reqwest::Client::new();
    let send = |key: Option<&str>| {
        let mut r = client
            .post(&url)
            .header("anthropic-version", "2023-06-01")
            .body("{}");
        if let Some(k) = key {
            r = r.header("x-api-key", k);
        }
        r.send()
    };
    assert_eq!(send(None).await.unwrap().status(), 401);
    assert_eq!(
        send(Some(&other)).await.unwrap().status(),
        401,
        "another session's token"
    );
    assert_eq!(
        send(Some("sk-ant-REAL-KEY")).await.unwrap().status(),
        401,
        "a key is not a token"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "refused requests never reach upstream"
    );

    let t0 = Instant::now();
    let mut resp = send(Some(&token)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await.unwrap().unwrap();
    let first_at = t0.elapsed();
    assert!(String::from_utf8_lossy(&first).contains("message_start"));
    let mut rest = Vec::new();
    while let Some(c) = resp.chunk().await.unwrap() {
        rest.extend_from_slice(&c);
    }
    assert!(String::from_utf8_lossy(&rest).contains("message_stop"));
    assert!(
        first_at < Duration::from_millis(350),
        "first event buffered: {first_at:?}"
    );
    assert!(t0.elapsed() >= Duration::from_millis(400));
    let h = seen.lock().unwrap()[0].clone();
    assert_eq!(h["x-api-key"], "sk-ant-REAL-KEY");
    assert_eq!(h["anthropic-version"], "2023-06-01");
}

/// A fake provider that answers every method and path, recording `METHOD /path`.
async fn catch_all(seen: Arc<Mutex<Vec<String>>>) -> String {
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let seen = seen.clone();
        async move {
            seen.lock()
                .unwrap()
                .push(format!("{} {}", req.method(), req.uri()));
            "{}"
        }
    });
    serve(app).await
}

/// One raw HTTP/1.1 request (so a `..` in the path reaches the proxy as written); the status.
async fn raw(port: u16, head: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 64];
    let n = s.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n])
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_only_the_model_endpoints() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let base = catch_all(seen.clone()).await;
    let (_th, home, settings) = support::settings(
        "ANTHROPIC_API_KEY=sk-ant-REAL-KEY\nOPENAI_API_KEY=sk-REAL-OPENAI\n",
        &format!("ANTHROPIC_BASE_URL = \"{base}\"\nOPENAI_BASE_URL = \"{base}/v1\"\n"),
    );
    let guard = nanoclaw_host::logging::init(&home, false).unwrap();
    let proxy = Proxy::start(&settings, None, "127.0.0.1").await.unwrap();
    let env: std::collections::HashMap<_, _> = proxy.runner_env("sess-a").into_iter().collect();
    let (anthropic, openai) = (&env["ANTHROPIC_BASE_URL"], &env["OPENAI_BASE_URL"]);
    let token = env["ANTHROPIC_API_KEY"].clone();
    let client = reqwest::Client::new();
    let call = |method: &str, url: String| {
        client
            .request(method.parse().unwrap(), url)
            .header("x-api-key", &token)
            .bearer_auth(&token)
            .body("{}")
            .send()
    };

    // What the runners call is relayed (Claude Code's `?beta=true` included).
    for (m, u) in [
        ("POST", format!("{anthropic}/v1/messages?beta=true")),
        ("POST", format!("{anthropic}/v1/messages/count_tokens")),
        ("POST", format!("{openai}/chat/completions")),
    ] {
        assert_eq!(call(m, u.clone()).await.unwrap().status(), 200, "{m} {u}");
    }
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "POST /v1/messages?beta=true",
            "POST /v1/messages/count_tokens",
            "POST /v1/chat/completions"
        ]
    );

    // The rest of the API the key opens is refused, never forwarded.
    for (m, u) in [
        ("DELETE", format!("{anthropic}/v1/files/file_123")),
        ("GET", format!("{anthropic}/v1/files")),
        ("POST", format!("{anthropic}/v1/messages/batches")),
        ("GET", format!("{anthropic}/v1/messages")),
        ("GET", format!("{anthropic}/v1/models")),
        ("POST", format!("{anthropic}/v1/organizations/api_keys")),
        ("POST", format!("{openai}/files")),
        ("DELETE", format!("{openai}/models/ft-x")),
        ("GET", format!("{openai}/chat/completions")),
    ] {
        assert_eq!(call(m, u.clone()).await.unwrap().status(), 403, "{m} {u}");
    }
    let dotdot = format!(
        "POST /s/sess-a/anthropic/v1/messages/../files HTTP/1.1\r\nhost: x\r\nx-api-key: {token}\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
    );
    assert_eq!(raw(proxy.port(), &dotdot).await, 403, "a dot segment");
    assert_eq!(seen.lock().unwrap().len(), 3, "{:?}", seen.lock().unwrap());

    // A keyless probe of the base URL gets a plain answer and relays nothing.
    let probe = client.head(anthropic.as_str()).send().await.unwrap();
    assert_eq!(probe.status(), 200);
    assert_eq!(seen.lock().unwrap().len(), 3);

    drop(guard);
    let log = std::fs::read_to_string(home.logs_dir().join("nanoclaw.log")).unwrap();
    assert_eq!(
        log.matches("credential proxy: endpoint not allowed, refused")
            .count(),
        10,
        "{log}"
    );
    assert!(log.contains("/v1/files/file_123") || log.contains("v1/files/file_123"));
    assert!(!log.contains("REAL"), "a key in the log");
}

/// A fake provider that answers every call, recording `METHOD /path <credential header>`.
async fn recording(seen: Arc<Mutex<Vec<String>>>) -> String {
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let seen = seen.clone();
        async move {
            let h = req.headers();
            let cred = h
                .get("x-api-key")
                .map(|v| format!("x-api-key={}", v.to_str().unwrap()))
                .or_else(|| {
                    h.get("authorization")
                        .map(|v| format!("authorization={}", v.to_str().unwrap()))
                })
                .unwrap_or_default();
            seen.lock()
                .unwrap()
                .push(format!("{} {} {cred}", req.method(), req.uri().path()));
            "{}"
        }
    });
    serve(app).await
}

/// Every row of the provider table that calls an API is served by the proxy: the runner's
/// variables are in `runner_env`, each of its endpoints is relayed, and the credential setup
/// stores for it is the one added upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_of_the_table_is_relayed_with_the_credential_setup_stores() {
    use nanoclaw_protocol::providers::PROVIDERS;
    for row in PROVIDERS {
        let Some(u) = row.upstream else {
            assert!(
                row.credentials.is_empty(),
                "{} needs a key but no API",
                row.name
            );
            continue;
        };
        let setup = row
            .setup
            .as_ref()
            .expect("a provider with an API has a setup step");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let base = recording(seen.clone()).await;
        let secret = format!("REAL-{}", row.name);
        let (_th, _home, settings) = support::settings(
            &format!("{}={secret}\n", setup.key),
            &format!("{} = \"{base}\"\n", u.base_url_var),
        );
        let proxy = Proxy::start(&settings, None, "127.0.0.1").await.unwrap();
        let env: std::collections::HashMap<_, _> = proxy.runner_env("sess-a").into_iter().collect();
        let (url, token) = (&env[u.base_url_var], &env[u.key_var]);
        assert!(url.ends_with(&format!("/s/sess-a/{}", u.route)), "{url}");
        let (name, value) = u
            .credentials
            .iter()
            .find(|(k, _)| *k == setup.key)
            .map(|(_, auth)| auth.header(&secret))
            .expect("the proxy sends the key setup stores");
        let client = reqwest::Client::new();
        for (method, path) in u.endpoints {
            let status = client
                .request(method.parse().unwrap(), format!("{url}/{path}"))
                .header("x-api-key", token)
                .body("{}")
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 200, "{} {method} {path}", row.name);
            assert!(nanoclaw_host::runners::credentials::allowed(
                u.route, method, path
            ));
        }
        let want: Vec<String> = u
            .endpoints
            .iter()
            .map(|(m, p)| format!("{m} /{p} {name}={value}"))
            .collect();
        assert_eq!(*seen.lock().unwrap(), want, "{}", row.name);
    }
}
