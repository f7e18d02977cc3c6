"""Two wards and three enrolled patients, the setting the dashboard's engine-era tests share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from care.enrolment import EnrolledPatient, enrol_patient, ensure_ward
from care.staff import create_staff_user

if TYPE_CHECKING:
    import psycopg

PASSWORD = "rätt häst batteri häftklammer"


def seed_two_wards(
    db: psycopg.Connection, staff: Sequence[tuple[str, str, str, list[str]]]
) -> tuple[EnrolledPatient, EnrolledPatient, EnrolledPatient, list[int]]:
    """Anna and Bertil in avd-norr, Cecilia in avd-syd, and the staff given as
    (username, display name, role, wards), whose ids come back in the same order."""
    ensure_ward(db, "avd-norr", "Avdelning Norr")
    ensure_ward(db, "avd-syd", "Avdelning Syd")
    anna = enrol_patient(
        db, ward_id="avd-norr", display_name="Anna Andersson", gateway_id="gw-anna", birth_year=1948
    )
    bertil = enrol_patient(
        db, ward_id="avd-norr", display_name="Bertil Berg", gateway_id="gw-bertil", birth_year=1939
    )
    cecilia = enrol_patient(db, ward_id="avd-syd", display_name="Cecilia Ceder", gateway_id="gw-cecilia")
    ids = [
        create_staff_user(db, username=u, display_name=n, role=r, password=PASSWORD, ward_ids=w)
        for u, n, r, w in staff
    ]
    return anna, bertil, cecilia, ids


def set_vital(
    db: psycopg.Connection,
    patient: EnrolledPatient,
    vital: str,
    value: float,
    unit: str,
    minutes_ago: float = 0,
    quality: tuple[str, ...] = (),
) -> None:
    """A reading as ingest stores it: an observation row, and the latest value."""
    db.execute(
        "INSERT INTO observations (time, patient_id, vital, value, unit, quality, measurement_id, gateway_id,"
        " device_id, characteristic, received_at) VALUES (now() - make_interval(secs => %s), %s, %s, %s, %s,"
        " %s, gen_random_uuid(), %s, 'AA:BB:CC:DD:EE:01', '2A5E', now())",
        (minutes_ago * 60, patient.patient_id, vital, value, unit, list(quality), patient.gateway_id),
    )
    db.execute(
        "INSERT INTO latest_vitals (patient_id, vital, time, value, unit, quality)"
        " VALUES (%s, %s, now() - make_interval(secs => %s), %s, %s, %s) ON CONFLICT (patient_id, vital)"
        " DO UPDATE SET value = EXCLUDED.value, time = EXCLUDED.time, quality = EXCLUDED.quality",
        (patient.patient_id, vital, minutes_ago * 60, value, unit, list(quality)),
    )


def add_alert(
    db: psycopg.Connection,
    patient: EnrolledPatient,
    *,
    priority: str = "high",
    state: str = "open",
    rule: str = "spo2_low",
    condition: str = "physiological",
    message: str = "SpO₂ 85 % under gränsen 88 %",
    vital: str | None = "spo2",
    value: float | None = 85.0,
) -> int:
    """An alert as the engine stores it; a pending one carries its hold's end."""
    row = db.execute(
        "INSERT INTO alerts (patient_id, ward_id, rule, vital, priority, state, condition, message, value,"
        " observed_at, resolved_at, pending_until) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now(),"
        " CASE WHEN %s = 'resolved' THEN now() END,"
        " CASE WHEN %s = 'pending' THEN now() + interval '10 minutes' END) RETURNING id",
        (
            patient.patient_id,
            patient.ward_id,
            rule,
            vital,
            priority,
            state,
            condition,
            message,
            value,
            state,
            state,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])
