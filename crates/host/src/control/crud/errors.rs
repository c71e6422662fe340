//! Failures as one-line ctl errors that say which rule was broken and what to do.

use rusqlite::types::Value as Sql;

use super::Key;
use crate::control::resources::Resource;
use crate::control::CtlError;

/// Renders a key for messages: `id ag-x` or `user_id=cli:local role=owner agent_group_id=NULL`.
pub fn show_key(key: &Key) -> String {
    let show = |v: &Sql| match v {
        Sql::Null => "NULL".to_string(),
        Sql::Integer(i) => i.to_string(),
        Sql::Real(f) => f.to_string(),
        Sql::Text(s) => s.clone(),
        Sql::Blob(_) => "<blob>".to_string(),
    };
    match key.as_slice() {
        [(k, v)] => format!("{k} {}", show(v)),
        _ => key
            .iter()
            .map(|(k, v)| format!("{k}={}", show(v)))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// "no groups with id ag-x (see …)".
pub fn not_found(res: &Resource, key: &Key) -> CtlError {
    CtlError::not_found(format!(
        "no {} with {} (see `nanoclaw ctl {} list`)",
        res.name,
        show_key(key),
        res.name
    ))
}

/// Turns an SQLite failure into a one-line message naming the rule that was broken.
pub fn sql_error(res: Option<&Resource>, e: rusqlite::Error) -> CtlError {
    use rusqlite::ffi;
    let name = res.map(|r| r.name).unwrap_or("row");
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        let detail = msg.clone().unwrap_or_else(|| f.to_string());
        // "UNIQUE constraint failed: t.a, t.b" → "a, b"
        let cols = detail
            .split_once(": ")
            .map(|(_, c)| {
                c.split(", ")
                    .map(|x| x.rsplit('.').next().unwrap_or(x).replace('_', "-"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        match f.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                return CtlError::conflict(format!(
                    "a {name} row with the same {cols} already exists: use other values, or update the existing row"
                ))
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                return CtlError::not_found(format!(
                    "a {name} row refers to a row that does not exist: check the ids you passed"
                ))
            }
            ffi::SQLITE_CONSTRAINT_CHECK => {
                return CtlError::usage(format!(
                    "a value is not allowed for {name} ({detail}): see `nanoclaw ctl {name} help`"
                ))
            }
            ffi::SQLITE_CONSTRAINT_NOTNULL => {
                return CtlError::usage(format!("missing --{cols} for {name}"))
            }
            _ => {}
        }
        if matches!(
            f.code,
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
        ) {
            return CtlError::internal("the database is busy: try again in a moment");
        }
    }
    CtlError::internal(format!("database error: {e}"))
}

/// Turns an entity helper's error into a ctl error.
pub fn helper_error(res: &Resource, e: anyhow::Error) -> CtlError {
    if let Some(c) = e.downcast_ref::<CtlError>() {
        return c.clone();
    }
    match e.downcast::<rusqlite::Error>() {
        Ok(s) => sql_error(Some(res), s),
        Err(e) => match e.downcast_ref::<nanoclaw_protocol::Error>() {
            Some(nanoclaw_protocol::Error::Sqlite(_)) | Some(nanoclaw_protocol::Error::Io(_)) => {
                CtlError::internal(format!("{e:#}"))
            }
            _ => CtlError::usage(format!("{e:#}")),
        },
    }
}
