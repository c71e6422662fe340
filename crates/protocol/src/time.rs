//! Timestamps as stored in every table: ISO 8601 UTC with milliseconds and `Z`.
//!
//! One fixed-width format means SQL text comparison (`process_after <= ?`) orders correctly.
//! Also the one reading of `TZ` ([`parse_tz`]), shared by the host and the runner.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;

/// Formats a UTC instant the way the protocol stores it.
pub fn fmt(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The current instant in protocol format.
pub fn now() -> String {
    fmt(Utc::now())
}

/// Parses a stored timestamp; accepts any RFC 3339 form and SQLite's `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

/// A `TZ` value that names no known zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown timezone {0:?} in TZ; UTC used")]
pub struct UnknownTimezone(pub String);

/// Reads a `TZ` value: surrounding whitespace trimmed, a leading `:` dropped (POSIX's
/// implementation-defined form, `TZ=:Europe/Paris`); unset or empty means UTC. An unknown
/// zone is an error naming the value, so the caller can warn before falling back to UTC
/// (`parse_tz(v).unwrap_or_else(|e| { warn(e); UTC })`).
pub fn parse_tz(value: Option<&str>) -> Result<Tz, UnknownTimezone> {
    let v = value.unwrap_or_default().trim();
    let name = v.strip_prefix(':').unwrap_or(v).trim();
    if name.is_empty() {
        return Ok(Tz::UTC);
    }
    name.parse().map_err(|_| UnknownTimezone(v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tz_forms() {
        assert_eq!(parse_tz(Some(":Europe/Paris")), Ok(Tz::Europe__Paris));
        assert_eq!(parse_tz(Some(" Europe/Paris\n")), Ok(Tz::Europe__Paris));
        assert_eq!(parse_tz(Some("Asia/Tokyo")), Ok(Tz::Asia__Tokyo));
        assert_eq!(parse_tz(None), Ok(Tz::UTC));
        assert_eq!(parse_tz(Some("  ")), Ok(Tz::UTC));
        assert_eq!(parse_tz(Some(":")), Ok(Tz::UTC));
        let e = parse_tz(Some("Mars/Olympus")).unwrap_err();
        assert_eq!(e, UnknownTimezone("Mars/Olympus".into()));
        assert!(e.to_string().contains("Mars/Olympus"));
    }

    #[test]
    fn roundtrip_and_order() {
        let a = parse("2026-01-01T00:00:00.000Z").unwrap();
        let b = parse("2026-01-01 00:00:01").unwrap();
        assert!(fmt(a) < fmt(b));
        assert_eq!(fmt(a), "2026-01-01T00:00:00.000Z");
        assert!(parse("yesterday").is_none());
    }
}
