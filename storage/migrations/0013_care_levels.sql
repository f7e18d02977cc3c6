-- Care levels and reviews (issue 11, "Plan by level of need"; care.care_levels).
--
-- A physician sets a patient's care level (röd/gul/grön) with a reason. Every change is a row: the
-- newest row is the level in force and the rows before it are the record's history, so why a patient
-- was moved from red to yellow is never overwritten.
CREATE TABLE care_levels (
    id          bigserial PRIMARY KEY,
    patient_id  uuid NOT NULL REFERENCES patients(id),
    level       text NOT NULL CHECK (level IN ('red', 'yellow', 'green')),
    reason      text NOT NULL CHECK (char_length(reason) BETWEEN 3 AND 300),
    set_by      integer NOT NULL REFERENCES staff_users(id),
    set_at      timestamptz NOT NULL DEFAULT now()
);
-- The level in force (the newest row) for one patient and, joined laterally, for a ward's cards.
CREATE INDEX care_levels_patient ON care_levels (patient_id, set_at DESC, id DESC);

-- "Granskad": a nurse or physician has looked the patient over, with an optional note. The newest row
-- starts the clock to the next review, whose interval the level in force decides.
CREATE TABLE patient_reviews (
    id           bigserial PRIMARY KEY,
    patient_id   uuid NOT NULL REFERENCES patients(id),
    reviewed_by  integer NOT NULL REFERENCES staff_users(id),
    reviewed_at  timestamptz NOT NULL DEFAULT now(),
    note         text CHECK (char_length(note) BETWEEN 1 AND 500)
);
CREATE INDEX patient_reviews_patient ON patient_reviews (patient_id, reviewed_at DESC, id DESC);

SELECT hemma_grant_to_services(ARRAY['care_levels', 'patient_reviews']);
