//! Sweep of idle sessions (DESIGN §11: 10,000 idle sessions ≤ 1 s). Run with:
//!
//! ```text
//! cargo build --release --examples && target/release/examples/sweep_bench [SESSIONS] [PASSES]
//! ```
//!
//! Each session is a real folder with both DBs. The first pass reads every session; later
//! passes are what the host does every 60 s: a change check of both files per session (through
//! SQLite's file handle) and a delivery pass only where something changed or is due.

use std::sync::Arc;
use std::time::Instant;

use nanoclaw_host::sweep::Sweeper;
use nanoclaw_host::{db, sessions, Host};
use nanoclaw_protocol::Home;
use nanoclaw_testkit::percentile;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let passes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let tmp = tempfile::tempdir()?;
    std::fs::write(
        tmp.path().join("nanoclaw.toml"),
        "NANOCLAW_RUNTIME = \"process\"\n",
    )?;
    let home = Home::new(tmp.path());
    let host: Arc<Host> = Host::open(home.clone()).await?;

    // One provisioned folder, copied: creating 10,000 schemas one by one would dominate.
    let t0 = Instant::now();
    let list = host
        .db
        .call(move |c| {
            let ag = db::agent_groups::create(c, "Bench", "bench")?;
            let tx = c.transaction()?;
            let list: Vec<_> = (0..n)
                .map(|_| db::sessions::create(&tx, &ag.id, None, None))
                .collect::<rusqlite::Result<_>>()?;
            tx.commit()?;
            Ok(list)
        })
        .await?;
    let first = sessions::provision(&home, &list[0])?;
    for s in &list[1..] {
        let p = home.session(&s.agent_group_id, &s.id)?;
        std::fs::create_dir_all(p.dir())?;
        std::fs::copy(first.inbound_db(), p.inbound_db())?;
        std::fs::copy(first.outbound_db(), p.outbound_db())?;
    }
    eprintln!("{n} sessions set up in {:.1} s", t0.elapsed().as_secs_f64());

    let mut sweeper = Sweeper::default();
    let t = Instant::now();
    sweeper.once(&host).await?;
    let cold = t.elapsed().as_secs_f64() * 1000.0;
    let mut ms = Vec::with_capacity(passes);
    for _ in 0..passes {
        let t = Instant::now();
        sweeper.once(&host).await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let cmd = format!("target/release/examples/sweep_bench {n} {passes}");
    println!("sweep, first pass over {n} sessions: {cold:.0} ms   [{cmd}]");
    println!(
        "sweep of {n} idle sessions: p50 {:.0} ms, p99 {:.0} ms   [{cmd}]",
        percentile(&ms, 50.0),
        percentile(&ms, 99.0)
    );
    host.shutdown().await;
    Ok(())
}
