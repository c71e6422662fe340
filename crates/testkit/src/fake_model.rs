//! A fake model API on 127.0.0.1 speaking both wire protocols the runner uses:
//! the Anthropic Messages API (`POST /v1/messages`, SSE events `message_start` …
//! `message_stop`, `{"type":"error","error":{…}}` bodies) and OpenAI chat completions
//! (`POST /v1/chat/completions`, `data:` chunks ending in `[DONE]`, `{"error":{…}}` bodies).
//! Tests script the answers and read the requests (headers and bodies) it received.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

/// A scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A final text answer.
    Text(String),
    /// Tool calls `(name, input)` (with optional leading text).
    Tools(Option<String>, Vec<(String, Value)>),
    /// An HTTP error with the API's error type and message.
    Error(u16, String, String),
}

impl Reply {
    /// A text answer.
    pub fn text(t: &str) -> Self {
        Self::Text(t.into())
    }
    /// One tool call.
    pub fn tool(name: &str, input: Value) -> Self {
        Self::Tools(None, vec![(name.into(), input)])
    }
    /// An error answer.
    pub fn error(status: u16, etype: &str, message: &str) -> Self {
        Self::Error(status, etype.into(), message.into())
    }
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `anthropic` or `openai`.
    pub api: &'static str,
    /// Lower-cased headers.
    pub headers: HashMap<String, String>,
    /// JSON body.
    pub body: Value,
    /// When it arrived (benchmarks measure between requests).
    pub at: std::time::Instant,
}

impl Received {
    /// The last user message's text (either wire), tool results included.
    pub fn last_user_text(&self) -> String {
        let msgs = self.body["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let Some(m) = msgs
            .iter()
            .rev()
            .find(|m| m["role"] == "user" || m["role"] == "tool")
        else {
            return String::new();
        };
        content_text(&m["content"])
    }
    /// All message text of the request (system included), for "did the model see X" checks.
    pub fn all_text(&self) -> String {
        let mut s = content_text(&self.body["system"]);
        for m in self.body["messages"].as_array().into_iter().flatten() {
            s.push('\n');
            s.push_str(&content_text(&m["content"]));
        }
        s
    }
    /// Tool names offered.
    pub fn tool_names(&self) -> Vec<String> {
        self.body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| {
                t["name"]
                    .as_str()
                    .or(t["function"]["name"].as_str())
                    .map(str::to_string)
            })
            .collect()
    }
}

fn content_text(c: &Value) -> String {
    match c {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match &p["content"] {
                Value::Null => p["text"].as_str().unwrap_or("").to_string(),
                inner => content_text(inner),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

type Responder = Box<dyn Fn(&Received) -> Option<Reply> + Send>;

#[derive(Default)]
struct Inner {
    script: VecDeque<Reply>,
    received: Vec<Received>,
    key: Option<String>,
    responder: Option<Responder>,
    next_id: u64,
}

/// The fake model service.
#[derive(Clone)]
pub struct FakeModel {
    inner: Arc<Mutex<Inner>>,
    url: String,
}

impl Default for FakeModel {
    fn default() -> Self {
        Self::start()
    }
}

impl FakeModel {
    /// Starts the fake on its own runtime thread.
    pub fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let app = axum::Router::new()
            .route("/v1/messages", axum::routing::post(anthropic))
            .route("/v1/chat/completions", axum::routing::post(openai))
            .with_state(inner.clone());
        // Its own thread and runtime: usable from sync tests and from inside #[tokio::test]s.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(listener).expect("listener");
                let _ = axum::serve(l, app).await;
            });
        });
        Self { inner, url }
    }

    /// Base URL for `ANTHROPIC_BASE_URL`.
    pub fn anthropic_url(&self) -> String {
        self.url.clone()
    }

    /// Base URL for `OPENAI_BASE_URL` (with `/v1`).
    pub fn openai_url(&self) -> String {
        format!("{}/v1", self.url)
    }

    /// Only this key is accepted (x-api-key or bearer); others get the API's 401.
    pub fn require_key(&self, key: &str) {
        self.inner.lock().unwrap().key = Some(key.into());
    }

    /// Queues answers, used in order; when none is queued the answer is `Text("ok")`.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().unwrap().script.extend(replies);
    }

    /// A function consulted before the queue (None = use the queue).
    pub fn respond_with(&self, f: impl Fn(&Received) -> Option<Reply> + Send + 'static) {
        self.inner.lock().unwrap().responder = Some(Box::new(f));
    }

    /// How many requests arrived (cheap: nothing cloned).
    pub fn count(&self) -> usize {
        self.inner.lock().unwrap().received.len()
    }

    /// Requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }
}

