"""A physician's personal alert limit for one patient (migration 0003): set and revoke.

Only physicians, on every entry point (care.permissions: a personal limit changes when the engine
raises an alarm, a medical order for which a physician is accountable; an `admin` runs the system
and never orders care). The `hemma threshold` commands and the record's limit form run the same
generators below.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from care.acting import (
    Origin,
    audited,
    check_ward_access,
    execute,
    in_care,
    patient_ward,
    staff_for_patient,
)
from care.acting import acting_staff as _acting_staff
from care.permissions import Action
from care.refusals import RefusalCode, Refused
from core.events import VitalsChanged
from storage.steps import Notify, Sql, Steps

# Every time a person types is bounded: a far-off date is a typo, and once stored it breaks whatever
# reads it (a year-10000 end time is past what Python can hold). A personal limit is for this care
# episode: an end more than a year ahead is a typo in the year, and a limit without an end
# ("tills vidare") is how to say it has none.
LIMIT_MAX_VALIDITY = timedelta(days=366)
MIN_REASON_LENGTH = 3  # the tables' CHECK (length(btrim(reason)) >= 3)
# The personal limits in force for a list of patients at a time: not revoked, not run out. The one
# read of "which limits apply now", for the engine (ingest.rule_inputs) and the patient app's word
# beside a value (care.patient_today). Parameters: patient ids, the time.
LIMITS_IN_FORCE = (
    "SELECT patient_id, rule, priority, limit_value FROM personal_thresholds"
    " WHERE patient_id = ANY(%s) AND revoked_at IS NULL AND (valid_until IS NULL OR valid_until > %s)"
)


@dataclass(frozen=True, slots=True)
class LimitSet:
    id: int
    patient_id: uuid.UUID
    ward_id: str
    rule: str
    priority: str
    limit: float
    reason: str
    valid_until: datetime | None


@dataclass(frozen=True, slots=True)
class LimitRevoked:
    id: int
    patient_id: uuid.UUID
    ward_id: str
    rule: str
    priority: str


def check_limit(rule: str, priority: str, limit: float, reason: str) -> None:
    """A limit's rule key, priority, value and reason, without the database."""
    from alerts.model import Priority
    from alerts.thresholds import threshold_keys
    from core.vitals import VITALS, plausibility_problem

    keys = threshold_keys()
    if rule not in keys:
        raise Refused(RefusalCode.UNKNOWN_RULE, rule=rule, known=tuple(sorted(keys)))
    vital, _direction, priorities = keys[rule]
    if Priority.parse(priority) not in priorities:
        has = tuple(p.label for p in sorted(priorities, reverse=True))
        raise Refused(RefusalCode.NO_SUCH_PRIORITY, rule=rule, priority=priority, has=has)
    if plausibility_problem(vital, limit):
        raise Refused(RefusalCode.IMPOSSIBLE_LIMIT, limit=limit, vital=vital.value, unit=VITALS[vital].ucum)
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise Refused(RefusalCode.LIMIT_REASON_MISSING)


def check_limit_end(valid_until: datetime, now: datetime) -> None:
    """A personal limit's end time: zoned, after `now`, at most LIMIT_MAX_VALIDITY ahead."""
    if valid_until.tzinfo is None:
        raise Refused(RefusalCode.LIMIT_END_ZONE)
    if valid_until <= now:
        raise Refused(RefusalCode.LIMIT_END_PAST, valid_until=valid_until)
    if valid_until > now + LIMIT_MAX_VALIDITY:
        raise Refused(RefusalCode.LIMIT_END_TOO_FAR, valid_until=valid_until, days=LIMIT_MAX_VALIDITY.days)


