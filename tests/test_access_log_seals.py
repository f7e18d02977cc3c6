"""The access log's daily hash chain (issue 12, migration 0022; care.access_log_seals): `hemma accesslog
seal` and `check` run as an operator runs them, against a real PostgreSQL. A superuser who disables the
triggers and alters, deletes or inserts a row of a sealed day is caught, with the day and the row id;
the services' role (deploy/postgres/service-role.sql) cannot change the seals; sealing twice, or twice
at once, changes nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from care import access_log_seals
from care.access_log_chain import Problem
from tests.test_access_log_append_only import _as, _psql, app_role  # noqa: F401 (the services' role fixture)


def _complete_days() -> list[date]:
    """The last three days `hemma accesslog seal` counts complete now (SEAL_GRACE after UTC midnight)."""
    last = (datetime.now(UTC) - access_log_seals.SEAL_GRACE).date() - timedelta(days=1)
    return [last - timedelta(days=2), last - timedelta(days=1), last]


DAYS = _complete_days()


@pytest.fixture(autouse=True)
def _days_stay_complete_through_the_test() -> None:
    """Around UTC midnight the set of complete days moves (at 00:00 + SEAL_GRACE): a test started in
    those minutes waits until it has moved, so its days are the sealer's days from start to end."""
    global DAYS
    now = datetime.now(UTC)
    turn = datetime.combine(now.date(), datetime.min.time(), UTC) + access_log_seals.SEAL_GRACE
    if turn - timedelta(minutes=2) <= now < turn + timedelta(minutes=1):
        time.sleep((turn + timedelta(minutes=1) - now).total_seconds())
    DAYS = _complete_days()


APPEND_ONLY = "append-only"


