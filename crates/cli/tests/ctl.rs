//! `nanoclaw ctl` through the real binary: directly on the DB (no host), and through the
//! running host's control socket.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("nc-ctl-")
                .tempdir()
                .unwrap(),
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn ctl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_nanoclaw"))
            .arg("--home")
            .arg(self.path())
            .arg("ctl")
            .args(args)
            .env_remove("NANOCLAW_HOME")
            .stdin(Stdio::null())
            .output()
            .expect("spawn nanoclaw")
    }
    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.ctl(args);
        assert!(
            o.status.success(),
            "ctl {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }
    /// Runs with --json and parses stdout.
    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("ctl {args:?}: {e}: {out}"))
    }
    /// Runs and expects a one-line error; returns it.
    fn fails(&self, args: &[&str]) -> String {
        let o = self.ctl(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success(), "ctl {args:?} should fail");
        assert!(!err.contains("panicked"), "ctl {args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "ctl {args:?}: not one line: {err}");
        assert!(err.starts_with("error: "), "{err}");
        assert!(o.stdout.is_empty(), "ctl {args:?} printed {:?}", o.stdout);
        err
    }
}

#[test]
fn groups_chats_wirings_and_destinations() {
    let h = Home::new();
    let ag = h.ok(&["groups", "create", "--name", "Family Helper"]);
    let ag = ag.trim();
    assert!(ag.starts_with("ag-"), "{ag}");
    assert!(h.path().join("groups/family-helper").is_dir());

    let g = h.json(&["groups", "get", ag]);
    assert_eq!(g["folder"], "family-helper");
    assert_eq!(g["name"], "Family Helper");
    let text = h.ok(&["groups", "get", "--id", ag]);
    assert!(
        text.contains("folder:") && text.contains("family-helper"),
        "{text}"
    );

    let mg = h.json(&[
        "messaging-groups",
        "create",
        "--channel-type",
        "telegram",
        "--platform-id",
        "telegram:-100",
        "--name",
        "Family",
        "--is-group",
        "true",
        "--unknown-sender-policy",
        "request_approval",
    ]);
    let mg = mg["id"].as_str().unwrap().to_string();
    assert!(mg.starts_with("mg-"));
    let err = h.fails(&[
        "messaging-groups",
        "create",
        "--channel-type",
        "telegram",
        "--platform-id",
        "telegram:5",
        "--unknown-sender-policy",
        "open",
    ]);
    assert!(err.contains("strict, request_approval, public"), "{err}");

    let w = h.ok(&[
        "wirings",
        "create",
        "--messaging-group-id",
        &mg,
        "--agent-group-id",
        ag,
        "--engage-mode",
        "pattern",
        "--engage-pattern",
        "^@bot",
        "--session-mode",
        "per-thread",
    ]);
    let w = w.trim().to_string();
    assert!(w.starts_with("wire-"), "{w}");
    // The wiring created the agent's destination for the chat.
    let d = h.json(&["destinations", "list"]);
    assert_eq!(d.as_array().unwrap().len(), 1, "{d}");
    assert_eq!(d[0]["agent_group_id"], ag);
    assert_eq!(d[0]["target_type"], "channel");
    assert_eq!(d[0]["target_id"], mg);
    let dest = d[0]["local_name"].as_str().unwrap();
    let one = h.json(&[
        "destinations",
        "get",
        "--agent-group-id",
        ag,
        "--local-name",
        dest,
    ]);
    assert_eq!(one, d[0]);

    let err = h.fails(&[
        "wirings",
        "create",
        "--messaging-group-id",
        &mg,
        "--agent-group-id",
        ag,
        "--engage-mode",
        "sometimes",
    ]);
    assert!(
        err.contains("--engage-mode") && err.contains("pattern, mention, mention-sticky"),
        "{err}"
    );

    // Update and filtered list round trips.
    let u = h.json(&[
        "wirings",
        "update",
        &w,
        "--priority",
        "3",
        "--sender-scope",
        "known",
    ]);
    assert_eq!(u["priority"], 3);
    assert_eq!(u["sender_scope"], "known");
    assert_eq!(u["engage_pattern"], "^@bot");
    let msg = h.ok(&["wirings", "update", &w, "--clear", "engage-pattern"]);
    assert_eq!(msg, format!("updated wirings {w}\n"));
    let l = h.json(&["wirings", "list", "--agent-group-id", ag]);
    assert_eq!(l[0]["engage_pattern"], Value::Null);
    assert_eq!(
        h.json(&["wirings", "list", "--agent-group-id", "ag-other"]),
        json!([])
    );
    let table = h.ok(&["wirings", "list"]);
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table.starts_with("id "), "{table}");

    // Delete, then the id is unknown.
    assert_eq!(h.json(&["wirings", "delete", &w]), json!({"deleted": 1}));
    let err = h.fails(&["wirings", "get", &w]);
    assert!(err.contains(&format!("no wirings with id {w}")), "{err}");
    let err = h.fails(&["wirings", "delete", &w]);
    assert!(err.contains("no wirings with id"), "{err}");
}

