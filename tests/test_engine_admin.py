"""The care team's inputs to the alert engine: monitoring plans, SpO2 scale orders, manual observations.

Against a real PostgreSQL: the functions' own checks come before the table's CHECKs, so every refusal
below is asserted by its message, and the rows by their values.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from alerts import store
from alerts.model import AlarmCondition, AlertRequest, Priority
from care.enrolment import enrol_patient, ensure_ward
from care.observations import record_manual_observation
from care.orders import order_spo2_scale
from care.plans import clear_monitoring_plan, set_monitoring_plan
from care.refusals import Refused
from core.vitals import Vital
from storage.db import NOTIFY_CHANNEL

WARD = "asih-nord"
NOW = datetime(2025, 3, 4, 13, 0, tzinfo=UTC)


def _staff(db: psycopg.Connection, username: str, role: str, *, disabled: bool = False) -> int:
    """A staff account with access to WARD (staff act only for their own wards' patients)."""
    staff_id = int(
        db.execute(
            "INSERT INTO staff_users (username, display_name, role, password_hash, disabled)"
            " VALUES (%s, %s, %s, 'not-a-hash', %s) RETURNING id",
            (username, username.title(), role, disabled),
        ).fetchone()[0]  # type: ignore[index]
    )
    db.execute("INSERT INTO staff_ward_access (staff_user_id, ward_id) VALUES (%s, %s)", (staff_id, WARD))
    return staff_id


@pytest.fixture
def ward(db: psycopg.Connection) -> dict[str, Any]:
    ensure_ward(db, WARD, "ASIH Nord")
    patient = enrol_patient(db, ward_id=WARD, display_name="Gunnar Ek", gateway_id="kit-0007")
    return {
        "patient_id": patient.patient_id,
        "nurse": _staff(db, "sara", "nurse"),
        "physician": _staff(db, "dr.lund", "physician"),
        "admin": _staff(db, "it.admin", "admin"),
        "gone": _staff(db, "dr.borta", "physician", disabled=True),
    }


# --- monitoring plans -------------------------------------------------------------------------


def _plans(db: psycopg.Connection) -> list[tuple[str, int, int]]:
    return db.execute("SELECT vital, every_minutes, set_by FROM monitoring_plans ORDER BY vital").fetchall()


def test_a_nurse_plans_vitals_and_a_physician_changes_one(db: psycopg.Connection, ward: dict) -> None:
    patient = ward["patient_id"]
    assert set_monitoring_plan(db, patient, Vital.SPO2, timedelta(minutes=15), "sara") == 15
    assert set_monitoring_plan(db, patient, "body_weight", timedelta(days=1), "sara") == 1440
    assert _plans(db) == [("body_weight", 1440, ward["nurse"]), ("spo2", 15, ward["nurse"])]
    first_set_at = db.execute("SELECT set_at FROM monitoring_plans WHERE vital = 'spo2'").fetchone()[0]  # type: ignore[index]

    # Upsert: the same vital again replaces the interval and who set it, and restarts the plan's clock.
    assert set_monitoring_plan(db, patient, "spo2", timedelta(hours=4), "dr.lund") == 240
    assert _plans(db) == [("body_weight", 1440, ward["nurse"]), ("spo2", 240, ward["physician"])]
    set_at = db.execute("SELECT set_at FROM monitoring_plans WHERE vital = 'spo2'").fetchone()[0]  # type: ignore[index]
    assert set_at >= first_set_at

    # The limits themselves are allowed.
    set_monitoring_plan(db, patient, "systolic_bp", timedelta(minutes=5), "sara")
    set_monitoring_plan(db, patient, "body_temperature", timedelta(days=7), "sara")

    clear_monitoring_plan(db, patient, "spo2", "sara")
    assert [v for v, _, _ in _plans(db)] == ["body_temperature", "body_weight", "systolic_bp"]


@pytest.mark.parametrize(
    ("vital", "every", "by", "message"),
    [
        ("saturation", timedelta(hours=1), "sara", "unknown vital 'saturation'; known: spo2, pulse_rate"),
        (
            "spo2",
            timedelta(minutes=4),
            "sara",
            "plan interval must be between 5 minutes and 7 days, got 0:04:00",
        ),
        ("spo2", timedelta(days=7, minutes=1), "sara", "plan interval must be between 5 minutes and 7 days"),
        ("spo2", timedelta(minutes=15, seconds=30), "sara", "plan interval must be whole minutes"),
        ("spo2", timedelta(hours=1), "it.admin", "it.admin is an admin; only nurses and physicians set"),
        ("spo2", timedelta(hours=1), "dr.borta", "no active staff account dr.borta"),
        ("spo2", timedelta(hours=1), "nobody", "no active staff account nobody"),
    ],
)
def test_a_plan_is_refused_with_a_reason(
    db: psycopg.Connection, ward: dict, vital: str, every: timedelta, by: str, message: str
) -> None:
    with pytest.raises(Refused) as refused:
        set_monitoring_plan(db, ward["patient_id"], vital, every, by)
    assert str(refused.value).startswith(message)
    assert _plans(db) == []


def test_plans_only_for_patients_in_care(db: psycopg.Connection, ward: dict) -> None:
    stranger = uuid.uuid4()
    with pytest.raises(Refused, match=f"no patient {stranger}"):
        set_monitoring_plan(db, stranger, "spo2", timedelta(hours=1), "sara")
    db.execute("UPDATE patients SET discharged_at = '2025-03-01T10:00Z'")
    with pytest.raises(Refused, match="was discharged on 2025-03-01"):
        set_monitoring_plan(db, ward["patient_id"], "spo2", timedelta(hours=1), "sara")


def test_clearing_a_plan_ends_its_missing_data_alarm(
    db: psycopg.Connection, database_url: str, ward: dict
) -> None:
    patient = ward["patient_id"]
    set_monitoring_plan(db, patient, "spo2", timedelta(minutes=15), "sara")
    set_monitoring_plan(db, patient, "body_weight", timedelta(days=1), "sara")
    missing = [
        AlertRequest(
            patient, f"missing:{vital}", vital, Priority.MEDIUM, "Ingen tillförlitlig mätning", 2.0, 1.0,
            NOW + timedelta(hours=1), AlarmCondition.TECHNICAL,  # an engine clock ahead of ours
        )
        for vital in ("spo2", "body_weight")
    ]  # fmt: skip
    with db.transaction():
        store.apply(db, missing, [], {patient: WARD}, now=NOW - timedelta(hours=1))
        store.promote_due(db, now=NOW)
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        clear_monitoring_plan(db, patient, "spo2", "sara", now=NOW)
        [note] = list(listener.notifies(timeout=2, stop_after=1))
    states = dict(db.execute("SELECT rule, state FROM alerts").fetchall())
    assert states == {"missing:spo2": "resolved", "missing:body_weight": "open"}
    spo2_alert = db.execute("SELECT id FROM alerts WHERE rule = 'missing:spo2'").fetchone()[0]  # type: ignore[index]
    assert json.loads(note.payload) == {"kind": "alerts", "ward_id": WARD, "alert_ids": [spo2_alert]}
    kinds = db.execute(
        "SELECT kind FROM alert_events WHERE alert_id = %s ORDER BY id", (spo2_alert,)
    ).fetchall()
    assert kinds == [("pending",), ("opened",), ("resolved",)]


def test_clearing_a_plan_that_is_not_there_says_so(db: psycopg.Connection, ward: dict) -> None:
    with pytest.raises(Refused, match="has no monitoring plan for spo2"):
        clear_monitoring_plan(db, ward["patient_id"], "spo2", "sara")
    with pytest.raises(Refused, match="unknown vital 'sp02'"):
        clear_monitoring_plan(db, ward["patient_id"], "sp02", "sara")
    set_monitoring_plan(db, ward["patient_id"], "spo2", timedelta(hours=1), "sara")
    with pytest.raises(Refused, match="only nurses and physicians change monitoring plans"):
        clear_monitoring_plan(db, ward["patient_id"], "spo2", "it.admin")
    assert len(_plans(db)) == 1


# --- SpO2 scale orders ------------------------------------------------------------------------


def _orders(db: psycopg.Connection) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT id, scale, reason, ordered_by, revoked_at IS NOT NULL, revoked_by FROM spo2_scale_orders"
        " ORDER BY id"
    ).fetchall()


