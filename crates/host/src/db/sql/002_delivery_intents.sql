-- Write-ahead record of an outbound send in flight: makes delivery exactly-once across a host
-- crash between the platform send and the `delivered` write (reconciled at start).
CREATE TABLE IF NOT EXISTS delivery_intents (
  session_id TEXT NOT NULL,
  message_out_id TEXT NOT NULL,
  channel_type TEXT NOT NULL,
  started_at TEXT NOT NULL,
  PRIMARY KEY (session_id, message_out_id)
);

-- Threads where a mention-sticky wiring was mentioned once: later messages there engage.
CREATE TABLE IF NOT EXISTS sticky_threads (
  wiring_id TEXT NOT NULL REFERENCES messaging_group_agents(id) ON DELETE CASCADE,
  thread_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (wiring_id, thread_id)
);
