-- v2 "container-configs": per agent group container and runner settings. JSON columns:
-- skills ("all" or a list), mcp_servers {name: {command, args, env}}, packages_apt and
-- packages_npm (lists), additional_mounts [{hostPath, containerPath, readonly}].
CREATE TABLE container_configs (
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
  updated_at TEXT NOT NULL
);
