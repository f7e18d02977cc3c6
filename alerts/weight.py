"""Heart-failure weight rules for every patient at once: the guideline's fixed rule and a personal baseline.

* "weight_gain_3d" (ESC 2021 heart failure guidelines, section on self-care; HFA position paper on
  self-care, Lainscak et al. 2011): a sudden, unexpected gain of more than 2 kg within 3 days means
  fluid retention; the patient should raise the diuretic dose and/or alert the heart-failure team.
  The newest weight is compared with the lowest weight of the 3 days before it. Patients weigh once a
  morning, not to the minute, so "3 days" stretches by `WEIGHT_WINDOW_SLACK` (6 h): the weight from
  3 mornings ago counts even if it was taken at 07:20 and today's at 07:40.
* "weight_above_baseline": fixed rules catch few decompensations (Gyllensten et al., JMIR Med Inform
  2016: rule-of-thumb sensitivity 20 %, a moving-average trend 33 %; Zhang et al., Eur J Heart Fail
  2009, TEN-HMS: over half of rule-of-thumb alerts false), as weight often creeps up by a few hundred
  grams a day. So each patient's weight also runs on an EWMA control chart (Roberts 1959; limits as
  in Lucas & Saccucci 1990) against their own baseline: mean and SD from the first `baseline` days (at least
  `min_readings` weights), then the chart statistic z = λx + (1-λ)z fires when z exceeds the baseline
  by L·sd·sqrt(λ/(2-λ)). In control, the baseline follows slow drift of dry weight (EWMA with weight
  `adapt`); out of control it freezes, so a decompensation is never learnt as the new normal. A
  clinician's new dry weight means `BaselineChart.restart` for that patient.
* Combined with what the patient reports (issue 10): a gain of more than 2 kg in 3 days *and* more
  breathlessness in the daily heart-failure check is one high "weight_gain_3d" alert carrying both
  facts, never a medium weight alert and a separate symptoms alert. `weight_gain_with_breathlessness`
  is that decision, the one function both this rule and alerts.symptoms call.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from alerts.facts import WeightAboveBaseline, WeightGain3d
from alerts.inputs import Series, WeightGainInputs, WeightGainRequest, WeightHistoryRequest
from alerts.model import Priority, RuleOutput
from alerts.requests import output_from_masks
from alerts.rule import RuleFamily, Scope, WithEachBatch
from core.contract import MAX_CLOCK_SKEW
from core.vitals import Vital

WEIGHT_GAIN_RULE = RuleFamily.WEIGHT_GAIN.key()
WEIGHT_GAIN_KG = 2.0  # "more than 2 kg"
WEIGHT_WINDOW = timedelta(days=3)
WEIGHT_WINDOW_SLACK = timedelta(hours=6)
WEIGHT_CLEAR_MARGIN = 0.5  # kg: hysteresis of the 3-day rule, about one day's weighing noise
BASELINE_RULE = RuleFamily.WEIGHT_BASELINE.key()
_FLOAT_GUARD = 1e-6  # 72.3 - 70.3 is 2.0000000000000284 in binary: not "more than 2 kg"
# The combined rule: the daily heart-failure check (care/questionnaires/data/hemma-hf-daily.json) and
# its flag for "Mycket mer andfådd", reported within a day of the newest weight (before or after it:
# a patient weighs and answers in the same morning routine, in either order).
HF_CHECK = "hemma-hf-daily"
BREATHLESS_FLAG = "breathless-worse"
REPORT_WITHIN = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class WeightGain:
    gain: np.ndarray  # newest weight minus the lowest of the window before it; NaN without both
    newest: np.ndarray
    newest_at: np.ndarray  # epoch s


def weight_gain(
    values: np.ndarray,
    times: np.ndarray,
    *,
    now: datetime,
    window: timedelta = WEIGHT_WINDOW + WEIGHT_WINDOW_SLACK,
) -> WeightGain:
    """Per row of a weight window ([rows, samples], epoch s, NaN = empty, any order), readings up to `now`."""
    if values.shape[1] == 0:
        nan = np.full(values.shape[0], np.nan)
        return WeightGain(nan, nan, nan)
    known = ~np.isnan(values) & (times <= now.timestamp())
    newest_at = np.where(known, times, -np.inf).max(axis=1)
    has = np.isfinite(newest_at)
    col = np.argmax(np.where(known, times, -np.inf), axis=1)
    newest = np.where(has, values[np.arange(values.shape[0]), col], np.nan)
    before = known & (times < newest_at[:, None]) & (times >= newest_at[:, None] - window.total_seconds())
    lowest = np.where(before, values, np.inf).min(axis=1)
    gain = np.where(np.isfinite(lowest) & has, newest - lowest, np.nan)
    return WeightGain(gain, newest, np.where(has, newest_at, np.nan))


def weight_gain_with_breathlessness(
    gain: np.ndarray, weighed_at: np.ndarray, breathless_at: np.ndarray
) -> np.ndarray:
    """The combined rule, per row: the 3-day weight rule is met (more than 2 kg) and the patient's newest
    answer to the heart-failure check reported more breathlessness within `REPORT_WITHIN` of the newest
    weight (`breathless_at`: that answer's epoch s, NaN when the newest answer does not report it).

    Then "weight_gain_3d" is high and carries both facts (the check's every flag), and alerts.symptoms
    raises nothing of its own for that answer: one alert, not two. Decided against the weight's time,
    not the clock's, so both rules reach the same answer whenever either runs. NaN anywhere is False.
    """
    with np.errstate(invalid="ignore"):
        close: np.ndarray = np.abs(breathless_at - weighed_at) <= REPORT_WITHIN.total_seconds()
        both: np.ndarray = (gain > WEIGHT_GAIN_KG + _FLOAT_GUARD) & close
    return both


def weight_gain_output(
    wg: WeightGain,
    patient_ids: Sequence[uuid.UUID],
    *,
    now: datetime,
    breathless_at: np.ndarray | None = None,
    reported: Sequence[tuple[str, ...]] = (),
) -> RuleOutput:
    """Rule "weight_gain_3d" (medium: the HF team should act the same day; high with more breathlessness
    reported, `weight_gain_with_breathlessness`).

    It clears only when the gain is back to `WEIGHT_GAIN_KG - WEIGHT_CLEAR_MARGIN` or less: between the
    two it says nothing, so a gain hovering around 2 kg (day-to-day noise is ~0.5 kg) keeps one alert
    instead of closing it and raising a new one every other morning.
    """
    measured = ~np.isnan(wg.gain)
    fire = measured & (wg.gain > WEIGHT_GAIN_KG + _FLOAT_GUARD)
    known = fire | (measured & (wg.gain <= WEIGHT_GAIN_KG - WEIGHT_CLEAR_MARGIN + _FLOAT_GUARD))
    reported_at = np.full(fire.shape, np.nan) if breathless_at is None else breathless_at
    both = weight_gain_with_breathlessness(wg.gain, wg.newest_at, reported_at)
    priority = np.where(both, int(Priority.HIGH), int(Priority.MEDIUM))

    def facts(i: int) -> WeightGain3d:
        # The heart-failure check's whole answer: its other flags (swollen ankles, sleeping propped up)
        # are the same story of fluid retention, told in this one alert.
        flags = (reported[i] if reported else (BREATHLESS_FLAG,)) if both[i] else ()
        return WeightGain3d(gain_kg=float(wg.gain[i]), limit_kg=WEIGHT_GAIN_KG, reported=flags)

    return output_from_masks(
        patient_ids=patient_ids, rule=WEIGHT_GAIN_RULE, vital=Vital.BODY_WEIGHT.value,
        priority=priority, fire=fire, known=known, value=wg.gain, threshold=WEIGHT_GAIN_KG,
        observed_at=wg.newest_at, facts=facts, now=now,
    )  # fmt: skip


# --- personal baseline: EWMA control chart ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class BaselineSettings:
    baseline: timedelta = timedelta(days=7)
    min_readings: int = 5
    lam: float = 0.3  # weight of the newest reading in z
    limit_sd: float = 3.0  # L
    # Day-to-day weight varies by ~0.5-1 kg (food, fluid, clothes, scale): a baseline week that happens
    # to be quieter than that must not make the chart fire on ordinary variation.
    sd_floor: float = 0.5
    adapt: float = 0.05  # after the baseline period, in control: how fast the baseline follows drift

    @property
    def limit_factor(self) -> float:
        return self.limit_sd * math.sqrt(self.lam / (2 - self.lam))


@dataclass(frozen=True, slots=True)
class BaselineChart:
    """Per patient: the chart's state. Start with `empty`, then `update` with each new weight in order."""

    started_at: np.ndarray  # epoch s of the first weight, NaN = none yet
    n: np.ndarray  # weights seen (int)
    mean: np.ndarray  # baseline mean
    var: np.ndarray  # baseline variance (sample variance during the baseline period)
    z: np.ndarray  # the EWMA statistic
    out: np.ndarray  # bool: above the upper control limit after the last weight

    @classmethod
    def empty(cls, rows: int) -> BaselineChart:
        nan = np.full(rows, np.nan)
        return cls(nan, np.zeros(rows, np.int64), nan.copy(), nan.copy(), nan.copy(), np.zeros(rows, bool))

    def restart(self, rows: np.ndarray) -> BaselineChart:
        """Forget the baseline of these rows (a clinician set a new dry weight)."""
        fresh = BaselineChart.empty(len(rows))
        return BaselineChart(*(_put(getattr(self, f), rows, getattr(fresh, f)) for f in _FIELDS))

    def excess(self) -> np.ndarray:
        """kg the statistic lies above the baseline (NaN while the baseline is being learnt)."""
        excess: np.ndarray = self.z - self.mean
        return excess

    def limit(self, settings: BaselineSettings) -> np.ndarray:
        limit: np.ndarray = settings.limit_factor * np.maximum(np.sqrt(self.var), settings.sd_floor)
        return limit


_FIELDS = ("started_at", "n", "mean", "var", "z", "out")


def _put(array: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = array.copy()
    out[rows] = values
    return out


def update_baseline(
    chart: BaselineChart, value: np.ndarray, at: np.ndarray, settings: BaselineSettings | None = None
) -> BaselineChart:
    """The chart after at most one new weight per row (NaN = none this time)."""
    s = settings or BaselineSettings()
    new = ~np.isnan(value)
    first = new & (chart.n == 0)
    started = np.where(first, at, chart.started_at)
    learning = new & ((at - started < s.baseline.total_seconds()) | (chart.n < s.min_readings))
    charting = new & ~learning
    n = chart.n + new
    # Welford's update while learning (first weight: mean = x, var = 0).
    delta = np.where(first, 0.0, value - chart.mean)
    mean_l = np.where(first, value, chart.mean + delta / np.maximum(n, 1))
    with np.errstate(invalid="ignore"):
        var_l = np.where(
            n > 1, (np.nan_to_num(chart.var) * (n - 2) + delta * (value - mean_l)) / (n - 1), 0.0
        )
    z_c = s.lam * value + (1 - s.lam) * chart.z
    out_c = z_c - chart.mean > s.limit_factor * np.maximum(np.sqrt(chart.var), s.sd_floor) + _FLOAT_GUARD
    # In control the baseline follows drift (West's weighted update); out of control it holds still.
    follow = charting & ~out_c
    diff = value - chart.mean
    mean_c = np.where(follow, chart.mean + s.adapt * diff, chart.mean)
    var_c = np.where(follow, (1 - s.adapt) * (chart.var + s.adapt * diff * diff), chart.var)
    return BaselineChart(
        started_at=started,
        n=n,
        mean=np.where(learning, mean_l, np.where(charting, mean_c, chart.mean)),
        var=np.where(learning, var_l, np.where(charting, var_c, chart.var)),
        z=np.where(learning, mean_l, np.where(charting, z_c, chart.z)),
        out=np.where(learning, False, np.where(charting, out_c, chart.out)),
    )


def baseline_output(
    chart: BaselineChart,
    patient_ids: Sequence[uuid.UUID],
    *,
    now: datetime,
    observed_at: np.ndarray,
    settings: BaselineSettings | None = None,
) -> RuleOutput:
    """Rule "weight_above_baseline" (low: a prompt to look at the curve); clears when back in control."""
    s = settings or BaselineSettings()
    known = ~np.isnan(chart.z) & ~np.isnan(chart.var) & (chart.n >= s.min_readings)
    excess, limit = chart.excess(), chart.limit(s)

    def facts(i: int) -> WeightAboveBaseline:
        return WeightAboveBaseline(excess_kg=float(excess[i]), limit_kg=float(limit[i]))

    return output_from_masks(
        patient_ids=patient_ids, rule=BASELINE_RULE, vital=Vital.BODY_WEIGHT.value, priority=Priority.LOW,
        fire=known & chart.out, known=known, value=excess, threshold=limit, observed_at=observed_at,
        facts=facts, now=now,
    )  # fmt: skip


# --- the rules --------------------------------------------------------------------------------------
# The database is their state: each batch reads the window it needs in the batch's own transaction, so
# a restart rebuilds nothing and a redelivered message (which inserts nothing) re-evaluates nothing.


def _weighed(scope: Scope) -> tuple[uuid.UUID, ...]:
    return tuple(sorted(scope.touched.get(Vital.BODY_WEIGHT, ())))


@dataclass(frozen=True, slots=True)
class WeightGainRule(WithEachBatch):
    """ESC/HFA "more than 2 kg within 3 days" for the patients who just sent a weight, and for those who
    just answered the heart-failure check (an answer after the weight can make the alert high)."""

    family: RuleFamily = RuleFamily.WEIGHT_GAIN

    def request(self, scope: Scope) -> WeightGainRequest | None:
        patients = tuple(sorted(set(_weighed(scope)) | scope.answering((HF_CHECK,))))
        if not patients:
            return None
        return WeightGainRequest(patients, WEIGHT_WINDOW + WEIGHT_WINDOW_SLACK, HF_CHECK, BREATHLESS_FLAG)

    def evaluate(self, inputs: WeightGainInputs, now: datetime) -> RuleOutput:
        # Readings may be up to MAX_CLOCK_SKEW ahead of the server clock and still be accepted.
        weights = inputs.weights
        gain = weight_gain(weights.values, weights.times, now=now + MAX_CLOCK_SKEW)
        return weight_gain_output(
            gain, weights.patients, now=now, breathless_at=inputs.reported_at, reported=inputs.reported
        )


@dataclass(frozen=True, slots=True)
class WeightBaselineRule(WithEachBatch):
    """ "Weight above the patient's own baseline" (EWMA chart) for the patients who just sent a weight.

    Replayed from the first weight since enrolment: a patient weighs once a day, so a quarter's history
    is ~90 rows, and a late weight (store-and-forward) lands in its place in time, not after the newest.
    """

    settings: BaselineSettings | None = None
    family: RuleFamily = RuleFamily.WEIGHT_BASELINE

    def request(self, scope: Scope) -> WeightHistoryRequest | None:
        patients = _weighed(scope)
        return WeightHistoryRequest(patients) if patients else None

    def evaluate(self, inputs: Series, now: datetime) -> RuleOutput:
        values, times = inputs.values, inputs.times
        chart = BaselineChart.empty(len(inputs.patients))
        for col in range(values.shape[1]):
            chart = update_baseline(chart, values[:, col], times[:, col], self.settings)
        newest_at = np.nanmax(np.where(np.isnan(times), -np.inf, times), axis=1, initial=-np.inf)
        newest_at = np.where(np.isfinite(newest_at), newest_at, np.nan)
        return baseline_output(chart, inputs.patients, now=now, observed_at=newest_at, settings=self.settings)


# --- scalar twins, used only in tests ---------------------------------------------------------


def weight_gain_with_breathlessness_one(
    gain: float | None, weighed_at: float, breathless_at: float | None
) -> bool:
    if gain is None or breathless_at is None or math.isnan(gain) or math.isnan(breathless_at):
        return False
    return (
        gain > WEIGHT_GAIN_KG + _FLOAT_GUARD
        and abs(breathless_at - weighed_at) <= REPORT_WITHIN.total_seconds()
    )


def weight_gain_one(
    values: Sequence[float], times: Sequence[float], now_s: float, window_s: float
) -> float | None:
    known = [(t, y) for y, t in zip(values, times, strict=True) if not math.isnan(y) and t <= now_s]
    if not known:
        return None
    newest_at = max(t for t, _ in known)
    newest = next(y for t, y in known if t == newest_at)  # the first of equal times, like np.argmax
    before = [y for t, y in known if newest_at - window_s <= t < newest_at]
    return newest - min(before) if before else None


@dataclass(frozen=True, slots=True)
class BaselineOne:
    started_at: float | None = None
    n: int = 0
    mean: float = math.nan
    var: float = math.nan
    z: float = math.nan
    out: bool = False


def update_baseline_one(chart: BaselineOne, x: float, at: float, s: BaselineSettings) -> BaselineOne:
    if math.isnan(x):
        return chart
    if chart.n == 0:
        return BaselineOne(at, 1, x, 0.0, x, False)
    assert chart.started_at is not None
    n = chart.n + 1
    if at - chart.started_at < s.baseline.total_seconds() or chart.n < s.min_readings:
        mean = chart.mean + (x - chart.mean) / n
        m2 = chart.var * (chart.n - 1) + (x - chart.mean) * (x - mean)
        return BaselineOne(chart.started_at, n, mean, m2 / (n - 1), mean, False)
    z = s.lam * x + (1 - s.lam) * chart.z
    out = z - chart.mean > s.limit_factor * max(math.sqrt(chart.var), s.sd_floor) + _FLOAT_GUARD
    if out:
        return replace(chart, n=n, z=z, out=True)
    diff = x - chart.mean
    mean = chart.mean + s.adapt * diff
    var = (1 - s.adapt) * (chart.var + s.adapt * diff * diff)
    return BaselineOne(chart.started_at, n, mean, var, z, False)
