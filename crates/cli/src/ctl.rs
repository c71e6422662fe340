//! `nanoclaw ctl <resource> <verb> [<id>] [--field value…] [--json] [--limit N]`: the admin CLI.
//!
//! Parses the arguments into a [`Request`] ([`args::parse`]), sends it to the running host over
//! `data/control.sock` (changes reach running sessions at once) or, with no host, executes it
//! on the central DB directly, and prints the result. Both paths run `control::execute`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use nanoclaw_host::control::args::{self, Command, Parsed};
use nanoclaw_host::control::{self, Request, Resource, Response, Verb};
use nanoclaw_host::db::Db;
use nanoclaw_protocol::Home;
use serde_json::{Map, Value};

/// Runs one ctl command.
pub fn run(home: &Home, args: Vec<String>) -> anyhow::Result<ExitCode> {
    let cmd = match args::parse(&args)? {
        Parsed::Help(text) => {
            print!("{text}");
            return Ok(ExitCode::SUCCESS);
        }
        Parsed::Run(c) => *c,
    };
    let res = control::resource(&cmd.req.resource)?;
    let verb = control::verb(res, &cmd.req.verb)?;
    let data = send(home, &cmd.req)?;
    let out = render(res, verb, &cmd, &data);
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    Ok(ExitCode::SUCCESS)
}

/// Sends to the running host, or executes on the DB when no host runs.
fn send(home: &Home, req: &Request) -> anyhow::Result<Value> {
    let sock = home.control_sock();
    let running = nanoclaw_host::host_running(home);
    if running && sock.exists() {
        return via_socket(&sock, req);
    }
    if running {
        eprintln!(
            "warning: the host is running but {} is missing: writing the DB directly (running sessions see changes when they restart)",
            sock.display()
        );
    }
    let db = Db::open(&home.central_db())
        .with_context(|| format!("cannot open {}", home.central_db().display()))?;
    let r = db.with(|c| Ok(control::execute(c, home, req)))?;
    r.map_err(|e| anyhow!(e.message))
}

fn via_socket(sock: &Path, req: &Request) -> anyhow::Result<Value> {
    let unreachable = |e: std::io::Error| {
        anyhow!(
            "cannot talk to the running host at {}: {e} (is it shutting down? try again)",
            sock.display()
        )
    };
    let mut s = UnixStream::connect(sock).map_err(unreachable)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(unreachable)?;
    let mut line = serde_json::to_string(req)?;
    line.push('\n');
    s.write_all(line.as_bytes()).map_err(unreachable)?;
    let mut reply = String::new();
    BufReader::new(&s)
        .read_line(&mut reply)
        .map_err(unreachable)?;
    if reply.trim().is_empty() {
        bail!("the host closed the control connection without answering (see its log)");
    }
    let r: Response = serde_json::from_str(&reply)
        .map_err(|e| anyhow!("the host sent an unreadable reply: {e}"))?;
    match (r.ok, r.data, r.error) {
        (true, Some(v), _) => Ok(v),
        (true, None, _) => Ok(Value::Null),
        (false, _, e) => Err(anyhow!(e.unwrap_or_else(|| "request failed".into()))),
    }
}

/// The text printed for a result.
pub fn render(res: &Resource, verb: Verb, cmd: &Command, data: &Value) -> String {
    if cmd.json {
        let mut s = serde_json::to_string_pretty(data).unwrap_or_else(|_| data.to_string());
        s.push('\n');
        return s;
    }
    match verb {
        Verb::List => table(res, data.as_array().map(Vec::as_slice).unwrap_or(&[])),
        Verb::Get => record(res, data),
        Verb::Create => format!("{}\n", key_text(res, data.as_object())),
        Verb::Update => format!("updated {} {}\n", res.name, key_text(res, data.as_object())),
        Verb::Delete => {
            let mut m = cmd.req.fields.clone();
            if let (Some(k), Some(id)) = (res.single_key(), &cmd.req.id) {
                m.insert(k.to_string(), Value::String(id.clone()));
            }
            format!("deleted {} {}\n", res.name, key_text(res, Some(&m)))
        }
    }
}

/// `ag-1`, or `user_id=cli:local role=owner` for composite keys (NULL parts left out).
fn key_text(res: &Resource, row: Option<&Map<String, Value>>) -> String {
    let get = |k: &str| row.and_then(|m| m.get(k)).cloned().unwrap_or(Value::Null);
    match res.single_key() {
        Some(k) => cell(&get(k)),
        None => res
            .key
            .iter()
            .filter(|k| !get(k).is_null())
            .map(|k| format!("{k}={}", cell(&get(k))))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// A value as one line of text: strings bare, NULL as `-`, the rest as JSON.
fn cell(v: &Value) -> String {
    let s = match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

const MAX_CELL: usize = 48;

fn table(res: &Resource, rows: &[Value]) -> String {
    if rows.is_empty() {
        return format!("(no {})\n", res.name);
    }
    let head: Vec<String> = res.cols.iter().map(|c| c.name.to_string()).collect();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            res.cols
                .iter()
                .map(|c| {
                    let s = cell(&r[c.name]);
                    if s.chars().count() > MAX_CELL {
                        let cut: String = s.chars().take(MAX_CELL - 1).collect();
                        format!("{cut}…")
                    } else {
                        s
                    }
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in &body {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(w - c.chars().count() + 2));
            }
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(&head);
    for r in &body {
        out.push_str(&line(r));
    }
    out
}

fn record(res: &Resource, row: &Value) -> String {
    let w = res.cols.iter().map(|c| c.name.len()).max().unwrap_or(0);
    res.cols
        .iter()
        .map(|c| {
            format!(
                "{:<w$}  {}\n",
                format!("{}:", c.name),
                cell(&row[c.name]),
                w = w + 1
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nanoclaw_host::control::resources;
    use serde_json::json;

    #[test]
    fn renders_tables_records_and_keys() {
        let res = resources::find("roles").unwrap();
        let row = json!({"user_id": "cli:local", "role": "owner", "agent_group_id": null, "granted_by": null, "granted_at": "t"});
        let c = Command {
            req: Request::default(),
            json: false,
        };
        assert_eq!(
            render(res, Verb::Create, &c, &row),
            "user_id=cli:local role=owner\n"
        );
        let t = render(res, Verb::List, &c, &json!([row]));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with("user_id    role   agent_group_id"),
            "{t}"
        );
        assert!(lines[1].starts_with("cli:local  owner  -"), "{t}");
        assert_eq!(render(res, Verb::List, &c, &json!([])), "(no roles)\n");
        let g = render(res, Verb::Get, &c, &row);
        assert!(g.contains("role:            owner\n"), "{g}");
        let j = Command {
            req: Request::default(),
            json: true,
        };
        let back: Value = serde_json::from_str(&render(res, Verb::Get, &j, &row)).unwrap();
        assert_eq!(back, row);
    }
}
