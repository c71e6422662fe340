//! System actions: `kind:'system'` messages_out rows are requests the host executes with
//! permission checks and answers with a `system` messages_in row echoing the `requestId`
//! (DESIGN §4, §6). Tasks live in the session's own inbound.db (task rows with process_after,
//! recurrence and a series id), so scheduling needs no table of its own.

use std::sync::Arc;

use chrono::{NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use nanoclaw_protocol::status::MessageStatus;
use rusqlite::params;
use serde_json::{json, Value};

use crate::db;
use crate::sessions::{self, NewInbound};
use crate::Host;

/// Executes one request and writes the answer into the asking session.
pub async fn handle(
    host: &Arc<Host>,
    sess: &db::sessions::Session,
    action: &str,
    payload: &Value,
) -> anyhow::Result<()> {
    use MessageStatus::{Paused, Pending};
    let result = match action {
        "schedule_task" => schedule(host, sess, payload).await,
        "pause_task" => set_task_status(host, sess, payload, &[Pending], Some(Paused)).await,
        "resume_task" => set_task_status(host, sess, payload, &[Paused], Some(Pending)).await,
        "cancel_task" => set_task_status(host, sess, payload, &[Pending, Paused], None).await,
        "update_task" => update_task(host, sess, payload).await,
        "create_agent" => create_agent(host, sess, payload).await,
        "install_packages" | "add_mcp_server" | "request_rebuild" => {
            crate::access::approvals::request(host, sess, action, payload)
                .await
                .map(|r| Reply::Pending(json!(r)))
        }
        other => Err(format!("action {other:?} is not supported by this host")),
    };
    let (status, result) = match result {
        Ok(Reply::Done(r)) => ("ok", r),
        Ok(Reply::Pending(r)) => ("pending", r),
        Err(e) => {
            tracing::warn!(session = %sess.id, action, error = %e, "system action refused");
            ("error", json!(e))
        }
    };
    let mut reply = json!({"action": action, "status": status, "result": result});
    if let Some(r) = payload.get("requestId") {
        reply["requestId"] = r.clone();
    }
    host.write_system(sess, reply.to_string()).await
}

/// An action's outcome.
enum Reply {
    /// Done; the result.
    Done(Value),
    /// Waiting for someone (an approver).
    Pending(Value),
}

type Outcome = Result<Reply, String>;

fn text(payload: &Value, key: &str) -> Option<String> {
    payload
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The first of `keys` given: our name, then NanoClaw v2's (`processAfter`, `recurrence`,
/// `taskId`), so v2 requests still in flight at switchover are understood.
fn text_any(payload: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| text(payload, k))
}

/// A task's id (the series id shown by list_tasks).
fn task_id(p: &Value) -> Result<String, String> {
    text_any(p, &["id", "taskId"]).ok_or_else(|| "id is required".into())
}

/// `at` in the agent's local time (or with an explicit offset) → UTC.
fn parse_at(at: &str, tz: Tz) -> Result<chrono::DateTime<Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(at) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(at, f) {
            return tz
                .from_local_datetime(&n)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| format!("{at} does not exist in {}", tz.name()));
        }
    }
    Err(format!("`at` {at:?} is not an ISO date-time"))
}

