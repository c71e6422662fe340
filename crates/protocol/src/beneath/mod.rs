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

mod dir;
mod read;
mod tree;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::AtomicBool;

pub use rustix::fs::FileType;
use rustix::fs::{AtFlags, OFlags};
use rustix::io::Errno;

pub use dir::{Dir, Entry};
pub use read::{read_capped, Opened};

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

#[cfg(test)]
mod tests;
