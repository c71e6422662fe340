//! The sweep (DESIGN §6): every 60 s and at start, every active session gets a pass; a live
//! runner without a heartbeat is stopped so its work is retried. Idle sessions whose files did
//! not change and have nothing due are skipped after two header reads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::Utc;

use crate::delivery::{self, RunnerView};
use crate::{db, Host};

/// Per-session memory between sweeps.
#[derive(Default, Clone, Copy, PartialEq)]
struct Seen {
    inbound: Option<u32>,
    outbound: Option<u32>,
}

/// The sweep's memory between passes: each session's change counters and next due time.
#[derive(Default)]
pub struct Sweeper {
    seen: HashMap<String, (Seen, Option<chrono::DateTime<Utc>>)>,
}

impl Sweeper {
    /// One pass over every active session.
    pub async fn once(&mut self, host: &Arc<Host>) -> anyhow::Result<()> {
        sweep_once(host, &mut self.seen).await
    }
}

/// Runs the sweep forever.
pub async fn run(host: Arc<Host>) {
    let every = host.settings.millis("NANOCLAW_SWEEP_INTERVAL_MS", 60_000);
    let mut sweeper = Sweeper::default();
    loop {
        if let Err(e) = sweeper.once(&host).await {
            tracing::warn!(error = %e, "sweep failed");
        }
        match crate::questions::expire(&host).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "expired unanswered questions"),
            Err(e) => tracing::warn!(error = %e, "expiring questions failed"),
        }
        if let Err(e) = crate::approvals::expire(&host).await {
            tracing::warn!(error = %e, "expiring approvals failed");
        }
        host.runners
            .stop_idle(host.settings.millis("IDLE_TIMEOUT", 1_800_000));
        tokio::select! {
            _ = tokio::time::sleep(every.min(host.settings.millis("IDLE_TIMEOUT", 1_800_000) / 2)) => {}
            _ = host.shutdown_signal() => return,
        }
    }
}

/// Passes run at once in a sweep: enough to use both cores at start, when every session gets
/// one, without flooding SQLite with open files.
const PARALLEL_PASSES: usize = 4;

/// How long the sweep waits for one session's pass.
const PASS_BOUND: Duration = Duration::from_secs(60);

/// What the file checks found for one session.
enum Check {
    /// A live runner stopped beating.
    Stale,
    /// Both files' change counters.
    Counters(Seen),
}

fn counters(paths: &nanoclaw_protocol::SessionPaths) -> Seen {
    Seen {
        inbound: nanoclaw_protocol::schema::change_counter(&paths.inbound_db()).ok(),
        outbound: nanoclaw_protocol::schema::change_counter(&paths.outbound_db()).ok(),
    }
}

async fn sweep_once(
    host: &Arc<Host>,
    seen: &mut HashMap<String, (Seen, Option<chrono::DateTime<Utc>>)>,
) -> anyhow::Result<()> {
    let sessions = host.db.call(|c| Ok(db::sessions::active(c)?)).await?;
    let stale_after = host.settings.millis("NANOCLAW_STALE_MS", 600_000);
    let now = Utc::now();
    let listed: Vec<_> = sessions
        .into_iter()
        .map(|s| {
            let (alive, started) = host.runners.view(&s.id);
            (s, alive, started)
        })
        .collect();
    // File checks (header reads, heartbeat stats) are blocking I/O: one job off the workers.
    let home = host.home.clone();
    let checked = tokio::task::spawn_blocking(move || {
        listed
            .into_iter()
            .filter_map(|(s, alive, started)| {
                let paths = home.session(&s.agent_group_id, &s.id).ok()?;
                let check = if alive && heartbeat_stale(&paths, stale_after) {
                    Check::Stale
                } else {
                    Check::Counters(counters(&paths))
                };
                Some((s, paths, alive, started, check))
            })
            .collect::<Vec<_>>()
    })
    .await?;
    let mut todo = Vec::new();
    for (s, paths, alive, started, check) in checked {
        let cur = match check {
            Check::Stale => {
                tracing::warn!(session = %s.id, "runner has no heartbeat; stopping it so its work is retried");
                host.runners.stop(&s.id);
                continue;
            }
            Check::Counters(cur) => cur,
        };
        if let Some((prev, next_due)) = seen.get(&s.id) {
            if !alive && *prev == cur && next_due.is_none_or(|d| d > now) {
                continue;
            }
        }
        todo.push((s.id, paths, alive, started, cur));
    }
    use futures_util::StreamExt;
    let passes = futures_util::stream::iter(todo.into_iter().map(
        |(id, paths, alive, started, cur)| async move {
            let view = RunnerView {
                alive,
                started_at: started.as_deref(),
            };
            // The pass runs on (it is never cancelled half-way); the sweep only stops waiting,
            // so a session whose files hold its pass up cannot hold up the others.
            let result =
                match tokio::time::timeout(PASS_BOUND, delivery::pass(host, &id, view)).await {
                    Ok(r) => r,
                    Err(_) => Err(anyhow::anyhow!(
                        "session pass still running after {}s; the sweep goes on without it",
                        PASS_BOUND.as_secs()
                    )),
                };
            // Read the inbound counter again: the pass itself may have written inbound.db.
            let inbound = tokio::task::spawn_blocking(move || counters(&paths).inbound)
                .await
                .ok()
                .flatten();
            (id, cur, inbound, result)
        },
    ))
    .buffer_unordered(PARALLEL_PASSES)
    .collect::<Vec<_>>()
    .await;
    for (id, cur, inbound, result) in passes {
        match result {
            Ok(o) => {
                host.schedule(&id, &o);
                let after = Seen {
                    inbound,
                    outbound: cur.outbound,
                };
                seen.insert(id, (after, o.next_due));
            }
            // One broken session must not stop the sweep for the others; it is retried next time.
            Err(e) => tracing::warn!(session = %id, error = %e, "sweep pass failed"),
        }
    }
    Ok(())
}

/// No heartbeat touch for longer than allowed, counting a declared long tool.
fn heartbeat_stale(paths: &nanoclaw_protocol::SessionPaths, stale_after: Duration) -> bool {
    let Ok(meta) = std::fs::metadata(paths.heartbeat()) else {
        return false; // not written yet: the runner is still starting
    };
    let age = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or_default();
    if age <= stale_after {
        return false;
    }
    // A tool that declared a long timeout keeps the runner alive until that runs out.
    let declared = nanoclaw_protocol::schema::open_ro(&paths.outbound_db()).ok().and_then(|c| {
        c.query_row(
            "SELECT tool_declared_timeout_ms, tool_started_at FROM container_state WHERE id=1 AND current_tool IS NOT NULL",
            [],
            |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<String>>(1)?)),
        )
        .ok()
    });
    if let Some((Some(ms), Some(start))) = declared {
        if let Some(start) = nanoclaw_protocol::time::parse(&start) {
            let until = start
                + chrono::Duration::milliseconds(ms)
                + chrono::Duration::from_std(stale_after).unwrap_or_default();
            return Utc::now() > until;
        }
    }
    true
}
