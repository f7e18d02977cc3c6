"""The access log is append-only (security review, issue 8): migration 0007's trigger refuses UPDATE,
DELETE and TRUNCATE to everyone, and deploy/postgres/service-role.sql gives the services a role that
may only read and append to it. The deploy SQL runs here through psql as an operator runs it, and the
services' side through a real connection as that role: the dashboard and the escalator working under
it, and what it may not do.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from care.enrolment import enrol_patient, ensure_ward
from care.staff import create_staff_user
from core.settings import Settings
from paging.escalator import Escalation, Escalator
from paging.notify import Dispatcher, SystemClock
from storage.db import migrate
from tests.support.dashboard_server import logged_in, running_dashboard
from tests.support.escalation import high_alert
from tests.support.ward_seed import PASSWORD, add_alert
from tests.test_dashboard_engine_api import Staff

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "postgres"
APPEND_ONLY = "access_log is append-only"
CHANGES = (
    "UPDATE access_log SET username = 'someone-else'",
    "DELETE FROM access_log",
    "DELETE FROM access_log WHERE false",  # refused even when it would change nothing
    "TRUNCATE access_log",
)


def _as(conninfo: str, **changes: str) -> str:
    return make_conninfo(**(conninfo_to_dict(conninfo) | changes))  # type: ignore[arg-type]


def _psql(conninfo: str, script: str, **variables: str) -> subprocess.CompletedProcess[str]:
    psql = shutil.which("psql")
    if psql is None:
        pytest.fail(
            "psql is needed to run deploy/postgres/*.sql as operators do: apt-get install postgresql-client"
        )
    args = [psql, "-X", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-f", str(DEPLOY / script)]
    for name, value in variables.items():
        args += ["-v", f"{name}={value}"]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def app_role(database_url: str) -> Iterator[str]:
    """A services' role made by deploy/postgres/service-role.sql on the test database (roles are
    cluster-wide: a unique name, dropped afterwards)."""
    role = f"hemma_app_{uuid.uuid4().hex[:10]}"
    made = _psql(database_url, "service-role.sql", app_role=role, app_password=uuid.uuid4().hex)
    assert made.returncode == 0, made.stderr
    yield role
    _drop_role(database_url, role)


def _drop_role(database_url: str, role: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as owner:
        owner.execute(f'DROP OWNED BY "{role}"')
        owner.execute(f'DROP ROLE "{role}"')


def _entry(conn: psycopg.Connection) -> None:
    conn.execute(
        "INSERT INTO access_log (username, action, context) VALUES ('sara', 'patient_record', 'test')"
    )


def test_the_services_role_may_read_and_append_but_never_change_the_access_log(
    database_url: str, app_role: str
) -> None:
    with psycopg.connect(_as(database_url, user=app_role), autocommit=True) as app:
        _entry(app)
        assert app.execute("SELECT username FROM access_log").fetchall() == [("sara",)]
        for statement in CHANGES:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(statement)
        # What the services do with the other tables they still may (here: an alert's lifecycle).
        ensure_ward(app, "asih-nord", "ASIH Nord")
        patient = enrol_patient(app, ward_id="asih-nord", display_name="Gunnar Ek", gateway_id="kit-0007")
        alert_id = high_alert(app, patient.patient_id, "asih-nord", opened_at=datetime.now(UTC))
        app.execute("UPDATE alerts SET state = 'resolved' WHERE id = %s", (alert_id,))
        # Nor may it change the schema or the record of migrations.
        for statement in (
            "ALTER TABLE access_log DISABLE TRIGGER access_log_append_only",
            "DROP TRIGGER access_log_append_only ON access_log",
            "DELETE FROM schema_migrations WHERE version = 7",
            "CREATE TABLE shadow_log (id int)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(statement)
        assert app.execute("SELECT count(*) FROM access_log").fetchone() == (1,)


@pytest.mark.parametrize("statement", CHANGES)
def test_the_trigger_refuses_changes_even_to_the_owner(db: psycopg.Connection, statement: str) -> None:
    """The owner (here a superuser, which privileges do not bind) is refused by the trigger alone."""
    _entry(db)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=APPEND_ONLY):
        db.execute(statement)
    assert db.execute("SELECT username FROM access_log").fetchall() == [("sara",)]


@pytest.mark.parametrize("order", ["role before migrations (first start)", "role after migrations"])
def test_a_new_deployment_gives_the_services_role_exactly_its_privileges(
    postgres_admin_url: str, order: str
) -> None:
    """compose's first start runs service-role.sql on an empty database (default privileges), then
    `hemma migrate`; an existing database gets the script after its migrations. Same end either way."""
    name, role = f"hemma_deploy_{uuid.uuid4().hex[:10]}", f"hemma_app_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _as(postgres_admin_url, dbname=name)
    try:
        steps = ["role", "migrate"] if order.startswith("role before") else ["migrate", "role"]
        for step in steps:
            if step == "role":
                made = _psql(url, "service-role.sql", app_role=role)
                assert made.returncode == 0, made.stderr
            else:
                with psycopg.connect(url, autocommit=True) as owner:
                    migrate(owner)
        with psycopg.connect(url, autocommit=True) as owner:
            privileges = dict(
                owner.execute(
                    "SELECT c.relname, array_agg(p ORDER BY p) FROM pg_class c"
                    " CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p"
                    " WHERE c.relname IN ('access_log', 'schema_migrations', 'alerts', 'personal_thresholds')"
                    " AND has_table_privilege(%s, c.oid, p) GROUP BY c.relname",
                    (role,),
                ).fetchall()
            )
        assert privileges == {
            "access_log": ["INSERT", "SELECT"],
            "schema_migrations": ["SELECT"],
            "alerts": ["DELETE", "INSERT", "SELECT", "UPDATE"],
            "personal_thresholds": ["DELETE", "INSERT", "SELECT", "UPDATE"],
        }
        with psycopg.connect(_as(url, user=role), autocommit=True) as app:
            assert migrate(app) == []  # a service starting as this role: schema current, no DDL
    finally:
        with psycopg.connect(url, autocommit=True) as owner:
            owner.execute(f'DROP OWNED BY "{role}"')
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_the_services_run_under_the_role(database_url: str, db: psycopg.Connection, app_role: str) -> None:
    """The dashboard (which migrates on start) reads a record and acknowledges an alert, and the
    escalator records an escalation, connected as the services' role."""
    ensure_ward(db, "avd-norr", "Avdelning Norr")
    anna = enrol_patient(db, ward_id="avd-norr", display_name="Anna Andersson", gateway_id="gw-anna")
    create_staff_user(
        db, username="nurse.norr", display_name="Sara Sjöström", role="nurse", password=PASSWORD,
        ward_ids=["avd-norr"],
    )  # fmt: skip
    alert_id = add_alert(db, anna)
    app_url = _as(database_url, user=app_role)
    settings = Settings(database_url=app_url, session_secret="s" * 40)
    with running_dashboard(settings) as base_url, logged_in(base_url, "nurse.norr", PASSWORD) as client:
        assert client.get(f"/patients/{anna.patient_id}").status_code == 200
        assert Staff(client).post(f"/api/alerts/{alert_id}/acknowledge", {}).status_code == 200
    now = datetime.now(UTC)
    unanswered = high_alert(db, anna.patient_id, "avd-norr", opened_at=now - timedelta(minutes=10))
    dispatcher = Dispatcher([], clock=SystemClock())
    with Escalator(app_url, dispatcher, dashboard_url="https://hemma.region.example") as escalator:
        # Nobody on call: recorded as an escalation to nobody, an alert_events row written as the role.
        assert escalator.tick(now) == [Escalation(unanswered, "avd-norr", 1, None, False, 0)]
    actions = [
        r[0] for r in db.execute("SELECT action FROM access_log WHERE username = 'nurse.norr' ORDER BY id")
    ]
    assert actions == ["patient_record", "acknowledge_alert"]


