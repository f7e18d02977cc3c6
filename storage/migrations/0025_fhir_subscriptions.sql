-- FHIR push (issue 12): a system client subscribes (FHIR R4 Subscription, rest-hook) to changes of
-- Flags, Observations or Encounters, and the escalator service (paging/fhir_push.py) posts each batch
-- of changes as a signed notification Bundle (fhir_api/notifications.py), so a journal system need
-- not poll.
--
-- Nothing lost, nothing doubled: (cursor_at, cursor_id) is the last change delivered, in the order
-- (last_updated, resource id); the delivery in flight is fixed by (pending_upto_at, pending_upto_id)
-- and keeps its id (pending_id: Bundle.id and X-Hemma-Delivery) over every retry, so a receiver can
-- drop a retry of what it already has. The cursor moves to the pending end only after a 2xx.
--
-- `secret` is the HMAC key of the notifications' X-Hemma-Signature (paging/notify/webhook.py): the
-- receiver holds the same one, so it is kept as given (as HEMMA_NOTIFY_WEBHOOK_SECRET is) and never
-- shown again (Subscription reads leave it out). `headers` are the channel's own headers
-- ("Authorization: Bearer ..."), sent with every notification and never shown either.
CREATE TABLE fhir_subscriptions (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id          text NOT NULL REFERENCES system_clients(id),
    status             text NOT NULL CHECK (status IN ('active', 'error', 'off')),
    criteria           text NOT NULL CHECK (char_length(criteria) BETWEEN 4 AND 1024),
    resource_type      text NOT NULL CHECK (resource_type IN ('Flag', 'Observation', 'Encounter')),
    endpoint           text NOT NULL CHECK (endpoint ~ '^https?://' AND char_length(endpoint) <= 2048),
    secret             text NOT NULL CHECK (char_length(secret) BETWEEN 32 AND 256),
    headers            text[] NOT NULL DEFAULT '{}',
    reason             text NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 500),
    end_at             timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    created_by         text NOT NULL,  -- system_username(client) or the operator ("(operator) user@host")
    cursor_at          timestamptz NOT NULL,
    cursor_id          text NOT NULL DEFAULT '',
    events_delivered   bigint NOT NULL DEFAULT 0 CHECK (events_delivered >= 0),
    pending_id         uuid,
    pending_since      timestamptz,
    pending_upto_at    timestamptz,
    pending_upto_id    text,
    pending_patients   uuid[] NOT NULL DEFAULT '{}',  -- already in the access log for this delivery
    failures           integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    next_attempt_at    timestamptz,
    last_error         text CHECK (char_length(last_error) <= 300),
    last_delivered_at  timestamptz,
    CHECK ((pending_id IS NULL) = (pending_upto_at IS NULL)
        AND (pending_id IS NULL) = (pending_upto_id IS NULL)
        AND (pending_id IS NULL) = (pending_since IS NULL))
);
CREATE INDEX fhir_subscriptions_client ON fhir_subscriptions (client_id);
CREATE INDEX fhir_subscriptions_active ON fhir_subscriptions (next_attempt_at) WHERE status = 'active';

-- Every attempt of every delivery: what the operator's `hemma fhir subscription list` counts, and
-- the proof that a delivery was made once.
CREATE TABLE fhir_notification_attempts (
    id               bigserial PRIMARY KEY,
    subscription_id  uuid NOT NULL REFERENCES fhir_subscriptions(id),
    delivery_id      uuid NOT NULL,
    attempt          integer NOT NULL CHECK (attempt >= 1),
    at               timestamptz NOT NULL,
    ok               boolean NOT NULL,
    events           integer NOT NULL CHECK (events >= 0),
    detail           text NOT NULL CHECK (char_length(detail) <= 300)
);
CREATE INDEX fhir_notification_attempts_subscription ON fhir_notification_attempts (subscription_id, at);

SELECT hemma_grant_to_services(ARRAY['fhir_subscriptions', 'fhir_notification_attempts']);
