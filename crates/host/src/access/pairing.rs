//! Pairing: `nanoclaw pair <channel>` issues a one-time code; the first person who sends it to
//! the bot in a direct message becomes the owner, and that DM is wired to the main agent.
//!
//! The code grants owner rights, so it is built to resist guessing (DESIGN §11.3): 12
//! characters from an alphabet without look-alikes (31 symbols, ~59 bits), shown in groups of
//! four (`K7QM-3XPA-9RTW`; case, spaces and dashes do not matter when typed), and every
//! code-shaped DM while a code is out counts as a try: after `MAX_TRIES_PER_SENDER` wrong ones a
//! sender is locked out for the life of the code (even the right code no longer pairs it), and
//! after `MAX_TRIES_PER_CODE` wrong ones from anyone the code itself is burned. Both leave an
//! audit line; a new `nanoclaw pair` starts over.

use rusqlite::Connection;
use serde_json::{json, Value};

use crate::channels::InboundEvent;
use crate::db;

/// How long a code stays valid.
pub const VALID_MINUTES: i64 = 30;
/// Symbols of a code: no 0/O, 1/I/L.
pub const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Symbols in a code.
pub const CODE_LEN: usize = 12;
/// Wrong tries one sender gets per code.
pub const MAX_TRIES_PER_SENDER: u64 = 5;
/// Wrong tries a code survives, from all senders together.
pub const MAX_TRIES_PER_CODE: u64 = 10;

const KEY_CODE: &str = "pair_code";
const KEY_TRIES: &str = "pair_tries";

/// A fresh code: unbiased picks from the OS's randomness (uuid v4 draws from getrandom).
fn fresh_code() -> String {
    let mut code = String::with_capacity(CODE_LEN);
    while code.len() < CODE_LEN {
        let u = uuid::Uuid::new_v4();
        for (i, b) in u.as_bytes().iter().enumerate() {
            // Bytes 6 and 8 carry the uuid's version and variant bits; 248 = 8 × 31 keeps the
            // modulo unbiased.
            if i == 6 || i == 8 || *b >= 248 || code.len() == CODE_LEN {
                continue;
            }
            code.push(ALPHABET[(*b % 31) as usize] as char);
        }
    }
    code
}

