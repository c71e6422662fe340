//! A channel written outside the host crate plugs in through the same interface as ours: it
//! implements `Channel`, reaches the host only through its `ChannelContext` (route, state,
//! staging, presses, shutdown), and its replies come back through `send`.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use nanoclaw_host::channels::{
    Capabilities, Channel, ChannelContext, InboundEvent, OutboundItem, Press, PressOutcome,
    SendError,
};
use nanoclaw_host::db::{self, wirings::NewWiring};
use nanoclaw_host::Host;
use nanoclaw_protocol::status::UnknownSenderPolicy;
use nanoclaw_protocol::Home;
use nanoclaw_testkit::{eventually, TestHome};

/// A loopback "platform": what the host sends is kept; the test plays the users.
#[derive(Default)]
struct Loopback {
    ctx: OnceLock<ChannelContext>,
    sent: Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl Channel for Loopback {
    fn channel_type(&self) -> &'static str {
        "loop"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    async fn start(self: Arc<Self>, ctx: ChannelContext) -> anyhow::Result<()> {
        let _ = self.ctx.set(ctx);
        Ok(())
    }
    async fn send(&self, item: &OutboundItem) -> Result<Option<String>, SendError> {
        let text = nanoclaw_host::channels::text_of(&item.content).unwrap_or_default();
        let mut sent = self.sent.lock().unwrap();
        sent.push((item.platform_id.clone(), text));
        Ok(Some(format!("loop-{}", sent.len())))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_from_outside_the_host_crate_plugs_in() {
    let th = TestHome::new();
    std::fs::write(
        th.path().join("nanoclaw.toml"),
        format!(
            "NANOCLAW_RUNTIME = \"process\"\nNANOCLAW_AGENT_BIN = {:?}\nNANOCLAW_PROVIDER = \"mock\"\n",
            nanoclaw_testkit::bin("nanoclaw-agent")
        ),
    )
    .unwrap();
    let lo = Arc::new(Loopback::default());
    let h = Host::open_with(Home::new(th.path()), vec![lo.clone()])
        .await
        .unwrap();
    h.start().await.unwrap();
    h.db.call(|c| {
        let ag = db::agent_groups::create(c, "Loop agent", "loop-agent")?;
        let mg = db::messaging_groups::create(
            c,
            "loop",
            "loop:1",
            None,
            false,
            UnknownSenderPolicy::Public,
        )?;
        let w = NewWiring::every_message(&mg.id, &ag.id);
        db::wirings::create(c, &w)
    })
    .await
    .unwrap();
    let ctx = eventually(Duration::from_secs(5), || lo.ctx.get().cloned()).expect("started");

    let out = ctx
        .route(InboundEvent {
            channel_type: "loop".into(),
            platform_id: "loop:1".into(),
            sender_handle: "ann".into(),
            sender_name: "Ann".into(),
            text: "hello from outside".into(),
            platform_message_id: Some("m1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(out.accepted.len(), 1);
    let sent = eventually(Duration::from_secs(30), || {
        let s = lo.sent.lock().unwrap().clone();
        (!s.is_empty()).then_some(s)
    })
    .expect("a reply through send");
    assert_eq!(
        sent[0],
        ("loop:1".into(), "echo: hello from outside".into())
    );

    // Its own state survives in the host's DB; staging folders are private and distinct.
    ctx.set_state("cursor", "42").await.unwrap();
    assert_eq!(ctx.state("cursor").await.unwrap().as_deref(), Some("42"));
    let (a, b) = (
        ctx.staging_dir().await.unwrap(),
        ctx.staging_dir().await.unwrap(),
    );
    assert!(a.is_dir() && b.is_dir() && a != b);
    assert_eq!(ctx.setting("NANOCLAW_PROVIDER").as_deref(), Some("mock"));
    // A press naming no open question is refused by the host, whatever the adapter claims.
    let outcome = ctx
        .press(Press {
            question_id: "q-nope".into(),
            index: 0,
            platform_id: "loop:1".into(),
            platform_message_id: None,
            sender_handle: "ann".into(),
            sender_name: "Ann".into(),
        })
        .await;
    assert_eq!(outcome, PressOutcome::Gone);
    h.shutdown().await;
    tokio::time::timeout(Duration::from_secs(5), ctx.shutdown())
        .await
        .expect("the context sees the shutdown");
}
