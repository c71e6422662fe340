//! Session DB schemas (DESIGN §4), opening rules and lazy upgrade of older session folders.
//!
//! Both files use `journal_mode=DELETE`: WAL's shared-memory index does not work across the
//! bind mount between host and container, a rollback journal does.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::Result;

/// One table's columns as `(name, definition)`; definitions are valid in `ALTER TABLE ADD COLUMN`
/// except for the primary key, which every version has had.
type Columns = &'static [(&'static str, &'static str)];

const MESSAGES_IN: Columns = &[
    ("id", "TEXT PRIMARY KEY"),
    ("seq", "INTEGER UNIQUE"),
    ("kind", "TEXT NOT NULL DEFAULT 'chat'"),
    ("timestamp", "TEXT NOT NULL DEFAULT ''"),
    ("status", "TEXT DEFAULT 'pending'"),
    ("process_after", "TEXT"),
    ("recurrence", "TEXT"),
    ("series_id", "TEXT"),
    ("tries", "INTEGER DEFAULT 0"),
    ("trigger", "INTEGER NOT NULL DEFAULT 1"),
    ("platform_id", "TEXT"),
    ("channel_type", "TEXT"),
    ("thread_id", "TEXT"),
    ("content", "TEXT NOT NULL DEFAULT '{}'"),
    ("source_session_id", "TEXT"),
    ("on_wake", "INTEGER NOT NULL DEFAULT 0"),
];
const DELIVERED: Columns = &[
    ("message_out_id", "TEXT PRIMARY KEY"),
    ("platform_message_id", "TEXT"),
    ("status", "TEXT NOT NULL DEFAULT 'delivered'"),
    ("delivered_at", "TEXT NOT NULL DEFAULT ''"),
];
const DESTINATIONS: Columns = &[
    ("name", "TEXT PRIMARY KEY"),
    ("display_name", "TEXT"),
    ("type", "TEXT NOT NULL DEFAULT 'channel'"),
    ("channel_type", "TEXT"),
    ("platform_id", "TEXT"),
    ("agent_group_id", "TEXT"),
];
const SESSION_ROUTING: Columns = &[
    ("id", "INTEGER PRIMARY KEY CHECK (id = 1)"),
    ("channel_type", "TEXT"),
    ("platform_id", "TEXT"),
    ("thread_id", "TEXT"),
];
const MESSAGES_OUT: Columns = &[
    ("id", "TEXT PRIMARY KEY"),
    ("seq", "INTEGER UNIQUE"),
    ("in_reply_to", "TEXT"),
    ("timestamp", "TEXT NOT NULL DEFAULT ''"),
    ("deliver_after", "TEXT"),
    ("recurrence", "TEXT"),
    ("kind", "TEXT NOT NULL DEFAULT 'chat'"),
    ("platform_id", "TEXT"),
    ("channel_type", "TEXT"),
    ("thread_id", "TEXT"),
    ("content", "TEXT NOT NULL DEFAULT '{}'"),
];
const PROCESSING_ACK: Columns = &[
    ("message_id", "TEXT PRIMARY KEY"),
    ("status", "TEXT NOT NULL DEFAULT 'processing'"),
    ("status_changed", "TEXT NOT NULL DEFAULT ''"),
];
const SESSION_STATE: Columns = &[
    ("key", "TEXT PRIMARY KEY"),
    ("value", "TEXT NOT NULL DEFAULT ''"),
    ("updated_at", "TEXT NOT NULL DEFAULT ''"),
];
const CONTAINER_STATE: Columns = &[
    ("id", "INTEGER PRIMARY KEY CHECK (id = 1)"),
    ("current_tool", "TEXT"),
    ("tool_declared_timeout_ms", "INTEGER"),
    ("tool_started_at", "TEXT"),
    ("updated_at", "TEXT NOT NULL DEFAULT ''"),
];

const INBOUND: &[(&str, Columns)] = &[
    ("messages_in", MESSAGES_IN),
    ("delivered", DELIVERED),
    ("destinations", DESTINATIONS),
    ("session_routing", SESSION_ROUTING),
];
const OUTBOUND: &[(&str, Columns)] = &[
    ("messages_out", MESSAGES_OUT),
    ("processing_ack", PROCESSING_ACK),
    ("session_state", SESSION_STATE),
    ("container_state", CONTAINER_STATE),
];
const INBOUND_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS idx_messages_in_series ON messages_in(series_id);
CREATE INDEX IF NOT EXISTS idx_messages_in_status ON messages_in(status, process_after);";
const OUTBOUND_INDEXES: &str = "";

