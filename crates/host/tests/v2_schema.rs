//! The central DB is a superset of NanoClaw v2.0.64's: adopting a v2 install keeps every v2
//! table, column and row as v2 has them (a v2 host pointed back still works); a fresh DB of
//! ours has every v2 column too; a DB of an earlier release of ours is carried into v2's shapes.

use nanoclaw_host::db::{self, migrations::Origin};
use nanoclaw_testkit::v2;
use rusqlite::Connection;

#[test]
fn adopting_a_v2_install_keeps_every_table_column_and_row() {
    let dir = tempfile::tempdir().unwrap();
    v2::build(dir.path());
    let path = dir.path().join("data/v2.db");
    let cols = v2::columns(&path);
    let rows = v2::snapshot(&path);

    db::Db::open(&path).unwrap();
    v2::assert_columns_kept(&cols, &v2::columns(&path));
    let after = v2::snapshot(&path);
    for (table, before) in &rows {
        if table == "schema_version" {
            continue;
        }
        v2::assert_rows_kept(table, before, &after[table]);
    }
    // v2's ledger entries keep their versions; ours follow, by name.
    let ledger = &after["schema_version"];
    assert_eq!(
        &ledger[..rows["schema_version"].len()],
        rows["schema_version"].as_slice()
    );
    let names: Vec<&str> = ledger.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"delivery_intents_sticky_threads"),
        "{names:?}"
    );
    assert!(names.contains(&"adopted-from-nanoclaw-v2"), "{names:?}");
    let versions: Vec<i64> = ledger
        .iter()
        .map(|r| r["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, (1..=versions.len() as i64).collect::<Vec<_>>());

    // Opened again: nothing to do, and the DB says where it came from.
    let mut c = Connection::open(&path).unwrap();
    assert_eq!(db::migrations::run(&mut c).unwrap(), Origin::Current);
    assert!(db::migrations::adopted_from_v2(&c).unwrap().is_some());
}

#[test]
fn a_fresh_db_has_every_v2_column() {
    let dir = tempfile::tempdir().unwrap();
    v2::build(dir.path());
    let v2_cols = v2::columns(&dir.path().join("data/v2.db"));
    let ours = dir.path().join("fresh.db");
    db::Db::open(&ours).unwrap();
    v2::assert_columns_kept(&v2_cols, &v2::columns(&ours));
    let c = Connection::open(&ours).unwrap();
    assert!(db::migrations::adopted_from_v2(&c).unwrap().is_none());
    // The ledger a v2 host reads: its 13 names, so it would apply none again.
    let n: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM schema_version WHERE name IN ('initial-v2-schema', 'chat-sdk-state', 'pending-approvals', 'agent-destinations', 'pending-approvals-title-options', 'dropped-messages', 'drop-pending-credentials', 'engage-modes', 'pending-sender-approvals', 'channel-registration', 'approval-render-metadata', 'container-configs', 'cli-scope')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 13);
}

#[test]
fn an_older_v2_install_gets_v2s_own_later_migrations() {
    // A v2 install from before "engage-modes": wirings still carry trigger_rules and
    // response_scope, which v2's rule turns into the four engage columns.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    let c = Connection::open(&path).unwrap();
    c.execute_batch(include_str!("../src/db/sql/v2/01-initial-v2-schema.sql"))
        .unwrap();
    c.execute_batch(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL);
         INSERT INTO schema_version VALUES (1, 'initial-v2-schema', '2026-01-01T00:00:00.000Z');
         INSERT INTO agent_groups VALUES ('ag1', 'A', 'a', NULL, 't');
         INSERT INTO messaging_groups VALUES ('mg1', 'telegram', 'telegram:1', 'Family Chat!', 1, 'strict', 't');
         INSERT INTO messaging_groups VALUES ('mg2', 'telegram', 'telegram:2', NULL, 1, 'strict', 't');
         INSERT INTO messaging_groups VALUES ('mg3', 'telegram', 'telegram:3', 'x', 1, 'strict', 't');
         INSERT INTO messaging_group_agents(id, messaging_group_id, agent_group_id, trigger_rules, response_scope, created_at)
           VALUES ('w1', 'mg1', 'ag1', '{\"pattern\":\"^hey\"}', 'all', 't'),
                  ('w2', 'mg2', 'ag1', '{\"requiresTrigger\":true}', 'allowlisted', 't'),
                  ('w3', 'mg3', 'ag1', 'not json', 'triggered', 't');",
    )
    .unwrap();
    drop(c);
    db::Db::open(&path).unwrap();
    let c = Connection::open(&path).unwrap();
    let w: Vec<(String, String, Option<String>, String, String)> = c
        .prepare("SELECT id, engage_mode, engage_pattern, sender_scope, ignored_message_policy FROM messaging_group_agents ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        w,
        vec![
            (
                "w1".into(),
                "pattern".into(),
                Some("^hey".into()),
                "all".into(),
                "drop".into()
            ),
            (
                "w2".into(),
                "mention".into(),
                None,
                "known".into(),
                "drop".into()
            ),
            (
                "w3".into(),
                "mention".into(),
                None,
                "all".into(),
                "drop".into()
            ),
        ]
    );
    // agent-destinations is backfilled from the wirings, named after the chats.
    let names: Vec<String> = c
        .prepare("SELECT local_name FROM agent_destinations ORDER BY local_name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(names, vec!["family-chat", "telegram-mg2", "x"]);
}

