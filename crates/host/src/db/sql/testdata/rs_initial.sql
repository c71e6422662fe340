-- Central DB, NanoClaw v2 table and column names (DESIGN §5).
CREATE TABLE IF NOT EXISTS agent_groups (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  folder TEXT NOT NULL UNIQUE,
  agent_provider TEXT,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messaging_groups (
  id TEXT PRIMARY KEY,
  channel_type TEXT NOT NULL,
  platform_id TEXT NOT NULL,
  name TEXT,
  is_group INTEGER NOT NULL DEFAULT 0,
  unknown_sender_policy TEXT NOT NULL DEFAULT 'strict'
    CHECK (unknown_sender_policy IN ('strict', 'request_approval', 'public')),
  created_at TEXT NOT NULL,
  UNIQUE (channel_type, platform_id)
);
CREATE TABLE IF NOT EXISTS messaging_group_agents (
  id TEXT PRIMARY KEY,
  messaging_group_id TEXT NOT NULL REFERENCES messaging_groups(id) ON DELETE CASCADE,
  agent_group_id TEXT NOT NULL REFERENCES agent_groups(id) ON DELETE CASCADE,
  engage_mode TEXT NOT NULL DEFAULT 'mention'
    CHECK (engage_mode IN ('pattern', 'mention', 'mention-sticky')),
  engage_pattern TEXT,
  sender_scope TEXT NOT NULL DEFAULT 'all' CHECK (sender_scope IN ('all', 'known')),
  ignored_message_policy TEXT NOT NULL DEFAULT 'drop'
    CHECK (ignored_message_policy IN ('drop', 'accumulate')),
  session_mode TEXT NOT NULL DEFAULT 'shared'
    CHECK (session_mode IN ('shared', 'per-thread', 'agent-shared')),
  priority INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  UNIQUE (messaging_group_id, agent_group_id)
);
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  display_name TEXT,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS user_roles (
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  role TEXT NOT NULL CHECK (role IN ('owner', 'admin')),
  agent_group_id TEXT REFERENCES agent_groups(id) ON DELETE CASCADE,
  granted_by TEXT,
  granted_at TEXT NOT NULL,
  PRIMARY KEY (user_id, role, agent_group_id)
);
CREATE INDEX IF NOT EXISTS idx_user_roles_scope ON user_roles(agent_group_id, role);
CREATE TABLE IF NOT EXISTS agent_group_members (
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  agent_group_id TEXT NOT NULL REFERENCES agent_groups(id) ON DELETE CASCADE,
  added_by TEXT,
  added_at TEXT NOT NULL,
  PRIMARY KEY (user_id, agent_group_id)
);
CREATE TABLE IF NOT EXISTS user_dms (
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  channel_type TEXT NOT NULL,
  messaging_group_id TEXT NOT NULL REFERENCES messaging_groups(id) ON DELETE CASCADE,
  resolved_at TEXT NOT NULL,
  PRIMARY KEY (user_id, channel_type)
);
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY,
  agent_group_id TEXT NOT NULL REFERENCES agent_groups(id) ON DELETE CASCADE,
  messaging_group_id TEXT REFERENCES messaging_groups(id) ON DELETE SET NULL,
  thread_id TEXT,
  agent_provider TEXT,
  status TEXT NOT NULL DEFAULT 'active',
  container_status TEXT NOT NULL DEFAULT 'stopped'
    CHECK (container_status IN ('running', 'idle', 'stopped')),
  last_active TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_sessions_lookup ON sessions(agent_group_id, messaging_group_id, thread_id);
CREATE TABLE IF NOT EXISTS pending_questions (
  question_id TEXT PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  message_out_id TEXT NOT NULL,
  platform_id TEXT,
  channel_type TEXT,
  thread_id TEXT,
  title TEXT,
  options_json TEXT,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_approvals (
  approval_id TEXT PRIMARY KEY,
  session_id TEXT REFERENCES sessions(id) ON DELETE CASCADE,
  request_id TEXT,
  action TEXT NOT NULL,
  payload TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL,
  agent_group_id TEXT,
  channel_type TEXT,
  platform_id TEXT,
  platform_message_id TEXT,
  expires_at TEXT,
  status TEXT NOT NULL DEFAULT 'pending',
  title TEXT,
  options_json TEXT
);
CREATE TABLE IF NOT EXISTS pending_sender_approvals (
  id TEXT PRIMARY KEY,
  messaging_group_id TEXT NOT NULL REFERENCES messaging_groups(id) ON DELETE CASCADE,
  agent_group_id TEXT,
  sender_identity TEXT NOT NULL,
  sender_name TEXT,
  original_message TEXT NOT NULL,
  approver_user_id TEXT,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_destinations (
  agent_group_id TEXT NOT NULL REFERENCES agent_groups(id) ON DELETE CASCADE,
  local_name TEXT NOT NULL,
  target_type TEXT NOT NULL CHECK (target_type IN ('channel', 'agent')),
  target_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (agent_group_id, local_name)
);
CREATE TABLE IF NOT EXISTS unregistered_senders (
  id TEXT PRIMARY KEY,
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
  UNIQUE (channel_type, platform_id, user_id, reason)
);
CREATE TABLE IF NOT EXISTS container_configs (
  agent_group_id TEXT PRIMARY KEY REFERENCES agent_groups(id) ON DELETE CASCADE,
  image TEXT,
  packages TEXT NOT NULL DEFAULT '[]',
  mcp_servers TEXT NOT NULL DEFAULT '{}',
  extra_mounts TEXT NOT NULL DEFAULT '[]',
  limits TEXT NOT NULL DEFAULT '{}',
  provider TEXT,
  model TEXT,
  cli_scope TEXT,
  updated_at TEXT NOT NULL
);
