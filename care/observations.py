"""What a person observed: NEWS2's parts no device measures (respiration rate counted by a nurse,
consciousness on ACVPU, air or oxygen), entered by staff at a visit or reported by the patient.

One decision for every entry point (`hemma observe`, the record's observation form, later the
patient app): `record_observation` below, with its window and ranges.

A respiration rate is stored twice: in `manual_observations` (with who and how) and as an ordinary
`observations` row, so it is charted and thresholded like a device's reading. The alert engine
scores the row later (manual_observations.evaluated_at); nothing here scores.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from care.access_log import PATIENT_REPORTED
from care.acting import Origin, audited, execute, in_care, patient_ward, staff_for_patient
from care.permissions import Action
from care.refusals import RefusalCode, Refused
from core.events import VitalsChanged
from core.vitals import VITALS, Vital
from storage import rollups
from storage.steps import Notify, Sql, Steps

# When an observation may have been made. One window for every entry point (the CLI allowed 7 days,
# an earlier dashboard 12 hours): 7 days back, 2 minutes ahead.
# - Back: entering an observation is documenting it (Patientdatalagen 3 kap.), not scoring it. A
#   visit noted on paper during a network outage, or entered after a night shift, must still reach
#   the record at the time it was made. Whether it still counts for NEWS2 is the engine's decision
#   (alerts.news2: manual parameters are fresh for 12 h), so a late entry is kept but never makes a
#   stale score look current. Beyond a week, a time is likelier a typo in the month or year.
# - Ahead: a little ahead of the server's clock is someone typing the next minute; more is a wrong date.
MANUAL_MAX_AGE = timedelta(days=7)
MANUAL_FUTURE_TOLERANCE = timedelta(minutes=2)
# Respiration rate: the plausible range of core.vitals (2-80 /min), the same for a device and a
# person, in whole breaths. The dashboard once allowed 1 /min (and the table's CHECK still did until
# migration 0008): NEWS2 scores 1 and 2 alike (<= 8: 3 points), a true count of 1 over a full minute
# is a respiratory arrest, treated at the bedside, not charted, and a lone "1" is likelier the first
# digit of 10-19 than a count. A count over a full minute (RCP NEWS2) is a whole number.
RESPIRATION_MIN = VITALS[Vital.RESPIRATORY_RATE].plausible_min
RESPIRATION_MAX = VITALS[Vital.RESPIRATORY_RATE].plausible_max
OXYGEN_MAX_L_MIN = 15.0  # the table's CHECK: a home concentrator or cylinder gives at most 15 l/min
ACVPU = ("A", "C", "V", "P", "U")  # NEWS2: alert, new confusion, voice, pain, unresponsive
SOURCES = ("nurse", "patient")

MANUAL_GATEWAY_ID = "manual"
MANUAL_CHARACTERISTIC = "manual"
# The observations row of a respiration rate counted by a person (no kit, no device). Parameters:
# time, patient_id, value, measurement_id, device_id ("staff:<username>" or "patient"), received_at.
# The chart rollups (storage.rollups) take the row in the same statement, as ingest's batches do.
INSERT_RR_OBSERVATION = (
    "WITH ins AS (INSERT INTO observations (time, patient_id, vital, value, unit, quality, measurement_id,"
    f" gateway_id, device_id, characteristic, received_at) VALUES (%s, %s, 'respiratory_rate', %s, '/min',"
    f" '{{}}', %s, '{MANUAL_GATEWAY_ID}', %s, '{MANUAL_CHARACTERISTIC}', %s)"
    " RETURNING time, patient_id, vital, value, quality) " + rollups.upsert_from("ins")
)
# Parameters: patient_id, time, value. latest_vitals moves only forward, as in ingest
# (ingest/writer.py): a note about this morning never hides a reading from this afternoon.
UPSERT_RR_LATEST = (
    "INSERT INTO latest_vitals AS l (patient_id, vital, time, value, unit, quality)"
    " VALUES (%s, 'respiratory_rate', %s, %s, '/min', '{}') ON CONFLICT (patient_id, vital) DO UPDATE"
    " SET time = EXCLUDED.time, value = EXCLUDED.value, unit = EXCLUDED.unit, quality = EXCLUDED.quality"
    " WHERE l.time <= EXCLUDED.time"
)

NEWS2_DEVICE_VITALS = (
    "respiratory_rate",
    "spo2",
    "systolic_bp",
    "pulse_rate",
    "heart_rate",
    "body_temperature",
)
# The newest trustworthy value of each NEWS2 vital per patient (a reading with a doubtful quality
# flag never scores), for the engine and the dashboard alike. Parameters: patients (uuid[]), vitals
# (text[]), until (timestamptz), doubtful (text[]: alerts.thresholds.DOUBTFUL_QUALITY).
NEWS2_LATEST_TRUSTED = (
    "SELECT t.patient_id, v.vital, o.value, o.time"
    " FROM unnest(%(patients)s::uuid[]) AS t(patient_id) CROSS JOIN unnest(%(vitals)s::text[]) AS v(vital)"
    " CROSS JOIN LATERAL (SELECT value, time FROM observations WHERE patient_id = t.patient_id"
    "   AND vital = v.vital AND time <= %(until)s AND NOT quality && %(doubtful)s"
    "   ORDER BY time DESC LIMIT 1) o"
)


@dataclass(frozen=True, slots=True)
class Observation:
    """What was observed, as entered (None: not assessed)."""

    respiratory_rate: float | None = None
    consciousness: str | None = None
    on_oxygen: bool | None = None
    oxygen_l_min: float | None = None


@dataclass(frozen=True, slots=True)
class ObservationRecorded:
    id: int
    patient_id: uuid.UUID
    ward_id: str
    time: datetime
    entered_at: datetime
    observation: Observation
    source: str


def check_observation_time(at: datetime, now: datetime) -> None:
    """When a manual observation may have been made: zoned, at most MANUAL_FUTURE_TOLERANCE after `now`
    and at most MANUAL_MAX_AGE before it."""
    if at.tzinfo is None:
        raise Refused(RefusalCode.OBSERVATION_ZONE)
    if at > now + MANUAL_FUTURE_TOLERANCE:
        raise Refused(RefusalCode.OBSERVATION_IN_FUTURE, at=at)
    if at < now - MANUAL_MAX_AGE:
        raise Refused(RefusalCode.OBSERVATION_TOO_OLD, at=at, days=MANUAL_MAX_AGE.days)


def check_observation(observed: Observation) -> Observation:
    """The observation's values, refused by code; returns it with ACVPU in capitals."""
    rr, consciousness = observed.respiratory_rate, observed.consciousness
    if rr is None and consciousness is None and observed.on_oxygen is None:
        raise Refused(RefusalCode.OBSERVATION_EMPTY)
    if rr is not None:
        if math.isnan(rr) or not RESPIRATION_MIN <= rr <= RESPIRATION_MAX:
            raise Refused(RefusalCode.RESPIRATION_IMPOSSIBLE, value=rr, minimum=RESPIRATION_MIN,
                          maximum=RESPIRATION_MAX)  # fmt: skip
        if rr != int(rr):
            raise Refused(RefusalCode.RESPIRATION_NOT_WHOLE, value=rr, minimum=RESPIRATION_MIN,
                          maximum=RESPIRATION_MAX)  # fmt: skip
    if consciousness is not None:
        consciousness = consciousness.strip().upper()
        if consciousness not in ACVPU:
            raise Refused(RefusalCode.CONSCIOUSNESS_CHOICE, given=consciousness)
    flow = observed.oxygen_l_min
    if flow is not None:
        if observed.on_oxygen is not True:
            raise Refused(RefusalCode.OXYGEN_FLOW_WITHOUT_OXYGEN)
        if math.isnan(flow) or not 0 < flow <= OXYGEN_MAX_L_MIN:
            raise Refused(RefusalCode.OXYGEN_FLOW_RANGE, flow=flow, maximum=OXYGEN_MAX_L_MIN)
    return Observation(rr, consciousness, observed.on_oxygen, flow)


