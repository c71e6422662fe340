//! A NanoClaw v2.0.64 install, built from the original's schema facts (`fixtures/v2.0.64/`)
//! with rows, session folders and files the way v2's code leaves them: the home a v2 user
//! points us at. [`snapshot`] records every row of a DB so a test can prove none was lost.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{params, Connection};
use serde_json::{Map, Value};

/// The main agent group (folder `main`, wired to the terminal and Alice's DM).
pub const MAIN: &str = "ag-1714000000000-main01";
/// The family agent group (folder `family`, wired to the Kitchen group).
pub const FAMILY: &str = "ag-1714000000000-fam002";
/// The terminal session of the main agent.
pub const CLI_SESSION: &str = "sess-1714000000000-cli001";
/// Alice's Telegram DM session of the main agent.
pub const DM_SESSION: &str = "sess-1714000000000-tgdm01";
/// The Kitchen group's session of the family agent.
pub const KITCHEN_SESSION: &str = "sess-1714000000000-tgkit1";
/// Alice's Telegram user (and DM chat) id; she is the owner.
pub const ALICE: i64 = 777;
/// The Claude Code conversation v2's runner was in, for the terminal session.
pub const CLI_CONTINUATION: &str = "c0ffee00-1111-2222-3333-444455556666";
/// The pending recurring task of the terminal session.
pub const TASK: &str = "task-1714000000000-plants";
/// `ASSISTANT_NAME` in `.env`.
pub const NAME: &str = "Nova";
/// `TZ` in `.env`.
pub const TZ: &str = "Europe/Paris";

/// Writes the install into `root`: `data/v2.db`, `data/v2-sessions/…`, `groups/…`, `.env`.
pub fn build(root: &Path) {
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let c = Connection::open(data.join("v2.db")).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.execute_batch(include_str!("../fixtures/v2.0.64/central.sql"))
        .unwrap();
    c.execute_batch(include_str!("../fixtures/v2.0.64/rows.sql"))
        .unwrap();
    drop(c);

    let t = "2026-05-05T18:00:00.000Z";
    session(
        root,
        MAIN,
        CLI_SESSION,
        ("cli", "local"),
        &[
            (
                "msg-1714000000000-c1",
                2,
                "chat",
                "completed",
                None,
                None,
                r#"{"text":"hello Nova","sender":"cli","senderId":"cli:local"}"#,
            ),
            (
                TASK,
                4,
                "task",
                "pending",
                Some("2027-01-01T08:00:00.000Z"),
                Some("0 9 * * *"),
                r#"{"prompt":"Remind me to water the plants","script":null}"#,
            ),
        ],
        &[(
            "out-1714000000000-c1",
            1,
            "msg-1714000000000-c1",
            r#"{"text":"Hi! I am Nova."}"#,
        )],
        Some(CLI_CONTINUATION),
        &[
            (
                "terminal",
                "Terminal",
                "channel",
                Some(("cli", "local")),
                None,
            ),
            (
                "alice",
                "Alice",
                "channel",
                Some(("telegram", "telegram:777")),
                None,
            ),
        ],
        t,
    );
    session(
        root,
        MAIN,
        DM_SESSION,
        ("telegram", "telegram:777"),
        &[(
            "msg-1714000000000-t1",
            2,
            "chat",
            "completed",
            None,
            None,
            r#"{"text":"good morning","sender":"Alice","senderId":"telegram:777"}"#,
        )],
        &[(
            "out-1714000000000-t1",
            1,
            "msg-1714000000000-t1",
            r#"{"text":"Good morning, Alice!"}"#,
        )],
        Some("d00dfeed-0000-4000-8000-000000000001"),
        &[(
            "alice",
            "Alice",
            "channel",
            Some(("telegram", "telegram:777")),
            None,
        )],
        t,
    );
    session(
        root,
        FAMILY,
        KITCHEN_SESSION,
        ("telegram", "telegram:-100123"),
        &[(
            "msg-1714000000000-k1",
            2,
            "chat",
            "completed",
            None,
            None,
            r#"{"text":"@nova_bot what's for dinner?","sender":"Bob","senderId":"telegram:888"}"#,
        )],
        &[(
            "out-1714000000000-k1",
            1,
            "msg-1714000000000-k1",
            r#"{"text":"Pasta!"}"#,
        )],
        None,
        &[
            (
                "kitchen",
                "Kitchen",
                "channel",
                Some(("telegram", "telegram:-100123")),
                None,
            ),
            ("parent", "Nova", "agent", None, Some(MAIN)),
        ],
        t,
    );

    for (folder, local) in [
        ("main", "You love puns and sign off with a wave."),
        ("family", ""),
    ] {
        let dir = root.join("groups").join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("CLAUDE.local.md"), local).unwrap();
        // v2 composes CLAUDE.md at every spawn; what a v2 host last wrote is left behind.
        std::fs::write(
            dir.join("CLAUDE.md"),
            "<!-- Composed at spawn — do not edit. Edit CLAUDE.local.md for per-group content. -->\n",
        )
        .unwrap();
    }
    std::fs::create_dir_all(root.join("groups/global")).unwrap();
    std::fs::write(root.join("groups/global/CLAUDE.md"), "Be kind.\n").unwrap();
    std::fs::write(
        root.join(".env"),
        format!(
            "ASSISTANT_NAME={NAME}\nTZ={TZ}\nANTHROPIC_API_KEY=sk-ant-fixture-not-a-real-key\n"
        ),
    )
    .unwrap();
}

type InRow<'a> = (
    &'a str,
    i64,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
);
type OutRow<'a> = (&'a str, i64, &'a str, &'a str);
type Dest<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Option<(&'a str, &'a str)>,
    Option<&'a str>,
);

