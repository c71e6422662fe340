-- A central DB made by an earlier NanoClaw (Rust) release ("initial" in the ledger) is brought
-- to NanoClaw v2's table shapes, so one code path serves both. Nothing is dropped: rows are
-- carried into the v2 shape.

-- Dropped messages: v2 keeps one row per chat with the latest reason and the total count.
CREATE TABLE unregistered_senders_v2 (
  channel_type TEXT NOT NULL,
  platform_id TEXT NOT NULL,
  user_id TEXT,
  sender_name TEXT,
  reason TEXT NOT NULL,
  messaging_group_id TEXT,
  agent_group_id TEXT,
  message_count INTEGER NOT NULL DEFAULT 1,
  first_seen TEXT NOT NULL,
  last_seen TEXT NOT NULL,
  PRIMARY KEY (channel_type, platform_id)
);
INSERT INTO unregistered_senders_v2
  SELECT u.channel_type, u.platform_id, NULLIF(u.user_id, ''), u.sender_name,
         CASE u.reason WHEN 'unknown_chat' THEN 'no_agent_wired'
                       WHEN 'unknown_sender' THEN 'unknown_sender_strict'
                       WHEN 'sender_scope' THEN 'sender_scope_not_member'
                       ELSE u.reason END,
         u.messaging_group_id, u.agent_group_id,
         (SELECT SUM(message_count) FROM unregistered_senders s
           WHERE s.channel_type = u.channel_type AND s.platform_id = u.platform_id),
         (SELECT MIN(first_seen) FROM unregistered_senders s
           WHERE s.channel_type = u.channel_type AND s.platform_id = u.platform_id),
         u.last_seen
  FROM unregistered_senders u
  WHERE u.rowid = (SELECT s.rowid FROM unregistered_senders s
                    WHERE s.channel_type = u.channel_type AND s.platform_id = u.platform_id
                    ORDER BY s.last_seen DESC LIMIT 1);
DROP TABLE unregistered_senders;
ALTER TABLE unregistered_senders_v2 RENAME TO unregistered_senders;
CREATE INDEX IF NOT EXISTS idx_unregistered_senders_last_seen ON unregistered_senders(last_seen);

-- Container configs: packages {apt, npm} → packages_apt/packages_npm, extra_mounts →
-- additional_mounts, image → image_tag; limits stays ours.
CREATE TABLE container_configs_v2 (
  agent_group_id TEXT PRIMARY KEY REFERENCES agent_groups(id) ON DELETE CASCADE,
  provider TEXT,
  model TEXT,
  effort TEXT,
  image_tag TEXT,
  assistant_name TEXT,
  max_messages_per_prompt INTEGER,
  skills TEXT NOT NULL DEFAULT '"all"',
  mcp_servers TEXT NOT NULL DEFAULT '{}',
  packages_apt TEXT NOT NULL DEFAULT '[]',
  packages_npm TEXT NOT NULL DEFAULT '[]',
  additional_mounts TEXT NOT NULL DEFAULT '[]',
  updated_at TEXT NOT NULL,
  cli_scope TEXT NOT NULL DEFAULT 'group',
  limits TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO container_configs_v2(agent_group_id, provider, model, image_tag, mcp_servers,
    packages_apt, packages_npm, additional_mounts, updated_at, cli_scope, limits)
  SELECT agent_group_id, provider, model, image, mcp_servers,
         COALESCE(CASE WHEN json_valid(packages) THEN json_extract(packages, '$.apt') END, '[]'),
         COALESCE(CASE WHEN json_valid(packages) THEN json_extract(packages, '$.npm') END, '[]'),
         extra_mounts, updated_at, COALESCE(cli_scope, 'group'), limits
  FROM container_configs;
DROP TABLE container_configs;
ALTER TABLE container_configs_v2 RENAME TO container_configs;

-- Unknown senders waiting for approval: v2 requires the agent group and an approver ('' =
-- none chosen yet) and keeps one per (chat, sender).
CREATE TABLE pending_sender_approvals_v2 (
  id TEXT PRIMARY KEY,
  messaging_group_id TEXT NOT NULL REFERENCES messaging_groups(id),
  agent_group_id TEXT NOT NULL REFERENCES agent_groups(id),
  sender_identity TEXT NOT NULL,
  sender_name TEXT,
  original_message TEXT NOT NULL,
  approver_user_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  title TEXT NOT NULL DEFAULT '',
  options_json TEXT NOT NULL DEFAULT '[]',
  UNIQUE (messaging_group_id, sender_identity)
);
INSERT OR IGNORE INTO pending_sender_approvals_v2(id, messaging_group_id, agent_group_id,
    sender_identity, sender_name, original_message, approver_user_id, created_at)
  SELECT id, messaging_group_id, agent_group_id, sender_identity, sender_name, original_message,
         COALESCE(approver_user_id, ''), created_at
  FROM pending_sender_approvals WHERE agent_group_id IS NOT NULL ORDER BY created_at;
DROP TABLE pending_sender_approvals;
ALTER TABLE pending_sender_approvals_v2 RENAME TO pending_sender_approvals;
CREATE INDEX IF NOT EXISTS idx_pending_sender_approvals_mg ON pending_sender_approvals(messaging_group_id);

-- v2 tables and columns an earlier release did not have.
ALTER TABLE messaging_groups ADD COLUMN denied_at TEXT;
CREATE TABLE IF NOT EXISTS pending_channel_approvals (
  messaging_group_id TEXT PRIMARY KEY REFERENCES messaging_groups(id),
  agent_group_id TEXT NOT NULL REFERENCES agent_groups(id),
  original_message TEXT NOT NULL,
  approver_user_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  title TEXT NOT NULL DEFAULT '',
  options_json TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS idx_agent_dest_target ON agent_destinations(target_type, target_id);
CREATE INDEX IF NOT EXISTS idx_sessions_agent_group ON sessions(agent_group_id);
CREATE INDEX IF NOT EXISTS idx_sessions_route ON sessions(agent_group_id, messaging_group_id, thread_id);
