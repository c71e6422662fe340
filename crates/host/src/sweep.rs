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

/// Runs the sweep forever.
pub async fn run(host: Arc<Host>) {
    let every = host.settings.millis("NANOCLAW_SWEEP_INTERVAL_MS", 60_000);
    let mut seen: HashMap<String, (Seen, Option<chrono::DateTime<Utc>>)> = HashMap::new();
    loop {
        if let Err(e) = sweep_once(&host, &mut seen).await {
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

async fn sweep_once(
    host: &Arc<Host>,
    seen: &mut HashMap<String, (Seen, Option<chrono::DateTime<Utc>>)>,
) -> anyhow::Result<()> {
    let sessions = host.db.call(|c| Ok(db::sessions::active(c)?)).await?;
    let stale_after = host.settings.millis("NANOCLAW_STALE_MS", 600_000);
    let now = Utc::now();
    for s in sessions {
        let Ok(paths) = host.home.session(&s.agent_group_id, &s.id) else {
            continue;
        };
        let (alive, started) = host.runners.view(&s.id);
        if alive && heartbeat_stale(&paths, stale_after) {
            tracing::warn!(session = %s.id, "runner has no heartbeat; stopping it so its work is retried");
            host.runners.stop(&s.id);
            continue;
        }
        let cur = Seen {
            inbound: nanoclaw_protocol::schema::change_counter(&paths.inbound_db()).ok(),
            outbound: nanoclaw_protocol::schema::change_counter(&paths.outbound_db()).ok(),
        };
        if let Some((prev, next_due)) = seen.get(&s.id) {
            if !alive && *prev == cur && next_due.is_none_or(|d| d > now) {
                continue;
            }
        }
        let view = RunnerView {
            alive,
            started_at: started.as_deref(),
        };
        let o = delivery::pass(host, &s.id, view).await?;
        host.schedule(&s.id, &o);
        // Read the counters again: the pass itself may have written inbound.db.
        let after = Seen {
            inbound: nanoclaw_protocol::schema::change_counter(&paths.inbound_db()).ok(),
            outbound: cur.outbound,
        };
        seen.insert(s.id.clone(), (after, o.next_due));
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
