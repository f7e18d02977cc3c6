-- Kit assignment is bounded in time (issue 11). A kit is lent to one patient over an interval
-- [starts_at, ends_at), ends_at NULL while it is still lent; ingest puts each reading on the patient
-- whose interval covers its effective time (ingest.classify), so a kit handed from A to B while A's
-- readings are still queued in the box never puts them on B. The kit's stock state between patients
-- is `gateways.kit_state` (care.kit_states: in_stock -> assigned -> returned -> cleaned -> in_stock).
--
-- `gateways.patient_id` stays: it is the kit's current holder, read by the overview, the engine's
-- technical rules and the kit commands, and written only by care.kit_assignments (which opens and
-- closes the assignment in the same statement's transaction). The CHECK below keeps the two in step.

CREATE TABLE kit_assignments (
    id          bigserial PRIMARY KEY,
    gateway_id  text NOT NULL REFERENCES gateways(id),
    patient_id  uuid NOT NULL REFERENCES patients(id),
    ward_id     text NOT NULL REFERENCES wards(id),  -- the patient's ward when the kit was lent
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz,  -- NULL: lent now
    assigned_by integer REFERENCES staff_users(id),  -- NULL: an operator's enrolment or the backfill
    ended_by    integer REFERENCES staff_users(id),
    end_reason  text CHECK (end_reason IN ('taken_back', 'discharged')),
    CHECK (ends_at IS NULL OR ends_at > starts_at),
    CHECK ((ends_at IS NULL) = (end_reason IS NULL)),
    CHECK (ends_at IS NOT NULL OR ended_by IS NULL)
);
-- One open assignment per kit and per patient (a patient holds one kit, as gateways_one_per_patient).
CREATE UNIQUE INDEX kit_assignments_open_kit ON kit_assignments (gateway_id) WHERE ends_at IS NULL;
CREATE UNIQUE INDEX kit_assignments_open_patient ON kit_assignments (patient_id) WHERE ends_at IS NULL;
CREATE INDEX kit_assignments_kit_time ON kit_assignments (gateway_id, starts_at DESC);
CREATE INDEX kit_assignments_patient ON kit_assignments (patient_id, starts_at DESC);

-- A kit never has two assignments that overlap in time: an exclusion constraint where btree_gist can
-- be had (a trusted extension since PostgreSQL 13), else a trigger that checks under a lock on the kit.
DO $$
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS btree_gist;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'btree_gist unavailable (%): kit_assignments overlap checked by a trigger', SQLERRM;
    END;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'btree_gist') THEN
        ALTER TABLE kit_assignments ADD CONSTRAINT kit_assignments_no_overlap
            EXCLUDE USING gist (gateway_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&);
    ELSE
        CREATE FUNCTION kit_assignments_no_overlap() RETURNS trigger LANGUAGE plpgsql AS $f$
        BEGIN
            PERFORM 1 FROM gateways WHERE id = NEW.gateway_id FOR UPDATE;
            IF EXISTS (
                SELECT 1 FROM kit_assignments a WHERE a.gateway_id = NEW.gateway_id AND a.id <> NEW.id
                  AND tstzrange(a.starts_at, a.ends_at, '[)') && tstzrange(NEW.starts_at, NEW.ends_at, '[)')
            ) THEN
                RAISE EXCEPTION USING ERRCODE = 'exclusion_violation',
                    MESSAGE = 'conflicting key value violates exclusion constraint "kit_assignments_no_overlap"';
            END IF;
            RETURN NEW;
        END
        $f$;
        CREATE TRIGGER kit_assignments_no_overlap BEFORE INSERT OR UPDATE ON kit_assignments
            FOR EACH ROW EXECUTE FUNCTION kit_assignments_no_overlap();
    END IF;
END
$$;

