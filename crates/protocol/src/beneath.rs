//! File access beneath a directory handle, never through a link (DESIGN §3).
//!
//! Everything in a session or agent folder except the host's own inbound.db is written by a
//! hostile agent: any name in it may be a symlink, a FIFO, a device, a 300 MB sparse file, or be
//! swapped for one between a check and a use. So paths are never handed to the kernel whole
//! from the host's side; a [`Dir`] (an open directory fd) is the root, and every lookup below it
//! goes through that fd:
//!
//! - **No links, no `..`.** `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//!   RESOLVE_NO_MAGICLINKS`; on kernels (or seccomp profiles) without openat2 a
//!   component-by-component `openat(O_NOFOLLOW)` walk. A link anywhere — also one that points
//!   inside the root, and a dangling one — is refused ([`Error::Link`]), never followed.
//!   (cap-std would follow in-tree links; we refuse them outright, so there is no link
//!   resolution to get wrong.) `..` and absolute paths are refused before any syscall.
//! - **Opens never block.** `O_NONBLOCK | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW`; the type is checked
//!   with `fstatat(AT_SYMLINK_NOFOLLOW)` before the open (so a FIFO or device is not even
//!   opened) and again with `fstat` on the open handle (so a swap in between is caught).
//!   Only regular files are read ([`Error::NotRegular`]).
//! - **Sizes are capped** on the open handle and again while reading: at most `cap + 1` bytes
//!   are ever read, so a file growing after the check is caught too ([`Error::TooLarge`]).
//! - **Creates are exclusive** (`O_CREAT | O_EXCL | O_NOFOLLOW`), directories are made one
//!   component at a time, deletes `unlinkat` through directory fds and never descend a link,
//!   ownership changes use `fchownat(AT_SYMLINK_NOFOLLOW)` through directory fds.
//!
//! The root itself is opened by path ([`Dir::open`]): it is the host's own path (the home may
//! legitimately sit behind a symlink); only what lies beneath it is the agent's.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

pub use rustix::fs::FileType;
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// How deep [`Dir::remove_all`] and [`Dir::chown_tree`] descend (one fd per level is held).
const MAX_DEPTH: usize = 128;

/// Why an access beneath a root was refused or failed. Callers branch on the variant: a link,
/// a non-regular file or an oversized file is the agent's doing (audit it, tell the agent); `Io`
/// is an ordinary failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A component is a symbolic link (followed by nothing here, also when dangling).
    #[error("{path}: is a symbolic link")]
    Link {
        /// The path up to the link.
        path: PathBuf,
    },
    /// Not a regular file (a FIFO, device, socket or directory).
    #[error("{path}: not a regular file ({kind})")]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is instead ("FIFO", "directory", …).
        kind: &'static str,
    },
    /// Over the caller's size cap.
    #[error("{path}: over the {cap}-byte limit")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap it exceeds, in bytes.
        cap: u64,
    },
    /// Absolute, `..`, or otherwise not a path below the root.
    #[error("{path}: not a path beneath its root")]
    Escapes {
        /// The path as given.
        path: PathBuf,
    },
    /// Any other failure of the underlying call.
    #[error("{path}: {source}")]
    Io {
        /// The path the call was about.
        path: PathBuf,
        /// The call's error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// True when the file or a folder on its way does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
    /// The path the error is about (relative to the root for agent paths).
    pub fn path(&self) -> &Path {
        match self {
            Error::Link { path }
            | Error::NotRegular { path, .. }
            | Error::TooLarge { path, .. }
            | Error::Escapes { path }
            | Error::Io { path, .. } => path,
        }
    }
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, Error>;

fn io(path: &Path, e: impl Into<std::io::Error>) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// Set once openat2 turned out to be missing (ENOSYS, or EPERM from an older seccomp profile):
/// later lookups go straight to the walk.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

fn kind_of(ft: FileType) -> &'static str {
    match ft {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Unknown => "unknown",
    }
}

/// The components of a relative path: `.` and empty ones dropped; absolute paths and `..`
/// refused.
fn components(rel: &Path) -> Result<Vec<&OsStr>> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(Error::Escapes {
                    path: rel.to_path_buf(),
                })
            }
        }
    }
    if rel.as_os_str().as_bytes().contains(&0) {
        return Err(Error::Escapes {
            path: rel.to_path_buf(),
        });
    }
    Ok(out)
}

