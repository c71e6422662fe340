//! Entity rules that generic CRUD must not bypass: they route writes through the `db::*`
//! helpers that own each invariant (folder names, wiring ⇒ destination, owner is global,
//! admin ⇒ member) and add the checks a person needs a clear message for.
//!
//! Each function is one hook of a resource's descriptor ([`super::resources::Hooks`]): the
//! descriptor says which run, nothing dispatches on a resource's name.

use std::str::FromStr;

use nanoclaw_protocol::status::{
    EngageMode, IgnoredMessagePolicy, SenderScope, SessionMode, UnknownValue,
};
use nanoclaw_protocol::{names, Home};
use rusqlite::types::Value as Sql;
use rusqlite::Connection;
use serde_json::Value;

use super::crud::{self, Key, Row};
use super::resources::{self, Resource};
use super::CtlError;
use crate::db;

/// `groups` create: a valid, unused folder (`global` is reserved), made on disk too.
pub(super) fn create_group(
    c: &Connection,
    home: &Home,
    res: &Resource,
    row: &Row,
) -> Result<Key, CtlError> {
    let name = row.text("name").unwrap_or_default();
    if name.trim().is_empty() {
        return Err(CtlError::usage("--name of groups cannot be empty"));
    }
    let folder = match row.text("folder") {
        Some(f) => f,
        None => names::normalize_folder(&name).map_err(|_| {
            CtlError::usage(format!(
                "cannot make a folder name from --name {name:?}: pass --folder (letters, digits, '-', '_', '.')"
            ))
        })?,
    };
    names::validate(&folder).map_err(|_| {
        CtlError::usage(format!(
            "invalid --folder {folder:?}: use letters, digits, '-', '_' or '.', starting with a letter or digit, at most {} characters",
            names::MAX_NAME
        ))
    })?;
    if folder == "global" {
        return Err(CtlError::usage(
            "invalid --folder \"global\": groups/global holds memory shared by every agent; pick another folder",
        ));
    }
    if let Some(g) =
        db::agent_groups::by_folder(c, &folder).map_err(|e| crud::sql_error(Some(res), e))?
    {
        return Err(CtlError::conflict(format!(
            "folder {folder} is already used by group {} ({}): pass another --folder",
            g.id, g.name
        )));
    }
    let g = db::agent_groups::create(c, &name, &folder).map_err(|e| crud::helper_error(res, e))?;
    if let Some(p) = row.get("agent_provider").filter(|v| **v != Sql::Null) {
        c.execute(
            "UPDATE agent_groups SET agent_provider = ?1 WHERE id = ?2",
            rusqlite::params![p, g.id],
        )
        .map_err(|e| crud::sql_error(Some(res), e))?;
    }
    let dir = home
        .group_dir(&g.folder)
        .map_err(|e| CtlError::usage(e.to_string()))?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| CtlError::internal(format!("cannot create {}: {e}", dir.display())))?;
    Ok(vec![("id", Sql::Text(g.id))])
}

/// `wirings` create: one wiring per chat and agent group, through `db::wirings::create` (which
/// adds the agent's destination for the chat).
pub(super) fn create_wiring(
    c: &Connection,
    _home: &Home,
    res: &Resource,
    row: &Row,
) -> Result<Key, CtlError> {
    crud::check_refs(c, res, row)?;
    let mg = row.text("messaging_group_id").unwrap_or_default();
    let ag = row.text("agent_group_id").unwrap_or_default();
    let existing: Option<String> = c
        .query_row(
            "SELECT id FROM messaging_group_agents WHERE messaging_group_id=?1 AND agent_group_id=?2",
            [&mg, &ag],
            |r| r.get(0),
        )
        .ok();
    if let Some(id) = existing {
        return Err(CtlError::conflict(format!(
            "{mg} is already wired to {ag} ({id}): change it with `nanoclaw ctl wirings update {id} --field value`"
        )));
    }
    let pattern = row.text("engage_pattern");
    if let Some(p) = &pattern {
        check_pattern(p)?;
    }
    let mut w = db::wirings::NewWiring::new(&mg, &ag);
    w.engage_mode = typed::<EngageMode>(row, "engage_mode")?;
    w.engage_pattern = pattern.as_deref();
    w.sender_scope = typed::<SenderScope>(row, "sender_scope")?;
    w.ignored_message_policy = typed::<IgnoredMessagePolicy>(row, "ignored_message_policy")?;
    w.session_mode = typed::<SessionMode>(row, "session_mode")?;
    w.priority = match row.get("priority") {
        Some(Sql::Integer(n)) => *n,
        _ => 0,
    };
    let id = db::wirings::create(c, &w).map_err(|e| crud::helper_error(res, e))?;
    Ok(vec![("id", Sql::Text(id))])
}

