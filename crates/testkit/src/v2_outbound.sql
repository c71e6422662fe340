-- NanoClaw v2.0.64's outbound.db tables (container-owned), from the facts of its src/db/schema.ts.
CREATE TABLE IF NOT EXISTS messages_out (
  id TEXT PRIMARY KEY, seq INTEGER UNIQUE, in_reply_to TEXT, timestamp TEXT NOT NULL,
  deliver_after TEXT, recurrence TEXT, kind TEXT NOT NULL, platform_id TEXT,
  channel_type TEXT, thread_id TEXT, content TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS processing_ack (
  message_id TEXT PRIMARY KEY, status TEXT NOT NULL, status_changed TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS session_state (
  key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS container_state (
  id INTEGER PRIMARY KEY CHECK (id = 1), current_tool TEXT, tool_declared_timeout_ms INTEGER,
  tool_started_at TEXT, updated_at TEXT NOT NULL
);
