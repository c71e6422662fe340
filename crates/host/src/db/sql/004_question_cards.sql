-- Where a delivered question card lives on its platform and when it expires (kept beside
-- NanoClaw v2's pending_questions rather than altering it).
CREATE TABLE IF NOT EXISTS question_cards (
  question_id TEXT PRIMARY KEY REFERENCES pending_questions(question_id) ON DELETE CASCADE,
  platform_message_id TEXT,
  expires_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_pending_questions_chat ON pending_questions(channel_type, platform_id);
