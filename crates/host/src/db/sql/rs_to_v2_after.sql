-- The rows of the tables `rs_to_v2_before.sql` set aside, in v2's shapes.

-- Dropped messages: v2 keeps one row per chat with the latest reason and the total count.
INSERT INTO unregistered_senders
  SELECT u.channel_type, u.platform_id, NULLIF(u.user_id, ''), u.sender_name,
         CASE u.reason WHEN 'unknown_chat' THEN 'no_agent_wired'
                       WHEN 'unknown_sender' THEN 'unknown_sender_strict'
                       WHEN 'sender_scope' THEN 'sender_scope_not_member'
                       ELSE u.reason END,
         u.messaging_group_id, u.agent_group_id,
         (SELECT SUM(message_count) FROM rs_unregistered_senders s
           WHERE s.channel_type = u.channel_type AND s.platform_id = u.platform_id),
         (SELECT MIN(first_seen) FROM rs_unregistered_senders s
           WHERE s.channel_type = u.channel_type AND s.platform_id = u.platform_id),
         u.last_seen
  FROM rs_unregistered_senders u
  WHERE u.rowid = (SELECT s.rowid FROM rs_unregistered_senders s
                    WHERE s.channel_type = u.channel_type AND s.platform_id = u.platform_id
                    ORDER BY s.last_seen DESC LIMIT 1);
DROP TABLE rs_unregistered_senders;

-- Container configs: packages {apt, npm} → packages_apt/packages_npm, extra_mounts →
-- additional_mounts, image → image_tag; limits stays ours.
INSERT INTO container_configs(agent_group_id, provider, model, image_tag, mcp_servers,
    packages_apt, packages_npm, additional_mounts, updated_at, cli_scope, limits)
  SELECT agent_group_id, provider, model, image, mcp_servers,
         COALESCE(CASE WHEN json_valid(packages) THEN json_extract(packages, '$.apt') END, '[]'),
         COALESCE(CASE WHEN json_valid(packages) THEN json_extract(packages, '$.npm') END, '[]'),
         extra_mounts, updated_at, COALESCE(cli_scope, 'group'), limits
  FROM rs_container_configs;
DROP TABLE rs_container_configs;

-- Unknown senders waiting for approval: v2 requires the agent group and an approver ('' =
-- none chosen yet) and keeps one per (chat, sender).
INSERT OR IGNORE INTO pending_sender_approvals(id, messaging_group_id, agent_group_id,
    sender_identity, sender_name, original_message, approver_user_id, created_at)
  SELECT id, messaging_group_id, agent_group_id, sender_identity, sender_name, original_message,
         COALESCE(approver_user_id, ''), created_at
  FROM rs_pending_sender_approvals WHERE agent_group_id IS NOT NULL ORDER BY created_at;
DROP TABLE rs_pending_sender_approvals;

-- v2's indexes an earlier release did not have.
CREATE INDEX IF NOT EXISTS idx_agent_dest_target ON agent_destinations(target_type, target_id);
CREATE INDEX IF NOT EXISTS idx_sessions_agent_group ON sessions(agent_group_id);