def check_source(source: str, by: str | None) -> None:
    """Staff observations name who made them; the patient's own report names no staff account."""
    if source == "nurse":
        if not by:
            raise Refused(RefusalCode.OBSERVER_MISSING)
    elif source == "patient":
        if by is not None:
            raise Refused(RefusalCode.PATIENT_REPORT_WITH_STAFF)
    else:
        raise Refused(RefusalCode.OBSERVATION_SOURCE, source=source)


def record_observation(
    *,
    patient_id: uuid.UUID,
    observed: Observation,
    at: datetime | None,
    by: str | None,
    source: str = "nurse",
    origin: Origin | None,
    now: datetime | None = None,
) -> Steps[ObservationRecorded]:
    """Store one manual observation (its respiration rate also as an observation), audited and
    announced. `at` None is now; `now` None is the database's clock."""
    if now is None:
        clock = yield Sql("SELECT now()", fetch="one")
        now = clock[0]
    at = now if at is None else at
    check_observation_time(at, now)
    observed = check_observation(observed)
    check_source(source, by)
    staff = None
    if by is not None:
        staff, ward_id = yield from staff_for_patient(by, Action.RECORD_OBSERVATION, patient_id)
    else:
        ward_id, discharged_at = yield from patient_ward(patient_id)
        in_care(patient_id, discharged_at)
    row = yield Sql(
        "INSERT INTO manual_observations (patient_id, time, respiratory_rate, consciousness, on_oxygen,"
        " oxygen_l_min, source, entered_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id, entered_at",
        (patient_id, at, observed.respiratory_rate, observed.consciousness, observed.on_oxygen,
         observed.oxygen_l_min, source, staff.id if staff else None),
        fetch="one",
    )  # fmt: skip
    observation_id, entered_at = int(row[0]), row[1]
    if observed.respiratory_rate is not None:
        device = f"staff:{by}" if by else "patient"
        yield Sql(
            INSERT_RR_OBSERVATION, (at, patient_id, observed.respiratory_rate, uuid.uuid4(), device, now)
        )
        yield Sql(UPSERT_RR_LATEST, (patient_id, at, observed.respiratory_rate))
    context = f"observation:{observation_id}" + (" patient-reported" if staff is None else "")
    yield from audited(origin, staff=staff, username=PATIENT_REPORTED, patient_id=patient_id,
                       action=Action.RECORD_OBSERVATION, context=context)  # fmt: skip
    yield Notify(VitalsChanged(ward_id, (patient_id,)))
    return ObservationRecorded(observation_id, patient_id, ward_id, at, entered_at, observed, source)


def record_manual_observation(
    conn: psycopg.Connection[Any],
    patient_id: uuid.UUID,
    *,
    at: datetime,
    respiratory_rate: float | None = None,
    consciousness: str | None = None,
    on_oxygen: bool | None = None,
    oxygen_l_min: float | None = None,
    source: str = "nurse",
    entered_by_username: str | None = None,
    now: datetime | None = None,
    origin: Origin | None = None,
) -> int:
    """record_observation in a transaction of its own (`hemma demo`, tests); returns the row's id."""
    observed = Observation(respiratory_rate, consciousness, on_oxygen, oxygen_l_min)
    return execute(conn, record_observation(patient_id=patient_id, observed=observed, at=at,
                                            by=entered_by_username, source=source, origin=origin,
                                            now=now)).id  # fmt: skip