#[test]
fn users_roles_and_members() {
    let h = Home::new();
    let ag = h
        .ok(&["groups", "create", "--name", "team"])
        .trim()
        .to_string();
    assert_eq!(
        h.ok(&[
            "users",
            "create",
            "--id",
            "telegram:42",
            "--display-name",
            "Ann"
        ]),
        "telegram:42\n"
    );
    assert_eq!(h.json(&["users", "get", "telegram:42"])["kind"], "telegram");

    // owner is global: a scoped owner is refused.
    let err = h.fails(&[
        "roles",
        "create",
        "--user-id",
        "telegram:42",
        "--role",
        "owner",
        "--agent-group-id",
        &ag,
    ]);
    assert!(err.contains("owner role is global"), "{err}");
    assert_eq!(h.json(&["roles", "list"]), json!([]));

    // A scoped admin is also a member.
    let out = h.ok(&[
        "roles",
        "create",
        "--user-id",
        "telegram:42",
        "--role",
        "admin",
        "--agent-group-id",
        &ag,
    ]);
    assert_eq!(
        out,
        format!("user_id=telegram:42 role=admin agent_group_id={ag}\n")
    );
    let m = h.json(&["members", "list", "--agent-group-id", &ag]);
    assert_eq!(m.as_array().unwrap().len(), 1, "{m}");
    assert_eq!(m[0]["user_id"], "telegram:42");
    let err = h.fails(&[
        "members",
        "delete",
        "--user-id",
        "telegram:42",
        "--agent-group-id",
        &ag,
    ]);
    assert!(err.contains("roles delete"), "{err}");

    // Global owner, addressed by its key fields.
    h.ok(&[
        "roles",
        "create",
        "--user-id",
        "telegram:42",
        "--role",
        "owner",
    ]);
    let r = h.json(&[
        "roles",
        "get",
        "--user-id",
        "telegram:42",
        "--role",
        "owner",
    ]);
    assert_eq!(r["agent_group_id"], Value::Null);
    assert_eq!(
        h.ok(&[
            "roles",
            "delete",
            "--user-id",
            "telegram:42",
            "--role",
            "owner"
        ]),
        "deleted roles user_id=telegram:42 role=owner\n"
    );
    assert_eq!(
        h.json(&["roles", "list", "--role", "admin"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let err = h.fails(&[
        "roles",
        "get",
        "--user-id",
        "telegram:42",
        "--role",
        "owner",
    ]);
    assert!(err.contains("no roles with"), "{err}");
}

#[test]
fn bad_input_is_one_line_and_changes_nothing() {
    let h = Home::new();
    let err = h.fails(&["groups", "create", "--name", "x", "--folder", "../evil"]);
    assert!(err.contains("invalid"), "{err}");
    assert!(!h.path().join("evil").exists());
    assert!(!h.path().parent().unwrap().join("evil").exists());
    assert!(!h.path().join("groups/evil").exists());
    assert!(!h.path().join("groups/x").exists());
    assert_eq!(h.json(&["groups", "list"]), json!([]));

    for (args, needle) in [
        (&["gropus", "list"][..], "unknown resource \"gropus\""),
        (&["groups", "explode"][..], "unknown verb \"explode\""),
        (
            &["groups", "list", "--colour", "red"][..],
            "unknown field --colour for groups",
        ),
        (
            &["groups", "get", "ag-nope"][..],
            "no groups with id ag-nope",
        ),
        (
            &["groups", "update", "ag-nope", "--name", "n"][..],
            "no groups with id ag-nope",
        ),
        (&["groups", "create"][..], "missing --name"),
        (&["groups", "create", "--name"][..], "--name needs a value"),
        (
            &[
                "wirings",
                "create",
                "--messaging-group-id",
                "mg-x",
                "--agent-group-id",
                "ag-x",
                "--priority",
                "high",
            ][..],
            "expects an integer",
        ),
        (&["dropped-messages", "delete", "x"][..], "cannot delete"),
        (
            &["roles", "get", "some-id"][..],
            "--user-id --role --agent-group-id",
        ),
    ] {
        let err = h.fails(args);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // Help is not an error.
    let help = h.ok(&["wirings", "help"]);
    assert!(help.contains("--engage-mode"), "{help}");
}

/// With a host running, requests go through data/control.sock and the host's DB connection.
#[test]
fn through_the_running_host() {
    let home = nanoclaw_testkit::TestHome::new();
    let host = home.start_host(&[]);
    // The control socket opens just after the terminal one that start_host waits for.
    let sock = home.path().join("data/control.sock");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !sock.exists() && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(sock.exists(), "no control socket");
    let run = |args: &[&str]| {
        let mut a = vec!["ctl"];
        a.extend_from_slice(args);
        home.run(&a)
    };
    let o = run(&["groups", "create", "--name", "Remote", "--json"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    // No "writing the DB directly" warning: the socket answered.
    assert!(err.is_empty(), "{err}");
    let g: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(g["folder"], "remote");
    assert!(home.path().join("groups/remote").is_dir());
    // The terminal wiring the host made at start is visible, with its destination.
    let o = run(&["destinations", "list", "--json"]);
    let d: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(!d.as_array().unwrap().is_empty(), "{d}");
    let o = run(&["groups", "create", "--name", "y", "--folder", "../evil"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("error: invalid --folder"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let log = host.stop();
    assert!(!log.contains("panicked"), "{log}");
}
