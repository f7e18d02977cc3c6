"""PostgreSQL: migrations (`storage/migrations/*.sql`), connections and the refusals the database
itself gives (`storage.refusals`). Imports only `core`."""
