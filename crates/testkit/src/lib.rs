//! Test helpers: a temporary NanoClaw home, the real binaries driven inside it, and readers of
//! the session DBs. Fakes of remote services (model APIs, platforms) live here too as they arrive.

pub mod claude_cli;
pub mod docker;
pub mod fake_model;
pub mod fake_telegram;
pub mod v2;
pub mod v2_session;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::Value;

/// Path of a binary built next to the running test or bench (`target/<profile>/<name>`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(name)
}

/// A throwaway home directory.
pub struct TestHome {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Default for TestHome {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHome {
    /// A fresh, empty home.
    pub fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("nc-home-")
                .tempdir()
                .expect("tempdir"),
            env: vec![],
        }
    }

    /// Adds an environment variable for every command started from this home.
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Points this home's Telegram channel at a fake Bot API (its token, its URL, a 1 s poll).
    pub fn telegram(self, fake: &fake_telegram::FakeTelegram) -> Self {
        self.env("TELEGRAM_BOT_TOKEN", fake.token())
            .env("TELEGRAM_API_URL", fake.url())
            .env("TELEGRAM_POLL_TIMEOUT", "1")
    }

    /// The home path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `nanoclaw --home <home> <args>` with the runner binary next to it.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("nanoclaw"));
        c.arg("--home").arg(self.path()).args(args);
        c.env("NANOCLAW_AGENT_BIN", bin("nanoclaw-agent"));
        c.env_remove("NANOCLAW_HOME");
        // Docker tests opt in explicitly (`.env("NANOCLAW_RUNTIME", "docker")`).
        c.env("NANOCLAW_RUNTIME", "process");
        // Tests kill hosts on purpose: no start-up backoff unless a test asks for one.
        c.env("NANOCLAW_STARTUP_BACKOFF_UNIT_MS", "0");
        if std::env::var_os("NANOCLAW_TEST_IMAGE").is_some() {
            c.env("NANOCLAW_IMAGE", docker::slim_tag());
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs a command to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .stdin(Stdio::null())
            .output()
            .expect("spawn nanoclaw")
    }

    /// `nanoclaw run` in the background, waiting until the terminal socket answers.
    pub fn start_host(&self, extra_env: &[(&str, &str)]) -> HostProc {
        let mut c = self.cmd(&["run"]);
        for (k, v) in extra_env {
            c.env(k, v);
        }
        let child = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn host");
        let mut h = HostProc {
            child: Some(child),
            sock: self.path().join("data/cli.sock"),
        };
        h.wait_ready(Duration::from_secs(20));
        h
    }

