"""Trends over a time window for every patient at once: least-squares slopes and changes of the mean.

A window is a pair of arrays shaped [rows, samples] (one row per patient, or per patient and vital):
values and their times in epoch seconds, NaN in empty slots, in any order (a ring buffer as it lies).
The engine keeps the same sums incrementally over time slots (`alerts.running.SlotWindows`, whose
`slope` returns the same `Slope`), so a tick costs what arrived instead of a pass over every buffer
(PERFORMANCE-NOTES: ~30 ms per pass at 100k patients x 8 vitals x 256 samples).

Rules (Hemma defaults for clinical review; the guideline-based weight rules are in `alerts.weight`):

* "trend:spo2_falling": SpO2 falls by 3 points or more over 6 h. A fall of 3 points is a step across a
  whole NEWS2 band (RCP 2017 chart 1: 96 → 93 % scores 0 → 2) and worth a call even inside the limits.
* "trend:systolic_falling": systolic pressure falls by 20 mmHg or more over 12 h (the size of fall that
  defines orthostatic hypotension, and two NEWS2 bands; the fall can precede septic shock while the
  pressure is still above the NEWS2 limits).
* "trend:resting_pulse_rising": the mean of the last 24 h is 10/min or more above the mean of the 3
  days before. Comparing whole days cancels the circadian rhythm, which a 24-hour least-squares slope
  would mistake for a trend (a sinusoid of amplitude A fitted over one period gives a change of ~1.9 A).
  "Resting" means the spot checks the patient takes seated at rest by protocol; readings flagged for
  movement are doubtful and must not be in the window (`alerts.persistence.is_doubtful`).

The slope's "change" is the fitted change across the samples' own span (slope x span), never an
extrapolation to the whole window; `min_span` says how much of the window the samples must cover.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from alerts.facts import TrendRise, TrendSlope
from alerts.inputs import HourlyMeansRequest, Series, TrendSlopeRequest, TrendSlopes
from alerts.model import Priority, RuleOutput
from alerts.requests import output_from_masks
from alerts.rule import OnTheTimer, RuleFamily, Scope
from core.vitals import Vital

_TOLERANCE = 1e-9  # float guard on "by 3 points or more": an exact fall of 3.0 must count
_CHUNK_ROWS = 2048  # rows per pass, so the temporaries stay in cache


@dataclass(frozen=True, slots=True)
class Slope:
    """Least-squares fit per row over the samples inside the window; NaN where there are too few."""

    per_hour: np.ndarray
    change: np.ndarray  # per_hour x span_h: the fitted change across the samples
    n: np.ndarray  # int: samples in the window
    span_h: np.ndarray  # hours from the oldest to the newest sample in the window


def slope_from_sums(
    n: np.ndarray,
    st: np.ndarray,
    sy: np.ndarray,
    stt: np.ndarray,
    sty: np.ndarray,
    span_h: np.ndarray,
    min_samples: int,
) -> Slope:
    """The fit from running sums of 1, t, y, t², t·y (t in hours from any origin near the window)."""
    numerator = n * sty
    numerator -= st * sy
    denominator = n * stt
    denominator -= st * st
    with np.errstate(invalid="ignore", divide="ignore"):
        per_hour = np.divide(numerator, denominator, out=numerator)
    per_hour[(n < min_samples) | ~(span_h > 0)] = np.nan
    return Slope(per_hour, per_hour * span_h, n.astype(np.int64), span_h)


def window_slope(
    values: np.ndarray,
    times: np.ndarray,
    *,
    now: datetime,
    window: timedelta | np.ndarray,
    min_samples: int = 3,
) -> Slope:
    """Least-squares slope per row over the samples with now - window <= t <= now.

    `window` is one timedelta for every row or an array of seconds per row.
    """
    now_s = now.timestamp()
    rows = values.shape[0]
    seconds = window.total_seconds() if isinstance(window, timedelta) else window
    window_h = np.broadcast_to(np.asarray(seconds, dtype=float) / 3600, (rows,))
    sums = np.zeros((6, rows))
    for start in range(0, rows, _CHUNK_ROWS):
        part = slice(start, start + _CHUNK_ROWS)
        t = (times[part] - now_s) / 3600  # hours before now: small numbers, no cancellation in t²
        inside = (t >= -window_h[part, None]) & (t <= 0) & ~np.isnan(values[part])
        t0 = np.where(inside, t, 0.0)
        y0 = np.where(inside, values[part], 0.0)
        sums[0, part] = inside.sum(axis=1)
        sums[1, part] = t0.sum(axis=1)
        sums[2, part] = y0.sum(axis=1)
        sums[3, part] = np.einsum("ij,ij->i", t0, t0)
        sums[4, part] = np.einsum("ij,ij->i", t0, y0)
        oldest = np.where(inside, t, np.inf).min(axis=1, initial=np.inf)
        newest = np.where(inside, t, -np.inf).max(axis=1, initial=-np.inf)
        sums[5, part] = np.where(sums[0, part] > 0, newest - oldest, 0.0)
    return slope_from_sums(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], min_samples)


def window_mean(
    values: np.ndarray, times: np.ndarray, *, after: float, until: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and count per row of the samples with after < t <= until (epoch s); NaN mean when empty."""
    inside = (times > after) & (times <= until) & ~np.isnan(values)
    n = inside.sum(axis=-1)
    with np.errstate(invalid="ignore"):
        return np.where(inside, values, 0.0).sum(axis=-1) / n, n


