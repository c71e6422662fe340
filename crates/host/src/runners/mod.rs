//! Runner lifecycle: wake, the MAX_CONCURRENT_CONTAINERS cap with a FIFO queue, exit handling,
//! idle stop and shutdown. Runtime-agnostic: it only sees [`crate::runners::runtime::Runtime`].

pub mod credentials;
pub mod image;
pub mod mounts;
pub mod runtime;
pub mod skills;
mod start;

use start::{report_start_failure, start};

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::runners::runtime::Runtime;
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
        host.clone().spawn(async move {
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

    /// Stops every runner; their exit tasks (which `Host::shutdown` waits for) finish the job.
    pub fn stop_all(&self) {
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
