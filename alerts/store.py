"""The one writer of `alerts` and `alert_events`, and the one source of their live events.

Every change to an alert goes the same way: load the row (locked FOR UPDATE, so two writers of one
alert take turns), ask `alerts.lifecycle.transition` what the event makes of it, write the row and
its alert_events rows, and announce it to the dashboards with `core.events.AlertsChanged` (a NOTIFY,
delivered on commit). The work is written once as `storage.steps` generators, so the same code runs
on the ingest engine's, the escalator's and the CLI's synchronous connections (`apply`,
`promote_due`, `expire_snoozes`) and on the dashboard's asynchronous one (`run_async(conn, act(...))`).

Callers own the transaction: a rule fault rolls back the engine's savepoint, the dashboard's access
log row commits with the acknowledgement it records, and the NOTIFY goes with them.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from psycopg.types.json import Jsonb

from alerts.lifecycle import (
    HOLD,
    SNOOZE_CAP,
    Alert,
    AlertState,
    Cleared,
    EventKind,
    HoldElapsed,
    LifecycleEvent,
    NotificationFailed,
    Notified,
    Record,
    Refusal,
    RefusalCode,
    Requested,
    SnoozeExpired,
    Transition,
    transition,
)
from alerts.model import AlarmCondition, AlertClear, AlertRequest, Priority
from core import events
from storage.steps import Notify, Sql, SqlMany, Steps, run

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "HOLD",
    "SNOOZE_CAP",
    "AlertChange",
    "act",
    "announce_changes",
    "apply",
    "apply_steps",
    "expire_snoozes",
    "live_keys",
    "promote_due",
    "timers",
]

Key = tuple[uuid.UUID, str]
PriorityLabel = Literal["high", "medium", "low"]  # alerts.priority and core.contract.AlertMessage
_LABELS: dict[Priority, PriorityLabel] = {
    Priority.HIGH: "high",
    Priority.MEDIUM: "medium",
    Priority.LOW: "low",
}


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One recorded step of one alert: the alert after it, what happened, and whether to tell staff."""

    alert: Alert
    kind: EventKind
    at: datetime
    notify: bool  # new, worse, or back after a snooze: published to the ward, not just a quiet update

    @property
    def alert_id(self) -> int:
        assert self.alert.id is not None  # a change is made of a written row
        return self.alert.id

    @property
    def patient_id(self) -> uuid.UUID:
        return self.alert.patient_id

    @property
    def ward_id(self) -> str:
        return self.alert.ward_id

    @property
    def rule(self) -> str:
        return self.alert.rule

    @property
    def state(self) -> AlertState:
        return self.alert.state

    @property
    def message(self) -> str:
        return self.alert.message

    @property
    def priority(self) -> PriorityLabel:
        """The priority as stored and sent (core.contract.AlertMessage): "high", "medium", "low"."""
        return _LABELS[self.alert.priority]


# --- commands ------------------------------------------------------------------------------------


def apply(
    conn: psycopg.Connection,
    requests: list[AlertRequest],
    clears: list[AlertClear],
    ward_of: dict[uuid.UUID, str],
    *,
    now: datetime,
) -> list[AlertChange]:
    """Bring stored alerts in line with the rules' requests (see `apply_steps`) on a sync connection."""
    if not requests and not clears:
        return []
    return run(conn, apply_steps(requests, clears, ward_of, now=now))


def apply_steps(
    requests: Sequence[AlertRequest],
    clears: Sequence[AlertClear],
    ward_of: dict[uuid.UUID, str],
    *,
    now: datetime,
    announce: bool = True,
) -> Steps[list[AlertChange]]:
    """Requests and clears of the rules, in the caller's transaction.

    Several requests for one key in one call (two rules' severities, or two readings) act as the worst
    of them; a clear for a key that is also requested in the same call counts only if it is newer.
    `announce=False`: the caller announces these changes with others of its transaction (`announce`).
    """
    if not requests and not clears:
        return []
    worst: dict[Key, AlertRequest] = {}
    for req in requests:
        key = (req.patient_id, req.rule)
        seen = worst.get(key)
        if seen is None or (req.priority, req.observed_at) > (seen.priority, seen.observed_at):
            worst[key] = req
    live = yield from _live_alerts(list(worst) + [(c.patient_id, c.rule) for c in clears])
    steps: list[tuple[Alert | None, Transition]] = []
    for key, req in worst.items():
        before = live.get(key)
        step = transition(before, Requested(req, ward_of[req.patient_id]), now)
        steps.append((before, step))
        if step.alert is not None:
            live[key] = step.alert
    changes = yield from _write(steps, now)
    # Clears see the alerts as the requests left them, with the ids of the new ones.
    live.update(((c.patient_id, c.rule), c.alert) for c in changes)
    steps = []
    for clear in clears:
        key = (clear.patient_id, clear.rule)
        before = live.get(key)
        step = transition(before, Cleared(clear), now)
        steps.append((before, step))
        if step.alert is not None:
            live[key] = step.alert
    changes += yield from _write(steps, now)
    if announce:
        yield from announce_changes(changes)
    return changes