/// A file opened beneath a root: regular, within its cap when opened.
#[derive(Debug)]
pub struct Opened {
    /// The open file (read-only, O_NONBLOCK).
    pub file: File,
    /// Its size when opened.
    pub len: u64,
}

impl Opened {
    /// Reads it whole, at most `cap + 1` bytes (a file that grew past the cap since it was
    /// opened is refused, not truncated).
    pub fn read_capped(self, path: &Path, cap: u64) -> Result<Vec<u8>> {
        read_capped(self.file, path, cap, self.len)
    }
}

/// Reads `r` to its end, refusing more than `cap` bytes (reads at most `cap + 1`).
pub fn read_capped(r: impl Read, path: &Path, cap: u64, hint: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(hint.min(cap) as usize);
    r.take(cap.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| io(path, e))?;
    if buf.len() as u64 > cap {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            cap,
        });
    }
    Ok(buf)
}

/// An open directory: the root of lookups beneath it.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    /// Where it is, for messages and for callers that need the path (never re-resolved here).
    path: PathBuf,
    /// Resolve with the openat(O_NOFOLLOW) walk only (tests of the fallback set it).
    walk: bool,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOCTTY);

const READ_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOCTTY);

/// One entry of [`Dir::list`].
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its name in the directory.
    pub name: OsString,
    /// What it is (a link is a link).
    pub kind: FileType,
    /// Last modification, seconds since the epoch.
    pub mtime: i64,
}

