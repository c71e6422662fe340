//! Router behaviour on a real host over real SQLite files: session modes and isolation, engage
//! modes, sender scope, accumulate, unknown-sender policies, fan-out, concurrent first messages.

mod support;

use std::sync::Arc;

use nanoclaw_host::channels::InboundEvent;
use nanoclaw_host::db::{self, wirings::NewWiring};
use nanoclaw_host::Host;
use nanoclaw_protocol::status::{
    EngageMode, IgnoredMessagePolicy, SenderScope, SessionMode, UnknownSenderPolicy,
};
use nanoclaw_testkit::TestHome;
use rusqlite::Connection;
use support::host;

/// A message from `sender` in group chat `platform` of the adapter-less `test` channel.
fn ev(platform: &str, sender: &str, text: &str) -> InboundEvent {
    InboundEvent {
        is_group: true,
        ..support::message("test", platform, sender, text)
    }
}

/// Creates agent group `folder`, chat `platform` (policy), and a wiring configured by `f`.
async fn wire(
    h: &Arc<Host>,
    folder: &str,
    platform: &str,
    policy: UnknownSenderPolicy,
    f: impl FnOnce(&mut NewWiring) + Send + 'static,
) -> (String, String) {
    let (folder, platform) = (folder.to_string(), platform.to_string());
    h.db.call(move |c| {
        let ag = match db::agent_groups::by_folder(c, &folder)? {
            Some(g) => g,
            None => db::agent_groups::create(c, &folder, &folder)?,
        };
        let mg = match db::messaging_groups::find(c, "test", &platform)? {
            Some(m) => m,
            None => {
                db::messaging_groups::create(c, "test", &platform, Some(&platform), true, policy)?
            }
        };
        let mut w = NewWiring::new(&mg.id, &ag.id);
        f(&mut w);
        db::wirings::create(c, &w)?;
        Ok((ag.id, mg.id))
    })
    .await
    .unwrap()
}

/// Routes `text` from user `u` into `chat`'s thread.
async fn in_thread(h: &Arc<Host>, chat: &str, thread: &str, text: &str) -> String {
    let ev = InboundEvent {
        thread_id: Some(thread.into()),
        ..ev(chat, "u", text)
    };
    h.route(ev).await.unwrap().accepted[0].session_id.clone()
}

/// Wires `folder` to `chat` engaging on every message, with a session mode.
async fn wire_all(h: &Arc<Host>, folder: &str, chat: &str, mode: SessionMode) -> (String, String) {
    wire(h, folder, chat, UnknownSenderPolicy::Public, move |w| {
        w.engage_mode = EngageMode::Pattern;
        w.engage_pattern = Some(".");
        w.session_mode = mode;
    })
    .await
}

fn count(h: &Arc<Host>, sql: &str) -> i64 {
    h.db.with(|c| Ok(c.query_row(sql, [], |r| r.get(0))?))
        .unwrap()
}

