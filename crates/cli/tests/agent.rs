//! The agent brain end to end: real `nanoclaw run` + `nanoclaw-agent` (process runtime) with
//! the anthropic provider talking to the testkit's fake Messages API through the host's
//! credential proxy; system actions answered by the host.

use std::time::Duration;

use nanoclaw_testkit::fake_model::{FakeModel, Reply};
use nanoclaw_testkit::{eventually, TestHome};
use serde_json::json;

const REAL_KEY: &str = "sk-ant-real-0123456789";

fn home_for(fake: &FakeModel) -> TestHome {
    TestHome::new()
        .env("NANOCLAW_PROVIDER", "anthropic")
        .env("ANTHROPIC_BASE_URL", &fake.anthropic_url())
        .env("ANTHROPIC_API_KEY", REAL_KEY)
        .env("NANOCLAW_MODEL_RETRY_BASE_MS", "10")
}

fn chat(home: &TestHome, text: &str) -> String {
    let o = home.run(&["chat", "-m", text, "--timeout", "30"]);
    assert!(
        o.status.success(),
        "chat failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn tool_loop_through_the_proxy_with_the_real_key_only_upstream() {
    let fake = FakeModel::start();
    fake.require_key(REAL_KEY);
    let home = home_for(&fake);
    let host = home.start_host(&[]);
    std::fs::create_dir_all(home.path().join("groups/main")).unwrap();
    std::fs::write(home.path().join("groups/main/notes.txt"), "buy oat milk\n").unwrap();
    fake.push([
        Reply::tool("read", json!({"path": "notes.txt"})),
        Reply::text("Your note says: buy oat milk."),
    ]);
    assert_eq!(
        chat(&home, "what does my note say?"),
        "Your note says: buy oat milk."
    );

    // The fake saw the real key on every request; the runner never had it.
    let reqs = fake.received();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_eq!(
            r.headers.get("x-api-key").map(String::as_str),
            Some(REAL_KEY)
        );
    }
    assert!(reqs[1].last_user_text().contains("buy oat milk"));
    let pids = nanoclaw_testkit::runner_pids(home.path());
    assert_eq!(pids.len(), 1, "one runner for the session");
    let env =
        String::from_utf8_lossy(&std::fs::read(format!("/proc/{}/environ", pids[0])).unwrap())
            .into_owned();
    assert!(
        !env.contains(REAL_KEY),
        "the real key is not in the runner's environment"
    );
    assert!(
        env.contains("ANTHROPIC_API_KEY=ncp-"),
        "the runner holds only a placeholder token"
    );
    assert!(
        env.contains("ANTHROPIC_BASE_URL=http://127.0.0.1:"),
        "the runner talks to the proxy"
    );
    // Nor in any file a runner can see or any log.
    for dir in [
        home.path().join("data/v2-sessions"),
        home.path().join("groups"),
        home.path().join("logs"),
    ] {
        for e in walk(&dir) {
            let bytes = std::fs::read(&e).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(REAL_KEY),
                "key leaked into {}",
                e.display()
            );
        }
    }
    host.stop();
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_bad_key_reaches_the_user_as_an_auth_problem() {
    let fake = FakeModel::start();
    fake.require_key("sk-something-else");
    let home = home_for(&fake);
    let o = home.run(&["chat", "-m", "hello", "--timeout", "30"]);
    let answer = String::from_utf8_lossy(&o.stdout);
    assert!(answer.contains("authentication problem"), "{answer}");
    assert!(
        !o.status.success(),
        "a failed turn is a failed chat command"
    );
}

