//! The real Docker engine for tests: is one reachable, and the slim image built once per test
//! binary from the static runner that `.ci/run` builds.

use std::process::{Command, Output, Stdio};
use std::sync::Once;

use crate::{bin, TestHome};

/// Whether an engine answers. `.ci/run` fails when none does, so in CI Docker tests run; on a
/// laptop without one they print why and pass.
pub fn engine() -> bool {
    let ok = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: no Docker engine reachable (docker info failed)");
    }
    ok
}

/// The static runner for the slim image.
pub fn static_agent() -> std::path::PathBuf {
    let debug = bin("nanoclaw");
    let target = debug.parent().unwrap().parent().unwrap();
    target.join("x86_64-unknown-linux-gnu/release/nanoclaw-agent")
}

/// The slim image's tag in tests: `NANOCLAW_TEST_IMAGE`, so that checkouts testing side by side
/// on one engine do not run each other's runner, else the default `nanoclaw-agent:slim`.
pub fn slim_tag() -> String {
    std::env::var("NANOCLAW_TEST_IMAGE").unwrap_or_else(|_| "nanoclaw-agent:slim".into())
}

/// Builds the slim image (`slim_tag`) once per test binary.
pub fn slim_image() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let agent = static_agent();
        assert!(
            agent.is_file(),
            "static runner missing at {}: RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target x86_64-unknown-linux-gnu -p nanoclaw-agent",
            agent.display()
        );
        let home = TestHome::new();
        let tag = slim_tag();
        let o = home.run(&[
            "image",
            "build",
            "--slim",
            "--tag",
            &tag,
            "--agent-bin",
            agent.to_str().unwrap(),
        ]);
        assert!(
            o.status.success(),
            "image build: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(&format!("built {tag}")), "{out}");
    });
}

/// `docker <args>`.
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker cli")
}
