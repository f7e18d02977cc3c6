-- Questionnaire responses for the alert engine (issue 10, care.questionnaires and alerts.symptoms).
--
-- `flag_priorities` is the alert priority of each of `flags` (same order) as the questionnaire's
-- version said when the answer was stored: a later version may change a priority, never what an old
-- answer meant. `evaluated_at` is when the engine's timer judged the response, as for manual
-- observations (ingest.rule_inputs claims the unevaluated ones each tick).
ALTER TABLE questionnaire_responses
    ADD COLUMN flag_priorities text[] NOT NULL DEFAULT '{}',
    ADD COLUMN evaluated_at timestamptz,
    ADD CONSTRAINT questionnaire_responses_flag_priorities_check CHECK (
        cardinality(flag_priorities) = cardinality(flags)
        AND flag_priorities <@ ARRAY['low', 'medium', 'high']::text[]),
    ADD CONSTRAINT questionnaire_responses_score_check CHECK (score >= 0),
    ADD CONSTRAINT questionnaire_responses_questionnaire_check CHECK (
        questionnaire ~ '^[a-z0-9][a-z0-9-]{1,62}$');

-- The engine's claim of new responses, and the symptoms rule's "newest within 36 h" of every patient.
CREATE INDEX questionnaire_responses_unevaluated ON questionnaire_responses (id) WHERE evaluated_at IS NULL;
CREATE INDEX questionnaire_responses_patient_questionnaire
    ON questionnaire_responses (patient_id, questionnaire, authored_at DESC);
