"""The `hemma` administration commands against a real database."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest


def _hemma(database_url: str, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HEMMA_DATABASE_URL=database_url)
    if password is not None:
        env["HEMMA_NEW_STAFF_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "hemma.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_ward_enrol_staff_discharge_round_trip(database_url: str, db) -> None:
    assert _hemma(database_url, "ward", "add", "asih-nord", "ASIH Nord").returncode == 0
    enrolled = _hemma(
        database_url,
        "patient",
        "enrol",
        "--ward",
        "asih-nord",
        "--name",
        "Oskar Lindqvist",
        "--gateway",
        "kit-0042",
        "--birth-year",
        "1943",
        "--reason",
        "Hjärtsvikt",
    )
    assert enrolled.returncode == 0, enrolled.stderr
    staff = _hemma(
        database_url,
        "staff",
        "add",
        "--username",
        "sara",
        "--name",
        "Sara Sjöström",
        "--role",
        "nurse",
        "--ward",
        "asih-nord",
        password="ett långt lösenord",
    )
    assert staff.returncode == 0, staff.stderr
    row = db.execute(
        "SELECT p.display_name, p.birth_year, g.id FROM patients p JOIN gateways g ON g.patient_id = p.id"
    ).fetchone()
    assert row == ("Oskar Lindqvist", 1943, "kit-0042")
    hashed = db.execute("SELECT password_hash FROM staff_users WHERE username = 'sara'").fetchone()[0]
    assert hashed.startswith("$argon2") and "långt" not in hashed

    discharged = _hemma(
        database_url,
        "patient",
        "discharge",
        "--gateway",
        "kit-0042",
        "--outcome",
        "stayed_home",
        "--by",
        "sara",
    )
    assert discharged.returncode == 0, discharged.stderr
    assert db.execute("SELECT patient_id FROM gateways WHERE id = 'kit-0042'").fetchone()[0] is None
    assert db.execute("SELECT discharged_at IS NOT NULL FROM patients").fetchone()[0] is True
    # The kit came back (issue 11: returned): it is lent to the next patient once cleaned.
    next_patient = (
        "patient",
        "enrol",
        "--ward",
        "asih-nord",
        "--name",
        "Astrid Berglund",
        "--gateway",
        "kit-0042",
    )
    uncleaned = _hemma(database_url, *next_patient)
    assert (uncleaned.returncode, uncleaned.stderr.strip()) == (
        2, "hemma: a kit that is returned cannot be changed by 'lend'"
    )  # fmt: skip
    assert _hemma(database_url, "kit", "cleaned", "kit-0042", "--by", "sara").returncode == 0
    again = _hemma(database_url, *next_patient)
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("patient", "discharge", "--gateway", "kit-none", "--outcome", "other", "--by", "sara"),
            "no enrolled patient holds kit kit-none",
        ),
        (
            ("staff", "add", "--username", "kort", "--name", "K", "--role", "nurse"),
            "password must be at least 12 characters",
        ),
        (
            ("ward", "add", "asih-syd", "ASIH Syd", "--escalate-after", "0"),
            "escalation after 0 min: choose 1 to 120 minutes",
        ),
    ],
)
def test_bad_admin_input_is_a_clear_error(database_url: str, args: tuple[str, ...], message: str) -> None:
    result = _hemma(database_url, *args, password="kort")
    assert result.returncode == 2
    assert result.stderr.strip() == f"hemma: {message}"


def test_unreachable_database_is_a_clear_error_not_a_traceback() -> None:
    result = _hemma("host=127.0.0.1 port=1 user=nobody dbname=none connect_timeout=2", "migrate")
    assert result.returncode == 2
    assert result.stderr.startswith("hemma: cannot use the database: connection failed:")
    assert "Traceback" not in result.stderr


def test_physician_sets_a_personal_limit_from_the_command_line(database_url: str, db) -> None:
    assert _hemma(database_url, "ward", "add", "asih-nord", "ASIH Nord").returncode == 0
    assert (
        _hemma(
            database_url,
            "patient",
            "enrol",
            "--ward",
            "asih-nord",
            "--name",
            "Gunnar Ek",
            "--gateway",
            "kit-0007",
        ).returncode
        == 0
    )
    assert (
        _hemma(
            database_url,
            "staff",
            "add",
            "--username",
            "dr.lund",
            "--name",
            "Erik Lund",
            "--role",
            "physician",
            "--ward",
            "asih-nord",
            password="ett långt lösenord",
        ).returncode
        == 0
    )
    patient_id = str(db.execute("SELECT id FROM patients").fetchone()[0])
    # A coming 15 December, January or February: in winter time, and within the year a limit may run.
    today = datetime.now(UTC).date()
    winters = [date(year, month, 15) for year in (today.year, today.year + 1) for month in (1, 2, 12)]
    winter = min(d for d in winters if d > today + timedelta(days=1))
    result = _hemma(
        database_url,
        "threshold",
        "set",
        "--patient",
        patient_id,
        "--rule",
        "spo2_low",
        "--priority",
        "high",
        "--limit",
        "86",
        "--reason",
        "KOL, mål 88–92 %",
        "--by",
        "dr.lund",
        "--until",
        f"{winter.isoformat()}T08:00",
    )
    assert result.returncode == 0, result.stderr
    row = db.execute("SELECT rule, priority, limit_value, valid_until FROM personal_thresholds").fetchone()
    assert row[:3] == ("spo2_low", "high", 86.0)
    assert row[3] == datetime(winter.year, winter.month, 15, 7, 0, tzinfo=UTC)  # 08:00 Swedish winter time

    # An end more than a year ahead is a typo in the year, refused like a past one (care.limits).
    far = _hemma(
        database_url, "threshold", "set", "--patient", patient_id, "--rule", "spo2_low",
        "--priority", "medium", "--limit", "88", "--reason", "KOL, mål 88–92 %", "--by", "dr.lund",
        "--until", "9999-12-31T23:59:59-14:00",
    )  # fmt: skip
    assert far.returncode == 2 and "more than a year ahead" in far.stderr

    # A past end time is refused before anything is stored, as the dashboard refuses it.
    past = _hemma(
        database_url, "threshold", "set", "--patient", patient_id, "--rule", "spo2_low",
        "--priority", "medium", "--limit", "88", "--reason", "KOL, mål 88–92 %", "--by", "dr.lund",
        "--until", "2020-01-01T08:00",
    )  # fmt: skip
    assert past.returncode == 2 and "not in the future" in past.stderr
    # Revoking keeps the row as history, with who revoked it.
    limit_id = db.execute("SELECT id FROM personal_thresholds").fetchone()[0]
    revoked = _hemma(database_url, "threshold", "revoke", str(limit_id), "--by", "dr.lund")
    assert revoked.returncode == 0, revoked.stderr
    assert "ward default for spo2_low high applies again" in revoked.stdout
    history = db.execute(
        "SELECT count(*), count(revoked_at), count(revoked_by) FROM personal_thresholds"
    ).fetchone()
    assert history == (1, 1, 1)


def test_a_ward_sets_its_escalation_minute(database_url: str, db) -> None:
    assert _hemma(database_url, "ward", "add", "asih-nord", "ASIH Nord").returncode == 0
    minutes = "SELECT escalate_after_minutes FROM wards WHERE id = 'asih-nord'"
    assert db.execute(minutes).fetchone() == (5,)  # the default
    assert (
        _hemma(database_url, "ward", "add", "asih-nord", "ASIH Nord", "--escalate-after", "10").returncode
        == 0
    )
    assert db.execute(minutes).fetchone() == (10,)
    # Renaming without the option keeps the ward's policy.
    assert _hemma(database_url, "ward", "add", "asih-nord", "ASIH Norr").returncode == 0
    assert db.execute("SELECT name, escalate_after_minutes FROM wards").fetchone() == ("ASIH Norr", 10)


STRONG = "kaffe utan mjölk i dag"


def _secrets_leaked(result: subprocess.CompletedProcess[str], *secrets: str) -> list[str]:
    said = result.stdout + result.stderr
    return [s for s in ("$argon2", "Traceback", *secrets) if s in said]


def test_staff_add_refuses_a_weak_password_and_stores_nothing(database_url: str, db) -> None:
    assert _hemma(database_url, "ward", "add", "asih-nord", "ASIH Nord").returncode == 0
    args = ("staff", "add", "--username", "sara", "--name", "Sara Sjöström", "--role", "nurse")
    for weak, reason in (
        ("aaaaaaaaaaaa", "must not be a repetition"),
        ("sara12345678", "must not contain the username"),
        ("Sommar2024!!", "too easy to guess"),
    ):
        result = _hemma(database_url, *args, password=weak)
        assert result.returncode == 2 and reason in result.stderr
        assert _secrets_leaked(result, weak) == []
    assert db.execute("SELECT count(*) FROM staff_users").fetchone() == (0,)


def test_refusals_never_print_the_password_or_its_hash(database_url: str, db) -> None:
    bad_name = _hemma(
        database_url, "staff", "add", "--username", "Sara Sjöström", "--name", "S", "--role", "nurse",
        password=STRONG,
    )  # fmt: skip
    assert bad_name.returncode == 2 and "username must be 2-64 characters" in bad_name.stderr
    assert _secrets_leaked(bad_name, STRONG) == []
    # No such ward: refused by care.staff before any row is written (it was the database's foreign key
    # before the admin's staff page came), never the row with the hash in it.
    no_ward = _hemma(
        database_url, "staff", "add", "--username", "sara", "--name", "S", "--role", "nurse", "--ward", "nej",
        password=STRONG,
    )  # fmt: skip
    assert no_ward.returncode == 2 and "no ward nej" in no_ward.stderr
    assert _secrets_leaked(no_ward, STRONG) == []
    assert db.execute("SELECT count(*) FROM staff_users").fetchone() == (0,)


def test_passwd_disable_and_enable_end_the_sessions_of_the_account(database_url: str, db) -> None:
    from care.passwords import password_hasher

    add = ("staff", "add", "--username", "sara", "--name", "Sara Sjöström", "--role", "nurse")
    assert _hemma(database_url, *add, password=STRONG).returncode == 0
    staff_id = db.execute("SELECT id FROM staff_users WHERE username = 'sara'").fetchone()[0]

    def log_in() -> int:
        return db.execute(
            "INSERT INTO staff_sessions (token_sha256, staff_user_id, expires_at)"
            " VALUES (sha256(random()::text::bytea), %s, now() + interval '1 hour') RETURNING id",
            (staff_id,),
        ).fetchone()[0]

    def reason(session_id: int) -> str | None:
        return db.execute(
            "SELECT revoked_reason FROM staff_sessions WHERE id = %s", (session_id,)
        ).fetchone()[0]

    session = log_in()
    changed = _hemma(database_url, "staff", "passwd", "sara", password="blå cykel under bron")
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.strip() == "password of sara changed; their dashboard sessions have ended"
    assert _secrets_leaked(changed, "blå cykel") == []
    hashed = db.execute("SELECT password_hash FROM staff_users WHERE id = %s", (staff_id,)).fetchone()[0]
    assert password_hasher().verify("blå cykel under bron", hashed)
    assert reason(session) == "password_changed"
    weak = _hemma(database_url, "staff", "passwd", "sara", password="aaaaaaaaaaaa")
    assert weak.returncode == 2 and "repetition" in weak.stderr

    session = log_in()
    assert _hemma(database_url, "staff", "disable", "sara").returncode == 0
    assert db.execute("SELECT disabled FROM staff_users WHERE id = %s", (staff_id,)).fetchone() == (True,)
    assert reason(session) == "disabled"
    enabled = _hemma(database_url, "staff", "enable", "sara")
    assert enabled.returncode == 0 and "enabled" in enabled.stdout
    assert db.execute("SELECT disabled FROM staff_users WHERE id = %s", (staff_id,)).fetchone() == (False,)
    assert reason(session) == "disabled"  # enabling brings no old session back

    unknown = _hemma(database_url, "staff", "disable", "nobody")
    assert unknown.returncode == 2 and unknown.stderr.strip() == "hemma: no staff account nobody"
