//! Timestamps as stored in every table: ISO 8601 UTC with milliseconds and `Z`.
//!
//! One fixed-width format means SQL text comparison (`process_after <= ?`) orders correctly.

use chrono::{DateTime, SecondsFormat, Utc};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_order() {
        let a = parse("2026-01-01T00:00:00.000Z").unwrap();
        let b = parse("2026-01-01 00:00:01").unwrap();
        assert!(fmt(a) < fmt(b));
        assert_eq!(fmt(a), "2026-01-01T00:00:00.000Z");
        assert!(parse("yesterday").is_none());
    }
}
