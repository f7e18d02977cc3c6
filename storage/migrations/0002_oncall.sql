-- Escalation of unacknowledged high alerts to an on-call rota (issue: escalation policy per ward).

-- Who is on call for a ward, at which step of the escalation chain, and when.
-- Levels: 1 = jourläkare, 2 = bakjour, 3 = verksamhetschef (medical lead).
CREATE TABLE oncall_shifts (
    id              bigserial PRIMARY KEY,
    ward_id         text NOT NULL REFERENCES wards(id),
    staff_user_id   integer NOT NULL REFERENCES staff_users(id),
    level           smallint NOT NULL CHECK (level BETWEEN 1 AND 3),
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX oncall_shifts_lookup ON oncall_shifts (ward_id, level, starts_at, ends_at);

-- Where a member of staff is reached when an alert escalates to them. These addresses leave the
-- hospital network with every notification, so they hold no patient data, only staff contacts.
CREATE TABLE staff_contacts (
    staff_user_id   integer PRIMARY KEY REFERENCES staff_users(id),
    email           text CHECK (email ~ '^[^@\s]+@[^@\s]+$'),
    -- ntfy's own rule for topic names (alerts/notify/push.py TOPIC_PATTERN)
    ntfy_topic      text CHECK (ntfy_topic ~ '^[-_A-Za-z0-9]{1,64}$'),
    webhook_url     text CHECK (webhook_url ~ '^https?://[^/\s]+'),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (num_nonnulls(email, ntfy_topic, webhook_url) >= 1)
);

-- The escalator scans open high alerts every few seconds.
CREATE INDEX alerts_open_high ON alerts (opened_at) WHERE state = 'open' AND priority = 'high';

-- A delivery attempt that failed is audited under its own kind, so a failed page stands out in the trail.
ALTER TABLE alert_events DROP CONSTRAINT alert_events_kind_check;
ALTER TABLE alert_events ADD CONSTRAINT alert_events_kind_check
    CHECK (kind IN ('opened', 'escalated', 'reprioritised', 'acknowledged', 'resolved', 'notified',
                    'notification_failed'));
