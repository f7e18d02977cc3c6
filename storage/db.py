"""Database schema migrations and small connection helpers shared by ingest and dashboard."""

from __future__ import annotations

import logging
from importlib import resources
from typing import TYPE_CHECKING

from core import events

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same for every Hemma process.
_MIGRATION_LOCK = 0x48454D4D41  # "HEMMA"
NOTIFY_CHANNEL = events.CHANNEL  # one name: core.events


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every file in storage/migrations, in order."""
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql"):
            version = int(name.split("_", 1)[0])
            found.append((version, name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply pending migrations; safe to call from several processes at once. Returns the names applied.

    With nothing pending this runs no DDL, so a service connected as a role that may not change the
    schema (deploy/postgres/service-role.sql) starts on a current database; with something pending
    that role gets MigrationsPending, and the database owner runs `hemma migrate`.
    """
    applied: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        pending = _pending(conn)
        if pending:
            _apply(conn, pending, applied)
    enable_timescaledb(conn)
    return applied


def _apply(conn: psycopg.Connection, pending: list[tuple[int, str, str]], applied: list[str]) -> None:
    import psycopg

    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
            " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version, name, sql in pending:
            log.info("applying migration %s", name)
            conn.execute(sql)  # trusted file shipped with the package
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
            applied.append(name)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise MigrationsPending(", ".join(name for _, name, _ in pending)) from exc


class MigrationsPending(RuntimeError):
    """Migrations are pending and this database role may not apply them (it is not the owner)."""

    def __init__(self, names: str) -> None:
        super().__init__(
            f"migrations pending ({names}) and this database role may not change the schema:"
            " run `hemma migrate` as the database owner first"
        )


def _pending(conn: psycopg.Connection) -> list[tuple[int, str, str]]:
    if conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,):
        return migration_files()
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    return [m for m in migration_files() if m[0] not in done]


def enable_timescaledb(conn: psycopg.Connection) -> bool:
    """Turn observations into a hypertable when the timescaledb extension can be loaded.

    On plain PostgreSQL this does nothing and Hemma works the same, with ordinary
    B-tree indexes. The extension must be in shared_preload_libraries to be created;
    a server that lists it as available but has not preloaded it is treated as plain.
    """
    import psycopg

    available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    if not available:
        return False
    from storage import rollups

    if _is_hypertable(conn) and _has_continuous_aggregates(conn):
        return True  # done before: no DDL, which a services' role may not run
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            conn.execute(
                "SELECT create_hypertable('observations', 'time', chunk_time_interval => interval '1 day',"
                " if_not_exists => true, migrate_data => true)"
            )
            # The charts' rollups as continuous aggregates; ingest stops maintaining the table.
            rollups.create_continuous_aggregates(conn)
    except psycopg.Error as exc:
        log.warning("timescaledb is available but could not be enabled (%s); using plain tables", exc)
        return False
    return True


def _has_continuous_aggregates(conn: psycopg.Connection) -> bool:
    from storage import rollups

    row = conn.execute(rollups.ROLLUP_SOURCE_QUERY, (rollups.TIMESCALE_MARKER,)).fetchone()
    return bool(row and row[0])


def _is_hypertable(conn: psycopg.Connection) -> bool:
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is None:
        return False
    row = conn.execute(
        "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'observations'"
    ).fetchone()
    return row is not None
