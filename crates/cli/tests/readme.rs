//! The README's run command works on a fresh clone exactly as written: the repository is cloned
//! into a temporary directory, the first command under "Run it" is run there, one message is
//! typed and its reply read. (The clone and its `CARGO_TARGET_DIR` live at a fixed place under
//! this checkout's `target/`, so a second run rebuilds only what changed; the runtime is pinned
//! to `process` because a test machine may hold a slim image of another checkout.)

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The first command of the first shell block after the "## Run it" heading.
fn run_command(readme: &str) -> String {
    let section = readme
        .split("## Run it")
        .nth(1)
        .expect("README has a 'Run it' section");
    let block = section
        .split("```sh")
        .nth(1)
        .expect("a shell block under 'Run it'");
    block
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .expect("a command in the block")
        .to_string()
}

#[test]
fn readme_run_command_works_on_a_fresh_clone() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let cmd = run_command(&readme);
    assert_eq!(
        cmd, "cargo run --release -- chat",
        "the README's first command"
    );

    let base = root.join("target/readme-clone");
    let clone = base.join("nanoclaw");
    let _ = std::fs::remove_dir_all(&clone);
    std::fs::create_dir_all(&base).unwrap();
    let st = Command::new("git")
        .args(["clone", "--quiet"])
        .arg(&root)
        .arg(&clone)
        .status()
        .expect("git");
    assert!(st.success(), "git clone failed");

    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let cache = base.join("target");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .current_dir(&clone)
        .env("NANOCLAW_HOME", &home)
        .env("NANOCLAW_RUNTIME", "process")
        .env("CARGO_TARGET_DIR", &cache)
        .env_remove("NANOCLAW_AGENT_BIN")
        .env_remove("NANOCLAW_PROVIDER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    // The build's and the chat's stderr, kept for the failure message; the chat's greeting
    // says the build is over.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let err_log = std::thread::spawn(move || {
        let mut s = String::new();
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            if l.starts_with("Talking to") {
                let _ = ready_tx.send(());
            }
            s.push_str(&l);
            s.push('\n');
        }
        s
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    // A cold release build on a busy 2-core machine can take long; cargo bounds it. Then the
    // reply has a minute.
    let built = ready_rx.recv_timeout(Duration::from_secs(3600)).is_ok();
    stdin.write_all(b"hi\n").unwrap();
    stdin.flush().unwrap();
    let end = Instant::now() + Duration::from_secs(if built { 60 } else { 0 });
    let mut got = None;
    while Instant::now() < end {
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(l) if l.contains("echo: hi") => {
                got = Some(l);
                break;
            }
            Ok(_) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    drop(stdin); // Ctrl-D: the chat ends and its embedded host stops.
    let status = child.wait().unwrap();
    let err = err_log.join().unwrap();
    assert!(
        got.is_some(),
        "no reply from `{cmd}` on a fresh clone; stderr:\n{err}"
    );
    assert!(
        status.success(),
        "`{cmd}` exited with {status}; stderr:\n{err}"
    );
}

#[test]
fn run_command_is_read_from_the_first_block() {
    let md = "# x\n\n## Run it\n\n```sh\n\ncargo run --release -- chat\n```\n";
    assert_eq!(run_command(md), "cargo run --release -- chat");
}
