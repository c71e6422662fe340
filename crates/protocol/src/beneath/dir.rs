//! [`Dir`]: an open directory, and lookups and creations beneath it.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::read::check_regular;
use super::{classify, components, io, Error, Result, DIR_FLAGS, NO_OPENAT2};

/// An open directory: the root of lookups beneath it.
#[derive(Debug)]
pub struct Dir {
    pub(super) fd: OwnedFd,
    /// Where it is, for messages and for callers that need the path (never re-resolved here).
    pub(super) path: PathBuf,
    /// Resolve with the openat(O_NOFOLLOW) walk only (tests of the fallback set it).
    pub(super) walk: bool,
}

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

    pub(super) fn child(&self, fd: OwnedFd, rel: &Path) -> Dir {
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

    pub(super) fn resolve_dir(&self, rel: &Path, comps: &[&OsStr]) -> Result<OwnedFd> {
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
    pub(super) fn parent_of<'a>(&self, rel: &'a Path) -> Result<(OwnedFd, &'a OsStr)> {
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
}
