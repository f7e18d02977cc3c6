"""The dashboard's side of the access log required by Patientdatalagen (2008:355) 4 kap. 3 §: who read
which patient, when, why. The table, its actions and the one writer are care.access_log's (the CLI
writes through it too); this module turns a logged-in StaffUser into rows.

Rows are written on the same connection (and, for writes, in the same transaction)
as the read they record; when the log cannot be written the read fails rather than
going unrecorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from care.access_log import (
    ACKNOWLEDGE_ALERT,
    CLEAR_MONITORING_PLAN,
    DASHBOARD,
    HANDOVER,
    ORDER_SPO2_SCALE,
    PATIENT_RECORD,
    RECORD_OBSERVATION,
    RESOLVE_ALERT,
    REVOKE_ALERT_LIMIT,
    SET_ALERT_LIMIT,
    SET_MONITORING_PLAN,
    SNOOZE_ALERT,
    WARD_OVERVIEW,
    WARD_ROUND,
    AccessRecord,
    write_async,
)
from dashboard.model import StaffUser

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "ACKNOWLEDGE_ALERT",
    "CLEAR_MONITORING_PLAN",
    "HANDOVER",
    "ORDER_SPO2_SCALE",
    "PATIENT_RECORD",
    "RECORD_OBSERVATION",
    "RESOLVE_ALERT",
    "REVOKE_ALERT_LIMIT",
    "SET_ALERT_LIMIT",
    "SET_MONITORING_PLAN",
    "SNOOZE_ALERT",
    "WARD_OVERVIEW",
    "WARD_ROUND",
    "AccessEntry",
    "entries_for",
    "write_access_log",
]


@dataclass(frozen=True, slots=True)
class AccessEntry:
    staff: StaffUser
    patient_id: uuid.UUID
    action: str
    context: str
    client_address: str | None

    def record(self) -> AccessRecord:
        """The access_log row of this entry, as care.access_log writes it."""
        return AccessRecord(
            staff_user_id=self.staff.id,
            username=self.staff.username,
            patient_id=self.patient_id,
            action=self.action,
            context=self.context,
            entry_point=DASHBOARD,
            client_address=self.client_address,
        )


async def write_access_log(conn: psycopg.AsyncConnection, entries: Iterable[AccessEntry]) -> int:
    """Insert one row per entry; returns the number of rows written."""
    return await write_async(conn, (e.record() for e in entries))


def entries_for(
    staff: StaffUser,
    patient_ids: Iterable[uuid.UUID],
    action: str,
    context: str,
    client_address: str | None,
) -> list[AccessEntry]:
    return [AccessEntry(staff, pid, action, context, client_address) for pid in patient_ids]