fn rows_in(th: &TestHome, session: &str) -> Vec<(i64, i64, String)> {
    let c = Connection::open(support::session_dir(th, session).join("inbound.db")).unwrap();
    let mut st = c
        // Routed rows only: a reply the runner sends to the adapter-less `test` channel is
        // dropped, and the agent's note about it is a `system` row.
        .prepare("SELECT seq, trigger, content FROM messages_in WHERE kind = 'chat' ORDER BY seq")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_modes_and_isolation() {
    let (_th, h) = host(&[]).await;
    // shared: threads of one chat share a session.
    wire_all(&h, "shared", "chat-shared", SessionMode::Shared).await;
    let a = in_thread(&h, "chat-shared", "t1", "a").await;
    assert_eq!(a, in_thread(&h, "chat-shared", "t2", "b").await);
    // per-thread: one session per thread.
    wire_all(&h, "threads", "chat-threads", SessionMode::PerThread).await;
    let a = in_thread(&h, "chat-threads", "t1", "a").await;
    assert_ne!(a, in_thread(&h, "chat-threads", "t2", "b").await);
    assert_eq!(a, in_thread(&h, "chat-threads", "t1", "c").await);
    // agent-shared: two chats of one agent share one session.
    for chat in ["chat-as-1", "chat-as-2"] {
        wire_all(&h, "everywhere", chat, SessionMode::AgentShared).await;
    }
    let a = h.route(ev("chat-as-1", "u", "a")).await.unwrap();
    let b = h.route(ev("chat-as-2", "u", "b")).await.unwrap();
    assert_eq!(a.accepted[0].session_id, b.accepted[0].session_id);
    // separate agent groups on one chat: separate sessions under separate agent folders.
    wire_all(&h, "alpha", "chat-sep", SessionMode::Shared).await;
    wire_all(&h, "beta", "chat-sep", SessionMode::Shared).await;
    let r = h.route(ev("chat-sep", "u", "x")).await.unwrap();
    assert_eq!(r.accepted.len(), 2, "fan-out to both agents");
    assert_ne!(r.accepted[0].session_id, r.accepted[1].session_id);
    let ags: Vec<String> =
        h.db.with(|c| {
            let mut out = vec![];
            for a in &r.accepted {
                out.push(db::sessions::get(c, &a.session_id)?.unwrap().agent_group_id);
            }
            Ok(out)
        })
        .unwrap();
    assert_ne!(ags[0], ags[1]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_modes_scope_and_accumulate() {
    let (th, h) = host(&[]).await;
    wire(&h, "pat", "chat-pat", UnknownSenderPolicy::Public, |w| {
        w.engage_mode = EngageMode::Pattern;
        w.engage_pattern = Some("(?i)^@andy\\b");
    })
    .await;
    assert!(h
        .route(ev("chat-pat", "u", "hello all"))
        .await
        .unwrap()
        .accepted
        .is_empty());
    assert_eq!(
        h.route(ev("chat-pat", "u", "@Andy hi"))
            .await
            .unwrap()
            .accepted
            .len(),
        1
    );

    wire(&h, "men", "chat-men", UnknownSenderPolicy::Public, |_| {}).await;
    assert!(h
        .route(ev("chat-men", "u", "no mention"))
        .await
        .unwrap()
        .accepted
        .is_empty());
    assert_eq!(
        h.route(InboundEvent {
            is_mention: true,
            ..ev("chat-men", "u", "hey bot")
        })
        .await
        .unwrap()
        .accepted
        .len(),
        1
    );
    // In a DM every message engages.
    assert_eq!(
        h.route(InboundEvent {
            is_group: false,
            ..ev("chat-men", "u", "dm")
        })
        .await
        .unwrap()
        .accepted
        .len(),
        1
    );

    wire(
        &h,
        "sticky",
        "chat-sticky",
        UnknownSenderPolicy::Public,
        |w| {
            w.engage_mode = EngageMode::MentionSticky;
            w.session_mode = SessionMode::PerThread;
        },
    )
    .await;
    let t = |id: &str, text: &str, m: bool| InboundEvent {
        thread_id: Some(id.into()),
        is_mention: m,
        ..ev("chat-sticky", "u", text)
    };
    assert!(h
        .route(t("t1", "before", false))
        .await
        .unwrap()
        .accepted
        .is_empty());
    assert_eq!(
        h.route(t("t1", "@bot", true)).await.unwrap().accepted.len(),
        1
    );
    assert_eq!(
        h.route(t("t1", "after", false))
            .await
            .unwrap()
            .accepted
            .len(),
        1,
        "sticky once mentioned"
    );
    assert!(h
        .route(t("t2", "other thread", false))
        .await
        .unwrap()
        .accepted
        .is_empty());

    // accumulate: non-engaging messages are stored as context (trigger=0).
    wire(&h, "acc", "chat-acc", UnknownSenderPolicy::Public, |w| {
        w.ignored_message_policy = IgnoredMessagePolicy::Accumulate;
    })
    .await;
    let r = h
        .route(ev("chat-acc", "u", "background chatter"))
        .await
        .unwrap();
    assert_eq!(r.accepted.len(), 1);
    assert!(!r.accepted[0].trigger);
    let rows = rows_in(&th, &r.accepted[0].session_id);
    assert_eq!(rows[0].1, 0);

    // sender_scope=known: strangers are refused (and audited) even on a public chat.
    let (ag, _) = wire(
        &h,
        "scoped",
        "chat-scoped",
        UnknownSenderPolicy::Public,
        |w| {
            w.engage_mode = EngageMode::Pattern;
            w.engage_pattern = Some(".");
            w.sender_scope = SenderScope::Known;
        },
    )
    .await;
    assert!(h
        .route(ev("chat-scoped", "stranger", "hi"))
        .await
        .unwrap()
        .accepted
        .is_empty());
    assert_eq!(
        count(
            &h,
            "SELECT COUNT(*) FROM unregistered_senders WHERE reason='sender_scope_not_member'"
        ),
        1
    );
    h.db.with(|c| Ok(db::users::add_member(c, "test:friend", &ag, None)?))
        .unwrap_err(); // user row must exist first
    h.route(ev("chat-scoped", "friend", "hi")).await.unwrap();
    h.db.with(|c| Ok(db::users::add_member(c, "test:friend", &ag, None)?))
        .unwrap();
    assert_eq!(
        h.route(ev("chat-scoped", "friend", "hi again"))
            .await
            .unwrap()
            .accepted
            .len(),
        1
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_senders_and_chats() {
    let (_th, h) = host(&[]).await;
    wire(
        &h,
        "strict",
        "chat-strict",
        UnknownSenderPolicy::Strict,
        |w| {
            w.engage_mode = EngageMode::Pattern;
            w.engage_pattern = Some(".");
        },
    )
    .await;
    for _ in 0..3 {
        let r = h
            .route(ev("chat-strict", "intruder", "let me in"))
            .await
            .unwrap();
        assert!(r.accepted.is_empty());
        assert!(r.dropped.is_some());
    }
    assert_eq!(
        count(&h, "SELECT message_count FROM unregistered_senders WHERE reason='unknown_sender_strict' AND user_id='test:intruder'"),
        3,
        "strict drops are audited with a count (NanoClaw v2's reason, one row per chat)"
    );
    // An owner is known everywhere.
    h.db.with(|c| {
        db::users::ensure(c, "test:boss", "test", None)?;
        db::users::grant(c, "test:boss", "owner", None, None)
    })
    .unwrap();
    assert_eq!(
        h.route(ev("chat-strict", "boss", "hi"))
            .await
            .unwrap()
            .accepted
            .len(),
        1
    );
    // request_approval parks the message instead of losing it.
    wire(
        &h,
        "ask",
        "chat-ask",
        UnknownSenderPolicy::RequestApproval,
        |w| {
            w.engage_mode = EngageMode::Pattern;
            w.engage_pattern = Some(".");
        },
    )
    .await;
    assert!(h
        .route(ev("chat-ask", "newbie", "please"))
        .await
        .unwrap()
        .accepted
        .is_empty());
    assert_eq!(count(&h, "SELECT COUNT(*) FROM pending_sender_approvals WHERE sender_identity='test:newbie' AND original_message LIKE '%please%'"), 1);
    // In NanoClaw v2's shape: the approver chosen now (an owner), the event as v2's JSON.
    assert_eq!(count(&h, "SELECT COUNT(*) FROM pending_sender_approvals WHERE approver_user_id IN ('cli:local', 'test:boss') AND json_extract(original_message, '$.channelType')='test' AND json_extract(json_extract(original_message, '$.message.content'), '$.text')='please'"), 1);
    // A second message while the first waits is not parked again (v2: one in flight).
    h.route(ev("chat-ask", "newbie", "hello?")).await.unwrap();
    assert_eq!(
        count(&h, "SELECT COUNT(*) FROM pending_sender_approvals"),
        1
    );
    // An unknown chat is recorded and audited, nothing routed.
    assert!(h
        .route(ev("chat-nobody-wired", "u", "hello?"))
        .await
        .unwrap()
        .accepted
        .is_empty());
    assert_eq!(
        count(
            &h,
            "SELECT COUNT(*) FROM messaging_groups WHERE platform_id='chat-nobody-wired'"
        ),
        1
    );
    assert_eq!(
        count(
            &h,
            "SELECT COUNT(*) FROM unregistered_senders WHERE reason='no_agent_wired'"
        ),
        1
    );
    // Oversized text: a clear refusal and an audit row, never a panic.
    let big = "x".repeat(1024 * 1024);
    let r = h.route(ev("chat-strict", "boss", &big)).await.unwrap();
    assert!(r.dropped.unwrap().contains("too large"));
    assert_eq!(
        count(
            &h,
            "SELECT COUNT(*) FROM unregistered_senders WHERE reason='bad_input'"
        ),
        1
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_first_messages_make_one_session() {
    let (th, h) = host(&[]).await;
    wire_all(&h, "busy", "chat-new", SessionMode::Shared).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let h = h.clone();
            tokio::spawn(async move {
                h.route(ev("chat-new", "u", &format!("m{i}")))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut sessions = std::collections::HashSet::new();
    for t in tasks {
        for a in t.await.unwrap().accepted {
            sessions.insert(a.session_id);
        }
    }
    assert_eq!(sessions.len(), 1);
    assert_eq!(count(&h, "SELECT COUNT(*) FROM sessions"), 1);
    let rows = rows_in(&th, sessions.iter().next().unwrap());
    assert_eq!(rows.len(), 50);
    let seqs: std::collections::HashSet<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(seqs.len(), 50);
    assert!(seqs.iter().all(|s| s % 2 == 0), "host seqs are even");
    h.shutdown().await;
}
