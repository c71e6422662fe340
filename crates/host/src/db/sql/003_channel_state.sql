-- Small per-channel state that must survive restarts (e.g. Telegram's getUpdates offset).
CREATE TABLE IF NOT EXISTS channel_state (
  channel_type TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (channel_type, key)
);
