//! Generic CRUD over a [`Resource`]: dynamic SQL whose identifiers come only from the static
//! descriptors, and whose values are always bound parameters.
//!
//! - `values`: request fields checked and typed into a key and a [`Row`].
//! - `errors`: SQLite and helper failures as one-line ctl errors.

mod errors;
mod values;

use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::{params_from_iter, Connection};
use serde_json::{Map, Number, Value};

use super::resources::{self, Col, Kind, Resource};
use super::{CtlError, Fields};

pub use errors::{helper_error, not_found, show_key, sql_error};
pub use values::{column, convert, insert_values, no_extra_fields, split_key, update_values};

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

/// The generic create: references checked, the row inserted as given.
pub fn create(c: &Connection, res: &Resource, row: &Row) -> Result<Key, CtlError> {
    check_refs(c, res, row)?;
    insert(c, res, row)
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