# --- rules ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlopeRule:
    rule: str
    vital: Vital
    window: timedelta
    change: float  # signed: -3 is "falls by 3 or more"
    min_samples: int
    min_span: timedelta  # the samples must cover at least this much of the window
    priority: Priority


@dataclass(frozen=True, slots=True)
class RiseRule:
    """The mean of the last `recent` is at least `rise` above the mean of the `reference` before it."""

    rule: str
    vital: Vital
    recent: timedelta
    reference: timedelta
    rise: float
    min_samples: int  # in each of the two windows
    priority: Priority


SPO2_FALLING = SlopeRule(
    RuleFamily.TREND.key("spo2_falling"), Vital.SPO2, timedelta(hours=6), -3.0, 4, timedelta(hours=3),
    Priority.MEDIUM,
)  # fmt: skip
SYSTOLIC_FALLING = SlopeRule(
    RuleFamily.TREND.key("systolic_falling"), Vital.SYSTOLIC_BP, timedelta(hours=12), -20.0, 3,
    timedelta(hours=6),
    Priority.MEDIUM,
)  # fmt: skip
RESTING_PULSE_RISING = RiseRule(
    RuleFamily.TREND.key("resting_pulse_rising"), Vital.PULSE_RATE, timedelta(hours=24), timedelta(days=3),
    10.0, 3,
    Priority.LOW,
)  # fmt: skip
SLOPE_RULES = (SPO2_FALLING, SYSTOLIC_FALLING)


def slope_fires(rule: SlopeRule, slope: Slope) -> tuple[np.ndarray, np.ndarray]:
    """(fire, known): known rows have enough samples over enough of the window to judge."""
    known = ~np.isnan(slope.per_hour) & (slope.span_h >= rule.min_span.total_seconds() / 3600)
    if rule.change < 0:
        fire = known & (slope.change <= rule.change + _TOLERANCE)
    else:
        fire = known & (slope.change >= rule.change - _TOLERANCE)
    return fire, known


def slope_output(
    rule: SlopeRule, slope: Slope, patient_ids: Sequence[uuid.UUID], *, now: datetime, observed_at: np.ndarray
) -> RuleOutput:
    """Requests where the trend rule fires, clears where it is judged and does not."""
    fire, known = slope_fires(rule, slope)
    hours = rule.window.total_seconds() / 3600

    def facts(i: int) -> TrendSlope:
        return TrendSlope(
            rule=rule.rule, vital=rule.vital, change=float(slope.change[i]), span_h=float(slope.span_h[i]),
            limit_change=rule.change, window_h=hours,
        )  # fmt: skip

    return output_from_masks(
        patient_ids=patient_ids, rule=rule.rule, vital=rule.vital.value, priority=rule.priority,
        fire=fire, known=known, value=slope.change, threshold=rule.change, observed_at=observed_at,
        facts=facts, now=now,
    )  # fmt: skip