async fn schedule(host: &Arc<Host>, sess: &db::sessions::Session, p: &Value) -> Outcome {
    let prompt = text(p, "prompt").ok_or("prompt is required")?;
    let tz = host.settings.timezone();
    let now = Utc::now();
    let (when, cron) = match (
        text_any(p, &["at", "processAfter"]),
        text_any(p, &["cron", "recurrence"]),
    ) {
        (Some(at), cron) => {
            // A first run and a cron together: the first run is `at`, the rest by the cron.
            if let Some(c) = &cron {
                crate::sweep::scheduling::next_occurrence(c, tz, now, now)
                    .map_err(|e| e.to_string())?;
            }
            (parse_at(&at, tz)?, cron)
        }
        (None, Some(cron)) => {
            let next = crate::sweep::scheduling::next_occurrence(&cron, tz, now, now)
                .map_err(|e| e.to_string())?;
            (next, Some(cron))
        }
        (None, None) => return Err("give `at`, `cron`, or both".into()),
    };
    let mut content = json!({"prompt": prompt});
    if let Some(s) = text(p, "script") {
        content["script"] = json!(s);
    }
    let route = host.default_route(sess).await.map_err(|e| e.to_string())?;
    // v2 names its tasks itself (`taskId`); the id only lives in this session's inbound.db.
    let series = match text(p, "taskId") {
        Some(t) => nanoclaw_protocol::names::validate(&t)
            .map_err(|e| format!("taskId: {e}"))?
            .to_string(),
        None => nanoclaw_protocol::new_id("task"),
    };
    let mut row = NewInbound::new("task", content.to_string());
    row.process_after = Some(nanoclaw_protocol::time::fmt(when));
    row.recurrence = cron.clone();
    row.series_id = Some(series.clone());
    if let Some((ct, pid)) = route {
        row.channel_type = Some(ct);
        row.platform_id = Some(pid);
        row.thread_id = sess.thread_id.clone();
    }
    let dir = session_dir(host, sess)?;
    sessions::write_inbound_batched(&dir, vec![row])
        .await
        .map_err(|e| e.to_string())?;
    // The runner sleeps until the row is due; make sure a timer wakes the session then.
    host.wake(&sess.id).await;
    let local = when.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z");
    Ok(Reply::Done(json!(format!(
        "task {series} scheduled; next run {local}{}",
        cron.map(|c| format!(", recurring ({c})"))
            .unwrap_or_default()
    ))))
}

fn session_dir(host: &Host, sess: &db::sessions::Session) -> Result<std::path::PathBuf, String> {
    Ok(host
        .home
        .session(&sess.agent_group_id, &sess.id)
        .map_err(|e| e.to_string())?
        .dir()
        .to_path_buf())
}

async fn set_task_status(
    host: &Arc<Host>,
    sess: &db::sessions::Session,
    p: &Value,
    from: &'static [MessageStatus],
    to: Option<MessageStatus>,
) -> Outcome {
    let id = task_id(p)?;
    let shown = id.clone();
    let dir = session_dir(host, sess)?;
    let n = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
        let _g = sessions::write_lock(&dir);
        let c = nanoclaw_protocol::schema::open_inbound_write(&dir)?;
        let sql_from = from.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(",");
        let n = match to {
            Some(status) => c.execute(
                &format!("UPDATE messages_in SET status = ?1 WHERE kind = 'task' AND (series_id = ?2 OR id = ?2) AND status IN ({sql_from})"),
                params![status, id],
            )?,
            None => c.execute(
                &format!("DELETE FROM messages_in WHERE kind = 'task' AND (series_id = ?1 OR id = ?1) AND status IN ({sql_from})"),
                params![id],
            )?,
        };
        Ok(n)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    if n == 0 {
        let names: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        return Err(format!("no {} task {shown}", names.join(" or ")));
    }
    if to == Some(MessageStatus::Pending) {
        host.wake(&sess.id).await;
    }
    Ok(Reply::Done(json!(format!(
        "task {shown} {}",
        match to {
            Some(MessageStatus::Paused) => "paused",
            Some(_) => "resumed",
            None => "cancelled",
        }
    ))))
}

