//! Unit tests of the control API on a temporary central DB, and of the socket server.

use std::io::{BufRead, BufReader, Write};

use nanoclaw_protocol::Home;
use serde_json::{json, Value};

use super::resources::RESOURCES;
use super::{execute, CtlError, ErrorKind, Request, Response};
use crate::db::Db;

struct Env {
    _dir: tempfile::TempDir,
    home: Home,
    db: Db,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let db = Db::open(&home.central_db()).unwrap();
    Env {
        _dir: dir,
        home,
        db,
    }
}

fn req(resource: &str, verb: &str, id: Option<&str>, fields: Value) -> Request {
    Request {
        resource: resource.into(),
        verb: verb.into(),
        id: id.map(Into::into),
        fields: fields.as_object().cloned().unwrap_or_default(),
        ..Default::default()
    }
}

impl Env {
    fn run(&self, r: Request) -> Result<Value, CtlError> {
        self.db.with(|c| Ok(execute(c, &self.home, &r))).unwrap()
    }
    fn ok(&self, resource: &str, verb: &str, id: Option<&str>, fields: Value) -> Value {
        self.run(req(resource, verb, id, fields))
            .unwrap_or_else(|e| panic!("{resource} {verb}: {e}"))
    }
    fn err(&self, resource: &str, verb: &str, id: Option<&str>, fields: Value) -> CtlError {
        let e = self
            .run(req(resource, verb, id, fields))
            .expect_err("should fail");
        assert!(!e.message.contains('\n'), "{e}");
        e
    }
    fn list(&self, resource: &str, filters: Value) -> Vec<Value> {
        let mut r = req(resource, "list", None, json!({}));
        r.filters = filters.as_object().cloned().unwrap_or_default();
        self.run(r).unwrap().as_array().unwrap().clone()
    }
    fn group(&self, name: &str) -> String {
        self.ok("groups", "create", None, json!({"name": name}))["id"]
            .as_str()
            .unwrap()
            .to_string()
    }
    fn chat(&self, pid: &str) -> String {
        self.ok(
            "messaging-groups",
            "create",
            None,
            json!({"channel_type": "telegram", "platform_id": pid, "name": "Family"}),
        )["id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

#[test]
fn every_resource_lists_on_a_fresh_db() {
    let e = env();
    for r in RESOURCES {
        let v = e.ok(r.name, "list", None, json!({}));
        assert_eq!(v, json!([]), "{}", r.name);
    }
}

#[test]
fn group_create_defaults_folder_and_makes_the_dir() {
    let e = env();
    let g = e.ok("groups", "create", None, json!({"name": "My Agent!"}));
    assert!(g["id"].as_str().unwrap().starts_with("ag-"));
    assert_eq!(g["folder"], "my-agent");
    assert!(e.home.root().join("groups/my-agent").is_dir());
    // Same folder again: a conflict naming the folder.
    let err = e.err("groups", "create", None, json!({"name": "my agent"}));
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(err.message.contains("my-agent"), "{err}");
    // Traversal and reserved names are refused, nothing created.
    for bad in ["../evil", "a/b", ".hidden", "global"] {
        let err = e.err(
            "groups",
            "create",
            None,
            json!({"name": "x", "folder": bad}),
        );
        assert!(err.message.contains("invalid --folder"), "{err}");
    }
    assert!(!e.home.root().join("evil").exists());
    assert!(!e.home.root().parent().unwrap().join("evil").exists());
    // Generated ids cannot be given; folders cannot change.
    let err = e.err("groups", "create", Some("ag-mine"), json!({"name": "y"}));
    assert!(err.message.contains("generated"), "{err}");
    let id = g["id"].as_str().unwrap();
    let err = e.err("groups", "update", Some(id), json!({"folder": "other"}));
    assert!(err.message.contains("cannot be changed"), "{err}");
    let u = e.ok(
        "groups",
        "update",
        Some(id),
        json!({"agent-provider": "mock"}),
    );
    assert_eq!(u["agent_provider"], "mock");
}

#[test]
fn wiring_create_makes_a_destination_and_validates() {
    let e = env();
    let ag = e.group("main");
    let mg = e.chat("telegram:1");
    let w = e.ok(
        "wirings",
        "create",
        None,
        json!({"messaging_group_id": mg, "agent_group_id": ag, "engage_mode": "pattern", "engage_pattern": "^hi", "priority": "5"}),
    );
    assert!(w["id"].as_str().unwrap().starts_with("wire-"));
    assert_eq!(w["priority"], 5);
    assert_eq!(w["session_mode"], "shared");
    let d = e.list("destinations", json!({"agent_group_id": ag}));
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["target_id"], mg);
    assert_eq!(d[0]["local_name"], "family");

    let bad = |f: Value, needle: &str| {
        let err = e.err("wirings", "create", None, f);
        assert!(err.message.contains(needle), "{err}");
    };
    bad(
        json!({"messaging_group_id": mg, "agent_group_id": ag}),
        "already wired",
    );
    let mg2 = e.chat("telegram:2");
    bad(
        json!({"messaging_group_id": mg2, "agent_group_id": ag, "engage_mode": "sometimes"}),
        "must be one of pattern, mention, mention-sticky",
    );
    bad(
        json!({"messaging_group_id": mg2, "agent_group_id": ag, "engage_pattern": "(" }),
        "invalid --engage-pattern",
    );
    bad(
        json!({"messaging_group_id": mg2, "agent_group_id": "ag-nope"}),
        "no groups with id",
    );
    bad(
        json!({"messaging_group_id": mg2}),
        "missing --agent-group-id",
    );
    bad(
        json!({"messaging_group_id": mg2, "agent_group_id": ag, "priority": "high"}),
        "expects an integer",
    );
    bad(
        json!({"messaging_group_id": mg2, "agent_group_id": ag, "colour": "red"}),
        "unknown field --colour",
    );

    let id = w["id"].as_str().unwrap();
    let err = e.err(
        "wirings",
        "update",
        Some(id),
        json!({"engage_pattern": "[" }),
    );
    assert!(err.message.contains("invalid --engage-pattern"), "{err}");
    let u = e.ok(
        "wirings",
        "update",
        Some(id),
        json!({"session_mode": "per-thread"}),
    );
    assert_eq!(u["session_mode"], "per-thread");
    assert_eq!(
        e.ok("wirings", "delete", Some(id), json!({})),
        json!({"deleted": 1})
    );
    let err = e.err("wirings", "get", Some(id), json!({}));
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert!(err.message.starts_with("no wirings with id wire-"), "{err}");
}

#[test]
fn roles_and_members_keep_their_invariants() {
    let e = env();
    let ag = e.group("team");
    let err = e.err(
        "roles",
        "create",
        None,
        json!({"user_id": "telegram:42", "role": "owner"}),
    );
    assert!(err.message.contains("no users with id"), "{err}");
    let u = e.ok(
        "users",
        "create",
        Some("telegram:42"),
        json!({"display_name": "Ann"}),
    );
    assert_eq!(u["kind"], "telegram");
    let err = e.err("users", "create", Some("bob"), json!({}));
    assert!(err.message.contains("<channel_type>:<handle>"), "{err}");

    let err = e.err(
        "roles",
        "create",
        None,
        json!({"user_id": "telegram:42", "role": "owner", "agent_group_id": ag}),
    );
    assert!(err.message.contains("owner role is global"), "{err}");
    let err = e.err(
        "roles",
        "create",
        None,
        json!({"user_id": "telegram:42", "role": "king"}),
    );
    assert!(err.message.contains("must be one of owner, admin"), "{err}");

    e.ok(
        "roles",
        "create",
        None,
        json!({"user_id": "telegram:42", "role": "admin", "agent_group_id": ag}),
    );
    let m = e.list("members", json!({}));
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["agent_group_id"], ag);
    // admin ⇒ member: the membership cannot go while the role stays.
    let key = json!({"user_id": "telegram:42", "agent_group_id": ag});
    let err = e.err("members", "delete", None, key.clone());
    assert!(err.message.contains("roles delete"), "{err}");
    let rkey = json!({"user_id": "telegram:42", "role": "admin", "agent_group_id": ag});
    assert_eq!(e.ok("roles", "get", None, rkey.clone())["role"], "admin");
    e.ok("roles", "delete", None, rkey);
    e.ok("members", "delete", None, key);

    // Global owner: the NULL agent group is part of the key.
    e.ok(
        "roles",
        "create",
        None,
        json!({"user_id": "telegram:42", "role": "owner"}),
    );
    let r = e.ok(
        "roles",
        "get",
        None,
        json!({"user_id": "telegram:42", "role": "owner"}),
    );
    assert_eq!(r["agent_group_id"], Value::Null);
    let err = e.err("roles", "get", Some("x"), json!({}));
    assert!(
        err.message.contains("--user-id --role --agent-group-id"),
        "{err}"
    );
    let err = e.err("roles", "delete", None, json!({"role": "owner"}));
    assert!(err.message.contains("missing --user-id"), "{err}");
}

#[test]
fn generic_resources_round_trip() {
    let e = env();
    let ag = e.group("main");
    let cc = e.ok(
        "container-configs",
        "create",
        None,
        json!({"agent_group_id": ag, "packages_apt": "[\"git\"]", "model": "m1"}),
    );
    assert_eq!(cc["packages_apt"], json!(["git"]));
    assert_eq!(cc["skills"], json!("all"));
    assert_eq!(cc["cli_scope"], json!("group"));
    assert_eq!(cc["limits"], json!({}));
    let err = e.err(
        "container-configs",
        "update",
        Some(&ag),
        json!({"packages_npm": "{}"}),
    );
    assert!(err.message.contains("expects a JSON array"), "{err}");
    let u = e.ok(
        "container-configs",
        "update",
        Some(&ag),
        json!({"skills": "[\"welcome\"]"}),
    );
    assert_eq!(u["skills"], json!(["welcome"]));
    let u = e.ok(
        "container-configs",
        "update",
        Some(&ag),
        json!({"limits": {"memory_mb": 512}}),
    );
    assert_eq!(u["limits"]["memory_mb"], 512);
    let err = e.err(
        "container-configs",
        "create",
        None,
        json!({"agent_group_id": ag}),
    );
    assert_eq!(err.kind, ErrorKind::Conflict);

    let mg = e.chat("telegram:7");
    let m = e.ok(
        "messaging-groups",
        "update",
        Some(&mg),
        json!({"unknown_sender_policy": "public", "is_group": "yes"}),
    );
    assert_eq!(m["is_group"], true);
    let err = e.err(
        "messaging-groups",
        "update",
        Some(&mg),
        json!({"unknown_sender_policy": "open"}),
    );
    assert!(
        err.message.contains("strict, request_approval, public"),
        "{err}"
    );
    let err = e.err(
        "messaging-groups",
        "create",
        None,
        json!({"channel_type": "telegram", "platform_id": "telegram:7"}),
    );
    assert_eq!(err.kind, ErrorKind::Conflict);

    e.ok("users", "create", Some("telegram:9"), json!({}));
    e.ok(
        "user-dms",
        "create",
        None,
        json!({"user_id": "telegram:9", "channel_type": "telegram", "messaging_group_id": mg}),
    );
    let err = e.err(
        "user-dms",
        "update",
        None,
        json!({"user_id": "telegram:9", "channel_type": "telegram", "messaging_group_id": "mg-x"}),
    );
    assert!(err.message.contains("no messaging-groups with id"), "{err}");

    e.ok("destinations", "create", None, json!({"agent_group_id": ag, "local_name": "self", "target_type": "agent", "target_id": ag}));
    let err = e.err("destinations", "create", None, json!({"agent_group_id": ag, "local_name": "../x", "target_type": "agent", "target_id": ag}));
    assert!(err.message.contains("invalid --local-name"), "{err}");
    let err = e.err(
        "destinations",
        "create",
        None,
        json!({"agent_group_id": ag, "local_name": "y", "target_type": "channel", "target_id": ag}),
    );
    assert!(err.message.contains("no messaging-groups"), "{err}");

    // Read-only and verb rules.
    let err = e.err("dropped-messages", "delete", Some("x"), json!({}));
    assert!(err.message.contains("cannot delete"), "{err}");
    let err = e.err("sessions", "create", None, json!({}));
    assert!(err.message.contains("cannot create"), "{err}");
    let err = e.err("groups", "frob", None, json!({}));
    assert!(err.message.contains("unknown verb"), "{err}");
    let err = e.err("nope", "list", None, json!({}));
    assert!(err.message.contains("unknown resource"), "{err}");

    // Filters and limits.
    e.group("second");
    assert_eq!(e.list("groups", json!({})).len(), 2);
    assert_eq!(e.list("groups", json!({"folder": "second"})).len(), 1);
    let mut r = req("groups", "list", None, json!({}));
    r.limit = Some(1);
    assert_eq!(e.run(r).unwrap().as_array().unwrap().len(), 1);

    // Deleting a group cascades to its wirings, destinations and config.
    e.ok("groups", "delete", Some(&ag), json!({}));
    assert!(e.list("destinations", json!({})).is_empty());
    assert!(e.list("container-configs", json!({})).is_empty());
}

#[test]
fn values_are_bound_never_interpolated() {
    let e = env();
    let evil = "x'); DROP TABLE agent_groups; --";
    let g = e.ok(
        "groups",
        "create",
        None,
        json!({"name": evil, "folder": "ok"}),
    );
    assert_eq!(g["name"], evil);
    assert_eq!(e.list("groups", json!({"name": evil})).len(), 1);
    // Column names come only from descriptors.
    let mut r = req("groups", "list", None, json!({}));
    r.filters = json!({"1=1 OR name": "x"}).as_object().cloned().unwrap();
    let err = e.run(r).unwrap_err();
    assert!(err.message.contains("unknown field"), "{err}");
}

#[tokio::test]
async fn socket_serves_json_lines() {
    let e = env();
    let path = e.home.control_sock();
    let listener = super::server::bind(&path).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (db, home) = (e.db.clone(), e.home.clone());
    let exec = move |r: Request| {
        let (db, home) = (db.clone(), home.clone());
        async move { Response::from_result(db.call(move |c| Ok(execute(c, &home, &r))).await.unwrap()) }
    };
    tokio::spawn(super::server::serve_listener(listener, exec));
    let replies = tokio::task::spawn_blocking(move || {
        let s = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut ask = |line: &str| -> Value {
            w.write_all(line.as_bytes()).unwrap();
            w.write_all(b"\n").unwrap();
            let mut out = String::new();
            r.read_line(&mut out).unwrap();
            serde_json::from_str(&out).unwrap()
        };
        let mut got = vec![
            ask(r#"{"resource":"groups","verb":"create","fields":{"name":"Sock"}}"#),
            ask(r#"{"resource":"groups","verb":"list"}"#),
            ask("{not json"),
            ask(r#"{"resource":"groups","verb":"get","id":"ag-none"}"#),
        ];
        // An oversized line is refused and the connection closed, without a crash.
        let big = format!(
            "{{\"resource\":\"{}\"}}",
            "a".repeat(super::server::MAX_REQUEST + 10)
        );
        got.push(ask(&big));
        got
    })
    .await
    .unwrap();
    assert_eq!(replies[0]["ok"], true);
    assert_eq!(replies[0]["data"]["folder"], "sock");
    assert_eq!(replies[1]["data"].as_array().unwrap().len(), 1);
    assert_eq!(replies[2]["ok"], false);
    assert!(replies[2]["error"]
        .as_str()
        .unwrap()
        .starts_with("bad request"));
    assert!(replies[3]["error"]
        .as_str()
        .unwrap()
        .starts_with("no groups with id ag-none"));
    assert!(replies[4]["error"].as_str().unwrap().contains("too large"));
    // The server still answers new connections.
    let path = e.home.control_sock();
    let v = tokio::task::spawn_blocking(move || {
        let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
        s.write_all(b"{\"resource\":\"users\",\"verb\":\"list\"}\n")
            .unwrap();
        let mut out = String::new();
        BufReader::new(s).read_line(&mut out).unwrap();
        serde_json::from_str::<Value>(&out).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(v, json!({"ok": true, "data": []}));
}