-- An ended assignment is history: ingest's directory caches ended intervals for good
-- (ingest/directory.py), so their kit, patient and times never change again. An open one keeps its
-- kit and patient; its start may only move earlier (a lend recorded late): a cached interval then
-- covers less than the truth, which only makes ingest read the kit again.
CREATE FUNCTION kit_assignments_history_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.ends_at IS NOT NULL THEN
        RAISE EXCEPTION 'an ended kit assignment is history and is not changed (id %)', OLD.id;
    END IF;
    IF NEW.gateway_id <> OLD.gateway_id OR NEW.patient_id <> OLD.patient_id
       OR NEW.starts_at > OLD.starts_at THEN
        RAISE EXCEPTION 'a kit assignment keeps its kit and patient, and starts no later (id %)', OLD.id;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER kit_assignments_history_fixed BEFORE UPDATE ON kit_assignments
    FOR EACH ROW EXECUTE FUNCTION kit_assignments_history_fixed();
CREATE TRIGGER kit_assignments_no_delete BEFORE DELETE ON kit_assignments
    FOR EACH ROW EXECUTE FUNCTION kit_assignments_history_fixed();

-- The kit's stock state and since when; `assigned` exactly when it has a holder.
ALTER TABLE gateways
    ADD COLUMN kit_state text NOT NULL DEFAULT 'in_stock'
        CHECK (kit_state IN ('in_stock', 'assigned', 'returned', 'cleaned')),
    ADD COLUMN kit_state_at timestamptz NOT NULL DEFAULT now();
UPDATE gateways SET kit_state = 'assigned' WHERE patient_id IS NOT NULL;
-- A kit that was lent before and has no holder came back from a discharge: returned, not yet cleaned
-- (nobody recorded its cleaning). A kit never lent stays in stock.
UPDATE gateways g SET kit_state = 'returned' WHERE patient_id IS NULL
    AND EXISTS (SELECT 1 FROM access_log l WHERE l.action = 'enrol_patient' AND l.context = 'gateway:' || g.id);
ALTER TABLE gateways ADD CONSTRAINT gateways_assigned_has_holder
    CHECK ((kit_state = 'assigned') = (patient_id IS NOT NULL));

-- Backfill: every kit lent now, from the patient's enrolment.
INSERT INTO kit_assignments (gateway_id, patient_id, ward_id, starts_at)
SELECT g.id, p.id, p.ward_id, p.enrolled_at FROM gateways g JOIN patients p ON p.id = g.patient_id
WHERE p.discharged_at IS NULL;
-- And the discharged patients whose kit the access log names (the discharge's "gateway:<id>" since
-- migration 0014's outcome, the enrolment's otherwise), oldest first, skipping any that would overlap.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT DISTINCT ON (p.id) p.id AS patient_id, p.ward_id, p.enrolled_at, p.discharged_at,
               substring(l.context FROM 'gateway:([a-z0-9-]+)') AS gateway_id
        FROM patients p JOIN access_log l ON l.patient_id = p.id
        WHERE p.discharged_at IS NOT NULL AND p.discharged_at > p.enrolled_at
          AND l.action IN ('discharge_patient', 'enrol_patient') AND l.context ~ 'gateway:[a-z0-9-]+'
        ORDER BY p.id, (l.action = 'discharge_patient') DESC, l.id DESC
    LOOP
        IF EXISTS (SELECT 1 FROM gateways WHERE id = r.gateway_id) AND NOT EXISTS (
            SELECT 1 FROM kit_assignments a WHERE a.gateway_id = r.gateway_id
              AND tstzrange(a.starts_at, a.ends_at, '[)') && tstzrange(r.enrolled_at, r.discharged_at, '[)')
        ) THEN
            INSERT INTO kit_assignments (gateway_id, patient_id, ward_id, starts_at, ends_at, end_reason)
            VALUES (r.gateway_id, r.patient_id, r.ward_id, r.enrolled_at, r.discharged_at, 'discharged');
        END IF;
    END LOOP;
END
$$;

SELECT hemma_grant_to_services(ARRAY['kit_assignments']);
