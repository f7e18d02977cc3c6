"""The care team's orders from the patient record: a physician's personal alert limits and SpO2 scale
order (NEWS2 scale 2 for hypercapnic patients), and the monitoring plan a nurse or physician sets.

care.admin holds the one set of rules for these orders, the same functions the `hemma threshold`,
`hemma order spo2-scale` and `hemma plan` commands call. The dashboard reads only the request's
shape, decides who may do what on the record (ward access, role, patient in care) and calls them, in
a worker thread on a short-lived synchronous connection, inside one transaction that also writes the
access_log row (care.access_log, the CLI's writer too) and the NOTIFY: the order, its audit and the
live update stand or fall together. Who may order what is care.permissions'. A refusal from
care.admin (AdminError, written for the operator in English) becomes the Swedish message staff see:
a StaffRefused by its code and action, any other through ADMIN_REFUSALS.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg

from care import access_log, admin, permissions
from care.permissions import Action
from core.vitals import VITALS, Vital
from dashboard.access_log import AccessEntry
from dashboard.bodies import (
    LIMIT_REASON_MESSAGE,
    SCALE_REASON_MESSAGE,
    LimitRequest,
    PlanRequest,
    ScaleRequest,
)
from dashboard.errors import (
    ActionError,
    InvalidInput,
    OrderRefused,
    PatientDischarged,
    PatientNotFound,
    RoleForbidden,
    WardForbidden,
)
from dashboard.model import (
    PRIORITY_LABELS,
    StaffUser,
    format_minutes,
    format_value,
    known_vital,
    threshold_label,
)
from storage.db import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

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
_PLAN_RANGE = (
    f"Intervallet måste vara mellan {format_minutes(admin.PLAN_MIN_EVERY // timedelta(minutes=1))}"
    f" och {format_minutes(admin.PLAN_MAX_EVERY // timedelta(minutes=1))}"
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
    minimum: float  # the vital's plausible range; care.admin refuses limits outside it
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


# --- care.admin's refusals in Swedish --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Refusal:
    pattern: re.Pattern[str]
    status: int
    field: str | None
    message: Callable[[re.Match[str]], str]


def _vital_name(name: str) -> str:
    vital = known_vital(name)
    return VITALS[vital].display.lower() if vital else name


def _key_label(key: str) -> str:
    from alerts.thresholds import threshold_keys

    found = threshold_keys().get(key)
    return threshold_label(found[0], found[1]) if found else key


def _priorities(labels: str) -> str:
    return " och ".join(PRIORITY_LABELS.get(p.strip(), p.strip()).lower() for p in labels.split(","))


def _impossible_limit(m: re.Match[str]) -> str:
    vital = known_vital(m["vital"])
    if vital is None:
        return f"Gränsen {m['value']} är inte ett möjligt värde"
    info = VITALS[vital]
    value = float(m["value"])
    low, high = format_value(info.plausible_min, 0), format_value(info.plausible_max, 0)
    number = format_value(value, info.decimals if value != round(value) else 0)
    given = f" {number} {info.display_unit}" if abs(value) < 1e6 else ""  # no 300-digit numbers
    plausible = f"{low}–{high} {info.display_unit}"
    return f"Gränsen{given} är inte ett möjligt värde för {info.display.lower()} ({plausible})"


def _r(
    pattern: str, status: int, field: str | None, message: str | Callable[[re.Match[str]], str]
) -> _Refusal:
    text = message if callable(message) else (lambda _m, fixed=message: fixed)
    return _Refusal(re.compile(pattern), status, field, text)


# Every AdminError the functions called here raise, most specific first. The messages are care.admin's
# (an operator reads them in the CLI); tests in tests/test_dashboard_physician_api.py provoke each one.
ADMIN_REFUSALS: tuple[_Refusal, ...] = (
    _r(r"^unknown threshold rule ", 422, "rule", "Okänd larmgräns"),
    _r(
        r"^rule (?P<rule>\S+) has no \S+ limit to replace \(it has: (?P<has>[^)]*)\)",
        422,
        "priority",
        lambda m: f"{_key_label(m['rule'])} har gräns bara för prioritet {_priorities(m['has'])}",
    ),
    _r(r"^limit (?P<value>\S+) \S+ is not a possible (?P<vital>\S+) value", 422, "limit", _impossible_limit),
    _r(r"^a reason is required \(who", 422, "reason", LIMIT_REASON_MESSAGE),
    _r(r"^a reason is required", 422, "reason", SCALE_REASON_MESSAGE),
    _r(
        r"^SpO2 scale must be 1",
        422,
        "scale",
        "SpO₂-skalan är 1 (standard) eller 2 (hyperkapni, mål 88–92 %)",
    ),
    _r(r"^unknown vital ", 422, "vital", "Okänd mätparameter"),
    _r(r"^plan interval must be whole minutes", 422, "every_minutes", "Ange intervallet i hela minuter"),
    _r(r"^plan interval must be between", 422, "every_minutes", _PLAN_RANGE),
    _r(
        r"^patient \S+ has no monitoring plan for (?P<vital>\S+)",
        404,
        None,
        lambda m: f"Det finns ingen mätplan för {_vital_name(m['vital'])}",
    ),
    _r(r"^no personal limit ", 404, None, "Larmgränsen finns inte"),
    _r(r"^personal limit \S+ was already revoked", 409, None, "Larmgränsen är redan återkallad"),
    _r(r"^no patient ", 404, None, "Patienten finns inte"),
    _r(r"^patient \S+ was discharged", 409, None, "Patienten är utskriven"),
)
# care.admin's refusals of a time a person typed (admin.DateOutOfRange), by code: (field, Swedish).
DATE_REFUSALS: dict[str, tuple[str, str]] = {
    "limit_end_past": ("valid_until", "Gäller till måste ligga efter nu"),
    "limit_end_too_far": (
        "valid_until",
        f"Gäller till får ligga högst {admin.LIMIT_MAX_VALIDITY.days} dagar fram"
        " (lämna fältet tomt för tills vidare)",
    ),
    "observation_in_future": ("time", "Tidpunkten kan inte ligga i framtiden"),
    "observation_too_old": ("time", f"Tidpunkten får ligga högst {admin.MANUAL_MAX_AGE.days} dagar bakåt"),
}


def translate(exc: admin.AdminError) -> ActionError:
    """The ActionError (status and Swedish message) for one of care.admin's refusals."""
    text = str(exc)
    if isinstance(exc, admin.StaffRefused):
        # The account was disabled, its role or ward access changed since this request's session check.
        if exc.code == "ward" and exc.ward_id is not None:
            return WardForbidden(exc.ward_id)
        return OrderRefused(403, text, permissions.refusal_sv(exc.action))
    if isinstance(exc, admin.DateOutOfRange) and exc.code in DATE_REFUSALS:
        field, message = DATE_REFUSALS[exc.code]
        return InvalidInput(message, field)
    for refusal in ADMIN_REFUSALS:
        match = refusal.pattern.search(text)
        if match:
            message = refusal.message(match)
            if refusal.status == 422:
                return InvalidInput(message, refusal.field)
            return OrderRefused(refusal.status, text, message)
    # Not echoed to staff: an operator's English text may quote what was typed.
    log.warning("care.admin refusal without a Swedish text: %s", type(exc).__name__)
    return InvalidInput("Ordern kunde inte sparas: kontrollera uppgifterna")


