//! Pairing: `nanoclaw pair <channel>` issues a one-time code; the first person who sends it to
//! the bot in a direct message becomes the owner, and that DM is wired to the main agent.

use rusqlite::Connection;

use crate::channels::InboundEvent;
use crate::db;

/// How long a code stays valid.
pub const VALID_MINUTES: i64 = 30;

/// Issues a fresh code for a channel (replacing an older one) and returns it.
pub fn issue(c: &Connection, channel: &str) -> anyhow::Result<String> {
    let n = nanoclaw_protocol::fnv1a(uuid::Uuid::new_v4().as_bytes()) % 1_000_000;
    let code = format!("{n:06}");
    let until =
        nanoclaw_protocol::time::fmt(chrono::Utc::now() + chrono::Duration::minutes(VALID_MINUTES));
    db::channel_state::set(c, channel, "pair_code", &format!("{code} {until}"))?;
    Ok(code)
}

/// If `ev` is a DM carrying the channel's valid code: makes the sender the owner, wires the DM
/// to the main agent, spends the code and returns true.
pub fn try_pair(c: &Connection, ev: &InboundEvent, mg: &str, user: &str) -> anyhow::Result<bool> {
    if ev.is_group {
        return Ok(false);
    }
    let Some(stored) = db::channel_state::get(c, &ev.channel_type, "pair_code")? else {
        return Ok(false);
    };
    let Some((code, until)) = stored.split_once(' ') else {
        return Ok(false);
    };
    if ev.text.trim() != code || until < nanoclaw_protocol::time::now().as_str() {
        return Ok(false);
    }
    db::atomic(c, |c| {
        let main = match db::agent_groups::by_folder(c, "main")? {
            Some(g) => g,
            None => db::agent_groups::create(c, "Main", "main")?,
        };
        db::users::grant(c, user, "owner", None, None)?;
        if db::wirings::for_messaging_group(c, mg)?
            .iter()
            .all(|w| w.agent_group_id != main.id)
        {
            let mut w = db::wirings::NewWiring::new(mg, &main.id);
            w.engage_mode = "pattern";
            w.engage_pattern = Some(".");
            db::wirings::create(c, &w)?;
        }
        c.execute(
            "INSERT OR REPLACE INTO user_dms(user_id, channel_type, messaging_group_id, resolved_at) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![user, ev.channel_type, mg, db::now()],
        )?;
        c.execute(
            "DELETE FROM channel_state WHERE channel_type=?1 AND key='pair_code'",
            [&ev.channel_type],
        )?;
        Ok(())
    })?;
    tracing::info!(user, chat = %ev.platform_id, "paired: new owner, DM wired to the main agent");
    Ok(true)
}
