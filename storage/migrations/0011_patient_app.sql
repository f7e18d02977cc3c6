-- The patient's way in (issue 10): the patient app's devices and relatives, questionnaires and their
-- answers, messages, self-care instructions, and contact requests from the app. docs/architecture.md,
-- "The patient realm", says how they fit together.

-- One enrolled browser (the tablet lent with the kit, the patient's phone, a relative's phone). Staff
-- create the row with a one-time link (shown as a QR code); opening it on the device and, when staff
-- set one, typing the short PIN, turns it into a long-lived device token held only by that browser.
-- The database keeps digests only. Revoking ends the token at once. A relative's row records the
-- patient's consent: who recorded it and how it was given.
CREATE TABLE patient_devices (
    id                   bigserial PRIMARY KEY,
    patient_id           uuid NOT NULL REFERENCES patients(id),
    holder               text NOT NULL CHECK (holder IN ('patient', 'relative')),
    label                text NOT NULL CHECK (char_length(label) BETWEEN 1 AND 80),
    consent_note         text CHECK (char_length(consent_note) BETWEEN 1 AND 300),
    link_sha256          bytea UNIQUE,
    link_expires_at      timestamptz,
    pin_hash             text,
    pin_failures         integer NOT NULL DEFAULT 0 CHECK (pin_failures >= 0),
    token_sha256         bytea UNIQUE,
    enrolled_at          timestamptz,
    last_seen_at         timestamptz,
    created_by           integer NOT NULL REFERENCES staff_users(id),
    created_at           timestamptz NOT NULL DEFAULT now(),
    revoked_at           timestamptz,
    revoked_by           integer REFERENCES staff_users(id),
    revoked_reason       text CHECK (revoked_reason IN ('staff', 'pin_failures', 'discharged')),
    CHECK (holder = 'patient' OR consent_note IS NOT NULL),
    CHECK ((token_sha256 IS NULL) = (enrolled_at IS NULL)),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);
CREATE INDEX patient_devices_patient ON patient_devices (patient_id);

-- Reads and actions in the patient realm are logged like staff's: the row names the device (and so
-- the patient or the relative) instead of a staff account.
ALTER TABLE access_log ADD COLUMN patient_device_id bigint REFERENCES patient_devices(id);

-- Contact requests from the app: a reason the patient chose and, optionally, a line they wrote.
-- `event_id` is then the form's own key, so a double tap or a resent form makes one request. Taking
-- one says when the nurse will call ("ringer dig inom 30 minuter").
ALTER TABLE contact_requests
    DROP CONSTRAINT contact_requests_source_check,
    DROP CONSTRAINT contact_requests_reason_check,
    ALTER COLUMN gateway_id DROP NOT NULL,
    ADD COLUMN patient_device_id bigint REFERENCES patient_devices(id),
    ADD COLUMN message text CHECK (char_length(message) BETWEEN 1 AND 500),
    ADD COLUMN call_within_minutes integer CHECK (call_within_minutes BETWEEN 1 AND 1440);
ALTER TABLE contact_requests
    ADD CONSTRAINT contact_requests_source_check CHECK (source IN ('button', 'app')),
    ADD CONSTRAINT contact_requests_reason_check CHECK (
        reason IN ('contact_request', 'feeling_worse', 'treatment_question', 'technical', 'other')),
    ADD CONSTRAINT contact_requests_origin_check CHECK (
        (source = 'button' AND gateway_id IS NOT NULL) OR (source = 'app' AND patient_device_id IS NOT NULL));

-- Which questionnaires a patient answers, and at which local times of day (care.questionnaires).
CREATE TABLE questionnaire_schedules (
    patient_id      uuid NOT NULL REFERENCES patients(id),
    questionnaire   text NOT NULL CHECK (questionnaire ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    times           time[] NOT NULL CHECK (cardinality(times) BETWEEN 1 AND 6),
    set_by          integer REFERENCES staff_users(id),
    set_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, questionnaire)
);

