//! `delivery_intents`: a send in flight, recorded before the platform call and removed after the
//! `delivered` write, so a crash in between is reconciled at start instead of re-sent blindly.

use rusqlite::{params, Connection};

/// Records that a send is about to happen; true when an earlier attempt's intent was still
/// there (its outcome is unknown).
pub fn begin(
    c: &Connection,
    session: &str,
    out_id: &str,
    channel_type: &str,
) -> rusqlite::Result<bool> {
    let added = c
        .prepare_cached(
            "INSERT OR IGNORE INTO delivery_intents(session_id, message_out_id, channel_type, started_at)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![session, out_id, channel_type, super::now()])?;
    Ok(added == 0)
}

/// Forgets a finished send.
pub fn end(c: &Connection, session: &str, out_id: &str) -> rusqlite::Result<()> {
    c.prepare_cached("DELETE FROM delivery_intents WHERE session_id=?1 AND message_out_id=?2")?
        .execute(params![session, out_id])?;
    Ok(())
}

/// Sends that were in flight when the host last stopped: `(session_id, message_out_id, channel_type)`.
pub fn all(c: &Connection) -> rusqlite::Result<Vec<(String, String, String)>> {
    let mut st =
        c.prepare("SELECT session_id, message_out_id, channel_type FROM delivery_intents")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}
