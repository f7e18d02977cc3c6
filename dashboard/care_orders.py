"""The care team's orders from the patient record: a physician's personal alert limits and SpO2 scale
order (NEWS2 scale 2 for hypercapnic patients), and the monitoring plan a nurse or physician sets.

The decisions are care's commands (care.limits, care.orders, care.plans), the same generators the
`hemma threshold`, `hemma order spo2-scale` and `hemma plan` commands run: validation, who may
(care.permissions), the writes, the access_log row and the NOTIFY, in one transaction on the
dashboard pool's connection. This module only builds each command from the request and the JSON
answer from its typed result; a refusal becomes its status and Swedish text in dashboard.refusals.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import psycopg

from care.acting import CareSteps, Origin, execute_async
from care.contact import ContactRequestClosed, ContactRequestTaken, close, take
from care.enrolment import Discharged, discharge
from care.kit import KitChanged, add_device, remove_device
from care.limits import LimitRevoked, LimitSet, revoke_alert_limit, set_alert_limit
from care.orders import ScaleOrdered, order_spo2_scale_steps
from care.permissions import Action, AnyAction, EquipmentAction
from care.plans import PlanCleared, PlanSet, clear_plan, plan_every, set_plan
from care.refusals import Refused
from core.vitals import VITALS, Vital
from dashboard.bodies import (
    ContactCloseRequest,
    DischargeRequest,
    KitDeviceRequest,
    LimitRequest,
    PlanRequest,
    ScaleRequest,
)
from dashboard.formatting import format_value
from dashboard.model import PRIORITY_LABELS, StaffUser, threshold_label
from dashboard.refusals import action_error

log = logging.getLogger(__name__)
T = TypeVar("T")

# The vitals offered in the plan form: what a kit (or a nurse, for respiration) measures on its own.
# Diastolic and mean arterial pressure come with every systolic reading.
PLAN_VITALS = (
    Vital.SPO2,
    Vital.PULSE_RATE,
    Vital.HEART_RATE,
    Vital.SYSTOLIC_BP,
    Vital.BODY_TEMPERATURE,
    Vital.RESPIRATORY_RATE,
    Vital.BODY_WEIGHT,
    Vital.GLUCOSE,
)


# --- what the forms offer -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitChoice:
    """One threshold rule key a physician may give a personal limit, as the record's form shows it."""

    key: str  # "spo2_low"
    label: str  # "Syremättnad, låg"
    side: str  # "under" | "över": an alarm when a reading is beyond the limit on this side
    unit: str  # "%"
    step: str  # "1", "0.1"
    minimum: float  # the vital's plausible range; care.limits refuses limits outside it
    maximum: float
    priorities: tuple[tuple[str, str], ...]  # (priority, label), most severe first
    defaults: str  # "hög under 92 %, medel under 94 %"


def limit_choices(spo2_scale: int) -> tuple[LimitChoice, ...]:
    """Every rule key of alerts.thresholds, with the ward's limits that apply to this patient
    (SpO2 on scale 2 has scale 2's, alerts.judge.SCALE_2_SPO2_LIMITS)."""
    from alerts.judge import SCALE_2_SPO2_LIMITS
    from alerts.thresholds import WARD_DEFAULT_RULES, threshold_keys

    choices = []
    for key, (vital, direction, priorities) in threshold_keys().items():
        info = VITALS[vital]
        side = "under" if direction == "below" else "över"
        ordered = sorted(priorities, reverse=True)
        defaults = []
        for priority in ordered:
            (rule,) = (r for r in WARD_DEFAULT_RULES if r.rule == key and r.priority == priority)
            limit = rule.limit
            if vital is Vital.SPO2 and spo2_scale == 2 and priority in SCALE_2_SPO2_LIMITS:
                limit = SCALE_2_SPO2_LIMITS[priority]
            defaults.append(f"{PRIORITY_LABELS[priority.label].lower()} {side} {_exact(vital, limit)}")
        text = ", ".join(defaults) + (" (skala 2)" if vital is Vital.SPO2 and spo2_scale == 2 else "")
        choices.append(
            LimitChoice(
                key=key,
                label=threshold_label(vital, direction),
                side=side,
                unit=info.display_unit,
                step=str(10**-info.decimals) if info.decimals else "1",
                minimum=info.plausible_min,
                maximum=info.plausible_max,
                priorities=tuple((p.label, PRIORITY_LABELS[p.label]) for p in ordered),
                defaults=text,
            )
        )
    return tuple(choices)


