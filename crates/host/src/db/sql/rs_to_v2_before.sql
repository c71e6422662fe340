-- A central DB made by an earlier NanoClaw (Rust) release ("initial" in the ledger) is brought
-- to NanoClaw v2's table shapes, so one code path serves both (`migrations::run`): the three
-- tables whose shape differs are set aside, v2's own migrations create them as v2 has them,
-- then `rs_to_v2_after.sql` carries the rows over. Nothing else is touched.
ALTER TABLE unregistered_senders RENAME TO rs_unregistered_senders;
ALTER TABLE container_configs RENAME TO rs_container_configs;
ALTER TABLE pending_sender_approvals RENAME TO rs_pending_sender_approvals;
