//! Recurrence: the next occurrence of a cron expression in the configured timezone.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// The next occurrence strictly after `scheduled` (the previous occurrence's scheduled time,
/// not the wall clock, so a late run does not drift the series). If the host was down past
/// several occurrences, the missed ones are skipped: the result is the first one after `now`.
pub fn next_occurrence(
    cron: &str,
    tz: Tz,
    scheduled: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<DateTime<Utc>> {
    let c = croner::Cron::from_str(cron)
        .map_err(|e| anyhow::anyhow!("invalid cron expression {cron:?}: {e}"))?;
    let mut t = c
        .find_next_occurrence(&scheduled.with_timezone(&tz), false)
        .map_err(|e| anyhow::anyhow!("cron {cron:?} has no next occurrence: {e}"))?;
    while t.with_timezone(&Utc) <= now {
        t = c
            .find_next_occurrence(&now.with_timezone(&tz), false)
            .map_err(|e| anyhow::anyhow!("cron {cron:?} has no next occurrence: {e}"))?;
    }
    Ok(t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        nanoclaw_protocol::time::parse(s).unwrap()
    }

    #[test]
    fn daily_nine_in_new_york_across_dst() {
        let tz: Tz = "America/New_York".parse().unwrap();
        // 09:00 EDT on the Saturday before DST ends = 13:00Z; next is Sunday 09:00 EST = 14:00Z.
        let sched = utc("2026-10-31T13:00:00Z");
        let next = next_occurrence("0 9 * * *", tz, sched, sched).unwrap();
        assert_eq!(next, utc("2026-11-01T14:00:00Z"));
    }

    #[test]
    fn computed_from_scheduled_time_not_wall_clock() {
        let tz: Tz = "Asia/Kolkata".parse().unwrap();
        // Every 15 min; the run was scheduled 10:00 IST (04:30Z), finished late at 04:40Z.
        let next = next_occurrence(
            "*/15 * * * *",
            tz,
            utc("2026-01-01T04:30:00Z"),
            utc("2026-01-01T04:40:00Z"),
        )
        .unwrap();
        assert_eq!(next, utc("2026-01-01T04:45:00Z"));
        // Missed occurrences while down are skipped, not replayed.
        let next = next_occurrence(
            "*/15 * * * *",
            tz,
            utc("2026-01-01T04:30:00Z"),
            utc("2026-01-01T09:01:00Z"),
        )
        .unwrap();
        assert_eq!(next, utc("2026-01-01T09:15:00Z"));
        assert!(next_occurrence(
            "not cron",
            tz,
            utc("2026-01-01T04:30:00Z"),
            utc("2026-01-01T04:30:00Z")
        )
        .is_err());
    }
}
