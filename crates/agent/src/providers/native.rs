//! The native tool loop shared by the `anthropic` and `openai` providers: one conversation
//! model, one loop; each API only translates requests and streams ([`Wire`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine;

use super::conversation::{self, Msg, Part, Role};
use super::http::{ApiError, Retry};
use super::{Input, Provider, TurnFuture};
use crate::store::Shared;
use crate::tools::{ToolSpec, Toolbox};
use crate::Config;

/// One model request.
pub struct Request<'a> {
    /// System prompt.
    pub system: &'a str,
    /// Conversation so far.
    pub messages: &'a [Msg],
    /// Tools on offer (empty for summaries).
    pub tools: &'a [ToolSpec],
    /// Output cap.
    pub max_tokens: u32,
}

/// One model answer.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    /// The assistant message's parts.
    pub parts: Vec<Part>,
    /// Why it stopped (`end_turn`, `tool_use`, `max_tokens`…).
    pub stop: String,
    /// Prompt tokens reported.
    pub input_tokens: u64,
    /// Output tokens reported.
    pub output_tokens: u64,
}

/// Boxed future of a completion.
pub type WireFuture<'a> = Pin<Box<dyn Future<Output = Result<Completion, ApiError>> + Send + 'a>>;

/// One model API's request/stream translation.
pub trait Wire: Send + Sync {
    /// Sends one request and collects the streamed answer.
    fn complete<'a>(&'a self, req: &'a Request<'a>) -> WireFuture<'a>;
}

/// Instruction of the summary request made when compacting.
pub const SUMMARY_PROMPT: &str = "Summarise the conversation so far for your own future reference: who you talk to, what was asked and decided, facts learned, open tasks and promises. Be complete but concise. Answer with the summary only.";

/// The native loop over a wire.
pub struct Native<W: Wire> {
    wire: W,
    tools: Arc<Toolbox>,
    store: Shared,
    cfg: Config,
    retry: Retry,
    history: Option<Vec<Msg>>,
    last_tokens: u64,
}

impl<W: Wire> Native<W> {
    /// A loop over `wire`.
    pub fn new(wire: W, cfg: &Config, tools: Arc<Toolbox>) -> Self {
        Self {
            wire,
            store: tools.store.clone(),
            tools,
            cfg: cfg.clone(),
            retry: Retry::from_config(cfg),
            history: None,
            last_tokens: 0,
        }
    }

    async fn call(&self, req: &Request<'_>) -> Result<Completion, ApiError> {
        self.retry.run(|| self.wire.complete(req)).await
    }

    fn needs_compaction(&self, history: &[Msg]) -> bool {
        let used = self.last_tokens.max(conversation::estimate_tokens(history));
        used * 4 >= self.cfg.context_limit * 3
    }

    async fn compact_history(&mut self, system: &str) -> anyhow::Result<String> {
        let history = self.history.clone().unwrap_or_default();
        if history.is_empty() {
            return Ok("nothing to compact".into());
        }
        let archived = conversation::archive(&self.cfg.agent_dir, &self.cfg.session_id, &history)?;
        let mut msgs = history.clone();
        msgs.push(Msg::user(SUMMARY_PROMPT));
        let done = self
            .call(&Request {
                system,
                messages: &msgs,
                tools: &[],
                max_tokens: 4096,
            })
            .await?;
        let summary = Msg {
            role: Role::Assistant,
            parts: done.parts,
        }
        .text();
        let new = vec![
            Msg::user(format!(
                "<conversation_summary archived=\"{}\">\n{summary}\n</conversation_summary>",
                archived.display()
            )),
            Msg::assistant("Understood. I will continue from this summary."),
        ];
        conversation::save(&self.store, &new)?;
        self.last_tokens = conversation::estimate_tokens(&new);
        self.history = Some(new);
        tracing::info!(archive = %archived.display(), "conversation compacted");
        Ok(format!(
            "Conversation compacted; the full transcript is archived at {}.",
            archived.display()
        ))
    }

