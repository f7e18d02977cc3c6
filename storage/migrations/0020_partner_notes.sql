-- A partner writes to the ward about a patient (issue 12, "Time-boxed, purpose-bound access for a
-- partner"): the municipal home-care nurse or the GP whose grant's purpose allows contact
-- (care.permissions.PARTNER_ALLOWED: 'read_contact' and 'home_visit'). The ward reads the notes in the
-- record's "Delad vård" section (dashboard.record_sharing). Never changed or deleted: what a partner
-- wrote, under which grant, stays as written (care.sharing.write_to_ward is the one writer).
CREATE TABLE partner_notes (
    id               bigserial PRIMARY KEY,
    patient_id       uuid NOT NULL REFERENCES patients(id),
    partner_grant_id bigint NOT NULL REFERENCES partner_grants(id),
    staff_user_id    integer NOT NULL REFERENCES staff_users(id),  -- the partner who wrote it
    body             text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 2000),
    written_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX partner_notes_patient ON partner_notes (patient_id, written_at DESC);