def test_a_physician_orders_scale_2_and_later_back_to_scale_1(db: psycopg.Connection, ward: dict) -> None:
    patient, lund = ward["patient_id"], ward["physician"]
    first = order_spo2_scale(db, patient, 2, "  Kronisk hyperkapni, mål 88–92 %  ", "dr.lund")
    assert _orders(db) == [(first, 2, "Kronisk hyperkapni, mål 88–92 %", lund, False, None)]

    second = _staff(db, "dr.berg", "physician")
    back = order_spo2_scale(db, patient, 1, "Blodgas normal, ej längre CO2-retention", "dr.berg")
    assert _orders(db) == [
        (first, 2, "Kronisk hyperkapni, mål 88–92 %", lund, True, second),
        (back, 1, "Blodgas normal, ej längre CO2-retention", second, False, None),
    ]
    in_force = db.execute(
        "SELECT scale FROM spo2_scale_orders WHERE patient_id = %s AND revoked_at IS NULL", (patient,)
    ).fetchall()
    assert in_force == [(1,)]


@pytest.mark.parametrize(
    ("scale", "reason", "by", "message"),
    [
        (2, "Kronisk hyperkapni", "sara", "sara is a nurse; only physicians order the SpO2 scale"),
        (2, "Kronisk hyperkapni", "it.admin", "it.admin is an admin; only physicians order the SpO2 scale"),
        (2, "Kronisk hyperkapni", "dr.borta", "no active staff account dr.borta"),
        (2, "", "dr.lund", "a reason is required"),
        (2, "  x ", "dr.lund", "a reason is required"),
        (3, "Kronisk hyperkapni", "dr.lund", "SpO2 scale must be 1 (standard) or 2"),
    ],
)
def test_a_scale_order_is_refused_with_a_reason(
    db: psycopg.Connection, ward: dict, scale: int, reason: str, by: str, message: str
) -> None:
    order_spo2_scale(db, ward["patient_id"], 2, "Kronisk hyperkapni", "dr.lund")
    before = _orders(db)
    with pytest.raises(Refused) as refused:
        order_spo2_scale(db, ward["patient_id"], scale, reason, by)
    assert str(refused.value).startswith(message)
    assert _orders(db) == before  # the order in force was not revoked either


