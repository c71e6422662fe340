//! `nanoclaw status`: the host, sessions, runners and channels at a glance.

use std::process::ExitCode;

use nanoclaw_host::config::Settings;
use nanoclaw_protocol::Home;

/// Prints the status of a home.
pub fn status(home: Home) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(&home)?;
    let running = nanoclaw_host::host_running(&home);
    println!("home:      {}", home.root().display());
    println!(
        "host:      {}",
        if running {
            "running"
        } else {
            "not running (start it with `nanoclaw run`)"
        }
    );
    if let Some(why) = crate::breaker::describe(&home) {
        if !running {
            println!("startup:   {why}");
        }
    }
    println!(
        "runtime:   {}",
        settings.get("NANOCLAW_RUNTIME").unwrap_or_else(|| {
            "auto (docker when an engine and the image are there, else process)".into()
        })
    );
    // Every adapter of this build, enabled when its settings are there.
    let channels: Vec<String> = nanoclaw_host::channels::SPECS
        .iter()
        .map(|spec| {
            let missing = spec.missing(&settings);
            if missing.is_empty() {
                spec.channel_type.to_string()
            } else {
                format!("{} (off: set {})", spec.channel_type, missing.join(", "))
            }
        })
        .collect();
    println!("channels:  {}", channels.join(", "));
    if running {
        match ask_host(&home) {
            Some(v) => {
                for (name, state) in v["channels"].as_object().into_iter().flatten() {
                    println!("  {name}: {}", state.as_str().unwrap_or_default());
                }
                for w in v["warnings"].as_array().into_iter().flatten() {
                    println!("warning:   {}", w.as_str().unwrap_or_default());
                }
            }
            None => println!(
                "  (the host does not answer on {})",
                home.cli_sock().display()
            ),
        }
    }
    if !home.central_db().exists() {
        println!("sessions:  none yet");
        return Ok(ExitCode::SUCCESS);
    }
    let db = nanoclaw_host::db::Db::open(&home.central_db())?;
    let (groups, chats, by_status): (i64, i64, Vec<(String, i64)>) = db.with(|c| {
        let groups = c.query_row("SELECT COUNT(*) FROM agent_groups", [], |r| r.get(0))?;
        let chats = c.query_row("SELECT COUNT(*) FROM messaging_groups", [], |r| r.get(0))?;
        let mut st = c.prepare(
            "SELECT container_status, COUNT(*) FROM sessions WHERE status='active' GROUP BY container_status ORDER BY 1",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
        Ok((groups, chats, rows))
    })?;
    let total: i64 = by_status.iter().map(|(_, n)| n).sum();
    let detail = by_status
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!("agents:    {groups} agent group(s), {chats} chat(s)");
    println!(
        "sessions:  {total}{}",
        if detail.is_empty() {
            String::new()
        } else {
            format!(" ({detail})")
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// The running host's own account (`{"type":"status"}` on the terminal socket): channel states
/// and warnings. None when it does not answer within 5 s.
pub fn ask_host(home: &Home) -> Option<serde_json::Value> {
    use std::io::{BufRead, BufReader, Write};
    let s = std::os::unix::net::UnixStream::connect(home.cli_sock()).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    (&s).write_all(b"{\"type\":\"status\"}\n").ok()?;
    // Other clients' replies are broadcast to every connection: skip to our answer.
    for line in BufReader::new(&s).lines() {
        let v: serde_json::Value = serde_json::from_str(&line.ok()?).ok()?;
        if v["type"] == "status" {
            return Some(v);
        }
    }
    None
}
