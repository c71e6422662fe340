//! Runner lifecycle: wake, the MAX_CONCURRENT_CONTAINERS cap with a FIFO queue, exit handling,
//! idle stop and shutdown. Runtime-agnostic: it only sees [`crate::runtime::Runtime`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nanoclaw_protocol::env as var;
use tokio::sync::oneshot;

use crate::delivery::{self, RunnerView};
use crate::runtime::{RunnerSpec, Runtime};
use crate::{db, Host};

struct Running {
    started_at: String,
    last_activity: Instant,
    busy: bool,
    /// Stops the runner: `true` kills it at once.
    stop: Option<oneshot::Sender<bool>>,
    runner_id: String,
}

#[derive(Default)]
struct State {
    running: HashMap<String, Running>,
    /// When a start failure was last told to the session's chat.
    reported: HashMap<String, Instant>,
    queue: VecDeque<String>,
    queued: HashSet<String>,
    shutting_down: bool,
}

/// The set of live runners of this host.
pub struct Runners {
    runtime: Arc<dyn Runtime>,
    max: usize,
    state: Mutex<State>,
}

impl Runners {
    /// A manager over a runtime with a concurrency cap.
    pub fn new(runtime: Arc<dyn Runtime>, max: usize) -> Self {
        Self {
            runtime,
            max: max.max(1),
            state: Mutex::new(State::default()),
        }
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The runtime in use.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    /// Runner state of a session for a delivery pass.
    pub fn view(&self, session: &str) -> (bool, Option<String>) {
        let st = self.st();
        match st.running.get(session) {
            Some(r) => (true, Some(r.started_at.clone())),
            None => (false, None),
        }
    }

    /// Ids of sessions with a live runner.
    pub fn running_ids(&self) -> Vec<String> {
        self.st().running.keys().cloned().collect()
    }

    /// Notes activity (keeps the runner from idling out) and whether work is in flight.
    /// Returns the new `container_status` when `busy` changed it (running ↔ idle).
    pub fn touch(&self, session: &str, busy: Option<bool>) -> Option<&'static str> {
        let mut st = self.st();
        let r = st.running.get_mut(session)?;
        r.last_activity = Instant::now();
        let b = busy?;
        let changed = r.busy != b;
        r.busy = b;
        changed.then_some(if b { "running" } else { "idle" })
    }

    /// Queued session count (for status).
    pub fn queued(&self) -> usize {
        self.st().queue.len()
    }

    /// Runtime id (pid, container id) of a session's runner.
    pub fn runner_id(&self, session: &str) -> Option<String> {
        self.st().running.get(session).map(|r| r.runner_id.clone())
    }

    /// Ensures a runner for the session: starts one, or queues it when the cap is reached.
    pub fn wake(&self, host: &Arc<Host>, session: &str) {
        {
            let mut st = self.st();
            if st.shutting_down {
                return;
            }
            if let Some(r) = st.running.get_mut(session) {
                r.last_activity = Instant::now();
                return;
            }
            if st.running.len() >= self.max {
                if st.queued.insert(session.to_string()) {
                    st.queue.push_back(session.to_string());
                    tracing::info!(
                        session,
                        queued = st.queue.len(),
                        "runner cap reached; session queued"
                    );
                }
                // An idle runner gives its slot to waiting work instead of holding it until
                // IDLE_TIMEOUT; the queue head starts when it exits.
                if let Some(r) = st
                    .running
                    .values_mut()
                    .filter(|r| !r.busy && r.stop.is_some())
                    .min_by_key(|r| r.last_activity)
                {
                    if let Some(tx) = r.stop.take() {
                        let _ = tx.send(false);
                    }
                }
                return;
            }
            // Reserve the slot before the async start, so concurrent wakes start one runner.
            st.running.insert(
                session.to_string(),
                Running {
                    started_at: nanoclaw_protocol::time::now(),
                    last_activity: Instant::now(),
                    busy: true,
                    stop: None,
                    runner_id: String::new(),
                },
            );
        }
        let host = host.clone();
        let session = session.to_string();
        tokio::spawn(async move {
            if let Err(e) = start(&host, &session).await {
                tracing::error!(session = %session, error = %e, "runner failed to start");
                release(&host, &session).await;
                report_start_failure(&host, &session, &format!("{e:#}")).await;
                host.runners.start_next(&host);
            }
        });
    }