    /// `nanoclaw ctl <args>`, which must succeed; its trimmed stdout (a new row's id).
    pub fn ctl(&self, args: &[&str]) -> String {
        let mut a = vec!["ctl"];
        a.extend_from_slice(args);
        let o = self.run(&a);
        assert!(
            o.status.success(),
            "ctl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// The id of the `main` agent group (made by the host's first start).
    pub fn main_group(&self) -> String {
        self.central()
            .query_row("SELECT id FROM agent_groups WHERE folder='main'", [], |r| {
                r.get(0)
            })
            .expect("the main agent group")
    }

    /// Wires Telegram chat `chat` to the main agent through ctl: unknown senders by `policy`,
    /// engage by `engage` (`pattern` means every message), sessions by `mode`. Returns the
    /// messaging group id.
    pub fn wire_telegram(
        &self,
        chat: i64,
        is_group: bool,
        policy: &str,
        engage: &str,
        mode: &str,
    ) -> String {
        let main = self.main_group();
        let pid = format!("telegram:{chat}");
        let mg = self.ctl(&[
            "messaging-groups",
            "create",
            "--channel-type",
            "telegram",
            "--platform-id",
            &pid,
            "--is-group",
            if is_group { "true" } else { "false" },
            "--unknown-sender-policy",
            policy,
        ]);
        let mut args = vec![
            "wirings",
            "create",
            "--messaging-group-id",
            &mg,
            "--agent-group-id",
            &main,
            "--session-mode",
            mode,
            "--engage-mode",
            engage,
        ];
        // Text, not the type: tests pass these straight to ctl, which checks them.
        if engage == nanoclaw_protocol::status::EngageMode::Pattern.as_str() {
            args.extend_from_slice(&["--engage-pattern", "."]);
        }
        self.ctl(&args);
        mg
    }

    /// The central DB, opened for reading.
    pub fn central(&self) -> Connection {
        let c = Connection::open(self.path().join("data/v2.db")).expect("open v2.db");
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c
    }

    /// Folders of every session the central DB knows: `data/v2-sessions/<ag>/<session>`.
    ///
    /// Read from the `sessions` table, not the directory: a host killed while creating a
    /// session leaves a folder (maybe with an empty inbound.db) whose row was never committed,
    /// and that folder is no session.
    pub fn session_dirs(&self) -> Vec<PathBuf> {
        let db = self.path().join("data/v2.db");
        if !db.exists() {
            return vec![];
        }
        let c = self.central();
        let ids: Vec<(String, String)> = c
            .prepare("SELECT agent_group_id, id FROM sessions")
            .and_then(|mut st| {
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()
            })
            .unwrap_or_default();
        let mut out: Vec<PathBuf> = ids
            .into_iter()
            .map(|(ag, id)| self.path().join("data/v2-sessions").join(ag).join(id))
            .filter(|d| d.join("inbound.db").exists())
            .collect();
        out.sort();
        out
    }

    /// Whether every session is at rest: no triggering row waiting for or inside a turn, every
    /// chat row the runners wrote recorded in `delivered`, no send in flight. The barrier for
    /// "nothing more will be sent": with no new input, nothing can be after this. (Rows due
    /// in the future keep a session from resting; tests that use this schedule none.)
    pub fn at_rest(&self) -> bool {
        let rested = |dir: &Path| -> Option<bool> {
            let inb = Connection::open(dir.join("inbound.db")).ok()?;
            let out = Connection::open(dir.join("outbound.db")).ok()?;
            let open: i64 = inb
                .query_row(
                    "SELECT COUNT(*) FROM messages_in WHERE trigger = 1 AND status IN ('pending', 'processing')",
                    [],
                    |r| r.get(0),
                )
                .ok()?;
            let delivered: std::collections::HashSet<String> = inb
                .prepare("SELECT message_out_id FROM delivered")
                .ok()?
                .query_map([], |r| r.get(0))
                .ok()?
                .collect::<rusqlite::Result<_>>()
                .ok()?;
            let replies: Vec<String> = out
                .prepare("SELECT id FROM messages_out WHERE kind = 'chat'")
                .ok()?
                .query_map([], |r| r.get(0))
                .ok()?
                .collect::<rusqlite::Result<_>>()
                .ok()?;
            Some(open == 0 && replies.iter().all(|r| delivered.contains(r)))
        };
        let intents: Option<i64> = self
            .central()
            .query_row("SELECT COUNT(*) FROM delivery_intents", [], |r| r.get(0))
            .ok();
        intents == Some(0)
            && self
                .session_dirs()
                .iter()
                .all(|d| rested(d).unwrap_or(false))
    }

    /// Lines of the terminal transcript (every reply the terminal channel sent).
    pub fn transcript(&self) -> Vec<Value> {
        std::fs::read_to_string(self.path().join("data/cli-transcript.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// A `nanoclaw run` child; SIGTERM'd and reaped on drop.
pub struct HostProc {
    child: Option<Child>,
    sock: PathBuf,
}

impl HostProc {
    fn wait_ready(&mut self, limit: Duration) {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if UnixStream::connect(&self.sock).is_ok() {
                return;
            }
            // A host that exited will never open the socket: say why instead of waiting.
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                let out = self.child.take().expect("child").wait_with_output();
                let err = out.map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
                panic!(
                    "host exited before opening its socket: {}",
                    err.unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("host did not open {} within {limit:?}", self.sock.display());
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends a signal.
    pub fn signal(&self, sig: i32) {
        // SAFETY: signal to our own child.
        unsafe {
            libc::kill(self.pid() as i32, sig);
        }
    }

    /// Waits for the process to end (bounded); returns its exit status, if it ended.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + limit;
        let child = self.child.as_mut()?;
        while Instant::now() < end {
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Stops the host with SIGTERM and returns its stderr.
    pub fn stop(mut self) -> String {
        self.signal(libc::SIGTERM);
        let child = self.child.take().expect("running");
        let out = child.wait_with_output().expect("wait host");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

impl Drop for HostProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signal to our own child.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A raw terminal-channel client (JSON lines over `data/cli.sock`).
pub struct CliClient {
    rd: BufReader<UnixStream>,
    wr: UnixStream,
}

impl CliClient {
    /// Connects to a home's terminal socket.
    pub fn connect(home: &Path) -> std::io::Result<Self> {
        let s = UnixStream::connect(home.join("data/cli.sock"))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Self {
            rd: BufReader::new(s.try_clone()?),
            wr: s,
        })
    }

    /// Sends a message to the default agent.
    pub fn send(&mut self, text: &str) -> std::io::Result<()> {
        let line = serde_json::json!({"type": "message", "text": text}).to_string() + "\n";
        self.wr.write_all(line.as_bytes())
    }

    /// Reads the next event.
    pub fn recv(&mut self) -> std::io::Result<Value> {
        let mut l = String::new();
        if self.rd.read_line(&mut l)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        serde_json::from_str(&l)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// Reads events until one of `kind` arrives.
    pub fn until(&mut self, kind: &str) -> std::io::Result<Value> {
        loop {
            let v = self.recv()?;
            if v["type"] == kind {
                return Ok(v);
            }
        }
    }
}

/// Pids of live `nanoclaw-agent` processes whose environment mentions `needle` (a home path).
pub fn runner_pids(needle: &Path) -> Vec<u32> {
    let needle = needle.to_string_lossy().into_owned();
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        // argv[0], not any argument: a sandboxed runner's bwrap (and bwrap's init) carry the
        // runner's path and environment too.
        let argv0 = cmd.split(|&b| b == 0).next().unwrap_or_default();
        if !String::from_utf8_lossy(argv0).ends_with("nanoclaw-agent") {
            continue;
        }
        let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat.split(") ").nth(1).is_some_and(|r| r.starts_with('Z'));
        if !zombie && String::from_utf8_lossy(&env).contains(&needle) {
            out.push(pid);
        }
    }
    out
}

/// Writes a `messages_out` row into a session folder as its runner does, while that runner may
/// be live and writing too: the seq (the next odd number above both tables) is chosen inside
/// the IMMEDIATE transaction that inserts it, so two writers never pick the same one.
/// `extra` adds text columns (`recurrence`, `thread_id`, ...; `kind` replaces the default
/// `chat`). Returns the seq.
pub fn runner_insert(
    dir: &Path,
    id: &str,
    channel_type: &str,
    platform_id: &str,
    content: &Value,
    extra: &[(&str, &str)],
) -> i64 {
    // inbound.db is read before (never during) the write transaction, as the runner does: its
    // rows are even, so a stale read cannot make an odd seq collide.
    let max_in: i64 = {
        let inb = Connection::open(dir.join("inbound.db")).expect("open inbound.db");
        inb.busy_timeout(Duration::from_secs(5)).unwrap();
        inb.query_row("SELECT COALESCE(MAX(seq), 0) FROM messages_in", [], |r| {
            r.get(0)
        })
        .expect("max seq of messages_in")
    };
    let mut out = Connection::open(dir.join("outbound.db")).expect("open outbound.db");
    out.busy_timeout(Duration::from_secs(5)).unwrap();
    let tx = out
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .expect("begin immediate on outbound.db");
    let max_out: i64 = tx
        .query_row("SELECT COALESCE(MAX(seq), 0) FROM messages_out", [], |r| {
            r.get(0)
        })
        .expect("max seq of messages_out");
    let seq =
        nanoclaw_protocol::seq::next(nanoclaw_protocol::seq::Side::Runner, max_in.max(max_out));
    let kind = extra
        .iter()
        .find(|(c, _)| *c == "kind")
        .map_or("chat", |(_, v)| *v);
    let mut cols = String::from("id, seq, timestamp, kind, platform_id, channel_type, content");
    let mut marks = String::from("?1, ?2, ?3, ?4, ?5, ?6, ?7");
    let now = nanoclaw_protocol::time::now();
    let content = content.to_string();
    let mut params: Vec<&dyn rusqlite::ToSql> = vec![
        &id,
        &seq,
        &now,
        &kind,
        &platform_id,
        &channel_type,
        &content,
    ];
    for (i, (col, val)) in extra.iter().filter(|(c, _)| *c != "kind").enumerate() {
        cols.push_str(&format!(", {col}"));
        marks.push_str(&format!(", ?{}", i + 8));
        params.push(val);
    }
    tx.execute(
        &format!("INSERT INTO messages_out({cols}) VALUES ({marks})"),
        params.as_slice(),
    )
    .expect("insert messages_out row");
    tx.commit().expect("commit outbound.db");
    seq
}

/// Polls `f` every 10 ms until it returns Some or `limit` passes.
pub fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Percentile (0..=100) of a sorted slice.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}
