//! Generic CRUD over a [`Resource`]: dynamic SQL whose identifiers come only from the static
//! descriptors, and whose values are always bound parameters.

use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::{params_from_iter, Connection};
use serde_json::{Map, Number, Value};

use super::resources::{self, Access, Col, Gen, Kind, Resource, Verb};
use super::{CtlError, Fields};

/// A key: column → value (NULL matches NULL).
pub type Key = Vec<(&'static str, Sql)>;

/// Typed values to write, in descriptor order.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Column and value.
    pub vals: Vec<(&'static Col, Sql)>,
}

impl Row {
    /// The value of a column, if present.
    pub fn get(&self, name: &str) -> Option<&Sql> {
        self.vals
            .iter()
            .find(|(c, _)| c.name == name)
            .map(|(_, v)| v)
    }
    /// The text value of a column (None when absent or NULL).
    pub fn text(&self, name: &str) -> Option<String> {
        match self.get(name)? {
            Sql::Text(s) => Some(s.clone()),
            Sql::Integer(i) => Some(i.to_string()),
            _ => None,
        }
    }
    /// Is the column present (NULL included)?
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    /// The key of this row.
    pub fn key(&self, res: &Resource) -> Key {
        res.key
            .iter()
            .map(|k| (*k, self.get(k).cloned().unwrap_or(Sql::Null)))
            .collect()
    }
}

/// Looks a field name up (dashes accepted), or lists the fields there are.
pub fn column(res: &Resource, name: &str) -> Result<&'static Col, CtlError> {
    let norm = name.replace('-', "_");
    res.col(&norm).ok_or_else(|| {
        CtlError::usage(format!(
            "unknown field --{} for {} (fields: {})",
            name.replace('_', "-"),
            res.name,
            res.flags()
        ))
    })
}

/// Converts a JSON/CLI value into the column's SQL value, or says what was expected.
pub fn convert(res: &Resource, col: &Col, v: &Value) -> Result<Sql, CtlError> {
    let flag = col.flag();
    let bad = |shown: &str| {
        CtlError::usage(format!(
            "--{flag} of {} expects {}, got {shown}",
            res.name,
            col.kind.describe()
        ))
    };
    let shown = match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    let out = match (col.kind, v) {
        (_, Value::Null) => {
            if col.nullable {
                return Ok(Sql::Null);
            }
            return Err(CtlError::usage(format!(
                "--{flag} of {} cannot be empty",
                res.name
            )));
        }
        (Kind::Text, Value::String(s)) => Sql::Text(s.clone()),
        (Kind::Text, Value::Number(n)) => Sql::Text(n.to_string()),
        (Kind::Text, Value::Bool(b)) => Sql::Text(b.to_string()),
        (Kind::Text, _) => return Err(bad(&shown)),
        (Kind::Int, Value::Number(n)) => Sql::Integer(n.as_i64().ok_or_else(|| bad(&shown))?),
        (Kind::Int, Value::String(s)) => {
            Sql::Integer(s.trim().parse::<i64>().map_err(|_| bad(&shown))?)
        }
        (Kind::Int, _) => return Err(bad(&shown)),
        (Kind::Bool, Value::Bool(b)) => Sql::Integer(*b as i64),
        (Kind::Bool, Value::Number(n)) => match n.as_i64() {
            Some(0) => Sql::Integer(0),
            Some(1) => Sql::Integer(1),
            _ => return Err(bad(&shown)),
        },
        (Kind::Bool, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Sql::Integer(1),
            "false" | "no" | "off" | "0" => Sql::Integer(0),
            _ => return Err(bad(&shown)),
        },
        (Kind::Bool, _) => return Err(bad(&shown)),
        (Kind::Json, Value::String(s)) => Sql::Text(
            serde_json::from_str::<Value>(s)
                .unwrap_or_else(|_| Value::String(s.clone()))
                .to_string(),
        ),
        (Kind::Json, other) => Sql::Text(other.to_string()),
        (Kind::JsonArray | Kind::JsonObject, _) => {
            let parsed = match v {
                Value::String(s) => serde_json::from_str::<Value>(s).map_err(|_| bad(&shown))?,
                other => other.clone(),
            };
            let shape_ok = match col.kind {
                Kind::JsonArray => parsed.is_array(),
                _ => parsed.is_object(),
            };
            if !shape_ok {
                return Err(bad(&shown));
            }
            Sql::Text(parsed.to_string())
        }
    };
    if !col.choices.is_empty() {
        let ok = matches!(&out, Sql::Text(s) if col.choices.contains(&s.as_str()));
        if !ok {
            return Err(CtlError::usage(format!(
                "--{flag} of {} must be one of {}, got {shown}",
                res.name,
                col.choices.join(", ")
            )));
        }
    }
    Ok(out)
}