    /// Whether the person should hear about this session's start failure now: at once the
    /// first time, then at most every ten minutes (the sweep retries every minute).
    fn should_report(&self, session: &str) -> bool {
        let mut st = self.st();
        let now = Instant::now();
        match st.reported.get(session) {
            Some(t) if now.duration_since(*t) < Duration::from_secs(600) => false,
            _ => {
                st.reported.insert(session.to_string(), now);
                true
            }
        }
    }

    fn start_next(&self, host: &Arc<Host>) {
        let next = {
            let mut st = self.st();
            if st.running.len() >= self.max {
                None
            } else {
                let n = st.queue.pop_front();
                if let Some(n) = &n {
                    st.queued.remove(n);
                }
                n
            }
        };
        if let Some(n) = next {
            self.wake(host, &n);
        }
    }

    /// A runner that just went idle while sessions wait for a slot stops to let one in.
    pub fn yield_if_queued(&self, session: &str) {
        let mut st = self.st();
        if st.queue.is_empty() {
            return;
        }
        if let Some(r) = st.running.get_mut(session).filter(|r| !r.busy) {
            if let Some(tx) = r.stop.take() {
                tracing::info!(session, "sessions are waiting; idle runner yields its slot");
                let _ = tx.send(false);
            }
        }
    }

    /// Stops runners idle longer than `idle` with no work in flight.
    pub fn stop_idle(&self, idle: Duration) {
        let mut st = self.st();
        for (sid, r) in st.running.iter_mut() {
            if !r.busy && r.last_activity.elapsed() >= idle {
                if let Some(tx) = r.stop.take() {
                    tracing::info!(session = %sid, "idle timeout; stopping runner");
                    let _ = tx.send(false);
                }
            }
        }
    }

    /// Stops one session's runner (e.g. no heartbeat).
    pub fn stop(&self, session: &str) {
        if let Some(tx) = self
            .st()
            .running
            .get_mut(session)
            .and_then(|r| r.stop.take())
        {
            let _ = tx.send(false);
        }
    }

    /// Kills one session's runner at once (its turn is stuck).
    pub fn kill(&self, session: &str) {
        if let Some(tx) = self
            .st()
            .running
            .get_mut(session)
            .and_then(|r| r.stop.take())
        {
            let _ = tx.send(true);
        }
    }

