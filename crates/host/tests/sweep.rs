//! The sweep: a session whose files are broken is logged and skipped, and the others still get
//! their pass (here: a due outbound row is settled).

mod support;

use nanoclaw_host::sweep::Sweeper;
use nanoclaw_host::{db, sessions, Host};
use nanoclaw_protocol::Home;
use rusqlite::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_session_does_not_stop_the_sweep() {
    // Opened, not started: the test runs one sweep pass itself.
    let th = support::home(&[]);
    let home = Home::new(th.path());
    let h = Host::open(home.clone()).await.unwrap();
    let (broken, good) =
        h.db.call(|c| {
            let ag = db::agent_groups::create(c, "A", "a")?;
            Ok((
                db::sessions::create(c, &ag.id, None, None)?,
                db::sessions::create(c, &ag.id, None, None)?,
            ))
        })
        .await
        .unwrap();
    for s in [&broken, &good] {
        sessions::provision(&home, s).unwrap();
    }
    let bad = home.session(&broken.agent_group_id, &broken.id).unwrap();
    std::fs::write(
        bad.inbound_db(),
        b"this is not a database, not even close....",
    )
    .unwrap();
    std::fs::write(
        bad.outbound_db(),
        b"neither is this one, it is just some bytes.",
    )
    .unwrap();
    let ok = home.session(&good.agent_group_id, &good.id).unwrap();
    Connection::open(ok.outbound_db())
        .unwrap()
        .execute(
            "INSERT INTO messages_out(id, seq, timestamp, kind, platform_id, channel_type, content)
             VALUES ('out-1', 1, '2026-01-01T00:00:00.000Z', 'chat', 'x', 'nowhere', '{\"text\":\"hi\"}')",
            [],
        )
        .unwrap();

    let mut sweeper = Sweeper::default();
    sweeper.once(&h).await.expect("the sweep itself succeeds");
    let status: String = Connection::open(ok.inbound_db())
        .unwrap()
        .query_row(
            "SELECT status FROM delivered WHERE message_out_id = 'out-1'",
            [],
            |r| r.get(0),
        )
        .expect("the good session got its pass");
    assert_eq!(status, "failed", "no `nowhere` channel: an audited drop");
    h.shutdown().await;
}
