"""When an unacknowledged high alert is due to go one step up the on-call chain. Pure: no I/O, no clock.

The alert's escalation time N: the ward's policy (wards.escalate_after_minutes), shortened by the
patient's care level (care.care_levels.escalate_after: red 5, yellow 10, green 15 min, never later than
the ward's), decided by the shell and handed in. An open high alert that nobody has
acknowledged N minutes after it was raised goes to level 1 of the on-call rota (jourläkare);
if it is still open N minutes after that escalation it goes to level 2 (bakjour), and N
minutes later to level 3 (verksamhetschef). There is no step above 3. The shell
(paging/escalator.py) reads the state from the database and passes `now` in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_LEVEL = 3
LEVEL_NAMES_SV = {1: "jourläkare", 2: "bakjour", 3: "verksamhetschef"}


class EscalationError(ValueError):
    """The escalation state handed in cannot be right (naive time, unknown level, no interval)."""


@dataclass(frozen=True, slots=True)
class EscalationDue:
    level: int  # the level to escalate to now (1..MAX_LEVEL)
    due_at: datetime  # when it became due; now >= due_at


def next_due_at(
    *,
    opened_at: datetime,
    level: int,
    last_escalated_at: datetime | None,
    escalate_after_minutes: int,
) -> datetime | None:
    """When the next level falls due, or None when the alert is already at the top of the chain.

    `opened_at` is when the alert became an open high alert; `level` is the highest level it has
    been escalated to (0: none yet) and `last_escalated_at` when that happened.
    """
    _check(opened_at, level, last_escalated_at, escalate_after_minutes)
    if level >= MAX_LEVEL:
        return None
    start = opened_at if level == 0 else last_escalated_at
    assert start is not None  # _check: level > 0 needs a last escalation
    return start + timedelta(minutes=escalate_after_minutes)


def due_escalation(
    *,
    opened_at: datetime,
    level: int,
    last_escalated_at: datetime | None,
    escalate_after_minutes: int,
    now: datetime,
) -> EscalationDue | None:
    """The escalation due at `now`, or None (not yet, or nothing left above)."""
    if now.tzinfo is None:
        raise EscalationError("now must be an aware datetime")
    due_at = next_due_at(
        opened_at=opened_at,
        level=level,
        last_escalated_at=last_escalated_at,
        escalate_after_minutes=escalate_after_minutes,
    )
    if due_at is None or now < due_at:
        return None
    return EscalationDue(level + 1, due_at)


def levels_to_try(due_level: int) -> range:
    """The due level and every level above it: nobody on call at one step means the next step is asked."""
    if not 1 <= due_level <= MAX_LEVEL:
        raise EscalationError(f"escalation level must be 1..{MAX_LEVEL}, got {due_level}")
    return range(due_level, MAX_LEVEL + 1)


def _check(
    opened_at: datetime, level: int, last_escalated_at: datetime | None, escalate_after_minutes: int
) -> None:
    if opened_at.tzinfo is None or (last_escalated_at is not None and last_escalated_at.tzinfo is None):
        raise EscalationError("opened_at and last_escalated_at must be aware datetimes")
    if not 0 <= level <= MAX_LEVEL:
        raise EscalationError(f"escalation level must be 0..{MAX_LEVEL}, got {level}")
    if level > 0 and last_escalated_at is None:
        raise EscalationError(f"level {level} without the time of its escalation")
    if escalate_after_minutes <= 0:
        raise EscalationError(f"escalate_after_minutes must be positive, got {escalate_after_minutes}")
