//! The start-up circuit breaker of `nanoclaw run`: a host that keeps dying (under systemd or
//! launchd, which restart it) backs off instead of restarting in a tight loop.
//!
//! The record is NanoClaw v2's `data/circuit-breaker.json` (`{attempt, timestamp}`, plus our
//! `reason`): written at every start, removed at a clean shutdown. A record still there at the
//! next start means that run did not end cleanly; within an hour of it, the attempt counts up
//! and the start waits v2's schedule (0, 0, 10, 30, 120, 300 s, then 900 s).

use std::path::PathBuf;
use std::time::Duration;

use nanoclaw_protocol::Home;
use serde::{Deserialize, Serialize};

/// Seconds to wait before attempt n (index n-1); the last value repeats.
const SCHEDULE_S: &[u64] = &[0, 0, 10, 30, 120, 300, 900];
/// Unclean starts older than this are forgotten.
const WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// The record of the last start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// Starts in a row without a clean shutdown (1 = this one).
    pub attempt: u32,
    /// When the last start began.
    pub timestamp: String,
    /// Why the last start failed, when it failed with an error (a crash leaves none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn path(home: &Home) -> PathBuf {
    home.data_dir().join("circuit-breaker.json")
}

/// The record, if the last run did not end cleanly.
pub fn read(home: &Home) -> Option<Record> {
    let text = std::fs::read_to_string(path(home)).ok()?;
    serde_json::from_str(&text).ok()
}

fn write(home: &Home, r: &Record) -> std::io::Result<()> {
    std::fs::create_dir_all(home.data_dir())?;
    std::fs::write(path(home), serde_json::to_string_pretty(r)? + "\n")
}

/// The wait before attempt `n`.
pub fn delay(attempt: u32, unit: Duration) -> Duration {
    let i = (attempt.max(1) as usize - 1).min(SCHEDULE_S.len() - 1);
    unit * SCHEDULE_S[i] as u32
}

/// Records this start and waits as long as the unclean starts before it ask. `unit` is one
/// second of the schedule (tests shrink it).
pub async fn before_start(home: &Home, unit: Duration) -> std::io::Result<Record> {
    let now = chrono::Utc::now();
    let attempt = match read(home) {
        Some(prev) => {
            let recent =
                nanoclaw_protocol::time::parse(&prev.timestamp).is_some_and(|t| now - t < WINDOW);
            if recent {
                tracing::warn!(
                    previous_attempt = prev.attempt,
                    previous_start = %prev.timestamp,
                    reason = prev.reason.as_deref().unwrap_or("it did not shut down cleanly (killed or crashed)"),
                    "the previous start did not end cleanly"
                );
                prev.attempt + 1
            } else {
                1
            }
        }
        None => 1,
    };
    let rec = Record {
        attempt,
        timestamp: nanoclaw_protocol::time::fmt(now),
        reason: None,
    };
    write(home, &rec)?;
    let wait = delay(attempt, unit);
    if !wait.is_zero() {
        tracing::warn!(
            attempt,
            wait_ms = wait.as_millis() as u64,
            "repeated unclean starts: backing off before starting"
        );
        eprintln!(
            "nanoclaw: start {attempt} in a row without a clean shutdown; waiting {:.1} s first (see `nanoclaw status`)",
            wait.as_secs_f64()
        );
        tokio::time::sleep(wait).await;
    }
    Ok(rec)
}

/// Notes why this start failed, for the next start, `status` and `doctor`.
pub fn failed(home: &Home, mut rec: Record, error: &anyhow::Error) {
    rec.reason = Some(format!("{error:#}"));
    if let Err(e) = write(home, &rec) {
        tracing::warn!(error = %e, "cannot write the start-up record");
    }
}

/// A clean shutdown: the next start is a first one again.
pub fn clean(home: &Home) {
    match std::fs::remove_file(path(home)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(error = %e, "cannot remove the start-up record"),
    }
}

/// One line for `status` and `doctor` when the host is backing off or the last start failed.
pub fn describe(home: &Home) -> Option<String> {
    let r = read(home)?;
    let why = r
        .reason
        .clone()
        .unwrap_or_else(|| "it did not shut down cleanly (killed or crashed)".into());
    let next = delay(r.attempt + 1, Duration::from_secs(1)).as_secs();
    Some(format!(
        "{} start(s) in a row without a clean shutdown, the last at {}: {why}{}",
        r.attempt,
        r.timestamp,
        if next > 0 {
            format!("; the next start waits {next} s")
        } else {
            String::new()
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_v2s() {
        let s = |n| delay(n, Duration::from_secs(1)).as_secs();
        assert_eq!(
            (s(1), s(2), s(3), s(4), s(5), s(6), s(7), s(50)),
            (0, 0, 10, 30, 120, 300, 900, 900)
        );
    }

    #[tokio::test]
    async fn unclean_starts_count_up_and_a_clean_one_resets() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let unit = Duration::from_millis(1);
        assert_eq!(before_start(&home, unit).await.unwrap().attempt, 1);
        let r = before_start(&home, unit).await.unwrap();
        assert_eq!(r.attempt, 2);
        failed(&home, r, &anyhow::anyhow!("bad token"));
        assert!(describe(&home).unwrap().contains("bad token"));
        assert_eq!(before_start(&home, unit).await.unwrap().attempt, 3);
        clean(&home);
        assert!(describe(&home).is_none());
        assert_eq!(before_start(&home, unit).await.unwrap().attempt, 1);
        // A start over an hour after the last one is a first one.
        write(
            &home,
            &Record {
                attempt: 6,
                timestamp: "2020-01-01T00:00:00.000Z".into(),
                reason: None,
            },
        )
        .unwrap();
        assert_eq!(before_start(&home, unit).await.unwrap().attempt, 1);
    }
}
