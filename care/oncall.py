"""The on-call rota escalated alerts are paged to (migration 0002: oncall_shifts).

Level 1 jourläkare, 2 bakjour, 3 verksamhetschef. Only physicians go on call (care.permissions), and
only with contact details: escalation pages whoever is on call, who must be able to act on it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from care import permissions
from care.acting import execute
from care.permissions import Action
from care.refusals import RefusalCode, Refused
from storage.steps import Sql, Steps

# An on-call rota entry is one shift or a week's on-call duty (veckojour), planned at most a year ahead.
ONCALL_MAX_SHIFT = timedelta(days=14)
ONCALL_MAX_AHEAD = timedelta(days=366)
LEVELS = (1, 2, 3)


def check_shift_times(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    """A rota entry's times: zoned, ending after they start, at most ONCALL_MAX_SHIFT long and ending
    within ONCALL_MAX_AHEAD of `now`. Past shifts are allowed (the rota is also a record)."""
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise Refused(RefusalCode.SHIFT_ZONE)
    if ends_at <= starts_at:
        raise Refused(RefusalCode.SHIFT_ENDS_FIRST)
    if ends_at - starts_at > ONCALL_MAX_SHIFT:
        raise Refused(RefusalCode.SHIFT_TOO_LONG, days=ONCALL_MAX_SHIFT.days)
    if ends_at > now + ONCALL_MAX_AHEAD:
        raise Refused(RefusalCode.SHIFT_TOO_FAR_AHEAD)


def add_shift(
    *, ward_id: str, username: str, level: int, starts_at: datetime, ends_at: datetime, now: datetime
) -> Steps[int]:
    """Put a physician on the ward's on-call rota; returns the shift's id."""
    check_shift_times(starts_at, ends_at, now)
    if level not in LEVELS:
        raise Refused(RefusalCode.ONCALL_LEVEL, level=level)
    ward = yield Sql("SELECT 1 FROM wards WHERE id = %s", (ward_id,), fetch="one")
    if ward is None:
        raise Refused(RefusalCode.NO_WARD, ward_id=ward_id)
    staff = yield Sql(
        "SELECT u.id, u.disabled, c.staff_user_id IS NOT NULL, u.role FROM staff_users u"
        " LEFT JOIN staff_contacts c ON c.staff_user_id = u.id WHERE u.username = %s",
        (username,),
        fetch="one",
    )
    if staff is None:
        raise Refused(RefusalCode.NO_STAFF_ACCOUNT, username=username)
    staff_id, disabled, has_contact, role = staff
    if disabled:
        raise Refused(RefusalCode.STAFF_DISABLED, username=username)
    if not permissions.may(role, Action.BE_ON_CALL):
        raise Refused(RefusalCode.ROLE, username=username, role=str(role), action=Action.BE_ON_CALL)
    if not has_contact:  # without an address nobody can page them: escalation would pass them by
        raise Refused(RefusalCode.NO_CONTACT, username=username)
    row = yield Sql(
        "INSERT INTO oncall_shifts (ward_id, staff_user_id, level, starts_at, ends_at)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (ward_id, staff_id, level, starts_at, ends_at),
        fetch="one",
    )
    return int(row[0])


def add_oncall_shift(
    conn: psycopg.Connection[Any],
    *,
    ward_id: str,
    username: str,
    level: int,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime | None = None,
) -> int:
    """add_shift in a transaction of its own (CLI, `hemma demo`, tests)."""
    return execute(conn, add_shift(ward_id=ward_id, username=username, level=level, starts_at=starts_at,
                                   ends_at=ends_at, now=now or datetime.now(UTC)))  # fmt: skip
