//! The host's SQLite VFS for session DBs: the trust boundary at the file level (DESIGN §3).
//!
//! A session folder is writable by its agent; only the host's `inbound.db` is its own. Two
//! things SQLite does by name would let the agent act on host state through that folder:
//!
//! - **Hot journals.** A pager that opens a database rolls back any hot journal it finds next
//!   to it (`<db>-journal`). A journal the agent plants next to `inbound.db` would be played
//!   back into the host's file: forged `messages_in` rows, wiped `delivered` records. This VFS
//!   keeps the main journal of every session's `inbound.db` in a host-private file
//!   (`data/journals/<agent_group>.<session>.journal`): SQLite creates, checks, rolls back and
//!   deletes the host's journal there, so a genuine crash mid-write still recovers, and a file
//!   planted next to `inbound.db` is never even looked at. The mapping is in xOpen / xAccess /
//!   xDelete, the very calls the pager makes, so there is no check-then-open window an agent
//!   could race by re-planting a journal.
//! - **Blocking opens.** `open(2)` of a FIFO blocks until a writer appears. Every file the unix
//!   VFS opens in this process goes through [`guarded_open`]: `O_NONBLOCK`, then the descriptor's
//!   type is checked (regular files and directories; character devices only under `/dev/`, which
//!   is SQLite's `/dev/urandom`), so a FIFO, socket or device swapped in for a session file —
//!   even between any check and the open — fails the open instead of hanging the host.
//!
//! Links are refused by the callers ([`crate::schema`] opens session files with
//! `SQLITE_OPEN_NOFOLLOW` beneath a canonical folder), so SQLite never follows an agent's link
//! to a host file.
//!
//! The runner never registers this VFS: it reads inbound.db through the default one.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use rusqlite::ffi;

/// The name the host opens session DBs with.
pub const NAME: &str = "nanoclaw-host";
const NAME_C: &CStr = c"nanoclaw-host";

/// The default unix VFS this one delegates to (set once by [`register`]).
static UNIX: OnceLock<usize> = OnceLock::new();
/// The unix VFS's `open` before [`guarded_open`] wrapped it.
static PREV_OPEN: OnceLock<usize> = OnceLock::new();

type OpenFn = unsafe extern "C" fn(*const c_char, c_int, c_int) -> c_int;

/// Registers the VFS (idempotent). Call before opening any session DB in the host.
pub fn register() -> crate::Result<()> {
    static DONE: OnceLock<c_int> = OnceLock::new();
    let rc = *DONE.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find initialises SQLite and returns a VFS that lives for the
        // process. The copy keeps unix's methods and pAppData (its xOpen reads the locking
        // style from pAppData); the overridden methods call unix with unix's own pointer. The
        // struct is leaked: SQLite keeps the pointer for the life of the process.
        unsafe {
            let unix = ffi::sqlite3_vfs_find(c"unix".as_ptr());
            if unix.is_null() {
                return ffi::SQLITE_ERROR;
            }
            let _ = UNIX.set(unix as usize);
            if let (Some(get), Some(set)) = ((*unix).xGetSystemCall, (*unix).xSetSystemCall) {
                let prev = get(unix, c"open".as_ptr());
                if let Some(prev) = prev {
                    let _ = PREV_OPEN.set(prev as usize);
                    let ours: OpenFn = guarded_open;
                    // The syscall table stores every entry as `void(*)(void)`.
                    let ours = std::mem::transmute::<OpenFn, unsafe extern "C" fn()>(ours);
                    let rc = set(unix, c"open".as_ptr(), Some(ours));
                    if rc != ffi::SQLITE_OK {
                        return rc;
                    }
                }
            }
            let mut v: ffi::sqlite3_vfs = *unix;
            v.zName = NAME_C.as_ptr();
            v.pNext = std::ptr::null_mut();
            v.xOpen = Some(x_open);
            v.xDelete = Some(x_delete);
            v.xAccess = Some(x_access);
            ffi::sqlite3_vfs_register(Box::leak(Box::new(v)), 0)
        }
    });
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None).into())
    }
}

fn unix() -> *mut ffi::sqlite3_vfs {
    *UNIX.get().expect("registered before use") as *mut ffi::sqlite3_vfs
}

/// Where the host keeps the main journal of `<data>/v2-sessions/<agent_group>/<session>/
/// inbound.db`: `<data>/journals/<agent_group>.<session>.journal`. None for any other file
/// (those keep SQLite's default journal next to them). The folder names were validated when
/// the session paths were made; `.journal` keeps a '-' out of the last part, so the unix VFS
/// does not look for a database named after the journal to copy its mode from.
pub fn host_journal(journal: &Path) -> Option<PathBuf> {
    if journal.file_name()? != "inbound.db-journal" {
        return None;
    }
    let session = journal.parent()?;
    let group = session.parent()?;
    let sessions = group.parent()?;
    if sessions.file_name()? != "v2-sessions" {
        return None;
    }
    let data = sessions.parent()?;
    let mut name = group.file_name()?.to_os_string();
    name.push(".");
    name.push(session.file_name()?);
    name.push(".journal");
    Some(data.join("journals").join(name))
}