# --- manual observations ----------------------------------------------------------------------


def _manual(db: psycopg.Connection) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT time, respiratory_rate, consciousness, on_oxygen, oxygen_l_min, source, entered_by,"
        " evaluated_at FROM manual_observations ORDER BY id"
    ).fetchall()


def _observations(db: psycopg.Connection) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT time, vital, value, unit, quality, gateway_id, device_id, characteristic, received_at"
        " FROM observations ORDER BY time"
    ).fetchall()


def test_a_nurse_records_rr_consciousness_and_oxygen(
    db: psycopg.Connection, database_url: str, ward: dict
) -> None:
    patient = ward["patient_id"]
    at = NOW - timedelta(minutes=20)
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        observation_id = record_manual_observation(
            db, patient, at=at, respiratory_rate=22, consciousness="c", on_oxygen=True, oxygen_l_min=2,
            entered_by_username="sara", now=NOW,
        )  # fmt: skip
        [note] = list(listener.notifies(timeout=2, stop_after=1))
    assert json.loads(note.payload) == {"kind": "vitals", "ward_id": WARD, "patient_ids": [str(patient)]}
    assert isinstance(observation_id, int)
    assert _manual(db) == [(at, 22.0, "C", True, 2.0, "nurse", ward["nurse"], None)]
    assert _observations(db) == [
        (at, "respiratory_rate", 22.0, "/min", [], "manual", "staff:sara", "manual", NOW)
    ]
    latest = db.execute("SELECT vital, time, value, unit, quality FROM latest_vitals").fetchall()
    assert latest == [("respiratory_rate", at, 22.0, "/min", [])]

    # An earlier note entered afterwards is stored but does not hide the newer latest value.
    record_manual_observation(
        db, patient, at=at - timedelta(hours=3), respiratory_rate=14, entered_by_username="dr.lund", now=NOW
    )
    assert db.execute("SELECT value FROM latest_vitals").fetchall() == [(22.0,)]
    assert [r[2] for r in _observations(db)] == [14.0, 22.0]
    # A newer one moves it.
    record_manual_observation(db, patient, at=NOW, respiratory_rate=18, entered_by_username="sara", now=NOW)
    assert db.execute("SELECT time, value FROM latest_vitals").fetchall() == [(NOW, 18.0)]