/// `users` create: an id `<channel_type>:<handle>`, whose channel type is the default kind.
pub(super) fn create_user(
    c: &Connection,
    _home: &Home,
    res: &Resource,
    row: &Row,
) -> Result<Key, CtlError> {
    let id = row.text("id").unwrap_or_default();
    let Some((channel, handle)) = id.split_once(':') else {
        return Err(bad_user_id(&id));
    };
    if channel.is_empty() || handle.is_empty() || id.chars().any(char::is_whitespace) {
        return Err(bad_user_id(&id));
    }
    if crud::exists(c, res, &id)? {
        return Err(CtlError::conflict(format!(
            "user {id} already exists: change it with `nanoclaw ctl users update {id} --display-name ...`"
        )));
    }
    let mut row = row.clone();
    if !row.has("kind") {
        let col = res.col("kind").expect("users.kind");
        row.vals.push((col, Sql::Text(channel.to_string())));
    }
    crud::insert(c, res, &row)
}

fn bad_user_id(id: &str) -> CtlError {
    CtlError::usage(format!(
        "invalid user id {id:?}: users are <channel_type>:<handle>, e.g. telegram:42 or cli:local"
    ))
}

/// `roles` create: the owner role is global, through `db::users::grant` (admin ⇒ member).
pub(super) fn create_role(
    c: &Connection,
    _home: &Home,
    res: &Resource,
    row: &Row,
) -> Result<Key, CtlError> {
    let user = row.text("user_id").unwrap_or_default();
    let role = row.text("role").unwrap_or_default();
    let ag = row.text("agent_group_id");
    if role == "owner" && ag.is_some() {
        return Err(CtlError::usage(
            "the owner role is global: omit --agent-group-id (or grant --role admin for one agent group)",
        ));
    }
    crud::check_refs(c, res, row)?;
    db::users::grant(
        c,
        &user,
        &role,
        ag.as_deref(),
        row.text("granted_by").as_deref(),
    )
    .map_err(|e| crud::helper_error(res, e))?;
    Ok(row.key(res))
}

/// `members` create: through `db::users::add_member`.
pub(super) fn create_member(
    c: &Connection,
    _home: &Home,
    res: &Resource,
    row: &Row,
) -> Result<Key, CtlError> {
    crud::check_refs(c, res, row)?;
    let user = row.text("user_id").unwrap_or_default();
    let ag = row.text("agent_group_id").unwrap_or_default();
    db::users::add_member(c, &user, &ag, row.text("added_by").as_deref())
        .map_err(|e| crud::sql_error(Some(res), e))?;
    Ok(row.key(res))
}

/// `destinations` create: a local name that is a valid name, and a target that exists.
pub(super) fn create_destination(
    c: &Connection,
    _home: &Home,
    res: &Resource,
    row: &Row,
) -> Result<Key, CtlError> {
    crud::check_refs(c, res, row)?;
    let local = row.text("local_name").unwrap_or_default();
    names::validate(&local).map_err(|_| {
        CtlError::usage(format!(
            "invalid --local-name {local:?}: use letters, digits, '-', '_' or '.', starting with a letter or digit, at most {} characters",
            names::MAX_NAME
        ))
    })?;
    check_target(
        c,
        &row.text("target_type").unwrap_or_default(),
        &row.text("target_id").unwrap_or_default(),
    )?;
    crud::insert(c, res, row)
}