#[test]
fn scheduled_task_runs_and_new_agent_is_created() {
    let fake = FakeModel::start();
    let at = nanoclaw_protocol::time::fmt(chrono::Utc::now() + chrono::Duration::seconds(2));
    fake.respond_with(move |req| {
        let last = req.last_user_text();
        Some(if last.contains("<scheduled_task") {
            Reply::text("Time to water the plants!")
        } else if last.contains("remind me") {
            Reply::tool(
                "schedule_task",
                json!({"prompt": "water the plants", "at": at}),
            )
        } else if last.contains("make a helper") {
            Reply::tool(
                "create_agent",
                json!({"name": "Research Helper", "instructions": "You research."}),
            )
        } else {
            Reply::text(&format!("tool said: {last}"))
        })
    });
    let home = home_for(&fake);
    let host = home.start_host(&[]);
    let answer = chat(&home, "remind me to water the plants");
    assert!(answer.contains("scheduled; next run"), "{answer}");
    let fired = eventually(Duration::from_secs(20), || {
        home.transcript()
            .into_iter()
            .find(|l| l.to_string().contains("Time to water the plants!"))
    });
    assert!(
        fired.is_some(),
        "the task ran and its answer reached the chat: {:?}",
        home.transcript()
    );

    let answer = chat(&home, "make a helper");
    assert!(answer.contains("created agent Research Helper"), "{answer}");
    let c = home.central();
    let n: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM agent_groups WHERE folder='research-helper'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
    let dests: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM agent_destinations WHERE target_type='agent'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dests, 2, "destinations both ways");
    assert!(
        std::fs::read_to_string(home.path().join("groups/research-helper/CLAUDE.md"))
            .unwrap()
            .contains("You research.")
    );
    host.stop();
}

/// A model that asks for self-modifications when told to and repeats what the host answers.
fn self_modifying_model() -> FakeModel {
    let fake = FakeModel::start();
    fake.respond_with(|req| {
        let last = req.last_user_text();
        Some(if last.contains("install jq") {
            Reply::tool(
                "install_packages",
                json!({"apt": ["jq"], "reason": "parse JSON"}),
            )
        } else if last.contains("add weather") {
            Reply::tool(
                "add_mcp_server",
                json!({"name": "weather", "command": "weather-mcp"}),
            )
        } else if last.contains(" requested (request ") {
            // The tool's own result; the host's "pending" answer may ride along in the same
            // turn (injected mid-turn) or come as a turn of its own, depending on timing.
            Reply::text("asked the owner")
        } else if last.contains("<system_response") {
            Reply::text(&format!("noted: {last}"))
        } else {
            Reply::text("asked the owner")
        })
    });
    fake
}

