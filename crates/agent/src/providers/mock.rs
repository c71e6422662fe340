//! `mock`: deterministic answers for tests — `echo: <text of the last chat message>`.
//!
//! Test hooks in that text: `mock:crash` kills the runner mid-turn (SIGKILL, after the batch was
//! acked `processing`), `mock:sleep <ms>` answers late, `mock:silent` answers nothing.

use std::time::Duration;

use nanoclaw_protocol::content::Inbound;

use super::{Input, Provider, TurnFuture};

/// The mock provider.
pub struct Mock;

impl Provider for Mock {
    fn turn<'a>(&'a mut self, input: Input<'a>) -> TurnFuture<'a> {
        let batch = input.batch;
        Box::pin(async move {
            let last_chat = batch.iter().rev().find_map(|i| match &i.content {
                Inbound::Chat(c) => Some(c.text.clone()),
                _ => None,
            });
            let text = match last_chat {
                Some(t) => t,
                None => match batch.iter().rev().find_map(|i| match &i.content {
                    Inbound::Task(t) => Some(t.prompt.clone()),
                    _ => None,
                }) {
                    Some(p) => p,
                    None => return Ok(String::new()),
                },
            };
            let t = text.trim();
            if t == "mock:crash" {
                tracing::warn!("mock:crash — killing the runner mid-turn");
                // SAFETY: a signal to ourselves, simulating a crash.
                unsafe {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                }
            }
            if t == "mock:silent" {
                return Ok(String::new());
            }
            if let Some(ms) = t
                .strip_prefix("mock:sleep ")
                .and_then(|m| m.trim().parse::<u64>().ok())
            {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Ok(format!("echo: {text}"))
        })
    }
}
