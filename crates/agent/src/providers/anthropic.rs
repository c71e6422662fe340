//! `anthropic`: the Messages API (`POST /v1/messages`, SSE streaming) with prompt caching of the
//! system prompt and tools.

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::conversation::{Msg, Part, Role};
use super::http::{error_from, ApiError, ErrorKind};
use super::native::{Completion, Request, Wire, WireFuture};

/// Default model.
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-5";
const VERSION: &str = "2023-06-01";

/// The Messages API wire.
pub struct Anthropic {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
    bearer: Option<String>,
    model: String,
}

impl Anthropic {
    /// From the configured base URL and key (the host's proxy and placeholder token).
    pub fn new(cfg: &crate::Config) -> anyhow::Result<Self> {
        if cfg.anthropic_api_key.is_none() && cfg.anthropic_auth_token.is_none() {
            anyhow::bail!("the anthropic provider needs ANTHROPIC_API_KEY (given by the host's credential proxy)");
        }
        Ok(Self {
            http: reqwest::Client::new(),
            base: cfg.anthropic_base_url.clone(),
            key: cfg.anthropic_api_key.clone(),
            bearer: cfg.anthropic_auth_token.clone(),
            model: cfg.model.clone().unwrap_or_else(|| DEFAULT_MODEL.into()),
        })
    }

    fn body(&self, req: &Request<'_>) -> Value {
        let messages: Vec<Value> = req.messages.iter().map(message).collect();
        let mut tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
            .collect();
        // Cache breakpoints on the stable prefix: tools and system are identical across turns.
        if let Some(last) = tools.last_mut() {
            last["cache_control"] = json!({"type": "ephemeral"});
        }
        let mut body = json!({
            "model": self.model,
            "max_tokens": req.max_tokens,
            "stream": true,
            "system": [{"type": "text", "text": req.system, "cache_control": {"type": "ephemeral"}}],
            "messages": messages,
        });
        if !tools.is_empty() {
            body["tools"] = Value::Array(tools);
        }
        body
    }

    async fn send(&self, req: &Request<'_>) -> Result<Completion, ApiError> {
        let mut rb = self
            .http
            .post(format!("{}/v1/messages", self.base.trim_end_matches('/')))
            .header("anthropic-version", VERSION)
            .json(&self.body(req));
        if let Some(k) = &self.key {
            rb = rb.header("x-api-key", k);
        }
        if let Some(b) = &self.bearer {
            rb = rb.bearer_auth(b);
        }
        let resp = rb.send().await.map_err(ApiError::transport)?;
        if !resp.status().is_success() {
            return Err(error_from(resp).await);
        }
        let mut acc = Accumulator::default();
        let mut events = resp.bytes_stream().eventsource();
        while let Some(ev) = events.next().await {
            let ev = ev.map_err(ApiError::transport)?;
            let data: Value = match serde_json::from_str(&ev.data) {
                Ok(v) => v,
                Err(_) => continue,
            };
            if acc.event(&data)? {
                return Ok(acc.finish());
            }
        }
        Err(ApiError::transport("the stream ended before message_stop"))
    }
}

impl Wire for Anthropic {
    fn complete<'a>(&'a self, req: &'a Request<'a>) -> WireFuture<'a> {
        Box::pin(self.send(req))
    }
}

fn message(m: &Msg) -> Value {
    let content: Vec<Value> = m
        .parts
        .iter()
        .map(|p| match p {
            Part::Text { text } => json!({"type": "text", "text": text}),
            Part::Media { mime, data } if mime == "application/pdf" => json!({"type": "document",
                "source": {"type": "base64", "media_type": mime, "data": data}}),
            Part::Media { mime, data } => json!({"type": "image",
                "source": {"type": "base64", "media_type": mime, "data": data}}),
            Part::ToolUse { id, name, input } => {
                json!({"type": "tool_use", "id": id, "name": name, "input": input})
            }
            Part::ToolResult { id, text, is_error } => {
                json!({"type": "tool_result", "tool_use_id": id,
                "content": text, "is_error": is_error})
            }
        })
        .collect();
    json!({"role": match m.role { Role::User => "user", Role::Assistant => "assistant" }, "content": content})
}

/// Builds the assistant message from stream events.
#[derive(Default)]
struct Accumulator {
    blocks: Vec<(String, String, String, String)>, // (type, text or json, id, name)
    stop: String,
    input_tokens: u64,
    output_tokens: u64,
}

impl Accumulator {
    /// Takes one event; true at message_stop.
    fn event(&mut self, d: &Value) -> Result<bool, ApiError> {
        match d["type"].as_str().unwrap_or("") {
            "message_start" => {
                let u = &d["message"]["usage"];
                self.input_tokens = u["input_tokens"].as_u64().unwrap_or(0)
                    + u["cache_read_input_tokens"].as_u64().unwrap_or(0)
                    + u["cache_creation_input_tokens"].as_u64().unwrap_or(0);
            }
            "content_block_start" => {
                let b = &d["content_block"];
                let s = |k: &str| b[k].as_str().unwrap_or("").to_string();
                self.blocks.push((s("type"), s("text"), s("id"), s("name")));
            }
            "content_block_delta" => {
                let i = d["index"].as_u64().unwrap_or(0) as usize;
                if let Some(b) = self.blocks.get_mut(i) {
                    let delta = &d["delta"];
                    match delta["type"].as_str() {
                        Some("text_delta") => b.1.push_str(delta["text"].as_str().unwrap_or("")),
                        Some("input_json_delta") => {
                            b.1.push_str(delta["partial_json"].as_str().unwrap_or(""))
                        }
                        _ => {}
                    }
                }
            }
            "message_delta" => {
                if let Some(s) = d["delta"]["stop_reason"].as_str() {
                    self.stop = s.to_string();
                }
                self.output_tokens = d["usage"]["output_tokens"]
                    .as_u64()
                    .unwrap_or(self.output_tokens);
            }
            "message_stop" => return Ok(true),
            "error" => {
                let e = &d["error"];
                let etype = e["type"].as_str().unwrap_or("error");
                let msg = format!("{etype}: {}", e["message"].as_str().unwrap_or(""));
                let mut err = ApiError::from_status(
                    if etype == "overloaded_error" {
                        529
                    } else {
                        500
                    },
                    etype,
                    msg,
                    None,
                );
                if etype == "overloaded_error" {
                    err.kind = ErrorKind::Overloaded;
                }
                return Err(err);
            }
            _ => {}
        }
        Ok(false)
    }

    fn finish(self) -> Completion {
        let parts = self
            .blocks
            .into_iter()
            .filter_map(|(kind, body, id, name)| match kind.as_str() {
                "text" if !body.is_empty() => Some(Part::Text { text: body }),
                "tool_use" => Some(Part::ToolUse {
                    id,
                    name,
                    input: if body.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(&body).unwrap_or_else(|_| json!({"_unparsed": body}))
                    },
                }),
                _ => None,
            })
            .collect();
        Completion {
            parts,
            stop: self.stop,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
        }
    }
}
