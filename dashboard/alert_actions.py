"""Staff acknowledge, snooze or end an alert: what the dashboard adds to the store's command.

What an acknowledgement, a snooze or an ending does to the alert is alerts.lifecycle's decision and
alerts.store's write (row locked FOR UPDATE, alert_events row, NOTIFY). The dashboard adds who may
act and the access-log row, in the same steps, so the route runs all of it in one transaction with
`storage.steps.run_async`: all or nothing, and the NOTIFY is delivered only if it commits.

All three are clinical actions, for the roles care.permissions allows (nurses and physicians): a
role that may not is refused before the alert is even read, so nothing changes and an
acknowledgement never stops an escalation on someone else's word. An alert of a ward the member of
staff may not see is "not found", like a missing one (issue 8, finding 11: ids count up, and a 403
would tell anyone which exist). Two nurses pressing "Kvittera" at once are safe: the row lock makes
the second see 'acknowledged', and she is told so (HTTP 409).

Snoozing acknowledges the alert until a time no later than the cap for its priority
(alerts.lifecycle.SNOOZE_CAP); when it runs out the engine re-opens the alert if its condition is
still there. Ending ("Avsluta") is for an alert staff know is over, mostly technical ones (a kit
returned, a device replaced); it needs a note saying why.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from alerts import store
from alerts.lifecycle import (
    Acknowledged,
    LifecycleEvent,
    Refusal,
    RefusalCode,
    Snoozed,
    Staff,
    StaffResolved,
)
from alerts.texts_sv import PRIORITY_PHRASE_SV
from care import permissions
from care.access_log import INSERT_ACCESS_LOG
from care.permissions import Action
from dashboard.access_log import AccessEntry
from dashboard.errors import (
    ActionError,
    AlertNotAcknowledgeable,
    AlertNotFound,
    AlertStateConflict,
    InvalidInput,
    RoleForbidden,
)
from dashboard.formatting import format_minutes
from dashboard.model import StaffUser
from storage.steps import SqlMany, Steps

if TYPE_CHECKING:
    from alerts.store import AlertChange

__all__ = ["MAX_NOTE_LENGTH", "MIN_RESOLVE_NOTE_LENGTH", "acknowledge", "resolve", "snooze"]

MAX_NOTE_LENGTH = 500
MIN_RESOLVE_NOTE_LENGTH = 3


def acknowledge(
    alert_id: int, staff: StaffUser, note: str | None, client_address: str | None
) -> Steps[AlertChange]:
    """open -> acknowledged (a pending alert, waiting for its hold time, is not acknowledgeable)."""
    event = Acknowledged(_staff(staff), note)
    return _act(alert_id, staff, Action.ACKNOWLEDGE_ALERT, event, client_address)


def snooze(
    alert_id: int, staff: StaffUser, minutes: int, note: str | None, client_address: str | None
) -> Steps[AlertChange]:
    """open/acknowledged -> acknowledged until now + minutes (at most the priority's cap)."""
    event = Snoozed(_staff(staff), minutes, note)
    return _act(alert_id, staff, Action.SNOOZE_ALERT, event, client_address)


def resolve(alert_id: int, staff: StaffUser, note: str, client_address: str | None) -> Steps[AlertChange]:
    """open/acknowledged -> resolved by a member of staff, with the note saying why."""
    event = StaffResolved(_staff(staff), note)
    return _act(alert_id, staff, Action.RESOLVE_ALERT, event, client_address)


def _act(
    alert_id: int, staff: StaffUser, action: Action, event: LifecycleEvent, client_address: str | None
) -> Steps[AlertChange]:
    if not permissions.may(staff.role, action):
        raise RoleForbidden(staff.role, permissions.refusal_sv(action))
    outcome = yield from store.act(alert_id, event, visible=staff.can_see)
    if isinstance(outcome, Refusal):
        raise _refused(alert_id, action, outcome)
    entry = AccessEntry(staff, outcome.patient_id, action.value, f"alert:{alert_id}", client_address)
    yield SqlMany(INSERT_ACCESS_LOG, [entry.record().row()])
    return outcome


def _staff(staff: StaffUser) -> Staff:
    return Staff(staff.id, staff.username)


_VERBS = {
    Action.ACKNOWLEDGE_ALERT: "acknowledge",
    Action.SNOOZE_ALERT: "snooze",
    Action.RESOLVE_ALERT: "resolve",
}


def _refused(alert_id: int, action: Action, refusal: Refusal) -> ActionError:
    """The dashboard's error (HTTP status and Swedish text) for the lifecycle's refusal code."""
    match refusal.code:
        case RefusalCode.NOT_FOUND:
            return AlertNotFound(alert_id)
        case RefusalCode.NOT_OPEN if refusal.state is not None:
            return AlertNotAcknowledgeable(alert_id, refusal.state)
        case RefusalCode.SNOOZE_TOO_LONG if refusal.priority is not None and refusal.limit is not None:
            phrase = PRIORITY_PHRASE_SV[refusal.priority]
            cap = format_minutes(refusal.limit // timedelta(minutes=1))
            return InvalidInput(f"Högsta snooze för {phrase} är {cap}", "minutes")
        case RefusalCode.SNOOZE_TOO_SHORT:
            return InvalidInput("Snooze måste vara minst 1 min", "minutes")
    return AlertStateConflict(alert_id, refusal.state or "okänt", _VERBS[action])
