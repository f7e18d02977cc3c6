"""`alerts.judge`: vectorized threshold judgement (limits, persistence, hysteresis) vs its scalar twin."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts import judge
from alerts import persistence as ps
from alerts.model import Priority
from alerts.thresholds import WARD_DEFAULT_RULES

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SPO2_LOW = [r for r in WARD_DEFAULT_RULES if r.rule == "spo2_low"]
PULSE_HIGH = [r for r in WARD_DEFAULT_RULES if r.rule == "pulse_high"]

reading = st.tuples(
    st.one_of(st.just(math.nan), st.floats(80, 100).map(lambda x: round(x, 1))),
    st.floats(-3600, 60),  # seconds relative to NOW: a few may lie in the future
    st.booleans(),
)
row = st.tuples(
    st.lists(reading, min_size=0, max_size=judge.WINDOW_READINGS),
    st.sampled_from([0, int(Priority.MEDIUM), int(Priority.HIGH)]),
    st.booleans(),
)


def _arrays(rows: list[tuple[list, int, bool]]) -> tuple[np.ndarray, ...]:
    k = judge.WINDOW_READINGS
    values = np.full((len(rows), k), np.nan)
    times = np.full((len(rows), k), np.nan)
    doubtful = np.zeros((len(rows), k), bool)
    for i, (readings, _, _) in enumerate(rows):
        ordered = sorted(readings, key=lambda r: r[1])
        for j, (v, dt, d) in enumerate(ordered):
            col = k - len(ordered) + j
            values[i, col], times[i, col], doubtful[i, col] = v, NOW.timestamp() + dt, d
    live = np.array([r[1] for r in rows], np.int8)
    continuous = np.array([r[2] for r in rows], bool)
    return values, times, doubtful, live, continuous


@settings(max_examples=300, deadline=None)
@given(st.lists(row, min_size=1, max_size=12), st.sampled_from([SPO2_LOW, PULSE_HIGH]))
def test_vectorized_judgement_agrees_with_the_scalar_twin(rows, rules) -> None:  # type: ignore[no-untyped-def]
    ids = [uuid.uuid4() for _ in rows]
    values, times, doubtful, live, continuous = _arrays(rows)
    if rules is PULSE_HIGH:  # pulse values around its limits
        values = values + 35.0
    limits = judge.KeyLimits.for_rows(rules, ids, personal={}, spo2_scale_2=set())
    verdict = judge.judge(limits, values, times, doubtful, live_priority=live, now=NOW, continuous=continuous)
    margin = ps.DEFAULT_MARGIN[rules[0].vital]
    for i in range(len(rows)):
        readings = [
            (float(values[i, j]), float(times[i, j]), bool(doubtful[i, j]))
            for j in range(values.shape[1])
            if not math.isnan(times[i, j])
        ]
        expected = judge.judge_one(
            limits.limit[:, i].tolist(), [r.priority for r in limits.rules], rules[0].direction, readings,
            live_priority=int(live[i]), now_s=NOW.timestamp(), continuous=bool(continuous[i]), margin=margin,
        )  # fmt: skip
        assert int(verdict.level[i]) == expected, (i, readings, int(live[i]), bool(continuous[i]))


def test_personal_and_scale_2_limits_replace_the_ward_default_per_row() -> None:
    copd, scale_2, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    limits = judge.KeyLimits.for_rows(
        SPO2_LOW, [copd, scale_2, other],
        personal={(copd, "spo2_low", Priority.HIGH): 86.0, (copd, "spo2_low", Priority.MEDIUM): 88.0},
        spo2_scale_2={scale_2, copd},
    )  # fmt: skip
    # Rows: the personal limit wins over scale 2; scale 2's defaults; the ward's.
    assert limits.limit.tolist() == [[86.0, 84.0, 92.0], [88.0, 86.0, 94.0]]
    assert limits.own.tolist() == [[True, False, False], [True, False, False]]
    assert limits.scale_2.tolist() == [[False, True, False], [False, True, False]]


def test_a_latched_severity_steps_down_only_by_the_margin() -> None:
    ids = [uuid.uuid4()]
    limits = judge.KeyLimits.for_rows(SPO2_LOW, ids, personal={}, spo2_scale_2=set())
    high = np.array([int(Priority.HIGH)], np.int8)

    def level(value: float) -> int:
        verdict = judge.judge(
            limits, np.array([[value]]), np.array([[NOW.timestamp() - 1]]), np.zeros((1, 1), bool),
            live_priority=high, now=NOW, continuous=np.zeros(1, bool),
        )  # fmt: skip
        return int(verdict.level[0])

    assert level(92.0) == int(Priority.HIGH)  # back inside "below 92" but not by 1 %
    assert level(93.0) == int(Priority.MEDIUM)  # out of high, still below the medium limit 94
    assert level(95.0) == 0


def test_a_value_held_by_hysteresis_is_not_presented_as_a_breach() -> None:
    ids = [uuid.uuid4(), uuid.uuid4()]
    limits = judge.KeyLimits.for_rows(PULSE_HIGH, ids, personal={}, spo2_scale_2=set())
    high = np.array([int(Priority.HIGH)] * 2, np.int8)
    verdict = judge.judge(
        limits, np.array([[135.0], [128.0]]), np.full((2, 1), NOW.timestamp() - 1), np.zeros((2, 1), bool),
        live_priority=high, now=NOW, continuous=np.zeros(2, bool),
    )  # fmt: skip
    requests, clears = judge.judgement_output(limits, verdict, ids, live_priority=high)
    assert clears == []
    assert [(r.priority, r.message) for r in requests] == [
        (Priority.HIGH, "Puls ≥ 131/min: 135 /min"),
        (Priority.HIGH, "Puls ≥ 131/min; senast 128 /min"),  # 128 is inside 130, not yet by the 5/min margin
    ]
