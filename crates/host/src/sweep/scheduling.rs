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

/// For a recurring outbound message last sent for the occurrence `last`: the occurrence due
/// now (the latest one not after `now`; earlier missed ones are skipped), and the next one.
pub fn due_occurrence(
    cron: &str,
    tz: Tz,
    last: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<(Option<DateTime<Utc>>, DateTime<Utc>)> {
    let c = croner::Cron::from_str(cron)
        .map_err(|e| anyhow::anyhow!("invalid cron expression {cron:?}: {e}"))?;
    let next_after = |t: DateTime<Utc>| -> anyhow::Result<DateTime<Utc>> {
        Ok(c.find_next_occurrence(&t.with_timezone(&tz), false)
            .map_err(|e| anyhow::anyhow!("cron {cron:?} has no next occurrence: {e}"))?
            .with_timezone(&Utc))
    };
    use chrono::SubsecRound;
    let mut t = next_after(last.trunc_subsecs(0))?;
    if t > now {
        return Ok((None, t));
    }
    // Jump close to now first so a long outage does not walk every missed occurrence.
    let mut due = t;
    if let Ok(before_now) = next_after(now - chrono::Duration::days(1)) {
        if before_now > due && before_now <= now {
            due = before_now;
        }
    }
    t = next_after(due)?;
    while t <= now {
        due = t;
        t = next_after(t)?;
    }
    Ok((Some(due), t))
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

    #[test]
    fn outbound_occurrences_skip_missed_ones() {
        let tz: Tz = "America/New_York".parse().unwrap();
        // Last sent Monday 09:00 NY; now Thursday 10:00 NY → due: Thursday 09:00, next Friday.
        let last = utc("2026-03-02T14:00:00.000Z");
        let now = utc("2026-03-05T15:00:00.000Z");
        let (due, next) = due_occurrence("0 9 * * *", tz, last, now).unwrap();
        assert_eq!(due, Some(utc("2026-03-05T14:00:00.000Z")));
        assert_eq!(next, utc("2026-03-06T14:00:00.000Z"));
        let (due, next) =
            due_occurrence("0 9 * * *", tz, utc("2026-03-05T14:00:00.000Z"), now).unwrap();
        assert_eq!(due, None);
        assert_eq!(next, utc("2026-03-06T14:00:00.000Z"));
    }
}
