-- "Kontakta mig" (issue 10): the patient presses the box's button; the gateway sends a KitEvent
-- (docs/protocol.md, "KitEventBatch") through its store-and-forward queue, and ingest stores one row
-- per event. The row is the request's whole lifecycle: open -> taken by a named clinician -> closed
-- with the answer given. `event_id` is the gateway's key for the press, so a message sent again (no
-- receipt arrived) never makes a second request.
CREATE TABLE contact_requests (
    id            bigserial PRIMARY KEY,
    patient_id    uuid NOT NULL REFERENCES patients(id),
    gateway_id    text NOT NULL REFERENCES gateways(id),
    event_id      uuid NOT NULL UNIQUE,
    source        text NOT NULL CHECK (source IN ('button')),
    reason        text NOT NULL CHECK (reason IN ('contact_request')),
    -- The gateway's clock when the patient pressed (not judged: a Pi's clock may be unset), and
    -- ingest's own time of receipt, which orders requests and starts the ward's escalation time.
    requested_at  timestamptz NOT NULL,
    received_at   timestamptz NOT NULL,
    state         text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'taken', 'closed')),
    taken_by      integer REFERENCES staff_users(id),
    taken_at      timestamptz,
    closed_by     integer REFERENCES staff_users(id),
    closed_at     timestamptz,
    close_note    text CHECK (char_length(close_note) <= 500),
    CHECK ((taken_by IS NULL) = (taken_at IS NULL)),
    CHECK ((closed_by IS NULL) = (closed_at IS NULL)),
    CHECK ((state = 'closed') = (closed_at IS NOT NULL)),
    CHECK (state <> 'taken' OR taken_at IS NOT NULL)
);
CREATE INDEX contact_requests_not_closed ON contact_requests (patient_id) WHERE state <> 'closed';
CREATE INDEX contact_requests_patient ON contact_requests (patient_id, received_at DESC);

-- The services' role is granted new tables as in 0009.
DO $$
DECLARE
    target record;
BEGIN
    FOR target IN
        SELECT DISTINCT g.grantee::regrole::text AS grantee
        FROM pg_class c, aclexplode(c.relacl) g
        WHERE c.oid = 'gateways'::regclass AND g.grantee <> 0 AND g.grantee <> c.relowner
          AND g.privilege_type = 'UPDATE'
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON contact_requests TO %s', target.grantee);
        EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE contact_requests_id_seq TO %s', target.grantee);
    END LOOP;
END
$$;
