//! The poll loop: change-checked reads of inbound.db, batching, acks, commands, provider turns,
//! and the replies they produce.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono_tz::Tz;
use nanoclaw_protocol::content::{Inbound, Outbound};
use nanoclaw_protocol::time;

use crate::commands::{self, Command};
use crate::format::{self, Prompt};
use crate::providers::{Input, Item, Provider};
use crate::store::{self, OutRow, Route, Row, Shared};
use crate::tools::{Toolbox, TurnInfo};
use crate::Config;

/// Largest batch handed to the provider.
pub const MAX_BATCH: usize = 10;

/// Rows due now, parsed; bad rows are acked failed on their own, never blocking good ones.
fn due_rows(
    store: &Shared,
    first: bool,
    next_due: &mut Option<String>,
) -> anyhow::Result<Vec<(Row, Inbound)>> {
    let rows = store::lock(store).pending()?;
    let now = time::now();
    *next_due = None;
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for r in rows {
        if r.on_wake && !first {
            continue;
        }
        // NanoClaw v2 also wrote SQLite's `YYYY-MM-DD HH:MM:SS` here (its retry backoff): times
        // are compared as instants, not as text of two formats.
        let after = r
            .process_after
            .as_deref()
            .map(|t| time::parse(t).map_or_else(|| t.to_string(), time::fmt));
        if let Some(t) = after.as_ref().filter(|t| t.as_str() > now.as_str()) {
            if next_due.as_ref().is_none_or(|d| t < d) {
                *next_due = Some(t.clone());
            }
            continue;
        }
        match Inbound::parse(&r.kind, &r.content) {
            Ok(mut c) => {
                // v2's Chat SDK rows carry the platform's raw user id; ours (and the admin
                // list) are `<channel_type>:<id>`.
                if let (Inbound::Chat(chat), Some(ct)) = (&mut c, &r.route.channel_type) {
                    if r.kind == "chat-sdk"
                        && !chat.sender_id.is_empty()
                        && !chat.sender_id.contains(':')
                    {
                        chat.sender_id = format!("{ct}:{}", chat.sender_id);
                    }
                }
                good.push((r, c))
            }
            Err(e) => {
                tracing::warn!(id = %r.id, kind = %r.kind, error = %e, "inbound row skipped");
                bad.push(r.id);
            }
        }
    }
    if !bad.is_empty() {
        store::lock(store).ack(&bad, "failed")?;
    }
    Ok(good)
}

fn item(r: &Row, c: &Inbound) -> Item {
    Item {
        id: r.id.clone(),
        seq: r.seq,
        timestamp: r.timestamp.clone(),
        content: c.clone(),
        trigger: r.trigger,
    }
}

/// Messages that arrive while a turn runs: taken, acked `processing`, and handed to the provider.
pub struct Inject {
    store: Shared,
    tz: Tz,
    workspace: PathBuf,
    last: Option<u32>,
    /// Rows taken during the turn (acked with the turn's outcome).
    pub ids: Vec<String>,
}

impl Inject {
    /// New messages since the last look, formatted; None when there are none.
    pub fn poll(&mut self) -> Option<Prompt> {
        let counter = store::lock(&self.store).inbound_counter();
        if counter == self.last {
            return None;
        }
        self.last = counter;
        let mut next = None;
        let rows = due_rows(&self.store, false, &mut next).ok()?;
        let rows: Vec<_> = rows.into_iter().take(MAX_BATCH).collect();
        if rows.is_empty() {
            return None;
        }
        let ids: Vec<String> = rows.iter().map(|(r, _)| r.id.clone()).collect();
        store::lock(&self.store).ack(&ids, "processing").ok()?;
        self.ids.extend(ids);
        let items: Vec<Item> = rows.iter().map(|(r, c)| item(r, c)).collect();
        Some(format::batch(&items, self.tz, &self.workspace))
    }
}

/// One session's runner state.
pub struct Runner {
    cfg: Config,
    provider: Box<dyn Provider>,
    store: Shared,
    tools: std::sync::Arc<Toolbox>,
    admins: Vec<String>,
    first_poll: bool,
    last_counter: Option<u32>,
    next_due: Option<String>,
    /// Last time a turn ran.
    pub last_activity: Instant,
}