#[allow(clippy::too_many_arguments)]
fn session(
    root: &Path,
    ag: &str,
    id: &str,
    route: (&str, &str),
    inbound: &[InRow],
    outbound: &[OutRow],
    continuation: Option<&str>,
    dests: &[Dest],
    t: &str,
) {
    let dir = root.join("data/v2-sessions").join(ag).join(id);
    std::fs::create_dir_all(dir.join("outbox")).unwrap();
    std::fs::create_dir_all(dir.join("inbox")).unwrap();
    let i = Connection::open(dir.join("inbound.db")).unwrap();
    i.pragma_update(None, "journal_mode", "DELETE").unwrap();
    i.execute_batch(crate::v2_session::INBOUND_DDL).unwrap();
    for (mid, seq, kind, status, after, rec, content) in inbound {
        i.execute(
            "INSERT INTO messages_in (id, seq, kind, timestamp, status, platform_id, channel_type, thread_id, content, process_after, recurrence, series_id, trigger, source_session_id, on_wake)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8, ?9, ?10, ?1, 1, NULL, 0)",
            params![mid, seq, kind, t, status, route.1, route.0, content, after, rec],
        )
        .unwrap();
    }
    for (oid, ..) in outbound {
        i.execute(
            "INSERT INTO delivered VALUES (?1, NULL, 'delivered', ?2)",
            params![oid, t],
        )
        .unwrap();
    }
    for (name, display, ty, chan, agent) in dests {
        i.execute(
            "INSERT INTO destinations VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                name,
                display,
                ty,
                chan.map(|c| c.0),
                chan.map(|c| c.1),
                agent
            ],
        )
        .unwrap();
    }
    i.execute(
        "INSERT INTO session_routing VALUES (1, ?1, ?2, NULL)",
        params![route.0, route.1],
    )
    .unwrap();
    let o = Connection::open(dir.join("outbound.db")).unwrap();
    o.pragma_update(None, "journal_mode", "DELETE").unwrap();
    o.execute_batch(crate::v2_session::OUTBOUND_DDL).unwrap();
    for (oid, seq, reply_to, content) in outbound {
        o.execute(
            "INSERT INTO messages_out (id, seq, in_reply_to, timestamp, deliver_after, recurrence, kind, platform_id, channel_type, thread_id, content)
             VALUES (?1, ?2, ?3, ?4, NULL, NULL, 'chat', ?5, ?6, NULL, ?7)",
            params![oid, seq, reply_to, t, route.1, route.0, content],
        )
        .unwrap();
    }
    for (mid, _, _, status, ..) in inbound {
        if *status == "completed" {
            o.execute(
                "INSERT INTO processing_ack VALUES (?1, 'completed', ?2)",
                params![mid, t],
            )
            .unwrap();
        }
    }
    if let Some(c) = continuation {
        o.execute(
            "INSERT INTO session_state VALUES ('continuation:claude', ?1, ?2)",
            params![c, t],
        )
        .unwrap();
    }
}

/// Every row of every table of a DB, by table, in rowid order, as JSON objects.
pub fn snapshot(db: &Path) -> BTreeMap<String, Vec<Value>> {
    let c = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = BTreeMap::new();
    for t in tables {
        let mut st = c.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let cols: Vec<String> = st.column_names().map(|s| s.to_string()).collect();
        let rows: Vec<Value> = st
            .query_map([], |r| {
                let mut m = Map::new();
                for (i, col) in cols.iter().enumerate() {
                    let v = match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => Value::Null,
                        rusqlite::types::ValueRef::Integer(n) => n.into(),
                        rusqlite::types::ValueRef::Real(f) => f.into(),
                        rusqlite::types::ValueRef::Text(s) => String::from_utf8_lossy(s).into(),
                        rusqlite::types::ValueRef::Blob(b) => format!("<{} bytes>", b.len()).into(),
                    };
                    m.insert(col.clone(), v);
                }
                Ok(Value::Object(m))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        out.insert(t, rows);
    }
    out
}

/// One column: name, type, not-null, default, primary-key position.
pub type Column = (String, String, bool, Option<String>, i64);

/// Columns of each table, in order.
pub type Columns = BTreeMap<String, Vec<Column>>;

/// The columns of every table of a DB.
pub fn columns(db: &Path) -> Columns {
    let c = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut st = c
        .prepare(
            "SELECT m.name, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk
             FROM sqlite_master m, pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid",
        )
        .unwrap();
    let mut out = Columns::new();
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
            ))
        })
        .unwrap();
    for row in rows {
        let (t, col) = row.unwrap();
        out.entry(t).or_default().push(col);
    }
    out
}

/// Every row of `before` is in `after` with the same values in its columns (columns added
/// beside v2's may hold anything; rows may be added after).
pub fn assert_rows_kept(table: &str, before: &[Value], after: &[Value]) {
    assert!(
        after.len() >= before.len(),
        "rows of {table} were lost: {} before, {} now",
        before.len(),
        after.len()
    );
    for (b, a) in before.iter().zip(after) {
        for (k, v) in b.as_object().unwrap() {
            assert_eq!(&a[k], v, "{table}.{k} changed in row {b}");
        }
    }
}

/// Every table and column of `before` is in `after`, identical and in the same order (columns
/// of ours may follow v2's). The ledger is left out: ours follow v2's entries there.
pub fn assert_columns_kept(before: &Columns, after: &Columns) {
    for (table, cols) in before {
        if table == "schema_version" {
            continue;
        }
        let now = after
            .get(table)
            .unwrap_or_else(|| panic!("v2 table {table} is gone"));
        assert!(
            now.len() >= cols.len() && &now[..cols.len()] == cols.as_slice(),
            "v2 table {table} changed:\n v2:  {cols:?}\n now: {now:?}"
        );
    }
}
