-- Personal alert limits: a physician replaces a ward default limit for one patient, with who,
-- when and why, optionally until a given time. Rows are never updated in place except to revoke
-- them, so the table is its own audit trail.
CREATE TABLE personal_thresholds (
    id          bigserial PRIMARY KEY,
    patient_id  uuid NOT NULL REFERENCES patients(id),
    rule        text NOT NULL,           -- a threshold rule key, e.g. 'spo2_low'
    priority    text NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
    limit_value double precision NOT NULL,
    reason      text NOT NULL CHECK (length(btrim(reason)) >= 3),
    set_by      integer NOT NULL REFERENCES staff_users(id),
    set_at      timestamptz NOT NULL DEFAULT now(),
    valid_until timestamptz,
    revoked_at  timestamptz,
    revoked_by  integer REFERENCES staff_users(id),
    CHECK (valid_until IS NULL OR valid_until > set_at)
);
-- At most one limit in force per patient, rule and priority.
CREATE UNIQUE INDEX personal_thresholds_in_force ON personal_thresholds (patient_id, rule, priority)
    WHERE revoked_at IS NULL;
