//! The central DB's migrations and their ledger, `schema_version` (DESIGN §5).
//!
//! The DB is NanoClaw v2's, kept so that v2 can be pointed back at it: first v2's own
//! migrations, under v2's names and in v2's order, then ours beside them. The ledger is keyed by
//! name, as v2 keys it (its `version` is only the order applied), so an install made by v2 runs
//! only what it lacks, and a DB made by an earlier release of ours (whose first migration was
//! "initial") is carried into v2's shapes once. Each migration runs in its own transaction.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

type Step = fn(&Transaction) -> rusqlite::Result<()>;

enum Up {
    Sql(&'static str),
    Code(Step),
}

/// `(name, up)` in order. Never edit a released entry: add a new one.
const MIGRATIONS: &[(&str, Up)] = &[
    // NanoClaw v2.0.64's migrations.
    (
        "initial-v2-schema",
        Up::Sql(include_str!("sql/v2/01-initial-v2-schema.sql")),
    ),
    (
        "chat-sdk-state",
        Up::Sql(include_str!("sql/v2/02-chat-sdk-state.sql")),
    ),
    (
        "pending-approvals",
        Up::Sql(include_str!("sql/v2/03-pending-approvals.sql")),
    ),
    ("agent-destinations", Up::Code(agent_destinations)),
    (
        "pending-approvals-title-options",
        Up::Code(approvals_title_options),
    ),
    (
        "dropped-messages",
        Up::Sql(include_str!("sql/v2/08-dropped-messages.sql")),
    ),
    (
        "drop-pending-credentials",
        Up::Sql(include_str!("sql/v2/09-drop-pending-credentials.sql")),
    ),
    ("engage-modes", Up::Code(engage_modes)),
    (
        "pending-sender-approvals",
        Up::Sql(include_str!("sql/v2/11-pending-sender-approvals.sql")),
    ),
    ("channel-registration", Up::Code(channel_registration)),
    (
        "approval-render-metadata",
        Up::Sql(include_str!("sql/v2/13-approval-render-metadata.sql")),
    ),
    (
        "container-configs",
        Up::Sql(include_str!("sql/v2/14-container-configs.sql")),
    ),
    (
        "cli-scope",
        Up::Sql(include_str!("sql/v2/15-cli-scope.sql")),
    ),
    // Ours.
    (
        "delivery_intents_sticky_threads",
        Up::Sql(include_str!("sql/002_delivery_intents.sql")),
    ),
    (
        "channel_state",
        Up::Sql(include_str!("sql/003_channel_state.sql")),
    ),
    (
        "question_cards",
        Up::Sql(include_str!("sql/004_question_cards.sql")),
    ),
    (
        "question_owners",
        Up::Sql(include_str!("sql/005_question_owners.sql")),
    ),
    ("v2_beside", Up::Sql(include_str!("sql/006_v2_beside.sql"))),
    (
        "turn_bounds",
        Up::Sql(include_str!("sql/007_turn_bounds.sql")),
    ),
];

/// First migration of our releases before the DB became v2's.
const OLD_INITIAL: &str = "initial";
/// How many of [`MIGRATIONS`] are NanoClaw v2.0.64's (the first ones).
const V2_COUNT: usize = 13;

/// NanoClaw v2.0.64's migrations, by name, in v2's order.
pub fn v2_names() -> impl Iterator<Item = &'static str> {
    MIGRATIONS[..V2_COUNT].iter().map(|m| m.0)
}

/// Ledger entry of a DB that NanoClaw v2 made and we adopted.
const ADOPTED: &str = "adopted-from-nanoclaw-v2";

/// What the ledger said before this start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An empty DB.
    New,
    /// Made by NanoClaw v2 (its migrations, none of ours yet).
    NanoClawV2,
    /// Made by an earlier release of ours, before the DB was v2's.
    OldRust,
    /// Already ours.
    Current,
}

