-- The access log is append-only (security review, issue 8). Patientdatalagen (2008:355) 4 kap. 3 §
-- wants a record of who read and changed which patient's record that those it records cannot
-- alter: the services may INSERT and SELECT rows, nobody may UPDATE, DELETE or TRUNCATE them.
-- Two locks: privileges (no role but the owner holds UPDATE, DELETE or TRUNCATE) and a trigger
-- that refuses those statements for everyone, the owner and superusers included. A purge after
-- the retention period is the owner's, who alone may disable the trigger for it: deploy/README.md,
-- "Access log retention".

-- Where a row came from, now that the CLI writes rows too (hemma/access_log.py); every row written
-- before this migration came from the dashboard. `os_user` is who ran a command line ("user@host").
ALTER TABLE access_log
    ADD COLUMN entry_point text NOT NULL DEFAULT 'dashboard',
    ADD COLUMN os_user text;

CREATE FUNCTION access_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'access_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Rows are purged after the retention period by the table owner (deploy/README.md).';
END
$$;

-- Statement-level, so an UPDATE or DELETE matching no row is refused as well: the attempt is the error.
CREATE TRIGGER access_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_refuse_change();

REVOKE UPDATE, DELETE, TRUNCATE ON access_log FROM PUBLIC;
-- Nor may the application rewrite which migrations have run.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON schema_migrations FROM PUBLIC;

-- Every other role that was granted these (a services' role given "ALL TABLES", or default
-- privileges: deploy/postgres/service-role.sql) loses them too, whatever its name.
DO $$
DECLARE
    target record;
BEGIN
    FOR target IN
        SELECT DISTINCT c.relname, g.grantee::regrole::text AS grantee
        FROM pg_class c, aclexplode(c.relacl) g
        WHERE c.oid IN ('access_log'::regclass, 'schema_migrations'::regclass)
          AND g.grantee <> 0 AND g.grantee <> c.relowner
          AND g.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
    LOOP
        IF target.relname = 'access_log' THEN
            EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON access_log FROM %s', target.grantee);
        ELSE
            EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON schema_migrations FROM %s',
                           target.grantee);
        END IF;
    END LOOP;
END
$$;
