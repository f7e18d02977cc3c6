"""Apply rule requests to the stored alerts, inside the caller's transaction.

The lifecycle here is the first slice (issue 2): one live alert per (patient, rule);
a worse priority re-opens and re-notifies even an acknowledged alert; a trustworthy
normal reading resolves an alert unless it is an unacknowledged high one, which latches
until a person has seen it. Every transition is written to alert_events.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
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
        """Whether staff should be told (new or worse), as opposed to a quiet update."""
        return self.kind in ("opened", "reprioritised")


def apply(
    conn: psycopg.Connection,
    requests: list[AlertRequest],
    clears: list[AlertClear],
    ward_of: dict[uuid.UUID, str],
    *,
    now: datetime,
) -> list[AlertChange]:
    """Bring stored alerts in line with the rules' requests. Runs in the caller's transaction."""
    if not requests and not clears:
        return []
    keys = [(r.patient_id, r.rule) for r in requests] + [(c.patient_id, c.rule) for c in clears]
    live = _live_alerts(conn, keys)
    changes: list[AlertChange] = []
    for req in requests:
        key = (req.patient_id, req.rule)
        current = live.get(key)
        if current is None:
            change = _open(conn, req, ward_of[req.patient_id], now)
        elif req.priority > Priority.parse(current.priority):
            change = _reprioritise(conn, current, req, now)
        else:
            # Same or milder: no new notification. At the same priority the message follows the newest
            # value; a milder value leaves the message describing the worse state the alert was raised for.
            same = req.priority == Priority.parse(current.priority)
            conn.execute(
                "UPDATE alerts SET value = %s, message = CASE WHEN %s THEN %s ELSE message END,"
                " observed_at = %s, updated_at = %s WHERE id = %s AND observed_at <= %s",
                (req.value, same, req.message, req.observed_at, now, current.id, req.observed_at),
            )
            live[key] = replace(current, observed_at=max(current.observed_at, req.observed_at))
            continue
        changes.append(change)
        live[key] = _Live(
            change.alert_id,
            change.patient_id,
            change.ward_id,
            change.rule,
            change.priority,
            change.state,
            change.message,
            req.observed_at,
        )
    for clear in clears:
        current = live.get((clear.patient_id, clear.rule))
        if current is None or clear.observed_at <= current.observed_at:
            continue  # no alert, or the normal value is older than the breach
        if current.priority == "high" and current.state == "open":
            continue  # latched: a person must acknowledge a high alert before it can go away
        changes.append(_resolve(conn, current, now))
    return changes


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


def _live_alerts(
    conn: psycopg.Connection, keys: list[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], _Live]:
    patients = list({p for p, _ in keys})
    rows = conn.execute(
        "SELECT id, patient_id, ward_id, rule, priority, state, message, observed_at FROM alerts"
        " WHERE state <> 'resolved' AND patient_id = ANY(%s) FOR UPDATE",
        (patients,),
    ).fetchall()
    return {(r[1], r[3]): _Live(*r) for r in rows}


def _event(
    conn: psycopg.Connection, alert_id: int, kind: str, priority: str, note: str | None = None
) -> None:
    conn.execute(
        "INSERT INTO alert_events (alert_id, kind, actor, priority, note) VALUES (%s, %s, 'engine', %s, %s)",
        (alert_id, kind, priority, note),
    )


def _open(conn: psycopg.Connection, req: AlertRequest, ward_id: str, now: datetime) -> AlertChange:
    alert_id = conn.execute(
        "INSERT INTO alerts (patient_id, ward_id, rule, vital, priority, state, message, value, threshold,"
        " observed_at, opened_at, updated_at) VALUES (%s, %s, %s, %s, %s, 'open', %s, %s, %s, %s, %s, %s)"
        " RETURNING id",
        (
            req.patient_id,
            ward_id,
            req.rule,
            req.vital,
            req.priority.label,
            req.message,
            req.value,
            req.threshold,
            req.observed_at,
            now,
            now,
        ),
    ).fetchone()[0]  # type: ignore[index]
    _event(conn, alert_id, "opened", req.priority.label)
    return AlertChange(
        alert_id, req.patient_id, ward_id, req.rule, req.priority.label, "open", req.message, "opened", now
    )


def _reprioritise(conn: psycopg.Connection, current: _Live, req: AlertRequest, now: datetime) -> AlertChange:
    # Worsening re-opens an acknowledged alert: the acknowledgement was for the milder state.
    conn.execute(
        "UPDATE alerts SET priority = %s, message = %s, value = %s, threshold = %s, observed_at = %s,"
        " state = 'open', acknowledged_at = NULL, acknowledged_by = NULL, updated_at = %s WHERE id = %s",
        (req.priority.label, req.message, req.value, req.threshold, req.observed_at, now, current.id),
    )
    _event(conn, current.id, "reprioritised", req.priority.label, f"from {current.priority}")
    return AlertChange(
        current.id,
        current.patient_id,
        current.ward_id,
        current.rule,
        req.priority.label,
        "open",
        req.message,
        "reprioritised",
        now,
    )


def _resolve(conn: psycopg.Connection, current: _Live, now: datetime) -> AlertChange:
    conn.execute(
        "UPDATE alerts SET state = 'resolved', resolved_at = %s, updated_at = %s WHERE id = %s",
        (now, now, current.id),
    )
    _event(conn, current.id, "resolved", current.priority, "condition cleared")
    return AlertChange(
        current.id,
        current.patient_id,
        current.ward_id,
        current.rule,
        current.priority,
        "resolved",
        current.message,
        "resolved",
        now,
    )
