-- Ours beside NanoClaw v2's container_configs: how long a turn may go without progress, and
-- at most, before its runner is stopped and the message retried (NULL = the host's default).
ALTER TABLE container_configs ADD COLUMN turn_stuck_ms INTEGER;
ALTER TABLE container_configs ADD COLUMN turn_max_ms INTEGER;
