//! Agent-to-agent: a row addressed to another agent lands in its session, its answer comes back
//! to the asking session; an agent outside the sender's destinations is refused.

mod support;

use std::time::Duration;

use nanoclaw_host::db;
use rusqlite::{params, Connection};
use support::{eventually, Turns};

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
/// insert's transaction: the session's live runner may be writing too). Returns its id.
fn agent_writes(dir: &std::path::Path, to_group: &str, text: &str) -> String {
    let id = nanoclaw_protocol::new_id("out");
    nanoclaw_testkit::runner_insert(
        dir,
        &id,
        "agent",
        to_group,
        &serde_json::json!({"text": text}),
        &[],
    );
    id
}

/// The `delivered` status of outbound row `id` of the session in `dir`, once recorded.
fn delivery_of(dir: &std::path::Path, id: &str) -> Option<String> {
    Connection::open(dir.join("inbound.db"))
        .ok()?
        .query_row(
            "SELECT status FROM delivered WHERE message_out_id = ?1",
            [id],
            |r| r.get(0),
        )
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_another_agent_and_get_the_answer_back() {
    let (th, h) = support::host(&[]).await;
    let (asker, _) = support::wire(&h, "Asker", "asker", "test", "chat-a").await;
    let asker2 = asker.clone();
    let (helper, stranger) =
        h.db.call(move |c| {
            let b = db::agent_groups::create(c, "Helper", "helper")?;
            let s = db::agent_groups::create(c, "Stranger", "stranger")?;
            c.execute(
                "INSERT INTO agent_destinations(agent_group_id, local_name, target_type, target_id, created_at)
                 VALUES (?1, 'helper', 'agent', ?2, 't')",
                params![asker2, b.id],
            )?;
            Ok((b.id, s.id))
        })
        .await
        .unwrap();
    let mut turns = Turns::watch(&h);
    let routed = h
        .route(support::message("test", "chat-a", "u", "start"))
        .await
        .unwrap();
    let (a_sess, start) = (
        routed.accepted[0].session_id.clone(),
        routed.accepted[0].message_id.clone(),
    );
    let a_dir = support::session_dir(&th, &a_sess);
    // The asker's own turn is over (its echo delivered) so its runner is idle; then "the
    // agent" asks the helper.
    turns.done(&start, Duration::from_secs(10)).await;
    let (a2, helper_id, stranger_id) = (a_dir.clone(), helper.clone(), stranger.clone());
    let psst = tokio::task::spawn_blocking(move || {
        agent_writes(&a2, &helper_id, "please help");
        agent_writes(&a2, &stranger_id, "psst")
    })
    .await
    .unwrap();

    // The helper's session got the question, tagged with where it came from.
    let (th2, helper2) = (th.path().to_path_buf(), helper.clone());
    let helper_dir = eventually(Duration::from_secs(15), move || {
        std::fs::read_dir(th2.join("data/v2-sessions").join(&helper2))
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join("inbound.db").exists())
    })
    .await
    .expect("helper session created");
    let got = eventually(Duration::from_secs(15), move || {
        rows(&helper_dir)
            .into_iter()
            .find(|r| r.2.contains("please help"))
    })
    .await
    .expect("question delivered to the helper");
    assert_eq!(got.0, "agent");
    assert_eq!(got.1.as_deref(), Some(a_sess.as_str()));
    assert!(got.2.contains(&format!("agent:{asker}")));
    // The helper's (mock) answer comes back into the asking session.
    let a3 = a_dir.clone();
    let back = eventually(Duration::from_secs(15), move || {
        rows(&a3)
            .into_iter()
            .find(|r| r.2.contains("echo: please help"))
    })
    .await;
    assert!(back.is_some(), "answer not routed back: {:?}", rows(&a_dir));
    assert_eq!(back.unwrap().0, "agent");
    // No destination for the stranger: refused (recorded, so nothing more will come of it),
    // and nothing created for it.
    let (a4, psst2) = (a_dir.clone(), psst.clone());
    let refused = eventually(Duration::from_secs(15), move || delivery_of(&a4, &psst2)).await;
    assert_eq!(
        refused.as_deref(),
        Some("failed"),
        "the row to the stranger"
    );
    assert!(
        !th.path().join("data/v2-sessions").join(&stranger).exists(),
        "a session was created for an agent outside the ACL"
    );
    h.shutdown().await;
}