impl Runner {
    /// Clears acks a crashed runner left behind and prepares the loop.
    pub fn new(
        cfg: Config,
        store: Shared,
        tools: std::sync::Arc<Toolbox>,
        provider: Box<dyn Provider>,
    ) -> anyhow::Result<Self> {
        let n = store::lock(&store).clear_stale_acks()?;
        if n > 0 {
            tracing::info!(n, "cleared processing acks of a previous runner");
        }
        Ok(Self {
            admins: cfg.admins.clone(),
            cfg,
            provider,
            store,
            tools,

            first_poll: true,
            last_counter: None,
            next_due: None,
            last_activity: Instant::now(),
        })
    }

    /// Starts the external MCP servers of the container config (before the first turn).
    pub async fn connect_external(&self) {
        self.tools
            .connect_external(self.cfg.mcp_servers.as_deref())
            .await;
    }

    /// Interval until the next poll: fast while recently active, slower when idle.
    pub fn interval(&self) -> Duration {
        if self.last_activity.elapsed() < Duration::from_secs(30) {
            self.cfg.poll
        } else {
            self.cfg.idle_poll
        }
    }

    /// Checks for work and runs at most one turn. Returns whether a turn ran.
    pub async fn poll_once(&mut self) -> anyhow::Result<bool> {
        let counter = store::lock(&self.store).inbound_counter();
        if counter.is_none() {
            return Ok(false); // not provisioned yet
        }
        let now = time::now();
        let due_passed = self.next_due.as_deref().is_some_and(|d| d <= now.as_str());
        if !self.first_poll && counter == self.last_counter && !due_passed {
            return Ok(false);
        }
        self.last_counter = counter;
        let first = std::mem::replace(&mut self.first_poll, false);
        // A read that failed (e.g. a journal the agent planted next to inbound.db) is retried at
        // the next poll, not forgotten because the counter was already seen.
        let mut good = due_rows(&self.store, first, &mut self.next_due).inspect_err(|_| {
            self.last_counter = None;
        })?;
        let Some(first_trigger) = good.iter().position(|(r, _)| r.trigger) else {
            return Ok(false); // context rows wait for a message that asks for a turn
        };
        let cut = first_trigger + 1;
        let start = cut.saturating_sub(MAX_BATCH);
        // Context older than what fits in the batch is settled so it does not linger.
        let overflow: Vec<String> = good[..start].iter().map(|(r, _)| r.id.clone()).collect();
        if !overflow.is_empty() {
            store::lock(&self.store).ack(&overflow, "completed")?;
        }
        let batch: Vec<(Row, Inbound)> = good.drain(start..cut).collect();
        self.run_turn(batch).await?;
        self.last_activity = Instant::now();
        Ok(true)
    }

    /// A command in the trigger message, handled here instead of by the model.
    fn command_of(&self, batch: &[(Row, Inbound)]) -> Command {
        match batch.last() {
            Some((_, Inbound::Chat(c))) => commands::classify(&c.text, &c.sender_id, &self.admins),
            _ => Command::PassThrough,
        }
    }

