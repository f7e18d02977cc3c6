"""Trend rules: least-squares slopes, changes of mean, the incremental running sums, and scenarios."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts import trends
from alerts.model import Priority
from alerts.running import SlotWindowOne, SlotWindows
from alerts.trends import RESTING_PULSE_RISING, SPO2_FALLING, SYSTOLIC_FALLING, window_slope

START = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)
HOUR = 3600.0


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


# --- slopes -----------------------------------------------------------------------------------


def test_exact_linear_fall_of_three_points_over_six_hours_fires() -> None:
    times = START.timestamp() + HOUR * np.arange(0, 6.01, 0.5)
    values = 97 - 0.5 * (times - times[0]) / HOUR
    slope = window_slope(values[None], times[None], now=at(6), window=SPO2_FALLING.window)
    assert slope.per_hour[0] == pytest.approx(-0.5)
    assert slope.change[0] == pytest.approx(-3.0)
    assert (int(slope.n[0]), slope.span_h[0]) == (13, 6.0)
    fire, known = trends.slope_fires(SPO2_FALLING, slope)
    assert fire.tolist() == [True] and known.tolist() == [True]
    # 2.9 points is not 3.
    slope = window_slope((values * 2.9 / 3 + 3.1)[None], times[None], now=at(6), window=SPO2_FALLING.window)
    assert trends.slope_fires(SPO2_FALLING, slope)[0].tolist() == [False]


def test_too_few_samples_or_too_short_a_span_is_unknown_not_normal() -> None:
    times = START.timestamp() + HOUR * np.array([[5, 5.5, 6, np.nan], [0, 1, 2, 6]])
    values = np.array([[97, 90, 80, np.nan], [97, 96, 95, np.nan]])
    slope = window_slope(values, times, now=at(6), window=SPO2_FALLING.window)
    fire, known = trends.slope_fires(SPO2_FALLING, slope)
    assert known.tolist() == [False, False]  # span 1 h < 3 h; only 3 samples < 4
    assert fire.tolist() == [False, False]


def test_samples_outside_the_window_or_in_the_future_are_ignored() -> None:
    times = START.timestamp() + HOUR * np.array([[-1.0, 0.0, 3.0, 6.0, 7.0]])
    values = np.array([[50.0, 97.0, 96.0, 95.0, 10.0]])
    slope = window_slope(values, times, now=at(6), window=timedelta(hours=6))
    assert int(slope.n[0]) == 3
    assert slope.per_hour[0] == pytest.approx(-1 / 3)


def test_slope_output_messages_and_clears() -> None:
    ids = [uuid.uuid4(), uuid.uuid4(), uuid.uuid4()]
    times = START.timestamp() + HOUR * np.tile(np.arange(0, 12.1, 1.0), (3, 1))
    values = np.stack([130 - 2.5 * np.arange(13), np.full(13, 130.0), np.full(13, np.nan)])
    slope = window_slope(values, times, now=at(12), window=SYSTOLIC_FALLING.window)
    requests, clears = trends.slope_output(
        SYSTOLIC_FALLING, slope, ids, now=at(12), observed_at=np.full(3, at(12).timestamp())
    )
    assert [(r.patient_id, r.rule, r.priority) for r in requests] == [
        (ids[0], "trend:systolic_falling", Priority.MEDIUM)
    ]
    assert requests[0].message == "Systoliskt blodtryck sjunker: 30 mmHg på 12 h (gräns 20 på 12 h)"
    assert [c.patient_id for c in clears] == [ids[1]]  # the empty row is unknown: no clear


SAMPLE_TIME = st.one_of(st.just(math.nan), st.integers(-10 * 3600, 3600).map(float))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(st.one_of(st.just(math.nan), st.floats(30, 250)), SAMPLE_TIME), min_size=1, max_size=30
        ),
        min_size=1,
        max_size=10,
    ),
    st.sampled_from([timedelta(hours=6), timedelta(hours=12)]),
    st.integers(2, 5),
)
def test_window_slope_agrees_with_scalar_twin(
    rows: list[list[tuple[float, float]]], window: timedelta, min_samples: int
) -> None:
    width = max(len(r) for r in rows)
    values = np.full((len(rows), width), np.nan)
    times = np.full((len(rows), width), np.nan)
    now_s = START.timestamp()
    for i, row in enumerate(rows):
        for j, (v, dt) in enumerate(row):
            values[i, j], times[i, j] = v, now_s + dt
    slope = window_slope(values, times, now=START, window=window, min_samples=min_samples)
    for i, row in enumerate(rows):
        per_hour, change, n, span = trends.slope_one(
            [v for v, _ in row], [now_s + t for _, t in row], now_s, window.total_seconds(), min_samples
        )
        assert int(slope.n[i]) == n
        assert slope.span_h[i] == pytest.approx(span, abs=1e-9)
        if math.isnan(per_hour):
            assert math.isnan(slope.per_hour[i])
        else:
            assert slope.per_hour[i] == pytest.approx(per_hour, rel=1e-6, abs=1e-6)
            assert slope.change[i] == pytest.approx(change, rel=1e-6, abs=1e-6)


# --- resting pulse: change of the daily mean --------------------------------------------------


def _spot_checks(
    days: int, per_day: int, level: object, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Pulse spot checks at fixed clock hours with a ±6/min circadian swing and noise."""
    hours = np.array([h + 24 * d for d in range(days) for h in np.linspace(7, 21, per_day)])
    circadian = 6 * np.sin(2 * np.pi * (hours - 10) / 24)
    base = np.array([level(h) for h in hours])  # type: ignore[operator]
    return base + circadian + rng.normal(0, 4, hours.size), START.timestamp() + HOUR * hours


