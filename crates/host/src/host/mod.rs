//! The running host: what it owns ([`Host`]), how it opens a home and starts every stage, and
//! the events other parts wait for. Its other duties live beside it, one file each.

mod lock;
mod notices;
mod terminal;
mod timers;
mod typing;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use nanoclaw_protocol::status::MessageStatus;
use nanoclaw_protocol::Home;
use tokio::sync::{broadcast, watch};

use crate::channels::{self, InboundEvent};
use crate::config::Settings;
use crate::db::Db;
use crate::runners::{credentials, runtime, skills};
use crate::{control, db, delivery, ingress, perms, runners, sessions, sweep};

use lock::take_lock;
pub use lock::{foreign_host, host_running};

/// Something other parts of the host (and terminal clients) may wait for.
#[derive(Debug, Clone)]
pub enum HostEvent {
    /// An inbound row reached `completed` or `failed` and its replies were delivered.
    TurnDone {
        /// `messages_in.id`.
        message_id: String,
        /// Completed or failed.
        status: MessageStatus,
    },
    /// A session's runner could not be started; its messages wait for the next try.
    RunnerFailed {
        /// The session.
        session_id: String,
        /// The cause, with what to do about it.
        error: String,
    },
}

/// The running host. Shared as `Arc<Host>`.
pub struct Host {
    /// Home directory layout.
    pub home: Home,
    /// Settings.
    pub settings: Settings,
    /// Central DB.
    pub db: Db,
    /// Channel adapters.
    pub channels: channels::Registry,
    /// Runner lifecycle.
    pub runners: runners::Runners,
    /// Router caches.
    pub router: ingress::Router,
    /// The credential proxy runners call model APIs through.
    pub proxy: Arc<credentials::Proxy>,
    events: broadcast::Sender<HostEvent>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    timers: Mutex<HashMap<String, chrono::DateTime<Utc>>>,
    pub(crate) send_failures: Mutex<HashMap<String, (u32, Instant)>>,
    shutdown: watch::Sender<bool>,
    /// Every task the host spawns, so shutdown can wait for them (a pass or a runner's exit
    /// handling is never cut off by the process ending).
    tasks: tokio_util::task::TaskTracker,
    _lock: Option<std::fs::File>,
}

impl Host {
    /// Opens a home for hosting: takes the host lock, opens the DB, picks the runtime.
    pub async fn open(home: Home) -> anyhow::Result<Arc<Self>> {
        Self::open_with(home, vec![]).await
    }

    /// [`Host::open`] with adapters of the caller's beside the ones settings enable: a channel
    /// from outside this crate plugs in through the same [`channels::Channel`] interface.
    pub async fn open_with(
        home: Home,
        extra_channels: Vec<Arc<dyn channels::Channel>>,
    ) -> anyhow::Result<Arc<Self>> {
        let loose = perms::harden(&home)?;
        if !loose.is_empty() {
            let paths: Vec<String> = loose.iter().map(|l| l.path.display().to_string()).collect();
            tracing::warn!(paths = %paths.join(", "), "home was readable by other users; made private to the host user");
        }
        let lock = take_lock(&home)?;
        if let Some(sock) = foreign_host(&home).await {
            anyhow::bail!(
                "another host (NanoClaw v2?) is serving {}: something listens on {}; stop it first (v2: `systemctl --user stop nanoclaw` or `launchctl unload` its plist), then start this one",
                home.root().display(),
                sock.display()
            );
        }
        let settings = Settings::load(&home)?;
        let db = Db::open(&home.central_db())?;
        let runtime = runtime::select(&home, &settings).await?;
        let (bind, runner_host) = runtime.host_endpoint().await;
        let proxy = credentials::Proxy::start(&settings, bind, &runner_host).await?;
        let max = settings.u64("MAX_CONCURRENT_CONTAINERS", 5) as usize;
        let mut channels = channels::Registry::from_settings(&home, &settings);
        for ch in extra_channels {
            channels.register(ch);
        }
        Ok(Arc::new(Self {
            runners: runners::Runners::new(runtime, max),
            channels,
            router: ingress::Router::default(),
            proxy,
            events: broadcast::channel(4096).0,
            locks: Mutex::default(),
            timers: Mutex::default(),
            send_failures: Mutex::default(),
            shutdown: watch::channel(false).0,
            tasks: tokio_util::task::TaskTracker::new(),
            _lock: Some(lock),
            home,
            settings,
            db,
        }))
    }

