"""A nurse or physician records what they observed at a visit: respiration rate, consciousness (ACVPU),
air or oxygen. One transaction: the manual_observations row, the respiration rate also as an
ordinary observation (charted and thresholded like a device's, latest_vitals only if newer, as
ingest does), an access_log row and a NOTIFY so open ward overviews refresh.

The alert engine scores the row later (NEWS2 needs consciousness and air/oxygen) and sets
`evaluated_at`; the dashboard never does.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from dashboard.access_log import RECORD_OBSERVATION, AccessEntry, write_access_log
from dashboard.errors import InvalidInput, PatientDischarged, PatientNotFound, RoleForbidden, WardForbidden
from dashboard.model import ACVPU_LABELS, ManualObservationView, StaffUser, display_zone
from hemma import permissions
from hemma.db import NOTIFY_CHANNEL
from hemma.manual import INSERT_RR_OBSERVATION, UPSERT_RR_LATEST
from hemma.permissions import Action

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

RR_MIN, RR_MAX = 1, 80  # breaths per minute, as the manual_observations check allows
OXYGEN_MAX_L_MIN = 15.0
LATEST_BACK = timedelta(hours=12)  # how far back an observation may be entered
FUTURE_SLACK = timedelta(minutes=5)  # a clock a little ahead is not an error
_FIELDS = {"respiratory_rate", "consciousness", "on_oxygen", "oxygen_l_min", "time"}


@dataclass(frozen=True, slots=True)
class ObservationInput:
    respiratory_rate: int | None
    consciousness: str | None
    on_oxygen: bool | None
    oxygen_l_min: float | None
    time: datetime | None  # None: now


def parse_observation(body: object) -> ObservationInput:
    """The request body as an ObservationInput; InvalidInput (HTTP 422) with a Swedish message otherwise."""
    if not isinstance(body, dict):
        raise InvalidInput("Förfrågan måste vara ett JSON-objekt")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise InvalidInput(f"Okänt fält: {unknown[0][:40]}", unknown[0][:40])
    rr = _respiratory_rate(body.get("respiratory_rate"))
    consciousness = body.get("consciousness")
    if consciousness == "":
        consciousness = None
    if consciousness is not None and consciousness not in ACVPU_LABELS:
        raise InvalidInput("Medvetandegrad anges med A, C, V, P eller U", "consciousness")
    on_oxygen = body.get("on_oxygen")
    if on_oxygen is not None and not isinstance(on_oxygen, bool):
        raise InvalidInput("Ange luft eller syrgas", "on_oxygen")
    flow = _oxygen_flow(body.get("oxygen_l_min"), on_oxygen)
    if rr is None and consciousness is None and on_oxygen is None:
        raise InvalidInput("Ange minst en av andningsfrekvens, medvetandegrad och luft/syrgas")
    return ObservationInput(rr, consciousness, on_oxygen, flow, _time(body.get("time")))


def _respiratory_rate(value: Any) -> int | None:
    if value is None or value == "":
        return None
    message = f"Andningsfrekvensen måste vara ett heltal mellan {RR_MIN} och {RR_MAX} /min"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(message, "respiratory_rate")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise InvalidInput(message, "respiratory_rate")
    if not RR_MIN <= value <= RR_MAX:
        raise InvalidInput(message, "respiratory_rate")
    return int(value)


def _oxygen_flow(value: Any, on_oxygen: bool | None) -> float | None:
    if value is None or value == "":
        return None
    if on_oxygen is not True:
        raise InvalidInput("Syrgasflöde kan bara anges när patienten får syrgas", "oxygen_l_min")
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= OXYGEN_MAX_L_MIN
    ):
        raise InvalidInput("Syrgasflödet måste vara större än 0 och högst 15 l/min", "oxygen_l_min")
    return float(value)


def _time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidInput("Ogiltig tidpunkt", "time")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput("Ogiltig tidpunkt", "time") from None
    if at.tzinfo is None:  # a time without zone is Swedish local time, as staff read the clock
        at = at.replace(tzinfo=display_zone())
    return at


def check_time(at: datetime | None, now: datetime) -> datetime:
    """The observation's time: now when not given, at most 12 h back and 5 min ahead."""
    if at is None:
        return now
    if at > now + FUTURE_SLACK:
        raise InvalidInput("Tidpunkten kan inte ligga i framtiden", "time")
    if at < now - LATEST_BACK:
        raise InvalidInput("Tidpunkten får ligga högst 12 timmar bakåt", "time")
    return at


async def record_observation(
    conn: psycopg.AsyncConnection,
    *,
    patient_id: uuid.UUID,
    staff: StaffUser,
    observation: ObservationInput,
    client_address: str | None,
) -> ManualObservationView:
    """Store one manual observation (and its respiration rate as an observation); audited and announced."""
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT ward_id, discharged_at IS NOT NULL, now() FROM patients WHERE id = %s FOR SHARE",
            (patient_id,),
        )
        row = await cur.fetchone()
        if row is None:
            raise PatientNotFound(patient_id)
        ward_id, discharged, now = row
        if not staff.can_see(ward_id):
            raise WardForbidden(ward_id)
        if not permissions.may(staff.role, Action.RECORD_OBSERVATION):
            raise RoleForbidden(staff.role, permissions.refusal_sv(Action.RECORD_OBSERVATION))
        if discharged:
            raise PatientDischarged(patient_id)
        at = check_time(observation.time, now)
        cur = await conn.execute(
            "INSERT INTO manual_observations (patient_id, time, respiratory_rate, consciousness, on_oxygen,"
            " oxygen_l_min, source, entered_by) VALUES (%s, %s, %s, %s, %s, %s, 'nurse', %s)"
            " RETURNING id, entered_at",
            (
                patient_id,
                at,
                observation.respiratory_rate,
                observation.consciousness,
                observation.on_oxygen,
                observation.oxygen_l_min,
                staff.id,
            ),
        )
        observation_id, entered_at = await cur.fetchone()  # type: ignore[misc]
        if observation.respiratory_rate is not None:
            await _store_respiratory_rate(conn, patient_id, at, observation.respiratory_rate, staff)
        await write_access_log(
            conn,
            [
                AccessEntry(
                    staff, patient_id, RECORD_OBSERVATION, f"observation:{observation_id}", client_address
                )
            ],
        )
        payload = {"kind": "vitals", "ward_id": ward_id, "patient_ids": [str(patient_id)]}
        await conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, json.dumps(payload)))
    log.info("manual observation %s recorded by staff %s", observation_id, staff.id)
    return ManualObservationView(
        id=observation_id,
        time=at,
        respiratory_rate=observation.respiratory_rate,
        consciousness=observation.consciousness,
        on_oxygen=observation.on_oxygen,
        oxygen_l_min=observation.oxygen_l_min,
        source="nurse",
        entered_by=staff.display_name,
        entered_at=entered_at,
        evaluated=False,
    )


async def _store_respiratory_rate(
    conn: psycopg.AsyncConnection, patient_id: uuid.UUID, at: datetime, value: int, staff: StaffUser
) -> None:
    """The count as an ordinary observation, and latest_vitals only if it is the newest (as ingest does)."""
    await conn.execute(
        INSERT_RR_OBSERVATION,
        (at, patient_id, value, uuid.uuid4(), f"staff:{staff.username}", datetime.now(UTC)),
    )
    await conn.execute(UPSERT_RR_LATEST, (patient_id, at, value))