def set_alert_limit(
    *,
    patient_id: uuid.UUID,
    rule: str,
    priority: str,
    limit: float,
    reason: str,
    by: str,
    valid_until: datetime | None = None,
    origin: Origin | None,
) -> Steps[LimitSet]:
    """A physician's own limit for one patient, replacing the ward default (and any earlier one).

    The earlier limit for the same rule and priority is revoked in the same transaction, so the
    history of who changed what, when and why stays in the table.
    """
    check_limit(rule, priority, limit, reason)
    staff, ward_id = yield from staff_for_patient(by, Action.SET_ALERT_LIMIT, patient_id)
    if valid_until is not None:
        now = yield Sql("SELECT now()", fetch="one")
        check_limit_end(valid_until, now[0])
    yield Sql(
        "UPDATE personal_thresholds SET revoked_at = now(), revoked_by = %s"
        " WHERE patient_id = %s AND rule = %s AND priority = %s AND revoked_at IS NULL",
        (staff.id, patient_id, rule, priority),
    )
    row = yield Sql(
        "INSERT INTO personal_thresholds"
        " (patient_id, rule, priority, limit_value, reason, set_by, valid_until)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (patient_id, rule, priority, limit, reason.strip(), staff.id, valid_until),
        fetch="one",
    )
    limit_id = int(row[0])
    yield from audited(origin, staff=staff, username=by, patient_id=patient_id,
                       action=Action.SET_ALERT_LIMIT, context=f"limit:{limit_id}")  # fmt: skip
    yield Notify(VitalsChanged(ward_id, (patient_id,)))
    return LimitSet(limit_id, patient_id, ward_id, rule, priority, limit, reason.strip(), valid_until)


def revoke_alert_limit(
    *, limit_id: int, by: str, patient_id: uuid.UUID | None = None, origin: Origin | None
) -> Steps[LimitRevoked]:
    """End a physician's personal limit: the ward default (or scale 2's) applies again.

    Only physicians revoke limits, as only they set them. The row stays, with revoked_at/revoked_by,
    as the history of who changed what. `patient_id`, when given, must be the limit's patient (the
    record's URL names both). Like every order, only while the patient is in care (care.acting.in_care).
    """
    staff = yield from _acting_staff(by, Action.REVOKE_ALERT_LIMIT)
    row = yield Sql(
        "SELECT patient_id, rule, priority, revoked_at FROM personal_thresholds WHERE id = %s FOR UPDATE",
        (limit_id,),
        fetch="one",
    )
    if row is None or (patient_id is not None and row[0] != patient_id):
        raise Refused(RefusalCode.NO_LIMIT, limit_id=limit_id, patient_id=patient_id)
    ward_id, discharged_at = yield from patient_ward(row[0])
    yield from check_ward_access(staff, ward_id, Action.REVOKE_ALERT_LIMIT)
    in_care(row[0], discharged_at)
    if row[3] is not None:
        raise Refused(RefusalCode.LIMIT_ALREADY_REVOKED, limit_id=limit_id, revoked_at=row[3])
    yield Sql(
        "UPDATE personal_thresholds SET revoked_at = now(), revoked_by = %s WHERE id = %s",
        (staff.id, limit_id),
    )
    yield from audited(origin, staff=staff, username=by, patient_id=row[0],
                       action=Action.REVOKE_ALERT_LIMIT, context=f"limit:{limit_id}")  # fmt: skip
    yield Notify(VitalsChanged(ward_id, (row[0],)))
    return LimitRevoked(limit_id, row[0], ward_id, str(row[1]), str(row[2]))


# --- on a synchronous connection, for `hemma demo` and tests seeding a database ----------------------


def set_personal_threshold(
    conn: psycopg.Connection[Any],
    *,
    patient_id: uuid.UUID,
    rule: str,
    priority: str,
    limit: float,
    reason: str,
    set_by_username: str,
    valid_until: datetime | None = None,
    origin: Origin | None = None,
) -> int:
    """set_alert_limit in a transaction of its own; returns the limit's id."""
    return execute(conn, set_alert_limit(
        patient_id=patient_id, rule=rule, priority=priority, limit=limit, reason=reason,
        by=set_by_username, valid_until=valid_until, origin=origin,
    )).id  # fmt: skip


def revoke_personal_threshold(
    conn: psycopg.Connection[Any],
    threshold_id: int,
    revoked_by_username: str,
    *,
    patient_id: uuid.UUID | None = None,
    origin: Origin | None = None,
) -> tuple[uuid.UUID, str, str]:
    """revoke_alert_limit in a transaction of its own; returns the limit's (patient, rule, priority)."""
    done = execute(
        conn,
        revoke_alert_limit(
            limit_id=threshold_id, by=revoked_by_username, patient_id=patient_id, origin=origin
        ),
    )
    return done.patient_id, done.rule, done.priority