def test_a_service_meeting_a_pending_migration_says_the_owner_must_migrate(
    database_url: str, db: psycopg.Connection, app_role: str
) -> None:
    from storage.db import MigrationsPending

    db.execute("DELETE FROM schema_migrations WHERE version = 7")  # as if 0007 were new
    with (
        psycopg.connect(_as(database_url, user=app_role), autocommit=True) as app,
        pytest.raises(MigrationsPending, match=r"run `hemma migrate` as the database owner"),
    ):
        migrate(app)


def test_a_lawful_purge_is_the_owners_and_keeps_the_trigger(
    database_url: str, db: psycopg.Connection, app_role: str
) -> None:
    for at in ("2014-06-30 12:00+02", "2015-06-30 12:00+02", "2026-01-02 08:00+01"):
        db.execute(
            "INSERT INTO access_log (at, username, action) VALUES (%s, 'sara', 'patient_record')", (at,)
        )
    refused = _psql(_as(database_url, user=app_role), "purge-access-log.sql", before="2015-01-01")
    assert refused.returncode != 0 and "must be owner of table access_log" in refused.stderr
    assert _psql(database_url, "purge-access-log.sql").returncode != 0  # no cut-off given: nothing done
    assert db.execute("SELECT count(*) FROM access_log").fetchone() == (3,)

    purged = _psql(database_url, "purge-access-log.sql", before="2015-01-01")
    assert purged.returncode == 0, purged.stderr
    assert "DELETE 1" in purged.stdout
    kept = [r[0].year for r in db.execute("SELECT at FROM access_log ORDER BY at")]
    assert kept == [2015, 2026]
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=APPEND_ONLY):
        db.execute("DELETE FROM access_log")  # the trigger is back on