/// How a code is shown: `XXXX-XXXX-XXXX`.
pub fn display(code: &str) -> String {
    code.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// What someone typed, as a code (upper case, without spaces and dashes), when it has a
/// code's shape; None for any other text (which cannot pair and is no try).
pub fn normalize(text: &str) -> Option<String> {
    let t: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (t.len() == CODE_LEN && t.bytes().all(|b| ALPHABET.contains(&b))).then_some(t)
}

/// Compares without an early exit, so the time taken says nothing about the code.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Issues a fresh code for a channel (replacing an older one and its tries) and returns it as
/// shown to the person.
pub fn issue(c: &Connection, channel: &str) -> anyhow::Result<String> {
    let code = fresh_code();
    let until =
        nanoclaw_protocol::time::fmt(chrono::Utc::now() + chrono::Duration::minutes(VALID_MINUTES));
    db::atomic(c, |c| {
        db::channel_state::set(c, channel, KEY_CODE, &format!("{code} {until}"))?;
        c.execute(
            "DELETE FROM channel_state WHERE channel_type=?1 AND key=?2",
            [channel, KEY_TRIES],
        )?;
        Ok(())
    })?;
    Ok(display(&code))
}

/// If `ev` is a DM carrying the channel's valid code: makes the sender the owner, wires the DM
/// to the main agent, spends the code and returns true. A wrong code-shaped text counts
/// against the sender and the code (see the module docs); the caller routes it on as usual.
pub fn try_pair(c: &Connection, ev: &InboundEvent, mg: &str, user: &str) -> anyhow::Result<bool> {
    if ev.is_group {
        return Ok(false);
    }
    let Some(typed) = normalize(&ev.text) else {
        return Ok(false);
    };
    let Some(stored) = db::channel_state::get(c, &ev.channel_type, KEY_CODE)? else {
        return Ok(false);
    };
    let Some((code, until)) = stored.split_once(' ') else {
        return Ok(false);
    };
    if until < nanoclaw_protocol::time::now().as_str() {
        return Ok(false);
    }
    let mut tries: Value = db::channel_state::get(c, &ev.channel_type, KEY_TRIES)?
        .and_then(|t| serde_json::from_str(&t).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"total": 0, "senders": {}}));
    let mine = tries["senders"][user].as_u64().unwrap_or(0);
    if mine >= MAX_TRIES_PER_SENDER {
        tracing::warn!(user, chat = %ev.platform_id, "pairing refused: sender locked out after too many wrong codes");
        return Ok(false);
    }
    if !same(&typed, code) {
        let total = tries["total"].as_u64().unwrap_or(0) + 1;
        tries["total"] = json!(total);
        tries["senders"][user] = json!(mine + 1);
        db::atomic(c, |c| {
            if total >= MAX_TRIES_PER_CODE {
                c.execute(
                    "DELETE FROM channel_state WHERE channel_type=?1 AND key IN (?2, ?3)",
                    [ev.channel_type.as_str(), KEY_CODE, KEY_TRIES],
                )?;
            } else {
                db::channel_state::set(c, &ev.channel_type, KEY_TRIES, &tries.to_string())?;
            }
            Ok(())
        })?;
        tracing::warn!(user, chat = %ev.platform_id, tries = mine + 1, "pairing refused: wrong code");
        if mine + 1 >= MAX_TRIES_PER_SENDER {
            tracing::warn!(user, chat = %ev.platform_id, "pairing locked out: sender made too many wrong tries");
        }
        if total >= MAX_TRIES_PER_CODE {
            tracing::warn!(channel = %ev.channel_type, "pairing code burned after too many wrong tries; issue a new one with `nanoclaw pair`");
        }
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
            let w = db::wirings::NewWiring::every_message(mg, &main.id);
            db::wirings::create(c, &w)?;
        }
        c.execute(
            "INSERT OR REPLACE INTO user_dms(user_id, channel_type, messaging_group_id, resolved_at) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![user, ev.channel_type, mg, db::now()],
        )?;
        c.execute(
            "DELETE FROM channel_state WHERE channel_type=?1 AND key IN (?2, ?3)",
            [ev.channel_type.as_str(), KEY_CODE, KEY_TRIES],
        )?;
        Ok(())
    })?;
    tracing::info!(user, chat = %ev.platform_id, "paired: new owner, DM wired to the main agent");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dm(user: &str, text: &str) -> InboundEvent {
        InboundEvent {
            channel_type: "telegram".into(),
            platform_id: format!("telegram:{user}"),
            sender_handle: user.into(),
            sender_name: user.into(),
            text: text.into(),
            is_group: false,
            ..Default::default()
        }
    }

    fn db() -> rusqlite::Connection {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        crate::db::migrations::run(&mut c).unwrap();
        c
    }

    fn pair(c: &Connection, user: &str, text: &str) -> bool {
        let ev = dm(user, text);
        let (mg, _) =
            db::messaging_groups::find_or_create(c, "telegram", &ev.platform_id, None, false)
                .unwrap();
        let uid = format!("telegram:{user}");
        db::users::ensure(c, &uid, "telegram", None).unwrap();
        try_pair(c, &ev, &mg.id, &uid).unwrap()
    }

    fn wrong(code: &str) -> String {
        let mut w = code.replace('-', "");
        let last = if w.ends_with('2') { "3" } else { "2" };
        w.replace_range(CODE_LEN - 1.., last);
        w
    }

    #[test]
    fn codes_are_long_unambiguous_and_typed_loosely() {
        let c = db();
        let code = issue(&c, "telegram").unwrap();
        assert_eq!(code.len(), CODE_LEN + 2, "{code}");
        let bare = code.replace('-', "");
        assert!(bare.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
        assert_ne!(
            issue(&c, "telegram").unwrap(),
            issue(&c, "telegram").unwrap()
        );
        assert_eq!(
            normalize(&format!(" {} ", code.to_lowercase())),
            Some(bare.clone())
        );
        assert_eq!(normalize("123456"), None, "the old six digits are no code");
        let code = issue(&c, "telegram").unwrap();
        assert!(pair(&c, "7", &code.to_lowercase().replace('-', " ")));
    }

    #[test]
    fn a_sender_is_locked_out_after_a_handful_of_wrong_tries() {
        let c = db();
        let code = issue(&c, "telegram").unwrap();
        for _ in 0..MAX_TRIES_PER_SENDER {
            assert!(!pair(&c, "66", &wrong(&code)));
        }
        assert!(!pair(&c, "66", &code), "the right code after a lockout");
        // Others still can; the lockout is the sender's.
        assert!(pair(&c, "77", &code));
        let owner: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM user_roles WHERE user_id='telegram:66'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(owner, 0);
    }

    #[test]
    fn a_code_is_burned_after_wrong_tries_from_many_senders() {
        let c = db();
        let code = issue(&c, "telegram").unwrap();
        for i in 0..MAX_TRIES_PER_CODE {
            assert!(!pair(&c, &format!("{}", 100 + i), &wrong(&code)));
        }
        assert!(!pair(&c, "77", &code), "a burned code pairs nobody");
        // A new code starts over.
        let code = issue(&c, "telegram").unwrap();
        assert!(pair(&c, "77", &code));
    }
}
