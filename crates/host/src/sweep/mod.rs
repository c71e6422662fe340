//! The sweep (DESIGN §6): every 60 s and at start, every active session gets a pass; a live
//! runner without a heartbeat, or whose turn makes no progress (alive but stuck: a hung tool
//! or model stream while its heartbeat thread ticks), is stopped so its work is retried. Idle sessions whose files did
//! not change and have nothing due are skipped after two header reads.

pub mod gc;
pub mod scheduling;

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

/// The sweep's memory between passes: each session's change counters and next due time, and
/// for live runners when their outbound.db last changed (a turn's progress).
#[derive(Default)]
pub struct Sweeper {
    seen: HashMap<String, (Seen, Option<chrono::DateTime<Utc>>)>,
    progress: HashMap<String, (Option<u32>, std::time::Instant)>,
}

impl Sweeper {
    /// One pass over every active session.
    pub async fn once(&mut self, host: &Arc<Host>) -> anyhow::Result<()> {
        sweep_once(host, &mut self.seen, &mut self.progress).await
    }
}

/// How long a turn may go without progress, and at most (`NANOCLAW_TURN_STUCK_MS`, 10 min;
/// `NANOCLAW_TURN_MAX_MS`, 30 min; per agent group `container_configs.turn_stuck_ms` and
/// `turn_max_ms`).
#[derive(Debug, Clone, Copy)]
pub struct TurnBounds {
    /// No progress (no ack, row, or tool start/end in outbound.db) for longer: stuck.
    pub stuck: Duration,
    /// A turn older than this is stopped whatever it does.
    pub max: Duration,
}

/// Why a live runner's turn should be stopped, if it should. `turn_started`: the oldest
/// message it is processing (None: no turn under way); `tool`: a running tool's declared
/// timeout and start, which extends the no-progress bound.
pub fn stuck(
    now: chrono::DateTime<Utc>,
    no_progress_for: Duration,
    turn_started: Option<chrono::DateTime<Utc>>,
    tool: Option<Tool>,
    b: TurnBounds,
) -> Option<String> {
    let started = turn_started?;
    let age = (now - started).to_std().unwrap_or_default();
    if age > b.max {
        return Some(format!(
            "the turn has run {} min, over its ceiling of {} min",
            age.as_secs() / 60,
            b.max.as_secs() / 60
        ));
    }
    if let Some((declared, at)) = tool {
        let until = at + chrono::Duration::from_std(declared + b.stuck).unwrap_or_default();
        if now < until {
            return None;
        }
    }
    (no_progress_for > b.stuck).then(|| {
        format!(
            "no progress for {} s (no ack, row or tool step)",
            no_progress_for.as_secs()
        )
    })
}

/// A running tool's declared timeout and start.
type Tool = (Duration, chrono::DateTime<Utc>);

/// The oldest message a runner is processing, and its running tool.
fn turn_state(
    paths: &nanoclaw_protocol::SessionPaths,
) -> (Option<chrono::DateTime<Utc>>, Option<Tool>) {
    let Ok(c) = nanoclaw_protocol::schema::open_ro(&paths.outbound_db()) else {
        return (None, None);
    };
    let started = c
        .query_row(
            "SELECT MIN(status_changed) FROM processing_ack WHERE status = 'processing'",
            [],
            |r| r.get::<_, Option<String>>(0),
        )
        .ok()
        .flatten()
        .and_then(|t| nanoclaw_protocol::time::parse(&t));
    let tool = c
        .query_row(
            "SELECT tool_declared_timeout_ms, tool_started_at FROM container_state WHERE id=1 AND current_tool IS NOT NULL",
            [],
            |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<String>>(1)?)),
        )
        .ok()
        .and_then(|(ms, at)| {
            Some((
                Duration::from_millis(ms?.max(0) as u64),
                nanoclaw_protocol::time::parse(&at?)?,
            ))
        });
    (started, tool)
}

