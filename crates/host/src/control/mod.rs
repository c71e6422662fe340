//! The admin API behind `nanoclaw ctl`: generic, table-driven CRUD over the central DB.
//!
//! One function, [`execute`], serves both transports: the CLI calls it on its own connection
//! when no host runs, and the running host calls it for each request on `data/control.sock`
//! ([`server::serve`]), then refreshes running sessions' projections.
//!
//! - [`resources`]: a static descriptor per resource (table, key, typed columns).
//! - [`crud`]: the generic SQL built from descriptors; user values are always bound parameters.
//! - [`hooks`]: entity rules that live in `db::*` helpers (folders, wirings, roles…), attached
//!   to their resource's descriptor ([`resources::Hooks`]).
//! - [`server`]: the JSON-lines socket server.

pub mod args;
pub mod crud;
pub mod hooks;
pub mod resources;
pub mod server;

use nanoclaw_protocol::Home;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

pub use resources::{Resource, Verb};
pub use server::serve;

/// Column name → value (strings from the CLI; any JSON scalar over the socket).
pub type Fields = Map<String, Value>;

/// One ctl request: `{"resource":..,"verb":..,"id":..,"fields":{..},"filters":{..},"limit":..}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Request {
    /// Resource name (`groups`, `wirings`…).
    pub resource: String,
    /// list | get | create | update | delete.
    pub verb: String,
    /// Key of a single-key resource (get/update/delete; create for `users`/`container-configs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Values to write; for composite keys also the key columns.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Fields,
    /// `list` filters: column = value.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub filters: Fields,
    /// `list` row limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// One reply line: `{"ok":true,"data":..}` or `{"ok":false,"error":".."}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Response {
    /// Success.
    pub ok: bool,
    /// Result on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// One-line message on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    /// From an execution result.
    pub fn from_result(r: Result<Value, CtlError>) -> Self {
        match r {
            Ok(v) => Self {
                ok: true,
                data: Some(v),
                error: None,
            },
            Err(e) => Self::error(e.message),
        }
    }
    /// A failure.
    pub fn error(msg: impl Into<String>) -> Self {
        Self {
            ok: false,
            data: None,
            error: Some(one_line(&msg.into())),
        }
    }
}

/// What went wrong, broadly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad resource, verb, flag or value.
    Usage,
    /// No row with that key.
    NotFound,
    /// Would break a uniqueness or invariant rule.
    Conflict,
    /// The DB or the filesystem failed.
    Internal,
}

/// A ctl failure with a one-line message saying what is wrong and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct CtlError {
    /// Category.
    pub kind: ErrorKind,
    /// One line.
    pub message: String,
}

impl CtlError {
    fn new(kind: ErrorKind, msg: impl AsRef<str>) -> Self {
        Self {
            kind,
            message: one_line(msg.as_ref()),
        }
    }
    /// Bad input.
    pub fn usage(msg: impl AsRef<str>) -> Self {
        Self::new(ErrorKind::Usage, msg)
    }
    /// Unknown key.
    pub fn not_found(msg: impl AsRef<str>) -> Self {
        Self::new(ErrorKind::NotFound, msg)
    }
    /// Conflict with existing data.
    pub fn conflict(msg: impl AsRef<str>) -> Self {
        Self::new(ErrorKind::Conflict, msg)
    }
    /// Something outside the request failed.
    pub fn internal(msg: impl AsRef<str>) -> Self {
        Self::new(ErrorKind::Internal, msg)
    }
}

impl std::fmt::Display for CtlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CtlError {}

/// Collapses whitespace runs (newlines included) so a message prints as one line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Should a successful `req` be followed by `Host::refresh_projections`?
pub fn needs_refresh(req: &Request) -> bool {
    resources::find(&req.resource).is_some_and(|r| r.refresh)
        && Verb::parse(&req.verb).is_some_and(Verb::writes)
}

/// Resolves the resource of a request, or says which exist.
pub fn resource(name: &str) -> Result<&'static Resource, CtlError> {
    resources::find(name).ok_or_else(|| {
        CtlError::usage(format!(
            "unknown resource {name:?} (resources: {})",
            resources::names()
        ))
    })
}

