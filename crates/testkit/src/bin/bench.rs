//! `nanoclaw-bench`: warm round trip (terminal in → mock reply out), routing throughput and
//! idle RSS of the real binaries. Run with:
//!
//! ```text
//! cargo build --release && target/release/nanoclaw-bench [ROUNDS]
//! target/release/nanoclaw-bench --docker [ROUNDS]   # after `nanoclaw image build --slim`
//! ```
//!
//! `--docker` runs the runner in containers and adds the cold start (no container → first reply)
//! and the container's idle memory.

use std::time::{Duration, Instant};

use nanoclaw_testkit::{percentile, runner_pids, CliClient, TestHome};

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn round_trip(cli: &mut CliClient, text: &str) -> Duration {
    let t0 = Instant::now();
    cli.send(text).expect("send");
    let accepted = cli.until("accepted").expect("accepted");
    let id = accepted["ids"][0].as_str().unwrap_or_default().to_string();
    loop {
        let v = cli.recv().expect("reply");
        if v["type"] == "reply" && v["in_reply_to"] == id.as_str() {
            return t0.elapsed();
        }
    }
}

/// Memory in use by a session's container (cgroup), from the engine.
fn container_mem_mb(session: &str) -> Option<f64> {
    let ps = std::process::Command::new("docker")
        .args([
            "ps",
            "-q",
            "--filter",
            &format!("label=nanoclaw.session={session}"),
        ])
        .output()
        .ok()?;
    let id = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .next()?
        .to_string();
    let st = std::process::Command::new("docker")
        .args(["stats", "--no-stream", "--format", "{{.MemUsage}}", &id])
        .output()
        .ok()?;
    let usage = String::from_utf8_lossy(&st.stdout).into_owned();
    let first = usage.split('/').next()?.trim().to_string();
    let (num, unit) = first.split_at(first.find(|c: char| c.is_ascii_alphabetic())?);
    let v: f64 = num.trim().parse().ok()?;
    Some(match unit {
        "GiB" => v * 1024.0,
        "KiB" | "kB" => v / 1024.0,
        "B" => v / 1024.0 / 1024.0,
        _ => v,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let docker = args.iter().any(|a| a == "--docker");
    let rounds: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(200);
    println!(
        "command: target/release/nanoclaw-bench {}{rounds}",
        if docker { "--docker " } else { "" }
    );
    let home = TestHome::new();
    let runtime = if docker { "docker" } else { "process" };
    let host = home.start_host(&[("NANOCLAW_RUNTIME", runtime)]);
    if docker {
        // Cold start: no container for the session → first reply, a fresh agent each time.
        let mut cold: Vec<f64> = Vec::new();
        for i in 0..10 {
            let folder = format!("cold{i}");
            let o = home.run(&[
                "ctl", "groups", "create", "--name", &folder, "--folder", &folder,
            ]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let t0 = Instant::now();
            let o = home.run(&["chat", "--agent", &folder, "-m", "cold", "--timeout", "60"]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            cold.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        cold.sort_by(f64::total_cmp);
        println!(
            "cold start (no container → reply, incl. starting the chat client), n=10: p50 {:.0} ms, p99 {:.0} ms",
            percentile(&cold, 50.0),
            percentile(&cold, 99.0)
        );
    }

    // Idle RSS of a freshly started host (before any session).
    std::thread::sleep(Duration::from_secs(2));
    let idle_rss = rss_kb(host.pid());

    let mut cli = CliClient::connect(home.path()).expect("connect");
    for i in 0..5 {
        round_trip(&mut cli, &format!("warm-up {i}"));
    }
    let mut ms: Vec<f64> = (0..rounds)
        .map(|i| round_trip(&mut cli, &format!("bench {i}")).as_secs_f64() * 1e3)
        .collect();
    ms.sort_by(f64::total_cmp);
    println!(
        "warm round trip (terminal → router → inbound.db → runner(mock) → outbound.db → delivery → terminal), n={rounds}: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&ms, 50.0),
        percentile(&ms, 99.0)
    );

    // Routing throughput: messages accepted (routed + written to inbound.db) per second.
    let clients = 8;
    let per = 250;
    let t0 = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let path = home.path().to_path_buf();
            std::thread::spawn(move || {
                let mut cli = CliClient::connect(&path).expect("connect");
                for i in 0..per {
                    cli.send(&format!("load {c}-{i}")).expect("send");
                    cli.until("accepted").expect("accepted");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client");
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "routing throughput, {clients} clients × {per} messages: {:.0} msg/s",
        (clients * per) as f64 / secs
    );
    std::thread::sleep(Duration::from_secs(2));
    if docker {
        let main = home.session_dirs().into_iter().find_map(|d| {
            let sid = d.file_name()?.to_string_lossy().into_owned();
            container_mem_mb(&sid).map(|m| (sid, m))
        });
        if let Some((_, mb)) = main {
            println!("container memory (idle, after the load): {mb:.1} MB");
        }
    }
    let runner_rss: Vec<u64> = runner_pids(home.path()).into_iter().map(rss_kb).collect();
    println!(
        "host idle RSS: {:.1} MB (after start); after load: {:.1} MB",
        idle_rss as f64 / 1024.0,
        rss_kb(host.pid()) as f64 / 1024.0
    );
    if let Some(r) = runner_rss.first() {
        println!("runner RSS (mock provider): {:.1} MB", *r as f64 / 1024.0);
    }
    drop(host);
}
