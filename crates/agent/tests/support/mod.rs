//! A session folder with real inbound/outbound DBs, playing the host's side for runner tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use nanoclaw_agent::{Config, Runner};
use nanoclaw_protocol::schema;
use rusqlite::{params, Connection};
use serde_json::Value;

/// A messages_out row as the host reads it.
#[derive(Debug, Clone)]
pub struct Out {
    pub id: String,
    pub seq: i64,
    pub kind: String,
    pub content: Value,
    pub channel_type: Option<String>,
    pub platform_id: Option<String>,
    pub thread_id: Option<String>,
    pub in_reply_to: Option<String>,
}

pub struct Ws {
    pub dir: tempfile::TempDir,
    next_seq: std::cell::Cell<i64>,
}

impl Ws {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        schema::open_inbound_rw(&dir.path().join("inbound.db")).unwrap();
        std::fs::create_dir_all(dir.path().join("agent")).unwrap();
        let ws = Self {
            dir,
            next_seq: std::cell::Cell::new(2),
        };
        ws.inbound()
            .execute("INSERT INTO session_routing(id, channel_type, platform_id, thread_id) VALUES (1, 'cli', 'local', NULL)", [])
            .unwrap();
        ws
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn agent(&self) -> PathBuf {
        self.dir.path().join("agent")
    }
    /// The `claude` provider against testkit's stream-json fake, which logs its argv to `log`
    /// (process-wide environment: each test binary that uses it runs alone in its process).
    pub fn claude_cfg(&self, log: &Path) -> Config {
        let fake = nanoclaw_testkit::bin("fake-claude");
        assert!(
            fake.exists(),
            "{} missing: run the suite with `cargo test --workspace`",
            fake.display()
        );
        let mut c = self.cfg("claude");
        c.claude_bin = fake;
        c.self_bin = env!("CARGO_BIN_EXE_nanoclaw-agent").into();
        // The fake inherits the environment; tell it where to log its argv.
        std::env::set_var("FAKE_CLAUDE_LOG", log);
        c
    }
    pub fn cfg(&self, provider: &str) -> Config {
        let mut c = Config::from_env();
        c.workspace = self.path().to_path_buf();
        c.agent_dir = self.agent();
        c.global_dir = self.path().join("global");
        c.skills_dirs = vec![];
        c.provider = provider.into();
        c.session_id = "sess-test".into();
        c.admins = vec!["cli:local".into()];
        c.retry_base = std::time::Duration::from_millis(5);
        c.system_timeout = std::time::Duration::from_millis(300);
        c.question_timeout = std::time::Duration::from_millis(300);
        c
    }
    pub fn runner(&self, cfg: Config) -> Runner {
        nanoclaw_agent::build(cfg).unwrap()
    }
    pub fn inbound(&self) -> Connection {
        Connection::open(self.path().join("inbound.db")).unwrap()
    }
    pub fn outbound(&self) -> Connection {
        Connection::open(self.path().join("outbound.db")).unwrap()
    }
    /// Next even seq above both tables, like the host.
    fn host_seq(&self) -> i64 {
        let max_in: i64 = self
            .inbound()
            .query_row("SELECT COALESCE(MAX(seq),0) FROM messages_in", [], |r| {
                r.get(0)
            })
            .unwrap();
        let max_out: i64 = if self.path().join("outbound.db").exists() {
            self.outbound()
                .query_row("SELECT COALESCE(MAX(seq),0) FROM messages_out", [], |r| {
                    r.get(0)
                })
                .unwrap_or(0)
        } else {
            0
        };
        let m = max_in.max(max_out).max(self.next_seq.get());
        let s = if m % 2 == 0 { m + 2 } else { m + 1 };
        self.next_seq.set(s);
        s
    }
    /// Writes a row the way the host does.
    pub fn insert(&self, kind: &str, content: Value, trigger: bool) -> String {
        self.insert_routed(kind, content, trigger, ("cli", "local", None))
    }
    /// Writes a row from `(channel_type, platform_id, thread_id)`, not the session's default
    /// route (a group chat's thread, another agent).
    pub fn insert_routed(
        &self,
        kind: &str,
        content: Value,
        trigger: bool,
        (channel_type, platform_id, thread_id): (&str, &str, Option<&str>),
    ) -> String {
        let id = nanoclaw_protocol::new_id("in");
        let seq = self.host_seq();
        self.inbound()
            .execute(
                "INSERT INTO messages_in(id, seq, kind, timestamp, content, trigger, platform_id, channel_type, thread_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![id, seq, kind, nanoclaw_protocol::time::now(), content.to_string(), trigger, platform_id, channel_type, thread_id],
            )
            .unwrap();
        id
    }
    pub fn chat_from(&self, sender_id: &str, text: &str) -> String {
        self.insert(
            "chat",
            serde_json::json!({"sender": "Ann", "senderId": sender_id, "text": text}),
            true,
        )
    }
    pub fn chat(&self, text: &str) -> String {
        self.chat_from("cli:local", text)
    }
    pub fn destination(
        &self,
        name: &str,
        kind: &str,
        channel_type: Option<&str>,
        platform_id: Option<&str>,
        agent: Option<&str>,
    ) {
        self.inbound()
            .execute(
                "INSERT INTO destinations(name, display_name, type, channel_type, platform_id, agent_group_id) VALUES (?1, ?1, ?2, ?3, ?4, ?5)",
                params![name, kind, channel_type, platform_id, agent],
            )
            .unwrap();
    }
    pub fn out(&self) -> Vec<Out> {
        let c = self.outbound();
        let mut st = c
            .prepare("SELECT id, seq, kind, content, channel_type, platform_id, thread_id, in_reply_to FROM messages_out ORDER BY seq")
            .unwrap();
        st.query_map([], |r| {
            Ok(Out {
                id: r.get(0)?,
                seq: r.get(1)?,
                kind: r.get(2)?,
                content: serde_json::from_str(&r.get::<_, String>(3)?).unwrap(),
                channel_type: r.get(4)?,
                platform_id: r.get(5)?,
                thread_id: r.get(6)?,
                in_reply_to: r.get(7)?,
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }
    pub fn last_text(&self) -> String {
        self.out()
            .last()
            .map(|o| o.content["text"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    }
    pub fn ack_status(&self, id: &str) -> Option<String> {
        use rusqlite::OptionalExtension;
        self.outbound()
            .query_row(
                "SELECT status FROM processing_ack WHERE message_id=?1",
                [id],
                |r| r.get(0),
            )
            .optional()
            .unwrap()
    }
}

impl Ws {
    /// A session folder NanoClaw v2.0.64 left behind (its DDL and rows, see
    /// `nanoclaw_testkit::v2_session`), on the terminal's route, with an agent folder.
    pub fn v2() -> (Self, nanoclaw_testkit::v2_session::Fixture) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("agent")).unwrap();
        let fx = nanoclaw_testkit::v2_session::write_session(dir.path(), "ag-v2", "cli", "local");
        let ws = Self {
            dir,
            next_seq: std::cell::Cell::new(fx.max_seq),
        };
        (ws, fx)
    }
}
