//! The NanoClaw host: receives platform messages, routes them into per-session SQLite files,
//! runs each session's agent-runner, and delivers its replies. See docs/ARCHITECTURE.md.

pub mod actions;
pub mod agents;
pub mod approvals;
pub mod channels;
pub mod config;
pub mod control;
pub mod credentials;
pub mod db;
pub mod delivery;
pub mod gc;
pub mod image;
pub mod logging;
pub mod mounts;
pub mod pairing;
pub mod perms;
pub mod questions;
pub mod router;
pub mod runners;
pub mod runtime;
pub mod scheduling;
pub mod sessions;
pub mod skills;
pub mod sweep;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use nanoclaw_protocol::Home;
use tokio::sync::{broadcast, watch};

use channels::InboundEvent;
use config::Settings;
use db::Db;

/// Something other parts of the host (and terminal clients) may wait for.
#[derive(Debug, Clone)]
pub enum HostEvent {
    /// An inbound row reached `completed` or `failed` and its replies were delivered.
    TurnDone {
        /// `messages_in.id`.
        message_id: String,
        /// completed | failed.
        status: String,
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
    pub router: router::Router,
    /// The credential proxy runners call model APIs through.
    pub proxy: Arc<credentials::Proxy>,
    events: broadcast::Sender<HostEvent>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    timers: Mutex<HashMap<String, chrono::DateTime<Utc>>>,
    send_failures: Mutex<HashMap<String, (u32, Instant)>>,
    shutdown: watch::Sender<bool>,
    _lock: Option<std::fs::File>,
}

/// Kills the process with SIGKILL when `NANOCLAW_FAILPOINT` names this point: lets crash tests
/// stop the host at an exact step (e.g. between a send and its `delivered` write).
pub fn failpoint(name: &str) {
    if std::env::var("NANOCLAW_FAILPOINT").is_ok_and(|v| v == name) {
        tracing::error!(failpoint = name, "failpoint hit: killing the host");
        // SAFETY: sending a signal to ourselves.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Whether `NANOCLAW_FAILPOINT` names this point (for injected, non-fatal failures in tests).
pub fn failpoint_active(name: &str) -> bool {
    std::env::var("NANOCLAW_FAILPOINT").is_ok_and(|v| v == name)
}

/// Takes the exclusive host lock of a home, or says who holds it.
fn take_lock(home: &Home) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all(home.data_dir())?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(home.host_lock())?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        anyhow::bail!(
            "another nanoclaw host is already running for {} (stop it, or use `nanoclaw chat` to talk to it)",
            home.root().display()
        );
    }
    Ok(f)
}

/// A socket of another host that serves this home although our lock is free: NanoClaw v2
/// listens on `data/ncl.sock` (its admin CLI) and `data/cli.sock` (its terminal channel), and
/// takes no lock we could see. A socket file nobody listens on (a host that died) is no one.
pub async fn foreign_host(home: &Home) -> Option<std::path::PathBuf> {
    for sock in [home.data_dir().join("ncl.sock"), home.cli_sock()] {
        if tokio::net::UnixStream::connect(&sock).await.is_ok() {
            return Some(sock);
        }
    }
    None
}

/// The daily retention pass ([`gc`]): the first a minute after start
/// (`NANOCLAW_GC_FIRST_MS`), then every `NANOCLAW_GC_INTERVAL_MS` (a day).
async fn gc_daily(host: Arc<Host>) {
    let first = host.settings.millis("NANOCLAW_GC_FIRST_MS", 60_000);
    let every = host.settings.millis("NANOCLAW_GC_INTERVAL_MS", 86_400_000);
    let mut next = tokio::time::Instant::now() + first;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = host.shutdown_signal() => return,
        }
        let policy = gc::Policy::from_settings(&host.settings);
        let home = host.home.clone();
        let pass = async {
            let targets = host.db.call(|c| Ok(gc::Targets::read(c)?)).await?;
            tokio::task::spawn_blocking(move || gc::run(&home, &targets, &policy)).await?
        };
        if let Err(e) = pass.await {
            tracing::warn!(error = %e, "retention pass failed");
        }
        next += every;
    }
}

