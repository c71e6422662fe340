//! The channels of a host: [`SPECS`] (every adapter this build has, with the settings that
//! enable it), the [`Registry`] of the enabled ones, and their supervised start.

use std::collections::HashMap;
use std::sync::Arc;

use super::{cli, Channel, ChannelContext, Fatal};
use crate::Host;

/// One adapter this build can run.
pub struct Spec {
    /// Its channel type.
    pub channel_type: &'static str,
    /// The settings that enable it (all must be set), for `status`, `doctor` and `setup`.
    pub enabled_by: &'static [&'static str],
    /// The adapter, when its settings enable it.
    pub build: fn(&nanoclaw_protocol::Home, &crate::config::Settings) -> Option<Arc<dyn Channel>>,
}

/// Every adapter of this build, the terminal first. Register a new channel here (one line,
/// behind its cargo feature).
pub static SPECS: &[Spec] = &[
    Spec {
        channel_type: cli::CHANNEL,
        enabled_by: &[],
        build: |home, _| Some(Arc::new(cli::CliChannel::new(home))),
    },
    #[cfg(feature = "telegram")]
    Spec {
        channel_type: super::telegram::CHANNEL,
        enabled_by: &["TELEGRAM_BOT_TOKEN"],
        build: |_, settings| super::telegram::from_settings(settings),
    },
];

/// Channel types this build has an adapter for (enabled or not).
pub fn compiled() -> Vec<&'static str> {
    SPECS.iter().map(|s| s.channel_type).collect()
}

/// Where a channel's connection stands.
#[derive(Debug, Clone)]
pub enum State {
    /// The first start is under way.
    Connecting,
    /// Started.
    Connected,
    /// The last start failed; the next one is at `next`.
    Retrying {
        /// The last error.
        reason: String,
        /// When the next try starts.
        next: std::time::Instant,
    },
    /// Gave up (a [`Fatal`] error after the host had started).
    Failed(String),
}

impl State {
    /// One line for `status` and `doctor`, e.g. "retrying (connection refused), next try in 8 s".
    pub fn describe(&self) -> String {
        match self {
            State::Connecting => "connecting".into(),
            State::Connected => "connected".into(),
            State::Retrying { reason, next } => format!(
                "retrying ({reason}), next try in {} s",
                next.saturating_duration_since(std::time::Instant::now())
                    .as_secs_f64()
                    .ceil() as u64
            ),
            State::Failed(reason) => format!("not connected: {reason}"),
        }
    }
}

/// The channels this host runs, by channel_type.
#[derive(Default, Clone)]
pub struct Registry {
    by_type: HashMap<&'static str, Arc<dyn Channel>>,
    states: Arc<std::sync::Mutex<HashMap<&'static str, State>>>,
}

impl Registry {
    /// Builds the channels their settings enable ([`SPECS`]).
    pub fn from_settings(
        home: &nanoclaw_protocol::Home,
        settings: &crate::config::Settings,
    ) -> Self {
        let mut r = Self::default();
        for spec in SPECS {
            r.extend((spec.build)(home, settings));
        }
        r
    }
    /// Adds an adapter when its settings enable it.
    pub fn extend(&mut self, ch: Option<Arc<dyn Channel>>) {
        if let Some(ch) = ch {
            self.register(ch);
        }
    }
    /// Adds an adapter.
    pub fn register(&mut self, ch: Arc<dyn Channel>) {
        self.by_type.insert(ch.channel_type(), ch);
    }
    /// The adapter for a channel type.
    pub fn get(&self, channel_type: &str) -> Option<&Arc<dyn Channel>> {
        self.by_type.get(channel_type)
    }
    /// All adapters.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Channel>> {
        self.by_type.values()
    }
    fn set_state(&self, channel: &'static str, st: State) {
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(channel, st);
    }
    /// Channel type → [`State::describe`], for `status` and `doctor`.
    pub fn states(&self) -> std::collections::BTreeMap<String, String> {
        let st = self.states.lock().unwrap_or_else(|p| p.into_inner());
        self.by_type
            .keys()
            .map(|k| {
                let s = st
                    .get(k)
                    .map_or_else(|| "not started".into(), State::describe);
                (k.to_string(), s)
            })
            .collect()
    }
}

/// How long the host waits for the first start of the platform channels before serving
/// without them (a slow or unreachable platform must not hold up the terminal).
const FIRST_START_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Starts every channel: the terminal at once (it is local; failing it stops the host), the
/// others each in their own task that retries with backoff (`NANOCLAW_CHANNEL_RETRY_MS`,
/// default 2 s, doubling up to 5 min) until the platform answers. A [`Fatal`] error during
/// the first seconds stops the host with that error.
pub async fn start_all(host: &Arc<Host>) -> anyhow::Result<()> {
    let mut firsts = Vec::new();
    for ch in host.channels.all().cloned().collect::<Vec<_>>() {
        let kind = ch.channel_type();
        if kind == cli::CHANNEL {
            ch.start(ChannelContext::new(host.clone(), kind)).await?;
            host.channels.set_state(kind, State::Connected);
            continue;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        host.channels.set_state(kind, State::Connecting);
        tokio::spawn(supervise(host.clone(), ch, tx));
        firsts.push(rx);
    }
    let deadline = tokio::time::Instant::now() + FIRST_START_WAIT;
    for rx in firsts {
        if let Ok(Ok(Err(e))) = tokio::time::timeout_at(deadline, rx).await {
            return Err(e);
        }
    }
    Ok(())
}

/// Starts one platform channel, retrying until it is up. `first` hears the first outcome: a
/// [`Fatal`] error, or Ok (started, or retrying in the background).
async fn supervise(
    host: Arc<Host>,
    ch: Arc<dyn Channel>,
    first: tokio::sync::oneshot::Sender<anyhow::Result<()>>,
) {
    let kind = ch.channel_type();
    let base = host.settings.millis("NANOCLAW_CHANNEL_RETRY_MS", 2000);
    let max = std::time::Duration::from_secs(300);
    let mut first = Some(first);
    let mut delay = base;
    let mut tries = 0u32;
    loop {
        tries += 1;
        match ch
            .clone()
            .start(ChannelContext::new(host.clone(), kind))
            .await
        {
            Ok(()) => {
                host.channels.set_state(kind, State::Connected);
                if tries > 1 {
                    tracing::info!(channel = kind, tries, "channel connected after retrying");
                }
                if let Some(f) = first.take() {
                    let _ = f.send(Ok(()));
                }
                return;
            }
            Err(e) if e.is::<Fatal>() => {
                tracing::error!(channel = kind, error = %e, "channel cannot start; not retrying");
                host.channels.set_state(kind, State::Failed(e.to_string()));
                if let Some(f) = first.take() {
                    let _ = f.send(Err(e));
                }
                return;
            }
            Err(e) => {
                let reason = format!("{e}");
                tracing::warn!(channel = kind, error = %reason, retry_in_ms = delay.as_millis() as u64, "channel cannot connect; retrying in the background");
                host.channels.set_state(
                    kind,
                    State::Retrying {
                        reason,
                        next: std::time::Instant::now() + delay,
                    },
                );
                if let Some(f) = first.take() {
                    let _ = f.send(Ok(()));
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = host.shutdown_signal() => return,
        }
        delay = (delay * 2).min(max);
    }
}