def _hemma(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hemma.cli", "accesslog", *args],
        env=dict(os.environ, HEMMA_DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _noon(day: date, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, 12, minute, tzinfo=UTC)


def _write(conn: psycopg.Connection, at: datetime, username: str = "sara") -> int:
    row = conn.execute(
        "INSERT INTO access_log (at, username, action, context) VALUES (%s, %s, 'patient_record', 'test')"
        " RETURNING id",
        (at, username),
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def log_rows(db: psycopg.Connection) -> list[int]:
    """Three rows on each of three past days (UTC), and one today (not complete: never sealed)."""
    ids = [_write(db, _noon(day, minute)) for day in DAYS for minute in (0, 1, 2)]
    _write(db, datetime.now(UTC))
    return ids


def _seals(db: psycopg.Connection) -> list[tuple[object, ...]]:
    return db.execute("SELECT * FROM access_log_seals ORDER BY day").fetchall()


def test_seal_covers_every_complete_day_once_and_check_passes(
    database_url: str, db: psycopg.Connection, log_rows: list[int]
) -> None:
    first = _hemma(database_url, "seal")
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == [w for d in DAYS for w in ("sealed", d.isoformat())]
    sealed = _seals(db)
    assert [(s[0], s[1], s[2]) for s in sealed] == [
        (DAYS[0], None, 3),
        (DAYS[1], DAYS[0], 3),
        (DAYS[2], DAYS[1], 3),
    ]
    assert [list(s[3]) for s in sealed] == [log_rows[0:3], log_rows[3:6], log_rows[6:9]]
    again = _hemma(database_url, "seal")
    assert again.returncode == 0 and again.stdout.strip() == f"nothing to seal: sealed through {DAYS[2]}"
    assert _seals(db) == sealed  # sealing twice changes nothing
    checked = _hemma(database_url, "check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"access log intact: 3 sealed days checked, through {DAYS[2]}"
    assert db.execute(
        "SELECT intact_through, problem FROM access_log_checks ORDER BY id DESC LIMIT 1"
    ).fetchone() == (DAYS[2], None)


def test_two_sealers_at_once_seal_each_day_once(
    database_url: str, db: psycopg.Connection, log_rows: list[int]
) -> None:
    reports: list[access_log_seals.SealReport] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            barrier.wait()
            reports.append(access_log_seals.seal(conn))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(len(r.sealed) for r in reports) == [0, 3]
    assert [s[0] for s in _seals(db)] == DAYS


def _disabled(db: psycopg.Connection, statement: str, params: tuple[object, ...] = ()) -> None:
    """A superuser's change behind every trigger of access_log."""
    with db.transaction():
        db.execute("ALTER TABLE access_log DISABLE TRIGGER USER")
        db.execute(statement, params)
        db.execute("ALTER TABLE access_log ENABLE TRIGGER USER")


@pytest.mark.parametrize("tamper", ["altered", "deleted", "inserted"])
def test_a_superusers_change_to_a_sealed_day_is_caught(
    database_url: str, db: psycopg.Connection, log_rows: list[int], tamper: str
) -> None:
    assert _hemma(database_url, "seal").returncode == 0
    target = log_rows[4]  # the second row of the middle day
    if tamper == "altered":
        _disabled(db, "UPDATE access_log SET username = 'someone-else' WHERE id = %s", (target,))
    elif tamper == "deleted":
        _disabled(db, "DELETE FROM access_log WHERE id = %s", (target,))
    else:
        row = db.execute(
            "SELECT nextval(pg_get_serial_sequence('access_log', 'id'))"  # drawn now, after the seal
        ).fetchone()
        assert row is not None
        target = int(row[0])
        _disabled(
            db,
            "INSERT INTO access_log (id, at, username, action) VALUES (%s, %s, 'mallory', 'patient_record')",
            (target, _noon(DAYS[1], 30)),
        )
    checked = _hemma(database_url, "check")
    assert checked.returncode == 1
    assert f"{DAYS[1].isoformat()}: row {target} was {tamper}" in checked.stderr, checked.stderr
    # The days before it still verify; a check from the day after it passes.
    assert db.execute(
        "SELECT intact_through, problem_day, problem_row, problem FROM access_log_checks"
        " ORDER BY id DESC LIMIT 1"
    ).fetchone() == (DAYS[0], DAYS[1], target, tamper)
    assert _hemma(database_url, "check", "--from", DAYS[2].isoformat()).returncode == 0
    assert _hemma(database_url, "check", "--to", DAYS[0].isoformat()).returncode == 0


def test_a_row_dated_in_a_sealed_day_is_refused_and_a_late_one_is_named_apart(
    database_url: str, db: psycopg.Connection, log_rows: list[int]
) -> None:
    # An id drawn before the seal by a transaction still open when the day was sealed.
    row = db.execute("SELECT nextval(pg_get_serial_sequence('access_log', 'id'))").fetchone()
    assert row is not None
    late_id = int(row[0])
    assert _hemma(database_url, "seal").returncode == 0
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="already sealed"):
        _write(db, _noon(DAYS[2], 59))
    _write(db, datetime.now(UTC))  # today is not sealed
    # Only a transaction whose snapshot predates the seal (REPEATABLE READ) could still commit it.
    _disabled(
        db,
        "INSERT INTO access_log (id, at, username, action) VALUES (%s, %s, 'sara', 'patient_record')",
        (late_id, _noon(DAYS[2], 58)),
    )
    sealed = _hemma(database_url, "seal")
    assert sealed.returncode == 1
    assert f"{DAYS[2]}: row {late_id} was committed after the day was sealed" in sealed.stderr
    checked = _hemma(database_url, "check")
    assert checked.returncode == 1 and f"row {late_id} was committed after" in checked.stderr


def test_a_changed_seal_and_a_new_column_are_told_apart(
    database_url: str, db: psycopg.Connection, log_rows: list[int]
) -> None:
    assert _hemma(database_url, "seal").returncode == 0
    # A column added by a later migration does not break the days sealed before it.
    db.execute("ALTER TABLE access_log ADD COLUMN later text DEFAULT 'x'")
    assert _hemma(database_url, "check").returncode == 0
    with db.transaction():
        db.execute("ALTER TABLE access_log_seals DISABLE TRIGGER access_log_seals_append_only")
        db.execute("UPDATE access_log_seals SET day_hash = sha256(day_hash) WHERE day = %s", (DAYS[1],))
        db.execute("ALTER TABLE access_log_seals ENABLE TRIGGER access_log_seals_append_only")
    checked = _hemma(database_url, "check")
    assert checked.returncode == 1
    assert f"{DAYS[1]}: the seal itself does not agree with the chain" in checked.stderr


def test_the_services_role_may_seal_and_check_but_never_change_seals(
    database_url: str,
    db: psycopg.Connection,
    log_rows: list[int],
    app_role: str,  # noqa: F811
) -> None:
    app_url = _as(database_url, user=app_role)
    assert _hemma(app_url, "seal").returncode == 0
    assert _hemma(app_url, "check").returncode == 0
    with psycopg.connect(app_url, autocommit=True) as app:
        for table, column in (("access_log", "id"), ("access_log_seals", "day"), ("access_log_checks", "id")):
            for statement in (
                f"UPDATE {table} SET {column} = {column}",
                f"DELETE FROM {table}",
                f"TRUNCATE {table}",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    app.execute(statement)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    # The owner is refused by the trigger alone.
    for statement in ("UPDATE access_log_seals SET row_count = 0", "DELETE FROM access_log_checks"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=APPEND_ONLY):
            db.execute(statement)
    assert len(_seals(db)) == 3


def test_check_reports_problems_as_data() -> None:
    """The pure comparison (care.access_log_chain): the first differing id wins."""
    from care.access_log_chain import chain_day, compare

    rows = [(1, ["a", None]), (2, ["b", "c"]), (5, ["d", "e"])]
    sealed = chain_day(DAYS[0], None, rows)
    assert compare(sealed, chain_day(DAYS[0], None, rows), id_horizon=5) is None
    changed = chain_day(DAYS[0], None, [rows[0], (2, ["b", None]), rows[2]])
    assert compare(sealed, changed, 5) == access_log_seals.Difference(DAYS[0], Problem.ALTERED, 2)
    assert compare(sealed, chain_day(DAYS[0], None, rows[::2]), 5) == access_log_seals.Difference(
        DAYS[0], Problem.DELETED, 2
    )
    more = chain_day(DAYS[0], None, [*rows[:2], (3, ["x", None]), rows[2]])
    assert compare(sealed, more, 5).problem == Problem.LATE  # type: ignore[union-attr]
    assert compare(sealed, more, 2).problem == Problem.INSERTED  # type: ignore[union-attr]
    # NULL and the empty string differ; so does a value split across columns.
    assert chain_day(DAYS[0], None, [(1, [None])]).day_hash != chain_day(DAYS[0], None, [(1, [""])]).day_hash
    assert (
        chain_day(DAYS[0], None, [(1, ["ab", ""])]).day_hash
        != chain_day(DAYS[0], None, [(1, ["a", "b"])]).day_hash
    )


def test_after_a_lawful_purge_the_check_starts_at_the_first_day_with_rows(
    database_url: str, db: psycopg.Connection, log_rows: list[int]
) -> None:
    assert _hemma(database_url, "seal").returncode == 0
    purged = _psql(database_url, "purge-access-log.sql", before=f"{DAYS[1].isoformat()} 00:00+00")
    assert purged.returncode == 0 and "DELETE 3" in purged.stdout, purged.stderr
    checked = _hemma(database_url, "check")
    assert checked.returncode == 0, checked.stderr
    assert (
        checked.stdout.strip()
        == f"access log intact: 2 sealed days checked from {DAYS[1]}, through {DAYS[2]}"
    )
    # The purged day's seal stays, and a check that asks for it says its rows are gone.
    assert _hemma(database_url, "check", "--from", DAYS[0].isoformat()).returncode == 1
