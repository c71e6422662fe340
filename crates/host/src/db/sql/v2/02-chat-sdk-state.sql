-- v2 "chat-sdk-state": state tables of v2's chat adapter SDK. Unused by us, kept for v2.
CREATE TABLE chat_sdk_kv (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  expires_at INTEGER
);
CREATE TABLE chat_sdk_subscriptions (
  thread_id TEXT PRIMARY KEY,
  subscribed_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE chat_sdk_locks (
  thread_id TEXT PRIMARY KEY,
  token TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE chat_sdk_lists (
  key TEXT NOT NULL,
  idx INTEGER NOT NULL,
  value TEXT NOT NULL,
  expires_at INTEGER,
  PRIMARY KEY (key, idx)
);