/// How long a connection waits on the other side's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(())
}

fn ensure_tables(conn: &Connection, tables: &[(&str, Columns)], indexes: &str) -> Result<()> {
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    let tx = conn.unchecked_transaction()?;
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

/// Opens an already provisioned `inbound.db` for one write, with `outbound.db` attached
/// read-only as `ob` (for seq parity and ack sync). The hot path: no schema checks.
pub fn open_inbound_write(dir: &Path) -> Result<Connection> {
    let conn = open_rw(&dir.join("inbound.db"))?;
    let outbound = dir.join("outbound.db");
    recover_journal(&outbound)?;
    attach_ro(&conn, &outbound, "ob")?;
    Ok(conn)
}

/// Opens an existing session DB read-write. The writer of a file reads it this way too: a
/// journal it left when killed mid-commit is then rolled back on the first read, where a
/// read-only connection would fail (`SQLITE_READONLY_ROLLBACK`) until someone else did it.
pub fn open_rw(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&conn)?;
    Ok(conn)
}

/// Rolls back the journal a writer left when it died mid-commit (a runner killed while
/// writing outbound.db), so read-only readers can read the file again. A stat when there is no
/// journal; harmless while the writer lives (its lock means the journal is not hot, and this
/// only reads).
pub fn recover_journal(db: &Path) -> Result<()> {
    let mut journal = db.as_os_str().to_owned();
    journal.push("-journal");
    if !Path::new(&journal).exists() {
        return Ok(());
    }
    open_rw(db)?.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
    Ok(())
}

/// Attaches another session DB read-only under `alias` (the connection must allow URIs, as
/// connections from this module do).
pub fn attach_ro(conn: &Connection, path: &Path, alias: &str) -> Result<()> {
    let uri = format!("file:{}?mode=ro", percent_path(path));
    conn.execute(&format!("ATTACH DATABASE ?1 AS {alias}"), [uri])?;
    Ok(())
}

/// Escapes a path for a SQLite URI filename.
fn percent_path(p: &Path) -> String {
    let mut out = String::new();
    for b in p.to_string_lossy().bytes() {
        match b {
            b'%' | b'?' | b'#' | b' ' | 0x80.. => out.push_str(&format!("%{b:02X}")),
            _ => out.push(b as char),
        }
    }
    out
}

/// Opens (creating or upgrading) `inbound.db` for writing; the host's side.
pub fn open_inbound_rw(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    ensure_inbound(&conn)?;
    Ok(conn)
}

/// Creates or upgrades the inbound schema on an open connection.
pub fn ensure_inbound(conn: &Connection) -> Result<()> {
    ensure_tables(conn, INBOUND, INBOUND_INDEXES)
}

/// Opens `outbound.db` for writing (the runner's side), creating or upgrading it.
pub fn open_outbound_rw(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&conn)?;
    ensure_tables(&conn, OUTBOUND, OUTBOUND_INDEXES)?;
    Ok(conn)
}

/// Opens a session DB read-only (runner → inbound.db, host → outbound.db).
pub fn open_ro(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&conn)?;
    Ok(conn)
}

/// Reads one session DB's file change counter (header offset 24, bumped by every commit in
/// rollback-journal mode): a cheap, exact "did this DB change" check that needs no SQL and
/// takes no lock — one `pread` per check once open.
///
/// The read goes through SQLite's own file handle, not `std::fs::File`: POSIX locks belong to
/// the process, and closing *any* descriptor of a file drops all of them. A raw open/read/close
/// of a database this process also has open in SQLite would silently release that
/// connection's locks mid-transaction (another process could then roll the commit back as a
/// "hot journal", or read torn pages). SQLite's unix VFS defers closing its descriptors while
/// the process holds locks on the file, so reading through it is safe.
pub struct ChangeCounter {
    conn: Connection,
}

