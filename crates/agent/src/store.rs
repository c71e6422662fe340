//! The runner's side of the session DBs: outbound.db read-write, inbound.db read-only.
//!
//! One `Store` per process, shared by the poll loop and the tools ([`Shared`]). inbound.db is
//! attached read-only only for the duration of a read, and always read before (never during) a
//! write transaction on outbound.db: holding a read lock on the host's file while waiting for our
//! own writer lock could deadlock against the host.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use nanoclaw_protocol::{schema, seq, time};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::Value;

/// The store shared by the loop and the tools of one runner.
pub type Shared = Arc<Mutex<Store>>;

/// Locks a shared store (a poisoned lock is still usable: every write is a transaction).
pub fn lock(s: &Shared) -> MutexGuard<'_, Store> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// A pending `messages_in` row.
#[derive(Debug, Clone)]
pub struct Row {
    /// Row id.
    pub id: String,
    /// seq (even).
    pub seq: i64,
    /// kind column.
    pub kind: String,
    /// When the host wrote it.
    pub timestamp: String,
    /// Raw content JSON.
    pub content: String,
    /// Asks for a turn.
    pub trigger: bool,
    /// Only for a fresh runner's first poll.
    pub on_wake: bool,
    /// Not before this time.
    pub process_after: Option<String>,
    /// The row's route.
    pub route: Route,
}

/// Where a row goes: the routing columns of messages_in / messages_out.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Route {
    /// Channel kind (`agent` for another agent).
    pub channel_type: Option<String>,
    /// Chat (or agent group id).
    pub platform_id: Option<String>,
    /// Thread, if any.
    pub thread_id: Option<String>,
}

/// A named destination from inbound.db's projection of the ACL.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    /// Name the agent uses.
    pub name: String,
    /// Human name.
    pub display_name: Option<String>,
    /// `channel` or `agent`.
    pub kind: String,
    /// Route of the destination.
    pub route: Route,
}

/// A messages_out row to write.
#[derive(Debug, Clone, Default)]
pub struct OutRow {
    /// Preset id (a file send needs it before the row exists); generated when None.
    pub id: Option<String>,
    /// `chat` or `system`.
    pub kind: &'static str,
    /// Content JSON.
    pub content: String,
    /// Route.
    pub route: Route,
    /// The inbound row this answers.
    pub in_reply_to: Option<String>,
    /// Not before this time.
    pub deliver_after: Option<String>,
}

/// The runner's session store.
pub struct Store {
    out: Connection,
    inbound: PathBuf,
    /// Kept open: polling reads one header field through it (see `schema::ChangeCounter`).
    inbound_watch: Option<schema::ChangeCounter>,
}

impl Store {
    /// Opens outbound.db (creating or upgrading it) in a session folder.
    pub fn open(workspace: &Path) -> anyhow::Result<Self> {
        let out = schema::open_outbound_rw(&workspace.join("outbound.db"))?;
        Ok(Self {
            out,
            inbound: workspace.join("inbound.db"),
            inbound_watch: None,
        })
    }

    /// Shares the store.
    pub fn shared(self) -> Shared {
        Arc::new(Mutex::new(self))
    }

    /// inbound.db's change counter, or None when it does not exist yet.
    pub fn inbound_counter(&mut self) -> Option<u32> {
        if self.inbound_watch.is_none() {
            self.inbound_watch = schema::ChangeCounter::open(&self.inbound).ok();
        }
        self.inbound_watch.as_ref()?.read().ok()
    }

    /// Forgets `processing` acks of a crashed runner, so those rows are taken again.
    pub fn clear_stale_acks(&mut self) -> anyhow::Result<usize> {
        Ok(self
            .out
            .execute("DELETE FROM processing_ack WHERE status='processing'", [])?)
    }

