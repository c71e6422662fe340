//! `channel_state`: small values a channel adapter keeps across restarts.

use rusqlite::{params, Connection, OptionalExtension};

/// Reads a value.
pub fn get(c: &Connection, channel: &str, key: &str) -> rusqlite::Result<Option<String>> {
    c.query_row(
        "SELECT value FROM channel_state WHERE channel_type=?1 AND key=?2",
        [channel, key],
        |r| r.get(0),
    )
    .optional()
}

/// Writes a value.
pub fn set(c: &Connection, channel: &str, key: &str, value: &str) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO channel_state(channel_type, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(channel_type, key) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at",
        params![channel, key, value, super::now()],
    )?;
    Ok(())
}