# --- running an order ----------------------------------------------------------------------------------


# work(conn) -> (access_log context, the JSON answer)
_Work = Callable[[psycopg.Connection], tuple[str, dict[str, Any]]]


def _run(
    url: str,
    order: Action,
    staff: StaffUser,
    patient_id: uuid.UUID,
    client_address: str | None,
    work: _Work,
) -> dict[str, Any]:
    """One transaction: who may order, care.admin's write, the access_log row and the NOTIFY."""
    try:
        with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
            # FOR SHARE: the patient cannot be discharged or moved to another ward under the order.
            row = conn.execute(
                "SELECT ward_id, discharged_at IS NOT NULL FROM patients WHERE id = %s FOR SHARE",
                (patient_id,),
            ).fetchone()
            if row is None:
                raise PatientNotFound(patient_id)
            ward_id, discharged = row
            if not staff.can_see(ward_id):
                raise WardForbidden(ward_id)
            if not permissions.may(staff.role, order):
                raise RoleForbidden(staff.role, permissions.refusal_sv(order))
            if discharged:
                raise PatientDischarged(patient_id)
            context, answer = work(conn)
            access_log.write(conn, [AccessEntry(staff, patient_id, order, context, client_address).record()])
            event = {"kind": "vitals", "ward_id": ward_id, "patient_ids": [str(patient_id)]}
            conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, json.dumps(event)))
    except admin.AdminError as exc:
        raise translate(exc) from exc
    log.info("%s for patient %s by staff %s", order, patient_id, staff.id)
    return answer