def _exact(vital: Vital, limit: float) -> str:
    """A ward limit as it works: 35,05 °C stays 35,05 (a reading of 35,0 is below it), not 35,0."""
    info = VITALS[vital]
    decimals = info.decimals if round(limit, info.decimals) == limit else info.decimals + 1
    return f"{format_value(limit, decimals)} {info.display_unit}"


def plan_choices() -> tuple[tuple[str, str], ...]:
    """(vital, label) for the plan form."""
    return tuple((v.value, VITALS[v].display) for v in PLAN_VITALS)


# --- running an order -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Order(Generic[T]):
    """A care command built from a request, and how its result is answered."""

    action: AnyAction
    patient_id: uuid.UUID
    staff_id: int
    steps: CareSteps[T]
    answer: Callable[[T], dict[str, Any]]


async def carry_out(conn: psycopg.AsyncConnection[Any], order: Order[T]) -> dict[str, Any]:
    """Run the order's command in one transaction on `conn`; its refusal as an ActionError."""
    try:
        result = await execute_async(conn, order.steps)
    except Refused as exc:
        raise action_error(exc) from exc
    log.info("%s for patient %s by staff %s", order.action, order.patient_id, order.staff_id)
    return order.answer(result)


def set_alert_limit_order(
    patient_id: uuid.UUID, staff: StaffUser, entered: LimitRequest, origin: Origin
) -> Order[LimitSet]:
    """A physician's personal limit for one rule key and priority (replacing any earlier one)."""

    def answer(done: LimitSet) -> dict[str, Any]:
        return {"limit": {
            "id": done.id, "rule": done.rule, "priority": done.priority, "limit": done.limit,
            "reason": entered.reason,
            "valid_until": done.valid_until.isoformat() if done.valid_until else None,
            "set_by": staff.display_name,
        }}  # fmt: skip

    steps = set_alert_limit(patient_id=patient_id, rule=entered.rule, priority=entered.priority,
                            limit=entered.limit, reason=entered.reason, by=staff.username,
                            valid_until=entered.valid_until, origin=origin)  # fmt: skip
    return Order(Action.SET_ALERT_LIMIT, patient_id, staff.id, steps, answer)


def revoke_alert_limit_order(
    patient_id: uuid.UUID, limit_id: int, staff: StaffUser, origin: Origin
) -> Order[LimitRevoked]:
    """End a personal limit: the ward's default applies again; the row stays as history."""
    steps = revoke_alert_limit(limit_id=limit_id, by=staff.username, patient_id=patient_id, origin=origin)

    def answer(done: LimitRevoked) -> dict[str, Any]:
        return {"revoked": {"id": done.id, "rule": done.rule, "priority": done.priority}}

    return Order(Action.REVOKE_ALERT_LIMIT, patient_id, staff.id, steps, answer)


def spo2_scale_order(
    patient_id: uuid.UUID, staff: StaffUser, entered: ScaleRequest, origin: Origin
) -> Order[ScaleOrdered]:
    """Score SpO2 on NEWS2 scale 2 (hypercapnic), or back on scale 1; each with its reason."""
    steps = order_spo2_scale_steps(patient_id=patient_id, scale=entered.scale, reason=entered.reason,
                                   by=staff.username, origin=origin)  # fmt: skip
    return Order(Action.ORDER_SPO2_SCALE, patient_id, staff.id, steps, lambda done: {"order": {
        "id": done.id, "scale": done.scale, "reason": entered.reason, "ordered_by": staff.display_name,
    }})  # fmt: skip


def set_plan_order(
    patient_id: uuid.UUID, staff: StaffUser, entered: PlanRequest, origin: Origin
) -> Order[PlanSet]:
    """Plan that `vital` is measured at least this often (replacing the plan for that vital)."""
    try:
        every = plan_every(entered.every_minutes)
    except Refused as exc:
        raise action_error(exc) from exc
    steps = set_plan(
        patient_id=patient_id, vital=entered.vital, every=every, by=staff.username, origin=origin
    )

    def answer(done: PlanSet) -> dict[str, Any]:
        return {"plan": {"vital": entered.vital, "every_minutes": done.every_minutes}}

    return Order(Action.SET_MONITORING_PLAN, patient_id, staff.id, steps, answer)