/// Is a host running for this home right now?
pub fn host_running(home: &Home) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(f) = std::fs::OpenOptions::new()
        .write(true)
        .open(home.host_lock())
    else {
        return false;
    };
    // SAFETY: flock on a descriptor we own; released when `f` drops.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 }
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
            router: router::Router::default(),
            proxy,
            events: broadcast::channel(4096).0,
            locks: Mutex::default(),
            timers: Mutex::default(),
            send_failures: Mutex::default(),
            shutdown: watch::channel(false).0,
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
        skills::install(&self.home)?;
        self.ensure_terminal_wiring("main").await?;
        channels::start_all(self).await?;
        tokio::spawn(control::serve(self.clone()));
        tokio::spawn(sweep::run(self.clone()));
        tokio::spawn(gc_daily(self.clone()));
        tracing::info!(home = %self.home.root().display(), "host started");
        Ok(())
    }

    /// Resolves when shutdown was requested.
    pub async fn shutdown_signal(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Stops runners and channels; nothing is left half-written (every write is a transaction).
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        for ch in self.channels.all() {
            ch.stop().await;
        }
        self.runners.shutdown().await;
        tracing::info!("host stopped");
    }

    /// Routes one inbound event.
    pub async fn route(self: &Arc<Self>, ev: InboundEvent) -> anyhow::Result<router::RouteOutcome> {
        router::route(self, ev).await
    }

    /// Ensures a runner for the session.
    pub async fn wake(self: &Arc<Self>, session: &str) {
        self.runners.wake(self, session);
    }

    /// Acts on a pass outcome: wake if work is due, arm a timer for future work.
    pub fn schedule(self: &Arc<Self>, session: &str, o: &delivery::PassOutcome) {
        if o.due_now && !self.runners.view(session).0 {
            self.runners.wake(self, session);
        }
        let Some(due) = o.next_due else { return };
        {
            let mut t = self.timers.lock().unwrap_or_else(|p| p.into_inner());
            if t.get(session)
                .is_some_and(|cur| *cur <= due && *cur > Utc::now())
            {
                return;
            }
            t.insert(session.to_string(), due);
        }
        let host = self.clone();
        let session = session.to_string();
        tokio::spawn(async move {
            let wait = (due - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(5);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = host.shutdown_signal() => return,
            }
            host.timers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&session);
            let (alive, started) = host.runners.view(&session);
            let view = delivery::RunnerView {
                alive,
                started_at: started.as_deref(),
            };
            match delivery::pass(&host, &session, view).await {
                Ok(o) => host.schedule(&session, &o),
                Err(e) => tracing::warn!(session = %session, error = %e, "scheduled pass failed"),
            }
        });
    }

    /// Shows the typing indicator in a chat until the turn of `message_id` is done (refreshed
    /// every 4 s; at most 10 minutes), on channels that have one.
    pub fn start_typing(
        self: &Arc<Self>,
        channel: &str,
        platform_id: &str,
        thread: Option<&str>,
        message_id: &str,
    ) {
        let Some(ch) = self.channels.get(channel).cloned() else {
            return;
        };
        if !ch.capabilities().typing {
            return;
        }
        let (pid, thread, id) = (
            platform_id.to_string(),
            thread.map(str::to_string),
            message_id.to_string(),
        );
        let mut events = self.subscribe();
        let host = self.clone();
        tokio::spawn(async move {
            let until = tokio::time::Instant::now() + Duration::from_secs(600);
            while tokio::time::Instant::now() < until {
                ch.typing(&pid, thread.as_deref(), true).await;
                let tick = tokio::time::sleep(Duration::from_secs(4));
                tokio::pin!(tick);
                loop {
                    tokio::select! {
                        _ = &mut tick => break,
                        _ = host.shutdown_signal() => return,
                        e = events.recv() => match e {
                            Ok(HostEvent::TurnDone { message_id, .. }) if message_id == id => {
                                ch.typing(&pid, thread.as_deref(), false).await;
                                return;
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                            _ => {}
                        },
                    }
                }
            }
        });
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

    /// Sends a host notice (not from the agent) straight to a chat.
    pub async fn notify(
        &self,
        channel_type: &str,
        platform_id: &str,
        thread_id: Option<&str>,
        text: &str,
    ) {
        let Some(ch) = self.channels.get(channel_type) else {
            return;
        };
        let item = channels::OutboundItem {
            message_out_id: nanoclaw_protocol::new_id("notice"),
            platform_id: platform_id.into(),
            thread_id: thread_id.map(Into::into),
            in_reply_to: None,
            target_platform_message_id: None,
            content: nanoclaw_protocol::content::Outbound::Message {
                text: text.into(),
                files: vec![],
                extra: Default::default(),
            },
            files: vec![],
        };
        if let Err(e) = ch.send(&item).await {
            tracing::warn!(channel = channel_type, error = %e, "notice not sent");
        }
    }

    /// Answers the agent with a `system` messages_in row (and wakes it).
    pub async fn write_system(
        self: &Arc<Self>,
        sess: &db::sessions::Session,
        content: String,
    ) -> anyhow::Result<()> {
        self.system_row(sess, content, true).await?;
        self.wake(&sess.id).await;
        Ok(())
    }

    /// Writes a system row the agent reads with its next turn, without starting one: for
    /// delivery failures, where a woken agent would answer into the same broken route and loop.
    pub async fn note_system(
        self: &Arc<Self>,
        sess: &db::sessions::Session,
        content: String,
    ) -> anyhow::Result<()> {
        self.system_row(sess, content, false).await
    }

    async fn system_row(
        &self,
        sess: &db::sessions::Session,
        content: String,
        trigger: bool,
    ) -> anyhow::Result<()> {
        let dir = self
            .home
            .session(&sess.agent_group_id, &sess.id)?
            .dir()
            .to_path_buf();
        let mut row = sessions::NewInbound::new("system", content);
        row.trigger = trigger;
        sessions::write_inbound_batched(&dir, vec![row]).await?;
        Ok(())
    }

    /// The session's own chat `(channel_type, platform_id)`.
    pub async fn default_route(
        &self,
        sess: &db::sessions::Session,
    ) -> anyhow::Result<Option<(String, String)>> {
        let Some(mg) = sess.messaging_group_id.clone() else {
            return Ok(None);
        };
        self.db
            .call(move |c| {
                Ok(db::messaging_groups::get(c, &mg)?.map(|m| (m.channel_type, m.platform_id)))
            })
            .await
    }

    /// ACL: a row may go to the session's own chat or to one of its agent's destinations, and
    /// the thread is part of the route: a per-thread session posts only into its own thread;
    /// a shared session into any thread of its chat; in a destination chat the agent is wired
    /// to per-thread, only outside the threads (they belong to their own sessions).
    pub async fn route_allowed(
        &self,
        sess: &db::sessions::Session,
        ct: &str,
        pid: &str,
        thread: Option<&str>,
    ) -> anyhow::Result<bool> {
        use rusqlite::OptionalExtension;
        let (s, ct, pid, thread) = (
            sess.clone(),
            ct.to_string(),
            pid.to_string(),
            thread.map(str::to_string),
        );
        self.db
            .call(move |c| {
                let mode = |mg: &str| -> rusqlite::Result<Option<String>> {
                    c.query_row(
                        "SELECT session_mode FROM messaging_group_agents WHERE messaging_group_id = ?1 AND agent_group_id = ?2",
                        [mg, &s.agent_group_id],
                        |r| r.get(0),
                    )
                    .optional()
                };
                if let Some(mg) = s.messaging_group_id.as_deref() {
                    if let Some(own) = db::messaging_groups::get(c, mg)? {
                        if own.channel_type == ct && own.platform_id == pid {
                            return Ok(mode(mg)?.as_deref() != Some("per-thread")
                                || thread == s.thread_id);
                        }
                    }
                }
                let listed = db::destinations::for_agent_group(c, &s.agent_group_id)?
                    .iter()
                    .any(|d| {
                        d.channel_type.as_deref() == Some(ct.as_str())
                            && d.platform_id.as_deref() == Some(pid.as_str())
                    });
                if !listed {
                    return Ok(false);
                }
                if thread.is_none() {
                    return Ok(true);
                }
                Ok(match db::messaging_groups::find(c, &ct, &pid)? {
                    Some(mg) => mode(&mg.id)?.as_deref() != Some("per-thread"),
                    None => true,
                })
            })
            .await
    }

    /// Whether a previously failing send may be tried again now (exponential backoff from
    /// `NANOCLAW_SEND_RETRY_BASE_MS`, default 1 s).
    pub fn send_allowed_now(&self, out_id: &str) -> bool {
        self.send_retry_delay(out_id).is_none_or(|d| d.is_zero())
    }

    /// How long until a failing send may be tried again (None when it is not failing).
    pub fn send_retry_delay(&self, out_id: &str) -> Option<Duration> {
        let base = self.settings.u64("NANOCLAW_SEND_RETRY_BASE_MS", 1000);
        let f = self.send_failures.lock().unwrap_or_else(|p| p.into_inner());
        let (n, at) = f.get(out_id)?;
        let wait = Duration::from_millis(base * 2u64.pow(n.saturating_sub(1).min(6)));
        Some(wait.saturating_sub(at.elapsed()))
    }

    /// Records a failed send; returns the number of failures so far.
    pub fn send_failed(&self, out_id: &str) -> u32 {
        let mut f = self.send_failures.lock().unwrap_or_else(|p| p.into_inner());
        let e = f.entry(out_id.to_string()).or_insert((0, Instant::now()));
        e.0 += 1;
        e.1 = Instant::now();
        e.0
    }

    /// Forgets the retry state of a send whose fate is final.
    pub fn send_settled(&self, out_id: &str) {
        self.send_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(out_id);
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

    /// First use of the terminal for an agent: its chat, wiring (pattern `.`) and the
    /// `cli:local` owner. An existing terminal chat is left as the user configured it.
    pub async fn ensure_terminal_wiring(&self, folder: &str) -> anyhow::Result<()> {
        let folder = folder.to_string();
        let home = self.home.clone();
        self.db
            .call(move |c| {
                nanoclaw_protocol::names::validate(&folder)?;
                let pid = channels::cli::CliChannel::platform_for(Some(&folder));
                if db::messaging_groups::find(c, channels::cli::CHANNEL, &pid)?.is_some() {
                    return Ok(());
                }
                let tx = c.transaction()?;
                let ag = match db::agent_groups::by_folder(&tx, &folder)? {
                    Some(g) => g,
                    None if folder == "main" => db::agent_groups::create(&tx, "Main", "main")?,
                    None => anyhow::bail!("no agent group with folder {folder:?} (create it with `nanoclaw ctl groups create`)"),
                };
                std::fs::create_dir_all(home.group_dir(&ag.folder)?)?;
                let mg = db::messaging_groups::create(&tx, channels::cli::CHANNEL, &pid, Some("terminal"), false, "strict")?;
                let w = db::wirings::NewWiring::every_message(&mg.id, &ag.id);
                db::wirings::create(&tx, &w)?;
                db::users::ensure(&tx, "cli:local", "cli", Some("terminal"))?;
                db::users::grant(&tx, "cli:local", "owner", None, None)?;
                tx.commit()?;
                tracing::info!(folder = %folder, "terminal wired to agent group");
                Ok(())
            })
            .await
    }
}
