//! A channel written outside the host crate plugs in through the same interface as ours: it
//! implements `Channel`, reaches the host only through its `ChannelContext` (route, state,
//! staging, presses, shutdown), and its replies come back through `send`.

mod support;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use nanoclaw_host::channels::{
    Capabilities, Channel, ChannelContext, InboundEvent, OutboundItem, Press, PressOutcome,
    SendError,
};
use support::eventually;

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
    let lo = Arc::new(Loopback::default());
    let (_th, h) = support::host_with(&[("NANOCLAW_PROVIDER", "mock")], vec![lo.clone()]).await;
    support::wire(&h, "Loop agent", "loop-agent", "loop", "loop:1").await;
    let lo2 = lo.clone();
    let ctx = eventually(Duration::from_secs(5), move || lo2.ctx.get().cloned())
        .await
        .expect("started");

    let out = ctx
        .route(InboundEvent {
            sender_name: "Ann".into(),
            platform_message_id: Some("m1".into()),
            ..support::message("loop", "loop:1", "ann", "hello from outside")
        })
        .await
        .unwrap();
    assert_eq!(out.accepted.len(), 1);
    let lo2 = lo.clone();
    let sent = eventually(Duration::from_secs(30), move || {
        let s = lo2.sent.lock().unwrap().clone();
        (!s.is_empty()).then_some(s)
    })
    .await
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
