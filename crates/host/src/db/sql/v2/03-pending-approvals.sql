-- v2 "pending-approvals": actions waiting for an admin.
CREATE TABLE pending_approvals (
  approval_id TEXT PRIMARY KEY,
  session_id TEXT REFERENCES sessions(id),
  request_id TEXT NOT NULL,
  action TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at TEXT NOT NULL,
  agent_group_id TEXT REFERENCES agent_groups(id),
  channel_type TEXT,
  platform_id TEXT,
  platform_message_id TEXT,
  expires_at TEXT,
  status TEXT NOT NULL DEFAULT 'pending',
  title TEXT NOT NULL DEFAULT '',
  options_json TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX idx_pending_approvals_action_status ON pending_approvals(action, status);