impl Dir {
    /// Opens a root by its (host-chosen, trusted) path.
    pub fn open(path: impl AsRef<Path>) -> Result<Dir> {
        let path = path.as_ref();
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io(path, e))?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
            walk: false,
        })
    }

    /// The root's path as it was opened (plus the relative path for sub-directories).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn child(&self, fd: OwnedFd, rel: &Path) -> Dir {
        Dir {
            fd,
            path: self.path.join(rel),
            walk: self.walk,
        }
    }

    /// The directory at `rel` beneath this one (no link on the way, also not the last).
    pub fn open_dir(&self, rel: impl AsRef<Path>) -> Result<Dir> {
        let rel = rel.as_ref();
        let comps = components(rel)?;
        let fd = self.resolve_dir(rel, &comps)?;
        Ok(self.child(fd, rel))
    }

    fn resolve_dir(&self, rel: &Path, comps: &[&OsStr]) -> Result<OwnedFd> {
        if comps.is_empty() {
            return rustix::io::fcntl_dupfd_cloexec(&self.fd, 0).map_err(|e| io(rel, e));
        }
        if !self.walk && !NO_OPENAT2.load(Ordering::Relaxed) {
            let joined: PathBuf = comps.iter().collect();
            let resolve =
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            match rustix::fs::openat2(&self.fd, &joined, DIR_FLAGS, Mode::empty(), resolve) {
                Ok(fd) => return Ok(fd),
                Err(Errno::NOSYS) | Err(Errno::PERM) => NO_OPENAT2.store(true, Ordering::Relaxed),
                Err(Errno::NOENT) => return Err(io(rel, Errno::NOENT)),
                Err(Errno::ACCESS) => return Err(io(rel, Errno::ACCESS)),
                // A link, a file on the way, an escape: the walk names the component and
                // the reason exactly (and is just as safe if things changed meanwhile).
                Err(_) => {}
            }
        }
        let mut cur: Option<OwnedFd> = None;
        let mut done = PathBuf::new();
        for c in comps {
            done.push(c);
            let at = cur.as_ref().map_or(self.fd.as_fd(), |f| f.as_fd());
            let next = match rustix::fs::openat(at, *c, DIR_FLAGS, Mode::empty()) {
                Ok(fd) => fd,
                Err(e) => return Err(classify(at, c, &done, e)),
            };
            cur = Some(next);
        }
        Ok(cur.expect("non-empty components"))
    }

    /// The parent directory of `rel` and its last component.
    fn parent_of<'a>(&self, rel: &'a Path) -> Result<(OwnedFd, &'a OsStr)> {
        let comps = components(rel)?;
        let Some((name, parents)) = comps.split_last() else {
            return Err(Error::Escapes {
                path: rel.to_path_buf(),
            });
        };
        let parent_rel: PathBuf = parents.iter().collect();
        let fd = self.resolve_dir(&parent_rel, parents)?;
        Ok((fd, name))
    }

    /// Opens the regular file at `rel` for reading, refusing links, non-regular files and files
    /// over `cap` bytes. Never blocks (a FIFO is refused before it is opened).
    pub fn open_file(&self, rel: impl AsRef<Path>, cap: u64) -> Result<Opened> {
        let rel = rel.as_ref();
        let (parent, name) = self.parent_of(rel)?;
        let st =
            rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| io(rel, e))?;
        check_regular(rel, &st, cap)?;
        let fd = rustix::fs::openat(&parent, name, READ_FLAGS, Mode::empty())
            .map_err(|e| classify(parent.as_fd(), name, rel, e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| io(rel, e))?;
        check_regular(rel, &st, cap)?;
        Ok(Opened {
            file: File::from(fd),
            len: st.st_size as u64,
        })
    }

    /// Reads the regular file at `rel` whole, at most `cap` bytes.
    pub fn read(&self, rel: impl AsRef<Path>, cap: u64) -> Result<Vec<u8>> {
        let rel = rel.as_ref();
        self.open_file(rel, cap)?.read_capped(rel, cap)
    }

    /// Creates the directory `rel` and its missing parents, one component at a time, refusing
    /// any link on the way; returns it opened.
    pub fn create_dir_all(&self, rel: impl AsRef<Path>, mode: u32) -> Result<Dir> {
        let rel = rel.as_ref();
        let comps = components(rel)?;
        let mut cur = rustix::io::fcntl_dupfd_cloexec(&self.fd, 0).map_err(|e| io(rel, e))?;
        let mut done = PathBuf::new();
        for c in &comps {
            done.push(c);
            match rustix::fs::mkdirat(&cur, *c, Mode::from_raw_mode(mode)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(io(&done, e)),
            }
            cur = rustix::fs::openat(&cur, *c, DIR_FLAGS, Mode::empty())
                .map_err(|e| classify(cur.as_fd(), c, &done, e))?;
        }
        Ok(self.child(cur, rel))
    }

    /// Creates `rel` as a new file (`O_CREAT | O_EXCL | O_NOFOLLOW`): whatever already has that
    /// name — a file, a link, a FIFO — makes it fail with `AlreadyExists`, never written through.
    pub fn create_new(&self, rel: impl AsRef<Path>, mode: u32) -> Result<File> {
        let rel = rel.as_ref();
        let (parent, name) = self.parent_of(rel)?;
        let flags = OFlags::WRONLY
            | OFlags::CREATE
            | OFlags::EXCL
            | OFlags::NOFOLLOW
            | OFlags::CLOEXEC
            | OFlags::NOCTTY;
        let fd = rustix::fs::openat(&parent, name, flags, Mode::from_raw_mode(mode))
            .map_err(|e| io(rel, e))?;
        Ok(File::from(fd))
    }

    /// Opens `rel` for writing, creating it when missing and truncating it otherwise; an
    /// existing name must be a regular file (a link — dangling or not —, a FIFO or a device is
    /// refused, and nothing is created through a link).
    pub fn write_file(&self, rel: impl AsRef<Path>, mode: u32) -> Result<File> {
        let rel = rel.as_ref();
        let (parent, name) = self.parent_of(rel)?;
        match rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => check_regular(rel, &st, u64::MAX)?,
            Err(Errno::NOENT) => {}
            Err(e) => return Err(io(rel, e)),
        }
        let flags = OFlags::WRONLY
            | OFlags::CREATE
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::CLOEXEC
            | OFlags::NOCTTY;
        let fd = rustix::fs::openat(&parent, name, flags, Mode::from_raw_mode(mode))
            .map_err(|e| classify(parent.as_fd(), name, rel, e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| io(rel, e))?;
        check_regular(rel, &st, u64::MAX)?;
        // Truncated only once it is known to be a regular file of ours.
        rustix::fs::ftruncate(&fd, 0).map_err(|e| io(rel, e))?;
        Ok(File::from(fd))
    }

    /// What `rel` is, without following it; None when it does not exist.
    pub fn kind(&self, rel: impl AsRef<Path>) -> Result<Option<FileType>> {
        let rel = rel.as_ref();
        let (parent, name) = match self.parent_of(rel) {
            Ok(p) => p,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        match rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(io(rel, e)),
        }
    }

    /// Removes `rel` and, when it is a directory, everything in it, never following a link: a
    /// link is removed itself, not what it points at. Missing is fine. A link on the way to
    /// `rel` is refused ([`Error::Link`]): the thing named is not beneath this root.
    pub fn remove_all(&self, rel: impl AsRef<Path>) -> Result<()> {
        let rel = rel.as_ref();
        let (parent, name) = match self.parent_of(rel) {
            Ok(p) => p,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        remove_entry(parent.as_fd(), name, rel, 0)
    }

    /// Up to `max` entries of this directory, each as it is (never followed): its name, kind
    /// and modification time (seconds since the epoch). An entry gone since the listing is
    /// left out.
    pub fn list(&self, max: usize) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        for name in entries(self.fd.as_fd(), &self.path)?.into_iter().take(max) {
            match rustix::fs::statat(&self.fd, &name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => out.push(Entry {
                    kind: FileType::from_raw_mode(st.st_mode),
                    mtime: st.st_mtime,
                    name,
                }),
                Err(Errno::NOENT) => {}
                Err(e) => return Err(io(&self.path.join(&name), e)),
            }
        }
        Ok(out)
    }

    /// Gives this directory and everything beneath it to `uid:gid` (fchownat with
    /// AT_SYMLINK_NOFOLLOW through directory fds; links are left as they are and never
    /// descended, so swapping a folder for a link mid-walk changes nothing outside).
    pub fn chown_tree(&self, uid: u32, gid: u32) -> Result<()> {
        let st = rustix::fs::fstat(&self.fd).map_err(|e| io(&self.path, e))?;
        if st.st_uid != uid || st.st_gid != gid {
            rustix::fs::fchown(&self.fd, Some(owner(uid)), Some(group(gid)))
                .map_err(|e| io(&self.path, e))?;
        }
        chown_contents(self.fd.as_fd(), &self.path, uid, gid, 0)
    }
}

