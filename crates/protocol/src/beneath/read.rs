//! Reading a file beneath a root: regular files only, never blocking, always capped.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode};

use super::{classify, io, kind_of, Dir, Error, Result, READ_FLAGS};

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

impl Dir {
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
}

pub(super) fn check_regular(rel: &Path, st: &rustix::fs::Stat, cap: u64) -> Result<()> {
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
