//! The NanoClaw tools: they talk to the host by writing messages_out rows (odd seq).
//!
//! The runner never writes inbound.db: anything that changes the host's state (tasks, agents,
//! packages) is a `kind:'system'` request the host executes and answers with a system
//! messages_in row carrying the same `requestId`.
//!
//! This module holds what the tools share (arguments, routes, rows, system requests); the
//! tools themselves sit in its submodules by concern.

pub mod agents;
pub mod messages;
pub mod questions;
pub mod requests;
pub mod tasks;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::Toolbox;
use crate::store::{self, OutRow, Route};

fn opt_str<'a>(input: &'a Value, key: &str) -> Option<&'a str> {
    input
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The first of `keys` that is given (our name first, then NanoClaw v2's).
fn first_str<'a>(input: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| opt_str(input, k))
}

/// A message's seq: `seq`, or v2's `messageId`.
fn arg_seq(input: &Value) -> Result<i64, String> {
    ["seq", "messageId"]
        .iter()
        .find_map(|k| input.get(*k))
        .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
        .filter(|s| *s > 0)
        .ok_or_else(|| "missing positive integer argument \"seq\"".to_string())
}

/// A task's id: `id`, or v2's `taskId`.
fn arg_task(input: &Value) -> Result<&str, String> {
    first_str(input, &["id", "taskId"]).ok_or_else(|| "missing string argument \"id\"".into())
}

impl Toolbox {
    /// The route for `to` (a destination name), or the turn's default route.
    pub fn route_to(&self, to: Option<&str>) -> Result<Route, String> {
        let mut st = store::lock(&self.store);
        let Some(name) = to else {
            let t = self.turn();
            if t.route.platform_id.is_some() {
                return Ok(t.route);
            }
            return st
                .default_route()
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    "this session has no default route; name a destination with `to`".into()
                });
        };
        let dests = st.destinations().map_err(|e| e.to_string())?;
        match dests.iter().find(|d| d.name == name) {
            Some(d) => Ok(d.route.clone()),
            None => Err(format!(
                "unknown destination {name:?} (known: {})",
                if dests.is_empty() {
                    "none".into()
                } else {
                    dests
                        .iter()
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )),
        }
    }

    fn write_row(
        &self,
        kind: &'static str,
        content: Value,
        route: Route,
        id: Option<String>,
    ) -> Result<(String, i64), String> {
        let row = OutRow {
            id,
            kind,
            content: content.to_string(),
            route,
            in_reply_to: self.turn().in_reply_to,
            deliver_after: None,
        };
        store::lock(&self.store)
            .write(&[row], &[], "")
            .map_err(|e| format!("cannot write to outbound.db: {e}"))?
            .pop()
            .ok_or_else(|| "no row written".into())
    }

    /// Waits for an inbound row of `kind` whose `field` is `value`; acks it so it is not a new turn.
    async fn wait_inbound(
        &self,
        kind: &str,
        field: &str,
        value: &str,
        limit: Duration,
    ) -> Option<Value> {
        let deadline = Instant::now() + limit;
        let mut last = None;
        loop {
            let counter = store::lock(&self.store).inbound_counter();
            if counter != last {
                last = counter;
                let found = store::lock(&self.store)
                    .find_inbound(kind, field, value)
                    .ok()
                    .flatten();
                if let Some((id, content)) = found {
                    let _ = store::lock(&self.store).ack(&[id], "completed");
                    return Some(content);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a system request and waits for the host's answer (or says it is pending).
    async fn system(&self, action: &str, mut payload: Value, wait: bool) -> Result<String, String> {
        let request_id = nanoclaw_protocol::new_id("req");
        payload["requestId"] = json!(request_id);
        let route = self.route_to(None).unwrap_or_default();
        self.write_row(
            "system",
            json!({"action": action, "payload": payload}),
            route,
            None,
        )?;
        if !wait {
            return Ok(format!("{action} requested (request {request_id}); the answer will arrive as a system message"));
        }
        match self
            .wait_inbound("system", "requestId", &request_id, self.system_timeout)
            .await
        {
            Some(reply) => {
                let result = match reply.get("result") {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => String::new(),
                };
                if reply.get("status").and_then(Value::as_str) == Some("ok") {
                    Ok(result)
                } else {
                    Err(format!("{action} failed: {result}"))
                }
            }
            None => Ok(format!(
                "{action} requested (request {request_id}); the host has not answered yet"
            )),
        }
    }
}
