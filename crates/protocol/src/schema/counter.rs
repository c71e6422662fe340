//! The change counter of a session file: how each side notices the other's commits.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::open::host_open;
use crate::Result;

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
    use crate::schema::open_outbound_rw;
    use std::time::Duration;

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
                .args([
                    "--exact",
                    "schema::counter::tests::lock_probe_child",
                    "--nocapture",
                ])
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
}