/// Runs the sweep forever.
pub async fn run(host: Arc<Host>) {
    let every = host.settings.millis("NANOCLAW_SWEEP_INTERVAL_MS", 60_000);
    let mut sweeper = Sweeper::default();
    loop {
        if let Err(e) = sweeper.once(&host).await {
            tracing::warn!(error = %e, "sweep failed");
        }
        match crate::access::questions::expire(&host).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "expired unanswered questions"),
            Err(e) => tracing::warn!(error = %e, "expiring questions failed"),
        }
        if let Err(e) = crate::access::approvals::expire(&host).await {
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
    /// A live runner's turn made no progress for too long, or ran too long.
    Stuck(String),
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
    progress: &mut HashMap<String, (Option<u32>, std::time::Instant)>,
) -> anyhow::Result<()> {
    let (sessions, bounds) = host
        .db
        .call(|c| {
            let s = db::sessions::active(c)?;
            let mut st = c.prepare(
                "SELECT agent_group_id, turn_stuck_ms, turn_max_ms FROM container_configs",
            )?;
            let b: HashMap<String, (Option<i64>, Option<i64>)> = st
                .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
                .collect::<Result<_, _>>()?;
            Ok((s, b))
        })
        .await?;
    let stale_after = host.settings.millis("NANOCLAW_STALE_MS", 600_000);
    let default_bounds = TurnBounds {
        stuck: host.settings.millis("NANOCLAW_TURN_STUCK_MS", 600_000),
        max: host.settings.millis("NANOCLAW_TURN_MAX_MS", 1_800_000),
    };
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
    // Forget runners that are gone; the others carry when their outbound.db last moved.
    progress.retain(|id, _| listed.iter().any(|(s, alive, _)| *alive && &s.id == id));
    let last_progress = progress.clone();
    let checked = tokio::task::spawn_blocking(move || {
        listed
            .into_iter()
            .filter_map(|(s, alive, started)| {
                let paths = home.session(&s.agent_group_id, &s.id).ok()?;
                if alive && heartbeat_stale(&paths, stale_after) {
                    return Some((s, paths, alive, started, Check::Stale));
                }
                let cur = counters(&paths);
                if alive {
                    if let Some((prev, since)) = last_progress.get(&s.id) {
                        let b = bounds
                            .get(&s.agent_group_id)
                            .map_or(default_bounds, |(st, mx)| TurnBounds {
                                stuck: st.map_or(default_bounds.stuck, |v| {
                                    Duration::from_millis(v.max(0) as u64)
                                }),
                                max: mx.map_or(default_bounds.max, |v| {
                                    Duration::from_millis(v.max(0) as u64)
                                }),
                            });
                        if *prev == cur.outbound && since.elapsed() > b.stuck.min(b.max) {
                            let (turn, tool) = turn_state(&paths);
                            if let Some(why) = stuck(Utc::now(), since.elapsed(), turn, tool, b) {
                                return Some((s, paths, alive, started, Check::Stuck(why)));
                            }
                        }
                    }
                }
                Some((s, paths, alive, started, Check::Counters(cur)))
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
            Check::Stuck(why) => {
                tracing::warn!(session = %s.id, reason = %why, "turn is stuck; killing its runner so the message is retried");
                progress.remove(&s.id);
                host.runners.kill(&s.id);
                continue;
            }
            Check::Counters(cur) => cur,
        };
        if alive {
            let moved = progress
                .get(&s.id)
                .is_none_or(|(prev, _)| *prev != cur.outbound);
            if moved {
                progress.insert(s.id.clone(), (cur.outbound, std::time::Instant::now()));
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_not_liveness_decides_a_stuck_turn() {
        let now = Utc::now();
        let min = |m: i64| now - chrono::Duration::minutes(m);
        let b = TurnBounds {
            stuck: Duration::from_secs(600),
            max: Duration::from_secs(1800),
        };
        let quiet = |s: u64| Duration::from_secs(s);
        // No turn under way: an idle runner is never stuck.
        assert_eq!(stuck(now, quiet(5000), None, None, b), None);
        // A turn quiet for less than the bound, then for more.
        assert_eq!(stuck(now, quiet(300), Some(min(5)), None, b), None);
        assert!(stuck(now, quiet(700), Some(min(12)), None, b)
            .unwrap()
            .contains("no progress"));
        // A tool that declared 20 min keeps a quiet turn alive until then (plus the bound).
        let tool = Some((Duration::from_secs(1200), min(15)));
        assert_eq!(stuck(now, quiet(900), Some(min(15)), tool, b), None);
        let late = Some((Duration::from_secs(60), min(15)));
        assert!(stuck(now, quiet(900), Some(min(15)), late, b).is_some());
        // Past the ceiling whatever it does.
        assert!(stuck(now, quiet(1), Some(min(31)), tool, b)
            .unwrap()
            .contains("ceiling"));
    }
}
