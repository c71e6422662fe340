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
/// Waiting rows whose `process_after` NanoClaw v2's retry backoff wrote in SQLite's
/// `YYYY-MM-DD HH:MM:SS` (UTC): that does not compare as text with our ISO times (`' '` sorts
/// before `'T'`), so they get the same instant in our format (v2 reads both).
const V2_TIMES: &str = "FROM messages_in
 WHERE status IN ('pending', 'paused')
   AND process_after GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]*'
   AND strftime('%Y-%m-%dT%H:%M:%fZ', process_after) IS NOT NULL";
const OUTBOUND_INDEXES: &str = "";

/// How long a connection waits on the other side's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(())
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

/// Opens a session DB the host's way: through the host VFS ([`crate::vfs`]: inbound.db's
/// journal kept host-private, no open that blocks or reaches a FIFO or device), beneath the
/// folder's canonical path with `SQLITE_OPEN_NOFOLLOW`, so a link the agent put in its folder
/// is refused instead of followed to a host file.
fn host_open(path: &Path, flags: OpenFlags) -> Result<Connection> {
    crate::vfs::register()?;
    let path = crate::vfs::canonical(path);
    let conn = Connection::open_with_flags_and_vfs(
        &path,
        flags
            | OpenFlags::SQLITE_OPEN_NOFOLLOW
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        crate::vfs::NAME,
    )?;
    configure(&conn)?;
    Ok(conn)
}

/// Refuses a session file that is not a regular file (a link, FIFO, socket or device the
/// agent put there), without following it; a missing file passes (SQLite reports it).
pub fn check_regular(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_file() => Err(crate::Error::NotRegular(path.to_path_buf())),
        _ => Ok(()),
    }
}

/// Opens an already provisioned `inbound.db` for one write, with `outbound.db` attached
/// read-only as `ob` (for seq parity and ack sync). The hot path: no schema checks.
pub fn open_inbound_write(dir: &Path) -> Result<Connection> {
    let conn = open_rw(&dir.join("inbound.db"))?;
    attach_outbound(&conn, dir)?;
    Ok(conn)
}

/// Attaches a session's `outbound.db` read-only as `ob` to a host connection (after rolling
/// back a dead runner's journal), refusing a file that is not a regular file.
pub fn attach_outbound(conn: &Connection, dir: &Path) -> Result<()> {
    let outbound = dir.join("outbound.db");
    recover_journal(&outbound)?;
    check_regular(&outbound)?;
    attach_ro(conn, &crate::vfs::canonical(&outbound), "ob")
}

