//! Timers for future work: a pass outcome's `next_due` arms one wake-up per session.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::Host;
use crate::delivery;

impl Host {
    /// Acts on a pass outcome: wake if work is due, arm a timer for future work.
    pub fn schedule(self: &Arc<Self>, session: &str, o: &delivery::PassOutcome) {
        if o.due_now && !self.runners.view(session).0 {
            self.runners.wake(self, session);
        }
        let Some(due) = o.next_due else { return };
        {
            let mut t = self.timers.lock().unwrap_or_else(|p| p.into_inner());
            if t.get(session)
                .is_some_and(|cur| *cur <= due && *cur > Utc::now())
            {
                return;
            }
            t.insert(session.to_string(), due);
        }
        let host = self.clone();
        let session = session.to_string();
        self.spawn(async move {
            let wait = (due - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(5);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = host.shutdown_signal() => return,
            }
            host.timers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&session);
            let (alive, started) = host.runners.view(&session);
            let view = delivery::RunnerView {
                alive,
                started_at: started.as_deref(),
            };
            match delivery::pass(&host, &session, view).await {
                Ok(o) => host.schedule(&session, &o),
                Err(e) => tracing::warn!(session = %session, error = %e, "scheduled pass failed"),
            }
        });
    }
}
