-- Tamper evidence for the access log (issue 12; Patientdatalagen 4 kap. 3 §, HSLF-FS 2016:40 4 kap.
-- 9 §): a hash chain per day. Migration 0007 stops the services' role from changing the log; this
-- makes a change by anyone else (a superuser who disables the trigger, a restored altered backup)
-- detectable. care/access_log_seals.py computes and checks the chain; deploy/README.md, "Access log
-- seals", says where sealing runs.
--
-- A day is a UTC day: a seal must recompute identically forever, whatever HEMMA_SITE_TIMEZONE says
-- then, and a UTC day always has 24 hours (a Swedish day has 23 or 25 twice a year).
--
-- One seal per day, each chained to the day before (previous_day, contiguous, one genesis), so a
-- missing or replaced seal breaks the chain as a changed row does. row_ids and row_digests (16 bytes
-- of each row's SHA-256, in id order) only locate the first row that differs; day_hash, the chain's
-- head after the day's rows, is what proves. `columns` are the access_log columns the seal covered,
-- so a column added by a later migration does not break the days sealed before it.
CREATE TABLE access_log_seals (
    day           date PRIMARY KEY,
    previous_day  date UNIQUE REFERENCES access_log_seals(day),
    row_count     integer NOT NULL CHECK (row_count >= 0),
    row_ids       bigint[] NOT NULL,
    row_digests   bytea NOT NULL,
    columns       text[] NOT NULL,
    id_horizon    bigint NOT NULL,  -- access_log's id sequence when sealed: tells a late commit from an insert
    day_hash      bytea NOT NULL CHECK (length(day_hash) = 32),
    sealed_at     timestamptz NOT NULL DEFAULT now(),
    sealed_by     text NOT NULL DEFAULT current_user,
    CHECK (previous_day IS NULL OR previous_day = day - 1),
    CHECK (cardinality(row_ids) = row_count AND length(row_digests) = 16 * row_count)
);
CREATE UNIQUE INDEX access_log_seals_one_genesis ON access_log_seals ((true)) WHERE previous_day IS NULL;

-- What the last `hemma accesslog check` (or `seal --verify`) found, for the log reviewer's screen
-- ("Loggen är obruten t.o.m. 5 dec"). Evidence of a check, so append-only as well.
CREATE TABLE access_log_checks (
    id              bigserial PRIMARY KEY,
    checked_at      timestamptz NOT NULL DEFAULT now(),
    from_day        date,
    to_day          date,
    intact_through  date,        -- the last day of the range that verified, NULL if none
    problem_day     date,        -- the first day that did not, NULL when all did
    problem_row     bigint,
    problem         text CHECK (problem IN ('altered', 'deleted', 'inserted', 'late', 'seal'))
);

-- The same two locks as the access log itself (migration 0007): no role but the owner holds UPDATE,
-- DELETE or TRUNCATE, and a statement-level trigger refuses them to everyone.
CREATE TRIGGER access_log_seals_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON access_log_seals
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_refuse_change();
CREATE TRIGGER access_log_checks_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON access_log_checks
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_refuse_change();
REVOKE UPDATE, DELETE, TRUNCATE ON access_log_seals, access_log_checks FROM PUBLIC;
DO $$
DECLARE
    target record;
BEGIN
    FOR target IN
        SELECT DISTINCT c.relname, g.grantee::regrole::text AS grantee
        FROM pg_class c, aclexplode(c.relacl) g
        WHERE c.oid IN ('access_log_seals'::regclass, 'access_log_checks'::regclass)
          AND g.grantee <> 0 AND g.grantee <> c.relowner
          AND g.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')
    LOOP
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %I FROM %s', target.relname, target.grantee);
    END LOOP;
END
$$;

-- A row dated in a day already sealed is refused: it would be in no seal. Every insert takes the
-- sealer's advisory lock shared until its transaction ends, and the sealer takes it exclusive
-- (care.access_log_seals.SEAL_LOCK), so a day is sealed only after every transaction that had
-- written to the log has committed or rolled back, and a transaction that writes after the seal
-- (one open across midnight and the grace period) sees the seal here and fails, rather than adding a
-- row no seal covers. Any row found in a sealed day anyway was added behind this trigger's back (or
-- by a REPEATABLE READ transaction whose snapshot predates the seal): `hemma accesslog check` names it.
CREATE FUNCTION access_log_refuse_sealed_day() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_sealed date;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(4849574102);  -- care.access_log_seals.SEAL_LOCK
    SELECT max(day) INTO last_sealed FROM access_log_seals;
    IF last_sealed IS NOT NULL AND NEW.at < (last_sealed + 1)::timestamp AT TIME ZONE 'UTC' THEN
        RAISE EXCEPTION 'access_log: the day of this row (%) is already sealed', (NEW.at AT TIME ZONE 'UTC')::date
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'A transaction stayed open across midnight (UTC) and the sealing grace period.';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER access_log_sealed_day BEFORE INSERT ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_refuse_sealed_day();
