//! `openai`: any OpenAI-compatible chat-completions endpoint (`OPENAI_BASE_URL`: OpenAI,
//! Ollama, OpenRouter, vLLM…), streamed, with function tools.

use std::collections::BTreeMap;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::conversation::{Msg, Part, Role};
use super::http::{error_from, ApiError};
use super::native::{Completion, Request, Wire, WireFuture};

/// Default model.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";

/// The chat-completions wire.
pub struct OpenAi {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
    model: String,
}

impl OpenAi {
    /// From the configured base URL (including `/v1`) and key (optional for local servers).
    pub fn new(cfg: &crate::Config) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: cfg.openai_base_url.clone(),
            key: cfg.openai_api_key.clone(),
            model: cfg.model.clone().unwrap_or_else(|| DEFAULT_MODEL.into()),
        }
    }

    fn body(&self, req: &Request<'_>) -> Value {
        let mut messages = vec![json!({"role": "system", "content": req.system})];
        for m in req.messages {
            messages.extend(to_messages(m));
        }
        let mut body = json!({
            "model": self.model,
            "max_tokens": req.max_tokens,
            "stream": true,
            "stream_options": {"include_usage": true},
            "messages": messages,
        });
        if !req.tools.is_empty() {
            body["tools"] = req
                .tools
                .iter()
                .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.input_schema}}))
                .collect();
        }
        body
    }

    async fn send(&self, req: &Request<'_>) -> Result<Completion, ApiError> {
        let mut rb = self
            .http
            .post(format!(
                "{}/chat/completions",
                self.base.trim_end_matches('/')
            ))
            .json(&self.body(req));
        if let Some(k) = &self.key {
            rb = rb.bearer_auth(k);
        }
        let resp = rb.send().await.map_err(ApiError::transport)?;
        if !resp.status().is_success() {
            return Err(error_from(resp).await);
        }
        let mut text = String::new();
        let mut calls: BTreeMap<u64, (String, String, String)> = BTreeMap::new();
        let mut done = Completion::default();
        let mut events = resp.bytes_stream().eventsource();
        while let Some(ev) = events.next().await {
            let ev = ev.map_err(ApiError::transport)?;
            if ev.data.trim() == "[DONE]" {
                break;
            }
            let Ok(d) = serde_json::from_str::<Value>(&ev.data) else {
                continue;
            };
            if let Some(e) = d.get("error") {
                let msg = e["message"].as_str().unwrap_or("stream error").to_string();
                return Err(ApiError::from_status(
                    500,
                    e["type"].as_str().unwrap_or(""),
                    msg,
                    None,
                ));
            }
            if let Some(u) = d.get("usage").filter(|u| u.is_object()) {
                done.input_tokens = u["prompt_tokens"].as_u64().unwrap_or(0);
                done.output_tokens = u["completion_tokens"].as_u64().unwrap_or(0);
            }
            let Some(choice) = d["choices"].get(0) else {
                continue;
            };
            let delta = &choice["delta"];
            if let Some(t) = delta["content"].as_str() {
                text.push_str(t);
            }
            for tc in delta["tool_calls"].as_array().into_iter().flatten() {
                let idx = tc["index"].as_u64().unwrap_or(0);
                let e = calls.entry(idx).or_default();
                if let Some(id) = tc["id"].as_str() {
                    e.0 = id.to_string();
                }
                if let Some(n) = tc["function"]["name"].as_str() {
                    e.1.push_str(n);
                }
                if let Some(a) = tc["function"]["arguments"].as_str() {
                    e.2.push_str(a);
                }
            }
            if let Some(r) = choice["finish_reason"].as_str() {
                done.stop = r.to_string();
            }
        }
        if done.stop.is_empty() {
            return Err(ApiError::transport(
                "the stream ended without a finish_reason",
            ));
        }
        if !text.is_empty() {
            done.parts.push(Part::Text { text });
        }
        for (i, (id, name, args)) in calls {
            done.parts.push(Part::ToolUse {
                id: if id.is_empty() {
                    format!("call_{i}")
                } else {
                    id
                },
                name,
                input: if args.trim().is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(&args).unwrap_or_else(|_| json!({"_unparsed": args}))
                },
            });
        }
        Ok(done)
    }
}

impl Wire for OpenAi {
    fn complete<'a>(&'a self, req: &'a Request<'a>) -> WireFuture<'a> {
        Box::pin(self.send(req))
    }
}

/// One neutral message as chat-completions messages (tool results are messages of their own).
fn to_messages(m: &Msg) -> Vec<Value> {
    match m.role {
        Role::Assistant => {
            let text = m.text();
            let calls: Vec<Value> = m
                .parts
                .iter()
                .filter_map(|p| match p {
                    Part::ToolUse { id, name, input } => Some(json!({"id": id, "type": "function",
                        "function": {"name": name, "arguments": input.to_string()}})),
                    _ => None,
                })
                .collect();
            let mut v = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
            if !calls.is_empty() {
                v["tool_calls"] = Value::Array(calls);
            }
            vec![v]
        }
        Role::User => {
            let mut out = Vec::new();
            let mut content = Vec::new();
            for p in &m.parts {
                match p {
                    Part::ToolResult { id, text, is_error } => out.push(json!({"role": "tool", "tool_call_id": id,
                        "content": if *is_error { format!("ERROR: {text}") } else { text.clone() }})),
                    Part::Text { text } => content.push(json!({"type": "text", "text": text})),
                    Part::Media { mime, data } if mime.starts_with("image/") => content.push(json!({"type": "image_url",
                        "image_url": {"url": format!("data:{mime};base64,{data}")}})),
                    _ => {}
                }
            }
            if !content.is_empty() {
                out.push(json!({"role": "user", "content": content}));
            }
            out
        }
    }
}
