//! Shutdown waits for the host's own tasks: a runner stopped mid-turn has its exit handled
//! (its work put back for a retry) before `shutdown` returns, and no task is left running.

use std::time::Duration;

use nanoclaw_host::channels::InboundEvent;
use nanoclaw_host::db::{self, wirings::NewWiring};
use nanoclaw_host::Host;
use nanoclaw_protocol::Home;
use nanoclaw_testkit::{eventually, runner_pids, TestHome};
use rusqlite::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_a_stopped_runners_exit_handling() {
    let th = TestHome::new();
    std::fs::write(
        th.path().join("nanoclaw.toml"),
        format!(
            "NANOCLAW_RUNTIME = \"process\"\nNANOCLAW_AGENT_BIN = {:?}\nNANOCLAW_PROVIDER = \"mock\"\nIDLE_TIMEOUT = 600000\n",
            nanoclaw_testkit::bin("nanoclaw-agent")
        ),
    )
    .unwrap();
    let h = Host::open(Home::new(th.path())).await.unwrap();
    h.start().await.unwrap();
    h.db.call(|c| {
        let ag = db::agent_groups::create(c, "Agent", "agent")?;
        let mg = db::messaging_groups::create(c, "test", "chat", None, false, "public")?;
        db::wirings::create(c, &NewWiring::every_message(&mg.id, &ag.id))
    })
    .await
    .unwrap();
    let ev = InboundEvent {
        channel_type: "test".into(),
        platform_id: "chat".into(),
        sender_handle: "u".into(),
        sender_name: "u".into(),
        text: "mock:sleep 60000".into(),
        ..Default::default()
    };
    h.route(ev).await.unwrap();
    let status = |th: &TestHome| -> Option<String> {
        let dir = th.session_dirs().into_iter().next()?;
        Connection::open(dir.join("inbound.db"))
            .ok()?
            .query_row("SELECT status FROM messages_in LIMIT 1", [], |r| r.get(0))
            .ok()
    };
    // The barrier: the runner took the message (its `processing` ack reached inbound.db).
    assert!(
        eventually(Duration::from_secs(30), || {
            (status(&th).as_deref() == Some("processing")).then_some(())
        })
        .is_some(),
        "the runner never took the message"
    );
    h.shutdown().await;
    assert_eq!(h.running_tasks(), 0, "no host task outlives shutdown");
    assert!(runner_pids(th.path()).is_empty(), "the runner is gone");
    assert_eq!(
        status(&th).as_deref(),
        Some("pending"),
        "the stopped runner's turn was put back for a retry before shutdown returned"
    );
}
