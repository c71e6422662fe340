//! The session protocol: the only code the NanoClaw host and the agent-runner share.
//!
//! Host and runner talk exclusively through two SQLite files per session (DESIGN §4):
//! `inbound.db` (host writes, runner reads) and `outbound.db` (runner writes, host reads).
//! This crate owns their schemas, the folder layout, seq parity and the typed content, and
//! every other contract the two sides must agree on: the runner's environment (`env`), the
//! provider table (`providers`), package-name rules (`packages`), the reading of `TZ`
//! (`time::parse_tz`) and the values of status, mode and policy columns, typed, with their
//! on-disk spellings shared with NanoClaw v2 (`status`).

pub mod beneath;
pub mod content;
pub mod env;
pub mod names;
pub mod packages;
pub mod paths;
pub mod providers;
pub mod schema;
pub mod seq;
pub mod status;
pub mod time;
pub mod vfs;

pub use paths::{Home, SessionPaths};

/// Errors of the protocol layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file operation failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Content JSON did not parse or did not match its kind.
    #[error("bad content: {0}")]
    Content(String),
    /// A session file is a link, FIFO, socket or device where a regular file belongs.
    #[error("session file refused: {0} is not a regular file")]
    NotRegular(std::path::PathBuf),
    /// A name or path from outside failed validation.
    #[error("invalid name: {0}")]
    InvalidName(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// FNV-1a of some bytes: a stable (across builds and platforms) short hash for derived names.
pub fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Short unique id with a readable prefix (`msg-…`, `sess-…`).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}
