//! Moving in from NanoClaw v2: a v2.0.64 install (testkit's fixture, made from the original's
//! schema facts) served by the real `nanoclaw` binaries, unchanged. Every ctl list shows every
//! v2 row; the terminal and a Telegram DM continue their v2 sessions (seq parity, history, the
//! Claude conversation); the pending recurring task is untouched; the reply uses the assistant
//! name and timezone from `.env`; no v2 row or column is lost.

use std::path::PathBuf;

use nanoclaw_testkit::fake_telegram::FakeTelegram;
use nanoclaw_testkit::{bin, v2, TestHome};
use rusqlite::Connection;
use serde_json::Value;

const TOKEN: &str = "123456:TEST-token";

fn session_dir(home: &TestHome, ag: &str, id: &str) -> PathBuf {
    home.path().join("data/v2-sessions").join(ag).join(id)
}

fn ctl_list(home: &TestHome, res: &str) -> Vec<Value> {
    let out = home.ctl(&[res, "list", "--json"]);
    serde_json::from_str::<Value>(&out)
        .unwrap_or_else(|e| panic!("ctl {res} list: {e}: {out}"))
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_v2_install_is_served_unchanged() {
    let fake = FakeTelegram::start(TOKEN);
    let home = TestHome::new()
        .telegram(&fake)
        .env("NANOCLAW_CLAUDE_BIN", bin("fake-claude").to_str().unwrap());
    v2::build(home.path());
    let central = home.path().join("data/v2.db");
    let before = v2::snapshot(&central);
    let before_cols = v2::columns(&central);
    let sessions = [
        (v2::MAIN, v2::CLI_SESSION),
        (v2::MAIN, v2::DM_SESSION),
        (v2::FAMILY, v2::KITCHEN_SESSION),
    ];
    let session_before: Vec<_> = sessions
        .iter()
        .map(|(ag, id)| {
            let d = session_dir(&home, ag, id);
            (
                v2::snapshot(&d.join("inbound.db")),
                v2::snapshot(&d.join("outbound.db")),
            )
        })
        .collect();

    // doctor recognises the install before anything touched it.
    let o = home.run(&["doctor"]);
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(
        report.contains("NanoClaw v2 install recognised (13 v2 migrations)"),
        "{report}"
    );
    assert!(
        report.contains("3 agent group(s)")
            || report.contains("2 agent group(s), 3 active session(s), each with its folder"),
        "{report}"
    );
    assert!(
        report.contains("image_tag"),
        "what is not carried over is named: {report}"
    );

    // Every list shows every v2 row.
    for (res, table) in [
        ("groups", "agent_groups"),
        ("messaging-groups", "messaging_groups"),
        ("wirings", "messaging_group_agents"),
        ("users", "users"),
        ("roles", "user_roles"),
        ("members", "agent_group_members"),
        ("user-dms", "user_dms"),
        ("sessions", "sessions"),
        ("destinations", "agent_destinations"),
        ("approvals", "pending_approvals"),
        ("dropped-messages", "unregistered_senders"),
        ("sender-approvals", "pending_sender_approvals"),
        ("channel-approvals", "pending_channel_approvals"),
        ("container-configs", "container_configs"),
    ] {
        let listed = ctl_list(&home, res);
        assert_eq!(
            listed.len(),
            before[table].len(),
            "ctl {res} list: {listed:?}"
        );
        for row in &before[table] {
            let found = listed.iter().any(|l| {
                row.as_object()
                    .unwrap()
                    .iter()
                    .all(|(k, v)| match (&l[k], v) {
                        (Value::Null, _) => true, // a column the resource does not show
                        (Value::String(a), Value::String(b)) => {
                            a == b
                                || serde_json::from_str::<Value>(b).ok()
                                    == Some(Value::String(a.clone()))
                        }
                        (Value::Bool(a), Value::Number(b)) => *a == (b.as_i64() != Some(0)),
                        (a, Value::String(b)) => {
                            serde_json::from_str::<Value>(b).ok().as_ref() == Some(a)
                        }
                        (a, b) => a == b,
                    })
            });
            assert!(found, "ctl {res} list lacks v2 row {row}: {listed:?}");
        }
    }
    let o = home.run(&["doctor"]);
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(
        report.contains("NanoClaw v2 install recognised (13 v2 migrations), adopted"),
        "{report}"
    );

    // The host serves it: the terminal and Alice's DM continue their v2 sessions.
    let host = home.start_host(&[]);
    let o = home.run(&["chat", "-m", "whoami puns", "--timeout", "60"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let reply = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(reply.contains(&format!("name={}", v2::NAME)), "{reply}");
    assert!(reply.contains(&format!("tz={}", v2::TZ)), "{reply}");
    // The agent's memory (CLAUDE.local.md) is in its prompt, and the Claude conversation v2's
    // runner was in is resumed (continuation:claude).
    assert!(reply.contains("knows=true"), "{reply}");
    assert!(
        reply.contains(&format!("resume={}", v2::CLI_CONTINUATION)),
        "{reply}"
    );
    // A chat nobody wired and a stranger in the Kitchen (request_approval) first: each is
    // audited or parked in v2's shapes, and neither holds up Alice behind it.
    fake.message(-100999, "group", 4321, "anyone?", None);
    fake.message(-100123, "supergroup", 1234, "let me in", None);
    fake.message(v2::ALICE, "private", v2::ALICE, "whoami", None);
    // fake-claude says "working on it" through the MCP tool first, then answers.
    let r = fake.wait_replies(v2::ALICE, 2);
    let text = r[1]["text"].as_str().unwrap_or_default();
    assert!(text.contains(&format!("name={}", v2::NAME)), "{text}");
    drop(host);
    let n = |sql: &str| -> i64 { home.central().query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(n("SELECT COUNT(*) FROM unregistered_senders WHERE platform_id = 'telegram:-100999' AND reason = 'no_agent_wired'"), 1);
    assert_eq!(n("SELECT COUNT(*) FROM pending_sender_approvals WHERE sender_identity = 'telegram:1234' AND approver_user_id IN ('cli:local', 'telegram:777') AND json_extract(original_message, '$.platformId') = 'telegram:-100123'"), 1);

    // No v2 table, column or row lost; only what new messages must change did.
    v2::assert_columns_kept(&before_cols, &v2::columns(&central));
    let after = v2::snapshot(&central);
    for (table, rows) in &before {
        let mut rows = rows.clone();
        if table == "sessions" {
            for r in &mut rows {
                let o = r.as_object_mut().unwrap();
                o.remove("last_active");
                o.remove("container_status");
            }
        }
        if table == "unregistered_senders" {
            // The Kitchen's row counts the stranger's message now.
            rows.retain(|r| r["platform_id"] != "telegram:-100123");
        }
        if table == "schema_version" || table == "users" {
            // Ours follow v2's in the ledger; a sender's display name is refreshed.
            continue;
        }
        v2::assert_rows_kept(table, &rows, &after[table]);
    }
    let n = |sql: &str| -> i64 { home.central().query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        n("SELECT COUNT(*) FROM sessions"),
        3,
        "the v2 sessions were used, none added"
    );

    for (i, (ag, id)) in sessions.iter().enumerate() {
        let d = session_dir(&home, ag, id);
        let (inb, outb) = &session_before[i];
        for (table, rows) in inb {
            if table == "destinations" || table == "session_routing" {
                continue; // rewritten from the central DB on every wake, as v2 does
            }
            v2::assert_rows_kept(table, rows, &v2::snapshot(&d.join("inbound.db"))[table]);
        }
        for (table, rows) in outb {
            v2::assert_rows_kept(table, rows, &v2::snapshot(&d.join("outbound.db"))[table]);
        }
    }
    // The new messages went into the existing sessions, host rows even, runner rows odd.
    for (ag, id) in &sessions[..2] {
        let d = session_dir(&home, ag, id);
        let seqs = |db: &str, like: &str| -> Vec<i64> {
            let c = Connection::open(d.join(db)).unwrap();
            let table = if db == "inbound.db" {
                "messages_in"
            } else {
                "messages_out"
            };
            let mut st = c
                .prepare(&format!("SELECT seq FROM {table} WHERE content LIKE ?1"))
                .unwrap();
            let v = st.query_map([like], |r| r.get(0)).unwrap();
            v.collect::<Result<_, _>>().unwrap()
        };
        let host_rows = seqs("inbound.db", "%whoami%");
        assert!(
            host_rows.len() == 1 && host_rows[0] > 2 && host_rows[0] % 2 == 0,
            "{id}: {host_rows:?}"
        );
        let runner_rows = seqs("outbound.db", "%whoami:%");
        assert!(
            runner_rows.len() == 1 && runner_rows[0] > 1 && runner_rows[0] % 2 == 1,
            "{id}: {runner_rows:?}"
        );
    }
    // The recurring task is still pending, with its first run and recurrence.
    let d = session_dir(&home, v2::MAIN, v2::CLI_SESSION);
    let i = Connection::open(d.join("inbound.db")).unwrap();
    let task: (String, String, String) = i
        .query_row(
            "SELECT status, process_after, recurrence FROM messages_in WHERE id = ?1",
            [v2::TASK],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        task,
        (
            "pending".into(),
            "2027-01-01T08:00:00.000Z".into(),
            "0 9 * * *".into()
        )
    );
}

#[test]
fn a_v2_host_serving_the_root_stops_ours_with_one_line() {
    let home = TestHome::new();
    v2::build(home.path());
    // v2's host listens on data/ncl.sock (its admin CLI) and takes no lock of ours.
    let sock = home.path().join("data/ncl.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    for args in [&["run"][..], &["chat", "-m", "hi", "--timeout", "10"][..]] {
        let o = home.run(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} started beside a v2 host");
        let line = err
            .lines()
            .find(|l| l.contains("another host"))
            .unwrap_or_else(|| panic!("{args:?}: {err}"));
        assert!(
            line.contains("ncl.sock") && line.contains("stop it first"),
            "{line}"
        );
    }
    let o = home.run(&["doctor"]);
    assert!(String::from_utf8_lossy(&o.stdout)
        .contains("another host (NanoClaw v2?) is serving this home"));
    // A socket nobody listens on is a host that died: ours starts.
    drop(listener);
    let host = home.start_host(&[]);
    drop(host);
}
