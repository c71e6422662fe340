-- v2 "pending-sender-approvals": an unknown sender's message waiting for an approver; one in
-- flight per (chat, sender).
CREATE TABLE IF NOT EXISTS pending_sender_approvals (
  id TEXT PRIMARY KEY,
  messaging_group_id TEXT NOT NULL REFERENCES messaging_groups(id),
  agent_group_id TEXT NOT NULL REFERENCES agent_groups(id),
  sender_identity TEXT NOT NULL,
  sender_name TEXT,
  original_message TEXT NOT NULL,
  approver_user_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  UNIQUE (messaging_group_id, sender_identity)
);
CREATE INDEX IF NOT EXISTS idx_pending_sender_approvals_mg ON pending_sender_approvals(messaging_group_id);
