-- v2 "approval-render-metadata": the card a pending approval was shown with.
ALTER TABLE pending_channel_approvals ADD COLUMN title TEXT NOT NULL DEFAULT '';
ALTER TABLE pending_channel_approvals ADD COLUMN options_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE pending_sender_approvals ADD COLUMN title TEXT NOT NULL DEFAULT '';
ALTER TABLE pending_sender_approvals ADD COLUMN options_json TEXT NOT NULL DEFAULT '[]';
