//! What the host says itself — notices and approval cards — does not go through the intents
//! of agent rows (docs/ARCHITECTURE.md, "One send path"): each is one attempt, never retried
//! or replayed, and a card that could not be sent withdraws its request and tells the agent.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use nanoclaw_host::channels::{Capabilities, Channel, ChannelContext, OutboundItem, SendError};
use nanoclaw_host::db::{self, wirings::NewWiring};
use nanoclaw_protocol::status::UnknownSenderPolicy;

/// A platform that is down: every send fails, and is counted.
#[derive(Default)]
struct Down {
    sends: AtomicUsize,
}

#[async_trait]
impl Channel for Down {
    fn channel_type(&self) -> &'static str {
        "down"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    async fn start(self: Arc<Self>, _ctx: ChannelContext) -> anyhow::Result<()> {
        Ok(())
    }
    async fn send(&self, _item: &OutboundItem) -> Result<Option<String>, SendError> {
        self.sends.fetch_add(1, Ordering::SeqCst);
        Err(anyhow::anyhow!("platform unreachable").into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_message_is_one_attempt_and_a_lost_card_withdraws_its_request() {
    let down = Arc::new(Down::default());
    let (_th, h) = support::host_with(
        &[
            ("NANOCLAW_PROVIDER", "mock"),
            ("NANOCLAW_SEND_RETRY_BASE_MS", "1"),
        ],
        vec![down.clone()],
    )
    .await;
    let home = h.home.clone();
    let sess = h
        .db
        .call(move |c| {
            let ag = db::agent_groups::create(c, "Agent", "agent")?;
            let mg = db::messaging_groups::create(
                c,
                "down",
                "dm:owner",
                None,
                false,
                UnknownSenderPolicy::Strict,
            )?;
            db::wirings::create(c, &NewWiring::every_message(&mg.id, &ag.id))?;
            let w = db::wirings::for_messaging_group(c, &mg.id)?.remove(0);
            db::users::ensure(c, "down:owner", "down", Some("Owner"))?;
            // A scoped admin is asked before the owners (the terminal's among them).
            db::users::grant(c, "down:owner", "admin", Some(&ag.id), None)?;
            c.execute(
                "INSERT INTO user_dms(user_id, channel_type, messaging_group_id, resolved_at) VALUES ('down:owner', 'down', ?1, ?2)",
                [&mg.id, &db::now()],
            )?;
            nanoclaw_host::sessions::resolve(c, &home, &w, None)
        })
        .await
        .unwrap();

    // A notice: one attempt, the failure logged, nothing kept to retry.
    h.notify("down", "dm:owner", None, "hello").await;
    assert_eq!(down.sends.load(Ordering::SeqCst), 1);

    // An approval card the approver's platform refuses: the agent hears why at once, and no
    // request is left waiting for a decision on a card nobody saw.
    let err = nanoclaw_host::access::approvals::request(
        &h,
        &sess,
        "install_packages",
        &serde_json::json!({"apt": ["jq"], "reason": "parse JSON"}),
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("the approval card could not be sent") && err.contains("platform unreachable"),
        "{err}"
    );
    assert_eq!(down.sends.load(Ordering::SeqCst), 2);
    let (pending, intents): (i64, i64) =
        h.db.call(|c| {
            Ok((
                c.query_row("SELECT COUNT(*) FROM pending_approvals", [], |r| r.get(0))?,
                c.query_row("SELECT COUNT(*) FROM delivery_intents", [], |r| r.get(0))?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(pending, 0, "the request was withdrawn");
    assert_eq!(
        intents, 0,
        "host messages leave no intent to reconcile or replay"
    );

    // The barrier for "never retried": a shutdown waits for every host task, and no send
    // happened meanwhile.
    h.shutdown().await;
    assert_eq!(down.sends.load(Ordering::SeqCst), 2);
}
