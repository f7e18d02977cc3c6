"""The access log required by Patientdatalagen (2008:355) 4 kap. 3 §: who read which patient, when, why.

Rows are written on the same connection (and, for writes, in the same transaction)
as the read they record; when the log cannot be written the read fails rather than
going unrecorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dashboard.model import StaffUser

if TYPE_CHECKING:
    import psycopg

WARD_OVERVIEW = "ward_overview"
PATIENT_RECORD = "patient_record"
ACKNOWLEDGE_ALERT = "acknowledge_alert"
SNOOZE_ALERT = "snooze_alert"
RESOLVE_ALERT = "resolve_alert"
RECORD_OBSERVATION = "record_observation"
# Care-team orders from the record (dashboard.care_orders), in the order's transaction.
SET_ALERT_LIMIT = "set_alert_limit"
REVOKE_ALERT_LIMIT = "revoke_alert_limit"
ORDER_SPO2_SCALE = "order_spo2_scale"
SET_MONITORING_PLAN = "set_monitoring_plan"
CLEAR_MONITORING_PLAN = "clear_monitoring_plan"

# One row per entry; the same statement for the async pool and for the synchronous connection the
# care-team orders run on (dashboard.care_orders).
INSERT_ACCESS_LOG = (
    "INSERT INTO access_log (staff_user_id, username, patient_id, action, context, client_address)"
    " VALUES (%s, %s, %s, %s, %s, %s)"
)


@dataclass(frozen=True, slots=True)
class AccessEntry:
    staff: StaffUser
    patient_id: uuid.UUID
    action: str
    context: str
    client_address: str | None

    def row(self) -> tuple[object, ...]:
        """The parameters of INSERT_ACCESS_LOG for this entry."""
        return (
            self.staff.id,
            self.staff.username,
            self.patient_id,
            self.action,
            self.context,
            self.client_address,
        )


async def write_access_log(conn: psycopg.AsyncConnection, entries: Iterable[AccessEntry]) -> int:
    """Insert one row per entry; returns the number of rows written."""
    rows = [e.row() for e in entries]
    if not rows:
        return 0
    async with conn.cursor() as cur:
        await cur.executemany(INSERT_ACCESS_LOG, rows)
    return len(rows)


def entries_for(
    staff: StaffUser,
    patient_ids: Iterable[uuid.UUID],
    action: str,
    context: str,
    client_address: str | None,
) -> list[AccessEntry]:
    return [AccessEntry(staff, pid, action, context, client_address) for pid in patient_ids]
