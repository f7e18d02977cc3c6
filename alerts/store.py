r"""The alert lifecycle: rules request and clear alerts keyed by (patient, rule); this module decides.

Rules never touch the alerts table. They say "I want an alert for (patient, rule) at this priority"
(`AlertRequest`) or "my condition no longer holds" (`AlertClear`); `apply`, inside the caller's
transaction, turns that into states, all stored, so a restart forgets nothing:

    (none) --request--> pending --hold time passed (promote_due)--> open --staff--> acknowledged
                          |  \--clear--> resolved ("withdrawn", nobody was told)      |
                          \--request at a priority with no hold--> open               |
    open/acknowledged --clear (hysteresis is the rule's job)--> resolved            snoozed: acknowledged
    open/acknowledged --request at a worse priority--> open again, notified         with an end; when it
                                                                                     runs out and the
    An open HIGH alert latches: a clear does not resolve it until a person has       condition is still
    acknowledged it (IEC 60601-1-8 latching alarm).                                  there, open again.

Never two live alerts for one key (a partial unique index backs this up). A request at the same or a
milder priority never notifies again: an acknowledged alert stays quiet until it worsens. Every
transition is an alert_events row (the audit trail).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from alerts.model import AlarmCondition, AlertClear, AlertRequest, Priority

if TYPE_CHECKING:
    import psycopg


# Hold times: how long a new request waits in 'pending' before it opens (withdrawn if its condition
# clears first). High and medium physiological alarms open at once: the rules' persistence filter
# already stands between a flapping signal and an alert, and a hold would only delay care. A low one
# (a slow trend, a battery) and every technical alarm wait 10 minutes, the time for a device to
# reconnect or a patient to repeat a measurement. (Hemma defaults, for clinical review.)
HOLD: dict[tuple[AlarmCondition, Priority], timedelta] = {
    (AlarmCondition.PHYSIOLOGICAL, Priority.HIGH): timedelta(0),
    (AlarmCondition.PHYSIOLOGICAL, Priority.MEDIUM): timedelta(0),
    (AlarmCondition.PHYSIOLOGICAL, Priority.LOW): timedelta(minutes=10),
    (AlarmCondition.TECHNICAL, Priority.HIGH): timedelta(0),
    (AlarmCondition.TECHNICAL, Priority.MEDIUM): timedelta(minutes=10),
    (AlarmCondition.TECHNICAL, Priority.LOW): timedelta(minutes=10),
}
# The longest a member of staff may snooze an alert of each priority. A snooze acknowledges the alert
# until then; if the condition is still there when it runs out, the alert opens again and notifies,
# and a worsening ends the snooze at once.
SNOOZE_CAP: dict[Priority, timedelta] = {
    Priority.HIGH: timedelta(minutes=30),
    Priority.MEDIUM: timedelta(hours=4),
    Priority.LOW: timedelta(hours=24),
}


# Event notes are read by staff in the alert history: Swedish, like the rest of the ward's screens.
_SV = {"high": "hög", "medium": "medel", "low": "låg"}


@dataclass(frozen=True, slots=True)
class AlertChange:
    alert_id: int
    patient_id: uuid.UUID
    ward_id: str
    rule: str
    priority: str
    state: str
    message: str
    kind: str  # the alert_events kind of this change
    at: datetime

    @property
    def notify(self) -> bool:
        """Whether staff should be told (new, worse, or back after a snooze), not just a quiet update."""
        return self.kind in ("opened", "reprioritised", "snooze_expired")


def hold_for(condition: AlarmCondition, priority: Priority) -> timedelta:
    return HOLD[(condition, priority)]


def apply(
    conn: psycopg.Connection,
    requests: list[AlertRequest],
    clears: list[AlertClear],
    ward_of: dict[uuid.UUID, str],
    *,
    now: datetime,
) -> list[AlertChange]:
    """Bring stored alerts in line with the rules' requests. Runs in the caller's transaction.

    Several requests for one key in one call (two rules' severities, or two readings) act as the worst
    of them; a clear for a key that is also requested in the same call counts only if it is newer.
    """
    if not requests and not clears:
        return []
    worst: dict[tuple[uuid.UUID, str], AlertRequest] = {}
    for req in requests:
        key = (req.patient_id, req.rule)
        seen = worst.get(key)
        if seen is None or (req.priority, req.observed_at) > (seen.priority, seen.observed_at):
            worst[key] = req
    keys = list(worst) + [(c.patient_id, c.rule) for c in clears]
    live = _live_alerts(conn, keys)
    changes: list[AlertChange] = []
    for key, req in worst.items():
        current = live.get(key)
        if current is None:
            change = _open(conn, req, ward_of[req.patient_id], now)
        elif current.state == "pending":
            change = _while_pending(conn, current, req, now)
        elif req.priority > Priority.parse(current.priority):
            change = _reprioritise(conn, current, req, now)
        else:
            _update(conn, current, req, now)
            change = None
        if change is not None:
            changes.append(change)
        live[key] = _refetch(conn, key, live.get(key), change, req)
    for clear in clears:
        current = live.get((clear.patient_id, clear.rule))
        if current is None or clear.observed_at <= current.observed_at:
            continue  # no alert, or the normal value is older than the breach
        if current.state == "pending":
            changes.append(
                _finish(conn, current, now, kind="withdrawn", note="tillståndet upphörde under hålltiden")
            )
        elif current.priority == "high" and current.state == "open":
            continue  # latched: a person must acknowledge a high alert before it can go away
        else:
            changes.append(_finish(conn, current, now, kind="resolved", note="tillståndet upphörde"))
        live.pop((clear.patient_id, clear.rule), None)
    return changes


def promote_due(conn: psycopg.Connection, *, now: datetime) -> list[AlertChange]:
    """Open every pending alert whose hold time has passed (its condition did not clear meanwhile)."""
    return _open_all(
        conn,
        "pending_until = NULL",
        "state = 'pending' AND pending_until <= %(now)s",
        now=now,
        kind="opened",
        note="hålltiden passerade",
    )


def expire_snoozes(conn: psycopg.Connection, *, now: datetime) -> list[AlertChange]:
    """Snoozes that ran out: the condition is still there (the alert is live), so open it again and notify.

    `opened_at` restarts, so an unacknowledged high alert escalates again from this moment.
    """
    return _open_all(
        conn,
        "snoozed_until = NULL, snoozed_by = NULL, acknowledged_at = NULL, acknowledged_by = NULL",
        "snoozed_until <= %(now)s AND state IN ('open', 'acknowledged')",
        now=now,
        kind="snooze_expired",
        note="snooze slut, tillståndet kvarstår",
    )


def _open_all(
    conn: psycopg.Connection, also_set: str, where: str, *, now: datetime, kind: str, note: str
) -> list[AlertChange]:
    """Open every alert matching `where` (timer transitions), each with an event of `kind`."""
    rows = conn.execute(
        f"UPDATE alerts SET state = 'open', {also_set}, opened_at = %(now)s, updated_at = %(now)s"
        f" WHERE {where} RETURNING id, patient_id, ward_id, rule, priority, message",
        {"now": now},
    ).fetchall()
    changes = []
    for alert_id, patient_id, ward_id, rule, priority, message in rows:
        _event(conn, alert_id, kind, priority, note, now)
        changes.append(AlertChange(alert_id, patient_id, ward_id, rule, priority, "open", message, kind, now))
    return changes


def live_keys(conn: psycopg.Connection, rule_prefix: str) -> set[tuple[uuid.UUID, str]]:
    """(patient, rule) of every live alert whose rule starts with `rule_prefix`.

    Rules evaluated for every patient on a timer use this to send clears only where an alert exists,
    instead of one clear per patient per tick.
    """
    rows = conn.execute(
        "SELECT patient_id, rule FROM alerts WHERE state <> 'resolved' AND starts_with(rule, %s)",
        (rule_prefix,),
    ).fetchall()
    return {(r[0], r[1]) for r in rows}


@dataclass(frozen=True, slots=True)
class _Live:
    id: int
    patient_id: uuid.UUID
    ward_id: str
    rule: str
    priority: str
    state: str
    message: str
    observed_at: datetime
    condition: str


_LIVE_COLUMNS = "id, patient_id, ward_id, rule, priority, state, message, observed_at, condition"


def _live_alerts(
    conn: psycopg.Connection, keys: list[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], _Live]:
    patients = list({p for p, _ in keys})
    rules = list({r for _, r in keys})
    rows = conn.execute(
        f"SELECT {_LIVE_COLUMNS} FROM alerts"
        " WHERE state <> 'resolved' AND patient_id = ANY(%s) AND rule = ANY(%s) ORDER BY id FOR UPDATE",
        (patients, rules),
    ).fetchall()
    return {(r[1], r[3]): _Live(*r) for r in rows}


def _refetch(
    conn: psycopg.Connection,
    key: tuple[uuid.UUID, str],
    before: _Live | None,
    change: AlertChange | None,
    req: AlertRequest,
) -> _Live:
    """The live alert after a request, without another round trip when nothing but values changed."""
    if change is None:
        assert before is not None
        return _Live(
            before.id, before.patient_id, before.ward_id, before.rule, before.priority, before.state,
            before.message, max(before.observed_at, req.observed_at), before.condition,
        )  # fmt: skip
    return _Live(
        change.alert_id, change.patient_id, change.ward_id, change.rule, change.priority, change.state,
        change.message, max(req.observed_at, before.observed_at) if before else req.observed_at,
        req.condition.value,
    )  # fmt: skip


def _event(
    conn: psycopg.Connection, alert_id: int, kind: str, priority: str, note: str | None, now: datetime
) -> None:
    conn.execute(
        "INSERT INTO alert_events (alert_id, at, kind, actor, priority, note)"
        " VALUES (%s, %s, %s, 'engine', %s, %s)",
        (alert_id, now, kind, priority, note),
    )


def _open(conn: psycopg.Connection, req: AlertRequest, ward_id: str, now: datetime) -> AlertChange:
    hold = hold_for(req.condition, req.priority) if req.hold is None else req.hold
    state = "pending" if hold > timedelta(0) else "open"
    alert_id = conn.execute(
        "INSERT INTO alerts (patient_id, ward_id, rule, vital, priority, state, message, value, threshold,"
        " observed_at, opened_at, updated_at, condition, pending_until)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            req.patient_id, ward_id, req.rule, req.vital, req.priority.label, state, req.message, req.value,
            req.threshold, req.observed_at, now, now, req.condition.value,
            now + hold if state == "pending" else None,
        ),
    ).fetchone()[0]  # type: ignore[index]  # fmt: skip
    kind = "pending" if state == "pending" else "opened"
    _event(conn, alert_id, kind, req.priority.label, f"hålltid {hold}" if state == "pending" else None, now)
    return AlertChange(
        alert_id, req.patient_id, ward_id, req.rule, req.priority.label, state, req.message, kind, now
    )


def _while_pending(
    conn: psycopg.Connection, current: _Live, req: AlertRequest, now: datetime
) -> AlertChange | None:
    """A request for a key that is waiting out its hold: a priority with no hold opens it now."""
    priority = max(req.priority, Priority.parse(current.priority))
    hold = hold_for(req.condition, priority) if req.hold is None else req.hold
    if hold > timedelta(0):
        _update(conn, current, req, now, priority=priority)
        return None
    conn.execute(
        "UPDATE alerts SET state = 'open', pending_until = NULL, priority = %s, message = %s, value = %s,"
        " threshold = %s, observed_at = greatest(observed_at, %s), opened_at = %s, updated_at = %s"
        " WHERE id = %s",
        (priority.label, req.message, req.value, req.threshold, req.observed_at, now, now, current.id),
    )
    _event(conn, current.id, "opened", priority.label, f"från väntande {_SV[current.priority]}", now)
    return AlertChange(
        current.id, current.patient_id, current.ward_id, current.rule, priority.label, "open", req.message,
        "opened", now,
    )  # fmt: skip


def _update(
    conn: psycopg.Connection,
    current: _Live,
    req: AlertRequest,
    now: datetime,
    *,
    priority: Priority | None = None,
) -> None:
    """Same or milder: no notification. At the same priority the message follows the newest value; a
    milder value leaves the message describing the worse state the alert was raised for."""
    same = req.priority == Priority.parse(current.priority)
    conn.execute(
        "UPDATE alerts SET value = %s, message = CASE WHEN %s THEN %s ELSE message END,"
        " priority = COALESCE(%s, priority), observed_at = %s, updated_at = %s"
        " WHERE id = %s AND observed_at <= %s",
        (
            req.value, same or priority is not None, req.message, priority.label if priority else None,
            req.observed_at, now, current.id, req.observed_at,
        ),
    )  # fmt: skip


def _reprioritise(conn: psycopg.Connection, current: _Live, req: AlertRequest, now: datetime) -> AlertChange:
    # Worsening re-opens an acknowledged or snoozed alert: the acknowledgement was for the milder state.
    conn.execute(
        "UPDATE alerts SET priority = %s, message = %s, value = %s, threshold = %s, observed_at = %s,"
        " state = 'open', acknowledged_at = NULL, acknowledged_by = NULL, snoozed_until = NULL,"
        " snoozed_by = NULL, updated_at = %s WHERE id = %s",
        (req.priority.label, req.message, req.value, req.threshold, req.observed_at, now, current.id),
    )
    _event(conn, current.id, "reprioritised", req.priority.label, f"från {_SV[current.priority]}", now)
    return AlertChange(
        current.id, current.patient_id, current.ward_id, current.rule, req.priority.label, "open",
        req.message, "reprioritised", now,
    )  # fmt: skip


def _finish(conn: psycopg.Connection, current: _Live, now: datetime, *, kind: str, note: str) -> AlertChange:
    conn.execute(
        "UPDATE alerts SET state = 'resolved', pending_until = NULL, snoozed_until = NULL, resolved_at = %s,"
        " updated_at = %s WHERE id = %s",
        (now, now, current.id),
    )
    _event(conn, current.id, kind, current.priority, note, now)
    return AlertChange(
        current.id, current.patient_id, current.ward_id, current.rule, current.priority, "resolved",
        current.message, kind, now,
    )  # fmt: skip
