"""`hemma plan`, `hemma order spo2-scale` and `hemma observe`, run as the operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from care.enrolment import enrol_patient, ensure_ward


def _hemma(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hemma.cli", *args],
        env=dict(os.environ, HEMMA_DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def patient(db: psycopg.Connection) -> str:
    ensure_ward(db, "asih-nord", "ASIH Nord")
    for username, role in (("sara", "nurse"), ("dr.lund", "physician")):
        staff_id = db.execute(
            "INSERT INTO staff_users (username, display_name, role, password_hash) VALUES (%s, %s, %s, 'x')"
            " RETURNING id",
            (username, username.title(), role),
        ).fetchone()[0]  # type: ignore[index]
        db.execute("INSERT INTO staff_ward_access VALUES (%s, 'asih-nord')", (staff_id,))
    return str(
        enrol_patient(db, ward_id="asih-nord", display_name="Gunnar Ek", gateway_id="kit-0007").patient_id
    )


def test_plan_set_and_clear(database_url: str, db: psycopg.Connection, patient: str) -> None:
    for vital, every, minutes in (
        ("spo2", "15m", 15),
        ("systolic_bp", "4h", 240),
        ("body_weight", "1d", 1440),
    ):
        result = _hemma(database_url, "plan", "set", patient, vital, "--every", every, "--by", "sara")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"monitoring plan saved: {vital} at least every {minutes} min"
    result = _hemma(database_url, "plan", "set", patient, "spo2", "--every", "1h30m", "--by", "dr.lund")
    assert result.returncode == 0, result.stderr
    plans = db.execute("SELECT vital, every_minutes FROM monitoring_plans ORDER BY vital").fetchall()
    assert plans == [("body_weight", 1440), ("spo2", 90), ("systolic_bp", 240)]

    result = _hemma(database_url, "plan", "clear", patient, "systolic_bp", "--by", "sara")
    assert (result.returncode, result.stdout.strip()) == (0, "monitoring plan for systolic_bp removed")
    assert [v for (v,) in db.execute("SELECT vital FROM monitoring_plans ORDER BY vital")] == [
        "body_weight",
        "spo2",
    ]


def test_order_spo2_scale(database_url: str, db: psycopg.Connection, patient: str) -> None:
    result = _hemma(
        database_url, "order", "spo2-scale", patient, "2",
        "--reason", "Kronisk hyperkapni, mål 88–92 %", "--by", "dr.lund",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    order_id = db.execute("SELECT id FROM spo2_scale_orders").fetchone()[0]  # type: ignore[index]
    assert result.stdout.strip() == (
        f"SpO2 scale order {order_id} in force: NEWS2 scores SpO2 on scale 2 (target 88-92 %)"
    )
    result = _hemma(
        database_url,
        "order",
        "spo2-scale",
        patient,
        "1",
        "--reason",
        "Ej längre hyperkapni",
        "--by",
        "dr.lund",
    )
    assert result.returncode == 0, result.stderr
    rows = db.execute("SELECT scale, revoked_at IS NULL FROM spo2_scale_orders ORDER BY id").fetchall()
    assert rows == [(2, False), (1, True)]


def test_observe_by_a_nurse_and_by_the_patient(
    database_url: str, db: psycopg.Connection, patient: str
) -> None:
    result = _hemma(
        database_url, "observe", patient, "--rr", "24", "--acvpu", "c", "--oxygen", "2", "--at",
        "2025-03-04T14:00", "--by", "sara",
    )  # fmt: skip
    # 2025-03-04 is long past: refused as more than 7 days old, with the reason.
    assert result.returncode == 2
    assert result.stderr.startswith(
        "hemma: observation time 2025-03-04T14:00:00+01:00 is more than 7 days ago"
    )

    at = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)
    result = _hemma(
        database_url, "observe", patient, "--rr", "24", "--acvpu", "c", "--oxygen", "2",
        "--at", at.isoformat(), "--by", "sara",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("observation ") and result.stdout.strip().endswith(" saved")
    result = _hemma(database_url, "observe", patient, "--acvpu", "A", "--air", "--patient")
    assert result.returncode == 0, result.stderr
    rows = db.execute(
        "SELECT time, respiratory_rate, consciousness, on_oxygen, oxygen_l_min, source"
        " FROM manual_observations ORDER BY id"
    ).fetchall()
    assert rows[0] == (at, 24.0, "C", True, 2.0, "nurse")
    assert rows[1][1:] == (None, "A", False, None, "patient")
    assert abs(rows[1][0] - datetime.now(UTC)) < timedelta(minutes=1)  # --at defaults to now
    assert db.execute("SELECT device_id, value FROM observations").fetchall() == [("staff:sara", 24.0)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("order", "spo2-scale", "{p}", "2", "--reason", "Hyperkapni", "--by", "sara"),
         "hemma: sara is a nurse; only physicians order the SpO2 scale"),
        (("order", "spo2-scale", "{p}", "2", "--reason", " ", "--by", "dr.lund"),
         "hemma: a reason is required (the clinical indication, e.g. verified hypercapnia)"),
        (("plan", "set", "{p}", "saturation", "--every", "4h", "--by", "sara"),
         "hemma: unknown vital 'saturation'; known: spo2, pulse_rate, heart_rate"),
        (("plan", "set", "{p}", "spo2", "--every", "2m", "--by", "sara"),
         "hemma: plan interval must be between 5 minutes and 7 days, got 0:02:00"),
        (("plan", "clear", "{p}", "spo2", "--by", "sara"),
         "hemma: patient {p} has no monitoring plan for spo2"),
        (("observe", "{p}", "--rr", "95", "--by", "sara"),
         "hemma: respiration rate 95 /min is not possible (between 2 and 80)"),
        (("observe", "{p}", "--acvpu", "A", "--at", "2999-01-01T08:00", "--by", "sara"),
         "hemma: observation time 2999-01-01T08:00:00+01:00 is in the future"),
        (("observe", "{p}", "--rr", "16", "--by", "nobody"), "hemma: no active staff account nobody"),
        (("observe", "{p}", "--by", "sara"),
         "hemma: give at least one of respiration rate, consciousness (ACVPU) or air/oxygen"),
        (("observe", str(uuid.UUID(int=1)), "--rr", "16", "--by", "sara"),
         f"hemma: no patient {uuid.UUID(int=1)}"),
    ],
)  # fmt: skip
def test_refusals_are_one_clear_line_and_exit_2(
    database_url: str, patient: str, args: tuple[str, ...], message: str
) -> None:
    result = _hemma(database_url, *(a.format(p=patient) for a in args))
    assert result.returncode == 2
    assert result.stderr.strip().startswith(message.format(p=patient))
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("plan", "set", "kit-0007", "spo2", "--every", "4h", "--by", "sara"),
         "not a patient id (uuid): 'kit-0007'"),
        (("plan", "set", "{p}", "spo2", "--every", "4 timmar", "--by", "sara"), "not a duration: '4 timmar'"),
        (("observe", "{p}", "--air", "--oxygen", "2", "--by", "sara"), "not allowed with argument --air"),
        (("observe", "{p}", "--rr", "16"), "one of the arguments --by --patient is required"),
        (("observe", "{p}", "--rr", "16", "--by", "sara", "--patient"), "not allowed with argument --by"),
        (("observe", "{p}", "--acvpu", "X", "--by", "sara"), "invalid choice: 'X'"),
        (("order", "spo2-scale", "{p}", "3", "--reason", "x", "--by", "dr.lund"), "invalid choice: 3"),
    ],
)  # fmt: skip
def test_malformed_arguments_are_usage_errors(
    database_url: str, patient: str, args: tuple[str, ...], message: str
) -> None:
    result = _hemma(database_url, *(a.format(p=patient) for a in args))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
