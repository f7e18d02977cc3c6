"""A month of history for the record's charts: Oskar, heart failure, whose weight climbs 2,8 kg in his last
3 days, streaming SpO2 and pulse for 2 days, spot checks of blood pressure and temperature, a nurse's
visits (respiration rate, consciousness, air), a desaturation alert acknowledged by a nurse, a daily
heart-failure check, and a physician's personal SpO2 limit. Rows go straight into the tables (as a
restore would) and `storage.rollups.rebuild` makes the rollups, as `hemma rollups rebuild` does."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from care.enrolment import enrol_patient, ensure_ward
from care.limits import set_personal_threshold
from care.staff import create_staff_user
from storage import rollups
from tests.support.ward_seed import PASSWORD

if TYPE_CHECKING:
    import psycopg

# Days ago → kg, weighed at 07:00-ish each morning (here: whole days before now, minus 2 hours).
WEIGHTS = {d: 78.0 + (0.1 if d % 2 else 0.0) for d in range(29, 3, -1)} | {3: 78.4, 2: 79.3, 1: 80.1, 0: 81.2}


@dataclass(frozen=True, slots=True)
class ChartWard:
    oskar: uuid.UUID
    other_ward_patient: uuid.UUID
    nurse_id: int
    alert_id: int


def _obs(db: psycopg.Connection, patient: uuid.UUID, vital: str, unit: str, series: str, value: str) -> None:
    """Observations at the times of `series` (a generate_series over g) with the value expression."""
    db.execute(
        "INSERT INTO observations (time, patient_id, vital, value, unit, measurement_id, gateway_id,"
        f" device_id, characteristic, received_at) SELECT t, %s, %s, {value}, %s, gen_random_uuid(),"
        " 'gw-oskar', 'AA:BB:CC:DD:EE:01', '2A5F', t"
        f" FROM (SELECT *, date_trunc('minute', now()) - g AS t FROM {series}) s",
        (patient, vital, unit),
    )
    db.execute(
        "INSERT INTO latest_vitals (patient_id, vital, time, value, unit)"
        " SELECT patient_id, vital, time, value, unit FROM observations"
        " WHERE patient_id = %s AND vital = %s ORDER BY time DESC LIMIT 1"
        " ON CONFLICT (patient_id, vital) DO UPDATE SET time = EXCLUDED.time, value = EXCLUDED.value",
        (patient, vital),
    )


def seed_chart_ward(db: psycopg.Connection) -> ChartWard:
    ensure_ward(db, "avd-hjarta", "Hjärtsvikt i hemmet")
    ensure_ward(db, "avd-syd", "Avdelning Syd")
    oskar = enrol_patient(
        db, ward_id="avd-hjarta", display_name="Oskar Olsson", gateway_id="gw-oskar", birth_year=1944,
        care_reason="Hjärtsvikt, NYHA III",
    ).patient_id  # fmt: skip
    other = enrol_patient(
        db, ward_id="avd-syd", display_name="Cecilia Ceder", gateway_id="gw-cecilia"
    ).patient_id
    db.execute("UPDATE patients SET enrolled_at = now() - interval '40 days' WHERE id = %s", (oskar,))
    nurse_id = create_staff_user(
        db, username="nurse.hjarta", display_name="Sara Sjöström", role="nurse", password=PASSWORD,
        ward_ids=["avd-hjarta"],
    )  # fmt: skip
    create_staff_user(
        db, username="dr.hjarta", display_name="Erik Lund", role="physician", password=PASSWORD,
        ward_ids=["avd-hjarta"],
    )  # fmt: skip
    create_staff_user(
        db,
        username="nurse.syd",
        display_name="Per Syd",
        role="nurse",
        password=PASSWORD,
        ward_ids=["avd-syd"],
    )
    # Streaming SpO2 and pulse, one reading a minute for 2 days; a 10-minute dip to 86 % 5 hours ago.
    minutes = "(SELECT make_interval(mins => m) AS g FROM generate_series(1, 2880) m) x"
    _obs(db, oskar, "spo2", "%", minutes,
         "CASE WHEN g BETWEEN interval '5 hours' AND interval '5 hours 9 minutes' THEN 86"
         " ELSE 93 + (extract(epoch FROM g)::int / 60) %% 5 END")  # fmt: skip
    _obs(db, oskar, "pulse_rate", "/min", minutes, "70 + (extract(epoch FROM g)::int / 60) %% 11")
    four_hourly = "(SELECT make_interval(mins => m) AS g FROM generate_series(30, 2880, 240) m) x"
    _obs(db, oskar, "systolic_bp", "mm[Hg]", four_hourly, "128")
    _obs(db, oskar, "body_temperature", "Cel", four_hourly, "37.1")
    days = ", ".join(f"({d}, {kg})" for d, kg in WEIGHTS.items())
    _obs(db, oskar, "body_weight", "kg",
         f"(VALUES {days}) AS w(d, kg), LATERAL (SELECT make_interval(days => d, hours => 2) AS g) i",
         "kg")  # fmt: skip
    # A nurse's visits in the last 24 h: respiration rate (also an observation), consciousness, air.
    for hours in (2, 8, 14, 20):
        db.execute(
            "WITH m AS (INSERT INTO manual_observations (patient_id, time, respiratory_rate, consciousness,"
            " on_oxygen, source, entered_by)"
            " VALUES (%s, date_trunc('minute', now()) - make_interval(hours => %s), 18, 'A', false, 'nurse',"
            " %s) RETURNING time)"
            " INSERT INTO observations (time, patient_id, vital, value, unit, measurement_id, gateway_id,"
            " device_id, characteristic, received_at) SELECT time, %s, 'respiratory_rate', 18, '/min',"
            " gen_random_uuid(), 'manual', 'staff:nurse.hjarta', 'manual', time FROM m",
            (oskar, hours, nurse_id, oskar),
        )
    db.execute(
        "INSERT INTO latest_vitals (patient_id, vital, time, value, unit) VALUES"
        " (%s, 'respiratory_rate', date_trunc('minute', now()) - interval '2 hours', 18, '/min')",
        (oskar,),
    )
    alert_id = db.execute(
        "INSERT INTO alerts (patient_id, ward_id, rule, vital, priority, state, message, value, threshold,"
        " observed_at, opened_at, acknowledged_at, acknowledged_by) VALUES (%s, 'avd-hjarta', 'spo2_low',"
        " 'spo2', 'high', 'acknowledged', %s, 86, 92,"
        " date_trunc('minute', now()) - interval '4 hours 59 minutes',"
        " date_trunc('minute', now()) - interval '4 hours 58 minutes',"
        " date_trunc('minute', now()) - interval '4 hours 50 minutes', %s) RETURNING id",
        (oskar, "SpO₂ 86 % under gränsen 92 %", nurse_id),
    ).fetchone()[0]
    db.execute(
        "INSERT INTO alert_events (alert_id, at, kind, actor, priority, note) VALUES"
        " (%s, date_trunc('minute', now()) - interval '4 hours 58 minutes', 'opened', 'engine', 'high',"
        " NULL),"
        " (%s, date_trunc('minute', now()) - interval '4 hours 50 minutes', 'acknowledged',"
        " 'staff:nurse.hjarta', NULL, 'Ringt patienten, mår bra')",
        (alert_id, alert_id),
    )
    db.execute(
        "INSERT INTO questionnaire_responses (response_id, patient_id, questionnaire, questionnaire_version,"
        " authored_at, source, response, score, flags, flag_priorities) VALUES (gen_random_uuid(), %s,"
        " 'hemma-hf-daily', '1',"
        " date_trunc('minute', now()) - interval '3 hours', 'simulator', '{}', 3,"
        " ARRAY['breathless-worse'], ARRAY['high'])",
        (oskar,),
    )
    set_personal_threshold(
        db, patient_id=oskar, rule="spo2_low", priority="high", limit=88, reason="KOL, mål 88–92 %",
        set_by_username="dr.hjarta",
    )  # fmt: skip
    rollups.rebuild(db)
    return ChartWard(oskar, other, nurse_id, alert_id)
