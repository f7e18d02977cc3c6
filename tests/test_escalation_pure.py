"""paging/escalation.py: when the next step of the on-call chain is due, with the clock passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from paging.escalation import (
    MAX_LEVEL,
    EscalationDue,
    EscalationError,
    due_escalation,
    levels_to_try,
    next_due_at,
)

T0 = datetime(2025, 3, 4, 13, 7, tzinfo=UTC)
MIN = timedelta(minutes=1)
SECOND = timedelta(seconds=1)


def due(
    now: datetime, *, level: int = 0, last: datetime | None = None, after: int = 5
) -> EscalationDue | None:
    return due_escalation(
        opened_at=T0, level=level, last_escalated_at=last, escalate_after_minutes=after, now=now
    )


def test_level_1_is_due_n_minutes_after_opening_and_not_a_second_before() -> None:
    assert due(T0) is None
    assert due(T0 + 5 * MIN - SECOND) is None
    assert due(T0 + 5 * MIN - timedelta(microseconds=1)) is None
    assert due(T0 + 5 * MIN) == EscalationDue(1, T0 + 5 * MIN)
    # Late ticks (a restarted escalator) still escalate one step, due since the same moment.
    assert due(T0 + 60 * MIN) == EscalationDue(1, T0 + 5 * MIN)


def test_the_next_level_counts_from_the_last_escalation_not_from_opening() -> None:
    last = T0 + 7 * MIN  # level 1 was sent late, at 7 min
    assert due(T0 + 10 * MIN, level=1, last=last) is None
    assert due(last + 5 * MIN - SECOND, level=1, last=last) is None
    assert due(last + 5 * MIN, level=1, last=last) == EscalationDue(2, last + 5 * MIN)
    assert due(last + 5 * MIN, level=2, last=last) == EscalationDue(3, last + 5 * MIN)


def test_the_ward_interval_is_used() -> None:
    assert due(T0 + 5 * MIN, after=15) is None
    assert due(T0 + 15 * MIN, after=15) == EscalationDue(1, T0 + 15 * MIN)
    assert next_due_at(opened_at=T0, level=0, last_escalated_at=None, escalate_after_minutes=1) == T0 + MIN


def test_nothing_above_the_top_level() -> None:
    assert MAX_LEVEL == 3
    assert due(T0 + 24 * 60 * MIN, level=3, last=T0 + 15 * MIN) is None
    assert next_due_at(opened_at=T0, level=3, last_escalated_at=T0, escalate_after_minutes=5) is None


def test_a_level_with_nobody_on_call_hands_over_to_the_levels_above() -> None:
    assert list(levels_to_try(1)) == [1, 2, 3]
    assert list(levels_to_try(3)) == [3]
    with pytest.raises(EscalationError):
        levels_to_try(4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"opened_at": T0.replace(tzinfo=None)}, "aware"),
        ({"now": T0.replace(tzinfo=None)}, "aware"),
        ({"level": 4, "last_escalated_at": T0}, "0..3"),
        ({"level": -1}, "0..3"),
        ({"level": 1, "last_escalated_at": None}, "without the time"),
        ({"escalate_after_minutes": 0}, "positive"),
    ],
)
def test_impossible_states_are_refused(kwargs: dict, message: str) -> None:
    args = {"opened_at": T0, "level": 0, "last_escalated_at": None, "escalate_after_minutes": 5, "now": T0}
    with pytest.raises(EscalationError, match=message):
        due_escalation(**(args | kwargs))
