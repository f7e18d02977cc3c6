"""A nurse or physician records what they observed at a visit: respiration rate, consciousness (ACVPU),
air or oxygen. One transaction: the manual_observations row, the respiration rate also as an
ordinary observation (charted and thresholded like a device's, latest_vitals only if newer, as
ingest does), an access_log row and a NOTIFY so open ward overviews refresh.

The body's shape is dashboard.bodies.ObservationRequest; when an observation may have been made is
care.admin's (check_observation_time, the window `hemma observe` has too). The alert engine scores
the row later (NEWS2 needs consciousness and air/oxygen) and sets `evaluated_at`; the dashboard
never does.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from care import admin, permissions
from care.manual import INSERT_RR_OBSERVATION, UPSERT_RR_LATEST
from care.permissions import Action
from dashboard.access_log import RECORD_OBSERVATION, AccessEntry, write_access_log
from dashboard.bodies import ObservationRequest
from dashboard.care_orders import translate
from dashboard.errors import PatientDischarged, PatientNotFound, RoleForbidden, WardForbidden
from dashboard.model import ManualObservationView, StaffUser
from storage.db import NOTIFY_CHANNEL

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)


def observation_time(at: datetime | None, now: datetime) -> datetime:
    """The observation's time: now when not given, else within care.admin's window (Swedish refusal)."""
    if at is None:
        return now
    try:
        admin.check_observation_time(at, now)
    except admin.AdminError as exc:
        raise translate(exc) from exc
    return at


async def record_observation(
    conn: psycopg.AsyncConnection,
    *,
    patient_id: uuid.UUID,
    staff: StaffUser,
    observation: ObservationRequest,
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
        at = observation_time(observation.time, now)
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