#[test]
fn self_modification_waits_for_the_owner_and_applies_on_approval() {
    let fake = self_modifying_model();
    let home = home_for(&fake);
    let host = home.start_host(&[]);
    assert_eq!(chat(&home, "please install jq"), "asked the owner");
    // The owner (the terminal's cli:local) gets the card in the terminal, as numbered options.
    let card = eventually(Duration::from_secs(10), || {
        home.transcript()
            .into_iter()
            .find(|l| l.to_string().contains("Approval needed"))
    })
    .expect("approval card in the terminal");
    let text = card.to_string();
    assert!(
        text.contains("install packages (apt: jq") && text.contains("1. Approve"),
        "{text}"
    );
    // "1" approves: the config changes and the agent is told.
    let o = home.run(&["chat", "-m", "1", "--timeout", "30"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Approve: done."));
    let packages: String = home
        .central()
        .query_row("SELECT packages_apt FROM container_configs", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(packages.contains("\"jq\""), "{packages}");
    let told = eventually(Duration::from_secs(20), || {
        home.transcript()
            .into_iter()
            .find(|l| l.to_string().contains("approved; your container restarts"))
    });
    assert!(
        told.is_some(),
        "the agent heard the outcome: {:?}",
        home.transcript()
    );

    // Rejected: nothing changes.
    assert_eq!(chat(&home, "add weather"), "asked the owner");
    eventually(Duration::from_secs(10), || {
        home.transcript()
            .into_iter()
            .find(|l| l.to_string().contains("MCP server \\\"weather\\\""))
    })
    .expect("second card");
    let o = home.run(&["chat", "-m", "2", "--timeout", "30"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Reject: done."));
    let mcp: String = home
        .central()
        .query_row("SELECT mcp_servers FROM container_configs", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(!mcp.contains("weather"));
    let status: String = home
        .central()
        .query_row(
            "SELECT status FROM pending_approvals WHERE action='add_mcp_server'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(status, "rejected");
    host.stop();
}

#[test]
fn an_undecided_approval_expires_and_the_agent_is_told() {
    let fake = self_modifying_model();
    let home = home_for(&fake)
        .env("NANOCLAW_APPROVAL_TTL_MS", "1000")
        .env("NANOCLAW_SWEEP_INTERVAL_MS", "200");
    let host = home.start_host(&[]);
    assert_eq!(chat(&home, "please install jq"), "asked the owner");
    let told = eventually(Duration::from_secs(20), || {
        home.transcript().into_iter().find(|l| {
            l.to_string()
                .contains("expired: no approver decided in time")
        })
    });
    assert!(told.is_some(), "agent told: {:?}", home.transcript());
    let status: String = home
        .central()
        .query_row("SELECT status FROM pending_approvals", [], |r| r.get(0))
        .unwrap();
    assert_eq!(status, "expired");
    // A late "1" is an ordinary message now: nothing is installed.
    chat(&home, "1");
    let packages: Option<String> = home
        .central()
        .query_row("SELECT packages_apt FROM container_configs", [], |r| {
            r.get(0)
        })
        .ok();
    assert!(!packages.unwrap_or_default().contains("jq"));
    host.stop();
}

/// v2's scheduling forms through the real host: a first run (naive local time in the
/// configured timezone) together with a cron, `update_task` by `taskId`, and the agent told
/// when no task matched.
#[test]
fn v2_task_arguments_are_understood_by_the_host() {
    let fake = FakeModel::start();
    fake.respond_with(|req| {
        let last = req.last_user_text();
        Some(if last.contains("plan standup") {
            Reply::tool(
                "schedule_task",
                json!({"prompt": "standup", "processAfter": "2030-06-03T09:00:00", "recurrence": "0 9 * * 1-5"}),
            )
        } else {
            Reply::text(&format!("tool said: {last}"))
        })
    });
    let home = home_for(&fake).env("TZ", "America/New_York");
    let host = home.start_host(&[]);
    let answer = chat(&home, "plan standup");
    assert!(answer.contains("recurring (0 9 * * 1-5)"), "{answer}");
    let dir = home.session_dirs()[0].clone();
    let row = || -> (String, String, Option<String>, String) {
        let c = rusqlite::Connection::open(dir.join("inbound.db")).unwrap();
        c.query_row(
            "SELECT series_id, process_after, recurrence, content FROM messages_in WHERE kind='task'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap()
    };
    let (series, after, cron, _) = row();
    // 09:00 in New York in June (EDT, UTC-4) is 13:00 UTC; the cron is kept for the next runs.
    assert!(after.starts_with("2030-06-03T13:00:00"), "{after}");
    assert_eq!(cron.as_deref(), Some("0 9 * * 1-5"));

    fake.respond_with(move |req| {
        let last = req.last_user_text();
        Some(if last.contains("shorten it") {
            Reply::tool(
                "update_task",
                json!({"taskId": series, "prompt": "short standup", "recurrence": ""}),
            )
        } else if last.contains("change a ghost") {
            Reply::tool("update_task", json!({"taskId": "nope", "prompt": "x"}))
        } else {
            Reply::text(&format!("tool said: {last}"))
        })
    });
    let answer = chat(&home, "shorten it");
    assert!(answer.contains("updated"), "{answer}");
    let (_, after2, cron, content) = row();
    assert_eq!(
        after2, after,
        "an omitted processAfter leaves the next run alone"
    );
    assert_eq!(cron, None, "an empty recurrence makes it one-shot");
    assert!(content.contains("short standup"), "{content}");
    let answer = chat(&home, "change a ghost");
    assert!(
        answer.contains("no pending or paused task nope"),
        "{answer}"
    );
    host.stop();
}