fn headers_of(h: &HeaderMap) -> HashMap<String, String> {
    h.iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Records the request and picks the answer (auth checked first, like the real APIs).
fn take(inner: &Mutex<Inner>, api: &'static str, headers: &HeaderMap, body: Value) -> (Reply, u64) {
    let rec = Received {
        api,
        headers: headers_of(headers),
        body,
        at: std::time::Instant::now(),
    };
    let mut g = inner.lock().unwrap();
    g.next_id += 1;
    let id = g.next_id;
    let presented = rec.headers.get("x-api-key").cloned().or_else(|| {
        rec.headers
            .get("authorization")
            .map(|a| a.trim_start_matches("Bearer ").to_string())
    });
    let reply = if g
        .key
        .as_ref()
        .is_some_and(|k| presented.as_ref() != Some(k))
    {
        Reply::error(401, "authentication_error", "invalid x-api-key")
    } else if let Some(r) = g.responder.as_ref().and_then(|f| f(&rec)) {
        r
    } else {
        g.script.pop_front().unwrap_or_else(|| Reply::text("ok"))
    };
    g.received.push(rec);
    (reply, id)
}

fn sse(events: Vec<String>) -> Response {
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from(events.concat()))
        .expect("response")
}

fn chunks(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

async fn anthropic(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return error_response(
            "anthropic",
            400,
            "invalid_request_error",
            "body is not JSON",
        );
    };
    if body["model"].as_str().is_none()
        || body["max_tokens"].as_u64().is_none()
        || !body["messages"].is_array()
    {
        return error_response(
            "anthropic",
            400,
            "invalid_request_error",
            "model, max_tokens and messages are required",
        );
    }
    if headers.get("anthropic-version").is_none() {
        return error_response(
            "anthropic",
            400,
            "invalid_request_error",
            "anthropic-version header is required",
        );
    }
    let input_tokens = (body.to_string().len() / 4) as u64;
    let stream = body["stream"].as_bool().unwrap_or(false);
    let model = body["model"].as_str().unwrap_or("").to_string();
    let (reply, id) = take(&inner, "anthropic", &headers, body);
    let (blocks, stop) = match reply {
        Reply::Error(status, etype, msg) => {
            return error_response("anthropic", status, &etype, &msg)
        }
        Reply::Text(t) => (vec![json!({"type": "text", "text": t})], "end_turn"),
        Reply::Tools(lead, calls) => {
            let mut b: Vec<Value> = lead
                .into_iter()
                .map(|t| json!({"type": "text", "text": t}))
                .collect();
            for (i, (name, input)) in calls.into_iter().enumerate() {
                b.push(json!({"type": "tool_use", "id": format!("toolu_{id}_{i}"), "name": name, "input": input}));
            }
            (b, "tool_use")
        }
    };
    let output_tokens = (blocks.iter().map(|b| b.to_string().len()).sum::<usize>() / 4) as u64;
    let msg_id = format!("msg_{id:024}");
    if !stream {
        let v = json!({"id": msg_id, "type": "message", "role": "assistant", "model": model, "content": blocks,
            "stop_reason": stop, "stop_sequence": null, "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}});
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(v.to_string()))
            .expect("response");
    }
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut out = vec![ev(
        "message_start",
        json!({"type": "message_start", "message": {"id": msg_id, "type": "message",
        "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1}}}),
    )];
    out.push(ev("ping", json!({"type": "ping"})));
    for (i, b) in blocks.iter().enumerate() {
        if b["type"] == "text" {
            out.push(ev("content_block_start", json!({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}})));
            for c in chunks(b["text"].as_str().unwrap_or(""), 16) {
                out.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": c}})));
            }
        } else {
            out.push(ev("content_block_start", json!({"type": "content_block_start", "index": i,
                "content_block": {"type": "tool_use", "id": b["id"], "name": b["name"], "input": {}}})));
            for c in chunks(&b["input"].to_string(), 12) {
                out.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": c}})));
            }
        }
        out.push(ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": i}),
        ));
    }
    out.push(ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": output_tokens}})));
    out.push(ev("message_stop", json!({"type": "message_stop"})));
    sse(out)
}

async fn openai(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return error_response(
            "openai",
            400,
            "invalid_request_error",
            "We could not parse the JSON body of your request.",
        );
    };
    if body["model"].as_str().is_none() || !body["messages"].is_array() {
        return error_response(
            "openai",
            400,
            "invalid_request_error",
            "you must provide a model and messages",
        );
    }
    let prompt_tokens = (body.to_string().len() / 4) as u64;
    let stream = body["stream"].as_bool().unwrap_or(false);
    let model = body["model"].as_str().unwrap_or("").to_string();
    let (reply, id) = take(&inner, "openai", &headers, body);
    let (text, calls, finish) = match reply {
        Reply::Error(status, etype, msg) => return error_response("openai", status, &etype, &msg),
        Reply::Text(t) => (Some(t), vec![], "stop"),
        Reply::Tools(lead, calls) => (lead, calls, "tool_calls"),
    };
    let cid = format!("chatcmpl-{id}");
    let tool_calls: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, input))| {
            json!({"index": i, "id": format!("call_{id}_{i}"), "type": "function",
            "function": {"name": name, "arguments": input.to_string()}})
        })
        .collect();
    let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": 5, "total_tokens": prompt_tokens + 5});
    if !stream {
        let mut msg = json!({"role": "assistant", "content": text});
        if !tool_calls.is_empty() {
            msg["tool_calls"] = Value::Array(
                tool_calls
                    .iter()
                    .map(|t| {
                        let mut t = t.clone();
                        t.as_object_mut().unwrap().remove("index");
                        t
                    })
                    .collect(),
            );
        }
        let v = json!({"id": cid, "object": "chat.completion", "created": 1_700_000_000, "model": model,
            "choices": [{"index": 0, "message": msg, "finish_reason": finish}], "usage": usage});
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(v.to_string()))
            .expect("response");
    }
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": cid, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let mut out = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for c in chunks(text.as_deref().unwrap_or(""), 16) {
        out.push(chunk(json!({"content": c}), Value::Null));
    }
    for t in &tool_calls {
        let args = t["function"]["arguments"]
            .as_str()
            .unwrap_or("")
            .to_string();
        out.push(chunk(
            json!({"tool_calls": [{"index": t["index"], "id": t["id"], "type": "function",
            "function": {"name": t["function"]["name"], "arguments": ""}}]}),
            Value::Null,
        ));
        for c in chunks(&args, 10) {
            out.push(chunk(
                json!({"tool_calls": [{"index": t["index"], "function": {"arguments": c}}]}),
                Value::Null,
            ));
        }
    }
    out.push(chunk(json!({}), json!(finish)));
    out.push(format!(
        "data: {}\n\n",
        json!({"id": cid, "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": model, "choices": [], "usage": usage})
    ));
    out.push("data: [DONE]\n\n".into());
    sse(out)
}

fn error_response(api: &str, status: u16, etype: &str, msg: &str) -> Response {
    let body = if api == "anthropic" {
        json!({"type": "error", "error": {"type": etype, "message": msg}})
    } else {
        json!({"error": {"message": msg, "type": etype, "param": null, "code": etype}})
    };
    let mut b = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json");
    if status == 429 {
        b = b.header("retry-after", "0");
    }
    b.body(Body::from(body.to_string())).expect("response")
}
