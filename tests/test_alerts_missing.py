"""Technical alarms: missing scheduled vitals, silent devices, offline gateways, batteries, clocks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts import missing
from alerts.model import AlarmCondition, Priority
from core.vitals import Vital

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NOW_S = NOW.timestamp()
H = 3600.0
NAN = np.nan


def ids(n: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]


def test_missing_scheduled_vital_low_then_medium() -> None:
    patients = ids(6)
    # Plan: SpO2 every 4 h (grace 30 min). Last trustworthy reading: 3 h ago, 4 h 20 min ago, 4 h 40 min
    # ago, 9 h ago, never (plan started 5 h ago), never (plan started 1 h ago).
    last = NOW_S - H * np.array([3, 4 + 1 / 3, 4 + 2 / 3, 9, NAN, NAN])
    started = NOW_S - H * np.array([48, 48, 48, 48, 5, 1])
    requests, clears = missing.missing_vital_output(
        Vital.SPO2, patients, last_trusted_at=last, every=timedelta(hours=4), plan_started_at=started, now=NOW
    )
    got = {patients.index(r.patient_id): r for r in requests}
    assert sorted(got) == [2, 3, 4]
    assert (got[2].priority, got[3].priority, got[4].priority) == (
        Priority.LOW,
        Priority.MEDIUM,
        Priority.LOW,
    )
    assert {r.rule for r in requests} == {"missing:spo2"}
    assert all(r.condition is AlarmCondition.TECHNICAL for r in requests)
    assert got[3].message == "Ingen ny tillförlitlig mätning av SpO₂ på 9 h (planerad var 4 h)"
    assert got[4].message.startswith("Ingen tillförlitlig mätning av SpO₂ på 5 h")
    assert sorted(patients.index(c.patient_id) for c in clears) == [0, 1, 5]


def test_vital_not_in_a_patients_plan_says_nothing() -> None:
    out = missing.missing_vital_output(
        Vital.BODY_WEIGHT, ids(2), last_trusted_at=np.array([NAN, NOW_S - 100 * H]),
        every=np.array([NAN, NAN]), plan_started_at=np.array([NOW_S - 200 * H] * 2), now=NOW,
    )  # fmt: skip
    assert out == ([], [])


def test_device_silent() -> None:
    patients = ids(3)
    requests, clears = missing.device_silent_output(
        patients, ["oxi-1", "cuff-1", "scale-1"], last_seen_at=np.array([NOW_S - 11 * 60, NOW_S - 60, NAN]),
        silent_after=np.array([600.0, 600.0, 600.0]), now=NOW, priority=Priority.MEDIUM,
    )  # fmt: skip
    assert [(r.patient_id, r.rule, r.priority) for r in requests] == [
        (patients[0], "device_silent:oxi-1", Priority.MEDIUM)
    ]
    assert "11 min" in requests[0].message
    assert [(c.patient_id, c.rule) for c in clears] == [(patients[1], "device_silent:cuff-1")]


def test_gateway_offline() -> None:
    patients = ids(5)
    requests, clears = missing.gateway_offline_output(
        patients,
        status=["offline", "offline", "online", "unknown", "unknown"],
        status_at=np.array([NOW_S - 20 * 60, NOW_S - 5 * 60, NOW_S - 9 * H, NAN, NAN]),
        registered_at=np.array([NOW_S - 90 * H, NOW_S - 90 * H, NOW_S - 90 * H, NOW_S - 2 * H, NOW_S - 60]),
        now=NOW,
    )
    assert [(patients.index(r.patient_id), r.rule, r.priority) for r in requests] == [
        (0, "gateway_offline", Priority.MEDIUM),
        (3, "gateway_offline", Priority.MEDIUM),  # never came online since it was registered 2 h ago
    ]
    assert requests[0].message == "Hemenheten har varit offline i 20 min"
    assert [patients.index(c.patient_id) for c in clears] == [2]


def test_battery_low_with_a_dead_band() -> None:
    patients = ids(5)
    requests, clears = missing.battery_low_output(
        patients, ["a", "b", "c", "d", "e"], percent=np.array([8.0, 20.0, 22.0, 25.0, NAN]),
        measured_at=np.full(5, NOW_S - 60), now=NOW,
    )  # fmt: skip
    assert [(r.rule, r.priority) for r in requests] == [
        ("battery_low:a", Priority.MEDIUM),
        ("battery_low:b", Priority.LOW),
    ]
    assert requests[1].message == "Låg batterinivå i b: 20 %"
    assert [c.rule for c in clears] == ["battery_low:d"]  # 22 % is inside the dead band: no word


def test_clock_not_set() -> None:
    patients = ids(3)
    requests, clears = missing.clock_not_set_output(
        patients, ["oxi", "cuff", "thermo"], clock_not_set=np.array([True, False, True]),
        measured_at=np.array([NOW_S - 60, NOW_S - 60, NAN]), now=NOW,
    )  # fmt: skip
    assert [(r.rule, r.priority, r.condition) for r in requests] == [
        ("clock_not_set:oxi", Priority.LOW, AlarmCondition.TECHNICAL)
    ]
    assert requests[0].observed_at == datetime.fromtimestamp(NOW_S - 60, UTC)
    assert [c.rule for c in clears] == ["clock_not_set:cuff"]


# --- vectorized against the scalar twins -------------------------------------------------------

maybe_time = st.one_of(st.just(NAN), st.floats(NOW_S - 60 * H, NOW_S + 60))


def _verdicts(output: tuple[list, list], patients: list[uuid.UUID]) -> list[object]:
    requests, clears = output
    raised = {r.patient_id: r.priority for r in requests}
    cleared = {c.patient_id for c in clears}
    return [raised.get(p, "clear" if p in cleared else None) for p in patients]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(maybe_time, st.one_of(st.just(NAN), st.floats(300, 24 * H)), maybe_time), min_size=1)
)
def test_missing_vital_agrees_with_its_twin(rows) -> None:  # type: ignore[no-untyped-def]
    patients = ids(len(rows))
    last, every, started = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
    output = missing.missing_vital_output(
        Vital.SPO2, patients, last_trusted_at=last, every=every, plan_started_at=started, now=NOW
    )
    grace = missing.MISSING_GRACE.total_seconds()
    assert _verdicts(output, patients) == [missing.missing_vital_one(*row, NOW_S, grace) for row in rows]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["online", "offline", "unknown"]), maybe_time,
                          st.floats(NOW_S - 60 * H, NOW_S)), min_size=1))  # fmt: skip
def test_gateway_offline_agrees_with_its_twin(rows) -> None:  # type: ignore[no-untyped-def]
    patients = ids(len(rows))
    status = [r[0] for r in rows]
    output = missing.gateway_offline_output(
        patients, status=status, status_at=np.array([r[1] for r in rows], dtype=float),
        registered_at=np.array([r[2] for r in rows], dtype=float), now=NOW,
    )  # fmt: skip
    after = missing.GATEWAY_OFFLINE_AFTER.total_seconds()
    assert _verdicts(output, patients) == [missing.gateway_offline_one(*row, NOW_S, after) for row in rows]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.just(NAN), st.floats(0, 100)), min_size=1))
def test_battery_low_agrees_with_its_twin(percents) -> None:  # type: ignore[no-untyped-def]
    patients = ids(len(percents))
    devices = [f"dev-{i}" for i in range(len(percents))]
    output = missing.battery_low_output(
        patients, devices, percent=np.array(percents, dtype=float),
        measured_at=np.full(len(percents), NOW_S), now=NOW,
    )  # fmt: skip
    assert _verdicts(output, patients) == [missing.battery_low_one(p) for p in percents]


def test_receipts_overdue_only_for_a_connected_kit() -> None:
    patients = ids(5)
    requests, clears = missing.receipts_overdue_output(
        patients,
        status=["online", "online", "online", "offline", "unknown"],
        unconfirmed_since=np.array([NOW_S - 25 * 60, NOW_S - 5 * 60, NAN, NOW_S - 9 * H, NOW_S - 9 * H]),
        measurements=np.array([12.0, 3.0, 0.0, 40.0, 40.0]),
        now=NOW,
    )
    assert [(patients.index(r.patient_id), r.rule, r.priority, r.condition) for r in requests] == [
        (0, "receipts_overdue", Priority.MEDIUM, AlarmCondition.TECHNICAL)
    ]
    assert requests[0].message == (
        "Mätvärden från hemenheten har inte bekräftats som mottagna på 25 min (12 mätningar)"
    )
    # Online with nothing overdue clears; an offline kit says nothing here (gateway_offline speaks).
    assert [patients.index(c.patient_id) for c in clears] == [1, 2]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["online", "offline", "unknown"]), maybe_time), min_size=1))
def test_receipts_overdue_agrees_with_its_twin(rows) -> None:  # type: ignore[no-untyped-def]
    patients = ids(len(rows))
    output = missing.receipts_overdue_output(
        patients, status=[r[0] for r in rows], unconfirmed_since=np.array([r[1] for r in rows], dtype=float),
        measurements=np.full(len(rows), 1.0), now=NOW,
    )  # fmt: skip
    after = missing.RECEIPTS_OVERDUE_AFTER.total_seconds()
    assert _verdicts(output, patients) == [missing.receipts_overdue_one(*row, NOW_S, after) for row in rows]
