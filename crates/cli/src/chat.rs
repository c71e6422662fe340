//! `nanoclaw chat`: the terminal client of the `cli` channel. Talks to a running host over
//! `data/cli.sock`, or starts an embedded host for its own lifetime.

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use nanoclaw_host::Host;
use nanoclaw_protocol::Home;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Entry point of `nanoclaw chat`.
pub fn chat(
    home: Home,
    agent: Option<String>,
    message: Option<String>,
    timeout: f64,
) -> anyhow::Result<ExitCode> {
    if !(timeout > 0.0 && timeout.is_finite()) {
        anyhow::bail!("--timeout must be a positive number of seconds");
    }
    // `-m -` reads the message from stdin (messages longer than an argument may be).
    let message = match message.as_deref() {
        Some("-") => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
            Some(s.trim_end_matches('\n').to_string())
        }
        _ => message,
    };
    let embedded = !nanoclaw_host::host_running(&home);
    let _logs = if embedded {
        // Before the first file is created (the home is tightened by Host::open).
        nanoclaw_host::perms::umask();
        Some(nanoclaw_host::logging::init(&home, false)?)
    } else {
        None
    };
    crate::run::runtime()?.block_on(async move {
        let host = if embedded {
            let h = Host::open(home.clone()).await?;
            h.start().await?;
            Some(h)
        } else {
            None
        };
        let stream = UnixStream::connect(home.cli_sock()).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the host at {}: {e} (is `nanoclaw run` healthy?)",
                home.cli_sock().display()
            )
        })?;
        let (rd, mut wr) = stream.into_split();
        let mut lines = BufReader::new(rd).lines();
        show_warnings(&mut lines, &mut wr).await?;
        let result = match message {
            Some(m) => one_turn(lines, wr, agent, m, Duration::from_secs_f64(timeout)).await,
            None => interactive(lines, wr, agent, host.clone()).await,
        };
        if let Some(h) = host {
            h.shutdown().await;
        }
        result
    })
}

type Lines = tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>;
type Writer = tokio::net::unix::OwnedWriteHalf;

/// Asks the host what the user must know before chatting (an agent without a sandbox) and
/// prints it on stderr, one line each. A host without the request answers with an error: fine.
async fn show_warnings(lines: &mut Lines, wr: &mut Writer) -> anyhow::Result<()> {
    wr.write_all(b"{\"type\":\"status\"}\n").await?;
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        // Replies of other clients' turns may come first; the answer is the next status/error.
        while let Some(l) = lines.next_line().await? {
            let Ok(v) = serde_json::from_str::<Value>(&l) else {
                continue;
            };
            if v["type"] == "status" || v["type"] == "error" {
                return Ok::<_, std::io::Error>(Some(v));
            }
        }
        Ok(None)
    })
    .await;
    if let Ok(Ok(Some(v))) = answer {
        for w in v["warnings"].as_array().into_iter().flatten() {
            eprintln!("warning: {}", w.as_str().unwrap_or_default());
        }
    }
    Ok(())
}

async fn send(wr: &mut Writer, agent: &Option<String>, text: &str) -> anyhow::Result<()> {
    let mut req = json!({"type": "message", "text": text});
    if let Some(a) = agent {
        req["agent"] = json!(a);
    }
    let mut line = req.to_string();
    line.push('\n');
    wr.write_all(line.as_bytes()).await?;
    Ok(())
}

