-- Ours beside NanoClaw v2's tables (v2 ignores what it does not know).
-- Container limits of an agent group: {memoryMb, cpus, pids, network}.
ALTER TABLE container_configs ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';
-- The router looks sessions up by (agent group, chat, thread); v2's idx_sessions_lookup lacks
-- the agent group.
CREATE INDEX IF NOT EXISTS idx_sessions_route ON sessions(agent_group_id, messaging_group_id, thread_id);