def test_resting_pulse_rise_fires_on_a_sustained_rise_only() -> None:
    rng = np.random.default_rng(7)
    values, times = _spot_checks(8, 4, lambda h: 72 if h < 24 * 6 else 86, rng)
    ids = [uuid.uuid4()]
    before, _ = trends.rise_output(RESTING_PULSE_RISING, values[None], times[None], ids, now=at(24 * 6))
    after, _ = trends.rise_output(RESTING_PULSE_RISING, values[None], times[None], ids, now=at(24 * 7))
    assert before == []
    assert [(r.rule, r.priority) for r in after] == [("trend:resting_pulse_rising", Priority.LOW)]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.one_of(st.just(math.nan), st.floats(40, 150)), st.floats(-5 * 86400, 3600)), max_size=40
    )
)
def test_rise_agrees_with_scalar_twin(samples: list[tuple[float, float]]) -> None:
    now_s = START.timestamp()
    values = np.array([[v for v, _ in samples]]).reshape(1, -1)
    times = np.array([[now_s + t for _, t in samples]]).reshape(1, -1)
    up, known = trends.rise(RESTING_PULSE_RISING, values, times, now=START)
    expected = trends.rise_one(RESTING_PULSE_RISING, list(values[0]), list(times[0]), now_s)
    assert bool(known[0]) == (expected is not None)
    if expected is not None:
        assert up[0] == pytest.approx(expected, rel=1e-9, abs=1e-9)


# --- scenarios with an injected clock ---------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_noisy_but_stable_patient_raises_no_trend_over_a_week(seed: int) -> None:
    """Evaluated every hour for a week, with both kernels: the whole-window pass and the engine's slots."""
    rng = np.random.default_rng(seed)
    spo2_t = np.arange(0, 24 * 7, 0.25)  # continuous oximetry decimated to one value per 15 min
    spo2 = np.clip(np.round(96 + rng.normal(0, 1.0, spo2_t.size)), 0, 100)
    bp_t = np.arange(0, 24 * 7, 2.0) + rng.uniform(-0.25, 0.25, 84)  # cuff every 2 h
    systolic = 128 + rng.normal(0, 6, bp_t.size)
    pulse, pulse_times = _spot_checks(7, 4, lambda h: 74, rng)
    series = [(SPO2_FALLING, START.timestamp() + HOUR * spo2_t, spo2),
              (SYSTOLIC_FALLING, START.timestamp() + HOUR * bp_t, systolic)]  # fmt: skip
    slotted = [SlotWindows(1, rule.window, start=START.timestamp()) for rule, _, _ in series]
    fired = []
    for hour in range(1, 24 * 7):
        now = at(hour)
        for (rule, t, v), windows in zip(series, slotted, strict=True):
            new = (t > now.timestamp() - HOUR) & (t <= now.timestamp())
            windows.push(np.zeros(int(new.sum()), np.int64), v[new], t[new], now=now.timestamp())
            whole = window_slope(v[None], t[None], now=now, window=rule.window, min_samples=rule.min_samples)
            for kernel, slope in (("whole", whole), ("slots", windows.slope(rule.min_samples))):
                if trends.slope_fires(rule, slope)[0][0]:
                    fired.append((hour, rule.rule, kernel))
        up, known = trends.rise(RESTING_PULSE_RISING, pulse[None], pulse_times[None], now=now)
        if known[0] and up[0] >= RESTING_PULSE_RISING.rise:
            fired.append((hour, RESTING_PULSE_RISING.rule, "whole"))
    assert fired == []