/// Changes the live occurrence(s) of a task series: prompt and script in the content, the
/// cron, the next run. Only given fields change; a null `cron`/`script` clears it.
async fn update_task(host: &Arc<Host>, sess: &db::sessions::Session, p: &Value) -> Outcome {
    let id = task_id(p)?;
    let tz = host.settings.timezone();
    let at = match text_any(p, &["at", "processAfter"]) {
        Some(a) => Some(nanoclaw_protocol::time::fmt(parse_at(&a, tz)?)),
        None => None,
    };
    // Some(None) clears; None leaves as is.
    let field = |keys: &[&str]| -> Option<Option<String>> {
        keys.iter().find_map(|k| match p.get(*k) {
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) if s.trim().is_empty() => Some(None),
            Some(Value::String(s)) => Some(Some(s.trim().to_string())),
            _ => None,
        })
    };
    let cron = field(&["cron", "recurrence"]);
    if let Some(Some(c)) = &cron {
        let now = Utc::now();
        crate::sweep::scheduling::next_occurrence(c, tz, now, now).map_err(|e| e.to_string())?;
    }
    let script = field(&["script"]);
    let prompt = text(p, "prompt");
    if at.is_none() && cron.is_none() && script.is_none() && prompt.is_none() {
        return Err("nothing to change: give prompt, cron, at or script".into());
    }
    let dir = session_dir(host, sess)?;
    let shown = id.clone();
    let n = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
        let _g = sessions::write_lock(&dir);
        let mut c = nanoclaw_protocol::schema::open_inbound_write(&dir)?;
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let rows: Vec<(String, String)> = {
            let mut st = tx.prepare(
                "SELECT id, content FROM messages_in WHERE kind = 'task'
                   AND (series_id = ?1 OR id = ?1) AND status IN ('pending', 'paused')",
            )?;
            let r = st.query_map([&id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            r.collect::<rusqlite::Result<_>>()?
        };
        for (row_id, content) in &rows {
            let mut v: Value = serde_json::from_str(content).unwrap_or_else(|_| json!({}));
            if let Some(pr) = &prompt {
                v["prompt"] = json!(pr);
            }
            match &script {
                Some(Some(s)) => v["script"] = json!(s),
                Some(None) => {
                    if let Some(o) = v.as_object_mut() {
                        o.remove("script");
                    }
                }
                None => {}
            }
            tx.execute(
                "UPDATE messages_in SET content = ?2 WHERE id = ?1",
                params![row_id, v.to_string()],
            )?;
            if let Some(c) = &cron {
                tx.execute(
                    "UPDATE messages_in SET recurrence = ?2 WHERE id = ?1",
                    params![row_id, c],
                )?;
            }
            if let Some(a) = &at {
                tx.execute(
                    "UPDATE messages_in SET process_after = ?2 WHERE id = ?1",
                    params![row_id, a],
                )?;
            }
        }
        tx.commit()?;
        Ok(rows.len())
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    if n == 0 {
        return Err(format!("no pending or paused task {shown}"));
    }
    host.wake(&sess.id).await;
    Ok(Reply::Done(json!(format!("task {shown} updated"))))
}

/// Longest display name of an agent an agent creates (characters).
pub const MAX_AGENT_NAME: usize = 64;
/// Largest `instructions` of `create_agent` (bytes): a CLAUDE.md, not a dump.
pub const MAX_INSTRUCTIONS: usize = 16 * 1024;
/// Folders no agent group may have: `groups/global` is every agent's shared, read-only memory.
const RESERVED_FOLDERS: &[&str] = &["global"];

/// Characters a name or instructions may not carry: controls (newlines only in instructions)
/// and the invisible bidi/format marks that make text read differently than it is.
fn forbidden(c: char, multiline: bool) -> bool {
    (c.is_control() && !(multiline && (c == '\n' || c == '\t')))
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// Validates `create_agent` input (DESIGN §3: a folder an agent names is untrusted): the
/// display name, the folder made from it, and the instructions. Returns (name, folder).
fn agent_name(p: &Value) -> Result<(String, String), String> {
    let raw = p.get("name").and_then(Value::as_str).unwrap_or_default();
    let name = raw.trim();
    if name.is_empty() {
        return Err("name is required".into());
    }
    if name.chars().count() > MAX_AGENT_NAME {
        return Err(format!("name is longer than {MAX_AGENT_NAME} characters"));
    }
    if name.chars().any(|c| forbidden(c, false)) {
        return Err("name contains control or invisible characters".into());
    }
    if name.contains(['/', '\\']) || name.contains("..") {
        return Err("name must not contain a path (no '/', '\\' or '..')".into());
    }
    let folder = nanoclaw_protocol::names::normalize_folder(name).map_err(|e| e.to_string())?;
    if RESERVED_FOLDERS.contains(&folder.as_str()) {
        return Err(format!(
            "the folder {folder:?} is reserved (groups/{folder} is memory shared by every agent); pick another name"
        ));
    }
    Ok((name.to_string(), folder))
}

fn agent_instructions(p: &Value) -> Result<Option<String>, String> {
    let Some(i) = text(p, "instructions") else {
        return Ok(None);
    };
    if i.len() > MAX_INSTRUCTIONS {
        return Err(format!(
            "instructions are {} bytes; the limit is {MAX_INSTRUCTIONS}",
            i.len()
        ));
    }
    let i = i.replace("\r\n", "\n");
    if i.chars().any(|c| forbidden(c, true)) {
        return Err("instructions contain control or invisible characters".into());
    }
    Ok(Some(i))
}

/// `create_agent`: a new agent group whose name and instructions land only in its own, new
/// folder (`groups/<folder>/CLAUDE.md`, written as data, never through a link); the folder may
/// not exist yet, so no agent can write into another's folder or into `groups/global`.
async fn create_agent(host: &Arc<Host>, sess: &db::sessions::Session, p: &Value) -> Outcome {
    let checked = agent_name(p).and_then(|(n, f)| Ok((n, f, agent_instructions(p)?)));
    let (name, folder, instructions) = checked.inspect_err(|e| {
        tracing::warn!(session = %sess.id, error = %e, "create_agent refused: bad input");
    })?;
    let creator = sess.agent_group_id.clone();
    let home = host.home.clone();
    let (f2, n2) = (folder.clone(), name.clone());
    let created = host
        .db
        .call(move |c| {
            if db::agent_groups::by_folder(c, &f2)?.is_some() {
                return Ok(Err(format!("an agent with folder {f2:?} already exists")));
            }
            let dir = home.group_dir(&f2)?;
            if std::fs::symlink_metadata(&dir).is_ok() {
                return Ok(Err(format!("the folder groups/{f2} already exists on disk; pick another name")));
            }
            // One unit: the group, its destinations and its folder, or nothing.
            db::atomic(c, |c| {
                let me = db::agent_groups::get(c, &creator)?.ok_or_else(|| anyhow::anyhow!("creator group is gone"))?;
                let g = db::agent_groups::create(c, &n2, &f2)?;
                let now = nanoclaw_protocol::time::now();
                // Destinations both ways, so each can address the other by folder name.
                for (from, local, to) in [(&me.id, &g.folder, &g.id), (&g.id, &me.folder, &me.id)] {
                    c.execute(
                        "INSERT OR IGNORE INTO agent_destinations(agent_group_id, local_name, target_type, target_id, created_at) VALUES (?1, ?2, 'agent', ?3, ?4)",
                        params![from, local, to, now],
                    )?;
                }
                if let Some(parent) = dir.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                // create_dir, not create_dir_all: fails on anything already there, a link included.
                std::fs::create_dir(&dir)?;
                if let Some(i) = &instructions {
                    use std::io::Write;
                    use std::os::unix::fs::OpenOptionsExt;
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .custom_flags(libc::O_NOFOLLOW)
                        .open(dir.join("CLAUDE.md"))?;
                    f.write_all(format!("# {}\n\n{i}\n", g.name).as_bytes())?;
                }
                Ok(g)
            })
            .map(Ok)
        })
        .await
        .map_err(|e| e.to_string())??;
    let _ = host.refresh_projections().await;
    tracing::info!(session = %sess.id, folder = %created.folder, "agent created by an agent");
    Ok(Reply::Done(json!(format!(
        "created agent {} (destination name {:?}); talk to it with send_to_agent",
        created.name, created.folder
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_names_are_checked_before_they_become_folders() {
        let name = |n: &str| agent_name(&json!({ "name": n }));
        assert_eq!(name("Research Helper").unwrap().1, "research-helper");
        for bad in [
            "Global",
            "../global",
            " global ",
            "../../etc",
            "a/b",
            "x\\y",
            "evil\nname",
            "bell\u{7}",
            "rtl\u{202e}txt",
            "",
            "   ",
        ] {
            assert!(name(bad).is_err(), "{bad:?}");
        }
        assert!(name(&"a".repeat(MAX_AGENT_NAME + 1)).is_err());
        assert!(name(&"a".repeat(MAX_AGENT_NAME)).is_ok());
    }

    #[test]
    fn instructions_are_capped_and_plain_text() {
        let ins = |i: &str| agent_instructions(&json!({ "instructions": i }));
        assert_eq!(
            ins("line 1\r\nline 2\tx").unwrap().unwrap(),
            "line 1\nline 2\tx"
        );
        assert!(ins("bad \u{1b}[2J escape").is_err());
        assert!(ins(&"x".repeat(MAX_INSTRUCTIONS + 1)).is_err());
        assert_eq!(ins("").unwrap(), None);
    }
}
