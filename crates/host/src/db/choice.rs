//! Reading a closed-set text column (a mode or policy) that NanoClaw v2 may have written.
//!
//! v2's schema has no CHECK on these columns and its host or an older one of ours may have
//! stored a spelling we do not know. Such a value must not stop routing (every read of a
//! chat's wirings would fail), so it reads as the column's default, the value our code always
//! fell back to for it, and is warned about once per column and text. NULL reads as the
//! default too, silently, as v2's code assumes. A non-text value stays an error, as before.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use nanoclaw_protocol::status::UnknownValue;

/// Distinct unknown texts warned about before the rest are read quietly (a DB full of junk
/// must not grow the set without end).
const MAX_WARNED: usize = 64;

/// Column `i` of `r` as `T`; unknown text and NULL read as `T::default()`. `column` names it
/// in the warning (`messaging_group_agents.engage_mode`).
pub fn read<T>(r: &rusqlite::Row, i: usize, column: &'static str) -> rusqlite::Result<T>
where
    T: FromStr<Err = UnknownValue> + Default,
{
    Ok(match r.get::<_, Option<String>>(i)? {
        Some(text) => parse(&text, column),
        None => T::default(),
    })
}

/// `text` as `T`, or `T::default()` with a warning (once per column and text).
fn parse<T>(text: &str, column: &'static str) -> T
where
    T: FromStr<Err = UnknownValue> + Default,
{
    text.parse().unwrap_or_else(|e: UnknownValue| {
        if first_sight(column, text) {
            tracing::warn!(column, error = %e, "unknown value read as the column's default");
        }
        T::default()
    })
}

fn first_sight(column: &'static str, text: &str) -> bool {
    static WARNED: OnceLock<Mutex<HashSet<(&'static str, String)>>> = OnceLock::new();
    let mut seen = WARNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if seen.len() >= MAX_WARNED || seen.contains(&(column, text.to_string())) {
        return false;
    }
    seen.insert((column, text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nanoclaw_protocol::status::{EngageMode, UnknownSenderPolicy};

    fn read_one<T>(sql: &str) -> rusqlite::Result<T>
    where
        T: FromStr<Err = UnknownValue> + Default,
    {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.query_row(sql, [], |r| read(r, 0, "t.c"))
    }

    #[test]
    fn known_text_reads_as_itself_unknown_text_and_null_as_the_default() {
        assert_eq!(
            read_one::<EngageMode>("SELECT 'mention-sticky'").unwrap(),
            EngageMode::MentionSticky
        );
        assert_eq!(
            read_one::<EngageMode>("SELECT 'always'").unwrap(),
            EngageMode::Mention
        );
        assert_eq!(
            read_one::<UnknownSenderPolicy>("SELECT 'Public'").unwrap(),
            UnknownSenderPolicy::Strict,
            "spellings are exact"
        );
        assert_eq!(
            read_one::<EngageMode>("SELECT NULL").unwrap(),
            EngageMode::Mention
        );
        assert!(read_one::<EngageMode>("SELECT 7").is_err(), "not text");
    }

    #[test]
    fn each_unknown_text_is_warned_about_once() {
        assert!(first_sight("t.once", "x"));
        assert!(!first_sight("t.once", "x"));
        assert!(first_sight("t.once", "y"));
        assert!(first_sight("t.other", "x"));
    }
}