def test_spo2_decline_fires_after_it_starts_and_within_four_hours() -> None:
    rng = np.random.default_rng(11)
    t = np.arange(0, 48, 0.25)
    decline_from = 36.0
    spo2 = np.round(96 + rng.normal(0, 0.7, t.size) - np.where(t > decline_from, 1.0 * (t - decline_from), 0))
    times = START.timestamp() + HOUR * t
    first = None
    for step in range(4 * 1, 4 * 48):
        hour = step / 4
        slope = window_slope(spo2[None], times[None], now=at(hour), window=SPO2_FALLING.window)
        if trends.slope_fires(SPO2_FALLING, slope)[0][0]:
            first = hour
            break
    assert first is not None and decline_from < first <= decline_from + 4


# --- incremental slot windows against the whole-window pass and the scalar twin --------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0, 0, 0, 0, 1, 2, 3]),  # patient
            st.floats(60, 140),  # value
            st.sampled_from([0, 0, 0, 0, -1, -200, -900, -3 * 3600]),  # seconds before the clock: late
            st.sampled_from([0, 0, 0, 10, 60, 60, 300, 1800, 5 * 3600]),  # clock advance after this sample
        ),
        min_size=1,
        max_size=120,
    ),
    st.integers(2, 12),
)
def test_slot_windows_agree_with_scalar_twin_and_whole_window(
    steps: list[tuple[int, float, int, int]], slots: int
) -> None:
    window = timedelta(hours=1)
    now = START.timestamp()
    windows = SlotWindows(4, window, start=now, slots=slots)
    twins = [SlotWindowOne(window, start=now, slots=slots) for _ in range(4)]
    for patient, value, offset, advance in steps:
        windows.push(np.array([patient]), np.array([value]), np.array([now + offset]), now=now)
        twins[patient].push(value, now + offset, now=now)
        now += advance
        windows.advance(now)
        for twin in twins:
            twin.advance(now)
        for min_samples in (2, 3):
            got = windows.slope(min_samples)
            for p, twin in enumerate(twins):
                values, times = windows.window_points(p)
                per_hour, _, n, span = trends.slope_one(
                    values, times, max(times, default=0.0), math.inf, min_samples
                )
                assert int(got.n[p]) == n
                assert got.span_h[p] == pytest.approx(span, abs=1e-6)
                for candidate in (got.per_hour[p], twin.slope(min_samples)):
                    assert math.isnan(candidate) == math.isnan(per_hour)
                    if not math.isnan(per_hour):
                        assert candidate == pytest.approx(per_hour, rel=1e-6, abs=1e-6)
    # The whole-window kernel on the same points gives the same fit.
    for p in range(4):
        values, times = windows.window_points(p)
        if values:
            newest = datetime.fromtimestamp(max(times) + 1, UTC)  # datetime keeps microseconds only
            whole = window_slope(np.array([values]), np.array([times]), now=newest, window=timedelta(days=1),
                                 min_samples=2)  # fmt: skip
            assert np.isnan(whole.per_hour[0]) == np.isnan(windows.slope(2).per_hour[p])


def test_every_patient_pushed_at_once_takes_the_fast_path() -> None:
    now = START.timestamp()
    windows = SlotWindows(3, timedelta(hours=1), start=now, slots=6)
    for k in range(12):
        at = now + 300 * k
        windows.push(None, np.array([90.0 + k, 80.0, np.nan if k % 2 else 70.0]), np.full(3, at), now=at)
    slope = windows.slope(3)
    assert slope.per_hour[0] == pytest.approx(12.0)  # +1 per 5 minutes
    assert slope.per_hour[1] == pytest.approx(0.0)
    # Every other sample is NaN: still one in each ten-minute slot; the open slot (50-55 min) joins the
    # trend when it closes.
    assert int(slope.n[2]) == 5
    assert windows.newest_y.tolist() == [101.0, 80.0, 70.0]


def test_a_sample_older_than_the_window_is_counted_not_used() -> None:
    now = START.timestamp()
    windows = SlotWindows(1, timedelta(hours=1), start=now, slots=4)
    windows.push(np.array([0]), np.array([95.0]), np.array([now - 2 * HOUR]), now=now)
    assert windows.dropped == 1
    assert int(windows.slope(1).n[0]) == 0
    assert windows.newest_y[0] == 95.0  # still the newest value the engine knows, for freshness to judge
