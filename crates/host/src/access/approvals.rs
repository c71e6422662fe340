//! Self-modification approvals (DESIGN §6): an agent's `install_packages`, `add_mcp_server` or
//! `request_rebuild` waits in `pending_approvals` while a card (Approve / Reject) goes to the
//! first approver reachable by DM — scoped admins, then global admins, then owners. The card
//! is a question of kind `Approval` (id `appr-…`, made by the host), so buttons and numbered
//! replies work as for any question, but only that approver or an admin of the agent group
//! (owners count) can decide it (`questions::authorize`). On
//! approval the agent group's container config changes (its image is rebuilt from the new
//! package set at the next start) and the session's runner restarts; either way the agent is
//! told the outcome with a system message.

use std::sync::Arc;

use nanoclaw_protocol::content::Outbound;
use rusqlite::{params, OptionalExtension};
use serde_json::{json, Value};

use crate::channels::OutboundItem;
use crate::{db, Host};

/// Prefix of approval ids (for people reading logs: what a card decides is its recorded
/// kind, never its id's shape).
pub const PREFIX: &str = "appr-";
/// How long a request waits for an approver (`NANOCLAW_APPROVAL_TTL_MS`, default 7 days).
pub fn ttl(host: &Host) -> chrono::Duration {
    chrono::Duration::milliseconds(
        host.settings
            .u64("NANOCLAW_APPROVAL_TTL_MS", 7 * 24 * 3600 * 1000) as i64,
    )
}
/// The card's options.
pub const OPTIONS: [&str; 2] = ["Approve", "Reject"];

