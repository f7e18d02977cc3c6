r"""The alert lifecycle as a pure state machine: one `transition(alert, event, now)` decides every step.

Rules never decide what an alert becomes. They request and clear (alerts.model), staff acknowledge,
snooze and resolve, the clock lets holds and snoozes run out, the escalator pages; each of these is
an event here, and `transition` returns the alert after it, the alert_events rows that record it,
and whether staff must be told. alerts/store.py loads the row, calls this, and writes the result:
nothing else writes `alerts` or `alert_events`. (Prometheus' rules/alerting.go keeps the same shape:
an AlertState enum and one Eval through which every transition passes.) No I/O, no clock: `now`
comes in.

    (none) --Requested--> pending --HoldElapsed--> open --Acknowledged--> acknowledged
                            |  \--Cleared--> resolved ("withdrawn", nobody was told)   |
                            \--Requested at a priority with no hold--> open             |
    open/acknowledged --Cleared (hysteresis is the rule's job)--> resolved            Snoozed: acknowledged
    open/acknowledged --Requested at a worse priority--> open again, notified         with an end; at
    open/acknowledged --StaffResolved--> resolved                                     SnoozeExpired the
                                                                                      condition is still
    An open HIGH alert latches: a clear does not resolve it until a person has        there: open again.
    acknowledged it (IEC 60601-1-8 latching alarm).

One live alert per key (a partial unique index backs this up). A request at the same or a milder
priority never notifies again: an acknowledged alert stays quiet until it worsens. Every transition
is an alert_events row (the audit trail). What cannot happen is a `Refusal` with a code; the
texts staff read are looked up by that code (dashboard/errors.py).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from alerts import texts_sv
from alerts.model import AlarmCondition, AlertClear, AlertRequest, Priority


class AlertState(StrEnum):
    """alerts.state (migration 0004). A snoozed alert is acknowledged with a `snoozed_until`."""

    PENDING = "pending"
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class EventKind(StrEnum):
    """alert_events.kind (migration 0004's CHECK): what one row of the audit trail records."""

    PENDING = "pending"
    OPENED = "opened"
    REPRIORITISED = "reprioritised"
    WITHDRAWN = "withdrawn"
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"
    SNOOZED = "snoozed"
    SNOOZE_EXPIRED = "snooze_expired"
    ESCALATED = "escalated"
    NOTIFIED = "notified"
    NOTIFICATION_FAILED = "notification_failed"
    # The ward's escalation ladder (issue 12, migration 0021): handed to a receiver of another care
    # provider or the ward's physicians, a step with nobody to receive it, the receiver taking it.
    HANDED_OFF = "handed_off"
    HANDOFF_SKIPPED = "handoff_skipped"
    HANDOFF_TAKEN = "handoff_taken"


class RefusalCode(StrEnum):
    NOT_FOUND = "not_found"  # no such alert (or, for the caller, none it may see)
    NOT_OPEN = "not_open"  # only an open alert can be acknowledged
    NOT_ACTIONABLE = "not_actionable"  # staff act on open or acknowledged alerts, not pending/resolved
    SNOOZE_TOO_LONG = "snooze_too_long"  # beyond SNOOZE_CAP for the alert's priority
    SNOOZE_TOO_SHORT = "snooze_too_short"  # a snooze is at least a minute
    NOT_ESCALATABLE = "not_escalatable"  # only an open high alert is escalated
    NOT_DUE = "not_due"  # a timer event for an alert whose hold or snooze has not run out


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
ENGINE = "engine"  # alert_events.actor of everything no person did
_STAFF_ACTIONABLE = (AlertState.OPEN, AlertState.ACKNOWLEDGED)


@dataclass(frozen=True, slots=True)
class Staff:
    """The member of staff who acts (alert_events.actor 'staff:<username>', *_by columns)."""

    id: int
    username: str

    @property
    def actor(self) -> str:
        return f"staff:{self.username}"


@dataclass(frozen=True, slots=True)
class Alert:
    """One row of `alerts`. `id` is None until the store has inserted it."""

    id: int | None
    patient_id: uuid.UUID
    ward_id: str
    rule: str
    vital: str | None
    priority: Priority
    state: AlertState
    condition: AlarmCondition
    message: str
    value: float | None
    threshold: float | None
    observed_at: datetime
    opened_at: datetime
    pending_until: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: int | None = None
    snoozed_until: datetime | None = None
    snoozed_by: int | None = None
    resolved_at: datetime | None = None
    resolved_by: int | None = None

    @property
    def live(self) -> bool:
        return self.state is not AlertState.RESOLVED


@dataclass(frozen=True, slots=True)
class Record:
    """One alert_events row."""

    kind: EventKind
    actor: str
    priority: Priority
    note: str | None
    at: datetime
    detail: Mapping[str, object] = field(default_factory=dict)


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requested:
    """A rule wants an alert for this key (the store passes the worst of one call's requests)."""

    request: AlertRequest
    ward_id: str


@dataclass(frozen=True, slots=True)
class Cleared:
    clear: AlertClear


@dataclass(frozen=True, slots=True)
class HoldElapsed:
    """The timer looked at a pending alert (it opens if its `pending_until` has passed)."""


@dataclass(frozen=True, slots=True)
class SnoozeExpired:
    """The timer looked at a snoozed alert (it opens again if its `snoozed_until` has passed)."""


@dataclass(frozen=True, slots=True)
class Acknowledged:
    by: Staff
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Snoozed:
    by: Staff
    minutes: int
    note: str | None = None


@dataclass(frozen=True, slots=True)
class StaffResolved:
    """Staff end an alert they know is over (mostly technical: a kit returned); `note` says why."""

    by: Staff
    note: str


@dataclass(frozen=True, slots=True)
class Escalated:
    """The escalator took the next step up the on-call chain (paging/escalation decides when)."""

    note: str
    detail: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Notified:
    """A notification reached its recipient; `at` is when the channel said so."""

    at: datetime
    note: str
    detail: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class NotificationFailed:
    """A delivery attempt failed, or nothing could be sent at all."""

    at: datetime
    note: str
    detail: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class HandedOff:
    """The escalation ladder handed the alert to one receiver (care.escalation_ladder decides when)."""

    note: str
    detail: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class HandoffSkipped:
    """A step of the ladder had nobody to receive the alert; `note` says why."""

    note: str
    detail: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class HandoffTaken:
    """The receiver of a hand-off took it ("Jag åker på hembesök"): the ladder stops. The alert's state
    does not change: the ward still sees it open until someone there acknowledges it."""

    by: Staff
    note: str
    detail: Mapping[str, object]


LifecycleEvent = (
    Requested | Cleared | HoldElapsed | SnoozeExpired | Acknowledged | Snoozed | StaffResolved | Escalated
    | Notified | NotificationFailed | HandedOff | HandoffSkipped | HandoffTaken
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an event cannot apply: the code, and the alert's state and priority then (`limit`: the cap
    a snooze went beyond), so a caller can word it without reading the alert again."""

    code: RefusalCode
    state: AlertState | None = None
    priority: Priority | None = None
    limit: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """What one event does. `alert` is the alert after it (None: there is none); `changed` says the
    row must be written (inserted when its id is None); `records` are the alert_events rows; `notify`:
    staff must be told (new, worse, or back after a snooze), not just a quiet update."""

    alert: Alert | None
    changed: bool = False
    records: tuple[Record, ...] = ()
    notify: bool = False
    refusal: Refusal | None = None

    @property
    def announce(self) -> bool:
        """Whether the dashboards should re-read the alert: every recorded step, never a quiet update."""
        return bool(self.records)


def transition(alert: Alert | None, event: LifecycleEvent, now: datetime) -> Transition:
    """The one place an alert changes. `alert` is the live alert of the event's key, or None."""
    if isinstance(event, Requested):
        if alert is None or not alert.live:
            return _raise(event, now)
        if alert.state is AlertState.PENDING:
            return _while_pending(alert, event.request, now)
        if event.request.priority > alert.priority:
            return _reprioritise(alert, event.request, now)
        return _quiet_update(alert, event.request, now, priority=None)
    if alert is None:
        return Transition(None) if isinstance(event, Cleared) else _refuse(None, RefusalCode.NOT_FOUND)
    match event:
        case Cleared(clear):
            return _clear(alert, clear, now)
        case HoldElapsed():
            if alert.state is not AlertState.PENDING or not _passed(alert.pending_until, now):
                return _refuse(alert, RefusalCode.NOT_DUE)
            return _open_again(alert, now, EventKind.OPENED, texts_sv.NOTE_HOLD_ELAPSED, pending_until=None)
        case SnoozeExpired():
            if alert.state not in _STAFF_ACTIONABLE or not _passed(alert.snoozed_until, now):
                return _refuse(alert, RefusalCode.NOT_DUE)
            # opened_at restarts, so an unacknowledged high alert escalates again from this moment.
            return _open_again(
                alert, now, EventKind.SNOOZE_EXPIRED, texts_sv.NOTE_SNOOZE_EXPIRED, snoozed_until=None,
                snoozed_by=None, acknowledged_at=None, acknowledged_by=None,
            )  # fmt: skip
        case Acknowledged(by, note):
            return _acknowledge(alert, by, note, now)
        case Snoozed(by, minutes, note):
            return _snooze(alert, by, minutes, note, now)
        case StaffResolved(by, note):
            if alert.state not in _STAFF_ACTIONABLE:
                return _refuse(alert, RefusalCode.NOT_ACTIONABLE)
            after = _with(alert, state=AlertState.RESOLVED, resolved_at=now, resolved_by=by.id,
                          snoozed_until=None)  # fmt: skip
            detail = {"staff_user_id": by.id}
            return _changed(after, Record(EventKind.RESOLVED, by.actor, alert.priority, note, now, detail))
        case Escalated(note, detail):
            if alert.state is not AlertState.OPEN or alert.priority is not Priority.HIGH:
                return _refuse(alert, RefusalCode.NOT_ESCALATABLE)
            return Transition(alert, records=(Record(EventKind.ESCALATED, ENGINE, alert.priority, note, now,
                                                     detail),))  # fmt: skip
        case Notified(at, note, detail):
            return Transition(alert, records=(Record(EventKind.NOTIFIED, ENGINE, alert.priority, note, at,
                                                     detail),))  # fmt: skip
        case NotificationFailed(at, note, detail):
            record = Record(EventKind.NOTIFICATION_FAILED, ENGINE, alert.priority, note, at, detail)
            return Transition(alert, records=(record,))
        case HandedOff(note, detail) | HandoffSkipped(note, detail):
            # Like an escalation: only an open high alert goes along the ladder.
            if alert.state is not AlertState.OPEN or alert.priority is not Priority.HIGH:
                return _refuse(alert, RefusalCode.NOT_ESCALATABLE)
            kind = EventKind.HANDED_OFF if isinstance(event, HandedOff) else EventKind.HANDOFF_SKIPPED
            return Transition(alert, records=(Record(kind, ENGINE, alert.priority, note, now, detail),))
        case HandoffTaken(by, note, detail):
            if alert.state not in _STAFF_ACTIONABLE:
                return _refuse(alert, RefusalCode.NOT_ACTIONABLE)
            record = Record(EventKind.HANDOFF_TAKEN, by.actor, alert.priority, note, now, detail)
            return Transition(alert, records=(record,))
    raise TypeError(f"not a lifecycle event: {type(event).__name__}")


# --- requests and clears -------------------------------------------------------------------------


def _raise(event: Requested, now: datetime) -> Transition:
    req = event.request
    hold = HOLD[(req.condition, req.priority)] if req.hold is None else req.hold
    pending = hold > timedelta(0)
    alert = Alert(
        id=None, patient_id=req.patient_id, ward_id=event.ward_id, rule=req.rule, vital=req.vital,
        priority=req.priority, state=AlertState.PENDING if pending else AlertState.OPEN,
        condition=req.condition, message=req.message, value=req.value, threshold=req.threshold,
        observed_at=req.observed_at, opened_at=now, pending_until=now + hold if pending else None,
    )  # fmt: skip
    if pending:
        record = Record(EventKind.PENDING, ENGINE, req.priority, texts_sv.note_hold(hold), now)
        return Transition(alert, changed=True, records=(record,))
    record = Record(EventKind.OPENED, ENGINE, req.priority, None, now)
    return Transition(alert, changed=True, records=(record,), notify=True)


def _while_pending(alert: Alert, req: AlertRequest, now: datetime) -> Transition:
    """A request for a key that is waiting out its hold: a priority with no hold opens it now."""
    priority = max(req.priority, alert.priority)
    hold = HOLD[(req.condition, priority)] if req.hold is None else req.hold
    if hold > timedelta(0):
        return _quiet_update(alert, req, now, priority=priority)
    after = _with(
        alert, state=AlertState.OPEN, pending_until=None, priority=priority, message=req.message,
        value=req.value, threshold=req.threshold, observed_at=max(alert.observed_at, req.observed_at),
        opened_at=now,
    )  # fmt: skip
    record = Record(EventKind.OPENED, ENGINE, priority, texts_sv.note_from_pending(alert.priority), now)
    return Transition(after, changed=True, records=(record,), notify=True)


def _reprioritise(alert: Alert, req: AlertRequest, now: datetime) -> Transition:
    # Worsening re-opens an acknowledged or snoozed alert: the acknowledgement was for the milder state.
    after = _with(
        alert, priority=req.priority, message=req.message, value=req.value, threshold=req.threshold,
        observed_at=req.observed_at, state=AlertState.OPEN, acknowledged_at=None, acknowledged_by=None,
        snoozed_until=None, snoozed_by=None,
    )  # fmt: skip
    note = texts_sv.note_reprioritised(alert.priority)
    record = Record(EventKind.REPRIORITISED, ENGINE, req.priority, note, now)
    return Transition(after, changed=True, records=(record,), notify=True)


def _quiet_update(alert: Alert, req: AlertRequest, now: datetime, *, priority: Priority | None) -> Transition:
    """Same or milder: no notification, no event. At the same priority (or a raised pending one) the
    message follows the newest value; a milder value leaves the message describing the worse state
    the alert was raised for. A value older than the stored one changes nothing."""
    if req.observed_at < alert.observed_at:
        return Transition(alert)
    same = req.priority == alert.priority
    after = _with(
        alert, value=req.value, observed_at=req.observed_at,
        message=req.message if same or priority is not None else alert.message,
        priority=priority if priority is not None else alert.priority,
    )  # fmt: skip
    return Transition(after, changed=True)


def _clear(alert: Alert, clear: AlertClear, now: datetime) -> Transition:
    if not alert.live or clear.observed_at <= alert.observed_at:
        return Transition(alert)  # nothing to end, or the normal value is older than the breach
    if alert.state is AlertState.PENDING:
        kind, note = EventKind.WITHDRAWN, texts_sv.NOTE_WITHDRAWN
    elif alert.priority is Priority.HIGH and alert.state is AlertState.OPEN:
        return Transition(alert)  # latched: a person must acknowledge a high alert before it can go away
    else:
        kind, note = EventKind.RESOLVED, texts_sv.NOTE_CONDITION_ENDED
    after = _with(alert, state=AlertState.RESOLVED, pending_until=None, snoozed_until=None, resolved_at=now)
    return _changed(after, Record(kind, ENGINE, alert.priority, note, now))


# --- staff and timers ----------------------------------------------------------------------------


def _acknowledge(alert: Alert, by: Staff, note: str | None, now: datetime) -> Transition:
    if alert.state is not AlertState.OPEN:
        return _refuse(alert, RefusalCode.NOT_OPEN)
    after = _with(alert, state=AlertState.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=by.id)
    detail = {"staff_user_id": by.id}
    return _changed(after, Record(EventKind.ACKNOWLEDGED, by.actor, alert.priority, note, now, detail))


def _snooze(alert: Alert, by: Staff, minutes: int, note: str | None, now: datetime) -> Transition:
    """Acknowledged until now + minutes. The first acknowledgement is kept if there was one."""
    if alert.state not in _STAFF_ACTIONABLE:
        return _refuse(alert, RefusalCode.NOT_ACTIONABLE)
    cap = SNOOZE_CAP[alert.priority]
    # Whole minutes against whole minutes: any number a body may carry compares without overflow
    # (timedelta(minutes=2 * 10**12) would not).
    if minutes > cap // timedelta(minutes=1):
        return Transition(
            alert, refusal=Refusal(RefusalCode.SNOOZE_TOO_LONG, alert.state, alert.priority, cap)
        )
    if minutes < 1:
        return _refuse(alert, RefusalCode.SNOOZE_TOO_SHORT)
    until = now + timedelta(minutes=minutes)
    after = _with(
        alert, state=AlertState.ACKNOWLEDGED, acknowledged_at=alert.acknowledged_at or now,
        acknowledged_by=alert.acknowledged_by if alert.acknowledged_by is not None else by.id,
        snoozed_until=until, snoozed_by=by.id,
    )  # fmt: skip
    detail = {"minutes": minutes, "until": until.isoformat(), "staff_user_id": by.id}
    return _changed(after, Record(EventKind.SNOOZED, by.actor, alert.priority, note, now, detail))


def _open_again(alert: Alert, now: datetime, kind: EventKind, note: str, **also: object) -> Transition:
    """A timer opens the alert (hold passed, or snooze ran out with the condition still there)."""
    after = _with(alert, state=AlertState.OPEN, opened_at=now, **also)
    record = Record(kind, ENGINE, alert.priority, note, now)
    return Transition(after, changed=True, records=(record,), notify=True)


def _passed(until: datetime | None, now: datetime) -> bool:
    return until is not None and until <= now


def _with(alert: Alert, **changes: object) -> Alert:
    return dataclasses.replace(alert, **changes)  # type: ignore[arg-type]


def _changed(after: Alert, record: Record) -> Transition:
    return Transition(after, changed=True, records=(record,))


def _refuse(alert: Alert | None, code: RefusalCode) -> Transition:
    if alert is None:
        return Transition(None, refusal=Refusal(code))
    return Transition(alert, refusal=Refusal(code, alert.state, alert.priority))