def test_the_patient_reports_without_rr_and_no_reading_is_written(db: psycopg.Connection, ward: dict) -> None:
    record_manual_observation(
        db, ward["patient_id"], at=NOW, consciousness="A", on_oxygen=False, source="patient", now=NOW
    )
    assert _manual(db) == [(NOW, None, "A", False, None, "patient", None, None)]
    assert _observations(db) == []
    assert db.execute("SELECT count(*) FROM latest_vitals").fetchone() == (0,)


def test_a_patient_reported_rr_is_a_patient_device_reading(db: psycopg.Connection, ward: dict) -> None:
    record_manual_observation(db, ward["patient_id"], at=NOW, respiratory_rate=20, source="patient", now=NOW)
    assert [(r[5], r[6]) for r in _observations(db)] == [("manual", "patient")]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"respiratory_rate": 0}, "respiration rate 0 /min is not possible (between 2 and 80)"),
        ({"respiratory_rate": 81}, "respiration rate 81 /min is not possible (between 2 and 80)"),
        ({"respiratory_rate": float("nan")}, "respiration rate nan /min is not possible"),
        ({"on_oxygen": False, "oxygen_l_min": 2}, "an oxygen flow is given but the patient is not recorded"),
        ({"oxygen_l_min": 2}, "an oxygen flow is given but the patient is not recorded as on oxygen"),
        ({"on_oxygen": True, "oxygen_l_min": 0}, "oxygen flow must be above 0 and at most 15 l/min, got 0"),
        ({"on_oxygen": True, "oxygen_l_min": 16}, "oxygen flow must be above 0 and at most 15 l/min, got 16"),
        ({"consciousness": "B"}, "consciousness must be one of A, C, V, P, U (ACVPU), got 'B'"),
        (
            {"consciousness": None},
            "give at least one of respiration rate, consciousness (ACVPU) or air/oxygen",
        ),
        ({"at": NOW + timedelta(minutes=3)}, "observation time 2025-03-04T13:03:00+00:00 is in the future"),
        ({"at": NOW - timedelta(days=8)}, "observation time 2025-02-24T13:00:00+00:00 is more than 7 days"),
        ({"at": datetime(2025, 3, 4, 13, 0)}, "observation time must carry a time zone"),
        ({"entered_by_username": None}, "an observation by staff needs the username of who made it"),
        ({"source": "patient"}, "an observation reported by the patient has no staff username"),
        ({"source": "relative"}, "source must be 'nurse' (staff) or 'patient', got 'relative'"),
        ({"entered_by_username": "it.admin"}, "it.admin is an admin; only nurses and physicians record"),
        ({"entered_by_username": "dr.borta"}, "no active staff account dr.borta"),
    ],
)
def test_a_manual_observation_is_refused_with_a_reason(
    db: psycopg.Connection, ward: dict, fields: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {
        "at": NOW - timedelta(minutes=5),
        "consciousness": "A",
        "entered_by_username": "sara",
    }
    args.update(fields)
    with pytest.raises(Refused) as refused:
        record_manual_observation(db, ward["patient_id"], now=NOW, **args)
    assert str(refused.value).startswith(message)
    assert _manual(db) == []
    assert _observations(db) == []


def test_a_time_just_ahead_of_the_clock_is_someone_typing_the_next_minute(
    db: psycopg.Connection, ward: dict
) -> None:
    at = NOW + timedelta(minutes=1)
    record_manual_observation(
        db, ward["patient_id"], at=at, consciousness="A", entered_by_username="sara", now=NOW
    )
    assert [r[0] for r in _manual(db)] == [at]


def test_no_observation_for_a_discharged_patient(db: psycopg.Connection, ward: dict) -> None:
    db.execute("UPDATE patients SET discharged_at = now()")
    with pytest.raises(Refused, match="was discharged"):
        record_manual_observation(
            db, ward["patient_id"], at=NOW, respiratory_rate=16, entered_by_username="sara", now=NOW
        )
    assert _observations(db) == []
