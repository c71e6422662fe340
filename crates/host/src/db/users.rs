//! `users`, `user_roles`, `agent_group_members`: identity and privilege (per user, never per group).

use rusqlite::{params, Connection};

/// Creates the user row if missing (`id` is `<channel_type>:<handle>`).
pub fn ensure(
    c: &Connection,
    id: &str,
    kind: &str,
    display_name: Option<&str>,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO users(id, kind, display_name, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(id) DO UPDATE SET display_name = COALESCE(excluded.display_name, users.display_name)
         WHERE users.display_name IS NOT excluded.display_name AND excluded.display_name IS NOT NULL",
    )?
    .execute(params![id, kind, display_name, super::now()])?;
    Ok(())
}

/// Grants a role. An owner role is always global; admin of a group implies membership of it.
pub fn grant(
    c: &Connection,
    user: &str,
    role: &str,
    agent_group: Option<&str>,
    granted_by: Option<&str>,
) -> anyhow::Result<()> {
    match (role, agent_group) {
        ("owner", Some(_)) => anyhow::bail!("the owner role is global: omit --agent-group-id"),
        ("owner" | "admin", _) => {}
        (other, _) => anyhow::bail!("unknown role {other:?}: use owner or admin"),
    }
    super::atomic(c, |tx| {
        tx.execute(
            "INSERT INTO user_roles(user_id, role, agent_group_id, granted_by, granted_at)
         SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS (
           SELECT 1 FROM user_roles WHERE user_id=?1 AND role=?2 AND agent_group_id IS ?3)",
            params![user, role, agent_group, granted_by, super::now()],
        )?;
        if let Some(ag) = agent_group {
            add_member(tx, user, ag, granted_by)?;
        }
        Ok(())
    })
}

/// Adds a plain member of an agent group (idempotent).
pub fn add_member(
    c: &Connection,
    user: &str,
    agent_group: &str,
    by: Option<&str>,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT OR IGNORE INTO agent_group_members(user_id, agent_group_id, added_by, added_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![user, agent_group, by, super::now()],
    )?;
    Ok(())
}

/// Owner, global admin, scoped admin or member of `agent_group`.
pub fn is_known_to(c: &Connection, user: &str, agent_group: &str) -> rusqlite::Result<bool> {
    c.prepare_cached(
        "SELECT EXISTS(SELECT 1 FROM user_roles WHERE user_id=?1 AND (agent_group_id IS NULL OR agent_group_id=?2))
             OR EXISTS(SELECT 1 FROM agent_group_members WHERE user_id=?1 AND agent_group_id=?2)",
    )?
    .query_row(params![user, agent_group], |r| r.get(0))
}

/// Known to any agent group wired to the chat, or privileged globally.
pub fn is_known_in_chat(c: &Connection, user: &str, mg: &str) -> rusqlite::Result<bool> {
    c.prepare_cached(
        "SELECT EXISTS(SELECT 1 FROM user_roles WHERE user_id=?1 AND (agent_group_id IS NULL OR agent_group_id IN
                 (SELECT agent_group_id FROM messaging_group_agents WHERE messaging_group_id=?2)))
             OR EXISTS(SELECT 1 FROM agent_group_members m JOIN messaging_group_agents w
                 ON w.agent_group_id = m.agent_group_id WHERE m.user_id=?1 AND w.messaging_group_id=?2)",
    )?
    .query_row(params![user, mg], |r| r.get(0))
}

/// Owners, global admins and admins scoped to `agent_group`: passed to the runner for command gating.
/// Who may approve for an agent group, in the order they are asked: scoped admins, global
/// admins, then owners (each once).
pub fn approvers(c: &Connection, agent_group: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare_cached(
        "SELECT user_id FROM user_roles WHERE (role = 'admin' AND agent_group_id = ?1)
         UNION ALL SELECT user_id FROM user_roles WHERE role = 'admin' AND agent_group_id IS NULL
         UNION ALL SELECT user_id FROM user_roles WHERE role = 'owner'",
    )?;
    let rows: Vec<String> = st
        .query_map([agent_group], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut seen = std::collections::HashSet::new();
    Ok(rows
        .into_iter()
        .filter(|u| seen.insert(u.clone()))
        .collect())
}

/// Admin user ids (owners, global and scoped admins) of an agent group.
pub fn admin_ids(c: &Connection, agent_group: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare_cached(
        "SELECT DISTINCT user_id FROM user_roles WHERE agent_group_id IS NULL OR agent_group_id=?1 ORDER BY user_id",
    )?;
    let rows = st.query_map([agent_group], |r| r.get(0))?;
    rows.collect()
}