/// Applies every migration the DB has not seen; says where the DB came from.
pub fn run(conn: &mut Connection) -> Result<Origin, super::Error> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)",
    )?;
    let applied: Vec<String> = {
        let mut st = conn.prepare("SELECT name FROM schema_version")?;
        let rows = st.query_map([], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let has = |n: &str| applied.iter().any(|a| a == n);
    let origin = if applied.is_empty() {
        Origin::New
    } else if has(OLD_INITIAL) && !has("initial-v2-schema") {
        Origin::OldRust
    } else if has("initial-v2-schema") && !has("delivery_intents_sticky_threads") {
        Origin::NanoClawV2
    } else {
        Origin::Current
    };
    if origin == Origin::NanoClawV2 {
        // Remembered for `doctor`; v2 ignores names it does not know.
        let tx = conn.transaction()?;
        record(&tx, ADOPTED)?;
        tx.commit()?;
    }
    if origin == Origin::OldRust {
        let tx = conn.transaction()?;
        convert_old(&tx).map_err(super::Error::Conversion)?;
        // The conversion stands for v2's migrations and for ours that add to v2's tables.
        for name in v2_names().chain(["v2_beside"]) {
            record(&tx, name)?;
        }
        tx.commit()?;
    }
    // v2 keys its ledger by name; a DB of ours from before had no such index.
    conn.execute_batch(
        "CREATE UNIQUE INDEX IF NOT EXISTS idx_schema_version_name ON schema_version(name)",
    )?;
    for (name, up) in MIGRATIONS {
        let done: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM schema_version WHERE name = ?1)",
            [name],
            |r| r.get(0),
        )?;
        if done {
            continue;
        }
        let tx = conn.transaction()?;
        match up {
            Up::Sql(sql) => tx.execute_batch(sql),
            Up::Code(f) => f(&tx),
        }
        .map_err(|source| super::Error::Migration { name, source })?;
        record(&tx, name)?;
        tx.commit()?;
    }
    Ok(origin)
}

/// v2's migrations (and ours) that make what a DB of an earlier release of ours lacks or shaped
/// otherwise.
const OLD_LACKS: &[&str] = &[
    "chat-sdk-state",
    "dropped-messages",
    "pending-sender-approvals",
    "channel-registration",
    "approval-render-metadata",
    "container-configs",
    "cli-scope",
    "v2_beside",
];

/// Carries a DB of an earlier release of ours into v2's shapes: the tables shaped otherwise are
/// set aside, v2's own migrations make them (and what was missing), the rows come over.
fn convert_old(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(include_str!("sql/rs_to_v2_before.sql"))?;
    for (_, up) in MIGRATIONS.iter().filter(|(n, _)| OLD_LACKS.contains(n)) {
        match up {
            Up::Sql(sql) => tx.execute_batch(sql)?,
            Up::Code(f) => f(tx)?,
        }
    }
    tx.execute_batch(include_str!("sql/rs_to_v2_after.sql"))
}

/// Notes a migration as applied; like v2, `version` is the next in applied order.
fn record(tx: &Transaction, name: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO schema_version(version, name, applied)
         VALUES ((SELECT COALESCE(MAX(version), 0) + 1 FROM schema_version), ?1, ?2)",
        params![name, super::now()],
    )?;
    Ok(())
}

fn has_column(tx: &Transaction, table: &str, col: &str) -> rusqlite::Result<bool> {
    tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
        params![table, col],
        |r| r.get(0),
    )
}