def rise(
    rule: RiseRule, values: np.ndarray, times: np.ndarray, *, now: datetime
) -> tuple[np.ndarray, np.ndarray]:
    """(rise, known) per row: recent mean minus reference mean; known where both windows have enough."""
    now_s, split = now.timestamp(), now.timestamp() - rule.recent.total_seconds()
    recent, n_recent = window_mean(values, times, after=split, until=now_s)
    reference, n_ref = window_mean(values, times, after=split - rule.reference.total_seconds(), until=split)
    known = (n_recent >= rule.min_samples) & (n_ref >= rule.min_samples)
    return np.where(known, recent - reference, np.nan), known


def rise_output(
    rule: RiseRule, values: np.ndarray, times: np.ndarray, patient_ids: Sequence[uuid.UUID], *, now: datetime
) -> RuleOutput:
    up, known = rise(rule, values, times, now=now)
    fire = known & (up >= rule.rise - _TOLERANCE)
    observed = np.full(len(patient_ids), now.timestamp())

    def facts(i: int) -> TrendRise:
        days = rule.reference.days
        return TrendRise(rule=rule.rule, vital=rule.vital, rise=float(up[i]), reference_days=days)

    return output_from_masks(
        patient_ids=patient_ids, rule=rule.rule, vital=rule.vital.value, priority=rule.priority,
        fire=fire, known=known, value=up, threshold=rule.rise, observed_at=observed, facts=facts, now=now,
    )  # fmt: skip


# --- the rules --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlopeTrendRule(OnTheTimer):
    """A slope rule over the engine's trend windows (`alerts.running.SlotWindows`, one per vital, kept in
    memory and rebuilt from the database on first use: see `ingest.engine`)."""

    rule: SlopeRule
    family: RuleFamily = RuleFamily.TREND

    def request(self, scope: Scope) -> TrendSlopeRequest | None:
        return TrendSlopeRequest(self.rule.vital, self.rule.min_samples)

    def evaluate(self, inputs: TrendSlopes, now: datetime) -> RuleOutput:
        return slope_output(self.rule, inputs.slope, inputs.patients, now=now, observed_at=inputs.observed_at)


@dataclass(frozen=True, slots=True)
class RiseTrendRule(OnTheTimer):
    """A rise of whole-day means. It compares days, so every 15 minutes is often enough; hourly means
    make an oximeter's stream and a cuff's daily reading weigh alike per hour."""

    rule: RiseRule
    family: RuleFamily = RuleFamily.TREND
    every: timedelta | None = field(default=timedelta(minutes=15), init=False)

    def request(self, scope: Scope) -> HourlyMeansRequest | None:
        if not scope.in_care:
            return None
        return HourlyMeansRequest(self.rule.vital, scope.in_care, self.rule.recent + self.rule.reference)

    def evaluate(self, inputs: Series, now: datetime) -> RuleOutput:
        return rise_output(self.rule, inputs.values, inputs.times, inputs.patients, now=now)


# --- scalar twins, used only in tests ---------------------------------------------------------


def slope_one(
    values: Sequence[float], times: Sequence[float], now_s: float, window_s: float, min_samples: int
) -> tuple[float, float, int, float]:
    """(per_hour, change, n, span_h) by the centred textbook formula over plain lists."""
    pts = [
        ((t - now_s) / 3600, y)
        for y, t in zip(values, times, strict=True)
        if not math.isnan(y) and not math.isnan(t) and now_s - window_s <= t <= now_s
    ]
    n = len(pts)
    span = max(t for t, _ in pts) - min(t for t, _ in pts) if pts else 0.0
    if n < min_samples or span <= 0:
        return math.nan, math.nan, n, span
    mt = sum(t for t, _ in pts) / n
    my = sum(y for _, y in pts) / n
    per_hour = sum((t - mt) * (y - my) for t, y in pts) / sum((t - mt) ** 2 for t, _ in pts)
    return per_hour, per_hour * span, n, span


def rise_one(rule: RiseRule, values: Sequence[float], times: Sequence[float], now_s: float) -> float | None:
    split = now_s - rule.recent.total_seconds()
    start = split - rule.reference.total_seconds()
    recent = [y for y, t in zip(values, times, strict=True) if not math.isnan(y) and split < t <= now_s]
    reference = [y for y, t in zip(values, times, strict=True) if not math.isnan(y) and start < t <= split]
    if len(recent) < rule.min_samples or len(reference) < rule.min_samples:
        return None
    return sum(recent) / len(recent) - sum(reference) / len(reference)
