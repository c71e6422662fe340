//! From a request's fields to typed values: names checked against the descriptor, values
//! converted to their column's type (and choices), generated values and defaults added.

use rusqlite::types::Value as Sql;
use serde_json::{Map, Value};

use super::{Key, Row};
use crate::control::resources::{Access, Col, Gen, Kind, Resource, Verb};
use crate::control::{CtlError, Fields};

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
