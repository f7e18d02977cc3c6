-- The full alert engine (issue 4): pending and snoozed alerts, technical alarms, manual
-- observations (respiration, consciousness, oxygen), SpO2 scale orders, monitoring plans and the
-- device facts the technical rules need.

-- Lifecycle: a rule's request may wait in 'pending' until its hold time has passed (it is then
-- opened, or withdrawn if the condition cleared first). A snoozed alert is acknowledged with an
-- end: when the snooze runs out and the condition is still there, the alert opens again.
ALTER TABLE alerts DROP CONSTRAINT alerts_state_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_state_check
    CHECK (state IN ('pending', 'open', 'acknowledged', 'resolved'));
ALTER TABLE alerts
    ADD COLUMN condition text NOT NULL DEFAULT 'physiological'
        CHECK (condition IN ('physiological', 'technical')),
    ADD COLUMN pending_until timestamptz,
    ADD COLUMN snoozed_until timestamptz,
    ADD COLUMN snoozed_by integer REFERENCES staff_users(id),
    ADD COLUMN resolved_by integer REFERENCES staff_users(id),
    ADD CONSTRAINT alerts_pending_has_end CHECK ((state = 'pending') = (pending_until IS NOT NULL));
CREATE INDEX alerts_pending ON alerts (pending_until) WHERE state = 'pending';
CREATE INDEX alerts_snoozed ON alerts (snoozed_until) WHERE snoozed_until IS NOT NULL;

ALTER TABLE alert_events DROP CONSTRAINT alert_events_kind_check;
ALTER TABLE alert_events ADD CONSTRAINT alert_events_kind_check
    CHECK (kind IN ('pending', 'opened', 'escalated', 'reprioritised', 'acknowledged', 'snoozed',
                    'snooze_expired', 'resolved', 'withdrawn', 'notified', 'notification_failed'));

-- Observations a person makes: a nurse on a visit, or the patient answering the kit's questions.
-- Respiration rate is also written to `observations` (so it is charted and thresholded like a
-- device's); consciousness (ACVPU, C = new confusion) and air/oxygen live only here.
-- `evaluated_at` is set by the engine once it has scored the row, so a row entered while ingest
-- was down is still evaluated when it comes back.
CREATE TABLE manual_observations (
    id               bigserial PRIMARY KEY,
    patient_id       uuid NOT NULL REFERENCES patients(id),
    time             timestamptz NOT NULL,
    respiratory_rate double precision CHECK (respiratory_rate BETWEEN 1 AND 80),
    consciousness    text CHECK (consciousness IN ('A', 'C', 'V', 'P', 'U')),
    on_oxygen        boolean,
    oxygen_l_min     double precision CHECK (oxygen_l_min > 0 AND oxygen_l_min <= 15),
    source           text NOT NULL CHECK (source IN ('nurse', 'patient')),
    entered_by       integer REFERENCES staff_users(id),
    entered_at       timestamptz NOT NULL DEFAULT now(),
    evaluated_at     timestamptz,
    CHECK (num_nonnulls(respiratory_rate, consciousness, on_oxygen) >= 1),
    CHECK (oxygen_l_min IS NULL OR on_oxygen),
    CHECK ((source = 'nurse') = (entered_by IS NOT NULL))
);
CREATE INDEX manual_observations_patient ON manual_observations (patient_id, time DESC);
CREATE INDEX manual_observations_unevaluated ON manual_observations (id) WHERE evaluated_at IS NULL;

-- A physician's order that a patient's SpO2 is scored on NEWS2 scale 2 (hypercapnic respiratory
-- failure, target 88-92 %). Revoked, never updated, so the table is its own audit trail.
CREATE TABLE spo2_scale_orders (
    id          bigserial PRIMARY KEY,
    patient_id  uuid NOT NULL REFERENCES patients(id),
    scale       smallint NOT NULL CHECK (scale IN (1, 2)),
    reason      text NOT NULL CHECK (length(btrim(reason)) >= 3),
    ordered_by  integer NOT NULL REFERENCES staff_users(id),
    ordered_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    revoked_by  integer REFERENCES staff_users(id)
);
CREATE UNIQUE INDEX spo2_scale_orders_in_force ON spo2_scale_orders (patient_id) WHERE revoked_at IS NULL;

-- The monitoring plan: which vitals a patient is to measure, and how often. A planned vital with
-- no trustworthy reading for longer than its interval (plus grace) is a technical alarm.
CREATE TABLE monitoring_plans (
    patient_id     uuid NOT NULL REFERENCES patients(id),
    vital          text NOT NULL,
    every_minutes  integer NOT NULL CHECK (every_minutes BETWEEN 5 AND 10080),
    set_by         integer REFERENCES staff_users(id),
    set_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, vital)
);

-- What the gateway last said about each device: battery level (from its periodic status) and
-- whether the device's newest reading came with an unset clock.
ALTER TABLE devices
    ADD COLUMN battery_percent smallint CHECK (battery_percent BETWEEN 0 AND 100),
    ADD COLUMN battery_at timestamptz,
    ADD COLUMN clock_not_set boolean NOT NULL DEFAULT false,
    ADD COLUMN clock_checked_at timestamptz;
