"""A physician's order of the NEWS2 SpO2 scale for one patient (migration 0004: spo2_scale_orders).

RCP NEWS2 (2017): scale 2 for hypercapnic respiratory failure, target 88-92 %; the engine also moves
the patient's default SpO2 limits to scale 2's. Physicians only (care.permissions), on every entry
point: `hemma order spo2-scale` and the record's scale form run `order_spo2_scale_steps`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from care.acting import Origin, audited, execute, staff_for_patient
from care.limits import MIN_REASON_LENGTH
from care.permissions import Action
from care.refusals import RefusalCode, Refused
from core.events import VitalsChanged
from storage.steps import Notify, Sql, Steps

SCALES = (1, 2)
# Of a list of patient ids, those ordered on NEWS2 SpO2 scale 2 now: the engine's read
# (ingest.rule_inputs) and the patient app's (care.patient_today).
ON_SCALE_2 = (
    "SELECT patient_id FROM spo2_scale_orders WHERE patient_id = ANY(%s) AND revoked_at IS NULL AND scale = 2"
)


@dataclass(frozen=True, slots=True)
class ScaleOrdered:
    id: int
    patient_id: uuid.UUID
    ward_id: str
    scale: int
    reason: str


def check_scale_order(scale: int, reason: str) -> None:
    """Scale 1 or 2, and the clinical indication as the reason."""
    if scale not in SCALES:
        raise Refused(RefusalCode.SCALE_CHOICE, scale=scale)
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise Refused(RefusalCode.SCALE_REASON_MISSING)


def order_spo2_scale_steps(
    *, patient_id: uuid.UUID, scale: int, reason: str, by: str, origin: Origin | None
) -> Steps[ScaleOrdered]:
    """Score this patient's SpO2 on `scale`.

    The order in force is revoked (revoked_at/by) and the new one inserted in one transaction, so the
    table is the audit trail. Going back to the standard scale is also an order, a scale-1 row with
    its own reason, rather than a bare revocation: why the patient left scale 2 is kept.
    """
    check_scale_order(scale, reason)
    staff, ward_id = yield from staff_for_patient(by, Action.ORDER_SPO2_SCALE, patient_id)
    yield Sql(
        "UPDATE spo2_scale_orders SET revoked_at = now(), revoked_by = %s"
        " WHERE patient_id = %s AND revoked_at IS NULL",
        (staff.id, patient_id),
    )
    row = yield Sql(
        "INSERT INTO spo2_scale_orders (patient_id, scale, reason, ordered_by) VALUES (%s, %s, %s, %s)"
        " RETURNING id",
        (patient_id, scale, reason.strip(), staff.id),
        fetch="one",
    )
    order_id = int(row[0])
    yield from audited(origin, staff=staff, username=by, patient_id=patient_id,
                       action=Action.ORDER_SPO2_SCALE, context=f"spo2_scale_order:{order_id}")  # fmt: skip
    yield Notify(VitalsChanged(ward_id, (patient_id,)))
    return ScaleOrdered(order_id, patient_id, ward_id, scale, reason.strip())


def order_spo2_scale(
    conn: psycopg.Connection[Any],
    patient_id: uuid.UUID,
    scale: int,
    reason: str,
    physician_username: str,
    *,
    origin: Origin | None = None,
) -> int:
    """order_spo2_scale_steps in a transaction of its own (`hemma demo`, tests); returns the order's id."""
    return execute(conn, order_spo2_scale_steps(patient_id=patient_id, scale=scale, reason=reason,
                                                by=physician_username, origin=origin)).id  # fmt: skip
