"""A nurse or physician acknowledges an alert: one transaction, audited, announced to every dashboard."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from dashboard.access_log import ACKNOWLEDGE_ALERT, AccessEntry, write_access_log
from dashboard.errors import AlertNotAcknowledgeable, AlertNotFound, WardForbidden
from dashboard.model import AlertView, StaffUser
from dashboard.queries import fetch_alert
from hemma.db import NOTIFY_CHANNEL

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

MAX_NOTE_LENGTH = 500


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
    second sees state 'acknowledged' and gets AlertNotAcknowledgeable (HTTP 409).
    The NOTIFY is delivered only if the transaction commits.
    """
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT ward_id, patient_id, state, priority FROM alerts WHERE id = %s FOR UPDATE", (alert_id,)
        )
        row = await cur.fetchone()
        if row is None:
            raise AlertNotFound(alert_id)
        ward_id, patient_id, state, priority = row
        if not staff.can_see(ward_id):
            raise WardForbidden(ward_id)
        if state != "open":
            raise AlertNotAcknowledgeable(alert_id, state)
        await conn.execute(
            "UPDATE alerts SET state = 'acknowledged', acknowledged_at = now(), acknowledged_by = %s,"
            " updated_at = now() WHERE id = %s",
            (staff.id, alert_id),
        )
        await conn.execute(
            "INSERT INTO alert_events (alert_id, kind, actor, priority, note, detail)"
            " VALUES (%s, 'acknowledged', %s, %s, %s, %s::jsonb)",
            (alert_id, f"staff:{staff.username}", priority, note, json.dumps({"staff_user_id": staff.id})),
        )
        await write_access_log(
            conn,
            [AccessEntry(staff, patient_id, ACKNOWLEDGE_ALERT, f"alert:{alert_id}", client_address)],
        )
        payload = {"kind": "alerts", "ward_id": ward_id, "alert_ids": [alert_id]}
        await conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, json.dumps(payload)))
        alert = await fetch_alert(conn, alert_id)
    log.info("alert %s acknowledged by staff %s", alert_id, staff.id)
    assert alert is not None  # locked above, so it still exists
    return alert
