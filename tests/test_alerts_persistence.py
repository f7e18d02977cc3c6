"""Artefact filter, persistence (N readings or N minutes) and hysteresis, vectorized against scalar twins."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts import persistence as ps
from alerts.model import Priority
from alerts.persistence import ABOVE, BELOW, BreachRuns, RunOne
from alerts.thresholds import WARD_DEFAULT_RULES
from core.vitals import Vital

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
T0 = NOW.timestamp() - 3600
CONTINUOUS = ps.DEFAULT_PERSISTENCE[Vital.SPO2]


def feed(readings: list[tuple[float, bool, float]], limit: float = 92, sign: int = BELOW) -> BreachRuns:
    """One row fed reading by reading: (value, doubtful, seconds after T0)."""
    runs = BreachRuns.empty(1)
    for value, doubtful, dt in readings:
        runs = ps.advance_runs(
            runs, np.array([value]), np.array([doubtful]), np.array([T0 + dt]), limit=limit, sign=sign
        )
    return runs


def is_persistent(runs: BreachRuns, policy: ps.Persistence = CONTINUOUS) -> bool:
    return bool(runs.persistent(policy.readings, policy.duration_s)[0])


def test_doubtful_reading_never_raises_alone() -> None:
    single = ps.SPOT_CHECK
    assert not is_persistent(feed([(80, True, 0)]), single)
    assert is_persistent(feed([(80, False, 0)]), single)
    assert not is_persistent(feed([(80, True, 0), (81, True, 10), (79, True, 20), (80, True, 300)]))


def test_doubtful_readings_neither_extend_nor_break_a_run() -> None:
    runs = feed([(88, False, 0), (97, True, 10), (89, False, 20)])
    assert (int(runs.count[0]), runs.first_at[0], runs.last_at[0]) == (2, T0, T0 + 20)
    assert not is_persistent(runs)
    assert is_persistent(
        feed([(88, False, 0), (97, True, 10), (89, False, 20), (99, True, 25), (90, False, 30)])
    )


def test_trustworthy_normal_reading_resets_the_run() -> None:
    runs = feed([(88, False, 0), (89, False, 10), (95, False, 20), (88, False, 30)])
    assert (int(runs.count[0]), runs.first_at[0]) == (1, T0 + 30)
    assert not is_persistent(runs)


def test_persistence_by_minutes_needs_readings_at_both_ends() -> None:
    # Two breaches two minutes apart: persistent by duration although only 2 of 3 readings.
    assert is_persistent(feed([(88, False, 0), (88, False, 120)]))
    assert not is_persistent(feed([(88, False, 0), (88, False, 119)]))
    # One breach and then silence is never a persisting breach, however late it is now.
    lone = feed([(88, False, 0)])
    assert not is_persistent(lone)
    assert lone.first_at[0] == lone.last_at[0] == T0  # the span is between readings, never up to now


def test_limits_are_strict_like_threshold_rules() -> None:
    assert int(feed([(92, False, 0)], limit=92, sign=BELOW).count[0]) == 0  # "below 92" is ≤ 91
    assert int(feed([(91, False, 0)], limit=92, sign=BELOW).count[0]) == 1
    assert int(feed([(130, False, 0)], limit=130, sign=ABOVE).count[0]) == 0
    assert int(feed([(131, False, 0)], limit=130, sign=ABOVE).count[0]) == 1


def test_hysteresis_clears_only_back_inside_by_the_margin() -> None:
    active = np.array([True, True, True, True, False, False])
    value = np.array([92.0, 93.0, 99.0, np.nan, 91.0, 91.0])
    doubtful = np.array([False, False, True, False, False, False])
    persistent = np.array([False, False, False, False, True, False])
    state = ps.alarm_state(active, persistent, value, doubtful, limit=92, sign=BELOW, margin=1.0)
    # 92 is inside but not by 1: stays; 93 clears; a doubtful 99 cannot clear; no reading keeps it;
    # inactive rows follow the persistence filter.
    assert state.tolist() == [True, False, True, True, True, False]


def test_doubtful_mask() -> None:
    mask = ps.doubtful_mask([(), ("cuff_loose",), ("irregular_pulse",), ("from_storage", "low_perfusion")])
    assert mask.tolist() == [False, True, False, True]


def test_threshold_output_requests_active_rows_and_clears_the_ones_that_ended() -> None:
    rule = next(r for r in WARD_DEFAULT_RULES if r.rule == "spo2_low" and r.priority == Priority.HIGH)
    ids = [uuid.uuid4() for _ in range(3)]
    at = np.array([T0, T0, T0])
    requests, clears = ps.threshold_output(
        rule, ids, was_active=np.array([False, True, True]), active=np.array([True, True, False]),
        value=np.array([88.0, np.nan, 95.0]), measured_at=at, now=NOW,
    )  # fmt: skip
    assert [(r.patient_id, r.rule, r.priority, r.value) for r in requests] == [
        (ids[0], "spo2_low", Priority.HIGH, 88.0)
    ]
    assert "88 %" in requests[0].message
    assert [(c.patient_id, c.rule) for c in clears] == [(ids[2], "spo2_low")]


def test_trailing_runs_of_a_loaded_window() -> None:
    values = np.array([[88, 95, 88, 87, np.nan], [88, 89, 90, 91, 99]], dtype=float)
    times = T0 + np.array([[0, 60, 120, 180, np.nan], [0, 60, 120, 180, 240]])
    doubtful = np.array([[False] * 5, [False, False, False, False, True]])
    runs = ps.trailing_runs(values, times, doubtful, limit=92, sign=BELOW, now=NOW)
    assert runs.count.tolist() == [2, 4]
    assert (runs.first_at - T0).tolist() == [120, 0]
    assert (runs.last_at - T0).tolist() == [180, 180]
    # Readings after `now` are not known yet.
    early = ps.trailing_runs(
        values, times, doubtful, limit=92, sign=BELOW, now=datetime.fromtimestamp(T0 + 90, UTC)
    )
    assert early.count.tolist() == [0, 2]


# --- properties -------------------------------------------------------------------------------

READING = st.tuples(
    st.one_of(st.just(math.nan), st.integers(80, 100).map(float), st.floats(80, 100)),
    st.booleans(),
)


@settings(max_examples=120, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([(92.0, BELOW), (95.0, ABOVE), (90.5, BELOW)]), st.lists(READING, max_size=12)
        ),
        min_size=1,
        max_size=8,
    ),
    st.integers(1, 4),
    st.integers(0, 300),
)
def test_runs_agree_with_scalar_twin_and_whole_window(
    rows: list[tuple[tuple[float, int], list[tuple[float, bool]]]], readings: int, duration_s: int
) -> None:
    n_rows, steps = len(rows), max(len(r) for _, r in rows) if rows else 0
    limit = np.array([lim for (lim, _), _ in rows])
    sign = np.array([sg for (_, sg), _ in rows])
    values = np.full((n_rows, max(steps, 1)), np.nan)
    doubtful = np.zeros(values.shape, bool)
    for i, (_, readings_i) in enumerate(rows):
        for j, (v, d) in enumerate(readings_i):
            values[i, j], doubtful[i, j] = v, d
    times = T0 + 30.0 * np.arange(values.shape[1])[None, :].repeat(n_rows, axis=0)
    runs = BreachRuns.empty(n_rows)
    twins = [RunOne() for _ in range(n_rows)]
    active = np.zeros(n_rows, bool)
    twin_active = [False] * n_rows
    for j in range(values.shape[1]):
        runs = ps.advance_runs(runs, values[:, j], doubtful[:, j], times[:, j], limit=limit, sign=sign)
        persistent = runs.persistent(readings, duration_s)
        active = ps.alarm_state(
            active, persistent, values[:, j], doubtful[:, j], limit=limit, sign=sign, margin=1.0
        )
        for i in range(n_rows):
            twins[i] = ps.advance_run_one(
                twins[i], values[i, j], doubtful[i, j], times[i, j], limit[i], sign[i]
            )
            p_one = ps.persistent_one(twins[i], readings, duration_s)
            assert bool(persistent[i]) == p_one
            twin_active[i] = ps.alarm_state_one(
                twin_active[i], p_one, values[i, j], doubtful[i, j], limit[i], sign[i], 1.0
            )
        assert active.tolist() == twin_active
        assert runs.count.tolist() == [t.count for t in twins]
        assert np.array_equal(runs.first_at, [math.nan if t.first_at is None else t.first_at for t in twins],
                              equal_nan=True)  # fmt: skip
    whole = ps.trailing_runs(values, times, doubtful, limit=limit, sign=sign, now=NOW + timedelta(days=1))
    assert np.array_equal(whole.count, runs.count)
    assert np.array_equal(whole.first_at, runs.first_at, equal_nan=True)
    assert np.array_equal(whole.last_at, runs.last_at, equal_nan=True)
