-- v2 "channel-registration": a chat the owner refused stays quiet (denied_at); a new chat waits
-- for the owner's decision (one in flight per chat). The denied_at column is added by code when
-- missing.
CREATE TABLE IF NOT EXISTS pending_channel_approvals (
  messaging_group_id TEXT PRIMARY KEY REFERENCES messaging_groups(id),
  agent_group_id TEXT NOT NULL REFERENCES agent_groups(id),
  original_message TEXT NOT NULL,
  approver_user_id TEXT NOT NULL,
  created_at TEXT NOT NULL
);
