//! How host and runner open the two session files: the host through its VFS and never
//! through a link, the runner plainly on its own side; attaching the other file read-only;
//! rolling back the journal a dead writer left.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::configure;
use super::upgrade::{ensure_inbound, ensure_outbound};
use crate::Result;

/// Opens a session DB the host's way: through the host VFS ([`crate::vfs`]: inbound.db's
/// journal kept host-private, no open that blocks or reaches a FIFO or device), beneath the
/// folder's canonical path with `SQLITE_OPEN_NOFOLLOW`, so a link the agent put in its folder
/// is refused instead of followed to a host file.
pub(super) fn host_open(path: &Path, flags: OpenFlags) -> Result<Connection> {
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
    ensure_outbound(&conn)?;
    Ok(conn)
}

/// Creates or upgrades a session's `outbound.db` from the host (provisioning), the host's way
/// ([`host_open`]): a link the agent left there is refused, not written through.
pub fn provision_outbound(path: &Path) -> Result<()> {
    let conn = host_open(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )?;
    ensure_outbound(&conn)
}

/// Opens a session DB read-only from the host (outbound.db), the host's way ([`host_open`]).
pub fn open_ro(path: &Path) -> Result<Connection> {
    host_open(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{change_counter, ChangeCounter};

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