    /// Stops every runner and waits (bounded) until they are gone.
    pub async fn shutdown(&self) {
        {
            let mut st = self.st();
            st.shutting_down = true;
            st.queue.clear();
            st.queued.clear();
            for r in st.running.values_mut() {
                if let Some(tx) = r.stop.take() {
                    let _ = tx.send(false);
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.st().running.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Frees a session's slot and records that its runner is gone.
async fn release(host: &Arc<Host>, session: &str) {
    host.runners.st().running.remove(session);
    let s = session.to_string();
    let _ = host
        .db
        .call(move |c| Ok(db::sessions::set_container_status(c, &s, "stopped")?))
        .await;
}

async fn start(host: &Arc<Host>, session: &str) -> anyhow::Result<()> {
    let sid = session.to_string();
    let h = host.clone();
    let (sess, group, admins, tz, cc) = host
        .db
        .call(move |c| {
            let sess = db::sessions::get(c, &sid)?
                .ok_or_else(|| anyhow::anyhow!("unknown session {sid}"))?;
            let group = db::agent_groups::get(c, &sess.agent_group_id)?
                .ok_or_else(|| anyhow::anyhow!("session {sid} has no agent group"))?;
            crate::sessions::provision(&h.home, &sess)?;
            crate::sessions::project(c, &h.home, &sess)?;
            let admins = db::users::admin_ids(c, &group.id)?;
            let cc = db::container_configs::get(c, &group.id)?.unwrap_or_default();
            db::sessions::set_container_status(c, &sid, "running")?;
            Ok((sess, group, admins, h.settings.timezone(), cc))
        })
        .await?;
    let paths = host.home.session(&sess.agent_group_id, &sess.id)?;
    let agent_dir = host.home.group_dir(&group.folder)?;
    std::fs::create_dir_all(&agent_dir)?;
    std::fs::create_dir_all(host.home.global_dir())?;
    // NanoClaw v2's order (session, then container config), then ours.
    let provider = sess
        .agent_provider
        .clone()
        .filter(|p| !p.is_empty())
        .or(cc.provider.clone())
        .or(group.agent_provider.clone().filter(|p| !p.is_empty()))
        .unwrap_or_else(|| host.settings.default_provider())
        .to_lowercase();
    let mut env = vec![
        (var::SESSION_ID.to_string(), sess.id.clone()),
        (var::AGENT_GROUP_ID.to_string(), group.id.clone()),
        (var::PROVIDER.to_string(), provider),
        (var::ADMIN_USER_IDS.to_string(), admins.join(",")),
        (var::TZ.to_string(), tz.name().to_string()),
        (
            var::ASSISTANT_NAME.to_string(),
            cc.assistant_name
                .clone()
                .unwrap_or_else(|| host.settings.assistant_name()),
        ),
    ];
    env.extend(host.proxy.runner_env(&sess.id));
    for key in var::PASSTHROUGH {
        if let Some(v) = host.settings.get(key) {
            env.push((key.to_string(), v));
        }
    }
    // Per-group model and MCP servers (container_configs) come last: they override defaults.
    env.extend(agent_env(&cc, &group.id));
    let claude_shared = host.home.claude_shared(&group.id)?;
    std::fs::create_dir_all(&claude_shared)?;
    let (extra_mounts, packages, limits) = container_config(host, &cc, &group.id);
    let spec = RunnerSpec {
        claude_shared,
        skills_dir: host.home.data_dir().join("skills"),
        extra_mounts,
        packages,
        limits,
        session_id: sess.id.clone(),
        agent_group_id: group.id.clone(),
        session_dir: paths.dir().to_path_buf(),
        agent_dir,
        global_dir: host.home.global_dir(),
        env,
        log_file: host
            .home
            .logs_dir()
            .join("sessions")
            .join(format!("{}.log", sess.id)),
    };
    let mut handle = host.runners.runtime.start(&spec).await?;
    let (stop_tx, stop_rx) = oneshot::channel();
    let started_at = {
        let mut st = host.runners.st();
        let shutting_down = st.shutting_down;
        let r = st
            .running
            .get_mut(session)
            .ok_or_else(|| anyhow::anyhow!("slot vanished"))?;
        r.stop = Some(stop_tx);
        r.runner_id = handle.id();
        if shutting_down {
            let _ = r.stop.take().map(|t| t.send(false));
        }
        r.started_at.clone()
    };
    tracing::info!(session, runner = %handle.id(), runtime = host.runners.runtime.name(), "runner started");

    // Fast delivery path: watch this session's outbound.db while the runner lives.
    let watcher = tokio::spawn(watch_outbound(
        host.clone(),
        session.to_string(),
        started_at.clone(),
    ));
    let host = host.clone();
    let session = session.to_string();
    tokio::spawn(async move {
        let exit = tokio::select! {
            e = handle.wait() => e,
            hard = stop_rx => {
                if hard.unwrap_or(false) { handle.kill().await } else { handle.stop().await }
                handle.wait().await
            }
        };
        watcher.abort();
        tracing::info!(session = %session, code = ?exit.code, killed = exit.killed, "runner exited");
        // Deliver what it wrote and put its unfinished work back for a retry while its slot is
        // still held, so no new runner can clear its acks first.
        let exited = RunnerView {
            alive: false,
            started_at: Some(&started_at),
        };
        if let Err(e) = delivery::pass(&host, &session, exited).await {
            tracing::warn!(session = %session, error = %e, "pass after runner exit failed");
        }
        release(&host, &session).await;
        // Anything that arrived meanwhile (or is due later) gets a runner again.
        match delivery::pass(
            &host,
            &session,
            RunnerView {
                alive: false,
                started_at: None,
            },
        )
        .await
        {
            Ok(o) => host.schedule(&session, &o),
            Err(e) => {
                tracing::warn!(session = %session, error = %e, "pass after runner exit failed")
            }
        }
        host.runners.start_next(&host);
    });
    Ok(())
}

/// Runner settings of an agent group's container config: model and external MCP servers.
fn agent_env(
    cc: &db::container_configs::ContainerConfig,
    agent_group: &str,
) -> Vec<(String, String)> {
    let mcp = &cc.mcp_servers;
    let mut env = vec![];
    if let Some(m) = &cc.model {
        env.push((var::MODEL.to_string(), m.clone()));
    }
    match serde_json::from_str::<serde_json::Value>(mcp) {
        Ok(v) if v.as_object().is_some_and(|o| !o.is_empty()) => {
            env.push((var::MCP_SERVERS.to_string(), v.to_string()))
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(agent_group, error = %e, "mcp_servers is not a JSON object; ignored")
        }
    }
    env
}

/// The agent group's container config: extra mounts that pass the allowlist (refused ones are
/// logged and left out) and approved packages (invalid lists are logged and ignored).
fn container_config(
    host: &Arc<Host>,
    cc: &db::container_configs::ContainerConfig,
    agent_group: &str,
) -> (
    Vec<crate::mounts::Mount>,
    crate::image::Packages,
    crate::image::Limits,
) {
    let limits_json = &cc.limits;
    let mounts_json = &cc.additional_mounts;
    let (limits, problem) = crate::image::Limits::parse(limits_json);
    if let Some(e) = problem {
        tracing::warn!(agent_group, error = %e, "limits is not a valid {{memoryMb, cpus, pids, network}} object; defaults used where unreadable (an unreadable network means none)");
    }
    let packages = match crate::image::Packages::from_columns(&cc.packages_apt, &cc.packages_npm) {
        Ok(p) if crate::image::validate_packages(&p).is_ok() => p,
        _ => {
            tracing::warn!(
                agent_group,
                "packages_apt / packages_npm are not valid package lists; ignored"
            );
            Default::default()
        }
    };
    let requests: Vec<crate::mounts::Request> = match serde_json::from_str(mounts_json) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(agent_group, error = %e, "additional_mounts is not a valid list; ignored");
            return (vec![], packages, limits);
        }
    };
    if requests.is_empty() {
        return (vec![], packages, limits);
    }
    let allow = match crate::mounts::load(crate::mounts::allowlist_path().as_deref()) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "mount allowlist unreadable; no extra mounts");
            return (vec![], packages, limits);
        }
    };
    let mut ok = vec![];
    for r in requests {
        match crate::mounts::validate(&allow, host.home.root(), std::slice::from_ref(&r)) {
            Ok(mut m) => ok.append(&mut m),
            Err(e) => tracing::warn!(agent_group, error = %e, "extra mount refused"),
        }
    }
    (ok, packages, limits)
}