def clear_plan_order(
    patient_id: uuid.UUID, vital: str, staff: StaffUser, origin: Origin
) -> Order[PlanCleared]:
    """Take `vital` out of the plan (a live missing-data alarm for it ends with it)."""
    steps = clear_plan(patient_id=patient_id, vital=vital, by=staff.username, origin=origin)
    return Order(Action.CLEAR_MONITORING_PLAN, patient_id, staff.id, steps,
                 lambda done: {"cleared": {"vital": vital}})  # fmt: skip


def _kit_answer(done: KitChanged) -> dict[str, Any]:
    return {"kit": {"gateway_id": done.gateway_id, "address": done.address, "version": done.version}}


def add_kit_device_order(
    patient_id: uuid.UUID, staff: StaffUser, entered: KitDeviceRequest, origin: Origin
) -> Order[KitChanged]:
    """A device for the patient's kit, or in place of one (care.kit.add_device)."""
    steps = add_device(patient_id=patient_id, address=entered.address, profile=entered.profile,
                       passkey=entered.passkey, replaces=entered.replaces, by=staff.username,
                       origin=origin)  # fmt: skip
    return Order(EquipmentAction.MANAGE_KIT_DEVICES, patient_id, staff.id, steps, _kit_answer)


def remove_kit_device_order(
    patient_id: uuid.UUID, address: str, staff: StaffUser, origin: Origin
) -> Order[KitChanged]:
    """Take a device out of the patient's kit (care.kit.remove_device)."""
    steps = remove_device(patient_id=patient_id, address=address, by=staff.username, origin=origin)
    return Order(EquipmentAction.MANAGE_KIT_DEVICES, patient_id, staff.id, steps, _kit_answer)


def take_contact_request_order(
    patient_id: uuid.UUID,
    request_id: int,
    staff: StaffUser,
    origin: Origin,
    *,
    call_within_minutes: int | None = None,
) -> Order[ContactRequestTaken]:
    """Take the patient's contact request (care.contact.take): the card names who took it, the patient's
    app when they will call."""
    steps = take(patient_id=patient_id, request_id=request_id, by=staff.username, origin=origin,
                 call_within_minutes=call_within_minutes)  # fmt: skip
    return Order(Action.TAKE_CONTACT_REQUEST, patient_id, staff.id, steps, lambda done: {"contact_request": {
        "id": done.id, "state": "taken", "taken_by": done.taken_by,
    }})  # fmt: skip


def close_contact_request_order(
    patient_id: uuid.UUID, request_id: int, staff: StaffUser, entered: ContactCloseRequest, origin: Origin
) -> Order[ContactRequestClosed]:
    """Close the patient's contact request with the answer given (care.contact.close)."""
    steps = close(patient_id=patient_id, request_id=request_id, note=entered.note, by=staff.username,
                  origin=origin)  # fmt: skip
    return Order(Action.CLOSE_CONTACT_REQUEST, patient_id, staff.id, steps, lambda done: {"contact_request": {
        "id": done.id, "state": "closed", "taken_by": done.taken_by, "closed_by": done.closed_by,
    }})  # fmt: skip


def discharge_order(
    patient_id: uuid.UUID, staff: StaffUser, entered: DischargeRequest, origin: Origin
) -> Order[Discharged]:
    """End the patient's home care episode with its outcome (care.enrolment.discharge)."""
    steps = discharge(patient_id=patient_id, outcome=entered.outcome, note=entered.note, by=staff.username,
                      origin=origin)  # fmt: skip
    return Order(Action.DISCHARGE_PATIENT, patient_id, staff.id, steps, lambda done: {"discharged": {
        "patient_id": str(done.patient_id), "outcome": done.outcome,
        "discharged_at": done.discharged_at.isoformat(), "gateway_id": done.gateway_id,
        "alert_ids": list(done.alert_ids), "contact_request_ids": list(done.contact_request_ids),
    }})  # fmt: skip
