//! The credential proxy against a local fake upstream: the real key is added by the host, the
//! runner's placeholder only works for its own session, and SSE streams through unbuffered.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::HeaderMap;
use nanoclaw_host::config::Settings;
use nanoclaw_host::credentials::Proxy;

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
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
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
    let dir = tempfile::tempdir().unwrap();
    let home = nanoclaw_protocol::Home::new(dir.path());
    std::fs::write(home.env_file(), "ANTHROPIC_API_KEY=sk-ant-REAL-KEY\n").unwrap();
    std::fs::write(
        home.config_file(),
        format!("ANTHROPIC_BASE_URL = \"{base}\"\n"),
    )
    .unwrap();
    let settings = Settings::load(&home).unwrap();
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