    async fn run_turn(&mut self, batch: Vec<(Row, Inbound)>) -> anyhow::Result<()> {
        let ids: Vec<String> = batch.iter().map(|(r, _)| r.id.clone()).collect();
        store::lock(&self.store).ack(&ids, "processing")?;
        let trigger = batch
            .last()
            .map(|(r, _)| r.clone())
            .expect("batch ends with its trigger row");
        self.tools.set_turn(TurnInfo {
            route: trigger.route.clone(),
            in_reply_to: Some(trigger.id.clone()),
        });
        let mut inject = Inject {
            store: self.store.clone(),
            tz: format::timezone(),
            workspace: self.cfg.workspace.clone(),
            last: self.last_counter,
            ids: Vec::new(),
        };
        let result = match self.command_of(&batch) {
            Command::Filtered => {
                tracing::info!(id = %trigger.id, "filtered command dropped");
                Ok(String::new())
            }
            Command::Refused(msg) => Ok(msg),
            Command::Clear => {
                store::lock(&self.store).state_clear()?;
                self.provider.clear();
                Ok("Conversation cleared. I start fresh from here.".to_string())
            }
            Command::Compact => self.provider.compact().await,
            Command::PassThrough => {
                let mut items: Vec<Item> = batch.iter().map(|(r, c)| item(r, c)).collect();
                if !self.run_scripts(&mut items).await {
                    tracing::info!(id = %trigger.id, "task script said not to wake the agent");
                    store::lock(&self.store).ack(&ids, "completed")?;
                    return Ok(());
                }
                let prompt = format::batch(&items, inject.tz, &self.cfg.workspace);
                self.provider
                    .turn(Input {
                        batch: &items,
                        prompt: &prompt,
                        inject: &mut inject,
                    })
                    .await
            }
        };
        let (text, status) = match result {
            Ok(t) => (t, "completed"),
            Err(e) => {
                let line = format!("{e:#}").replace('\n', " ");
                tracing::error!(error = %line, "provider turn failed");
                (format!("⚠️ {line}"), "failed")
            }
        };
        let rows = self.replies(&trigger, &text);
        let mut all_ids = ids;
        all_ids.extend(inject.ids);
        store::lock(&self.store).write(&rows, &all_ids, status)?;
        Ok(())
    }

    /// Runs the pre-scripts of task rows, attaching their output. Returns false when every
    /// script that ran printed a last line `{"wakeAgent": false}` (nothing to do this time).
    async fn run_scripts(&self, items: &mut [Item]) -> bool {
        let mut ran = 0;
        let mut sleep = 0;
        for it in items.iter_mut() {
            let Inbound::Task(t) = &mut it.content else {
                continue;
            };
            let Some(script) = t.script.clone().filter(|s| !s.trim().is_empty()) else {
                continue;
            };
            if t.extra.contains_key("scriptOutput") {
                continue;
            }
            ran += 1;
            let input = serde_json::json!({"command": script, "timeout_ms": 60_000});
            let out = match crate::tools::bash::run(&self.cfg.agent_dir, &input).await {
                Ok(o) => o,
                Err(e) => format!("(script failed)\n{e}"),
            };
            let last: Option<serde_json::Value> = out
                .lines()
                .last()
                .and_then(|l| serde_json::from_str(l).ok());
            if last
                .as_ref()
                .and_then(|v| v.get("wakeAgent"))
                .and_then(serde_json::Value::as_bool)
                == Some(false)
            {
                sleep += 1;
            }
            t.extra.insert("scriptOutput".into(), out.into());
        }
        ran == 0 || sleep < ran
    }

    /// The model's text as rows: destinations from `<message to>` blocks, the rest to the chat.
    fn replies(&self, trigger: &Row, text: &str) -> Vec<OutRow> {
        let parts = crate::output::parse(text);
        if parts.is_empty() {
            return Vec::new();
        }
        let dests = store::lock(&self.store).destinations().unwrap_or_default();
        parts
            .into_iter()
            .map(|p| {
                let (route, text) = match p.to.as_deref() {
                    None => (trigger.route.clone(), p.text),
                    Some(name) => match dests.iter().find(|d| d.name == name) {
                        Some(d) => (d.route.clone(), p.text),
                        None => {
                            tracing::warn!(to = %name, "answer addressed to an unknown destination; sent to the chat");
                            (trigger.route.clone(), p.text)
                        }
                    },
                };
                OutRow {
                    kind: "chat",
                    content: Outbound::text_json(&text),
                    route: Route { thread_id: if route == trigger.route { trigger.route.thread_id.clone() } else { route.thread_id }, ..route },
                    in_reply_to: Some(trigger.id.clone()),
                    ..Default::default()
                }
            })
            .collect()
    }

    /// Ids acked so far with a status (tests and diagnostics).
    pub fn acked(&self, status: &str) -> anyhow::Result<std::collections::HashSet<String>> {
        Ok(store::lock(&self.store)
            .acked(status)?
            .into_iter()
            .collect())
    }
}
