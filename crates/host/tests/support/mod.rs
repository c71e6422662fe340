//! The setup the host's integration tests share: an in-process host on a throwaway home whose
//! runner is the real `nanoclaw-agent` run as a plain process, chats wired to agents, inbound
//! events, session folders, and the barriers tests wait on (a turn's `TurnDone`, a polled
//! condition off the async workers).
//!
//! `nanoclaw_testkit::TestHome` is the home underneath; what is here needs the host library,
//! which testkit (shared with the CLI tests, which drive the binaries) does not link.

// Each test binary includes this module and uses only part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nanoclaw_host::channels::{Channel, InboundEvent};
use nanoclaw_host::config::Settings;
use nanoclaw_host::db::{self, wirings::NewWiring};
use nanoclaw_host::{Host, HostEvent};
use nanoclaw_protocol::status::{MessageStatus, UnknownSenderPolicy};
use nanoclaw_protocol::Home;
use nanoclaw_testkit::TestHome;
use tokio::sync::broadcast;

/// A fresh home whose `nanoclaw.toml` runs runners as plain processes of the `nanoclaw-agent`
/// built next to the test, plus `settings` (`KEY = "value"` lines; the host reads every value
/// as text, so `"2"` is the same setting as `2`).
///
/// The file, not the environment: tests of one binary run in parallel in one process, and each
/// host must read only its own settings.
pub fn home(settings: &[(&str, &str)]) -> TestHome {
    let th = TestHome::new();
    let mut toml = format!(
        "NANOCLAW_RUNTIME = \"process\"\nNANOCLAW_AGENT_BIN = {:?}\n",
        nanoclaw_testkit::bin("nanoclaw-agent")
    );
    for (k, v) in settings {
        toml.push_str(&format!("{k} = {v:?}\n"));
    }
    std::fs::write(th.path().join("nanoclaw.toml"), toml).expect("write nanoclaw.toml");
    th
}

/// A started host on [`home`]`(settings)`.
pub async fn host(settings: &[(&str, &str)]) -> (TestHome, Arc<Host>) {
    host_with(settings, vec![]).await
}

/// [`host`] with the caller's channel adapters registered beside the ones settings enable.
pub async fn host_with(
    settings: &[(&str, &str)],
    channels: Vec<Arc<dyn Channel>>,
) -> (TestHome, Arc<Host>) {
    let th = home(settings);
    let h = Host::open_with(Home::new(th.path()), channels)
        .await
        .expect("open the host");
    h.start().await.expect("start the host");
    (th, h)
}

/// A home holding only `.env` (`secrets`) and `nanoclaw.toml` (`config`), no runner settings,
/// and the settings loaded from it: for parts of the host tested without a host.
pub fn settings(secrets: &str, config: &str) -> (TestHome, Home, Settings) {
    let th = TestHome::new();
    let home = Home::new(th.path());
    std::fs::write(home.env_file(), secrets).expect("write .env");
    std::fs::write(home.config_file(), config).expect("write nanoclaw.toml");
    let settings = Settings::load(&home).expect("load settings");
    (th, home, settings)
}

/// Creates agent group `folder` (display name `name`), a public one-to-one chat
/// `channel_type`/`platform_id`, and a wiring that engages on every message. Returns the
/// agent group's and the chat's ids.
pub async fn wire(
    h: &Host,
    name: &str,
    folder: &str,
    channel_type: &str,
    platform_id: &str,
) -> (String, String) {
    let (name, folder, channel_type, platform_id) = (
        name.to_string(),
        folder.to_string(),
        channel_type.to_string(),
        platform_id.to_string(),
    );
    h.db.call(move |c| {
        let ag = db::agent_groups::create(c, &name, &folder)?;
        let mg = db::messaging_groups::create(
            c,
            &channel_type,
            &platform_id,
            None,
            false,
            UnknownSenderPolicy::Public,
        )?;
        db::wirings::create(c, &NewWiring::every_message(&mg.id, &ag.id))?;
        Ok((ag.id, mg.id))
    })
    .await
    .expect("wire a chat to an agent")
}

/// A message `text` from user `sender` (handle and name) on `channel_type`/`platform_id`, the
/// other fields default.
pub fn message(channel_type: &str, platform_id: &str, sender: &str, text: &str) -> InboundEvent {
    InboundEvent {
        channel_type: channel_type.into(),
        platform_id: platform_id.into(),
        sender_handle: sender.into(),
        sender_name: sender.into(),
        text: text.into(),
        ..Default::default()
    }
}

/// The folder of session `session_id` (from the central DB, as `TestHome::session_dirs`).
pub fn session_dir(th: &TestHome, session_id: &str) -> PathBuf {
    th.session_dirs()
        .into_iter()
        .find(|d| d.ends_with(session_id))
        .unwrap_or_else(|| panic!("no folder for session {session_id}"))
}

/// `nanoclaw_testkit::eventually` on the blocking pool: its 10 ms sleeps would otherwise hold
/// one of the test runtime's two workers, which the host under test needs.
pub async fn eventually<T: Send + 'static>(
    limit: Duration,
    f: impl FnMut() -> Option<T> + Send + 'static,
) -> Option<T> {
    tokio::task::spawn_blocking(move || nanoclaw_testkit::eventually(limit, f))
        .await
        .expect("the polling task")
}

/// The `TurnDone` events of a host from the moment of [`Turns::watch`]: the barrier for "that
/// turn is over and its replies went through delivery". Watch before routing the message, as
/// a broadcast does not replay what was sent before subscribing.
pub struct Turns {
    rx: broadcast::Receiver<HostEvent>,
    done: HashMap<String, MessageStatus>,
}

impl Turns {
    /// Starts listening.
    pub fn watch(h: &Host) -> Self {
        Self {
            rx: h.subscribe(),
            done: HashMap::new(),
        }
    }

    /// Waits up to `limit` for the turn of inbound row `message_id` to end; its status
    /// (completed or failed).
    pub async fn done(&mut self, message_id: &str, limit: Duration) -> MessageStatus {
        let wait = async {
            loop {
                if let Some(status) = self.done.get(message_id) {
                    return *status;
                }
                match self.rx.recv().await {
                    Ok(ev) => self.record(ev),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        panic!("missed {n} host events: the test cannot tell which turns ended")
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        panic!("the host stopped before the turn of {message_id} ended")
                    }
                }
            }
        };
        tokio::time::timeout(limit, wait)
            .await
            .unwrap_or_else(|_| panic!("the turn of {message_id} did not end within {limit:?}"))
    }

    /// The turns ended so far (inbound row id → status), without waiting.
    pub fn ended(&mut self) -> &HashMap<String, MessageStatus> {
        loop {
            match self.rx.try_recv() {
                Ok(ev) => self.record(ev),
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    panic!("missed {n} host events: the test cannot tell which turns ended")
                }
                Err(_) => return &self.done,
            }
        }
    }

    fn record(&mut self, ev: HostEvent) {
        if let HostEvent::TurnDone { message_id, status } = ev {
            self.done.insert(message_id, status);
        }
    }
}
