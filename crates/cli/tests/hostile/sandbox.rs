//! The runner's view of the machine: its bash tool reaches its own folders and the system, never
//! the home's secrets, the central DB, the sockets, the logs or other sessions and agents
//! (bubblewrap in the process runtime, mounts in Docker).

use std::time::Duration;

use nanoclaw_testkit::fake_model::{FakeModel, Reply};
use serde_json::json;

use crate::support::{self, Rt, REAL_KEY};

/// Everything outside the runner's folders that an agent would go for, as host paths.
fn targets(home: &std::path::Path) -> Vec<std::path::PathBuf> {
    [
        ".env",
        "nanoclaw.toml",
        "data/v2.db",
        "data/control.sock",
        "data/cli.sock",
        "data/cli-transcript.jsonl",
        "logs/nanoclaw.log",
        "data/v2-sessions/other-group/other-session/inbound.db",
        "groups/other/CLAUDE.md",
    ]
    .iter()
    .map(|p| home.join(p))
    .collect()
}

/// A shell script that reports, per target, whether it could be read or connected to.
fn probe_script(targets: &[std::path::PathBuf], scratch: &str) -> String {
    let mut s = String::new();
    for t in targets {
        let t = t.display();
        s.push_str(&format!(
            "if [ -S '{t}' ] || [ -e '{t}' ] || cat '{t}' >/dev/null 2>&1; then echo 'REACHED {t}'; else echo 'HIDDEN {t}'; fi\n"
        ));
    }
    // The working directory is the agent folder, two levels below the home.
    s.push_str("cat ../../.env 2>/dev/null | head -c 200\n");
    // Its own folders still work: write in both, read inbound.db, but never write it.
    s.push_str(concat!(
        "echo made-here > \"${NANOCLAW_WORKSPACE:-/workspace}/agent-file.txt\" && echo WS_OK\n",
        "echo noted > \"${NANOCLAW_AGENT_DIR:-/workspace/agent}/notes.txt\" && echo AGENT_OK\n",
        "head -c 15 \"${NANOCLAW_WORKSPACE:-/workspace}/inbound.db\" | grep -q 'SQLite format' && echo INBOUND_READ\n",
        "if (: >> \"${NANOCLAW_WORKSPACE:-/workspace}/inbound.db\") 2>/dev/null; then echo INBOUND_WRITABLE; else echo INBOUND_RO; fi\n",
    ));
    s.push_str(&format!("echo scratch > {scratch} && cat {scratch}\n"));
    s
}

#[test]
fn the_runner_sees_its_own_folders_and_nothing_of_the_home() {
    for rt in Rt::all() {
        let fake = FakeModel::start();
        let home = support::home(rt, &fake);
        let root = home.path().to_path_buf();
        std::fs::write(root.join(".env"), format!("ANTHROPIC_API_KEY={REAL_KEY}\n")).unwrap();
        std::fs::write(root.join("nanoclaw.toml"), "# settings\n").unwrap();
        let other = root.join("data/v2-sessions/other-group/other-session");
        std::fs::create_dir_all(&other).unwrap();
        support::bait(&other, "inbound.db", "another session's messages");
        std::fs::create_dir_all(root.join("groups/other")).unwrap();
        support::bait(
            &root.join("groups/other"),
            "CLAUDE.md",
            "another agent's memory",
        );
        let host = home.start_host(&[]);
        // The host has written its log and transcript by the first answer.
        fake.push([Reply::text("hello")]);
        assert_eq!(support::chat(&home, "hi"), (true, "hello".into()), "{rt:?}");

        let scratch = format!(
            "/tmp/{}-scratch",
            root.file_name().unwrap().to_string_lossy()
        );
        let script = probe_script(&targets(&root), &scratch);
        fake.push([
            Reply::tool("bash", json!({"command": script})),
            Reply::text("done"),
        ]);
        assert_eq!(
            support::chat(&home, "look around"),
            (true, "done".into()),
            "{rt:?}"
        );
        let reqs = fake.received();
        let out = reqs.last().expect("tool result sent").last_user_text();
        assert!(!out.contains("REACHED"), "{rt:?}: {out}");
        assert!(!out.contains(REAL_KEY), "{rt:?}: the key leaked: {out}");
        assert_eq!(
            out.matches("HIDDEN").count(),
            targets(&root).len(),
            "{rt:?}: {out}"
        );
        for ok in ["WS_OK", "AGENT_OK", "INBOUND_READ", "INBOUND_RO", "scratch"] {
            assert!(out.contains(ok), "{rt:?}: {ok} missing in {out}");
        }
        assert!(!out.contains("INBOUND_WRITABLE"), "{rt:?}: {out}");
        // What it wrote in its own folders is there on the host.
        let sessions = home.session_dirs();
        assert!(
            sessions
                .iter()
                .any(|d| std::fs::read_to_string(d.join("agent-file.txt")).is_ok()),
            "{rt:?}"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("groups/main/notes.txt")).unwrap(),
            "noted\n",
            "{rt:?}"
        );
        // Its private /tmp is not the host's.
        assert!(
            !std::path::Path::new(&scratch).exists(),
            "{rt:?}: /tmp is the host's"
        );
        let _ = std::fs::remove_file(&scratch);
        host.stop();
    }
}

#[test]
fn without_a_sandbox_chat_and_doctor_say_so() {
    let fake = FakeModel::start();
    for (env, phrase) in [
        (
            ("NANOCLAW_BWRAP", "/nonexistent/bwrap"),
            "WITHOUT a sandbox",
        ),
        (("NANOCLAW_SANDBOX", "off"), "sandbox off"),
    ] {
        let home = support::home(Rt::Process, &fake).env(env.0, env.1);
        fake.push([Reply::text("hello")]);
        let o = home.run(&["chat", "-m", "hi", "--timeout", "60"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            err.lines().filter(|l| l.contains(phrase)).count(),
            1,
            "{env:?}: one line on stderr: {err}"
        );
        let o = home.run(&["doctor"]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.lines()
                .any(|l| l.starts_with("warn  sandbox:") && l.contains(phrase)),
            "{env:?}: {out}"
        );
        assert!(support::audited(&home, phrase, Duration::from_secs(5)));
    }
    // A working sandbox: nothing on stderr, ok in doctor.
    let home = support::home(Rt::Process, &fake);
    fake.push([Reply::text("hello")]);
    let o = home.run(&["chat", "-m", "hi", "--timeout", "60"]);
    assert!(o.status.success());
    assert!(!String::from_utf8_lossy(&o.stderr).contains("sandbox"));
    let out = String::from_utf8_lossy(&home.run(&["doctor"]).stdout).into_owned();
    assert!(
        out.lines().any(|l| l.starts_with("ok    sandbox:")),
        "{out}"
    );
}