async def _order(
    url: str,
    order: Action,
    staff: StaffUser,
    patient_id: uuid.UUID,
    client_address: str | None,
    work: _Work,
) -> dict[str, Any]:
    return await asyncio.to_thread(_run, url, order, staff, patient_id, client_address, work)


async def set_alert_limit(
    url: str, *, patient_id: uuid.UUID, staff: StaffUser, entered: LimitRequest, client_address: str | None
) -> dict[str, Any]:
    """A physician's personal limit for one rule key and priority (replacing any earlier one)."""

    def work(conn: psycopg.Connection) -> tuple[str, dict[str, Any]]:
        limit_id = admin.set_personal_threshold(
            conn,
            patient_id=patient_id,
            rule=entered.rule,
            priority=entered.priority,
            limit=entered.limit,
            reason=entered.reason,
            set_by_username=staff.username,
            valid_until=entered.valid_until,
        )
        answer = {
            "id": limit_id,
            "rule": entered.rule,
            "priority": entered.priority,
            "limit": entered.limit,
            "reason": entered.reason,
            "valid_until": entered.valid_until.isoformat() if entered.valid_until else None,
            "set_by": staff.display_name,
        }
        return f"limit:{limit_id}", {"limit": answer}

    return await _order(url, Action.SET_ALERT_LIMIT, staff, patient_id, client_address, work)


async def revoke_alert_limit(
    url: str, *, patient_id: uuid.UUID, limit_id: int, staff: StaffUser, client_address: str | None
) -> dict[str, Any]:
    """End a personal limit: the ward's default applies again; the row stays as history."""

    def work(conn: psycopg.Connection) -> tuple[str, dict[str, Any]]:
        _, rule, priority = admin.revoke_personal_threshold(
            conn, limit_id, staff.username, patient_id=patient_id
        )
        return f"limit:{limit_id}", {"revoked": {"id": limit_id, "rule": rule, "priority": priority}}

    return await _order(url, Action.REVOKE_ALERT_LIMIT, staff, patient_id, client_address, work)


async def order_spo2_scale(
    url: str, *, patient_id: uuid.UUID, staff: StaffUser, entered: ScaleRequest, client_address: str | None
) -> dict[str, Any]:
    """Score SpO2 on NEWS2 scale 2 (hypercapnic), or back on scale 1; each with its reason."""

    def work(conn: psycopg.Connection) -> tuple[str, dict[str, Any]]:
        order_id = admin.order_spo2_scale(conn, patient_id, entered.scale, entered.reason, staff.username)
        answer = {
            "id": order_id,
            "scale": entered.scale,
            "reason": entered.reason,
            "ordered_by": staff.display_name,
        }
        return f"spo2_scale_order:{order_id}", {"order": answer}

    return await _order(url, Action.ORDER_SPO2_SCALE, staff, patient_id, client_address, work)


async def set_monitoring_plan(
    url: str, *, patient_id: uuid.UUID, staff: StaffUser, entered: PlanRequest, client_address: str | None
) -> dict[str, Any]:
    """Plan that `vital` is measured at least this often (replacing the plan for that vital)."""
    try:
        every = timedelta(minutes=entered.every_minutes)
    except OverflowError:  # beyond any date: out of range, as care.admin would say of a smaller one
        raise InvalidInput(_PLAN_RANGE, "every_minutes") from None

    def work(conn: psycopg.Connection) -> tuple[str, dict[str, Any]]:
        minutes = admin.set_monitoring_plan(conn, patient_id, entered.vital, every, staff.username)
        return f"plan:{entered.vital}", {"plan": {"vital": entered.vital, "every_minutes": minutes}}

    return await _order(url, Action.SET_MONITORING_PLAN, staff, patient_id, client_address, work)


async def clear_monitoring_plan(
    url: str, *, patient_id: uuid.UUID, vital: str, staff: StaffUser, client_address: str | None
) -> dict[str, Any]:
    """Take `vital` out of the plan (a live missing-data alarm for it ends with it)."""

    def work(conn: psycopg.Connection) -> tuple[str, dict[str, Any]]:
        admin.clear_monitoring_plan(conn, patient_id, vital, staff.username)
        return f"plan:{vital}", {"cleared": {"vital": vital}}

    return await _order(url, Action.CLEAR_MONITORING_PLAN, staff, patient_id, client_address, work)
