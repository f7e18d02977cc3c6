"""Staff snooze or end an alert. Each is one transaction, like acknowledging (dashboard.acknowledge):
the alert row locked FOR UPDATE, an alert_events row, an access_log row and a NOTIFY, all or nothing.

Snoozing acknowledges the alert until a time no later than the cap for its priority
(alerts.store.SNOOZE_CAP); when it runs out the engine re-opens the alert if its condition is
still there. Ending ("Avsluta") is for an alert staff know is over, mostly technical ones (a kit
returned, a device replaced); it needs a note saying why.

All three are clinical actions, for the roles care.permissions allows (nurses and physicians):
lock_alert refuses anyone else before the alert is even read, so nothing changes and an
acknowledgement never stops an escalation on someone else's word.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from care import permissions
from care.permissions import Action
from dashboard.access_log import AccessEntry, write_access_log
from dashboard.errors import AlertNotFound, AlertStateConflict, InvalidInput, RoleForbidden
from dashboard.model import AlertView, StaffUser, format_minutes
from dashboard.queries import fetch_alert
from storage.db import NOTIFY_CHANNEL

if TYPE_CHECKING:
    import uuid

    import psycopg

log = logging.getLogger(__name__)

MAX_NOTE_LENGTH = 500
MIN_RESOLVE_NOTE_LENGTH = 3
# The states staff can act on. 'pending' is the engine's (waiting for its hold time, invisible to staff).
ACTIONABLE_STATES = ("open", "acknowledged")
_PRIORITY_PHRASE = {"high": "hög prioritet", "medium": "medelprioritet", "low": "låg prioritet"}


@dataclass(frozen=True, slots=True)
class LockedAlert:
    id: int
    ward_id: str
    patient_id: uuid.UUID
    state: str
    priority: str


async def lock_alert(
    conn: psycopg.AsyncConnection, alert_id: int, staff: StaffUser, action: Action
) -> LockedAlert:
    """The alert row, locked until the transaction ends, for `action` by `staff`: RoleForbidden when
    the role may not do it (checked first, so nothing about the alert is read or revealed), else
    AlertNotFound. An alert of a ward `staff` may not see is "not found" too: alert ids count up, and
    a 403 would tell anyone which exist (issue 8, finding 11)."""
    if not permissions.may(staff.role, action):
        raise RoleForbidden(staff.role, permissions.refusal_sv(action))
    cur = await conn.execute(
        "SELECT id, ward_id, patient_id, state, priority FROM alerts WHERE id = %s FOR UPDATE", (alert_id,)
    )
    row = await cur.fetchone()
    if row is None or not staff.can_see(row[1]):
        raise AlertNotFound(alert_id)
    return LockedAlert(*row)


async def record_and_announce(
    conn: psycopg.AsyncConnection,
    alert: LockedAlert,
    *,
    kind: str,
    staff: StaffUser,
    note: str | None,
    detail: dict[str, Any],
    action: Action,
    client_address: str | None,
) -> None:
    """The alert_events row, the access_log row and the NOTIFY of one staff action on one alert."""
    await conn.execute(
        "INSERT INTO alert_events (alert_id, kind, actor, priority, note, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s::jsonb)",
        (alert.id, kind, f"staff:{staff.username}", alert.priority, note, json.dumps(detail)),
    )
    await write_access_log(
        conn, [AccessEntry(staff, alert.patient_id, action, f"alert:{alert.id}", client_address)]
    )
    payload = {"kind": "alerts", "ward_id": alert.ward_id, "alert_ids": [alert.id]}
    await conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, json.dumps(payload)))


def snooze_cap(priority: str) -> timedelta:
    from alerts.model import Priority
    from alerts.store import SNOOZE_CAP

    return SNOOZE_CAP[Priority.parse(priority)]


async def snooze_alert(
    conn: psycopg.AsyncConnection,
    *,
    alert_id: int,
    staff: StaffUser,
    minutes: int,
    note: str | None,
    client_address: str | None,
) -> AlertView:
    """open/acknowledged -> acknowledged with snoozed_until = now() + minutes (at most the priority's cap)."""
    async with conn.transaction():
        alert = await lock_alert(conn, alert_id, staff, Action.SNOOZE_ALERT)
        if alert.state not in ACTIONABLE_STATES:
            raise AlertStateConflict(alert_id, alert.state, "snooze")
        # Whole minutes against whole minutes: any number a body may carry compares without overflow
        # (timedelta(minutes=2 * 10**12) would not).
        cap_minutes = snooze_cap(alert.priority) // timedelta(minutes=1)
        if minutes > cap_minutes:
            phrase = _PRIORITY_PHRASE.get(alert.priority, alert.priority)
            raise InvalidInput(f"Högsta snooze för {phrase} är {format_minutes(cap_minutes)}", "minutes")
        cur = await conn.execute(
            "UPDATE alerts SET state = 'acknowledged',"
            " acknowledged_at = coalesce(acknowledged_at, now()),"
            " acknowledged_by = coalesce(acknowledged_by, %s),"
            " snoozed_until = now() + make_interval(mins => %s), snoozed_by = %s, updated_at = now()"
            " WHERE id = %s RETURNING snoozed_until",
            (staff.id, minutes, staff.id, alert_id),
        )
        until: datetime = (await cur.fetchone())[0]  # type: ignore[index]
        await record_and_announce(
            conn,
            alert,
            kind="snoozed",
            staff=staff,
            note=note,
            detail={"minutes": minutes, "until": until.isoformat(), "staff_user_id": staff.id},
            action=Action.SNOOZE_ALERT,
            client_address=client_address,
        )
        view = await fetch_alert(conn, alert_id)
    log.info("alert %s snoozed %d min by staff %s", alert_id, minutes, staff.id)
    assert view is not None  # locked above, so it still exists
    return view


async def resolve_alert(
    conn: psycopg.AsyncConnection,
    *,
    alert_id: int,
    staff: StaffUser,
    note: str,
    client_address: str | None,
) -> AlertView:
    """open/acknowledged -> resolved by a member of staff, with the note saying why."""
    async with conn.transaction():
        alert = await lock_alert(conn, alert_id, staff, Action.RESOLVE_ALERT)
        if alert.state not in ACTIONABLE_STATES:
            raise AlertStateConflict(alert_id, alert.state, "resolve")
        await conn.execute(
            "UPDATE alerts SET state = 'resolved', resolved_at = now(), resolved_by = %s,"
            " snoozed_until = NULL, updated_at = now() WHERE id = %s",
            (staff.id, alert_id),
        )
        await record_and_announce(
            conn,
            alert,
            kind="resolved",
            staff=staff,
            note=note,
            detail={"staff_user_id": staff.id},
            action=Action.RESOLVE_ALERT,
            client_address=client_address,
        )
        view = await fetch_alert(conn, alert_id)
    log.info("alert %s resolved by staff %s", alert_id, staff.id)
    assert view is not None
    return view