/// Splits the key out of a request: `id` (single key) or the key columns among `fields`.
/// Returns the key and the remaining fields.
pub fn split_key(
    res: &Resource,
    id: Option<&str>,
    fields: &Fields,
) -> Result<(Key, Fields), CtlError> {
    let mut rest = Map::new();
    let mut given: Vec<(&'static str, Value)> = vec![];
    for (name, v) in fields {
        let col = column(res, name)?;
        if res.is_key(col.name) {
            given.push((col.name, v.clone()));
        } else {
            rest.insert(col.name.to_string(), v.clone());
        }
    }
    let mut key = Key::new();
    match res.single_key() {
        Some(k) => {
            let from_field = given.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
            let v = match (id, from_field) {
                (Some(a), Some(b)) if Value::String(a.into()) != b => {
                    return Err(CtlError::usage(format!(
                        "two different ids given ({a:?} and {b}): pass one"
                    )))
                }
                (Some(a), _) => Value::String(a.into()),
                (None, Some(b)) => b,
                (None, None) => {
                    return Err(CtlError::usage(format!(
                        "missing id: pass the {k} of one {} row after the verb, or --{} (see `nanoclaw ctl {} list`)",
                        res.name,
                        k.replace('_', "-"),
                        res.name
                    )))
                }
            };
            let col = res.col(k).expect("key column");
            key.push((k, key_value(res, col, &v)?));
        }
        None => {
            if let Some(id) = id {
                return Err(CtlError::usage(format!(
                    "{} rows have no single id ({id:?}): address one with {}",
                    res.name,
                    res.key_flags()
                )));
            }
            for k in res.key {
                let col = res.col(k).expect("key column");
                let v = given
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or(Value::Null);
                if v.is_null() && !col.nullable {
                    return Err(CtlError::usage(format!(
                        "missing --{} (address {} with {})",
                        col.flag(),
                        res.name,
                        res.key_flags()
                    )));
                }
                key.push((k, key_value(res, col, &v)?));
            }
        }
    }
    Ok((key, rest))
}

/// A key value: converted like any value, without the choices check (so an unknown role
/// reads as "not found").
fn key_value(res: &Resource, col: &Col, v: &Value) -> Result<Sql, CtlError> {
    let mut plain = *col;
    plain.choices = &[];
    convert(res, &plain, v)
}

/// `get`/`delete` take only the key.
pub fn no_extra_fields(res: &Resource, verb: Verb, rest: &Fields) -> Result<(), CtlError> {
    match rest.keys().next() {
        None => Ok(()),
        Some(name) => Err(CtlError::usage(format!(
            "{} takes only the key of {} ({}), not --{}",
            verb.name(),
            res.name,
            match res.single_key() {
                Some(k) => format!("<{k}>"),
                None => res.key_flags(),
            },
            name.replace('_', "-")
        ))),
    }
}

/// Values for a new row: given fields checked and typed, generated values and defaults added,
/// required fields enforced.
pub fn insert_values(res: &Resource, id: Option<&str>, fields: &Fields) -> Result<Row, CtlError> {
    let mut given: Vec<(&'static Col, &Value)> = vec![];
    let id_value = id.map(|s| Value::String(s.into()));
    if let Some(v) = &id_value {
        let Some(k) = res.single_key() else {
            return Err(CtlError::usage(format!(
                "{} rows have no single id: pass {}",
                res.name,
                res.key_flags()
            )));
        };
        let col = res.col(k).expect("key column");
        if col.generated == Gen::Id {
            return Err(CtlError::usage(format!(
                "{} ids are generated: don't pass one",
                res.name
            )));
        }
        given.push((col, v));
    }
    for (name, v) in fields {
        let col = column(res, name)?;
        if col.access == Access::ReadOnly {
            return Err(read_only(res, col));
        }
        if given.iter().any(|(c, _)| c.name == col.name) {
            return Err(CtlError::usage(format!("--{} given twice", col.flag())));
        }
        given.push((col, v));
    }
    let mut row = Row::default();
    for col in res.cols {
        let v = match given.iter().find(|(c, _)| c.name == col.name) {
            Some((_, v)) => convert(res, col, v)?,
            None => match col.generated {
                Gen::Id => Sql::Text(nanoclaw_protocol::new_id(
                    res.id_prefix.expect("generated id has a prefix"),
                )),
                Gen::Now | Gen::NowAlways => Sql::Text(crate::db::now()),
                Gen::None if col.required => {
                    return Err(CtlError::usage(format!(
                        "missing --{} for {} create (required: {})",
                        col.flag(),
                        res.name,
                        required_flags(res)
                    )))
                }
                Gen::None => match col.default {
                    Some(d) => convert(res, col, &Value::String(d.into()))?,
                    None => continue,
                },
            },
        };
        row.vals.push((col, v));
    }
    Ok(row)
}

fn required_flags(res: &Resource) -> String {
    res.cols
        .iter()
        .filter(|c| c.required)
        .map(|c| format!("--{}", c.flag()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn read_only(res: &Resource, col: &Col) -> CtlError {
    CtlError::usage(format!(
        "--{} of {} is set by nanoclaw and cannot be given",
        col.flag(),
        res.name
    ))
}

/// Values for an update: only writable columns; timestamps refreshed.
pub fn update_values(res: &Resource, fields: &Fields) -> Result<Row, CtlError> {
    let mut row = Row::default();
    for (name, v) in fields {
        let col = column(res, name)?;
        match col.access {
            Access::ReadOnly => return Err(read_only(res, col)),
            Access::CreateOnly => {
                return Err(CtlError::usage(format!(
                    "--{} of {} cannot be changed after create (delete and create instead)",
                    col.flag(),
                    res.name
                )))
            }
            Access::ReadWrite => {}
        }
        row.vals.push((col, convert(res, col, v)?));
    }
    if row.vals.is_empty() {
        let writable: Vec<String> = res
            .cols
            .iter()
            .filter(|c| c.access == Access::ReadWrite)
            .map(|c| format!("--{}", c.flag()))
            .collect();
        return Err(CtlError::usage(format!(
            "nothing to update: pass one of {}",
            writable.join(", ")
        )));
    }
    for col in res.cols {
        if col.generated == Gen::NowAlways {
            row.vals.push((col, Sql::Text(crate::db::now())));
        }
    }
    Ok(row)
}

/// Checks that every non-NULL referencing column of `row` names an existing row.
pub fn check_refs(c: &Connection, res: &Resource, row: &Row) -> Result<(), CtlError> {
    for (col, v) in &row.vals {
        let (Some(target), Sql::Text(id)) = (col.refs, v) else {
            continue;
        };
        let t = resources::find(target).expect("descriptor refs a resource");
        if !exists(c, t, id)? {
            return Err(CtlError::not_found(format!(
                "no {target} with id {id:?} (given as --{} of {}; see `nanoclaw ctl {target} list`)",
                col.flag(),
                res.name
            )));
        }
    }
    Ok(())
}

/// Does a single-key resource have a row with this key?
pub fn exists(c: &Connection, res: &Resource, id: &str) -> Result<bool, CtlError> {
    let k = res.single_key().expect("exists needs a single key");
    c.query_row(
        &format!("SELECT EXISTS(SELECT 1 FROM {} WHERE {k} = ?1)", res.table),
        [id],
        |r| r.get(0),
    )
    .map_err(|e| sql_error(Some(res), e))
}

fn where_key(key: &Key) -> String {
    key.iter()
        .enumerate()
        .map(|(i, (k, _))| format!("{k} IS ?{}", i + 1))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// Rows, filtered by `column = value` (NULL matches NULL), in the descriptor's order.
pub fn list(
    c: &Connection,
    res: &Resource,
    filters: &Fields,
    limit: Option<i64>,
) -> Result<Value, CtlError> {
    let mut conds = vec![];
    let mut params: Vec<Sql> = vec![];
    for (name, v) in filters {
        let col = column(res, name)?;
        let mut plain = *col;
        plain.choices = &[];
        plain.nullable = true;
        params.push(convert(res, &plain, v)?);
        conds.push(format!("{} IS ?{}", col.name, params.len()));
    }
    let mut sql = format!("SELECT {} FROM {}", res.select_list(), res.table);
    if !conds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conds.join(" AND "));
    }
    sql.push_str(" ORDER BY ");
    sql.push_str(res.order_by);
    if let Some(n) = limit {
        if n < 1 {
            return Err(CtlError::usage(format!(
                "--limit must be a positive number, got {n}"
            )));
        }
        params.push(Sql::Integer(n));
        sql.push_str(&format!(" LIMIT ?{}", params.len()));
    }
    let err = |e| sql_error(Some(res), e);
    let mut st = c.prepare(&sql).map_err(err)?;
    let rows = st
        .query_map(params_from_iter(params.iter()), |r| row_json(res, r))
        .map_err(err)?;
    let mut out = vec![];
    for r in rows {
        out.push(r.map_err(err)?);
    }
    Ok(Value::Array(out))
}

/// The row with this key, or None.
pub fn find(c: &Connection, res: &Resource, key: &Key) -> Result<Option<Value>, CtlError> {
    let sql = format!(
        "SELECT {} FROM {} WHERE {}",
        res.select_list(),
        res.table,
        where_key(key)
    );
    let err = |e| sql_error(Some(res), e);
    let mut st = c.prepare(&sql).map_err(err)?;
    let mut rows = st
        .query(params_from_iter(key.iter().map(|(_, v)| v)))
        .map_err(err)?;
    match rows.next().map_err(err)? {
        Some(r) => Ok(Some(row_json(res, r).map_err(err)?)),
        None => Ok(None),
    }
}

/// The row with this key, or a not-found error.
pub fn get(c: &Connection, res: &Resource, key: &Key) -> Result<Value, CtlError> {
    find(c, res, key)?.ok_or_else(|| not_found(res, key))
}

/// Inserts `row` as given.
pub fn insert(c: &Connection, res: &Resource, row: &Row) -> Result<Key, CtlError> {
    let cols: Vec<&str> = row.vals.iter().map(|(c, _)| c.name).collect();
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT INTO {}({}) VALUES ({})",
        res.table,
        cols.join(", "),
        marks.join(", ")
    );
    c.execute(&sql, params_from_iter(row.vals.iter().map(|(_, v)| v)))
        .map_err(|e| sql_error(Some(res), e))?;
    Ok(row.key(res))
}

/// Updates the row with this key; returns the number of rows changed.
pub fn update(c: &Connection, res: &Resource, key: &Key, row: &Row) -> Result<usize, CtlError> {
    let sets: Vec<String> = row
        .vals
        .iter()
        .enumerate()
        .map(|(i, (c, _))| format!("{} = ?{}", c.name, i + 1))
        .collect();
    let n = row.vals.len();
    let conds: Vec<String> = key
        .iter()
        .enumerate()
        .map(|(i, (k, _))| format!("{k} IS ?{}", n + i + 1))
        .collect();
    let sql = format!(
        "UPDATE {} SET {} WHERE {}",
        res.table,
        sets.join(", "),
        conds.join(" AND ")
    );
    let params = row
        .vals
        .iter()
        .map(|(_, v)| v)
        .chain(key.iter().map(|(_, v)| v));
    c.execute(&sql, params_from_iter(params))
        .map_err(|e| sql_error(Some(res), e))
}

/// Deletes the row with this key and what depends on it; returns the number of rows deleted.
pub fn delete(c: &Connection, res: &Resource, key: &Key) -> Result<usize, CtlError> {
    let args: Vec<&Sql> = key.iter().map(|(_, v)| v).collect();
    crate::db::atomic(c, |c| {
        cascade(c, res.table, &where_key(key), &args, 0)?;
        let sql = format!("DELETE FROM {} WHERE {}", res.table, where_key(key));
        Ok(c.execute(&sql, params_from_iter(args.iter()))?)
    })
    .map_err(|e| match e.downcast::<rusqlite::Error>() {
        Ok(e) => sql_error(Some(res), e),
        Err(e) => CtlError::internal(e.to_string()),
    })
}

/// References that are cleared, not followed, when what they name is deleted: a session
/// outlives its chat, a grant or membership outlives whoever made it.
const SET_NULL: &[(&str, &str)] = &[
    ("sessions", "messaging_group_id"),
    ("user_roles", "granted_by"),
    ("agent_group_members", "added_by"),
];

/// Removes (or detaches) the rows referring to the rows of `table` matching `cond`, deepest
/// first. NanoClaw v2's tables declare their references without ON DELETE actions, so the
/// dependents are found through SQLite's own foreign-key list rather than a list kept here.
fn cascade(
    c: &Connection,
    table: &str,
    cond: &str,
    args: &[&Sql],
    depth: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!(depth < 8, "references nest too deep below {table}");
    let refs: Vec<(String, String, String)> = {
        let mut st = c.prepare_cached(
            "SELECT m.name, f.\"from\", COALESCE(f.\"to\", 'rowid')
             FROM sqlite_master m, pragma_foreign_key_list(m.name) f
             WHERE m.type = 'table' AND f.\"table\" = ?1",
        )?;
        let rows = st.query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (child, col, parent_col) in refs {
        let sub = format!("{col} IN (SELECT {parent_col} FROM {table} WHERE {cond})");
        if SET_NULL.contains(&(child.as_str(), col.as_str())) {
            c.execute(
                &format!("UPDATE {child} SET {col} = NULL WHERE {sub}"),
                params_from_iter(args.iter()),
            )?;
        } else if child != table {
            cascade(c, &child, &sub, args, depth + 1)?;
            c.execute(
                &format!("DELETE FROM {child} WHERE {sub}"),
                params_from_iter(args.iter()),
            )?;
        }
    }
    Ok(())
}

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

/// One row as a JSON object, typed by the descriptor.
fn row_json(res: &Resource, r: &rusqlite::Row) -> rusqlite::Result<Value> {
    let mut m = Map::new();
    for (i, col) in res.cols.iter().enumerate() {
        let v = match r.get_ref(i)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(n) if col.kind == Kind::Bool => Value::Bool(n != 0),
            ValueRef::Integer(n) => Value::Number(n.into()),
            ValueRef::Real(f) => Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            ValueRef::Text(t) => {
                let s = String::from_utf8_lossy(t).into_owned();
                match col.kind {
                    Kind::JsonArray | Kind::JsonObject | Kind::Json => {
                        serde_json::from_str(&s).unwrap_or(Value::String(s))
                    }
                    _ => Value::String(s),
                }
            }
            ValueRef::Blob(b) => Value::String(format!("<{} bytes>", b.len())),
        };
        m.insert(col.name.to_string(), v);
    }
    Ok(Value::Object(m))
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
