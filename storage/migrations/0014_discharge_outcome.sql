-- Discharge with an outcome (issue 11): how the home care episode ended, an optional note, and who
-- discharged the patient. Set together by care.enrolment.discharge, in the transaction that stops
-- the patient's alerts and frees the kit.
--
-- A CHECK that every discharged patient has an outcome is not possible: patients discharged before
-- this migration (`hemma patient discharge --gateway`, no outcome asked) keep NULL here, and a
-- program seeding a database (tests, `hemma demo`) names no staff member. So the columns allow NULL;
-- the command requires the outcome, and the record shows "–" for an old discharge.
ALTER TABLE patients
    ADD COLUMN discharge_outcome text
        CHECK (discharge_outcome IN ('stayed_home', 'transferred_to_hospital', 'died', 'other')),
    ADD COLUMN discharge_note text CHECK (char_length(discharge_note) <= 500),
    ADD COLUMN discharged_by integer REFERENCES staff_users(id),
    -- Only a discharged patient has an outcome, a note or a discharger.
    ADD CONSTRAINT patients_discharge_details_check CHECK (
        discharged_at IS NOT NULL
        OR (discharge_outcome IS NULL AND discharge_note IS NULL AND discharged_by IS NULL)
    );
