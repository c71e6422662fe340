//! Runner lifecycle on a real host with the real runner binary: the concurrency cap queues the
//! extra session and runs it when a slot frees.

use std::time::{Duration, Instant};

use nanoclaw_host::channels::InboundEvent;
use nanoclaw_host::db::{self, wirings::NewWiring};
use nanoclaw_host::Host;
use nanoclaw_protocol::status::UnknownSenderPolicy;
use nanoclaw_protocol::Home;
use nanoclaw_testkit::{runner_pids, TestHome};
use rusqlite::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cap_queues_extra_sessions_and_runs_them_when_a_slot_frees() {
    let th = TestHome::new();
    std::fs::write(
        th.path().join("nanoclaw.toml"),
        format!("NANOCLAW_RUNTIME = \"process\"\nNANOCLAW_AGENT_BIN = {:?}\nMAX_CONCURRENT_CONTAINERS = 2\nIDLE_TIMEOUT = 600000\nNANOCLAW_SWEEP_INTERVAL_MS = 100\n", nanoclaw_testkit::bin("nanoclaw-agent")),
    )
    .unwrap();
    let h = Host::open(Home::new(th.path())).await.unwrap();
    h.start().await.unwrap();
    let chats: Vec<String> = (0..3).map(|i| format!("chat-{i}")).collect();
    for (i, chat) in chats.iter().enumerate() {
        let chat = chat.clone();
        h.db.call(move |c| {
            let ag = db::agent_groups::create(c, &format!("agent {i}"), &format!("agent-{i}"))?;
            let mg = db::messaging_groups::create(
                c,
                "test",
                &chat,
                None,
                false,
                UnknownSenderPolicy::Public,
            )?;
            let w = NewWiring::every_message(&mg.id, &ag.id);
            db::wirings::create(c, &w)
        })
        .await
        .unwrap();
    }
    let mut ids = vec![];
    for chat in &chats {
        let ev = InboundEvent {
            channel_type: "test".into(),
            platform_id: chat.clone(),
            sender_handle: "u".into(),
            sender_name: "u".into(),
            text: "mock:sleep 700".into(),
            ..Default::default()
        };
        let r = h.route(ev).await.unwrap();
        ids.push(r.accepted[0].message_id.clone());
    }
    // While the first two work, the third waits in the queue: never more than two runners.
    let t0 = Instant::now();
    let mut max_seen = 0;
    let done = |th: &TestHome| {
        th.session_dirs()
            .iter()
            .filter(|d| {
                Connection::open(d.join("inbound.db"))
                    .and_then(|c| {
                        c.query_row(
                            "SELECT COUNT(*) FROM messages_in WHERE status='completed'",
                            [],
                            |r| r.get::<_, i64>(0),
                        )
                    })
                    .unwrap_or(0)
                    == 1
            })
            .count()
    };
    while done(&th) < 3 && t0.elapsed() < Duration::from_secs(30) {
        max_seen = max_seen.max(runner_pids(th.path()).len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(done(&th), 3, "all three sessions answered");
    assert!(max_seen <= 2, "cap exceeded: {max_seen} runners at once");
    assert!(
        t0.elapsed() >= Duration::from_millis(1400),
        "third session ran after a slot freed"
    );
    h.shutdown().await;
    assert!(runner_pids(th.path()).is_empty());
}
