"""The CLI's clinical actions (security review, issue 8): `--by` names an enabled staff account whose role
may do the action, for a patient of its own ward; and every command that reads or changes a patient's
care writes its access_log row, in the command's transaction, saying it came from the CLI and which
operating-system user ran it. Run as an operator runs them: `python -m hemma.cli` against PostgreSQL.
"""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import sys
import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from care.enrolment import enrol_patient, ensure_ward
from care.limits import set_personal_threshold
from care.plans import set_monitoring_plan
from care.staff import create_staff_user, set_staff_contact

OS_USER = f"{pwd.getpwuid(os.geteuid()).pw_name}@{socket.gethostname()}"
PASSWORD = "ett långt lösenord"


def _hemma(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hemma.cli", *args],
        env=dict(os.environ, HEMMA_DATABASE_URL=database_url, USER="someone-else", LOGNAME="someone-else"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def ward(db: psycopg.Connection) -> dict[str, Any]:
    ensure_ward(db, "asih-nord", "ASIH Nord")
    ensure_ward(db, "asih-syd", "ASIH Syd")
    staff = {
        username: create_staff_user(
            db, username=username, display_name=username.title(), role=role, password=PASSWORD, ward_ids=wards
        )
        for username, role, wards in (
            ("sara", "nurse", ["asih-nord"]),
            ("dr.lund", "physician", ["asih-nord"]),
            ("dr.syd", "physician", ["asih-syd"]),
            ("it.admin", "admin", []),
            ("dr.borta", "physician", ["asih-nord"]),
        )
    }
    db.execute("UPDATE staff_users SET disabled = true WHERE username = 'dr.borta'")
    patient = enrol_patient(db, ward_id="asih-nord", display_name="Gunnar Ek", gateway_id="kit-0007")
    return {"patient": str(patient.patient_id), "staff": staff}


def _counts(db: psycopg.Connection) -> tuple[int, ...]:
    """Limits in force, plans, scale orders, observations, on-call shifts, discharges, access-log rows."""
    return db.execute(
        "SELECT (SELECT count(*) FROM personal_thresholds WHERE revoked_at IS NULL),"
        " (SELECT count(*) FROM monitoring_plans), (SELECT count(*) FROM spo2_scale_orders),"
        " (SELECT count(*) FROM manual_observations), (SELECT count(*) FROM oncall_shifts),"
        " (SELECT count(*) FROM patients WHERE discharged_at IS NOT NULL), (SELECT count(*) FROM access_log)"
    ).fetchone()  # type: ignore[return-value]


def _log(db: psycopg.Connection) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT staff_user_id, username, patient_id::text, action, context, entry_point, os_user,"
        " client_address FROM access_log ORDER BY id"
    ).fetchall()


def test_every_clinical_command_is_in_the_access_log_with_the_cli_and_the_os_user(
    database_url: str, db: psycopg.Connection, ward: dict[str, Any]
) -> None:
    p, ids = ward["patient"], ward["staff"]
    lund, sara = ids["dr.lund"], ids["sara"]
    commands = [
        ("threshold", "set", "--patient", p, "--rule", "spo2_low", "--priority", "high", "--limit", "86",
         "--reason", "KOL, mål 88–92 %", "--by", "dr.lund"),
        ("threshold", "revoke", "1", "--by", "dr.lund"),
        ("plan", "set", p, "spo2", "--every", "4h", "--by", "sara"),
        ("plan", "clear", p, "spo2", "--by", "dr.lund"),
        ("order", "spo2-scale", p, "2", "--reason", "Verifierad hyperkapni", "--by", "dr.lund"),
        ("observe", p, "--rr", "18", "--acvpu", "A", "--air", "--by", "sara"),
        ("observe", p, "--acvpu", "A", "--patient"),
        ("patient", "enrol", "--ward", "asih-nord", "--name", "Astrid Berglund", "--gateway", "kit-0008"),
        ("patient", "discharge", "--gateway", "kit-0008", "--outcome", "stayed_home", "--by", "sara"),
    ]  # fmt: skip
    for args in commands:
        result = _hemma(database_url, *args)
        assert result.returncode == 0, (args, result.stderr)
    (order_id,) = db.execute("SELECT id FROM spo2_scale_orders").fetchone()  # type: ignore[misc]
    observations = [r[0] for r in db.execute("SELECT id FROM manual_observations ORDER BY id")]
    astrid = str(db.execute("SELECT id FROM patients WHERE display_name = 'Astrid Berglund'").fetchone()[0])  # type: ignore[index]
    cli = ("cli", OS_USER, None)
    assert _log(db) == [
        (lund, "dr.lund", p, "set_alert_limit", "limit:1", *cli),
        (lund, "dr.lund", p, "revoke_alert_limit", "limit:1", *cli),
        (sara, "sara", p, "set_monitoring_plan", "plan:spo2", *cli),
        (lund, "dr.lund", p, "clear_monitoring_plan", "plan:spo2", *cli),
        (lund, "dr.lund", p, "order_spo2_scale", f"spo2_scale_order:{order_id}", *cli),
        (sara, "sara", p, "record_observation", f"observation:{observations[0]}", *cli),
        # The patient's own answer: no staff account; the operator who typed it is the OS user.
        (None, "(patient)", p, "record_observation", f"observation:{observations[1]} patient-reported", *cli),
        (None, "(operator)", astrid, "enrol_patient", "gateway:kit-0008", *cli),
        (sara, "sara", astrid, "discharge_patient", "outcome:stayed_home gateway:kit-0008", *cli),
    ]


def test_the_access_log_row_and_the_action_commit_together(
    database_url: str, db: psycopg.Connection, ward: dict[str, Any]
) -> None:
    """When the log cannot be written, the order is not stored either (Patientdatalagen: no unlogged
    change). The refusal is simulated with a trigger, as a full disk or a lost privilege would refuse."""
    db.execute(
        "CREATE FUNCTION refuse_log() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'log unavailable'; END $$"
    )
    db.execute("CREATE TRIGGER refuse_log BEFORE INSERT ON access_log EXECUTE FUNCTION refuse_log()")
    p = ward["patient"]
    for args in (
        ("threshold", "set", "--patient", p, "--rule", "spo2_low", "--priority", "high", "--limit", "86",
         "--reason", "KOL, mål 88–92 %", "--by", "dr.lund"),
        ("plan", "set", p, "spo2", "--every", "4h", "--by", "sara"),
        ("order", "spo2-scale", p, "2", "--reason", "Verifierad hyperkapni", "--by", "dr.lund"),
        ("observe", p, "--rr", "18", "--by", "sara"),
        ("patient", "discharge", "--gateway", "kit-0007", "--outcome", "stayed_home", "--by", "sara"),
    ):  # fmt: skip
        result = _hemma(database_url, *args)
        assert result.returncode == 2, args
        assert result.stderr.startswith("hemma: the database refused this (SQLSTATE P0001)"), result.stderr
    assert _counts(db) == (0, 0, 0, 0, 0, 0, 0)
    assert db.execute("SELECT count(*) FROM observations").fetchone() == (0,)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # An admin runs the system; clinical orders are for clinicians (care.permissions).
        (("threshold", "set", "--patient", "{p}", "--rule", "spo2_low", "--priority", "high", "--limit", "86",
          "--reason", "KOL", "--by", "it.admin"), "it.admin is an admin; only physicians set limits"),
        (("threshold", "set", "--patient", "{p}", "--rule", "spo2_low", "--priority", "high", "--limit", "86",
          "--reason", "KOL", "--by", "sara"), "sara is a nurse; only physicians set limits"),
        (("threshold", "revoke", "{limit}", "--by", "it.admin"),
         "it.admin is an admin; only physicians revoke limits"),
        (("threshold", "revoke", "{limit}", "--by", "sara"),
         "sara is a nurse; only physicians revoke limits"),
        (("plan", "set", "{p}", "spo2", "--every", "4h", "--by", "it.admin"),
         "it.admin is an admin; only nurses and physicians set monitoring plans"),
        (("plan", "clear", "{p}", "body_weight", "--by", "it.admin"),
         "it.admin is an admin; only nurses and physicians change monitoring plans"),
        (("order", "spo2-scale", "{p}", "2", "--reason", "Hyperkapni", "--by", "it.admin"),
         "it.admin is an admin; only physicians order the SpO2 scale"),
        (("observe", "{p}", "--rr", "18", "--by", "it.admin"),
         "it.admin is an admin; only nurses and physicians record observations"),
        # --by must be an enabled account ...
        (("plan", "set", "{p}", "spo2", "--every", "4h", "--by", "dr.borta"),
         "no active staff account dr.borta"),
        (("observe", "{p}", "--rr", "18", "--by", "vem-som-helst"), "no active staff account vem-som-helst"),
        # ... with access to the patient's ward, as on the dashboard.
        (("threshold", "set", "--patient", "{p}", "--rule", "spo2_low", "--priority", "high", "--limit", "86",
          "--reason", "KOL", "--by", "dr.syd"), "dr.syd has no access to ward asih-nord"),
        (("threshold", "revoke", "{limit}", "--by", "dr.syd"), "dr.syd has no access to ward asih-nord"),
        (("observe", "{p}", "--rr", "18", "--by", "dr.syd"), "dr.syd has no access to ward asih-nord"),
        (("oncall", "add", "--ward", "asih-nord", "--username", "it.admin", "--level", "1",
          "--from", "2026-01-01T08:00", "--to", "2026-01-01T17:00"),
         "it.admin is an admin; only physicians go on call"),
        (("oncall", "add", "--ward", "asih-nord", "--username", "sara", "--level", "1",
          "--from", "2026-01-01T08:00", "--to", "2026-01-01T17:00"),
         "sara is a nurse; only physicians go on call"),
    ],
)  # fmt: skip
def test_by_names_an_enabled_account_whose_role_and_ward_allow_the_action(
    database_url: str, db: psycopg.Connection, ward: dict[str, Any], args: tuple[str, ...], message: str
) -> None:
    p = uuid.UUID(ward["patient"])
    limit = set_personal_threshold(
        db, patient_id=p, rule="pulse_high", priority="high", limit=130, reason="Takykardi känd",
        set_by_username="dr.lund",
    )  # fmt: skip
    set_monitoring_plan(db, p, "body_weight", timedelta(days=1), "sara")
    for username in ("it.admin", "sara"):
        set_staff_contact(db, username=username, email=f"{username}@region.example")
    before = _counts(db)
    result = _hemma(database_url, *(a.format(p=p, limit=limit) for a in args))
    assert (result.returncode, result.stderr.strip()) == (2, f"hemma: {message}")
    assert _counts(db) == before  # nothing stored, nothing logged
