-- Hemma initial schema. Applied once, in a transaction, by hemma.db.migrate().

CREATE TABLE wards (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name        text NOT NULL,
    -- minutes an open high-priority alert may stay unacknowledged before escalation
    escalate_after_minutes integer NOT NULL DEFAULT 5 CHECK (escalate_after_minutes > 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE patients (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    ward_id         text NOT NULL REFERENCES wards(id),
    display_name    text NOT NULL,
    -- Swedish personnummer/samordningsnummer; never leaves the database or dashboard
    personal_number text UNIQUE,
    birth_year      integer CHECK (birth_year BETWEEN 1890 AND 2100),
    care_reason     text,
    enrolled_at     timestamptz NOT NULL DEFAULT now(),
    discharged_at   timestamptz
);
CREATE INDEX patients_ward ON patients (ward_id) WHERE discharged_at IS NULL;

-- A home kit is one gateway and its devices, lent to one patient at a time.
CREATE TABLE gateways (
    id              text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{2,62}$'),
    patient_id      uuid REFERENCES patients(id),
    registered_at   timestamptz NOT NULL DEFAULT now(),
    status          text NOT NULL DEFAULT 'unknown' CHECK (status IN ('unknown', 'online', 'offline')),
    status_at       timestamptz,
    last_message_at timestamptz,
    software        text
);
CREATE UNIQUE INDEX gateways_one_per_patient ON gateways (patient_id) WHERE patient_id IS NOT NULL;

CREATE TABLE devices (
    gateway_id      text NOT NULL REFERENCES gateways(id),
    device_id       text NOT NULL,
    characteristics text[] NOT NULL DEFAULT '{}',
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, device_id)
);

-- One row per observation (one measurement from a BP cuff gives systolic, diastolic, MAP, pulse).
-- (measurement_id, vital, time) is the idempotency key: a redelivered message adds nothing.
CREATE TABLE observations (
    time            timestamptz NOT NULL,
    patient_id      uuid NOT NULL,
    vital           text NOT NULL,
    value           double precision NOT NULL,
    unit            text NOT NULL,
    quality         text[] NOT NULL DEFAULT '{}',
    measurement_id  uuid NOT NULL,
    gateway_id      text NOT NULL,
    device_id       text NOT NULL,
    characteristic  text NOT NULL,
    received_at     timestamptz NOT NULL,
    stored_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX observations_identity ON observations (measurement_id, vital, time);
CREATE INDEX observations_patient_vital_time ON observations (patient_id, vital, time DESC);

-- The newest value per patient and vital, maintained by ingest so the ward overview
-- never scans the observations table.
CREATE TABLE latest_vitals (
    patient_id  uuid NOT NULL REFERENCES patients(id),
    vital       text NOT NULL,
    time        timestamptz NOT NULL,
    value       double precision NOT NULL,
    unit        text NOT NULL,
    quality     text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (patient_id, vital)
);

CREATE TABLE staff_users (
    id              serial PRIMARY KEY,
    username        text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9._-]{2,64}$'),
    display_name    text NOT NULL,
    role            text NOT NULL CHECK (role IN ('nurse', 'physician', 'admin')),
    password_hash   text NOT NULL,
    disabled        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE staff_ward_access (
    staff_user_id   integer NOT NULL REFERENCES staff_users(id),
    ward_id         text NOT NULL REFERENCES wards(id),
    PRIMARY KEY (staff_user_id, ward_id)
);

CREATE TABLE alerts (
    id              bigserial PRIMARY KEY,
    patient_id      uuid NOT NULL REFERENCES patients(id),
    ward_id         text NOT NULL REFERENCES wards(id),
    rule            text NOT NULL,
    vital           text,
    priority        text NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
    state           text NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    message         text NOT NULL,
    value           double precision,
    threshold       double precision,
    observed_at     timestamptz NOT NULL,
    opened_at       timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    acknowledged_by integer REFERENCES staff_users(id),
    resolved_at     timestamptz
);
-- Never two live alerts for the same (patient, rule).
CREATE UNIQUE INDEX alerts_one_live_per_key ON alerts (patient_id, rule) WHERE state <> 'resolved';
CREATE INDEX alerts_ward_live ON alerts (ward_id) WHERE state <> 'resolved';

-- The audit trail: every transition of every alert.
CREATE TABLE alert_events (
    id          bigserial PRIMARY KEY,
    alert_id    bigint NOT NULL REFERENCES alerts(id),
    at          timestamptz NOT NULL DEFAULT now(),
    kind        text NOT NULL CHECK (kind IN ('opened', 'escalated', 'reprioritised', 'acknowledged', 'resolved',
                                               'notified')),
    actor       text NOT NULL,  -- 'engine' or 'staff:<username>'
    priority    text,
    note        text,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, at);

-- Everything ingest refused, with the reason. Nothing a gateway sends is dropped silently.
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    gateway_id  text,
    reason      text NOT NULL,
    payload     bytea NOT NULL,
    payload_size integer NOT NULL,
    truncated   boolean NOT NULL DEFAULT false
);
CREATE INDEX dead_letters_received ON dead_letters (received_at DESC);

-- Patientdatalagen (2008:355) 4 kap.: every staff read of a patient record is logged.
CREATE TABLE access_log (
    id              bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    staff_user_id   integer REFERENCES staff_users(id),
    username        text NOT NULL,
    patient_id      uuid REFERENCES patients(id),
    action          text NOT NULL,
    context         text,
    client_address  text
);
CREATE INDEX access_log_patient ON access_log (patient_id, at DESC);
CREATE INDEX access_log_user ON access_log (username, at DESC);