/// The private journal name for a journal name SQLite passes in, interned: the unix VFS keeps
/// the `zName` pointer of an open file until xClose, so the string must outlive every file
/// (bounded by the number of sessions, like the host's per-session writers).
fn mapped(z: *const c_char) -> Option<&'static CStr> {
    if z.is_null() {
        return None;
    }
    // SAFETY: SQLite passes a NUL-terminated name.
    let bytes = unsafe { CStr::from_ptr(z) }.to_bytes();
    if !bytes.ends_with(b"/inbound.db-journal") {
        return None;
    }
    static NAMES: OnceLock<Mutex<HashMap<Vec<u8>, Option<&'static CStr>>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    *names.entry(bytes.to_vec()).or_insert_with(|| {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let p = host_journal(Path::new(std::ffi::OsStr::from_bytes(bytes)))?;
        if let Some(dir) = p.parent() {
            use std::os::unix::fs::DirBuilderExt;
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir);
        }
        let c = CString::new(p.into_os_string().into_vec()).ok()?;
        Some(Box::leak(c.into_boxed_c_str()))
    })
}

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    z: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let unix = unix();
    let Some(open) = (*unix).xOpen else {
        return ffi::SQLITE_ERROR;
    };
    let z = match mapped(z) {
        Some(m) if flags & ffi::SQLITE_OPEN_MAIN_JOURNAL != 0 => m.as_ptr(),
        _ => z,
    };
    open(unix, z, file, flags, out_flags)
}

unsafe extern "C" fn x_delete(_vfs: *mut ffi::sqlite3_vfs, z: *const c_char, sync: c_int) -> c_int {
    let unix = unix();
    let Some(delete) = (*unix).xDelete else {
        return ffi::SQLITE_ERROR;
    };
    delete(unix, mapped(z).map_or(z, CStr::as_ptr), sync)
}

unsafe extern "C" fn x_access(
    _vfs: *mut ffi::sqlite3_vfs,
    z: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    let unix = unix();
    let Some(access) = (*unix).xAccess else {
        return ffi::SQLITE_ERROR;
    };
    access(unix, mapped(z).map_or(z, CStr::as_ptr), flags, out)
}

fn set_errno(e: c_int) {
    // SAFETY: the thread's errno location is always valid.
    unsafe {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            *libc::__errno_location() = e;
        }
        #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
        {
            *libc::__error() = e;
        }
    }
}

/// `open(2)` for SQLite's unix VFS that never blocks and opens only what a database can be.
unsafe extern "C" fn guarded_open(path: *const c_char, flags: c_int, mode: c_int) -> c_int {
    let Some(&prev) = PREV_OPEN.get() else {
        set_errno(libc::ENOSYS);
        return -1;
    };
    let prev = std::mem::transmute::<usize, OpenFn>(prev);
    let fd = prev(path, flags | libc::O_NONBLOCK, mode);
    if fd < 0 {
        return fd;
    }
    let mut st: libc::stat = std::mem::zeroed();
    let ok = libc::fstat(fd, &mut st) == 0
        && match st.st_mode & libc::S_IFMT {
            libc::S_IFREG | libc::S_IFDIR => true,
            libc::S_IFCHR => CStr::from_ptr(path).to_bytes().starts_with(b"/dev/"),
            _ => false,
        };
    if !ok {
        libc::close(fd);
        set_errno(libc::ENXIO);
        return -1;
    }
    // Back to the blocking mode SQLite asked for (only the open had to be non-blocking).
    if flags & libc::O_NONBLOCK == 0 {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
        }
    }
    fd
}

/// A session file's path beneath its folder's canonical path (cached per folder): with every
/// link in the prefix resolved, `SQLITE_OPEN_NOFOLLOW` refuses exactly a link the agent put in
/// the folder, and a home below a symlinked directory still opens.
pub fn canonical(path: &Path) -> PathBuf {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return path.to_path_buf();
    };
    static DIRS: OnceLock<Mutex<HashMap<PathBuf, PathBuf>>> = OnceLock::new();
    let mut dirs = DIRS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(c) = dirs.get(dir) {
        return c.join(name);
    }
    match std::fs::canonicalize(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) {
        Ok(c) => {
            let p = c.join(name);
            dirs.insert(dir.to_path_buf(), c);
            p
        }
        Err(_) => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_session_inbound_journals_move() {
        let j = host_journal(Path::new(
            "/h/data/v2-sessions/ag-1/sess-2/inbound.db-journal",
        ));
        assert_eq!(
            j.as_deref(),
            Some(Path::new("/h/data/journals/ag-1.sess-2.journal"))
        );
        assert!(host_journal(Path::new("/h/data/v2-sessions/ag/s/outbound.db-journal")).is_none());
        assert!(host_journal(Path::new("/tmp/x/inbound.db-journal")).is_none());
    }
}
