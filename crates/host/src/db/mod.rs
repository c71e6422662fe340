//! The central DB (`data/v2.db`): one connection, owned by the host, split by entity.
//!
//! SQLite calls block, so async code reaches the connection through [`Db::call`], which runs
//! the closure on tokio's blocking pool. Sync code (the CLI without a host) uses [`Db::with`].

pub mod agent_groups;
pub mod channel_state;
pub mod choice;
pub mod container_configs;
pub mod destinations;
pub mod intents;
pub mod messaging_groups;
pub mod migrations;
pub mod sessions;
pub mod unregistered;
pub mod users;
pub mod wirings;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

/// Why the central DB could not be opened: the typed error of this seam (the closures given
/// to [`Db::call`] stay `anyhow`, they are the host's own code).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file or its folder could not be created or opened.
    #[error("cannot open the central DB {}: {source}", path.display())]
    Open {
        /// The DB file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// SQLite refused (a corrupt file, a locked one past the busy timeout…).
    #[error("central DB: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// One migration failed; the DB is as it was before that migration.
    #[error("migration {name} failed: {source}")]
    Migration {
        /// The migration's name in the ledger.
        name: &'static str,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// An earlier release's DB could not be carried into v2's shapes (nothing was changed).
    #[error("carrying the DB into NanoClaw v2's shapes failed: {0}")]
    Conversion(#[source] rusqlite::Error),
}

/// Shared handle to the central DB.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating if needed) and migrates the central DB.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let io = |source| Error::Open {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        // Created 0600 before SQLite sees it; its -wal and -shm files copy the DB's mode.
        {
            use std::os::unix::fs::OpenOptionsExt;
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(crate::perms::FILE_MODE)
                .open(path)
            {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        if migrations::run(&mut conn)? == migrations::Origin::NanoClawV2 {
            tracing::info!(db = %path.display(), "adopted a NanoClaw v2 central DB: its tables are kept as v2 has them, ours added beside");
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection from synchronous code.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Runs `f` on the connection from async code, off the async workers.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.with(f)).await?
    }
}

/// Runs `f` atomically inside a SAVEPOINT, so entity helpers compose inside an outer transaction.
pub fn atomic<T>(
    c: &Connection,
    f: impl FnOnce(&Connection) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    c.execute_batch("SAVEPOINT nc_atomic")?;
    match f(c) {
        Ok(v) => {
            c.execute_batch("RELEASE nc_atomic")?;
            Ok(v)
        }
        Err(e) => {
            let _ = c.execute_batch("ROLLBACK TO nc_atomic; RELEASE nc_atomic");
            Err(e)
        }
    }
}

/// A column NanoClaw v2's schema leaves nullable, read with the default v2's code assumes.
pub fn or<T: rusqlite::types::FromSql>(
    r: &rusqlite::Row,
    i: usize,
    default: T,
) -> rusqlite::Result<T> {
    Ok(r.get::<_, Option<T>>(i)?.unwrap_or(default))
}

/// Current time in the stored format.
pub fn now() -> String {
    nanoclaw_protocol::time::now()
}
