"""A nurse or physician acknowledges an alert: one transaction, audited, announced to every dashboard."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from care.permissions import Action
from dashboard.alert_actions import MAX_NOTE_LENGTH, lock_alert, record_and_announce
from dashboard.errors import AlertNotAcknowledgeable
from dashboard.model import AlertView, StaffUser
from dashboard.queries import fetch_alert

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

__all__ = ["MAX_NOTE_LENGTH", "acknowledge_alert"]


async def acknowledge_alert(
    conn: psycopg.AsyncConnection,
    *,
    alert_id: int,
    staff: StaffUser,
    note: str | None,
    client_address: str | None,
) -> AlertView:
    """open -> acknowledged, with an alert_events row, an access_log row and a NOTIFY, all or nothing.

    The row lock (FOR UPDATE) makes two nurses pressing "Kvittera" at once safe: the
    second sees state 'acknowledged' and gets AlertNotAcknowledgeable (HTTP 409). A
    'pending' alert (the engine's, waiting for its hold time) is not acknowledgeable either.
    The NOTIFY is delivered only if the transaction commits. An acknowledgement stops escalation, so
    only the roles care.permissions allows may give one (RoleForbidden, HTTP 403, otherwise).
    """
    async with conn.transaction():
        alert = await lock_alert(conn, alert_id, staff, Action.ACKNOWLEDGE_ALERT)
        if alert.state != "open":
            raise AlertNotAcknowledgeable(alert_id, alert.state)
        await conn.execute(
            "UPDATE alerts SET state = 'acknowledged', acknowledged_at = now(), acknowledged_by = %s,"
            " updated_at = now() WHERE id = %s",
            (staff.id, alert_id),
        )
        await record_and_announce(
            conn,
            alert,
            kind="acknowledged",
            staff=staff,
            note=note,
            detail={"staff_user_id": staff.id},
            action=Action.ACKNOWLEDGE_ALERT,
            client_address=client_address,
        )
        view = await fetch_alert(conn, alert_id)
    log.info("alert %s acknowledged by staff %s", alert_id, staff.id)
    assert view is not None  # locked above, so it still exists
    return view
