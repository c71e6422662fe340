//! The sweep benchmark stays runnable: a tiny run prints its p50/p99 line.
//! (Figures come from release builds; see README.)

#[test]
fn sweep_bench_prints_percentiles() {
    let exe = nanoclaw_testkit::bin("examples").join("sweep_bench");
    let o = std::process::Command::new(&exe)
        .args(["30", "3"])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (cargo test builds examples)", exe.display()));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("sweep of 30 idle sessions: p50"), "{out}");
    assert!(out.contains("p99"), "{out}");
}