def promote_due(conn: psycopg.Connection, *, now: datetime) -> list[AlertChange]:
    """Open every pending alert whose hold time has passed (its condition did not clear meanwhile)."""
    return run(conn, timers(HoldElapsed(), now=now))


def expire_snoozes(conn: psycopg.Connection, *, now: datetime) -> list[AlertChange]:
    """Snoozes that ran out: the condition is still there (the alert is live), so open it again and notify."""
    return run(conn, timers(SnoozeExpired(), now=now))


def timers(event: HoldElapsed | SnoozeExpired, *, now: datetime) -> Steps[list[AlertChange]]:
    """`event` for every alert whose hold (or snooze) has run out at `now`."""
    if isinstance(event, HoldElapsed):
        where, states = "pending_until <= %s", [AlertState.PENDING.value]
    else:
        where, states = "snoozed_until <= %s", [AlertState.OPEN.value, AlertState.ACKNOWLEDGED.value]
    rows = yield Sql(
        f"SELECT {_COLUMNS} FROM alerts WHERE {where} AND state = ANY(%s) ORDER BY id FOR UPDATE",
        (now, states),
        fetch="all",
    )
    alerts = [_alert(r) for r in rows]
    changes = yield from _write([(a, transition(a, event, now)) for a in alerts], now)
    yield from announce_changes(changes)
    return changes


def act(
    alert_id: int,
    event: LifecycleEvent,
    *,
    visible: Callable[[str], bool] | None = None,
    now: datetime | None = None,
    announce: bool = True,
) -> Steps[AlertChange | Refusal]:
    """One event for one alert by id (staff actions, escalations, delivery records).

    `visible(ward_id)` says whether the caller may see the alert's ward: one it may not is "not
    found", as a missing one is (alert ids count up, and another answer would tell which exist).
    Without `now` the step is stamped with the transaction's time (PostgreSQL's now()), the clock
    staff actions have always been recorded by. `announce=False` as for `apply_steps`.
    """
    # A delivery record changes no row, so it takes no lock: a nurse's acknowledgement need not wait
    # for the escalator to finish writing down who was paged.
    lock = "" if isinstance(event, Notified | NotificationFailed) else " FOR UPDATE"
    row = yield Sql(f"SELECT {_COLUMNS} FROM alerts WHERE id = %s{lock}", (alert_id,), fetch="one")
    if row is None or (visible is not None and not visible(row[2])):
        return Refusal(RefusalCode.NOT_FOUND)
    if now is None:
        now = (yield Sql("SELECT now()", fetch="one"))[0]
        assert now is not None
    before = _alert(row)
    step = transition(before, event, now)
    if step.refusal is not None:
        return step.refusal
    (change,) = yield from _write([(before, step)], now)
    if announce:
        yield from announce_changes([change])
    return change


def live_keys(conn: psycopg.Connection, rule_prefix: str) -> set[Key]:
    """(patient, rule) of every live alert whose rule starts with `rule_prefix`.

    Rules evaluated for every patient on a timer use this to send clears only where an alert exists,
    instead of one clear per patient per tick.
    """
    rows = conn.execute(
        "SELECT patient_id, rule FROM alerts WHERE state <> %s AND starts_with(rule, %s)",
        (AlertState.RESOLVED.value, rule_prefix),
    ).fetchall()
    return {(r[0], r[1]) for r in rows}


# --- rows ------------------------------------------------------------------------------------------

# The alerts people are shown (ward, record, FHIR, the end-of-stay summary): never one still
# 'pending' (the engine's hold), never one withdrawn before it opened. An SQL predicate over `alerts a`.
SHOWN_SQL = (
    " a.state <> 'pending' AND NOT EXISTS (SELECT 1 FROM alert_events w WHERE w.alert_id = a.id"
    " AND w.kind = 'withdrawn')"
)

