"""The monitoring plan (migration 0004): which vitals a patient measures, and how often at least.

A nurse or physician decides it (care.permissions). The alert engine raises the technical alarm
`missing:<vital>` when no trustworthy reading has come for the interval plus its grace time. The
`hemma plan` commands and the record's plan form run the generators below.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from alerts import store
from alerts.model import AlertClear
from alerts.rule import RuleFamily
from care.acting import CareSteps, Origin, audited, execute, staff_for_patient
from care.kit import config_changed
from care.permissions import Action
from care.refusals import RefusalCode, Refused
from core.events import VitalsChanged
from core.vitals import Vital
from storage.steps import Notify, Sql, Steps

# The CHECK on monitoring_plans.every_minutes: from every 5 minutes (continuous oximetry) to weekly.
PLAN_MIN_EVERY = timedelta(minutes=5)
PLAN_MAX_EVERY = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class PlanSet:
    patient_id: uuid.UUID
    ward_id: str
    vital: Vital
    every_minutes: int


@dataclass(frozen=True, slots=True)
class PlanCleared:
    patient_id: uuid.UUID
    ward_id: str
    vital: Vital
    alert_ids: tuple[int, ...]  # the missing-data alarms that ended with the plan


def known_vital(vital: object) -> Vital:
    """The Vital a person named, or a refusal listing the known ones."""
    try:
        return Vital(str(vital))
    except ValueError:
        raise Refused(
            RefusalCode.UNKNOWN_VITAL, vital=str(vital), known=tuple(v.value for v in Vital)
        ) from None


def _out_of_range(every: object) -> Refused:
    return Refused(
        RefusalCode.PLAN_RANGE,
        every=every,
        minimum_minutes=PLAN_MIN_EVERY // timedelta(minutes=1),
        maximum_minutes=PLAN_MAX_EVERY // timedelta(minutes=1),
        maximum_days=PLAN_MAX_EVERY.days,
    )


def plan_minutes(every: timedelta) -> int:
    """A plan interval in whole minutes, within PLAN_MIN_EVERY..PLAN_MAX_EVERY."""
    if every % timedelta(minutes=1):
        raise Refused(RefusalCode.PLAN_WHOLE_MINUTES, every=every)
    if not PLAN_MIN_EVERY <= every <= PLAN_MAX_EVERY:
        raise _out_of_range(every)
    return every // timedelta(minutes=1)


def plan_every(minutes: int) -> timedelta:
    """An interval given in minutes (the record's form); beyond any timedelta is out of range too."""
    try:
        return timedelta(minutes=minutes)
    except OverflowError:
        raise _out_of_range(f"{minutes} minutes") from None


def set_plan(
    *, patient_id: uuid.UUID, vital: Vital | str, every: timedelta, by: str, origin: Origin | None
) -> Steps[PlanSet]:
    """Plan that the patient measures `vital` at least every `every`; replaces the plan for that vital.

    The missing-data clock counts from the newest reading or from when the plan was (re)set,
    whichever is later: setting a plan again restarts it, and `set_by`/`set_at` name who did it last.
    A row set by hand is the clinician's from then on (source 'clinician', migration 0017): a change
    of care level no longer moves its interval (care.care_levels.follow_level).
    """
    planned = known_vital(vital)
    minutes = plan_minutes(every)
    staff, ward_id = yield from staff_for_patient(by, Action.SET_MONITORING_PLAN, patient_id)
    yield Sql(
        "INSERT INTO monitoring_plans (patient_id, vital, every_minutes, set_by, set_at)"
        " VALUES (%s, %s, %s, %s, now()) ON CONFLICT (patient_id, vital) DO UPDATE SET"
        " every_minutes = EXCLUDED.every_minutes, set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at,"
        " source = 'clinician'",
        (patient_id, planned.value, minutes, staff.id),
    )
    yield from audited(origin, staff=staff, username=by, patient_id=patient_id,
                       action=Action.SET_MONITORING_PLAN, context=f"plan:{planned.value}")  # fmt: skip
    yield from config_changed(patient_id=patient_id)  # the plan is the kit's schedule
    yield Notify(VitalsChanged(ward_id, (patient_id,)))
    return PlanSet(patient_id, ward_id, planned, minutes)


def clear_plan(
    *, patient_id: uuid.UUID, vital: Vital | str, by: str, origin: Origin | None, now: datetime | None = None
) -> CareSteps[PlanCleared]:
    """Take `vital` out of the patient's plan: its absence no longer raises `missing:<vital>`.

    A `missing:<vital>` alert that is live ends with the plan, in the same transaction (resolved, or
    withdrawn while pending): the engine evaluates planned vitals only, so nothing else would end it.
    The alert store changes the alert (alerts.store.apply, the one writer of the alerts tables).
    """
    planned = known_vital(vital)
    now = now or datetime.now(UTC)
    staff, ward_id = yield from staff_for_patient(by, Action.CLEAR_MONITORING_PLAN, patient_id)
    deleted = yield Sql(
        "DELETE FROM monitoring_plans WHERE patient_id = %s AND vital = %s RETURNING vital",
        (patient_id, planned.value),
        fetch="one",
    )
    if deleted is None:
        raise Refused(RefusalCode.NO_PLAN, patient_id=patient_id, vital=planned.value)
    rule = RuleFamily.MISSING.key(planned.value)
    # The plan's end is newer than anything the engine saw, whatever its clock said.
    last = yield Sql(
        "SELECT observed_at FROM alerts WHERE patient_id = %s AND rule = %s AND state <> 'resolved'"
        " FOR UPDATE",
        (patient_id, rule),
        fetch="one",
    )
    at = max(now, last[0] + timedelta(microseconds=1)) if last else now
    alert_ids: tuple[int, ...] = ()
    if last is not None:
        # The store announces the alerts it changed; the dashboard re-reads their patients with them.
        clear = AlertClear(patient_id, rule, at)
        changes = yield from store.apply_steps([], [clear], {patient_id: ward_id}, now=now)
        alert_ids = tuple(c.alert_id for c in changes)
    yield from audited(origin, staff=staff, username=by, patient_id=patient_id,
                       action=Action.CLEAR_MONITORING_PLAN, context=f"plan:{planned.value}")  # fmt: skip
    yield from config_changed(patient_id=patient_id)  # the plan is the kit's schedule
    if not alert_ids:
        yield Notify(VitalsChanged(ward_id, (patient_id,)))
    return PlanCleared(patient_id, ward_id, planned, alert_ids)


# --- on a synchronous connection, for `hemma demo` and tests seeding a database ----------------------


def set_monitoring_plan(
    conn: psycopg.Connection[Any],
    patient_id: uuid.UUID,
    vital: Vital | str,
    every: timedelta,
    set_by_username: str,
    *,
    origin: Origin | None = None,
) -> int:
    """set_plan in a transaction of its own; returns the interval in minutes."""
    done = execute(conn, set_plan(patient_id=patient_id, vital=vital, every=every, by=set_by_username,
                                  origin=origin))  # fmt: skip
    return done.every_minutes


def clear_monitoring_plan(
    conn: psycopg.Connection[Any],
    patient_id: uuid.UUID,
    vital: Vital | str,
    cleared_by_username: str,
    *,
    now: datetime | None = None,
    origin: Origin | None = None,
) -> None:
    """clear_plan in a transaction of its own."""
    execute(conn, clear_plan(patient_id=patient_id, vital=vital, by=cleared_by_username, origin=origin,
                             now=now))  # fmt: skip