fn owner(uid: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(uid)
}

fn group(gid: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(gid)
}

fn check_regular(rel: &Path, st: &rustix::fs::Stat, cap: u64) -> Result<()> {
    let ft = FileType::from_raw_mode(st.st_mode);
    match ft {
        FileType::RegularFile => {}
        FileType::Symlink => {
            return Err(Error::Link {
                path: rel.to_path_buf(),
            })
        }
        other => {
            return Err(Error::NotRegular {
                path: rel.to_path_buf(),
                kind: kind_of(other),
            })
        }
    }
    if st.st_size as u64 > cap {
        return Err(Error::TooLarge {
            path: rel.to_path_buf(),
            cap,
        });
    }
    Ok(())
}

/// Names why opening `name` in `at` failed: a link (O_NOFOLLOW gives ELOOP, or ENOTDIR with
/// O_DIRECTORY) is [`Error::Link`].
fn classify(at: std::os::fd::BorrowedFd<'_>, name: &OsStr, path: &Path, e: Errno) -> Error {
    if matches!(e, Errno::LOOP | Errno::NOTDIR | Errno::XDEV) {
        if let Ok(st) = rustix::fs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW) {
            if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
                return Error::Link {
                    path: path.to_path_buf(),
                };
            }
        }
    }
    if e == Errno::LOOP {
        return Error::Link {
            path: path.to_path_buf(),
        };
    }
    io(path, e)
}

