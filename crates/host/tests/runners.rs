//! Runner lifecycle on a real host with the real runner binary: the concurrency cap queues the
//! extra session and runs it when a slot frees.

mod support;

use std::time::{Duration, Instant};

use nanoclaw_protocol::status::MessageStatus;
use nanoclaw_testkit::runner_pids;
use support::Turns;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cap_queues_extra_sessions_and_runs_them_when_a_slot_frees() {
    let (th, h) = support::host(&[
        ("MAX_CONCURRENT_CONTAINERS", "2"),
        ("IDLE_TIMEOUT", "600000"),
        ("NANOCLAW_SWEEP_INTERVAL_MS", "100"),
    ])
    .await;
    let chats: Vec<String> = (0..3).map(|i| format!("chat-{i}")).collect();
    for (i, chat) in chats.iter().enumerate() {
        support::wire(
            &h,
            &format!("agent {i}"),
            &format!("agent-{i}"),
            "test",
            chat,
        )
        .await;
    }
    let mut turns = Turns::watch(&h);
    let mut ids = vec![];
    for chat in &chats {
        let r = h
            .route(support::message("test", chat, "u", "mock:sleep 700"))
            .await
            .unwrap();
        ids.push(r.accepted[0].message_id.clone());
    }
    // While the first two work, the third waits in the queue: never more than two runners.
    // Sampled until every turn has ended, the barrier for "no runner is left to count".
    let t0 = Instant::now();
    let mut max_seen = 0;
    let all_ended = |turns: &mut Turns| ids.iter().all(|id| turns.ended().contains_key(id));
    while !all_ended(&mut turns) && t0.elapsed() < Duration::from_secs(30) {
        max_seen = max_seen.max(runner_pids(th.path()).len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for id in &ids {
        assert_eq!(
            turns.ended().get(id),
            Some(&MessageStatus::Completed),
            "all three sessions answered"
        );
    }
    assert!(max_seen <= 2, "cap exceeded: {max_seen} runners at once");
    assert!(
        t0.elapsed() >= Duration::from_millis(1400),
        "third session ran after a slot freed"
    );
    h.shutdown().await;
    assert!(runner_pids(th.path()).is_empty());
}