/// Resolves the verb of a request for a resource, or says which it has.
pub fn verb(res: &Resource, name: &str) -> Result<Verb, CtlError> {
    match Verb::parse(name) {
        Some(v) if res.verbs.contains(&v) => Ok(v),
        Some(v) => Err(CtlError::usage(format!(
            "{} cannot {} (verbs: {})",
            res.name,
            v.name(),
            res.verb_names()
        ))),
        None => Err(CtlError::usage(format!(
            "unknown verb {name:?} for {} (verbs: {})",
            res.name,
            res.verb_names()
        ))),
    }
}

/// Executes one request on the central DB. Writes are one transaction; a `groups create` also
/// creates `groups/<folder>/` under `home`.
///
/// Returns: `list` → array of rows; `get`/`create`/`update` → the row; `delete` → `{"deleted": n}`.
pub fn execute(conn: &mut Connection, home: &Home, req: &Request) -> Result<Value, CtlError> {
    let res = resource(&req.resource)?;
    let verb = verb(res, &req.verb)?;
    if verb != Verb::List {
        if !req.filters.is_empty() {
            return Err(CtlError::usage(format!(
                "filters only apply to list (got them for {} {})",
                res.name,
                verb.name()
            )));
        }
        if req.limit.is_some() {
            return Err(CtlError::usage("--limit only applies to list"));
        }
    }
    match verb {
        Verb::List => {
            if req.id.is_some() {
                return Err(CtlError::usage(format!(
                    "list takes no id: filter with --field value (use `nanoclaw ctl {} get <id>` for one row)",
                    res.name
                )));
            }
            if !req.fields.is_empty() {
                return Err(CtlError::usage(
                    "list takes filters, not fields (send them as \"filters\")",
                ));
            }
            crud::list(conn, res, &req.filters, req.limit)
        }
        Verb::Get => {
            let (key, rest) = crud::split_key(res, req.id.as_deref(), &req.fields)?;
            crud::no_extra_fields(res, verb, &rest)?;
            crud::get(conn, res, &key)
        }
        Verb::Create => {
            let row = crud::insert_values(res, req.id.as_deref(), &req.fields)?;
            in_tx(conn, |tx| {
                let key = match res.hooks.create {
                    Some(create) => create(tx, home, res, &row)?,
                    None => crud::create(tx, res, &row)?,
                };
                crud::get(tx, res, &key)
            })
        }
        Verb::Update => {
            let (key, rest) = crud::split_key(res, req.id.as_deref(), &req.fields)?;
            let row = crud::update_values(res, &rest)?;
            in_tx(conn, |tx| {
                let current = crud::get(tx, res, &key)?;
                if let Some(check) = res.hooks.before_update {
                    check(tx, res, &current, &row)?;
                }
                crud::check_refs(tx, res, &row)?;
                crud::update(tx, res, &key, &row)?;
                crud::get(tx, res, &key)
            })
        }
        Verb::Delete => {
            let (key, rest) = crud::split_key(res, req.id.as_deref(), &req.fields)?;
            crud::no_extra_fields(res, verb, &rest)?;
            in_tx(conn, |tx| {
                if let Some(check) = res.hooks.before_delete {
                    check(tx, res, &key)?;
                }
                let n = crud::delete(tx, res, &key)?;
                if n == 0 {
                    return Err(crud::not_found(res, &key));
                }
                Ok(json!({ "deleted": n }))
            })
        }
    }
}

/// Runs `f` in a transaction, committing on success.
fn in_tx(
    conn: &mut Connection,
    f: impl FnOnce(&rusqlite::Transaction) -> Result<Value, CtlError>,
) -> Result<Value, CtlError> {
    let tx = conn.transaction().map_err(|e| crud::sql_error(None, e))?;
    let v = f(&tx)?;
    tx.commit().map_err(|e| crud::sql_error(None, e))?;
    Ok(v)
}

#[cfg(test)]
mod tests;
