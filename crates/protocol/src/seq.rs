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

/// The largest seq either side accepts (2^53: exact in every JSON reader). A row beyond it, or
/// below 0, was written by a broken or hostile runner: it is refused and reported, and never
/// counts towards the next seq, so seq arithmetic cannot overflow.
pub const MAX_SEQ: i64 = 1 << 53;

/// Whether a seq is within the sane range.
pub fn sane(seq: i64) -> bool {
    (0..=MAX_SEQ).contains(&seq)
}

/// The next number of `side`'s parity strictly above `max_seen` (clamped to the sane range,
/// so it cannot overflow).
pub fn next(side: Side, max_seen: i64) -> i64 {
    let m = max_seen.clamp(0, MAX_SEQ);
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

/// `MAX(seq)` of a table on an open connection (0 when empty), over sane seqs only: a row with
/// an absurd seq (`i64::MAX`, text, a float) must not move the other side's next seq.
pub fn max_seq(conn: &Connection, table: &str) -> Result<i64> {
    Ok(conn.query_row(
        &format!(
            "SELECT COALESCE(MAX(seq), 0) FROM {table}
             WHERE seq BETWEEN 0 AND {MAX_SEQ} AND typeof(seq) = 'integer'"
        ),
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
        assert_eq!(next(Side::Host, i64::MAX), MAX_SEQ + 2);
        assert_eq!(next(Side::Runner, i64::MAX), MAX_SEQ + 1);
        assert_eq!(next(Side::Host, -7), 2);
    }

    #[test]
    fn absurd_seqs_do_not_count() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE t(seq INTEGER UNIQUE);
             INSERT INTO t VALUES (3), (9223372036854775807), (-5), ('77'), (1e300);",
        )
        .unwrap();
        assert_eq!(max_seq(&c, "t").unwrap(), 77);
    }
}
