"""No patient data and no secrets in the CLI's error output (security review, issue 8): inputs are
checked before the database sees them, with a message that names the field and not its value, and
when PostgreSQL refuses a statement anyway the operator reads its SQLSTATE, the constraint and what
to do, never the error's own text, whose DETAIL quotes the failing row.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import psycopg
import pytest

from care.enrolment import enrol_patient, ensure_ward

NAME, PERSONAL_NUMBER, REASON = "Tolvan Tolvansson", "19121212-1212", "Pneumoni"
PATIENT_DATA = (NAME, "Tolvan", PERSONAL_NUMBER, "191212121212", "1800", REASON)


def _hemma(database_url: str, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HEMMA_DATABASE_URL=database_url)
    if password is not None:
        env["HEMMA_NEW_STAFF_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "hemma.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


def _refused(result: subprocess.CompletedProcess[str]) -> str:
    """The one line of a refused command; it carries none of the patient's data, nor a traceback."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert result.stdout == "" and "Traceback" not in output and "DETAIL" not in output, output
    for secret in PATIENT_DATA:
        assert secret not in output, (secret, output)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, output
    return lines[0]


def _enrol(database_url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return _hemma(
        database_url, "patient", "enrol", "--ward", "asih-nord", "--name", NAME, "--gateway", "kit-0042",
        "--personal-number", PERSONAL_NUMBER, "--reason", REASON, *extra,
    )  # fmt: skip


@pytest.fixture
def ward(db: psycopg.Connection) -> None:
    ensure_ward(db, "asih-nord", "ASIH Nord")


def test_an_impossible_birth_year_is_refused_without_echoing_the_patient(
    database_url: str, db: psycopg.Connection, ward: None
) -> None:
    year = datetime.now(UTC).year
    for birth_year in ("1800", str(year + 1)):
        line = _refused(_enrol(database_url, "--birth-year", birth_year))
        assert line == f"hemma: the birth year must be between 1890 and {year}"
    assert db.execute("SELECT count(*) FROM patients").fetchone() == (0,)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--ward", "asih-syd"), "hemma: no ward asih-syd: create it first with `hemma ward add`"),
        (("--gateway", "Kit 42"),
         "hemma: kit id 'Kit 42': use 3 to 63 characters of a-z, 0-9 and -, starting with a letter or digit"),
        (("--name", "  "), "hemma: the patient's name is empty"),
    ],
)  # fmt: skip
def test_enrolment_input_is_checked_first(
    database_url: str, db: psycopg.Connection, ward: None, args: tuple[str, ...], message: str
) -> None:
    base = {"--ward": "asih-nord", "--name": NAME, "--gateway": "kit-0042"}
    given = base | dict(zip(args[::2], args[1::2], strict=True))
    flat = [x for pair in given.items() for x in pair]
    result = _hemma(database_url, "patient", "enrol", *flat, "--personal-number", PERSONAL_NUMBER)
    assert _refused(result) == message
    assert db.execute("SELECT count(*) FROM patients").fetchone() == (0,)


def test_a_personal_number_already_registered_is_named_by_the_patient_id_only(
    database_url: str, db: psycopg.Connection, ward: None
) -> None:
    first = enrol_patient(
        db, ward_id="asih-nord", display_name=NAME, gateway_id="kit-0001", personal_number=PERSONAL_NUMBER
    )
    line = _refused(_enrol(database_url))
    assert (
        line == f"hemma: the personal number is already that of patient {first.patient_id}, who is enrolled"
    )


def test_a_bad_username_never_prints_the_password_hash(database_url: str, db: psycopg.Connection) -> None:
    result = _hemma(
        database_url, "staff", "add", "--username", "Anna Svensson", "--name", "Anna", "--role", "nurse",
        password="ett långt lösenord",
    )  # fmt: skip
    line = _refused(result)
    assert "$argon2" not in result.stderr and "långt" not in result.stderr
    # care.staff checks the username before anything is hashed or written (the database's
    # staff_users_username_check stays as the last line of defence).
    assert line == "hemma: username must be 2-64 characters: lowercase a-z, digits, '.', '_' or '-'"
    assert db.execute("SELECT count(*) FROM staff_users").fetchone() == (0,)


def test_any_refusal_by_the_database_is_its_sqlstate_and_constraint_never_the_failing_row(
    database_url: str, db: psycopg.Connection, ward: None
) -> None:
    """A rule the command does not check first (a region's own CHECK, added here), so PostgreSQL
    refuses the insert with a DETAIL quoting the whole patient row."""
    db.execute("ALTER TABLE patients ADD CONSTRAINT region_reason_short CHECK (length(care_reason) < 5)")
    line = _refused(_enrol(database_url, "--birth-year", "1912"))
    assert line == (
        "hemma: the database refused this (SQLSTATE 23514, constraint region_reason_short):"
        " a value was refused by the database's rules; check the command's arguments (--help)"
    )


def test_a_bad_ward_id_and_a_bad_patient_id_are_usage_errors(database_url: str) -> None:
    line = _refused(_hemma(database_url, "ward", "add", "ASIH Nord", "ASIH Nord"))
    assert line == (
        "hemma: ward id 'ASIH Nord': use 2 to 63 characters of a-z, 0-9 and -,"
        " starting with a letter or digit"
    )
    result = _hemma(
        database_url, "threshold", "set", "--patient", "kit-0042", "--rule", "spo2_low", "--priority", "high",
        "--limit", "86", "--reason", "KOL", "--by", "dr.lund",
    )  # fmt: skip
    assert result.returncode == 2 and "not a patient id (uuid): 'kit-0042'" in result.stderr
