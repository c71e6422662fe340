//! The ACL of outbound rows: where a session may post.

use nanoclaw_protocol::status::SessionMode;

use super::super::Host;
use crate::db;

impl Host {
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
                // Read as the wirings are (an odd or missing mode is `shared`), so the ACL
                // and routing agree on which session a thread belongs to.
                let per_thread = |mg: &str| -> rusqlite::Result<bool> {
                    let mode: Option<SessionMode> = c
                        .query_row(
                            "SELECT session_mode FROM messaging_group_agents WHERE messaging_group_id = ?1 AND agent_group_id = ?2",
                            [mg, &s.agent_group_id],
                            |r| db::choice::read(r, 0, "messaging_group_agents.session_mode"),
                        )
                        .optional()?;
                    Ok(mode == Some(SessionMode::PerThread))
                };
                if let Some(mg) = s.messaging_group_id.as_deref() {
                    if let Some(own) = db::messaging_groups::get(c, mg)? {
                        if own.channel_type == ct && own.platform_id == pid {
                            return Ok(!per_thread(mg)? || thread == s.thread_id);
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
                    Some(mg) => !per_thread(&mg.id)?,
                    None => true,
                })
            })
            .await
    }
}
