-- Who owns a question card and who may answer it (DESIGN §3: ids an agent picks live in its
-- session's namespace). From here on pending_questions.question_id is always made by the host;
-- the asking agent's own id rides beside it (and comes back in the answer), the kind says
-- whether the card decides an approval, and for_user names the one person it was sent to.
-- Kept beside NanoClaw v2's pending_questions, which is not altered.
ALTER TABLE question_cards ADD COLUMN agent_question_id TEXT;
ALTER TABLE question_cards ADD COLUMN kind TEXT NOT NULL DEFAULT 'question';
ALTER TABLE question_cards ADD COLUMN for_user TEXT;
-- Cards recorded earlier: an id that names an approval decides that approval (admins only).
UPDATE question_cards SET kind = 'approval'
  WHERE question_id IN (SELECT approval_id FROM pending_approvals);