-- An answered questionnaire, in the shape of a FHIR QuestionnaireResponse (`response`), checked
-- against its questionnaire's version before it is stored. `response_id` is the form's key: a resent
-- answer is stored once. `score` and `flags` are what care.questionnaires computed from it.
CREATE TABLE questionnaire_responses (
    id                    bigserial PRIMARY KEY,
    response_id           uuid NOT NULL UNIQUE,
    patient_id            uuid NOT NULL REFERENCES patients(id),
    questionnaire         text NOT NULL,
    questionnaire_version text NOT NULL,
    authored_at           timestamptz NOT NULL DEFAULT now(),
    source                text NOT NULL CHECK (source IN ('app', 'simulator', 'staff')),
    patient_device_id     bigint REFERENCES patient_devices(id),
    staff_user_id         integer REFERENCES staff_users(id),
    response              jsonb NOT NULL,
    score                 integer NOT NULL,
    flags                 text[] NOT NULL DEFAULT '{}',
    CHECK (source <> 'app' OR patient_device_id IS NOT NULL),
    CHECK (source <> 'staff' OR staff_user_id IS NOT NULL)
);
CREATE INDEX questionnaire_responses_patient ON questionnaire_responses (patient_id, authored_at DESC);

-- Two-way messages between the patient (or a relative) and the team. `read_at` is when the other
-- side first read it (staff: a clinician of the ward opened the thread; patient: the app showed it).
CREATE TABLE patient_messages (
    id                bigserial PRIMARY KEY,
    message_id        uuid NOT NULL UNIQUE,
    patient_id        uuid NOT NULL REFERENCES patients(id),
    sender            text NOT NULL CHECK (sender IN ('patient', 'relative', 'staff')),
    patient_device_id bigint REFERENCES patient_devices(id),
    staff_user_id     integer REFERENCES staff_users(id),
    body              text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 1000),
    sent_at           timestamptz NOT NULL DEFAULT now(),
    read_at           timestamptz,
    read_by           integer REFERENCES staff_users(id),
    CHECK ((sender = 'staff') = (staff_user_id IS NOT NULL)),
    CHECK ((sender = 'staff') = (patient_device_id IS NULL))
);
CREATE INDEX patient_messages_patient ON patient_messages (patient_id, sent_at DESC);
CREATE INDEX patient_messages_unread_by_staff ON patient_messages (patient_id)
    WHERE sender <> 'staff' AND read_at IS NULL;

-- The agreed self-care action for one of the patient's alert rules ("Om vikten ökat mer än 2 kg på 3
-- dagar: ta en extra vätskedrivande tablett och ring oss"). The app shows it while an alert of that
-- rule is live; `self_care_notices` records, per alert, the text shown and when the patient saw it.
CREATE TABLE self_care_instructions (
    patient_id  uuid NOT NULL REFERENCES patients(id),
    rule        text NOT NULL CHECK (char_length(rule) BETWEEN 1 AND 80),
    text        text NOT NULL CHECK (char_length(text) BETWEEN 1 AND 500),
    set_by      integer NOT NULL REFERENCES staff_users(id),
    set_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, rule)
);
CREATE TABLE self_care_notices (
    alert_id          bigint PRIMARY KEY REFERENCES alerts(id),
    patient_id        uuid NOT NULL REFERENCES patients(id),
    text              text NOT NULL,
    shown_at          timestamptz NOT NULL DEFAULT now(),
    patient_device_id bigint REFERENCES patient_devices(id)
);

-- One grant for every later migration: the services' role (whoever holds UPDATE on `gateways`, as
-- 0007 and 0009 found it) gets SELECT, INSERT and UPDATE on the named tables and their sequences.
CREATE FUNCTION hemma_grant_to_services(tables text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    target record;
    t text;
    seq text;
BEGIN
    FOR target IN
        SELECT DISTINCT g.grantee::regrole::text AS grantee
        FROM pg_class c, aclexplode(c.relacl) g
        WHERE c.oid = 'gateways'::regclass AND g.grantee <> 0 AND g.grantee <> c.relowner
          AND g.privilege_type = 'UPDATE'
    LOOP
        FOREACH t IN ARRAY tables LOOP
            EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO %s', t, target.grantee);
            FOR seq IN
                SELECT s.relname FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
                WHERE d.refobjid = t::regclass AND s.relkind = 'S'
            LOOP
                EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %I TO %s', seq, target.grantee);
            END LOOP;
        END LOOP;
    END LOOP;
END
$$;

SELECT hemma_grant_to_services(ARRAY['patient_devices', 'questionnaire_schedules',
    'questionnaire_responses', 'patient_messages', 'self_care_instructions', 'self_care_notices']);
