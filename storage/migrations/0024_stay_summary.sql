-- The end-of-stay summary (issue 12, care.stay_summary) needs "the plan at discharge", but a discharge
-- deletes the monitoring plan and the questionnaire schedules (care.enrolment.discharge: no missing-data
-- alarms, no reminders after the episode). These tables keep every version of both, each with the time
-- it was in force, written by triggers so that every writer (the plan form, a level's follow-up, an
-- admission's pathway, the discharge) is recorded without knowing of them.
--
-- A row is in force from `valid_from` until `valid_to` (NULL: still in force). The plan at a moment T
-- is the rows with valid_from <= T and (valid_to IS NULL OR valid_to >= T): a discharge sets valid_to
-- to its own transaction's now(), which is also patients.discharged_at.
CREATE TABLE monitoring_plan_history (
    id             bigserial PRIMARY KEY,
    patient_id     uuid NOT NULL REFERENCES patients(id),
    vital          text NOT NULL,
    every_minutes  integer NOT NULL,
    source         text NOT NULL,
    set_by         integer REFERENCES staff_users(id),
    valid_from     timestamptz NOT NULL,
    valid_to       timestamptz,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE INDEX monitoring_plan_history_patient ON monitoring_plan_history (patient_id, valid_from);

CREATE TABLE questionnaire_schedule_history (
    id             bigserial PRIMARY KEY,
    patient_id     uuid NOT NULL REFERENCES patients(id),
    questionnaire  text NOT NULL,
    times          time[] NOT NULL,
    set_by         integer REFERENCES staff_users(id),
    valid_from     timestamptz NOT NULL,
    valid_to       timestamptz,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE INDEX questionnaire_schedule_history_patient ON questionnaire_schedule_history (patient_id, valid_from);

CREATE FUNCTION hemma_monitoring_plan_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE monitoring_plan_history SET valid_to = now()
        WHERE patient_id = OLD.patient_id AND vital = OLD.vital AND valid_to IS NULL;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO monitoring_plan_history (patient_id, vital, every_minutes, source, set_by, valid_from)
        VALUES (NEW.patient_id, NEW.vital, NEW.every_minutes, NEW.source, NEW.set_by, now());
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER monitoring_plans_history AFTER INSERT OR UPDATE OR DELETE ON monitoring_plans
    FOR EACH ROW EXECUTE FUNCTION hemma_monitoring_plan_history();

CREATE FUNCTION hemma_questionnaire_schedule_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE questionnaire_schedule_history SET valid_to = now()
        WHERE patient_id = OLD.patient_id AND questionnaire = OLD.questionnaire AND valid_to IS NULL;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO questionnaire_schedule_history (patient_id, questionnaire, times, set_by, valid_from)
        VALUES (NEW.patient_id, NEW.questionnaire, NEW.times, NEW.set_by, now());
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER questionnaire_schedules_history AFTER INSERT OR UPDATE OR DELETE ON questionnaire_schedules
    FOR EACH ROW EXECUTE FUNCTION hemma_questionnaire_schedule_history();

-- What is in force now starts the history (patients discharged before this migration have none:
-- their summary says the plan at discharge is not known).
INSERT INTO monitoring_plan_history (patient_id, vital, every_minutes, source, set_by, valid_from)
SELECT patient_id, vital, every_minutes, source, set_by, set_at FROM monitoring_plans;
INSERT INTO questionnaire_schedule_history (patient_id, questionnaire, times, set_by, valid_from)
SELECT patient_id, questionnaire, times, set_by, set_at FROM questionnaire_schedules;

SELECT hemma_grant_to_services(ARRAY['monitoring_plan_history', 'questionnaire_schedule_history']);
