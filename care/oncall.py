"""The on-call rota escalated alerts are paged to (migration 0002: oncall_shifts).

Level 1 jourläkare, 2 bakjour, 3 verksamhetschef. Only physicians go on call (care.permissions), and
only with contact details: escalation pages whoever is on call, who must be able to act on it.

Changing the rota is an admin's work (AdminAction.MANAGE_ROTA) on the dashboard (dashboard.admin_rota);
`by` None is the CLI's operator. `coverage_gaps` is the one decision of where nobody is on call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from care import permissions
from care.acting import Origin, acting_admin, admin_audited, execute
from care.permissions import Action, AdminAction
from care.refusals import RefusalCode, Refused
from storage.steps import Sql, Steps

# An on-call rota entry is one shift or a week's on-call duty (veckojour), planned at most a year ahead.
ONCALL_MAX_SHIFT = timedelta(days=14)
ONCALL_MAX_AHEAD = timedelta(days=366)
LEVELS = (1, 2, 3)
LEVEL_WORDS_SV = {1: "Jourläkare", 2: "Bakjour", 3: "Medicinskt ansvarig"}
MANAGE = AdminAction.MANAGE_ROTA


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
    *, ward_id: str, username: str, level: int, starts_at: datetime, ends_at: datetime, now: datetime,
    by: str | None = None, origin: Origin | None = None,
) -> Steps[int]:  # fmt: skip
    """Put a physician on the ward's on-call rota; returns the shift's id. `by`: the admin doing it."""
    admin = yield from acting_admin(by, MANAGE)
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
    yield from admin_audited(origin, staff=admin, action=MANAGE,
                             context=f"oncall_shift:{row[0]} add ward:{ward_id} level:{level}")  # fmt: skip
    return int(row[0])


def remove_shift(*, shift_id: int, by: str | None, origin: Origin | None) -> Steps[str]:
    """Take a shift off the rota (a row deleted: the rota says who will be paged, and the log keeps
    what was changed). Returns the shift's ward."""
    admin = yield from acting_admin(by, MANAGE)
    row = yield Sql(
        "DELETE FROM oncall_shifts WHERE id = %s RETURNING ward_id, level", (shift_id,), fetch="one"
    )
    if row is None:
        raise Refused(RefusalCode.NO_ONCALL_SHIFT, shift_id=shift_id)
    context = f"oncall_shift:{shift_id} remove ward:{row[0]} level:{row[1]}"
    yield from admin_audited(origin, staff=admin, action=MANAGE, context=context)
    return str(row[0])


@dataclass(frozen=True, slots=True)
class RotaShift:
    id: int
    level: int
    username: str
    display_name: str
    starts_at: datetime
    ends_at: datetime


def rota(ward_id: str, since: datetime, until: datetime) -> Steps[list[RotaShift]]:
    """The ward's shifts overlapping [since, until), by level and start."""
    rows = yield Sql(
        "SELECT o.id, o.level, u.username, u.display_name, o.starts_at, o.ends_at FROM oncall_shifts o"
        " JOIN staff_users u ON u.id = o.staff_user_id WHERE o.ward_id = %s AND o.ends_at > %s"
        " AND o.starts_at < %s ORDER BY o.level, o.starts_at, o.id",
        (ward_id, since, until),
        fetch="all",
    )
    return [RotaShift(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5]) for r in rows]


def coverage_gaps(
    shifts: Sequence[RotaShift], level: int, since: datetime, until: datetime
) -> list[tuple[datetime, datetime]]:
    """The stretches of [since, until) when nobody is on call at `level`, in order. Overlapping and
    adjoining shifts cover together; a shift of another level covers nothing here (escalation pages
    each level in turn, and a missing bakjour is a gap even while a jourläkare is on)."""
    gaps, covered_to = [], since
    for s in sorted((s for s in shifts if s.level == level), key=lambda s: s.starts_at):
        if s.starts_at > covered_to:
            gaps.append((covered_to, min(s.starts_at, until)))
        covered_to = max(covered_to, s.ends_at)
        if covered_to >= until:
            break
    if covered_to < until:
        gaps.append((covered_to, until))
    return [(a, b) for a, b in gaps if a < b]


def add_oncall_shift(
    conn: psycopg.Connection[Any],
    *,
    ward_id: str,
    username: str,
    level: int,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime | None = None,
    origin: Origin | None = None,
) -> int:
    """add_shift in a transaction of its own (CLI, `hemma demo`, tests)."""
    return execute(conn, add_shift(ward_id=ward_id, username=username, level=level, starts_at=starts_at,
                                   ends_at=ends_at, now=now or datetime.now(UTC), origin=origin))  # fmt: skip
