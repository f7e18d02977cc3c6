"""Artefacts and flapping: when a breach may raise a physiological alarm, and when the alarm may clear.

Three filters stand between a threshold breach and an alert, each vectorized over rows (one row per
patient and rule) with a scalar twin used only in tests:

* Artefact: a reading carrying a doubtful quality flag (`alerts.thresholds.DOUBTFUL_QUALITY`: loose
  cuff, movement, low perfusion...) never raises an alarm on its own; it neither extends nor breaks
  a run of breaches and never clears. If only doubtful readings arrive, the missing-data rule
  (`alerts.missing`, which counts trustworthy readings) raises a technical alarm instead.
* Persistence: the breach must be seen in N consecutive trustworthy readings, or in trustworthy
  readings spanning N minutes with no trustworthy normal reading between them (whichever comes
  first). The span is between readings, never "until now": one breach followed by silence is not
  a persisting breach. This is the "alarm condition delay" of IEC 60601-1-8 (pulse oximeters must
  disclose theirs, ISO 80601-2-61); it exists because motion and probe artefacts are short.
* Hysteresis: an active alarm clears only when a trustworthy reading is back inside the limit by a
  margin, so a value wobbling around the limit does not open and close alerts every minute.

A limit's direction is a sign: ABOVE (+1) breaches when value > limit, BELOW (-1) when value < limit,
matching `alerts.thresholds.ThresholdRule` ("below 92" is SpO2 ≤ 91 on the NEWS2 chart).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from alerts.facts import LimitKind, ThresholdBreach
from alerts.messages_sv import render
from alerts.model import AlertClear, AlertRequest, RuleOutput, from_epoch_seconds
from alerts.thresholds import DOUBTFUL_QUALITY, ThresholdRule
from core.vitals import Vital

ABOVE = 1
BELOW = -1


def sign_of(direction: str) -> int:
    """ThresholdRule.direction ("above"/"below") as a sign."""
    return {"above": ABOVE, "below": BELOW}[direction]


def is_doubtful(quality: Iterable[str]) -> bool:
    return not DOUBTFUL_QUALITY.isdisjoint(quality)


def doubtful_mask(qualities: Sequence[Iterable[str]]) -> np.ndarray:
    """One bool per reading: does its quality list hold a doubtful flag?"""
    return np.fromiter((is_doubtful(q) for q in qualities), dtype=bool, count=len(qualities))


@dataclass(frozen=True, slots=True)
class Persistence:
    """How long a breach must last before it may raise: `readings` in a row, or over `duration`."""

    readings: int = 1
    duration: timedelta | None = None

    @property
    def duration_s(self) -> float:
        return math.inf if self.duration is None else self.duration.total_seconds()


# Continuous oximetry reports every second or so and its artefacts (motion, a slipping probe) last
# seconds to a minute; at home, where a nurse responds in minutes, Hemma waits for 3 readings or 2
# minutes. Spot checks (cuff, thermometer, counted respiration) are taken deliberately: one
# trustworthy reading counts. (Hemma defaults, for clinical review.)
CONTINUOUS = Persistence(readings=3, duration=timedelta(minutes=2))
SPOT_CHECK = Persistence(readings=1)
DEFAULT_PERSISTENCE: dict[Vital, Persistence] = {
    v: CONTINUOUS if v in (Vital.SPO2, Vital.PULSE_RATE, Vital.HEART_RATE) else SPOT_CHECK for v in Vital
}
# Clear margins: about one reading's measurement noise (Hemma defaults, for clinical review). SpO2 ≤91
# ("below 92") clears at ≥93 %, pulse ≥131 ("above 130") at ≤125/min.
DEFAULT_MARGIN: dict[Vital, float] = {
    Vital.SPO2: 1.0,
    Vital.PULSE_RATE: 5.0,
    Vital.HEART_RATE: 5.0,
    Vital.SYSTOLIC_BP: 5.0,
    Vital.DIASTOLIC_BP: 5.0,
    Vital.MEAN_ARTERIAL_PRESSURE: 5.0,
    Vital.BODY_TEMPERATURE: 0.2,
    Vital.RESPIRATORY_RATE: 2.0,
    Vital.BODY_WEIGHT: 0.5,
    Vital.GLUCOSE: 0.5,
}


@dataclass(frozen=True, slots=True)
class BreachRuns:
    """Per row: the current run of trustworthy breaching readings (count 0 = no run)."""

    count: np.ndarray  # int32
    first_at: np.ndarray  # float64 epoch s of the run's first reading, NaN when count is 0
    last_at: np.ndarray  # float64 epoch s of its newest reading

    @classmethod
    def empty(cls, rows: int) -> BreachRuns:
        return cls(np.zeros(rows, np.int32), np.full(rows, np.nan), np.full(rows, np.nan))

    def persistent(self, readings: np.ndarray | int, duration_s: np.ndarray | float) -> np.ndarray:
        """Rows whose run is long enough to raise (policy per row or one for all)."""
        persistent: np.ndarray = (self.count >= readings) | (self.last_at - self.first_at >= duration_s)
        return persistent


def _beyond(value: np.ndarray, limit: np.ndarray | float, sign: np.ndarray | int) -> np.ndarray:
    return (value - limit) * sign > 0  # NaN → False


def advance_runs(
    runs: BreachRuns,
    value: np.ndarray,
    doubtful: np.ndarray,
    measured_at: np.ndarray,
    *,
    limit: np.ndarray | float,
    sign: np.ndarray | int,
) -> BreachRuns:
    """The runs after at most one new reading per row (NaN value = none); feed readings in time order."""
    excess = (value - limit) * sign  # > 0 beyond the limit, <= 0 inside; NaN (no reading) is neither
    believed = ~doubtful
    beyond = (excess > 0) & believed
    normal = (excess <= 0) & believed
    had_run = runs.count > 0
    count = (runs.count + beyond) * ~normal
    # Starts and ends of runs are rare: write them by index instead of a full pass of np.where.
    first_at, last_at = runs.first_at.copy(), runs.last_at.copy()
    starts = np.flatnonzero(beyond & ~had_run)
    first_at[starts] = measured_at[starts]
    grows = np.flatnonzero(beyond)
    last_at[grows] = measured_at[grows]
    ends = np.flatnonzero(normal & had_run)
    first_at[ends] = last_at[ends] = np.nan
    return BreachRuns(count.astype(np.int32, copy=False), first_at, last_at)


def trailing_runs(
    values: np.ndarray,
    times: np.ndarray,
    doubtful: np.ndarray,
    *,
    limit: np.ndarray | float,
    sign: np.ndarray | int,
    now: datetime,
) -> BreachRuns:
    """The run at the end of each row's window: arrays [rows, window], oldest first, NaN = empty slot.

    The whole-window twin of `advance_runs` (same answer as feeding the window reading by reading),
    for a window loaded from the database. Readings after `now` are not known yet and are ignored.
    """
    if values.shape[-1] == 0:
        return BreachRuns.empty(values.shape[0])
    limit = np.asarray(limit, dtype=float)[..., None] if np.ndim(limit) else limit
    sign = np.asarray(sign)[..., None] if np.ndim(sign) else sign
    trusted = ~np.isnan(values) & ~doubtful & (times <= now.timestamp())
    beyond = trusted & _beyond(values, limit, sign)
    normal = trusted & ~beyond
    width = values.shape[-1]
    column = np.arange(width)
    last_normal = np.where(normal.any(axis=-1), width - 1 - np.argmax(normal[..., ::-1], axis=-1), -1)
    run = beyond & (column > last_normal[..., None])
    count = run.sum(axis=-1).astype(np.int32)
    has = count > 0
    first_col = np.argmax(run, axis=-1)
    last_col = width - 1 - np.argmax(run[..., ::-1], axis=-1)
    first = np.take_along_axis(times, first_col[..., None], axis=-1)[..., 0]
    last = np.take_along_axis(times, last_col[..., None], axis=-1)[..., 0]
    return BreachRuns(count, np.where(has, first, np.nan), np.where(has, last, np.nan))


def alarm_state(
    active: np.ndarray,
    persistent: np.ndarray,
    value: np.ndarray,
    doubtful: np.ndarray,
    *,
    limit: np.ndarray | float,
    sign: np.ndarray | int,
    margin: np.ndarray | float,
) -> np.ndarray:
    """Hysteresis: an inactive row becomes active when persistent; an active one stays active until a
    trustworthy reading (NaN = none this tick) is back inside `limit` by at least `margin`."""
    back_inside = ((limit - value) * sign >= margin) & ~doubtful  # NaN (no reading) compares False
    next_active: np.ndarray = (active & ~back_inside) | (~active & persistent)
    return next_active


def threshold_output(
    rule: ThresholdRule,
    patient_ids: Sequence[uuid.UUID],
    *,
    was_active: np.ndarray,
    active: np.ndarray,
    value: np.ndarray,
    measured_at: np.ndarray,
    now: datetime,
) -> RuleOutput:
    """Requests for active rows that got a reading this tick; clears for rows that stopped being active.

    One row per patient, one `ThresholdRule` (one severity of one key); `value`/`measured_at` are this
    tick's reading per row (NaN = none). A clear's time is its reading's, else `now`.
    """
    del now  # part of every rule's signature; the times here are the readings'
    requests = [
        AlertRequest(
            patient_id=patient_ids[i],
            rule=rule.rule,
            vital=rule.vital.value,
            priority=rule.priority,
            message=render(_breach(rule, float(value[i]))),
            value=float(value[i]),
            threshold=rule.limit,
            observed_at=from_epoch_seconds(float(measured_at[i])),
        )
        for i in np.flatnonzero(active & ~np.isnan(value)).tolist()
    ]
    clears = [
        AlertClear(patient_ids[i], rule.rule, from_epoch_seconds(float(measured_at[i])))
        for i in np.flatnonzero(was_active & ~active).tolist()
    ]
    return requests, clears


def _breach(rule: ThresholdRule, value: float) -> ThresholdBreach:
    return ThresholdBreach(
        rule.rule, rule.priority, rule.vital, rule.direction, rule.limit, LimitKind.WARD, value, beyond=True
    )


# --- scalar twins, used only in tests ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunOne:
    count: int = 0
    first_at: float | None = None
    last_at: float | None = None


def advance_run_one(run: RunOne, value: float, doubtful: bool, at: float, limit: float, sign: int) -> RunOne:
    if math.isnan(value) or doubtful:
        return run
    if (sign == ABOVE and value > limit) or (sign == BELOW and value < limit):
        return RunOne(run.count + 1, at if run.count == 0 else run.first_at, at)
    return RunOne()


def persistent_one(run: RunOne, readings: int, duration_s: float) -> bool:
    if run.count == 0:
        return False
    assert run.first_at is not None and run.last_at is not None
    return run.count >= readings or run.last_at - run.first_at >= duration_s


def alarm_state_one(
    active: bool, persistent: bool, value: float, doubtful: bool, limit: float, sign: int, margin: float
) -> bool:
    if not active:
        return persistent
    if math.isnan(value) or doubtful:
        return True
    inside_by = value - limit if sign == BELOW else limit - value
    return inside_by < margin
