//! The poll loop: change-checked reads of inbound.db, batching, acks, provider turns, replies.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nanoclaw_protocol::content::{Inbound, Outbound};
use nanoclaw_protocol::{schema, seq, time};
use rusqlite::{params, Connection, TransactionBehavior};

use crate::providers::{Item, Provider};
use crate::Config;

/// Largest batch handed to the provider.
pub const MAX_BATCH: usize = 10;

/// A pending row as read from inbound.db.
#[derive(Debug, Clone)]
struct Row {
    id: String,
    seq: i64,
    kind: String,
    content: String,
    trigger: bool,
    on_wake: bool,
    process_after: Option<String>,
    platform_id: Option<String>,
    channel_type: Option<String>,
    thread_id: Option<String>,
}

/// One session's runner state.
pub struct Runner {
    cfg: Config,
    provider: Box<dyn Provider>,
    out: Option<Connection>,
    inbound: PathBuf,
    first_poll: bool,
    last_counter: Option<u32>,
    next_due: Option<String>,
    /// Last time a turn ran.
    pub last_activity: Instant,
}

impl Runner {
    /// Opens outbound.db (creating/upgrading it) and clears acks a crashed runner left behind.
    pub fn open(cfg: Config, provider: Box<dyn Provider>) -> anyhow::Result<Self> {
        let out = schema::open_outbound_rw(&cfg.workspace.join("outbound.db"))?;
        let n = out.execute("DELETE FROM processing_ack WHERE status='processing'", [])?;
        if n > 0 {
            tracing::info!(n, "cleared processing acks of a previous runner");
        }
        Ok(Self {
            inbound: cfg.workspace.join("inbound.db"),
            cfg,
            provider,
            out: Some(out),
            first_poll: true,
            last_counter: None,
            next_due: None,
            last_activity: Instant::now(),
        })
    }

    /// Interval until the next poll: fast while recently active, slower when idle.
    pub fn interval(&self) -> Duration {
        if self.last_activity.elapsed() < Duration::from_secs(30) {
            self.cfg.poll
        } else {
            self.cfg.idle_poll
        }
    }