    fn with_inbound<T>(
        &mut self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> anyhow::Result<T> {
        schema::attach_ro(&self.out, &self.inbound, "inb")?;
        let res = f(&self.out);
        self.out.execute("DETACH DATABASE inb", [])?;
        Ok(res?)
    }

    /// Pending rows not yet acked, in seq order.
    pub fn pending(&mut self) -> anyhow::Result<Vec<Row>> {
        self.with_inbound(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, seq, kind, content, trigger, on_wake, process_after, platform_id, channel_type, thread_id, timestamp
                 FROM inb.messages_in m
                 WHERE status = 'pending' AND NOT EXISTS (SELECT 1 FROM processing_ack a WHERE a.message_id = m.id)
                 ORDER BY seq LIMIT 500",
            )?;
            let rows = st.query_map([], |r| {
                Ok(Row {
                    id: r.get(0)?,
                    seq: r.get(1)?,
                    kind: r.get(2)?,
                    timestamp: r.get(10)?,
                    content: r.get(3)?,
                    trigger: r.get(4)?,
                    on_wake: r.get(5)?,
                    process_after: r.get(6)?,
                    route: Route {
                        platform_id: r.get(7)?,
                        channel_type: r.get(8)?,
                        thread_id: r.get(9)?,
                    },
                })
            })?;
            rows.collect()
        })
    }

    /// Records a status for inbound rows.
    pub fn ack(&mut self, ids: &[String], status: &str) -> anyhow::Result<()> {
        self.write(&[], ids, status).map(|_| ())
    }

    /// Writes rows (odd seqs) and acks in one transaction; returns `(id, seq)` of each row.
    pub fn write(
        &mut self,
        rows: &[OutRow],
        ack_ids: &[String],
        status: &str,
    ) -> anyhow::Result<Vec<(String, i64)>> {
        let max_in = if rows.is_empty() {
            0
        } else {
            self.with_inbound(|c| {
                c.query_row(
                    "SELECT COALESCE(MAX(seq), 0) FROM inb.messages_in",
                    [],
                    |r| r.get(0),
                )
            })?
        };
        let now = time::now();
        let tx = self
            .out
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut max = max_in.max(seq::max_seq(&tx, "main.messages_out")?);
        let mut written = Vec::with_capacity(rows.len());
        for row in rows {
            let s = seq::next(seq::Side::Runner, max);
            max = s;
            let id = row
                .id
                .clone()
                .unwrap_or_else(|| nanoclaw_protocol::new_id("out"));
            tx.execute(
                "INSERT INTO messages_out(id, seq, in_reply_to, timestamp, deliver_after, kind, platform_id, channel_type, thread_id, content)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    id,
                    s,
                    row.in_reply_to,
                    now,
                    row.deliver_after,
                    row.kind,
                    row.route.platform_id,
                    row.route.channel_type,
                    row.route.thread_id,
                    row.content
                ],
            )?;
            written.push((id, s));
        }
        {
            let mut st = tx.prepare_cached(
                "INSERT OR REPLACE INTO processing_ack(message_id, status, status_changed) VALUES (?1, ?2, ?3)",
            )?;
            for id in ack_ids {
                st.execute(params![id, status, now])?;
            }
        }
        tx.commit()?;
        Ok(written)
    }

    /// Ids acked with a status (tests and diagnostics).
    pub fn acked(&self, status: &str) -> anyhow::Result<Vec<String>> {
        let mut st = self
            .out
            .prepare("SELECT message_id FROM processing_ack WHERE status = ?1")?;
        let rows = st.query_map([status], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A session_state value.
    pub fn state_get(&self, key: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .out
            .query_row(
                "SELECT value FROM session_state WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Removes a session_state value.
    pub fn state_delete(&self, key: &str) -> anyhow::Result<()> {
        self.out
            .execute("DELETE FROM session_state WHERE key = ?1", [key])?;
        Ok(())
    }

    /// Sets a session_state value.
    pub fn state_set(&self, key: &str, value: &str) -> anyhow::Result<()> {
        self.out.execute(
            "INSERT OR REPLACE INTO session_state(key, value, updated_at) VALUES (?1, ?2, ?3)",
            params![key, value, time::now()],
        )?;
        Ok(())
    }

    /// Drops all provider state (`/clear`).
    pub fn state_clear(&self) -> anyhow::Result<()> {
        self.out.execute("DELETE FROM session_state", [])?;
        Ok(())
    }

    /// Declares a tool in flight (or none), so the host does not take a long command for a hang.
    pub fn set_tool(&self, tool: Option<(&str, u64)>) -> anyhow::Result<()> {
        let now = time::now();
        let (name, timeout, started) = match tool {
            Some((n, t)) => (Some(n), Some(t as i64), Some(now.clone())),
            None => (None, None, None),
        };
        self.out.execute(
            "INSERT OR REPLACE INTO container_state(id, current_tool, tool_declared_timeout_ms, tool_started_at, updated_at)
             VALUES (1, ?1, ?2, ?3, ?4)",
            params![name, timeout, started, now],
        )?;
        Ok(())
    }

    /// The destinations the host projected for this session.
    pub fn destinations(&mut self) -> anyhow::Result<Vec<Destination>> {
        self.with_inbound(|c| {
            let mut st = c.prepare_cached(
                "SELECT name, display_name, type, channel_type, platform_id, agent_group_id FROM inb.destinations ORDER BY name",
            )?;
            let rows = st.query_map([], |r| {
                let kind: String = r.get(2)?;
                let agent: Option<String> = r.get(5)?;
                let route = if kind == "agent" {
                    Route {
                        channel_type: Some("agent".into()),
                        platform_id: agent,
                        thread_id: None,
                    }
                } else {
                    Route {
                        channel_type: r.get(3)?,
                        platform_id: r.get(4)?,
                        thread_id: None,
                    }
                };
                Ok(Destination {
                    name: r.get(0)?,
                    display_name: r.get(1)?,
                    kind,
                    route,
                })
            })?;
            rows.collect()
        })
    }

    /// The session's default reply route.
    pub fn default_route(&mut self) -> anyhow::Result<Option<Route>> {
        self.with_inbound(|c| {
            c.query_row(
                "SELECT channel_type, platform_id, thread_id FROM inb.session_routing WHERE id = 1",
                [],
                |r| {
                    Ok(Route {
                        channel_type: r.get(0)?,
                        platform_id: r.get(1)?,
                        thread_id: r.get(2)?,
                    })
                },
            )
            .optional()
        })
    }

    /// Whether a message with this seq exists (either table, by parity).
    pub fn seq_exists(&mut self, s: i64) -> anyhow::Result<bool> {
        if seq::side_of(s) == seq::Side::Runner {
            return Ok(self
                .out
                .query_row("SELECT 1 FROM messages_out WHERE seq = ?1", [s], |_| Ok(()))
                .optional()?
                .is_some());
        }
        self.with_inbound(|c| {
            c.query_row("SELECT 1 FROM inb.messages_in WHERE seq = ?1", [s], |_| {
                Ok(())
            })
            .optional()
            .map(|o| o.is_some())
        })
    }

    /// An inbound row whose content field `field` equals `value` (answers and system replies),
    /// returned as `(id, content)`; the caller acks it once consumed.
    pub fn find_inbound(
        &mut self,
        kind: &str,
        field: &str,
        value: &str,
    ) -> anyhow::Result<Option<(String, Value)>> {
        let path = format!("$.{field}");
        let found: Option<(String, String)> = self.with_inbound(|c| {
            c.query_row(
                "SELECT id, content FROM inb.messages_in WHERE kind = ?1 AND json_valid(content)
                 AND json_extract(content, ?2) = ?3 ORDER BY seq DESC LIMIT 1",
                params![kind, path, value],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })?;
        Ok(found.map(|(id, c)| (id, serde_json::from_str(&c).unwrap_or(Value::Null))))
    }

    /// The tasks (scheduled rows) the host has in inbound.db for this session.
    pub fn tasks(&mut self, status: Option<&str>) -> anyhow::Result<Vec<Value>> {
        self.with_inbound(|c| {
            // One row per series: its live occurrence (the newest pending or paused row; with
            // MAX() in the select list SQLite takes the other columns from that row).
            let mut st = c.prepare(
                "SELECT COALESCE(series_id, id), status, process_after, recurrence, json_extract(content, '$.prompt'), MAX(seq)
                 FROM inb.messages_in WHERE kind = 'task' AND status IN ('pending', 'paused')
                   AND (?1 IS NULL OR status = ?1)
                 GROUP BY COALESCE(series_id, id) ORDER BY process_after",
            )?;
            let rows = st.query_map([status], |r| {
                Ok(serde_json::json!({
                    "id": r.get::<_, String>(0)?,
                    "status": r.get::<_, String>(1)?,
                    "next_run": r.get::<_, Option<String>>(2)?,
                    "cron": r.get::<_, Option<String>>(3)?,
                    "prompt": r.get::<_, Option<String>>(4)?,
                }))
            })?;
            rows.collect()
        })
    }
}
