//! Starting a session's runner: its folder, environment, container config, mounts and the
//! credential proxy's placeholder key; then watching its outbound.db and reporting a start that
//! failed with its cause.

use std::sync::Arc;

use nanoclaw_protocol::env as var;
use tokio::sync::oneshot;

use super::release;
use crate::delivery::{self, RunnerView};
use crate::runners::runtime::RunnerSpec;
use crate::{db, Host};

pub(super) async fn start(host: &Arc<Host>, session: &str) -> anyhow::Result<()> {
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
    host.clone().spawn(async move {
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
    Vec<crate::runners::mounts::Mount>,
    crate::runners::image::Packages,
    crate::runners::image::Limits,
) {
    let limits_json = &cc.limits;
    let mounts_json = &cc.additional_mounts;
    let (limits, problem) = crate::runners::image::Limits::parse(limits_json);
    if let Some(e) = problem {
        tracing::warn!(agent_group, error = %e, "limits is not a valid {{memoryMb, cpus, pids, network}} object; defaults used where unreadable (an unreadable network means none)");
    }
    let packages =
        match crate::runners::image::Packages::from_columns(&cc.packages_apt, &cc.packages_npm) {
            Ok(p) if crate::runners::image::validate_packages(&p).is_ok() => p,
            _ => {
                tracing::warn!(
                    agent_group,
                    "packages_apt / packages_npm are not valid package lists; ignored"
                );
                Default::default()
            }
        };
    let requests: Vec<crate::runners::mounts::Request> = match serde_json::from_str(mounts_json) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(agent_group, error = %e, "additional_mounts is not a valid list; ignored");
            return (vec![], packages, limits);
        }
    };
    if requests.is_empty() {
        return (vec![], packages, limits);
    }
    let allow =
        match crate::runners::mounts::load(crate::runners::mounts::allowlist_path().as_deref()) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "mount allowlist unreadable; no extra mounts");
                return (vec![], packages, limits);
            }
        };
    let mut ok = vec![];
    for r in requests {
        match crate::runners::mounts::validate(&allow, host.home.root(), std::slice::from_ref(&r)) {
            Ok(mut m) => ok.append(&mut m),
            Err(e) => tracing::warn!(agent_group, error = %e, "extra mount refused"),
        }
    }
    (ok, packages, limits)
}

/// Polls the session's outbound.db change counter and runs a pass when it moves.
pub(super) async fn watch_outbound(host: Arc<Host>, session: String, started_at: String) {
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
pub(super) async fn report_start_failure(host: &Arc<Host>, session: &str, error: &str) {
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
