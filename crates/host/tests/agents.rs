//! Agent-to-agent: a row addressed to another agent lands in its session, its answer comes back
//! to the asking session; an agent outside the sender's destinations is refused.

use std::time::Duration;

use nanoclaw_host::channels::InboundEvent;
use nanoclaw_host::db::{self, wirings::NewWiring};
use nanoclaw_host::Host;
use nanoclaw_protocol::status::UnknownSenderPolicy;
use nanoclaw_protocol::Home;
use nanoclaw_testkit::{eventually, TestHome};
use rusqlite::{params, Connection};

fn rows(dir: &std::path::Path) -> Vec<(String, Option<String>, String)> {
    let Ok(c) = Connection::open(dir.join("inbound.db")) else {
        return vec![];
    };
    let Ok(mut st) =
        c.prepare("SELECT channel_type, source_session_id, content FROM messages_in ORDER BY seq")
    else {
        return vec![];
    };
    st.query_map([], |r| {
        Ok((
            r.get::<_, Option<String>>(0)?.unwrap_or_default(),
            r.get(1)?,
            r.get(2)?,
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Writes a row into a session's outbound.db as its runner would (odd seq, taken inside the
/// insert's transaction: the session's live runner may be writing too).
fn agent_writes(dir: &std::path::Path, to_group: &str, text: &str) {
    nanoclaw_testkit::runner_insert(
        dir,
        &nanoclaw_protocol::new_id("out"),
        "agent",
        to_group,
        &serde_json::json!({"text": text}),
        &[],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_another_agent_and_get_the_answer_back() {
    let th = TestHome::new();
    std::fs::write(
        th.path().join("nanoclaw.toml"),
        format!(
            "NANOCLAW_RUNTIME = \"process\"\nNANOCLAW_AGENT_BIN = {:?}\n",
            nanoclaw_testkit::bin("nanoclaw-agent")
        ),
    )
    .unwrap();
    let h = Host::open(Home::new(th.path())).await.unwrap();
    h.start().await.unwrap();
    let (asker, helper, stranger) = h
        .db
        .call(|c| {
            let a = db::agent_groups::create(c, "Asker", "asker")?;
            let b = db::agent_groups::create(c, "Helper", "helper")?;
            let s = db::agent_groups::create(c, "Stranger", "stranger")?;
            let mg = db::messaging_groups::create(c, "test", "chat-a", None, false, UnknownSenderPolicy::Public)?;
            let w = NewWiring::every_message(&mg.id, &a.id);
            db::wirings::create(c, &w)?;
            c.execute(
                "INSERT INTO agent_destinations(agent_group_id, local_name, target_type, target_id, created_at)
                 VALUES (?1, 'helper', 'agent', ?2, 't')",
                params![a.id, b.id],
            )?;
            Ok((a.id, b.id, s.id))
        })
        .await
        .unwrap();
    let ev = InboundEvent {
        channel_type: "test".into(),
        platform_id: "chat-a".into(),
        sender_handle: "u".into(),
        sender_name: "u".into(),
        text: "start".into(),
        ..Default::default()
    };
    let a_sess = h.route(ev).await.unwrap().accepted[0].session_id.clone();
    let a_dir = th
        .session_dirs()
        .into_iter()
        .find(|d| d.ends_with(&a_sess))
        .unwrap();
    // Wait for the asker's own echo so its runner is idle, then "the agent" asks the helper.
    let (a2, helper_id, stranger_id) = (a_dir.clone(), helper.clone(), stranger.clone());
    tokio::task::spawn_blocking(move || {
        eventually(Duration::from_secs(10), || {
            let c = Connection::open(a2.join("outbound.db")).ok()?;
            let n: i64 = c
                .query_row("SELECT COUNT(*) FROM messages_out", [], |r| r.get(0))
                .ok()?;
            (n >= 1).then_some(())
        })
        .expect("asker answered its chat");
        agent_writes(&a2, &helper_id, "please help");
        agent_writes(&a2, &stranger_id, "psst");
    })
    .await
    .unwrap();

    let (th2, a3, helper2, asker2, a_sess2) = (
        th.path().to_path_buf(),
        a_dir.clone(),
        helper.clone(),
        asker.clone(),
        a_sess.clone(),
    );
    tokio::task::spawn_blocking(move || {
        // The helper's session got the question, tagged with where it came from.
        let helper_dir = eventually(Duration::from_secs(15), || {
            std::fs::read_dir(th2.join("data/v2-sessions").join(&helper2))
                .ok()?
                .flatten()
                .map(|e| e.path())
                .find(|p| p.join("inbound.db").exists())
        })
        .expect("helper session created");
        let got = eventually(Duration::from_secs(15), || {
            rows(&helper_dir)
                .into_iter()
                .find(|r| r.2.contains("please help"))
        })
        .expect("question delivered to the helper");
        assert_eq!(got.0, "agent");
        assert_eq!(got.1.as_deref(), Some(a_sess2.as_str()));
        assert!(got.2.contains(&format!("agent:{asker2}")));
        // The helper's (mock) answer comes back into the asking session.
        let back = eventually(Duration::from_secs(15), || {
            rows(&a3)
                .into_iter()
                .find(|r| r.2.contains("echo: please help"))
        });
        assert!(back.is_some(), "answer not routed back: {:?}", rows(&a3));
        assert_eq!(back.unwrap().0, "agent");
    })
    .await
    .unwrap();
    // No destination for the stranger: refused, nothing created for it.
    let c = Connection::open(a_dir.join("inbound.db")).unwrap();
    let failed: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM delivered WHERE status='failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(failed >= 1);
    assert!(
        !th.path().join("data/v2-sessions").join(&stranger).exists(),
        "a session was created for an agent outside the ACL"
    );
    h.shutdown().await;
}