impl ChangeCounter {
    /// Opens the file read-only (it must exist).
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        Ok(Self { conn })
    }

    /// The current counter.
    pub fn read(&self) -> Result<u32> {
        use rusqlite::ffi;
        let fail = |rc| rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None);
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: the handle is live for `&self`; FILE_POINTER writes the main database's
        // sqlite3_file*, which stays valid while the connection is open (the pager keeps it).
        let rc = unsafe {
            ffi::sqlite3_file_control(
                self.conn.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_FILE_POINTER,
                (&mut file as *mut *mut ffi::sqlite3_file).cast(),
            )
        };
        if rc != ffi::SQLITE_OK || file.is_null() {
            return Err(fail(if rc == ffi::SQLITE_OK {
                ffi::SQLITE_MISUSE
            } else {
                rc
            })
            .into());
        }
        let mut head = [0u8; 4];
        // SAFETY: `file` is valid (above); xRead fills at most 4 bytes of `head` and reports
        // SQLITE_IOERR_SHORT_READ for a file shorter than the header.
        let rc = unsafe {
            match (*file).pMethods.as_ref().and_then(|m| m.xRead) {
                Some(x_read) => x_read(file, head.as_mut_ptr().cast(), 4, 24),
                None => ffi::SQLITE_MISUSE,
            }
        };
        if rc != ffi::SQLITE_OK {
            return Err(fail(rc).into());
        }
        Ok(u32::from_be_bytes(head))
    }
}

/// One read of a DB file's change counter (see [`ChangeCounter`]; keep one open to poll).
pub fn change_counter(path: &Path) -> Result<u32> {
    ChangeCounter::open(path)?.read()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Run as a child by `reading_the_counter_keeps_this_process_locks`: can another process
    /// take the write lock of the file named in the environment right now?
    #[test]
    fn lock_probe_child() {
        let Ok(path) = std::env::var("NANOCLAW_LOCK_PROBE") else {
            return;
        };
        let c = Connection::open(path).unwrap();
        c.busy_timeout(Duration::ZERO).unwrap();
        let got = c.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").is_ok();
        println!("LOCK_PROBE={}", if got { "taken" } else { "busy" });
    }

    #[test]
    fn reading_the_counter_keeps_this_process_locks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("outbound.db");
        let w = open_outbound_rw(&p).unwrap();
        let probe = || {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "schema::tests::lock_probe_child", "--nocapture"])
                .env("NANOCLAW_LOCK_PROBE", &p)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            text.split("LOCK_PROBE=").nth(1).map(|r| r[..4].to_string())
        };
        w.execute_batch("BEGIN IMMEDIATE").unwrap();
        assert_eq!(probe().as_deref(), Some("busy"), "our write lock is seen");
        // The counter is read (and its handle closed) mid-transaction...
        let before = change_counter(&p).unwrap();
        let watcher = ChangeCounter::open(&p).unwrap();
        drop(ChangeCounter::open(&p).unwrap());
        // ...and the other process still cannot write: our lock survived.
        assert_eq!(
            probe().as_deref(),
            Some("busy"),
            "a counter read dropped our lock"
        );
        w.execute("INSERT INTO processing_ack(message_id, status, status_changed) VALUES ('a', 'completed', 't')", [])
            .unwrap();
        w.execute_batch("COMMIT").unwrap();
        assert_ne!(watcher.read().unwrap(), before);
        assert!(change_counter(&dir.path().join("missing.db")).is_err());
    }

    #[test]
    fn a_dead_writers_journal_is_rolled_back_for_readers() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        let w = open_outbound_rw(&live).unwrap();
        w.execute("INSERT INTO processing_ack(message_id, status, status_changed) VALUES ('kept', 'completed', 't')", [])
            .unwrap();
        // A commit in flight, with pages already spilled into the file: a copy taken now is
        // what a writer killed mid-commit leaves behind (a hot journal).
        w.execute_batch("PRAGMA cache_size=1; BEGIN").unwrap();
        for i in 0..500 {
            w.execute(
                "INSERT INTO processing_ack(message_id, status, status_changed) VALUES (?1, 'completed', ?2)",
                rusqlite::params![format!("lost-{i}"), "x".repeat(200)],
            )
            .unwrap();
        }
        let crashed = dir.path().join("outbound.db");
        std::fs::copy(&live, &crashed).unwrap();
        std::fs::copy(
            dir.path().join("live.db-journal"),
            dir.path().join("outbound.db-journal"),
        )
        .unwrap();
        let count = |c: &Connection| {
            c.query_row("SELECT COUNT(*) FROM processing_ack", [], |r| {
                r.get::<_, i64>(0)
            })
        };
        let err = count(&open_ro(&crashed).unwrap()).unwrap_err();
        assert!(err.to_string().contains("readonly"), "{err}");
        recover_journal(&crashed).unwrap();
        assert_eq!(
            count(&open_ro(&crashed).unwrap()).unwrap(),
            1,
            "rolled back to the last commit"
        );
        assert!(!dir.path().join("outbound.db-journal").exists());
        recover_journal(&crashed).unwrap();
        w.execute_batch("ROLLBACK").unwrap();
    }
}
