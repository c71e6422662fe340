-- v2 "cli-scope": what the in-container admin CLI may touch (disabled | group | global).
ALTER TABLE container_configs ADD COLUMN cli_scope TEXT NOT NULL DEFAULT 'group';
