//! seq parity: one number space across both tables of a session; host even, runner odd.

use rusqlite::Connection;

use crate::Result;

/// Which side is writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The host (messages_in): even numbers.
    Host,
    /// The runner (messages_out): odd numbers.
    Runner,
}

/// The next number of `side`'s parity strictly above `max_seen`.
pub fn next(side: Side, max_seen: i64) -> i64 {
    let m = max_seen.max(0);
    let want_odd = side == Side::Runner;
    let candidate = m + 1;
    if (candidate % 2 == 1) == want_odd {
        candidate
    } else {
        candidate + 1
    }
}

/// Which table holds a seq.
pub fn side_of(seq: i64) -> Side {
    if seq % 2 == 0 {
        Side::Host
    } else {
        Side::Runner
    }
}

/// `MAX(seq)` of a table on an open connection (0 when empty).
pub fn max_seq(conn: &Connection, table: &str) -> Result<i64> {
    Ok(conn.query_row(
        &format!("SELECT COALESCE(MAX(seq), 0) FROM {table}"),
        [],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parity() {
        assert_eq!(next(Side::Host, 0), 2);
        assert_eq!(next(Side::Host, 2), 4);
        assert_eq!(next(Side::Host, 3), 4);
        assert_eq!(next(Side::Runner, 0), 1);
        assert_eq!(next(Side::Runner, 1), 3);
        assert_eq!(next(Side::Runner, 4), 5);
        assert_eq!(side_of(4), Side::Host);
        assert_eq!(side_of(7), Side::Runner);
    }
}