/// Polls the session's outbound.db change counter and runs a pass when it moves.
async fn watch_outbound(host: Arc<Host>, session: String, started_at: String) {
    let poll = host.settings.millis("NANOCLAW_DELIVERY_POLL_MS", 5);
    let Ok(Some(sess)) = host
        .db
        .call({
            let s = session.clone();
            move |c| Ok(db::sessions::get(c, &s)?)
        })
        .await
    else {
        return;
    };
    let Ok(paths) = host.home.session(&sess.agent_group_id, &sess.id) else {
        return;
    };
    let ob = paths.outbound_db();
    let mut watch: Option<nanoclaw_protocol::schema::ChangeCounter> = None;
    let mut last = None;
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // A 4-byte read of the header; no SQL unless the runner committed something.
        if watch.is_none() {
            watch = nanoclaw_protocol::schema::ChangeCounter::open_host(&ob).ok();
        }
        let counter = watch.as_ref().and_then(|w| w.read().ok());
        if counter == last {
            continue;
        }
        last = counter;
        let view = RunnerView {
            alive: true,
            started_at: Some(&started_at),
        };
        match delivery::pass(&host, &session, view).await {
            Ok(o) => {
                if let Some(status) = host.runners.touch(&session, Some(o.busy || o.due_now)) {
                    let s = session.clone();
                    let _ = host
                        .db
                        .call(move |c| Ok(db::sessions::set_container_status(c, &s, status)?))
                        .await;
                }
                host.runners.yield_if_queued(&session);
                host.schedule(&session, &o);
            }
            Err(e) => tracing::warn!(session = %session, error = %e, "delivery pass failed"),
        }
    }
}

/// Tells the person at once why their agent is silent, instead of letting them wait for a
/// timeout: terminal clients get the event (`chat -m` exits with the cause), other chats a
/// notice. The messages stay pending and are tried again by the sweep.
async fn report_start_failure(host: &Arc<Host>, session: &str, error: &str) {
    host.emit(crate::HostEvent::RunnerFailed {
        session_id: session.to_string(),
        error: error.to_string(),
    });
    if !host.runners.should_report(session) {
        return;
    }
    let sid = session.to_string();
    let Ok(Some(sess)) = host
        .db
        .call(move |c| Ok(crate::db::sessions::get(c, &sid)?))
        .await
    else {
        return;
    };
    if let Ok(Some((ct, pid))) = host.default_route(&sess).await {
        if ct != crate::channels::cli::CHANNEL {
            let text = format!("Your agent could not start: {error}");
            host.notify(&ct, &pid, sess.thread_id.as_deref(), &text)
                .await;
        }
    }
}
