//! Creating the session tables, and upgrading older session folders in place: columns a newer
//! protocol version introduced are added, nothing is renamed, dropped or re-typed (NanoClaw v2
//! opens the same files).

use rusqlite::Connection;

use super::tables::{Columns, INBOUND, INBOUND_INDEXES, OUTBOUND, OUTBOUND_INDEXES};
use crate::status::MessageStatus;
use crate::Result;

/// The rows (a `FROM … WHERE` clause) waiting with a `process_after` NanoClaw v2's retry
/// backoff wrote in SQLite's `YYYY-MM-DD HH:MM:SS` (UTC): that does not compare as text with our
/// ISO times (`' '` sorts before `'T'`), so they get the same instant in our format (v2 reads
/// both).
fn v2_times() -> String {
    format!(
        "FROM messages_in
 WHERE status IN ('{}', '{}')
   AND process_after GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]*'
   AND strftime('%Y-%m-%dT%H:%M:%fZ', process_after) IS NOT NULL",
        MessageStatus::Pending,
        MessageStatus::Paused
    )
}

fn ensure_tables(conn: &Connection, tables: &[(&str, Columns)], indexes: &str) -> Result<()> {
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    // IMMEDIATE: the write lock first. A deferred transaction that read the schema and then
    // must write (a folder v2 or an older release made) cannot wait for the lock: SQLite
    // refuses the upgrade at once when another writer is committing (SQLITE_BUSY without the
    // busy handler), which failed a runner start beside the host's first sweep.
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    for (table, cols) in tables {
        let existing: Vec<String> = {
            let mut st = tx.prepare(&format!("PRAGMA table_info({table})"))?;
            let rows = st.query_map([], |r| r.get::<_, String>(1))?;
            rows.collect::<std::result::Result<_, _>>()?
        };
        if existing.is_empty() {
            let body = cols
                .iter()
                .map(|(n, d)| format!("{n} {d}"))
                .collect::<Vec<_>>()
                .join(", ");
            tx.execute(&format!("CREATE TABLE {table} ({body})"), [])?;
        } else {
            // Older session folders: add what a newer protocol version introduced.
            for (name, def) in cols
                .iter()
                .filter(|(n, _)| !existing.iter().any(|e| e == n))
            {
                let def = def.replace(" UNIQUE", "");
                tx.execute(&format!("ALTER TABLE {table} ADD COLUMN {name} {def}"), [])?;
            }
        }
    }
    tx.execute_batch(indexes)?;
    tx.commit()?;
    Ok(())
}

/// Creates or upgrades the inbound schema on an open connection.
pub fn ensure_inbound(conn: &Connection) -> Result<()> {
    ensure_tables(conn, INBOUND, INBOUND_INDEXES)?;
    // A read first: the write (its own statement, waiting on locks like any) happens only for
    // a folder v2 left such rows in, not at every provisioning.
    let v2_times = v2_times();
    let found: bool = conn.query_row(&format!("SELECT EXISTS(SELECT 1 {v2_times})"), [], |r| {
        r.get(0)
    })?;
    if found {
        conn.execute(
            &format!(
                "UPDATE messages_in SET process_after = strftime('%Y-%m-%dT%H:%M:%fZ', process_after)
                 WHERE rowid IN (SELECT rowid {v2_times})"
            ),
            [],
        )?;
    }
    Ok(())
}

/// Creates or upgrades the outbound schema on an open connection.
pub(super) fn ensure_outbound(conn: &Connection) -> Result<()> {
    ensure_tables(conn, OUTBOUND, OUTBOUND_INDEXES)
}

#[cfg(test)]
mod tests {
    use super::super::configure;
    use super::*;
    use crate::schema::{change_counter, open_inbound_rw, open_outbound_rw, provision_outbound};