/// v2 "agent-destinations": the table, and for each existing wiring a destination named after
/// its chat (lower-case, runs of other characters as '-', "-2", "-3" on clashes per agent).
fn agent_destinations(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(include_str!("sql/v2/04-agent-destinations.sql"))?;
    let rows: Vec<(String, String, String, Option<String>)> = {
        let mut st = tx.prepare(
            "SELECT w.agent_group_id, w.messaging_group_id, m.channel_type, m.name
             FROM messaging_group_agents w JOIN messaging_groups m ON m.id = w.messaging_group_id",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let now = super::now();
    let mut taken: std::collections::HashSet<(String, String)> = Default::default();
    for (ag, mg, channel_type, name) in rows {
        let raw = name.filter(|n| !n.is_empty()).unwrap_or_else(|| {
            format!("{channel_type}-{}", mg.chars().take(8).collect::<String>())
        });
        let base = destination_name(&raw);
        let mut local = base.clone();
        let mut n = 2;
        while !taken.insert((ag.clone(), local.clone())) {
            local = format!("{base}-{n}");
            n += 1;
        }
        tx.execute(
            "INSERT INTO agent_destinations(agent_group_id, local_name, target_type, target_id, created_at)
             VALUES (?1, ?2, 'channel', ?3, ?4)",
            params![ag, local, mg, now],
        )?;
    }
    Ok(())
}

/// A chat's name as a destination name, the way v2 makes one.
fn destination_name(raw: &str) -> String {
    let mut out = String::new();
    for ch in raw.to_lowercase().chars() {
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            out.push(ch);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-');
    if out.is_empty() {
        "unnamed".into()
    } else {
        out.into()
    }
}

/// v2 "pending-approvals-title-options": columns an early edit of "pending-approvals" lacked.
fn approvals_title_options(tx: &Transaction) -> rusqlite::Result<()> {
    for (col, sql) in [
        (
            "title",
            "ALTER TABLE pending_approvals ADD COLUMN title TEXT NOT NULL DEFAULT ''",
        ),
        (
            "options_json",
            "ALTER TABLE pending_approvals ADD COLUMN options_json TEXT NOT NULL DEFAULT '[]'",
        ),
    ] {
        if !has_column(tx, "pending_approvals", col)? {
            tx.execute_batch(sql)?;
        }
    }
    Ok(())
}

/// v2 "engage-modes": `trigger_rules` JSON + `response_scope` become four columns. A pattern
/// engages on it; no trigger required (or scope "all") engages on everything ('.'); otherwise
/// a mention. Scope "allowlisted" means known senders only.
fn engage_modes(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        "ALTER TABLE messaging_group_agents ADD COLUMN engage_mode TEXT;
         ALTER TABLE messaging_group_agents ADD COLUMN engage_pattern TEXT;
         ALTER TABLE messaging_group_agents ADD COLUMN sender_scope TEXT;
         ALTER TABLE messaging_group_agents ADD COLUMN ignored_message_policy TEXT;",
    )?;
    let rows: Vec<(String, Option<String>, Option<String>)> = {
        let mut st =
            tx.prepare("SELECT id, trigger_rules, response_scope FROM messaging_group_agents")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (id, rules, scope) in rows {
        let rules: serde_json::Value = rules
            .and_then(|r| serde_json::from_str(&r).ok())
            .unwrap_or_default();
        let pattern = rules["pattern"].as_str().filter(|p| !p.is_empty());
        let (mode, pat) = match pattern {
            Some(p) => ("pattern", Some(p.to_string())),
            None if rules["requiresTrigger"] == serde_json::json!(false)
                || scope.as_deref() == Some("all") =>
            {
                ("pattern", Some(".".to_string()))
            }
            None => ("mention", None),
        };
        let sender_scope = if scope.as_deref() == Some("allowlisted") {
            "known"
        } else {
            "all"
        };
        tx.execute(
            "UPDATE messaging_group_agents SET engage_mode = ?2, engage_pattern = ?3,
               sender_scope = ?4, ignored_message_policy = 'drop' WHERE id = ?1",
            params![id, mode, pat, sender_scope],
        )?;
    }
    tx.execute_batch(
        "ALTER TABLE messaging_group_agents DROP COLUMN trigger_rules;
         ALTER TABLE messaging_group_agents DROP COLUMN response_scope;",
    )
}

/// v2 "channel-registration": `messaging_groups.denied_at` (when missing) and the table.
fn channel_registration(tx: &Transaction) -> rusqlite::Result<()> {
    if !has_column(tx, "messaging_groups", "denied_at")? {
        tx.execute_batch("ALTER TABLE messaging_groups ADD COLUMN denied_at TEXT")?;
    }
    tx.execute_batch(include_str!("sql/v2/12-channel-registration.sql"))
}

/// When the central DB, made by NanoClaw v2, was adopted (None: not made by v2).
pub fn adopted_from_v2(c: &Connection) -> rusqlite::Result<Option<String>> {
    c.query_row(
        "SELECT applied FROM schema_version WHERE name = ?1",
        [ADOPTED],
        |r| r.get(0),
    )
    .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotent() {
        let mut c = Connection::open_in_memory().unwrap();
        assert_eq!(run(&mut c).unwrap(), Origin::New);
        assert_eq!(run(&mut c).unwrap(), Origin::Current);
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n as usize, MIGRATIONS.len());
    }

    #[test]
    fn v2_names_lead_the_list() {
        let names: Vec<&str> = v2_names().collect();
        assert_eq!(names.first(), Some(&"initial-v2-schema"));
        assert_eq!(names.last(), Some(&"cli-scope"));
        assert_eq!(MIGRATIONS[V2_COUNT].0, "delivery_intents_sticky_threads");
    }

    #[test]
    fn destination_names_as_v2_makes_them() {
        assert_eq!(destination_name("Family Chat!"), "family-chat");
        assert_eq!(destination_name("--"), "unnamed");
        assert_eq!(destination_name("télé 2"), "t-l-2");
    }
}
