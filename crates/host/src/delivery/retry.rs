//! Retry bookkeeping of failing sends (in memory: a restart retries at once).

use std::time::{Duration, Instant};

use crate::Host;

impl Host {
    /// Whether a previously failing send may be tried again now (exponential backoff from
    /// `NANOCLAW_SEND_RETRY_BASE_MS`, default 1 s).
    pub fn send_allowed_now(&self, out_id: &str) -> bool {
        self.send_retry_delay(out_id).is_none_or(|d| d.is_zero())
    }

    /// How long until a failing send may be tried again (None when it is not failing).
    pub fn send_retry_delay(&self, out_id: &str) -> Option<Duration> {
        let base = self.settings.u64("NANOCLAW_SEND_RETRY_BASE_MS", 1000);
        let f = self.send_failures.lock().unwrap_or_else(|p| p.into_inner());
        let (n, at) = f.get(out_id)?;
        let wait = Duration::from_millis(base * 2u64.pow(n.saturating_sub(1).min(6)));
        Some(wait.saturating_sub(at.elapsed()))
    }

    /// Records a failed send; returns the number of failures so far.
    pub fn send_failed(&self, out_id: &str) -> u32 {
        let mut f = self.send_failures.lock().unwrap_or_else(|p| p.into_inner());
        let e = f.entry(out_id.to_string()).or_insert((0, Instant::now()));
        e.0 += 1;
        e.1 = Instant::now();
        e.0
    }

    /// Forgets the retry state of a send whose fate is final.
    pub fn send_settled(&self, out_id: &str) {
        self.send_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(out_id);
    }
}