    fn out(&mut self) -> anyhow::Result<&mut Connection> {
        self.out
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("outbound.db is closed"))
    }

    /// Checks for work and runs at most one turn. Returns whether a turn ran.
    pub async fn poll_once(&mut self) -> anyhow::Result<bool> {
        let counter = match schema::change_counter(&self.inbound) {
            Ok(c) => Some(c),
            Err(_) => return Ok(false), // not provisioned yet
        };
        let now = time::now();
        let due_passed = self.next_due.as_deref().is_some_and(|d| d <= now.as_str());
        if !self.first_poll && counter == self.last_counter && !due_passed {
            return Ok(false);
        }
        let rows = self.pending()?;
        self.last_counter = counter;
        let first = std::mem::replace(&mut self.first_poll, false);

        let mut due = Vec::new();
        self.next_due = None;
        for r in rows {
            if r.on_wake && !first {
                continue;
            }
            match &r.process_after {
                Some(t) if t.as_str() > now.as_str() => {
                    if self.next_due.as_ref().is_none_or(|d| t < d) {
                        self.next_due = Some(t.clone());
                    }
                }
                _ => due.push(r),
            }
        }
        // Bad rows are acked failed on their own, never blocking the good ones.
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for r in due {
            match Inbound::parse(&r.kind, &r.content) {
                Ok(c) => good.push((r, c)),
                Err(e) => {
                    tracing::warn!(id = %r.id, kind = %r.kind, error = %e, "inbound row skipped");
                    bad.push(r.id);
                }
            }
        }
        if !bad.is_empty() {
            self.ack(&bad, "failed")?;
        }
        let Some(first_trigger) = good.iter().position(|(r, _)| r.trigger) else {
            return Ok(false); // context rows wait for a message that asks for a turn
        };
        let cut = first_trigger + 1;
        let start = cut.saturating_sub(MAX_BATCH);
        // Context older than what fits in the batch is settled so it does not linger.
        let overflow: Vec<String> = good[..start].iter().map(|(r, _)| r.id.clone()).collect();
        if !overflow.is_empty() {
            self.ack(&overflow, "completed")?;
        }
        let batch: Vec<(Row, Inbound)> = good.drain(start..cut).collect();
        self.run_turn(batch).await?;
        self.last_activity = Instant::now();
        Ok(true)
    }

    fn pending(&mut self) -> anyhow::Result<Vec<Row>> {
        let inbound = self.inbound.clone();
        let out = self.out()?;
        schema::attach_ro(out, &inbound, "inb")?;
        let res = (|| {
            let mut st = out.prepare_cached(
                "SELECT id, seq, kind, content, trigger, on_wake, process_after, platform_id, channel_type, thread_id
                 FROM inb.messages_in m
                 WHERE status = 'pending' AND NOT EXISTS (SELECT 1 FROM processing_ack a WHERE a.message_id = m.id)
                 ORDER BY seq LIMIT 500",
            )?;
            let rows = st.query_map([], |r| {
                Ok(Row {
                    id: r.get(0)?,
                    seq: r.get(1)?,
                    kind: r.get(2)?,
                    content: r.get(3)?,
                    trigger: r.get(4)?,
                    on_wake: r.get(5)?,
                    process_after: r.get(6)?,
                    platform_id: r.get(7)?,
                    channel_type: r.get(8)?,
                    thread_id: r.get(9)?,
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })();
        out.execute("DETACH DATABASE inb", [])?;
        Ok(res?)
    }

    fn ack(&mut self, ids: &[String], status: &str) -> anyhow::Result<()> {
        let now = time::now();
        let out = self.out()?;
        let tx = out.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut st = tx.prepare_cached(
                "INSERT OR REPLACE INTO processing_ack(message_id, status, status_changed) VALUES (?1, ?2, ?3)",
            )?;
            for id in ids {
                st.execute(params![id, status, now])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    async fn run_turn(&mut self, batch: Vec<(Row, Inbound)>) -> anyhow::Result<()> {
        let ids: Vec<String> = batch.iter().map(|(r, _)| r.id.clone()).collect();
        self.ack(&ids, "processing")?;
        let items: Vec<Item> = batch
            .iter()
            .map(|(r, c)| Item {
                id: r.id.clone(),
                seq: r.seq,
                content: c.clone(),
                trigger: r.trigger,
            })
            .collect();
        let result = self.provider.turn(&items).await;
        let route = batch
            .iter()
            .rev()
            .find(|(r, _)| r.trigger)
            .map(|(r, _)| r.clone())
            .expect("batch has a trigger row");
        let (texts, status) = match result {
            Ok(replies) => (
                replies.into_iter().map(|r| r.text).collect::<Vec<_>>(),
                "completed",
            ),
            Err(e) => {
                let line = format!("{e:#}").replace('\n', " ");
                tracing::error!(error = %line, "provider turn failed");
                (vec![format!("error: {line}")], "failed")
            }
        };
        self.finish(&route, &ids, &texts, status)
    }

    /// Writes the replies and the final acks in one transaction.
    fn finish(
        &mut self,
        route: &Row,
        ids: &[String],
        texts: &[String],
        status: &str,
    ) -> anyhow::Result<()> {
        let inbound = self.inbound.clone();
        let now = time::now();
        let out = self.out()?;
        // Read the host's file before (never during) the write transaction: holding a lock on
        // inbound.db while waiting for outbound.db would deadlock against the host's writer.
        schema::attach_ro(out, &inbound, "inb")?;
        let max_in = seq::max_seq(out, "inb.messages_in");
        out.execute("DETACH DATABASE inb", [])?;
        let max_in = max_in?;
        let res = (|| -> anyhow::Result<()> {
            let tx = out.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut max = max_in.max(seq::max_seq(&tx, "main.messages_out")?);
            for text in texts {
                let s = seq::next(seq::Side::Runner, max);
                max = s;
                tx.execute(
                    "INSERT INTO messages_out(id, seq, in_reply_to, timestamp, kind, platform_id, channel_type, thread_id, content)
                     VALUES (?1, ?2, ?3, ?4, 'chat', ?5, ?6, ?7, ?8)",
                    params![
                        nanoclaw_protocol::new_id("out"),
                        s,
                        route.id,
                        now,
                        route.platform_id,
                        route.channel_type,
                        route.thread_id,
                        Outbound::text_json(text)
                    ],
                )?;
            }
            for id in ids {
                tx.execute(
                    "INSERT OR REPLACE INTO processing_ack(message_id, status, status_changed) VALUES (?1, ?2, ?3)",
                    params![id, status, now],
                )?;
            }
            tx.commit()?;
            Ok(())
        })();
        res
    }

    /// Ids acked so far with a status (tests and diagnostics).
    pub fn acked(&mut self, status: &str) -> anyhow::Result<HashSet<String>> {
        let out = self.out()?;
        let mut st = out.prepare("SELECT message_id FROM processing_ack WHERE status = ?1")?;
        let rows = st.query_map([status], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
