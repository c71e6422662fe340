//! The channels of a host: [`SPECS`] (every adapter this build has, each declaring its
//! settings, its `doctor` checks and its `setup` step), the [`Registry`] of the enabled ones,
//! and their supervised start.

use std::collections::HashMap;
use std::sync::Arc;

use super::{cli, Channel, ChannelContext, Fatal};
use crate::config::Settings;
use crate::Host;

/// One adapter this build can run: everything `run`, `status`, `doctor` and `setup` know of it.
pub struct Spec {
    /// Its channel type.
    pub channel_type: &'static str,
    /// The settings it reads; the `required` ones enable it (all must be set).
    pub settings: &'static [SettingSpec],
    /// `doctor`'s checks of its configuration (beyond "enabled", which `doctor` reports itself).
    pub doctor: fn(&Settings) -> Vec<Check>,
    /// What `nanoclaw setup` asks for it; None: nothing to set up.
    pub setup: Option<SetupStep>,
    /// The adapter, when its settings enable it.
    pub build: fn(&nanoclaw_protocol::Home, &Settings) -> Option<Arc<dyn Channel>>,
}

/// One setting an adapter reads.
#[derive(Debug)]
pub struct SettingSpec {
    /// Its key (environment, `nanoclaw.toml` or `.env`).
    pub key: &'static str,
    /// A secret: `setup` hides it as it is typed and stores it in `.env` (mode 0600), never
    /// in `nanoclaw.toml`.
    pub secret: bool,
    /// The adapter stays off until it is set.
    pub required: bool,
    /// What it is for, one line.
    pub help: &'static str,
}

/// A channel's verdict on its own configuration, one `doctor` line.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// Fine.
    Ok(String),
    /// Works, with a caveat.
    Warn(String),
    /// Broken; the message says how to fix it.
    Fail(String),
}

/// What `nanoclaw setup` asks to enable a channel: one value, stored under one of its settings.
#[derive(Debug)]
pub struct SetupStep {
    /// The setting the answer is stored under (one of the spec's `settings`).
    pub key: &'static str,
    /// The wizard's question (an empty answer skips the channel).
    pub prompt: &'static str,
    /// The non-interactive form: `--<flag> VAR` reads the value from the environment variable
    /// VAR (a secret never comes from argv).
    pub flag: &'static str,
    /// That flag's line in `setup --help`.
    pub flag_help: &'static str,
    /// What the value is called when the flag's value is refused ("Telegram bot token is empty").
    pub noun: &'static str,
    /// What it is called when the answer to `prompt`, just asked, is refused ("the token …").
    pub short_noun: &'static str,
    /// Validates a value (`what` names it): the value to store, or one line saying why not.
    pub check: fn(what: &str, value: &str) -> Result<String, String>,
    /// When set, `setup` issues a pairing code for the channel once it is enabled and prints
    /// it after this line.
    pub pairing: Option<&'static str>,
}

impl Spec {
    /// The settings that enable it (all must be set).
    pub fn enabled_by(&self) -> impl Iterator<Item = &'static str> {
        self.settings.iter().filter(|s| s.required).map(|s| s.key)
    }

    /// The settings that enable it and are not set: empty when it is on.
    pub fn missing(&self, settings: &Settings) -> Vec<&'static str> {
        self.settings
            .iter()
            .filter(|s| s.required && s.read(settings).is_none())
            .map(|s| s.key)
            .collect()
    }

    /// The declaration of one of its settings.
    pub fn setting(&self, key: &str) -> Option<&'static SettingSpec> {
        self.settings.iter().find(|s| s.key == key)
    }
}

impl SettingSpec {
    /// Its value in `settings`.
    pub fn read(&self, settings: &Settings) -> Option<String> {
        if self.secret {
            settings.secret(self.key)
        } else {
            settings.get(self.key)
        }
    }
}

/// [`Spec::doctor`] of an adapter with nothing of its own to check.
pub fn no_checks(_: &Settings) -> Vec<Check> {
    Vec::new()
}

/// [`SetupStep::check`] for a token or key: one line, no spaces, at most 1024 bytes; trimmed.
pub fn single_token(what: &str, v: &str) -> Result<String, String> {
    let v = v.trim();
    if v.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if v.len() > 1024 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{what} must be a single token without spaces or line breaks"
        ));
    }
    Ok(v.to_string())
}

/// The terminal: always on, nothing to configure.
static TERMINAL: Spec = Spec {
    channel_type: cli::CHANNEL,
    settings: &[],
    doctor: no_checks,
    setup: None,
    build: |home, _| Some(Arc::new(cli::CliChannel::new(home))),
};

/// Every adapter of this build, the terminal first. Register a new channel here: one line
/// naming its `SPEC`, behind its cargo feature.
pub static SPECS: &[&Spec] = &[
    &TERMINAL,
    #[cfg(feature = "telegram")]
    &super::telegram::SPEC,
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
    pub fn from_settings(home: &nanoclaw_protocol::Home, settings: &Settings) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declaration_is_consistent() {
        let mut types = compiled();
        types.sort_unstable();
        types.dedup();
        assert_eq!(types.len(), SPECS.len(), "a channel type registered twice");
        for spec in SPECS {
            if let Some(step) = &spec.setup {
                assert!(
                    spec.setting(step.key).is_some_and(|s| s.required),
                    "{}: setup sets {}, which is not a setting that enables it",
                    spec.channel_type,
                    step.key
                );
                assert!(
                    (step.check)(step.noun, "").is_err(),
                    "{}: an empty answer must be refused (it means: skip)",
                    spec.channel_type
                );
            }
        }
    }

    #[test]
    fn the_enabling_settings_are_what_build_needs() {
        // The environment wins over the home's files: a developer's own token would decide.
        if SPECS
            .iter()
            .flat_map(|s| s.settings)
            .any(|s| std::env::var_os(s.key).is_some())
        {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let home = nanoclaw_protocol::Home::new(dir.path());
        let empty = Settings::load(&home).unwrap();
        let lines: String = SPECS
            .iter()
            .flat_map(|s| s.enabled_by())
            .map(|k| format!("{k}=x1\n"))
            .collect();
        std::fs::write(home.env_file(), lines).unwrap();
        let all = Settings::load(&home).unwrap();
        for spec in SPECS {
            let off = !spec.missing(&empty).is_empty();
            assert_eq!(
                (spec.build)(&home, &empty).is_none(),
                off,
                "{}: built although off, or off although built",
                spec.channel_type
            );
            assert!(spec.missing(&all).is_empty());
            assert!((spec.build)(&home, &all).is_some(), "{}", spec.channel_type);
        }
    }

    #[test]
    fn a_token_is_one_line_without_spaces() {
        assert_eq!(single_token("k", " a:b \n").as_deref(), Ok("a:b"));
        assert_eq!(single_token("k", " ").unwrap_err(), "k is empty");
        assert!(single_token("k", "two words").is_err());
        assert!(single_token("k", &"x".repeat(1025)).is_err());
    }
}
