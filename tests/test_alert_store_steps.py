"""alerts/store.py as steps: what the store asks the database, driven by hand, without a database.

The store's commands are generators (storage.steps); these tests play the database's part, so the
writes that follow a transition, and the one announcement, are checked without PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts import store
from alerts.lifecycle import Acknowledged, AlertState, EventKind, Refusal, RefusalCode, Staff
from alerts.model import AlertClear, AlertRequest, Priority
from core.events import AlertsChanged
from storage.steps import Notify, Sql, SqlMany, Step, Steps

T0 = datetime(2025, 3, 4, 13, 0, tzinfo=UTC)
PATIENT = uuid.UUID("00000000-0000-4000-8000-000000000001")


def drive(steps: Steps[Any], answer: Callable[[Step], Any]) -> tuple[Any, list[Step]]:
    """Run `steps`, answering each with `answer(step)`; the command's result and every step it took."""
    seen: list[Step] = []
    reply: Any = None
    while True:
        try:
            step = steps.send(reply)
        except StopIteration as done:
            return done.value, seen
        seen.append(step)
        reply = answer(step)


def row(state: str = "open", priority: str = "high") -> tuple[object, ...]:
    return (
        41, PATIENT, "norr", "spo2_low", "spo2", priority, state, "physiological", "SpO2 84 %", 84.0, 88.0,
        T0, T0, None, None, None, None, None, None, None,
    )  # fmt: skip


def test_acknowledging_writes_the_row_the_event_and_announces_once() -> None:
    def answer(step: Step) -> Any:
        return row() if isinstance(step, Sql) and "FOR UPDATE" in str(step.query) else None

    change, seen = drive(
        store.act(41, Acknowledged(Staff(7, "sara"), "Ringt"), now=T0 + timedelta(minutes=2)), answer
    )
    assert (change.kind, change.state, change.priority, change.notify) == (
        EventKind.ACKNOWLEDGED,
        "acknowledged",
        "high",
        False,
    )
    lock, update, event, notify = seen
    assert isinstance(lock, Sql) and lock.params == (41,)
    assert isinstance(update, SqlMany) and [(p[1], p[9]) for p in update.params_seq] == [("acknowledged", 7)]  # type: ignore[index, union-attr]
    assert isinstance(event, SqlMany)
    [(alert_id, at, kind, actor, priority, note, _detail)] = event.params_seq  # type: ignore[misc]
    assert (alert_id, at, kind, actor, priority, note) == (
        41,
        T0 + timedelta(minutes=2),
        "acknowledged",
        "staff:sara",
        "high",
        "Ringt",
    )
    assert notify == Notify(AlertsChanged("norr", (41,)))


def test_a_refusal_writes_nothing() -> None:
    outcome, seen = drive(
        store.act(41, Acknowledged(Staff(7, "sara")), now=T0), lambda step: row("acknowledged")
    )
    assert outcome == Refusal(RefusalCode.NOT_OPEN, AlertState.ACKNOWLEDGED, Priority.HIGH)
    assert len(seen) == 1  # the locking read only


def test_an_alert_the_caller_may_not_see_is_not_found() -> None:
    other_ward = store.act(41, Acknowledged(Staff(7, "sara")), visible=lambda ward: ward == "syd", now=T0)
    outcome, seen = drive(other_ward, lambda step: row())
    assert outcome == Refusal(RefusalCode.NOT_FOUND) and len(seen) == 1


def test_a_request_and_a_newer_clear_in_one_call_open_and_resolve_one_alert() -> None:
    req = AlertRequest(PATIENT, "spo2_low", "spo2", Priority.MEDIUM, "SpO2 91 %", 91.0, 92.0, T0)
    clear = AlertClear(PATIENT, "spo2_low", T0 + timedelta(minutes=1))

    def answer(step: Step) -> Any:
        if isinstance(step, Sql) and "INSERT INTO alerts" in str(step.query):
            return (5,)
        return [] if isinstance(step, Sql) and step.fetch == "all" else None

    changes, seen = drive(
        store.apply_steps([req], [clear], {PATIENT: "norr"}, now=T0 + timedelta(minutes=2)), answer
    )
    assert [(c.alert_id, c.kind, c.state) for c in changes] == [
        (5, "opened", "open"),
        (5, "resolved", "resolved"),
    ]
    assert [c.notify for c in changes] == [True, False]
    assert seen[-1] == Notify(AlertsChanged("norr", (5,)))
    assert sum(isinstance(s, Notify) for s in seen) == 1