_COLUMNS = (
    "id, patient_id, ward_id, rule, vital, priority, state, condition, message, value, threshold,"
    " observed_at, opened_at, pending_until, acknowledged_at, acknowledged_by, snoozed_until, snoozed_by,"
    " resolved_at, resolved_by"
)
_INSERT = (
    "INSERT INTO alerts (patient_id, ward_id, rule, vital, priority, state, condition, message, value,"
    " threshold, observed_at, opened_at, pending_until, acknowledged_at, acknowledged_by, snoozed_until,"
    " snoozed_by, resolved_at, resolved_by, updated_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
)
# Everything a transition may change; the key (patient, rule, ward), vital and condition never do.
_UPDATE = (
    "UPDATE alerts SET priority = %s, state = %s, message = %s, value = %s, threshold = %s,"
    " observed_at = %s, opened_at = %s, pending_until = %s, acknowledged_at = %s, acknowledged_by = %s,"
    " snoozed_until = %s, snoozed_by = %s, resolved_at = %s, resolved_by = %s, updated_at = %s WHERE id = %s"
)
_EVENT = (
    "INSERT INTO alert_events (alert_id, at, kind, actor, priority, note, detail)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s)"
)


def _alert(row: Sequence[Any]) -> Alert:
    (id_, patient_id, ward_id, rule, vital, priority, state, condition, *rest) = row
    return Alert(
        id_, patient_id, ward_id, rule, vital, Priority.parse(priority), AlertState(state),
        AlarmCondition(condition), *rest,
    )  # fmt: skip


def _mutable(alert: Alert) -> tuple[object, ...]:
    return (
        alert.priority.label, alert.state.value, alert.message, alert.value, alert.threshold,
        alert.observed_at, alert.opened_at, alert.pending_until, alert.acknowledged_at, alert.acknowledged_by,
        alert.snoozed_until, alert.snoozed_by, alert.resolved_at, alert.resolved_by,
    )  # fmt: skip


def _live_alerts(keys: list[Key]) -> Steps[dict[Key, Alert]]:
    patients = list({p for p, _ in keys})
    rules = list({r for _, r in keys})
    rows = yield Sql(
        f"SELECT {_COLUMNS} FROM alerts WHERE state <> %s AND patient_id = ANY(%s)"
        " AND rule = ANY(%s) ORDER BY id FOR UPDATE",
        (AlertState.RESOLVED.value, patients, rules),
        fetch="all",
    )
    return {(r[1], r[3]): _alert(r) for r in rows}


def _write(steps: Iterable[tuple[Alert | None, Transition]], now: datetime) -> Steps[list[AlertChange]]:
    """Insert or update each changed alert and append its records; the changes, in order."""
    updates: list[tuple[object, ...]] = []
    records: list[tuple[object, ...]] = []
    changes: list[AlertChange] = []
    for before, step in steps:
        after = step.alert
        if after is None or not (step.changed or step.records):
            continue
        if after.id is None:
            (alert_id,) = yield Sql(
                _INSERT,
                (after.patient_id, after.ward_id, after.rule, after.vital, after.priority.label,
                 after.state.value, after.condition.value, after.message, after.value, after.threshold,
                 after.observed_at, after.opened_at, after.pending_until, after.acknowledged_at,
                 after.acknowledged_by, after.snoozed_until, after.snoozed_by, after.resolved_at,
                 after.resolved_by, now),
                fetch="one",
            )  # fmt: skip
            after = dataclasses.replace(after, id=alert_id)
        elif step.changed and after != before:
            updates.append((*_mutable(after), now, after.id))
        records += [_record_row(after, r) for r in step.records]
        changes += [AlertChange(after, r.kind, r.at, step.notify) for r in step.records]
    yield SqlMany(_UPDATE, updates)
    yield SqlMany(_EVENT, records)
    return changes


def _record_row(alert: Alert, record: Record) -> tuple[object, ...]:
    return (
        alert.id, record.at, record.kind.value, record.actor, record.priority.label, record.note,
        Jsonb(dict(record.detail)),
    )  # fmt: skip


def announce_changes(changes: Iterable[AlertChange]) -> Steps[None]:
    """One AlertsChanged per ward (split to NOTIFY's size by storage.steps), delivered on commit.

    A caller that makes several changes in one transaction (the escalator: a delivery record and the
    paging alarms it raises) may announce them together, so the dashboards re-read once.
    """
    by_ward: dict[str, list[int]] = defaultdict(list)
    for change in changes:
        if change.alert_id not in by_ward[change.ward_id]:
            by_ward[change.ward_id].append(change.alert_id)
    for ward_id, alert_ids in by_ward.items():
        yield Notify(events.AlertsChanged(ward_id, tuple(alert_ids)))