    fn user_message(prompt: &crate::format::Prompt) -> Msg {
        let mut parts = Vec::new();
        for (path, mime) in &prompt.media {
            match std::fs::read(path) {
                // Native blocks only for files a model takes whole; bigger ones stay a path.
                Ok(bytes) if bytes.len() <= 5 * 1024 * 1024 => parts.push(Part::Media {
                    mime: mime.clone(),
                    data: base64::engine::general_purpose::STANDARD.encode(bytes),
                }),
                _ => {}
            }
        }
        parts.push(Part::Text {
            text: prompt.text.clone(),
        });
        Msg {
            role: Role::User,
            parts,
        }
    }

    async fn run(&mut self, input: Input<'_>) -> anyhow::Result<String> {
        if self.history.is_none() {
            self.history = Some(conversation::load(&self.store));
        }
        let system = crate::prompt::system(&self.cfg, &self.tools);
        if self.needs_compaction(self.history.as_deref().unwrap_or_default()) {
            self.compact_history(&system).await?;
        }
        let specs = self.tools.specs();
        let mut history = self.history.clone().unwrap_or_default();
        history.push(Self::user_message(input.prompt));
        let mut final_text;
        let mut steps = 0;
        loop {
            steps += 1;
            let done = self
                .call(&Request {
                    system: &system,
                    messages: &history,
                    tools: &specs,
                    max_tokens: self.cfg.max_tokens,
                })
                .await?;
            self.last_tokens = done.input_tokens + done.output_tokens;
            let calls: Vec<(String, String, serde_json::Value)> = done
                .parts
                .iter()
                .filter_map(|p| match p {
                    Part::ToolUse { id, name, input } => {
                        Some((id.clone(), name.clone(), input.clone()))
                    }
                    _ => None,
                })
                .collect();
            let msg = Msg {
                role: Role::Assistant,
                parts: done.parts,
            };
            final_text = msg.text();
            history.push(msg);
            if calls.is_empty() {
                break;
            }
            let mut results = Vec::with_capacity(calls.len());
            for (id, name, args) in calls {
                let started = std::time::Instant::now();
                let out = self.tools.call(&name, &args).await;
                tracing::debug!(tool = %name, ms = started.elapsed().as_millis() as u64, error = out.is_error, "tool ran");
                results.push(Part::ToolResult {
                    id,
                    text: out.text,
                    is_error: out.is_error,
                });
            }
            // Messages that arrived meanwhile ride along with the tool results.
            if let Some(more) = input.inject.poll() {
                results.push(Part::Text { text: more.text });
            }
            history.push(Msg {
                role: Role::User,
                parts: results,
            });
            if steps >= self.cfg.max_steps {
                final_text = format!(
                    "{final_text}\n\n(I stopped after {steps} tool steps, the limit for one turn.)"
                );
                // The conversation must end on an assistant message for the next turn.
                history.push(Msg::assistant(final_text.clone()));
                break;
            }
        }
        conversation::save(&self.store, &history)?;
        self.history = Some(history);
        if self.needs_compaction(self.history.as_deref().unwrap_or_default()) {
            if let Err(e) = self.compact_history(&system).await {
                tracing::warn!(error = %format!("{e:#}"), "compaction failed; will try again next turn");
            }
        }
        Ok(final_text)
    }
}

impl<W: Wire + 'static> Provider for Native<W> {
    fn turn<'a>(&'a mut self, input: Input<'a>) -> TurnFuture<'a> {
        Box::pin(self.run(input))
    }

    fn clear(&mut self) {
        self.history = Some(Vec::new());
        self.last_tokens = 0;
    }

    fn compact(&mut self) -> TurnFuture<'_> {
        Box::pin(async move {
            if self.history.is_none() {
                self.history = Some(conversation::load(&self.store));
            }
            let system = crate::prompt::system(&self.cfg, &self.tools);
            self.compact_history(&system).await
        })
    }
}
