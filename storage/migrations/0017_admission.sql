-- Admission on the dashboard (issue 11, "Admit, hand over the kit"; care.admission, care.inclusion).
--
-- 1. A monitoring plan row says where its frequency came from: 'level' rows were laid down by an
--    admission's pathway template and follow the patient's care level (care.care_levels.set_level
--    rewrites their interval); 'clinician' rows were set by hand (`hemma plan set`, the record's plan
--    form) and a change of level leaves them alone. Every row before this migration was set by hand.
ALTER TABLE monitoring_plans
    ADD COLUMN source text NOT NULL DEFAULT 'clinician' CHECK (source IN ('clinician', 'level'));

-- 2. The ward's inclusion criteria: the checklist a nurse or physician confirms item by item before
--    admitting a patient. Ordered by `position`; physicians replace the list as a whole
--    (care.inclusion.set_criteria), so an admission keeps its own copy of the words it confirmed.
CREATE TABLE ward_inclusion_criteria (
    ward_id   text NOT NULL REFERENCES wards(id),
    position  smallint NOT NULL CHECK (position BETWEEN 1 AND 20),
    item      text NOT NULL CHECK (char_length(item) BETWEEN 3 AND 200),
    set_by    integer REFERENCES staff_users(id),  -- NULL: the defaults below
    set_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ward_id, position)
);

-- Every ward starts with the criteria Swedish hospital-at-home units commonly use (consent, a
-- physician's judgement of stability, the team's area, the equipment, a phone reachable day and night).
CREATE FUNCTION hemma_default_inclusion_criteria() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ward_inclusion_criteria (ward_id, position, item)
    SELECT NEW.id, d.position, d.item FROM (VALUES
        (1, 'Patienten samtycker till vård i hemmet'),
        (2, 'Stabil nog för vård i hemmet enligt läkarbedömning'),
        (3, 'Bor inom teamets upptagningsområde'),
        (4, 'Kan hantera mätutrustningen själv eller med hjälp'),
        (5, 'Telefon nås dygnet runt')
    ) AS d(position, item)
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END $$;
CREATE TRIGGER wards_default_inclusion_criteria AFTER INSERT ON wards
    FOR EACH ROW EXECUTE FUNCTION hemma_default_inclusion_criteria();
-- The wards that exist already get the defaults too (the trigger fires for new ones only).
INSERT INTO ward_inclusion_criteria (ward_id, position, item)
SELECT w.id, d.position, d.item FROM wards w CROSS JOIN (VALUES
    (1, 'Patienten samtycker till vård i hemmet'),
    (2, 'Stabil nog för vård i hemmet enligt läkarbedömning'),
    (3, 'Bor inom teamets upptagningsområde'),
    (4, 'Kan hantera mätutrustningen själv eller med hjälp'),
    (5, 'Telefon nås dygnet runt')
) AS d(position, item)
ON CONFLICT DO NOTHING;

-- 3. The admission: who admitted the patient on which pathway, the criteria confirmed (their words as
--    the ward had them then) and, when an item was not confirmed, the physician's override and its
--    reason. One per patient episode (a patient row is one episode, care.enrolment). `provisional_level`
--    is the pathway's suggested level when a nurse admitted: the plan follows it until a physician sets
--    the level (care_levels holds only physicians' decisions).
CREATE TABLE admissions (
    patient_id         uuid PRIMARY KEY REFERENCES patients(id),
    ward_id            text NOT NULL REFERENCES wards(id),
    pathway            text NOT NULL CHECK (pathway ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    provisional_level  text CHECK (provisional_level IN ('red', 'yellow', 'green')),
    admitted_by        integer NOT NULL REFERENCES staff_users(id),
    admitted_at        timestamptz NOT NULL DEFAULT now(),
    confirmed          text[] NOT NULL,
    not_confirmed      text[] NOT NULL DEFAULT '{}',
    override_reason    text CHECK (char_length(override_reason) BETWEEN 3 AND 300),
    -- An unconfirmed criterion is admitted over only with a reason.
    CONSTRAINT admissions_override_check CHECK (cardinality(not_confirmed) = 0 OR override_reason IS NOT NULL)
);
CREATE INDEX admissions_ward ON admissions (ward_id, admitted_at DESC);

SELECT hemma_grant_to_services(ARRAY['ward_inclusion_criteria', 'admissions']);
