//! Whole trees beneath a root: listing, removing and changing owners, never through a link.

use std::ffi::{OsStr, OsString};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode};
use rustix::io::Errno;

use super::{io, Dir, Entry, Error, Result, DIR_FLAGS, MAX_DEPTH};

impl Dir {
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
