"""A nurse or physician records what they observed at a visit: respiration rate, consciousness (ACVPU),
air or oxygen.

The decision is care.observations.record_observation, the generator `hemma observe` runs too: the
window, the ranges, who may, the rows (the respiration rate also as an ordinary observation), the
access_log row and the NOTIFY, in one transaction on the dashboard pool's connection. The body's
shape is dashboard.bodies.ObservationRequest. The alert engine scores the row later; the dashboard
never does.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import psycopg

from care.acting import Origin, execute_async
from care.observations import Observation, ObservationRecorded
from care.observations import record_observation as record
from care.refusals import Refused
from dashboard.bodies import ObservationRequest
from dashboard.model import StaffUser
from dashboard.patient_record import ManualObservationView
from dashboard.refusals import action_error

log = logging.getLogger(__name__)


async def record_observation(
    conn: psycopg.AsyncConnection[Any],
    *,
    patient_id: uuid.UUID,
    staff: StaffUser,
    observation: ObservationRequest,
    origin: Origin,
) -> ManualObservationView:
    """Store one manual observation; audited and announced. A time not given is now."""
    observed = Observation(observation.respiratory_rate, observation.consciousness, observation.on_oxygen,
                           observation.oxygen_l_min)  # fmt: skip
    steps = record(patient_id=patient_id, observed=observed, at=observation.time, by=staff.username,
                   origin=origin)  # fmt: skip
    try:
        done: ObservationRecorded = await execute_async(conn, steps)
    except Refused as exc:
        raise action_error(exc) from exc
    log.info("manual observation %s recorded by staff %s", done.id, staff.id)
    return ManualObservationView(
        id=done.id,
        time=done.time,
        respiratory_rate=done.observation.respiratory_rate,
        consciousness=done.observation.consciousness,
        on_oxygen=done.observation.on_oxygen,
        oxygen_l_min=done.observation.oxygen_l_min,
        source=done.source,
        entered_by=staff.display_name,
        entered_at=done.entered_at,
        evaluated=False,
    )
