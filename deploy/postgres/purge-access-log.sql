-- A lawful purge of the access log after the retention period your care provider has decided.
-- Only the owner of access_log (the role that runs `hemma migrate`) can run it: the append-only
-- trigger (migration 0007) refuses DELETE to everyone, and only the owner may disable it.
--
--   psql -v ON_ERROR_STOP=1 -d hemma -v before=2015-01-01 -f purge-access-log.sql
--
-- Deletes the rows written before `before` (a date or timestamp; Swedish time unless an offset is
-- given) in one transaction. ALTER TABLE holds an exclusive lock on access_log until COMMIT, so no
-- other session reads or writes the log (or changes it) while the trigger is off; dashboard requests
-- wait meanwhile, so purge at a quiet hour.

\if :{?before}
\else
DO $$ BEGIN RAISE EXCEPTION 'set the cut-off: psql ... -v before=YYYY-MM-DD'; END $$;
\endif

BEGIN;
SET LOCAL TIME ZONE 'Europe/Stockholm';
ALTER TABLE access_log DISABLE TRIGGER access_log_append_only;
DELETE FROM access_log WHERE at < :'before'::timestamptz;
ALTER TABLE access_log ENABLE TRIGGER access_log_append_only;
COMMIT;
