//! The benchmarks stay runnable: a tiny run of `agent-bench` prints its p50/p99 lines.
//! (Figures come from release builds; see README.)

#[test]
fn agent_bench_prints_percentiles() {
    let o = std::process::Command::new(nanoclaw_testkit::bin("agent-bench"))
        .arg("2")
        .output()
        .expect("agent-bench is built with the workspace");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for line in [
        "runner cold start",
        "runner idle RSS",
        "tool loop overhead per step",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert!(out.contains("p99"));
}
