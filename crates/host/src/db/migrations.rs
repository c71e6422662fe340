//! Numbered migrations of the central DB with a `schema_version` ledger (DESIGN §5).
//!
//! Each migration runs in its own transaction; a DB from NanoClaw v2 already carries the
//! ledger, so only the migrations it lacks are applied.

use rusqlite::{params, Connection};

/// `(version, name, sql)` in order. Never edit a released entry: add a new one.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("sql/001_initial.sql")),
    (
        2,
        "delivery_intents_sticky_threads",
        include_str!("sql/002_delivery_intents.sql"),
    ),
    (
        3,
        "channel_state",
        include_str!("sql/003_channel_state.sql"),
    ),
    (
        4,
        "question_cards",
        include_str!("sql/004_question_cards.sql"),
    ),
    (
        5,
        "question_owners",
        include_str!("sql/005_question_owners.sql"),
    ),
];

/// Applies every migration the DB has not seen.
pub fn run(conn: &mut Connection) -> anyhow::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)",
    )?;
    for (version, name, sql) in MIGRATIONS {
        let done: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM schema_version WHERE version = ?1)",
            [version],
            |r| r.get(0),
        )?;
        if done {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .map_err(|e| anyhow::anyhow!("migration {version} ({name}) failed: {e}"))?;
        tx.execute(
            "INSERT INTO schema_version(version, name, applied) VALUES (?1, ?2, ?3)",
            params![version, name, super::now()],
        )?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotent() {
        let mut c = Connection::open_in_memory().unwrap();
        run(&mut c).unwrap();
        run(&mut c).unwrap();
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n as usize, MIGRATIONS.len());
    }
}