/// The names in a directory (read fully before anything is changed in it).
fn entries(dir: std::os::fd::BorrowedFd<'_>, path: &Path) -> Result<Vec<OsString>> {
    let d = rustix::fs::Dir::read_from(dir).map_err(|e| io(path, e))?;
    let mut out = Vec::new();
    for e in d {
        let e = e.map_err(|e| io(path, e))?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(out)
}

fn too_deep(path: &Path) -> Error {
    io(
        path,
        std::io::Error::other(format!("more than {MAX_DEPTH} levels of folders")),
    )
}

fn remove_entry(
    parent: std::os::fd::BorrowedFd<'_>,
    name: &OsStr,
    path: &Path,
    depth: usize,
) -> Result<()> {
    let st = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(io(path, e)),
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        if depth >= MAX_DEPTH {
            return Err(too_deep(path));
        }
        match rustix::fs::openat(parent, name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => {
                for n in entries(fd.as_fd(), path)? {
                    remove_entry(fd.as_fd(), &n, &path.join(&n), depth + 1)?;
                }
            }
            // Swapped for a link or a file since the stat: unlink that instead, below.
            Err(Errno::LOOP | Errno::NOTDIR) => {
                return match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
                    Ok(()) | Err(Errno::NOENT) => Ok(()),
                    Err(e) => Err(io(path, e)),
                };
            }
            Err(e) => return Err(io(path, e)),
        }
        match rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(io(path, e)),
        }
    } else {
        match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            // Swapped for a directory since the stat: go round again.
            Err(Errno::ISDIR) => remove_entry(parent, name, path, depth),
            Err(e) => Err(io(path, e)),
        }
    }
}