#[test]
fn a_db_of_an_earlier_release_of_ours_is_carried_into_v2_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    let c = Connection::open(&path).unwrap();
    c.execute_batch(include_str!("../src/db/sql/testdata/rs_initial.sql"))
        .unwrap();
    for sql in [
        include_str!("../src/db/sql/002_delivery_intents.sql"),
        include_str!("../src/db/sql/003_channel_state.sql"),
        include_str!("../src/db/sql/004_question_cards.sql"),
        include_str!("../src/db/sql/005_question_owners.sql"),
    ] {
        c.execute_batch(sql).unwrap();
    }
    c.execute_batch(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL);
         INSERT INTO schema_version VALUES (1, 'initial', 't'), (2, 'delivery_intents_sticky_threads', 't'),
           (3, 'channel_state', 't'), (4, 'question_cards', 't'), (5, 'question_owners', 't');
         INSERT INTO agent_groups VALUES ('ag1', 'Main', 'main', NULL, 't');
         INSERT INTO messaging_groups VALUES ('mg1', 'telegram', 'telegram:5', NULL, 1, 'strict', 't');
         INSERT INTO unregistered_senders VALUES
           ('d1', 'telegram', 'telegram:5', 'telegram:1', 'A', 'unknown_sender', 'mg1', NULL, 2, '2026-01-01', '2026-01-02'),
           ('d2', 'telegram', 'telegram:5', 'telegram:2', 'B', 'sender_scope', 'mg1', 'ag1', 3, '2026-01-03', '2026-01-04'),
           ('d3', 'cli', 'local', '', NULL, 'unknown_chat', NULL, NULL, 1, '2026-01-01', '2026-01-01');
         INSERT INTO container_configs(agent_group_id, image, packages, mcp_servers, extra_mounts, limits, provider, model, cli_scope, updated_at)
           VALUES ('ag1', 'my-image:1', '{\"apt\":[\"jq\"],\"npm\":[\"lodash\"]}', '{\"x\":{\"command\":\"y\"}}',
                   '[{\"hostPath\":\"/tmp\"}]', '{\"network\":\"none\"}', 'anthropic', 'm', NULL, 't');
         INSERT INTO pending_sender_approvals(id, messaging_group_id, agent_group_id, sender_identity, original_message, created_at)
           VALUES ('p1', 'mg1', 'ag1', 'telegram:9', '{}', 't');",
    )
    .unwrap();
    drop(c);
    let mut c = Connection::open(&path).unwrap();
    assert_eq!(db::migrations::run(&mut c).unwrap(), Origin::OldRust);
    let dropped: Vec<(String, String, Option<String>, i64, String, String)> = c
        .prepare("SELECT platform_id, reason, user_id, message_count, first_seen, last_seen FROM unregistered_senders ORDER BY platform_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        dropped,
        vec![
            (
                "local".into(),
                "no_agent_wired".into(),
                None,
                1,
                "2026-01-01".into(),
                "2026-01-01".into()
            ),
            (
                "telegram:5".into(),
                "sender_scope_not_member".into(),
                Some("telegram:2".into()),
                5,
                "2026-01-01".into(),
                "2026-01-04".into()
            ),
        ]
    );
    let cc: (String, String, String, String, String, String, String, String) = c
        .query_row(
            "SELECT image_tag, packages_apt, packages_npm, additional_mounts, limits, provider, cli_scope, skills FROM container_configs",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)),
        )
        .unwrap();
    assert_eq!(
        cc,
        (
            "my-image:1".into(),
            "[\"jq\"]".into(),
            "[\"lodash\"]".into(),
            "[{\"hostPath\":\"/tmp\"}]".into(),
            "{\"network\":\"none\"}".into(),
            "anthropic".into(),
            "group".into(),
            "\"all\"".into()
        )
    );
    let approver: String = c
        .query_row(
            "SELECT approver_user_id FROM pending_sender_approvals",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(approver, "");
    drop(c);
    // Every v2 column is there now, and a second open has nothing to do.
    let v2_home = tempfile::tempdir().unwrap();
    v2::build(v2_home.path());
    let v2_cols = v2::columns(&v2_home.path().join("data/v2.db"));
    let now = v2::columns(&path);
    for table in [
        "unregistered_senders",
        "container_configs",
        "pending_sender_approvals",
        "pending_channel_approvals",
        "chat_sdk_kv",
    ] {
        v2::assert_columns_kept(
            &[(table.to_string(), v2_cols[table].clone())]
                .into_iter()
                .collect(),
            &now,
        );
    }
    let mut c = Connection::open(&path).unwrap();
    assert_eq!(db::migrations::run(&mut c).unwrap(), Origin::Current);
}