/// Opens an existing session DB read-write (the host's side). The writer of a file reads it
/// this way too: a journal it left when killed mid-commit is then rolled back on the first
/// read, where a read-only connection would fail (`SQLITE_READONLY_ROLLBACK`) until someone
/// else did it. For inbound.db that journal is the host's private one ([`crate::vfs`]).
pub fn open_rw(path: &Path) -> Result<Connection> {
    host_open(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
}

/// Rolls back the journal a writer left when it died mid-commit (a runner killed while
/// writing outbound.db), so read-only readers can read the file again. A stat when there is no
/// journal; harmless while the writer lives (its lock means the journal is not hot, and this
/// only reads). A journal or database that is not a regular file is refused, not opened.
pub fn recover_journal(db: &Path) -> Result<()> {
    let mut journal = db.as_os_str().to_owned();
    journal.push("-journal");
    let journal = std::path::PathBuf::from(journal);
    if std::fs::symlink_metadata(&journal).is_err() {
        return Ok(());
    }
    check_regular(&journal)?;
    check_regular(db)?;
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
    let conn = host_open(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )?;
    ensure_inbound(&conn)?;
    Ok(conn)
}

/// Creates or upgrades the inbound schema on an open connection.
pub fn ensure_inbound(conn: &Connection) -> Result<()> {
    ensure_tables(conn, INBOUND, INBOUND_INDEXES)?;
    // A read first: the write (its own statement, waiting on locks like any) happens only for
    // a folder v2 left such rows in, not at every provisioning.
    let v2_times: bool =
        conn.query_row(&format!("SELECT EXISTS(SELECT 1 {V2_TIMES})"), [], |r| {
            r.get(0)
        })?;
    if v2_times {
        conn.execute(
            &format!(
                "UPDATE messages_in SET process_after = strftime('%Y-%m-%dT%H:%M:%fZ', process_after)
                 WHERE rowid IN (SELECT rowid {V2_TIMES})"
            ),
            [],
        )?;
    }
    Ok(())
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

/// Creates or upgrades a session's `outbound.db` from the host (provisioning), the host's way
/// ([`host_open`]): a link the agent left there is refused, not written through.
pub fn provision_outbound(path: &Path) -> Result<()> {
    let conn = host_open(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )?;
    ensure_tables(&conn, OUTBOUND, OUTBOUND_INDEXES)
}

/// Opens a session DB read-only from the host (outbound.db), the host's way ([`host_open`]).
pub fn open_ro(path: &Path) -> Result<Connection> {
    host_open(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
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
    /// Opens the file read-only (it must exist); the runner's side.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        Ok(Self { conn })
    }

    /// Opens a session file read-only from the host, the host's way ([`host_open`]): a link,
    /// FIFO or device in its place fails the open instead of being followed or hanging.
    pub fn open_host(path: &Path) -> Result<Self> {
        Ok(Self {
            conn: host_open(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?,
        })
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

/// One read of a session file's change counter from the host (see [`ChangeCounter`]; keep
/// one open to poll).
pub fn change_counter(path: &Path) -> Result<u32> {
    ChangeCounter::open_host(path)?.read()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "../../testkit/fixtures/v2.0.64/session_inbound.sql"
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
            "INBOUND_DDL" => include_str!("../../testkit/fixtures/v2.0.64/session_inbound.sql"),
            _ => include_str!("../../testkit/fixtures/v2.0.64/session_outbound.sql"),
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

    /// A session folder of a home in `root`, provisioned the host's way.
    fn session(root: &Path, name: &str) -> std::path::PathBuf {
        let dir = root.join("data/v2-sessions/ag").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        open_inbound_rw(&dir.join("inbound.db")).unwrap();
        provision_outbound(&dir.join("outbound.db")).unwrap();
        dir
    }

    fn ids(c: &Connection) -> Vec<String> {
        let mut st = c.prepare("SELECT id FROM messages_in ORDER BY id").unwrap();
        let rows = st.query_map([], |r| r.get(0)).unwrap();
        rows.map(|r| r.unwrap()).collect()
    }

    /// Writes a journal that rolls `db` back to a state with a forged row, the way an agent
    /// with sqlite and a copy of its (readable) inbound.db can: returns the journal's bytes.
    pub(crate) fn forged_journal(db: &Path, scratch: &Path) -> Vec<u8> {
        std::fs::create_dir_all(scratch).unwrap();
        let copy = scratch.join("inbound.db");
        std::fs::copy(db, &copy).unwrap();
        let c = Connection::open(&copy).unwrap();
        c.execute_batch(
            "INSERT INTO messages_in(id, seq, kind, timestamp, content) VALUES ('forged', 9000, 'chat', 't', '{}');
             DELETE FROM delivered;
             PRAGMA cache_size=1; BEGIN;",
        )
        .unwrap();
        for i in 0..300 {
            c.execute(
                "INSERT INTO messages_in(id, seq, kind, timestamp, content) VALUES (?1, ?2, 'chat', 't', ?3)",
                rusqlite::params![format!("filler-{i}"), 10_000 + 2 * i, "x".repeat(300)],
            )
            .unwrap();
        }
        let j = std::fs::read(scratch.join("inbound.db-journal")).unwrap();
        c.execute_batch("ROLLBACK").unwrap();
        j
    }

    #[test]
    fn a_planted_inbound_journal_is_never_rolled_back() {
        let root = tempfile::tempdir().unwrap();
        let dir = session(root.path(), "s1");
        let db = dir.join("inbound.db");
        open_rw(&db)
            .unwrap()
            .execute_batch(
                "INSERT INTO messages_in(id, seq, kind, timestamp, content) VALUES ('real', 2, 'chat', 't', '{}');
                 INSERT INTO delivered(message_out_id, delivered_at) VALUES ('out-1', 't');",
            )
            .unwrap();
        let planted = forged_journal(&db, &root.path().join("scratch"));
        std::fs::write(dir.join("inbound.db-journal"), &planted).unwrap();
        // The attack works through SQLite's default VFS (what the host used before)...
        {
            let victim = root.path().join("victim");
            std::fs::create_dir_all(&victim).unwrap();
            std::fs::copy(&db, victim.join("inbound.db")).unwrap();
            std::fs::write(victim.join("inbound.db-journal"), &planted).unwrap();
            let c = Connection::open(victim.join("inbound.db")).unwrap();
            assert!(
                ids(&c).contains(&"forged".to_string()),
                "the attack is real"
            );
        }
        // ...and never through the host's.
        let c = open_rw(&db).unwrap();
        assert_eq!(ids(&c), vec!["real".to_string()]);
        let delivered: i64 = c
            .query_row("SELECT COUNT(*) FROM delivered", [], |r| r.get(0))
            .unwrap();
        assert_eq!(delivered, 1);
        c.execute(
            "INSERT INTO messages_in(id, seq, kind, timestamp, content) VALUES ('next', 4, 'chat', 't', '{}')",
            [],
        )
        .unwrap();
        assert!(
            dir.join("inbound.db-journal").exists(),
            "left alone, not read"
        );
        let c2 = open_inbound_write(&dir).unwrap();
        assert_eq!(ids(&c2).len(), 2);
    }

    #[test]
    fn a_host_crash_mid_write_still_recovers() {
        let root = tempfile::tempdir().unwrap();
        let dir = session(root.path(), "live");
        let w = open_rw(&dir.join("inbound.db")).unwrap();
        w.execute("INSERT INTO messages_in(id, seq, kind, timestamp, content) VALUES ('kept', 2, 'chat', 't', '{}')", [])
            .unwrap();
        w.execute_batch("PRAGMA cache_size=1; BEGIN").unwrap();
        for i in 0..300 {
            w.execute(
                "INSERT INTO messages_in(id, seq, kind, timestamp, content) VALUES (?1, ?2, 'chat', 't', ?3)",
                rusqlite::params![format!("lost-{i}"), 4 + 2 * i, "x".repeat(300)],
            )
            .unwrap();
        }
        let journals = root.path().join("data/journals");
        assert!(
            !dir.join("inbound.db-journal").exists(),
            "never next to inbound.db"
        );
        let live_journal = journals.join("ag.live.journal");
        assert!(live_journal.exists());
        // What a host killed now leaves behind, as another session's files.
        let crashed = session(root.path(), "crashed");
        std::fs::copy(dir.join("inbound.db"), crashed.join("inbound.db")).unwrap();
        std::fs::copy(&live_journal, journals.join("ag.crashed.journal")).unwrap();
        let c = open_rw(&crashed.join("inbound.db")).unwrap();
        assert_eq!(
            ids(&c),
            vec!["kept".to_string()],
            "rolled back to the last commit"
        );
        assert!(!journals.join("ag.crashed.journal").exists());
        w.execute_batch("ROLLBACK").unwrap();
    }

    #[test]
    fn fifos_and_links_in_a_session_are_refused_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let dir = session(root.path(), "s");
        let ob = dir.join("outbound.db");
        let fifo = |p: &Path| {
            let _ = std::fs::remove_file(p);
            let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
            // SAFETY: a NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        };
        fifo(&ob);
        let t = std::time::Instant::now();
        assert!(change_counter(&ob).is_err());
        assert!(open_inbound_write(&dir).is_err());
        assert!(open_ro(&ob)
            .and_then(|c| Ok(c.query_row("SELECT 1 FROM messages_out", [], |_| Ok(()))?))
            .is_err());
        // A FIFO the checks do not see (swapped in after them) fails the open too.
        assert!(ChangeCounter::open_host(&ob).is_err());
        // A hot journal that is a FIFO.
        std::fs::remove_file(&ob).unwrap();
        provision_outbound(&ob).unwrap();
        fifo(&dir.join("outbound.db-journal"));
        assert!(open_inbound_write(&dir).is_err());
        assert!(open_ro(&ob)
            .and_then(|c| Ok(c.query_row("SELECT 1 FROM messages_out", [], |_| Ok(()))?))
            .is_err());
        std::fs::remove_file(dir.join("outbound.db-journal")).unwrap();
        // A link to a host file is never opened through.
        std::fs::remove_file(&ob).unwrap();
        let host_file = root.path().join("data/host.db");
        Connection::open(&host_file)
            .unwrap()
            .execute_batch("CREATE TABLE secret(x)")
            .unwrap();
        std::os::unix::fs::symlink(&host_file, &ob).unwrap();
        assert!(open_ro(&ob).is_err());
        assert!(provision_outbound(&ob).is_err());
        assert!(ChangeCounter::open_host(&ob).is_err());
        assert!(matches!(
            check_regular(&ob),
            Err(crate::Error::NotRegular(_))
        ));
        assert!(
            t.elapsed() < std::time::Duration::from_secs(2),
            "nothing blocked"
        );
    }
}