/// `wirings` update: a changed pattern (or mode) must leave a pattern that compiles.
pub(super) fn update_wiring(
    _c: &Connection,
    _res: &Resource,
    current: &Value,
    row: &Row,
) -> Result<(), CtlError> {
    if row.has("engage_pattern") || row.has("engage_mode") {
        if let Some(p) = after(current, row, "engage_pattern") {
            check_pattern(&p)?;
        }
    }
    Ok(())
}

/// `destinations` update: a changed target must exist.
pub(super) fn update_destination(
    c: &Connection,
    _res: &Resource,
    current: &Value,
    row: &Row,
) -> Result<(), CtlError> {
    if row.has("target_type") || row.has("target_id") {
        check_target(
            c,
            &after(current, row, "target_type").unwrap_or_default(),
            &after(current, row, "target_id").unwrap_or_default(),
        )?;
    }
    Ok(())
}

/// `members` delete: admins stay members, so an admin's membership goes only with the role.
pub(super) fn delete_member(c: &Connection, res: &Resource, key: &Key) -> Result<(), CtlError> {
    let (Sql::Text(user), Sql::Text(ag)) = (&key[0].1, &key[1].1) else {
        return Ok(());
    };
    let admin: bool = c
        .query_row(
            "SELECT EXISTS(SELECT 1 FROM user_roles WHERE user_id=?1 AND role='admin' AND agent_group_id=?2)",
            [user, ag],
            |r| r.get(0),
        )
        .map_err(|e| crud::sql_error(Some(res), e))?;
    if admin {
        return Err(CtlError::conflict(format!(
            "{user} is an admin of {ag}, and admins stay members: first run `nanoclaw ctl roles delete --user-id {user} --role admin --agent-group-id {ag}`"
        )));
    }
    Ok(())
}

/// The value of `name` after an update: the new one if given, else the stored one.
fn after(current: &Value, row: &Row, name: &str) -> Option<String> {
    if row.has(name) {
        row.text(name)
    } else {
        current[name].as_str().map(str::to_string)
    }
}

/// The typed value of a column of `row`, or its type's default when the row has none.
fn typed<T: FromStr<Err = UnknownValue> + Default>(row: &Row, name: &str) -> Result<T, CtlError> {
    match row.text(name) {
        Some(s) => s
            .parse()
            .map_err(|e: UnknownValue| CtlError::usage(e.to_string())),
        None => Ok(T::default()),
    }
}

/// The destination target must exist: a messaging group (channel) or an agent group (agent).
fn check_target(c: &Connection, target_type: &str, target_id: &str) -> Result<(), CtlError> {
    let target = match target_type {
        "channel" => &resources::MESSAGING_GROUPS,
        _ => &resources::GROUPS,
    };
    if !crud::exists(c, target, target_id)? {
        return Err(CtlError::not_found(format!(
            "no {} with id {target_id:?} (given as --target-id for target type {target_type}; see `nanoclaw ctl {} list`)",
            target.name, target.name
        )));
    }
    Ok(())
}

/// A pattern must compile; the message keeps only regex's own one-line reason.
fn check_pattern(p: &str) -> Result<(), CtlError> {
    regex::Regex::new(p).map(|_| ()).map_err(|e| {
        let text = e.to_string();
        let reason = text
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("error:").map(str::trim))
            .unwrap_or(text.lines().last().unwrap_or("invalid"))
            .to_string();
        CtlError::usage(format!(
            "invalid --engage-pattern {p:?}: not a regular expression ({reason})"
        ))
    })
}
