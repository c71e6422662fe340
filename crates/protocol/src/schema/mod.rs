//! Session DB schemas (DESIGN §4), opening rules and lazy upgrade of older session folders.
//!
//! Both files use `journal_mode=DELETE`: WAL's shared-memory index does not work across the
//! bind mount between host and container, a rollback journal does.
//!
//! - `tables`: the columns of every table, as declared (and added) by protocol versions.
//! - `upgrade`: creating tables and adding what a newer version introduced, in place.
//! - `open`: how each side opens, attaches and recovers the two files.
//! - `counter`: the change counter, the cheap "did this DB change" check.

mod counter;
mod open;
mod tables;
mod upgrade;

use std::time::Duration;

use rusqlite::Connection;

use crate::Result;

pub use counter::{change_counter, ChangeCounter};
pub use open::{
    attach_outbound, attach_ro, check_regular, open_inbound_rw, open_inbound_write,
    open_outbound_rw, open_ro, open_rw, provision_outbound, recover_journal,
};
pub use upgrade::ensure_inbound;

/// How long a connection waits on the other side's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(())
}
