-- The database role the services (ingest, dashboard, escalate) run as: reads and writes the tables
-- they use, may not change the schema, and may only read and append to the access log.
-- Run by the database owner, the role that runs `hemma migrate`. Idempotent: run it again after a
-- new migration added tables the owner's default privileges do not cover.
--
--   psql -v ON_ERROR_STOP=1 -d hemma -v app_role=hemma_app -v app_password=<hex> -f service-role.sql
--
-- app_role defaults to hemma_app; without app_password an existing role keeps its password (a new
-- one is created without, for peer or certificate authentication). The TimescaleDB container runs
-- this on first start (initdb-service-role.sh); deploy/README.md, "Database roles".

\if :{?app_role}
\else
\set app_role hemma_app
\endif

SELECT format('CREATE ROLE %I LOGIN', :'app_role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_role') \gexec
\if :{?app_password}
ALTER ROLE :"app_role" PASSWORD :'app_password';
\endif

GRANT CONNECT, TEMPORARY ON DATABASE :"DBNAME" TO :"app_role";
GRANT USAGE ON SCHEMA public TO :"app_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_role";
-- Tables later migrations create (as the owner running this) are granted the same way.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_role";
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO :"app_role";

-- The access log: read and append only; the migration history: read only. Migration 0007 also
-- revokes these from every role but the owner, and its trigger refuses them to everyone.
SELECT format('REVOKE UPDATE, DELETE, TRUNCATE ON access_log FROM %I', :'app_role')
WHERE to_regclass('access_log') IS NOT NULL \gexec
SELECT format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON schema_migrations FROM %I', :'app_role')
WHERE to_regclass('schema_migrations') IS NOT NULL \gexec
-- The access log's seals and the record of its checks (migration 0022): read and append only, the same.
SELECT format('REVOKE UPDATE, DELETE, TRUNCATE ON %I FROM %I', t, :'app_role')
FROM unnest(ARRAY['access_log_seals', 'access_log_checks']) t WHERE to_regclass(t) IS NOT NULL \gexec
