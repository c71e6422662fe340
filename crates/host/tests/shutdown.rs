//! Shutdown waits for the host's own tasks: a runner stopped mid-turn has its exit handled
//! (its work put back for a retry) before `shutdown` returns, and no task is left running.

mod support;

use std::time::Duration;

use nanoclaw_testkit::{eventually, runner_pids, TestHome};
use rusqlite::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_a_stopped_runners_exit_handling() {
    let (th, h) = support::host(&[("NANOCLAW_PROVIDER", "mock"), ("IDLE_TIMEOUT", "600000")]).await;
    support::wire(&h, "Agent", "agent", "test", "chat").await;
    h.route(support::message("test", "chat", "u", "mock:sleep 60000"))
        .await
        .unwrap();
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