async fn one_turn(
    mut lines: Lines,
    mut wr: Writer,
    agent: Option<String>,
    text: String,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    send(&mut wr, &agent, &text).await?;
    let mut waiting: Option<HashSet<String>> = None;
    let mut sessions: HashSet<String> = HashSet::new();
    let mut failed = false;
    // Events that arrive before "accepted" names our ids are held back, not lost.
    let mut early: Vec<Value> = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let line = match tokio::time::timeout_at(deadline, lines.next_line()).await {
            Err(_) => {
                eprintln!(
                    "error: no complete reply within {}s (the agent may still be working; see logs/nanoclaw.log)",
                    timeout.as_secs_f64()
                );
                return Ok(ExitCode::from(2));
            }
            Ok(Ok(Some(l))) => l,
            Ok(Ok(None)) => {
                anyhow::bail!("the host closed the connection before the turn finished")
            }
            Ok(Err(e)) => return Err(e.into()),
        };
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        match v["type"].as_str() {
            Some("error") => {
                eprintln!("error: {}", v["error"].as_str().unwrap_or("unknown error"));
                return Ok(ExitCode::FAILURE);
            }
            Some("notice") => {
                println!("{}", v["text"].as_str().unwrap_or_default());
                return Ok(ExitCode::SUCCESS);
            }
            Some("accepted") => {
                let strings = |k: &str| -> HashSet<String> {
                    v[k].as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|i| i.as_str().map(str::to_string))
                        .collect()
                };
                waiting = Some(strings("ids"));
                sessions = strings("sessions");
                for e in std::mem::take(&mut early) {
                    if let Some(code) = runner_failed(&e, &sessions) {
                        return Ok(code);
                    }
                    failed |= handle_event(&e, waiting.as_mut().expect("set above"));
                }
            }
            Some("runner_failed") if waiting.is_none() => early.push(v),
            Some("runner_failed") => {
                if let Some(code) = runner_failed(&v, &sessions) {
                    return Ok(code);
                }
            }
            Some(_) => match waiting.as_mut() {
                Some(w) => failed |= handle_event(&v, w),
                None => early.push(v),
            },
            None => {}
        }
        if waiting.as_ref().is_some_and(HashSet::is_empty) {
            return Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            });
        }
    }
}

/// A runner of one of our sessions could not start: say why now rather than time out (the
/// message stays queued and is tried again).
fn runner_failed(v: &Value, sessions: &HashSet<String>) -> Option<ExitCode> {
    let ours =
        v["type"] == "runner_failed" && v["session"].as_str().is_some_and(|s| sessions.contains(s));
    ours.then(|| {
        eprintln!(
            "error: the agent could not start: {} (the message is kept and will be tried again)",
            v["error"].as_str().unwrap_or("unknown error")
        );
        ExitCode::FAILURE
    })
}

/// Prints our replies and crosses off finished turns; true when a turn failed.
fn handle_event(v: &Value, waiting: &mut HashSet<String>) -> bool {
    let about = |k: &str| v[k].as_str().is_some_and(|id| waiting.contains(id));
    match v["type"].as_str() {
        Some("reply") if about("in_reply_to") => {
            println!("{}", v["text"].as_str().unwrap_or_default())
        }
        Some("turn_done") if about("id") => {
            waiting.remove(v["id"].as_str().unwrap_or_default());
            if v["status"] == "failed" {
                eprintln!("error: the agent failed to process the message (see logs/nanoclaw.log)");
                return true;
            }
        }
        _ => {}
    }
    false
}

async fn interactive(
    mut replies: Lines,
    mut wr: Writer,
    agent: Option<String>,
    _host: Option<Arc<Host>>,
) -> anyhow::Result<ExitCode> {
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    eprintln!(
        "Talking to {} — type a message, Ctrl-D to quit.",
        agent.as_deref().unwrap_or("main")
    );
    loop {
        tokio::select! {
            line = input.next_line() => match line? {
                Some(l) if l.trim().is_empty() => {}
                Some(l) => send(&mut wr, &agent, &l).await?,
                None => return Ok(ExitCode::SUCCESS),
            },
            r = replies.next_line() => match r? {
                Some(l) => {
                    let Ok(v) = serde_json::from_str::<Value>(&l) else { continue };
                    match v["type"].as_str() {
                        Some("reply") | Some("notice") => println!("{}", v["text"].as_str().unwrap_or_default()),
                        Some("error") => eprintln!("error: {}", v["error"].as_str().unwrap_or_default()),
                        Some("runner_failed") => eprintln!("error: the agent could not start: {}", v["error"].as_str().unwrap_or_default()),
                        _ => {}
                    }
                }
                None => anyhow::bail!("the host closed the connection"),
            },
            _ = crate::run::signal() => return Ok(ExitCode::SUCCESS),
        }
    }
}