    /// Upgrading the schema of a folder another release made waits for a writer that is
    /// committing, instead of failing at once (a deferred transaction that read first is
    /// refused the write lock without the busy handler).
    #[test]
    fn a_schema_upgrade_waits_for_a_committing_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inbound.db");
        let a = Connection::open(&path).unwrap();
        a.pragma_update(None, "journal_mode", "DELETE").unwrap();
        a.execute_batch(include_str!(
            "../../../testkit/fixtures/v2.0.64/session_inbound.sql"
        ))
        .unwrap();
        a.execute_batch("BEGIN IMMEDIATE; INSERT INTO messages_in(id, seq, kind, timestamp, content) VALUES ('x', 2, 'chat', 't', '{}');")
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            rx.recv().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(200));
            a.execute_batch("COMMIT").unwrap();
        });
        let b = Connection::open(&path).unwrap();
        configure(&b).unwrap();
        tx.send(()).unwrap();
        ensure_inbound(&b).expect("the upgrade waited for the writer");
        holder.join().unwrap();
        let has_index: bool = b
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE name = 'idx_messages_in_status')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(has_index);
    }

    #[test]
    fn creates_upgrades_and_counts_changes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("inbound.db");
        {
            // An older folder: messages_in without the newer columns.
            let c = Connection::open(&p).unwrap();
            c.execute_batch(
                "CREATE TABLE messages_in(id TEXT PRIMARY KEY, seq INTEGER UNIQUE, kind TEXT NOT NULL,
                 timestamp TEXT NOT NULL, status TEXT DEFAULT 'pending', content TEXT NOT NULL);
                 INSERT INTO messages_in(id, seq, kind, timestamp, content) VALUES ('a', 2, 'chat', 't', '{}');",
            )
            .unwrap();
        }
        let c = open_inbound_rw(&p).unwrap();
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
        let (trig, on_wake): (i64, i64) = c
            .query_row(
                "SELECT trigger, on_wake FROM messages_in WHERE id='a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((trig, on_wake), (1, 0));
        let before = change_counter(&p).unwrap();
        c.execute("UPDATE messages_in SET status='completed'", [])
            .unwrap();
        assert_ne!(before, change_counter(&p).unwrap());
        let o = open_outbound_rw(&dir.path().join("outbound.db")).unwrap();
        o.execute(
            "INSERT INTO container_state(id, updated_at) VALUES (1, 'x')",
            [],
        )
        .unwrap();
        assert!(o
            .execute(
                "INSERT INTO container_state(id, updated_at) VALUES (2, 'x')",
                []
            )
            .is_err());
    }

    /// A session DB made by NanoClaw v2.0.64 (its DDL: no defaults on `kind`, `timestamp`,
    /// `content`; only the series index) opens under us without a column renamed, dropped or
    /// re-typed, takes our writes, and keeps working for v2 (same columns, rows readable).
    #[test]
    fn a_v2_made_session_db_opens_and_works_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let (inb, outb) = (
            dir.path().join("inbound.db"),
            dir.path().join("outbound.db"),
        );
        // testkit's copy of v2's DDL (one copy of those facts for every test).
        let ddl = |name: &str| match name {
            "INBOUND_DDL" => include_str!("../../../testkit/fixtures/v2.0.64/session_inbound.sql"),
            _ => include_str!("../../../testkit/fixtures/v2.0.64/session_outbound.sql"),
        };
        let columns = |c: &Connection, t: &str| -> Vec<(String, String, bool, Option<String>)> {
            let mut st = c.prepare(&format!("PRAGMA table_info({t})")).unwrap();
            st.query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .unwrap()
                .map(|r| r.unwrap())
                .collect()
        };
        let tables = [
            "messages_in",
            "delivered",
            "destinations",
            "session_routing",
        ];
        let out_tables = [
            "messages_out",
            "processing_ack",
            "session_state",
            "container_state",
        ];
        let before_in;
        let before_out;
        {
            let c = Connection::open(&inb).unwrap();
            c.execute_batch(ddl("INBOUND_DDL")).unwrap();
            c.execute_batch(
                "INSERT INTO messages_in (id, seq, kind, timestamp, status, content, process_after, series_id)
                 VALUES ('7:ag', 2, 'chat-sdk', '2026-01-01T00:00:00.000Z', 'completed', '{\"text\":\"hi\"}', NULL, '7:ag'),
                        ('t1', 4, 'task', '2026-01-01 00:00:01', 'pending', '{\"prompt\":\"p\",\"script\":null}', '2026-01-02 03:04:05', 't1');",
            )
            .unwrap();
            before_in = tables.map(|t| columns(&c, t));
            let o = Connection::open(&outb).unwrap();
            o.execute_batch(ddl("OUTBOUND_DDL")).unwrap();
            o.execute(
                "INSERT INTO messages_out (id, seq, timestamp, kind, content) VALUES ('m', 3, datetime('now'), 'chat', '{}')",
                [],
            )
            .unwrap();
            before_out = out_tables.map(|t| columns(&o, t));
        }
        // Our host opens (provisioning upgrades lazily) and writes; our runner opens its side.
        let c = open_inbound_rw(&inb).unwrap();
        provision_outbound(&outb).unwrap();
        let o = open_outbound_rw(&outb).unwrap();
        assert_eq!(
            tables.map(|t| columns(&c, t)),
            before_in,
            "v2's columns unchanged"
        );
        assert_eq!(out_tables.map(|t| columns(&o, t)), before_out);
        let next = crate::seq::next(
            crate::seq::Side::Host,
            crate::seq::max_seq(&c, "messages_in").unwrap().max(3),
        );
        assert_eq!(next, 6, "host seqs stay even above both tables");
        c.execute(
            "INSERT INTO messages_in(id, seq, kind, timestamp, status, process_after, recurrence, series_id, tries,
               trigger, platform_id, channel_type, thread_id, content, source_session_id, on_wake)
             VALUES ('ours', ?1, 'chat', '2026-01-03T00:00:00.000Z', 'pending', NULL, NULL, 'ours', 0, 1, 'local', 'cli', NULL, '{}', NULL, 0)",
            [next],
        )
        .unwrap();
        o.execute(
            "INSERT INTO session_state(key, value, updated_at) VALUES ('continuation:claude', 'x', 't')",
            [],
        )
        .unwrap();
        // v2's backoff time is now ours, the same instant; history rows keep theirs.
        let after: String = c
            .query_row(
                "SELECT process_after FROM messages_in WHERE id = 't1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(after, "2026-01-02T03:04:05.000Z");
        let ts: String = c
            .query_row(
                "SELECT timestamp FROM messages_in WHERE id = 't1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(ts, "2026-01-01 00:00:01");
        // What v2 itself runs on these files still works (its selects and its inserts).
        let v2 = Connection::open(&inb).unwrap();
        let due: i64 = v2
            .query_row(
                "SELECT COUNT(*) FROM messages_in WHERE status = 'pending' AND trigger = 1
                   AND (process_after IS NULL OR datetime(process_after) <= datetime('now'))",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(due, 2);
        v2.execute(
            "INSERT INTO messages_in (id, seq, kind, timestamp, status, platform_id, channel_type, thread_id, content,
               process_after, recurrence, series_id, trigger, source_session_id, on_wake)
             VALUES ('v2-again', 8, 'chat', '2026-01-04T00:00:00.000Z', 'pending', NULL, NULL, NULL, '{}', NULL, NULL, 'v2-again', 1, NULL, 0)",
            [],
        )
        .unwrap();
        let v2o = Connection::open(&outb).unwrap();
        let cont: String = v2o
            .query_row(
                "SELECT value FROM session_state WHERE key = 'continuation:claude'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(cont, "x");
    }
}