    /// Starts everything: reconciliation, channels, sweep. Returns once serving.
    pub async fn start(self: &Arc<Self>) -> anyhow::Result<()> {
        // Probes the process runtime's sandbox now, so its verdict is logged at start.
        let _ = self.runners.runtime().warning().await;
        self.runners.runtime().cleanup_orphans().await?;
        delivery::reconcile_intents(self).await?;
        // Sessions left "running" by a crashed host have no runner now.
        self.db
            .call(|c| Ok(c.execute("UPDATE sessions SET container_status='stopped' WHERE container_status!='stopped'", [])?))
            .await?;
        let home = self.home.clone();
        tokio::task::spawn_blocking(move || skills::install(&home)).await??;
        self.ensure_terminal_wiring("main").await?;
        channels::start_all(self).await?;
        self.spawn(control::serve(self.clone()));
        self.spawn(sweep::run(self.clone()));
        self.spawn(sweep::gc::daily(self.clone()));
        tracing::info!(home = %self.home.root().display(), "host started");
        Ok(())
    }

    /// Resolves when shutdown was requested.
    pub async fn shutdown_signal(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Stops runners and channels and waits (10 s at most) for every task the host spawned:
    /// a runner's exit handling delivers what it wrote, a pass under way finishes. Nothing is
    /// left half-written either way (every write is a transaction).
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        for ch in self.channels.all() {
            ch.stop().await;
        }
        self.runners.stop_all();
        self.tasks.close();
        if tokio::time::timeout(Duration::from_secs(10), self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                tasks = self.tasks.len(),
                "host stopped with tasks still running"
            );
        }
        tracing::info!("host stopped");
    }

    /// Tasks of the host still running (none once `shutdown` has returned in time).
    pub fn running_tasks(&self) -> usize {
        self.tasks.len()
    }

    /// Spawns a task the host waits for at shutdown. Every long-lived or state-changing task
    /// of the host goes through here, not `tokio::spawn`.
    pub fn spawn<T: Send + 'static>(
        &self,
        task: impl std::future::Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        self.tasks.spawn(task)
    }

    /// Routes one inbound event.
    pub async fn route(
        self: &Arc<Self>,
        ev: InboundEvent,
    ) -> anyhow::Result<ingress::RouteOutcome> {
        ingress::route(self, ev).await
    }

    /// Ensures a runner for the session.
    pub async fn wake(self: &Arc<Self>, session: &str) {
        self.runners.wake(self, session);
    }

    /// Publishes an event.
    pub fn emit(&self, ev: HostEvent) {
        let _ = self.events.send(ev);
    }

    /// Subscribes to events.
    pub fn subscribe(&self) -> broadcast::Receiver<HostEvent> {
        self.events.subscribe()
    }

    /// The lock serialising passes of one session.
    pub fn session_lock(&self, session: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(session.to_string())
            .or_default()
            .clone()
    }

    /// Rewrites destinations and routing of every running session (after a wiring change).
    pub async fn refresh_projections(&self) -> anyhow::Result<()> {
        let running = self.runners.running_ids();
        let home = self.home.clone();
        self.db
            .call(move |c| {
                for id in running {
                    if let Some(s) = db::sessions::get(c, &id)? {
                        // One session's broken files must not fail the change for the others.
                        if let Err(e) = sessions::project(c, &home, &s) {
                            tracing::warn!(session = %id, error = %e, "projection failed for one session");
                        }
                    }
                }
                Ok(())
            })
            .await
    }
}
