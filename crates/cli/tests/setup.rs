//! `nanoclaw setup`, driven as a user would: with flags (scripts) and through a real
//! pseudo-terminal answering its prompts.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nanoclaw_testkit::TestHome;

fn env_file(home: &TestHome) -> String {
    std::fs::read_to_string(home.path().join(".env")).unwrap_or_default()
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn non_interactive_with_flags() {
    let home = TestHome::new();
    let run = |args: &[&str], key: &str| {
        let mut a = vec!["setup", "--non-interactive"];
        a.extend_from_slice(args);
        home.cmd(&a)
            .env("MY_KEY", key)
            .env("MY_TG", "123:abc")
            .output()
            .unwrap()
    };
    let o = run(
        &[
            "--runtime",
            "process",
            "--provider",
            "anthropic",
            "--api-key-env",
            "MY_KEY",
            "--model",
            "claude-x",
            "--assistant-name",
            "Bob",
        ],
        "sk-ant-first",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("sk-ant-first"), "a secret was printed");
    assert!(env_file(&home).contains("ANTHROPIC_API_KEY=sk-ant-first\n"));
    assert_eq!(mode(&home.path().join(".env")), 0o600);
    let toml = std::fs::read_to_string(home.path().join("nanoclaw.toml")).unwrap();
    for want in [
        "NANOCLAW_PROVIDER = \"anthropic\"",
        "NANOCLAW_RUNTIME = \"process\"",
        "NANOCLAW_MODEL = \"claude-x\"",
        "ASSISTANT_NAME = \"Bob\"",
    ] {
        assert!(toml.contains(want), "{want} missing in {toml}");
    }
    assert!(
        std::fs::read_to_string(home.path().join("groups/main/CLAUDE.md"))
            .unwrap()
            .contains("You are Bob")
    );

    // Bad input: one line, exit 2.
    for (args, needle) in [
        (vec!["--provider", "gpt"], "not one of"),
        (vec!["--provider", "anthropic"], "needs its key"),
        (
            vec!["--provider", "openai", "--openai-base-url", "ftp://x"],
            "not an http(s) URL",
        ),
        (
            vec!["--provider", "anthropic", "--api-key-env", "NOPE_UNSET"],
            "is not set",
        ),
    ] {
        let o = run(&args, "k");
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err}");
    }

    // Switch to the mock provider: the assistant works from the setup's files.
    let o = run(&["--provider", "mock"], "");
    assert!(o.status.success());
    let o = home.run(&["chat", "-m", "hi", "--timeout", "30"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "echo: hi\n");
    // Again, with a new key and Telegram: the key is replaced, not duplicated; a pairing code is printed.
    let o = run(
        &[
            "--provider",
            "anthropic",
            "--api-key-env",
            "MY_KEY",
            "--telegram-token-env",
            "MY_TG",
        ],
        "sk-ant-second",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let env = env_file(&home);
    assert_eq!(env.matches("ANTHROPIC_API_KEY=").count(), 1, "{env}");
    assert!(
        env.contains("ANTHROPIC_API_KEY=sk-ant-second")
            && env.contains("TELEGRAM_BOT_TOKEN=123:abc")
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("send this code to your bot"), "{out}");
    // Long enough to resist guessing (12 symbols without look-alikes, in groups of four).
    let code = out
        .lines()
        .skip_while(|l| !l.contains("send this code to your bot"))
        .nth(1)
        .unwrap_or_default()
        .trim();
    assert_eq!(code.len(), 14, "{out}");
    assert!(
        code.split('-').all(|g| g.len() == 4
            && g.bytes()
                .all(|b| nanoclaw_host::access::pairing::ALPHABET.contains(&b))),
        "{code}"
    );
}

/// A child on a pseudo-terminal; everything it prints is collected.
struct Pty {
    master: std::fs::File,
    seen: Arc<Mutex<String>>,
    child: std::process::Child,
    /// Signalled when the reader hit the end of the terminal's output (every slave end closed).
    eof: std::sync::mpsc::Receiver<()>,
}

impl Pty {
    fn spawn(mut cmd: std::process::Command) -> Self {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty fills two fds; no name, termios or winsize requested.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty failed");
        // SAFETY: fresh fds from openpty, owned here.
        let (master, slave) = unsafe {
            (
                std::fs::File::from_raw_fd(master),
                OwnedFd::from_raw_fd(slave),
            )
        };
        let child = cmd
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .unwrap();
        let seen = Arc::new(Mutex::new(String::new()));
        let (mut reader, s2) = (master.try_clone().unwrap(), seen.clone());
        let (eof_tx, eof) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                s2.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            let _ = eof_tx.send(());
        });
        Self {
            master,
            seen,
            child,
            eof,
        }
    }

    /// Waits for `prompt` (after what was already answered), then types `answer` + Enter.
    fn answer(&mut self, prompt: &str, answer: &str, from: &mut usize) {
        let t0 = Instant::now();
        loop {
            let s = self.seen.lock().unwrap().clone();
            if let Some(i) = s[*from..].find(prompt) {
                *from += i + prompt.len();
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "prompt {prompt:?} never came; saw:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.master
            .write_all(format!("{answer}\r").as_bytes())
            .unwrap();
    }
}

#[test]
fn interactive_through_a_pseudo_terminal() {
    let home = TestHome::new();
    let mut pty = Pty::spawn(home.cmd(&["setup"]));
    let mut at = 0;
    pty.answer("Runtime (auto/docker/process)", "process", &mut at);
    pty.answer(
        "Provider (anthropic/openai/claude/mock)",
        "claude-ish",
        &mut at,
    );
    pty.answer("try again", "anthropic", &mut at); // the bad answer is refused and asked again
    pty.answer("Anthropic API key (hidden)", "sk-pty-secret-123", &mut at);
    pty.answer("Model", "", &mut at);
    pty.answer("Name [Andy]", "Robo", &mut at);
    pty.answer("Telegram bot token", "", &mut at);
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = pty.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "setup did not finish:\n{}",
            pty.seen.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // The child's last output may still be in the pty: read to its end before judging it.
    pty.eof
        .recv_timeout(Duration::from_secs(10))
        .expect("terminal output ended");
    let screen = pty.seen.lock().unwrap().clone();
    assert!(status.success(), "{screen}");
    assert!(screen.contains("Setup saved"), "{screen}");
    assert!(
        !screen.contains("sk-pty-secret-123"),
        "the key was echoed to the terminal:\n{screen}"
    );
    assert!(env_file(&home).contains("ANTHROPIC_API_KEY=sk-pty-secret-123"));
    assert_eq!(mode(&home.path().join(".env")), 0o600);
    let toml = std::fs::read_to_string(home.path().join("nanoclaw.toml")).unwrap();
    assert!(
        toml.contains("ASSISTANT_NAME = \"Robo\"")
            && toml.contains("NANOCLAW_RUNTIME = \"process\""),
        "{toml}"
    );
}
