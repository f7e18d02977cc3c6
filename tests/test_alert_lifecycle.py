"""alerts/lifecycle.py: every transition of an alert, and every refusal, without a database.

The store (alerts/store.py) only loads, calls `transition` and writes; what an event does is decided
here, so these tests are the lifecycle's specification. The integration tests (test_engine_scenarios,
test_dashboard_*, test_escalation*) check the same behaviour through PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.lifecycle import (
    ENGINE,
    SNOOZE_CAP,
    Acknowledged,
    Alert,
    AlertState,
    Cleared,
    Escalated,
    EventKind,
    HoldElapsed,
    LifecycleEvent,
    NotificationFailed,
    Notified,
    Record,
    Refusal,
    RefusalCode,
    Requested,
    Snoozed,
    SnoozeExpired,
    Staff,
    StaffResolved,
    Transition,
    transition,
)
from alerts.model import AlarmCondition, AlertClear, AlertRequest, Priority

T0 = datetime(2025, 3, 4, 13, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
PATIENT = uuid.UUID("00000000-0000-4000-8000-000000000001")
WARD = "norr"
SARA = Staff(7, "sara")
HIGH, MEDIUM, LOW = Priority.HIGH, Priority.MEDIUM, Priority.LOW
PHYS, TECH = AlarmCondition.PHYSIOLOGICAL, AlarmCondition.TECHNICAL


def request(
    priority: Priority = MEDIUM,
    at: datetime = T0,
    *,
    condition: AlarmCondition = PHYS,
    message: str | None = None,
    value: float = 91.0,
    hold: timedelta | None = None,
) -> Requested:
    req = AlertRequest(
        patient_id=PATIENT, rule="spo2_low", vital="spo2", priority=priority,
        message=message or f"SpO2 {value:g} % ({priority.label})", value=value, threshold=92.0,
        observed_at=at, condition=condition, hold=hold,
    )  # fmt: skip
    return Requested(req, WARD)


def clear(at: datetime) -> Cleared:
    return Cleared(AlertClear(PATIENT, "spo2_low", at))


def stored(t: Transition, alert_id: int = 1) -> Alert:
    """The alert as the store would hold it after writing `t` (inserted ones get an id)."""
    assert t.alert is not None and t.refusal is None
    return t.alert if t.alert.id is not None else dataclasses.replace(t.alert, id=alert_id)


def alert(priority: Priority = MEDIUM, state: AlertState = AlertState.OPEN, **changes: object) -> Alert:
    """A stored alert raised at T0 (open, unless `state` says otherwise)."""
    base = stored(transition(None, request(priority), T0))
    return dataclasses.replace(base, state=state, **changes)  # type: ignore[arg-type]


def kinds(t: Transition) -> list[EventKind]:
    return [r.kind for r in t.records]


# --- raising -----------------------------------------------------------------------------------


def test_a_medium_physiological_request_opens_at_once_and_notifies() -> None:
    t = transition(None, request(MEDIUM), T0 + MIN)
    assert t.alert == Alert(
        id=None, patient_id=PATIENT, ward_id=WARD, rule="spo2_low", vital="spo2", priority=MEDIUM,
        state=AlertState.OPEN, condition=PHYS, message="SpO2 91 % (medium)", value=91.0, threshold=92.0,
        observed_at=T0, opened_at=T0 + MIN,
    )  # fmt: skip
    assert (t.changed, t.notify, t.announce, t.refusal) == (True, True, True, None)
    assert t.records == (Record(EventKind.OPENED, ENGINE, MEDIUM, None, T0 + MIN),)


@pytest.mark.parametrize(
    ("priority", "condition", "hold"),
    [(LOW, PHYS, 10 * MIN), (LOW, TECH, 10 * MIN), (MEDIUM, TECH, 10 * MIN)],
)
def test_low_physiological_and_technical_alarms_wait_out_a_hold_first(
    priority: Priority, condition: AlarmCondition, hold: timedelta
) -> None:
    t = transition(None, request(priority, condition=condition), T0)
    assert t.alert is not None
    assert (t.alert.state, t.alert.pending_until, t.notify) == (AlertState.PENDING, T0 + hold, False)
    assert t.records == (Record(EventKind.PENDING, ENGINE, priority, "hålltid 0:10:00", T0),)


@pytest.mark.parametrize("priority", [HIGH, MEDIUM])
def test_high_alarms_and_medium_physiological_ones_have_no_hold(priority: Priority) -> None:
    conditions = (PHYS, TECH) if priority is HIGH else (PHYS,)
    for condition in conditions:
        t = transition(None, request(priority, condition=condition), T0)
        assert t.alert is not None and t.alert.state is AlertState.OPEN and t.notify


def test_a_request_may_bring_its_own_hold() -> None:
    t = transition(None, request(MEDIUM, condition=TECH, hold=timedelta(0)), T0)
    assert t.alert is not None and t.alert.state is AlertState.OPEN
    t = transition(None, request(HIGH, hold=5 * MIN), T0)
    assert t.alert is not None and (t.alert.state, t.alert.pending_until) == (
        AlertState.PENDING,
        T0 + 5 * MIN,
    )


def test_a_request_after_a_resolved_alert_raises_a_new_one() -> None:
    t = transition(alert(state=AlertState.RESOLVED, resolved_at=T0), request(MEDIUM, T0 + MIN), T0 + MIN)
    assert t.alert is not None and t.alert.id is None and kinds(t) == [EventKind.OPENED]


# --- while pending -----------------------------------------------------------------------------


def pending(priority: Priority = LOW) -> Alert:
    return stored(transition(None, request(priority), T0))


def test_the_hold_elapsing_opens_a_pending_alert_and_notifies() -> None:
    early = transition(pending(), HoldElapsed(), T0 + 9 * MIN)
    assert early.refusal == Refusal(RefusalCode.NOT_DUE, AlertState.PENDING, LOW) and not early.records
    t = transition(pending(), HoldElapsed(), T0 + 10 * MIN)
    assert t.alert is not None
    assert (t.alert.state, t.alert.pending_until, t.alert.opened_at) == (AlertState.OPEN, None, T0 + 10 * MIN)
    assert t.records == (Record(EventKind.OPENED, ENGINE, LOW, "hålltiden passerade", T0 + 10 * MIN),)
    assert t.notify


def test_a_clear_during_the_hold_withdraws_the_alert_and_nobody_is_told() -> None:
    t = transition(pending(), clear(T0 + MIN), T0 + 2 * MIN)
    assert t.alert is not None
    assert (t.alert.state, t.alert.pending_until, t.alert.resolved_at) == (
        AlertState.RESOLVED,
        None,
        T0 + 2 * MIN,
    )
    assert t.records == (
        Record(EventKind.WITHDRAWN, ENGINE, LOW, "tillståndet upphörde under hålltiden", T0 + 2 * MIN),
    )
    assert not t.notify


def test_a_worse_request_with_no_hold_opens_a_pending_alert_now() -> None:
    t = transition(pending(LOW), request(MEDIUM, T0 + MIN, value=89.0), T0 + 2 * MIN)
    assert t.alert is not None
    assert (t.alert.state, t.alert.priority, t.alert.value, t.alert.observed_at, t.alert.opened_at) == (
        AlertState.OPEN, MEDIUM, 89.0, T0 + MIN, T0 + 2 * MIN,
    )  # fmt: skip
    assert t.records == (Record(EventKind.OPENED, ENGINE, MEDIUM, "från väntande låg", T0 + 2 * MIN),)
    assert t.notify


def test_a_request_during_the_hold_that_still_holds_updates_quietly() -> None:
    before = stored(transition(None, request(LOW, condition=TECH), T0))
    t = transition(before, request(MEDIUM, T0 + MIN, condition=TECH, value=80.0), T0 + MIN)
    assert t.alert is not None and t.changed and not t.records and not t.notify
    assert (t.alert.state, t.alert.priority, t.alert.value, t.alert.pending_until) == (
        AlertState.PENDING, MEDIUM, 80.0, T0 + 10 * MIN,
    )  # fmt: skip


# --- open and acknowledged ---------------------------------------------------------------------


@pytest.mark.parametrize("state", [AlertState.OPEN, AlertState.ACKNOWLEDGED])
def test_a_worse_priority_reopens_and_notifies_even_an_acknowledged_or_snoozed_alert(
    state: AlertState,
) -> None:
    before = alert(
        MEDIUM, state, acknowledged_at=T0, acknowledged_by=7, snoozed_until=T0 + 60 * MIN, snoozed_by=7
    )
    t = transition(before, request(HIGH, T0 + MIN, value=84.0), T0 + 2 * MIN)
    assert t.alert == dataclasses.replace(
        before, priority=HIGH, state=AlertState.OPEN, message="SpO2 84 % (high)", value=84.0,
        observed_at=T0 + MIN, acknowledged_at=None, acknowledged_by=None, snoozed_until=None, snoozed_by=None,
    )  # fmt: skip
    assert t.records == (Record(EventKind.REPRIORITISED, ENGINE, HIGH, "från medel", T0 + 2 * MIN),)
    assert t.notify


@pytest.mark.parametrize("priority", [MEDIUM, LOW])
def test_the_same_or_a_milder_priority_never_notifies(priority: Priority) -> None:
    before = alert(MEDIUM, AlertState.ACKNOWLEDGED, acknowledged_at=T0, acknowledged_by=7)
    t = transition(before, request(priority, T0 + MIN, value=90.0), T0 + MIN)
    assert t.alert is not None and not t.records and not t.notify and not t.announce
    assert (t.alert.state, t.alert.priority, t.alert.value, t.alert.observed_at) == (
        AlertState.ACKNOWLEDGED, MEDIUM, 90.0, T0 + MIN,
    )  # fmt: skip
    # At the same priority the message follows the value; a milder one leaves the worse state's text.
    expected = "SpO2 90 % (medium)" if priority is MEDIUM else before.message
    assert t.alert.message == expected


def test_a_value_older_than_the_stored_one_changes_nothing() -> None:
    before = alert(MEDIUM)
    t = transition(before, request(MEDIUM, T0 - MIN, value=88.0), T0 + MIN)
    assert t == Transition(before)


def test_a_clear_resolves_an_open_medium_or_an_acknowledged_high_alert() -> None:
    for before in (
        alert(MEDIUM),
        alert(HIGH, AlertState.ACKNOWLEDGED, acknowledged_at=T0, acknowledged_by=7),
    ):
        t = transition(before, clear(T0 + MIN), T0 + 2 * MIN)
        assert t.alert is not None and (t.alert.state, t.alert.resolved_at) == (
            AlertState.RESOLVED,
            T0 + 2 * MIN,
        )
        assert t.records == (
            Record(EventKind.RESOLVED, ENGINE, before.priority, "tillståndet upphörde", T0 + 2 * MIN),
        )
        assert not t.notify


def test_an_open_high_alert_latches_until_acknowledged() -> None:
    before = alert(HIGH)
    assert transition(before, clear(T0 + MIN), T0 + MIN) == Transition(before)
    acked = stored(transition(before, Acknowledged(SARA), T0 + 2 * MIN))
    t = transition(acked, clear(T0 + 3 * MIN), T0 + 3 * MIN)
    assert t.alert is not None and t.alert.state is AlertState.RESOLVED


def test_a_clear_older_than_the_breach_or_for_no_alert_does_nothing() -> None:
    before = alert(MEDIUM)
    assert transition(before, clear(T0), T0 + MIN) == Transition(before)
    assert transition(None, clear(T0), T0) == Transition(None)
    resolved = alert(MEDIUM, AlertState.RESOLVED, resolved_at=T0)
    assert transition(resolved, clear(T0 + MIN), T0 + MIN) == Transition(resolved)


# --- staff -------------------------------------------------------------------------------------


def test_acknowledging_an_open_alert() -> None:
    t = transition(alert(HIGH), Acknowledged(SARA, "Ringt"), T0 + MIN)
    assert t.alert is not None
    assert (t.alert.state, t.alert.acknowledged_at, t.alert.acknowledged_by) == (
        AlertState.ACKNOWLEDGED,
        T0 + MIN,
        7,
    )
    assert t.records == (
        Record(EventKind.ACKNOWLEDGED, "staff:sara", HIGH, "Ringt", T0 + MIN, {"staff_user_id": 7}),
    )
    assert not t.notify and t.announce


@pytest.mark.parametrize("state", [AlertState.PENDING, AlertState.ACKNOWLEDGED, AlertState.RESOLVED])
def test_only_an_open_alert_can_be_acknowledged(state: AlertState) -> None:
    before = alert(HIGH, state)
    t = transition(before, Acknowledged(SARA), T0 + MIN)
    assert t == Transition(before, refusal=Refusal(RefusalCode.NOT_OPEN, state, HIGH))


def test_staff_events_for_no_alert_are_refused_as_not_found() -> None:
    for event in (Acknowledged(SARA), Snoozed(SARA, 15), StaffResolved(SARA, "Klart"), Escalated("x", {})):
        assert transition(None, event, T0) == Transition(None, refusal=Refusal(RefusalCode.NOT_FOUND))


@pytest.mark.parametrize("state", [AlertState.OPEN, AlertState.ACKNOWLEDGED])
def test_a_snooze_acknowledges_until_then_keeping_the_first_acknowledgement(state: AlertState) -> None:
    first = {"acknowledged_at": T0, "acknowledged_by": 3} if state is AlertState.ACKNOWLEDGED else {}
    t = transition(alert(MEDIUM, state, **first), Snoozed(SARA, 60, "Ny mätning"), T0 + MIN)
    assert t.alert is not None
    assert (t.alert.state, t.alert.snoozed_until, t.alert.snoozed_by) == (
        AlertState.ACKNOWLEDGED,
        T0 + 61 * MIN,
        7,
    )
    assert (t.alert.acknowledged_at, t.alert.acknowledged_by) == ((T0, 3) if first else (T0 + MIN, 7))
    detail = {"minutes": 60, "until": (T0 + 61 * MIN).isoformat(), "staff_user_id": 7}
    assert t.records == (Record(EventKind.SNOOZED, "staff:sara", MEDIUM, "Ny mätning", T0 + MIN, detail),)


@pytest.mark.parametrize(("priority", "cap"), [(HIGH, 30), (MEDIUM, 240), (LOW, 1440)])
def test_a_snooze_is_capped_by_priority(priority: Priority, cap: int) -> None:
    assert SNOOZE_CAP[priority] == cap * MIN
    before = alert(priority)
    assert transition(before, Snoozed(SARA, cap), T0).refusal is None
    for minutes in (cap + 1, 2 * 10**12):  # any size compares, without timedelta overflow
        t = transition(before, Snoozed(SARA, minutes), T0)
        assert t == Transition(
            before, refusal=Refusal(RefusalCode.SNOOZE_TOO_LONG, AlertState.OPEN, priority, cap * MIN)
        )
    assert transition(before, Snoozed(SARA, 0), T0).refusal == Refusal(
        RefusalCode.SNOOZE_TOO_SHORT, AlertState.OPEN, priority
    )


@pytest.mark.parametrize("state", [AlertState.PENDING, AlertState.RESOLVED])
def test_staff_snooze_or_resolve_only_open_or_acknowledged_alerts(state: AlertState) -> None:
    before = alert(MEDIUM, state)
    for event in (Snoozed(SARA, 99_999), StaffResolved(SARA, "Klart")):  # the state is checked before the cap
        assert transition(before, event, T0) == Transition(
            before, refusal=Refusal(RefusalCode.NOT_ACTIONABLE, state, MEDIUM)
        )


def test_staff_resolve_ends_an_alert_with_their_note_even_a_latched_high_one() -> None:
    before = alert(HIGH, snoozed_until=T0 + 5 * MIN, snoozed_by=7)
    t = transition(before, StaffResolved(SARA, "Kit återlämnat"), T0 + MIN)
    assert t.alert is not None
    assert (t.alert.state, t.alert.resolved_at, t.alert.resolved_by, t.alert.snoozed_until) == (
        AlertState.RESOLVED, T0 + MIN, 7, None,
    )  # fmt: skip
    assert t.records == (
        Record(EventKind.RESOLVED, "staff:sara", HIGH, "Kit återlämnat", T0 + MIN, {"staff_user_id": 7}),
    )


# --- snooze expiry -----------------------------------------------------------------------------


def test_a_snooze_running_out_reopens_notifies_and_restarts_escalation() -> None:
    snoozed = stored(transition(alert(HIGH), Snoozed(SARA, 30), T0 + MIN))
    assert transition(snoozed, SnoozeExpired(), T0 + 30 * MIN).refusal == Refusal(
        RefusalCode.NOT_DUE, AlertState.ACKNOWLEDGED, HIGH
    )
    t = transition(snoozed, SnoozeExpired(), T0 + 31 * MIN)
    assert t.alert == dataclasses.replace(
        snoozed, state=AlertState.OPEN, opened_at=T0 + 31 * MIN, snoozed_until=None, snoozed_by=None,
        acknowledged_at=None, acknowledged_by=None,
    )  # fmt: skip
    assert t.records == (
        Record(EventKind.SNOOZE_EXPIRED, ENGINE, HIGH, "snooze slut, tillståndet kvarstår", T0 + 31 * MIN),
    )
    assert t.notify


def test_a_snooze_ended_by_a_clear_never_expires() -> None:
    snoozed = stored(transition(alert(MEDIUM), Snoozed(SARA, 30), T0 + MIN))
    gone = stored(transition(snoozed, clear(T0 + 2 * MIN), T0 + 2 * MIN))
    assert gone.snoozed_until is None
    assert transition(gone, SnoozeExpired(), T0 + 60 * MIN).refusal == Refusal(
        RefusalCode.NOT_DUE, AlertState.RESOLVED, MEDIUM
    )


# --- escalation and delivery ---------------------------------------------------------------------


def test_an_escalation_is_recorded_for_an_open_high_alert_only() -> None:
    detail = {"level": 1, "staff_user_id": 2}
    t = transition(alert(HIGH), Escalated("Eskalerat till jourläkare Dr. Berg", detail), T0 + 5 * MIN)
    assert t == Transition(
        alert(HIGH),
        records=(
            Record(
                EventKind.ESCALATED, ENGINE, HIGH, "Eskalerat till jourläkare Dr. Berg", T0 + 5 * MIN, detail
            ),
        ),
    )
    assert not t.changed and not t.notify and t.announce
    for before in (alert(MEDIUM), alert(HIGH, AlertState.ACKNOWLEDGED), alert(HIGH, AlertState.RESOLVED)):
        assert transition(before, Escalated("x", {}), T0).refusal == Refusal(
            RefusalCode.NOT_ESCALATABLE, before.state, before.priority
        )


def test_deliveries_are_recorded_at_their_own_time_whatever_the_state_since() -> None:
    for before in (alert(HIGH), alert(HIGH, AlertState.ACKNOWLEDGED)):
        ok = transition(before, Notified(T0 + 2 * MIN, "Aviserat via e-post", {"ok": True}), T0 + 3 * MIN)
        failed = transition(
            before, NotificationFailed(T0 + 2 * MIN, "Misslyckades", {"ok": False}), T0 + 3 * MIN
        )
        assert ok.records == (
            Record(EventKind.NOTIFIED, ENGINE, HIGH, "Aviserat via e-post", T0 + 2 * MIN, {"ok": True}),
        )
        assert failed.records == (
            Record(EventKind.NOTIFICATION_FAILED, ENGINE, HIGH, "Misslyckades", T0 + 2 * MIN, {"ok": False}),
        )
        assert ok.alert == failed.alert == before and not ok.changed and not failed.changed


# --- properties ----------------------------------------------------------------------------------

_STAFF = st.builds(Staff, st.integers(1, 5), st.sampled_from(["sara", "ali"]))
_EVENTS: st.SearchStrategy[LifecycleEvent] = st.one_of(
    st.builds(
        lambda p, c, minute, hold: request(p, T0 + minute * MIN, condition=c, hold=hold),
        st.sampled_from(Priority), st.sampled_from(AlarmCondition), st.integers(0, 300),
        st.sampled_from([None, None, timedelta(0), 10 * MIN]),
    ),
    st.builds(lambda minute: clear(T0 + minute * MIN), st.integers(0, 300)),
    st.just(HoldElapsed()),
    st.just(SnoozeExpired()),
    st.builds(Acknowledged, _STAFF),
    st.builds(Snoozed, _STAFF, st.integers(-5, 2000)),
    st.builds(StaffResolved, _STAFF, st.just("Klart")),
    st.builds(Escalated, st.just("Eskalerat"), st.just({"level": 1})),
)  # fmt: skip


def _run(steps: list[tuple[LifecycleEvent, int]]) -> list[tuple[Alert | None, LifecycleEvent, Transition]]:
    """Drive one key as the store does: the live alert goes in, a resolved one leaves the key free."""
    live: Alert | None = None
    next_id = 1
    seen = []
    for event, minute in steps:
        t = transition(live, event, T0 + minute * MIN)
        seen.append((live, event, t))
        if t.alert is not None and t.refusal is None:
            after = t.alert
            if after.id is None:
                after, next_id = dataclasses.replace(after, id=next_id), next_id + 1
            live = after if after.live else None
    return seen


_SEQUENCES = st.lists(st.tuples(_EVENTS, st.integers(0, 400)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(_SEQUENCES)
def test_a_key_never_has_two_live_alerts(steps: list[tuple[LifecycleEvent, int]]) -> None:
    for before, _event, t in _run(steps):
        # A new alert (no id yet) is only ever raised where no live one exists.
        if t.alert is not None and t.alert.id is None:
            assert before is None
        # Nothing but a request makes an alert out of none.
        if before is None and t.alert is not None:
            assert isinstance(_event, Requested)


@settings(max_examples=300, deadline=None)
@given(_SEQUENCES)
def test_an_open_high_alert_leaves_open_only_by_a_persons_hand(
    steps: list[tuple[LifecycleEvent, int]],
) -> None:
    for before, event, t in _run(steps):
        if before is None or (before.state, before.priority) != (AlertState.OPEN, HIGH) or t.alert is None:
            continue
        if t.alert.state is not AlertState.OPEN:
            assert isinstance(event, Acknowledged | Snoozed | StaffResolved), event


@settings(max_examples=300, deadline=None)
@given(_SEQUENCES)
def test_every_change_is_recorded_and_only_opening_steps_notify(
    steps: list[tuple[LifecycleEvent, int]],
) -> None:
    for before, _event, t in _run(steps):
        if t.refusal is not None:
            assert t.alert == before and not t.records and not t.changed
        if t.alert is not None and before is not None and t.alert.state is not before.state:
            assert t.records, "a change of state without its alert_events row"
        notifying = {EventKind.OPENED, EventKind.REPRIORITISED, EventKind.SNOOZE_EXPIRED}
        assert t.notify == any(r.kind in notifying for r in t.records)
        if t.alert is not None and before is not None and t.alert.live and before.live:
            assert t.alert.priority >= before.priority  # a live alert never becomes milder