/// The DM route of the first reachable approver of an agent group.
fn approver_route(
    c: &rusqlite::Connection,
    agent_group: &str,
) -> rusqlite::Result<Option<(String, String, String)>> {
    for user in db::users::approvers(c, agent_group)? {
        let dm: Option<(String, String)> = c
            .query_row(
                "SELECT m.channel_type, m.platform_id FROM user_dms d JOIN messaging_groups m ON m.id = d.messaging_group_id WHERE d.user_id = ?1 ORDER BY d.resolved_at DESC LIMIT 1",
                [&user],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((ct, pid)) = dm {
            return Ok(Some((user, ct, pid)));
        }
        // The terminal's owner reads the terminal.
        if user.starts_with("cli:") {
            let pid = crate::channels::cli::CliChannel::platform_for(None);
            if db::messaging_groups::find(c, crate::channels::cli::CHANNEL, &pid)?.is_some() {
                return Ok(Some((user, crate::channels::cli::CHANNEL.to_string(), pid)));
            }
        }
    }
    Ok(None)
}

fn describe(action: &str, p: &Value) -> String {
    let list = |k: &str| {
        p[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let what = match action {
        "install_packages" => format!(
            "install packages (apt: {}; npm: {})",
            list("apt"),
            list("npm")
        ),
        "add_mcp_server" => format!(
            "add the MCP server {:?} ({} {})",
            p["name"].as_str().unwrap_or(""),
            p["command"].as_str().unwrap_or(""),
            list("args")
        ),
        _ => "rebuild its container image".to_string(),
    };
    let reason = p["reason"]
        .as_str()
        .map(|r| format!(" Reason: {r}"))
        .unwrap_or_default();
    format!("{what}.{reason}")
}

/// Parks a request and sends the card; returns what the agent is told meanwhile.
pub async fn request(
    host: &Arc<Host>,
    sess: &db::sessions::Session,
    action: &str,
    payload: &Value,
) -> Result<String, String> {
    let approval = format!("{PREFIX}{}", uuid::Uuid::new_v4().simple());
    let (s, a, pl, g) = (
        sess.id.clone(),
        action.to_string(),
        payload.to_string(),
        sess.agent_group_id.clone(),
    );
    let req = payload
        .get("requestId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let id = approval.clone();
    let expires = chrono::Utc::now() + ttl(host);
    let (route, group_name) = host
        .db
        .call(move |c| {
            let now = chrono::Utc::now();
            c.execute(
                "INSERT INTO pending_approvals(approval_id, session_id, request_id, action, payload, created_at, agent_group_id, expires_at, status, title)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9)",
                // v2's column is NOT NULL: '' stands for "the agent gave none".
                params![id, s, req.as_deref().unwrap_or(""), a, pl, nanoclaw_protocol::time::fmt(now), g,
                    nanoclaw_protocol::time::fmt(expires), format!("Agent asks: {a}")],
            )?;
            let name = db::agent_groups::get(c, &g)?.map(|g| g.name).unwrap_or_default();
            Ok((approver_route(c, &g)?, name))
        })
        .await
        .map_err(|e| e.to_string())?;
    // A request whose card nobody will see must not wait for a decision: it is withdrawn
    // and the agent told why (it may ask again).
    let withdraw = |why: String| async {
        let id = approval.clone();
        let _ = host
            .db
            .call(move |c| {
                Ok(c.execute(
                    "DELETE FROM pending_approvals WHERE approval_id = ?1",
                    [&id],
                )?)
            })
            .await;
        Err(why)
    };
    let Some((approver, ct, pid)) = route else {
        return withdraw(
            "no approver can be reached by DM (pair an owner first: nanoclaw pair telegram)".into(),
        )
        .await;
    };
    let Some(channel) = host.channels.get(&ct).cloned() else {
        return withdraw(format!("the approver's channel {ct} is not running")).await;
    };
    let question = format!("Agent {group_name} asks to {}", describe(action, payload));
    let content = Outbound::AskQuestion {
        question_id: approval.clone(),
        title: "Approval needed".into(),
        question: question.clone(),
        options: OPTIONS.iter().map(|o| json!(o)).collect(),
    };
    let item = OutboundItem {
        message_out_id: approval.clone(),
        platform_id: pid.clone(),
        thread_id: None,
        in_reply_to: None,
        target_platform_message_id: None,
        content,
        files: vec![],
    };
    // Host-originated, so outside the intents (docs/ARCHITECTURE.md, "One send path"): one
    // attempt, its failure returned to the agent.
    let sent = match channel.send(&item).await {
        Ok(sent) => sent,
        Err(e) => return withdraw(format!("the approval card could not be sent: {e}")).await,
    };
    let options =
        nanoclaw_protocol::content::QuestionOption::normalize_all(&OPTIONS.map(|o| json!(o)));
    crate::access::questions::record(
        host,
        crate::access::questions::NewCard {
            id: &approval,
            session_id: &sess.id,
            message_out_id: &approval,
            agent_question_id: None,
            kind: crate::access::questions::Kind::Approval,
            for_user: Some(&approver),
            question: &question,
            options: &options,
            route: (&ct, &pid, None),
            platform_message_id: sent,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    tracing::info!(session = %sess.id, action, approval = %approval, approver = %approver, "approval requested");
    Ok(format!("waiting for an approver (approval {approval})"))
}

/// Applies an approver's choice.
pub async fn decide(
    host: &Arc<Host>,
    approval: &str,
    approve: bool,
    approver: &str,
) -> anyhow::Result<()> {
    let a = approval.to_string();
    let row: Option<(String, String, String, Option<String>, String)> = host
        .db
        .call(move |c| {
            Ok(c.query_row(
                "SELECT session_id, action, payload, request_id, agent_group_id FROM pending_approvals
                 WHERE approval_id = ?1 AND status = 'pending' AND (expires_at IS NULL OR expires_at > ?2)",
                params![a, nanoclaw_protocol::time::now()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?)
        })
        .await?;
    let Some((session_id, action, payload, request_id, group)) = row else {
        anyhow::bail!("approval {approval} is not pending");
    };
    let payload: Value = serde_json::from_str(&payload).unwrap_or_default();
    let (a, status, who) = (
        approval.to_string(),
        if approve { "approved" } else { "rejected" },
        approver.to_string(),
    );
    let (act, pl, g) = (action.clone(), payload.clone(), group.clone());
    host.db
        .call(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE pending_approvals SET status = ?2 WHERE approval_id = ?1",
                params![a, status],
            )?;
            if approve {
                apply(&tx, &g, &act, &pl)?;
            }
            tx.commit()?;
            tracing::info!(approval = %a, status, approver = %who, "approval decided");
            Ok(())
        })
        .await?;
    let sess = {
        let sid = session_id.clone();
        host.db
            .call(move |c| Ok(db::sessions::get(c, &sid)?))
            .await?
    };
    if let Some(sess) = sess {
        if approve {
            // The next start picks up the new config (and builds the group's image).
            host.runners.stop(&sess.id);
        }
        let result = if approve {
            format!(
                "{} approved; your container restarts with it",
                describe(&action, &payload)
            )
        } else {
            format!(
                "{} was rejected by the approver",
                describe(&action, &payload)
            )
        };
        let mut reply = json!({"action": action, "status": status, "result": result});
        if let Some(r) = request_id.as_deref().filter(|r| !r.is_empty()) {
            reply["requestId"] = json!(r);
        }
        host.write_system(&sess, reply.to_string()).await?;
    }
    Ok(())
}

/// Expires requests nobody decided in time (sweep); each asking agent is told.
pub async fn expire(host: &Arc<Host>) -> anyhow::Result<usize> {
    let now = nanoclaw_protocol::time::now();
    let expired: Vec<(String, String, String, Option<String>)> = host
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let rows = tx
                .prepare(
                    "SELECT session_id, action, payload, request_id FROM pending_approvals
                     WHERE status = 'pending' AND expires_at IS NOT NULL AND expires_at <= ?1",
                )?
                .query_map([&now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            tx.execute(
                "UPDATE pending_approvals SET status = 'expired'
                 WHERE status = 'pending' AND expires_at IS NOT NULL AND expires_at <= ?1",
                [&now],
            )?;
            tx.commit()?;
            Ok(rows)
        })
        .await?;
    for (session_id, action, payload, request_id) in &expired {
        let payload: Value = serde_json::from_str(payload).unwrap_or_default();
        let sid = session_id.clone();
        let Some(sess) = host
            .db
            .call(move |c| Ok(db::sessions::get(c, &sid)?))
            .await?
        else {
            continue;
        };
        tracing::info!(session = %sess.id, action, "approval request expired");
        let result = format!(
            "{} expired: no approver decided in time; ask again if it is still needed",
            describe(action, &payload)
        );
        let mut reply = json!({"action": action, "status": "expired", "result": result});
        if let Some(r) = request_id.as_deref().filter(|r| !r.is_empty()) {
            reply["requestId"] = json!(r);
        }
        host.write_system(&sess, reply.to_string()).await?;
    }
    Ok(expired.len())
}

/// Merges an approved request into the agent group's container config.
fn apply(c: &rusqlite::Connection, group: &str, action: &str, p: &Value) -> anyhow::Result<()> {
    let now = nanoclaw_protocol::time::now();
    c.execute(
        "INSERT OR IGNORE INTO container_configs(agent_group_id, updated_at) VALUES (?1, ?2)",
        params![group, now],
    )?;
    let (apt, npm, mcp): (String, String, String) = c.query_row(
        "SELECT packages_apt, packages_npm, mcp_servers FROM container_configs WHERE agent_group_id = ?1",
        [group],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    match action {
        "install_packages" => {
            let mut cur =
                crate::runners::image::Packages::from_columns(&apt, &npm).unwrap_or_default();
            for (list, k) in [(&mut cur.apt, "apt"), (&mut cur.npm, "npm")] {
                for v in p[k]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if !list.iter().any(|x| x == v) {
                        list.push(v.to_string());
                    }
                }
            }
            crate::runners::image::validate_packages(&cur)?;
            c.execute(
                "UPDATE container_configs SET packages_apt = ?2, packages_npm = ?3, updated_at = ?4
                 WHERE agent_group_id = ?1",
                params![
                    group,
                    json!(cur.apt).to_string(),
                    json!(cur.npm).to_string(),
                    now
                ],
            )?;
        }
        "add_mcp_server" => {
            let mut cur: Value = serde_json::from_str(&mcp).unwrap_or(json!({}));
            if !cur.is_object() {
                cur = json!({});
            }
            let name = p["name"].as_str().unwrap_or_default();
            nanoclaw_protocol::names::validate(name)?;
            cur[name] = json!({"command": p["command"], "args": p["args"], "env": p["env"]});
            c.execute("UPDATE container_configs SET mcp_servers = ?2, updated_at = ?3 WHERE agent_group_id = ?1", params![group, cur.to_string(), now])?;
        }
        _ => {}
    }
    Ok(())
}