fn chown_contents(
    dir: std::os::fd::BorrowedFd<'_>,
    path: &Path,
    uid: u32,
    gid: u32,
    depth: usize,
) -> Result<()> {
    if depth >= MAX_DEPTH {
        return Err(too_deep(path));
    }
    for n in entries(dir, path)? {
        let p = path.join(&n);
        let st = match rustix::fs::statat(dir, &n, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(io(&p, e)),
        };
        let ft = FileType::from_raw_mode(st.st_mode);
        if ft == FileType::Symlink {
            continue; // never followed; the link itself stays as it is
        }
        if st.st_uid != uid || st.st_gid != gid {
            match rustix::fs::chownat(
                dir,
                &n,
                Some(owner(uid)),
                Some(group(gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            ) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(io(&p, e)),
            }
        }
        if ft == FileType::Directory {
            match rustix::fs::openat(dir, &n, DIR_FLAGS, Mode::empty()) {
                Ok(fd) => chown_contents(fd.as_fd(), &p, uid, gid, depth + 1)?,
                // Swapped for a link or a file since the stat: nothing to descend.
                Err(Errno::LOOP | Errno::NOTDIR | Errno::NOENT) => {}
                Err(e) => return Err(io(&p, e)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, Dir) {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("root/a/b")).unwrap();
        std::fs::write(t.path().join("root/a/b/f.txt"), "hello").unwrap();
        std::fs::write(t.path().join("secret"), "SECRET").unwrap();
        let d = Dir::open(t.path().join("root")).unwrap();
        (t, d)
    }

    /// Runs `f` with openat2 and with the walk (the fallback for kernels without openat2).
    fn both(f: impl Fn(&Dir, &Path)) {
        for walk in [false, true] {
            let (t, mut d) = setup();
            d.walk = walk;
            f(&d, t.path());
        }
    }

    #[test]
    fn reads_a_plain_file() {
        both(|d, _| {
            assert_eq!(d.read("a/b/f.txt", 100).unwrap(), b"hello");
            assert_eq!(d.read("./a//b/./f.txt", 100).unwrap(), b"hello");
        });
    }

    #[test]
    fn refuses_a_link_at_every_level() {
        both(|d, t| {
            // last component, to a file outside
            symlink(t.join("secret"), t.join("root/a/b/out")).unwrap();
            assert!(matches!(d.read("a/b/out", 100), Err(Error::Link { .. })));
            // last component, to a file inside
            symlink("f.txt", t.join("root/a/b/in")).unwrap();
            assert!(matches!(d.read("a/b/in", 100), Err(Error::Link { .. })));
            // middle component
            symlink(t.join("root/a/b"), t.join("root/a/lb")).unwrap();
            assert!(matches!(d.read("a/lb/f.txt", 100), Err(Error::Link { .. })));
            // first component
            symlink(t.join("root/a"), t.join("root/la")).unwrap();
            assert!(matches!(d.read("la/b/f.txt", 100), Err(Error::Link { .. })));
            assert!(matches!(d.open_dir("la"), Err(Error::Link { .. })));
            assert!(matches!(d.open_dir("la/b"), Err(Error::Link { .. })));
            // dangling
            symlink(t.join("nowhere"), t.join("root/dang")).unwrap();
            assert!(matches!(d.read("dang", 100), Err(Error::Link { .. })));
            assert!(matches!(
                d.write_file("dang", 0o644),
                Err(Error::Link { .. })
            ));
            assert!(!t.join("nowhere").exists());
            assert!(d.create_new("dang", 0o644).is_err());
            assert!(!t.join("nowhere").exists());
            assert!(matches!(
                d.create_dir_all("dang/x", 0o755),
                Err(Error::Link { .. })
            ));
            assert!(!t.join("nowhere").exists());
        });
    }

    #[test]
    fn refuses_dotdot_and_absolute() {
        both(|d, t| {
            assert!(matches!(
                d.read("../secret", 100),
                Err(Error::Escapes { .. })
            ));
            assert!(matches!(
                d.read("a/../../secret", 100),
                Err(Error::Escapes { .. })
            ));
            assert!(matches!(
                d.read("a/../a/b/f.txt", 100),
                Err(Error::Escapes { .. })
            ));
            let abs = t.join("secret");
            assert!(matches!(d.read(&abs, 100), Err(Error::Escapes { .. })));
            assert!(matches!(d.read("", 100), Err(Error::Escapes { .. })));
            assert!(matches!(d.remove_all(".."), Err(Error::Escapes { .. })));
        });
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        both(|d, t| {
            rustix::fs::mkfifoat(
                rustix::fs::CWD,
                t.join("root/fifo"),
                Mode::from_raw_mode(0o644),
            )
            .unwrap();
            assert!(matches!(
                d.read("fifo", 100),
                Err(Error::NotRegular { kind: "FIFO", .. })
            ));
            assert!(matches!(
                d.write_file("fifo", 0o644),
                Err(Error::NotRegular { .. })
            ));
            assert!(matches!(d.read("a", 100), Err(Error::NotRegular { .. })));
        });
    }

    #[test]
    fn a_link_to_dev_zero_is_refused() {
        both(|d, t| {
            symlink("/dev/zero", t.join("root/zero")).unwrap();
            assert!(matches!(d.read("zero", 100), Err(Error::Link { .. })));
        });
    }

    #[test]
    fn a_big_sparse_file_is_refused_before_reading() {
        both(|d, t| {
            let f = File::create(t.join("root/big")).unwrap();
            f.set_len(300 * 1024 * 1024).unwrap();
            assert!(matches!(d.read("big", 1024), Err(Error::TooLarge { .. })));
            assert!(matches!(
                d.open_file("big", 1024),
                Err(Error::TooLarge { .. })
            ));
        });
    }

    #[test]
    fn growth_after_open_is_caught_while_reading() {
        let (t, d) = setup();
        let o = d.open_file("a/b/f.txt", 10).unwrap();
        std::fs::write(t.path().join("root/a/b/f.txt"), "x".repeat(1000)).unwrap();
        assert!(matches!(
            o.read_capped(Path::new("f"), 10),
            Err(Error::TooLarge { .. })
        ));
        // Reading a stream that never ends stops at cap + 1.
        let r = read_capped(std::io::repeat(0), Path::new("zero"), 4096, 0);
        assert!(matches!(r, Err(Error::TooLarge { .. })));
    }

    #[test]
    fn a_dir_swapped_for_a_link_after_open_stays_the_old_dir() {
        both(|d, t| {
            let sub = d.open_dir("a/b").unwrap();
            std::fs::rename(t.join("root/a/b"), t.join("root/moved")).unwrap();
            symlink(t, t.join("root/a/b")).unwrap();
            // The handle still names the moved folder, never the link's target.
            assert_eq!(sub.read("f.txt", 100).unwrap(), b"hello");
            assert!(matches!(sub.read("secret", 100), Err(Error::Io { .. })));
            assert!(matches!(d.open_dir("a/b"), Err(Error::Link { .. })));
        });
    }

    #[test]
    fn create_new_is_exclusive() {
        both(|d, t| {
            use std::io::Write;
            let dir = d.create_dir_all("inbox/1", 0o755).unwrap();
            dir.create_new("x", 0o644)
                .unwrap()
                .write_all(b"one")
                .unwrap();
            let e = dir.create_new("x", 0o644).unwrap_err();
            assert!(
                matches!(&e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists)
            );
            symlink(t.join("secret"), t.join("root/inbox/1/y")).unwrap();
            assert!(dir.create_new("y", 0o644).is_err());
            assert_eq!(std::fs::read(t.join("secret")).unwrap(), b"SECRET");
        });
    }

    #[test]
    fn write_file_replaces_a_regular_file_only() {
        both(|d, t| {
            use std::io::Write;
            d.write_file("a/b/f.txt", 0o644)
                .unwrap()
                .write_all(b"new")
                .unwrap();
            assert_eq!(d.read("a/b/f.txt", 100).unwrap(), b"new");
            symlink(t.join("secret"), t.join("root/s")).unwrap();
            assert!(matches!(d.write_file("s", 0o644), Err(Error::Link { .. })));
            assert_eq!(std::fs::read(t.join("secret")).unwrap(), b"SECRET");
        });
    }

    #[test]
    fn remove_all_never_follows() {
        both(|d, t| {
            std::fs::create_dir_all(t.join("victim/deep")).unwrap();
            std::fs::write(t.join("victim/deep/keep"), "k").unwrap();
            // outbox is a link: refused, the target untouched
            symlink(t.join("victim"), t.join("root/outbox")).unwrap();
            assert!(matches!(
                d.remove_all("outbox/deep"),
                Err(Error::Link { .. })
            ));
            // the named thing itself is a link: the link goes, not its target
            std::fs::create_dir_all(t.join("root/box")).unwrap();
            symlink(t.join("victim"), t.join("root/box/id")).unwrap();
            d.remove_all("box/id").unwrap();
            assert!(!t.join("root/box/id").exists());
            // links inside a removed tree go themselves
            std::fs::create_dir_all(t.join("root/tree/sub")).unwrap();
            symlink(t.join("victim"), t.join("root/tree/sub/l")).unwrap();
            symlink(t.join("victim/deep/keep"), t.join("root/tree/f")).unwrap();
            d.remove_all("tree").unwrap();
            assert!(!t.join("root/tree").exists());
            assert!(t.join("victim/deep/keep").exists());
            // missing is fine
            d.remove_all("tree").unwrap();
            d.remove_all("nope/nope").unwrap();
        });
    }

    #[test]
    fn kind_does_not_follow() {
        both(|d, t| {
            symlink(t.join("secret"), t.join("root/l")).unwrap();
            assert_eq!(d.kind("l").unwrap(), Some(FileType::Symlink));
            assert_eq!(d.kind("a").unwrap(), Some(FileType::Directory));
            assert_eq!(d.kind("none").unwrap(), None);
            assert_eq!(d.kind("none/x").unwrap(), None);
        });
    }

    #[test]
    fn chown_tree_walks_without_following() {
        use std::os::unix::fs::MetadataExt;
        // As root (CI), to an unused id; unprivileged, to one's own ids (which still proves
        // the walk and that links are neither followed nor descended).
        let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
        both(|d, t| {
            symlink(t, t.join("root/a/up")).unwrap();
            symlink(t.join("secret"), t.join("root/a/s")).unwrap();
            let me = std::fs::metadata(t).unwrap();
            let (uid, gid) = if root {
                (4242, 4343)
            } else {
                (me.uid(), me.gid())
            };
            d.chown_tree(uid, gid).unwrap();
            for p in ["root", "root/a", "root/a/b", "root/a/b/f.txt"] {
                let m = std::fs::symlink_metadata(t.join(p)).unwrap();
                assert_eq!((m.uid(), m.gid()), (uid, gid), "{p}");
            }
            let s = std::fs::metadata(t.join("secret")).unwrap();
            assert_eq!((s.uid(), s.gid()), (me.uid(), me.gid()));
            assert_eq!(std::fs::metadata(t).unwrap().uid(), me.uid());
        });
    }
}
