"""NEWS2, the National Early Warning Score 2 (Royal College of Physicians, 2017), for every patient at once.

Bands are chart 1 ("The NEWS scoring system"); risk categories are chart 2 ("NEWS thresholds and
triggers"). What the chart leaves to an implementation is decided here, once:

* Rounding. A reading is rounded to the chart's resolution before banding (whole numbers for
  respiration rate, SpO2, systolic pressure and pulse; 0.1 °C for temperature) with ROUND HALF UP,
  as staff round by hand: 36.05 °C → 36.1 (scores 0), 90.5/min → 91 (scores 1). Not banker's
  rounding, which would give 36.0 (scores 1). A value within 1e-9 of a step below a half-way point
  counts as the half-way point, so binary representation error (36.05 is stored as 36.0499…)
  cannot change a score. No value can fall between two bands.
* Missing is never 0. A missing or stale parameter scores MISSING (-1), the patient is
  `incomplete`, and `partial_total` sums only what is present; `total` and `risk` exist only for
  complete sets. A missing parameter can only add points, so `risk_floor` (the category of the
  present parameters) is a guaranteed lower bound: a partial total of 7 is already high risk.
* Consciousness is ACVPU; "C" is *new* confusion (new or worse disorientation or delirium), which
  scores 3 like V, P and U. Chronic, unchanged confusion is recorded as the patient's usual "A".
* SpO2 scale 2 is for patients a physician has marked hypercapnic (target 88-92 %). On scale 2 a
  reading ≥93 % scores 0 on air but 1-3 on oxygen, so it needs the air/oxygen record: without it
  the SpO2 score is MISSING too.

Inputs are numpy arrays of one element per patient: NaN is a missing reading; consciousness holds
"A", "C", "V", "P", "U", or "" / None for missing; on_oxygen is float or bool, 1/True on oxygen,
0/False on air, NaN missing; spo2_scale holds 1 or 2.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from enum import IntEnum
from typing import ClassVar

import numpy as np

from alerts.facts import News2Risk
from alerts.inputs import News2Inputs, News2Request
from alerts.messages_sv import render
from alerts.model import AlertClear, AlertRequest, Priority, RuleOutput, from_epoch_seconds
from alerts.rule import RuleFamily, Scope, WithEachBatch
from core.vitals import Vital

MISSING = -1
# Guard against binary representation error when rounding half up (see the module docstring).
_HALF_UP = 0.5 + 1e-9


class Risk(IntEnum):
    """Chart 2 clinical risk; the integer order is the severity order."""

    LOW = 0  # aggregate 0-4
    LOW_MEDIUM = 1  # a single parameter scoring 3 ("red score") with aggregate ≤ 4
    MEDIUM = 2  # aggregate 5-6
    HIGH = 3  # aggregate 7 or more

    @property
    def label(self) -> str:
        return RISK_LABELS[self]


RISK_LABELS = ("low", "low-medium", "medium", "high")


@dataclass(frozen=True, slots=True)
class _Bands:
    """One row of chart 1: the first value of every band but the lowest, and each band's score."""

    starts: tuple[int, ...]  # in chart units: whole numbers, or tenths of a degree for temperature
    scores: tuple[int, ...]

    def score(self, rounded: np.ndarray) -> np.ndarray:
        band = np.zeros(rounded.shape, np.int8)  # how many band starts the value has reached
        for start in self.starts:
            band += rounded >= start
        return np.asarray(self.scores, np.int8)[band]


# RCP NEWS2 chart 1, row by row.
RESP_RATE_BANDS = _Bands((9, 12, 21, 25), (3, 1, 0, 2, 3))  # ≤8 | 9-11 | 12-20 | 21-24 | ≥25
SPO2_SCALE_1_BANDS = _Bands((92, 94, 96), (3, 2, 1, 0))  # ≤91 | 92-93 | 94-95 | ≥96
SPO2_SCALE_2_AIR_BANDS = _Bands((84, 86, 88), (3, 2, 1, 0))  # ≤83 | 84-85 | 86-87 | 88-92 and ≥93 on air
# ≤83 | 84-85 | 86-87 | 88-92 | 93-94 on O2 | 95-96 on O2 | ≥97 on O2
SPO2_SCALE_2_OXYGEN_BANDS = _Bands((84, 86, 88, 93, 95, 97), (3, 2, 1, 0, 1, 2, 3))
SYSTOLIC_BANDS = _Bands((91, 101, 111, 220), (3, 2, 1, 0, 3))  # ≤90 | 91-100 | 101-110 | 111-219 | ≥220
# ≤40 | 41-50 | 51-90 | 91-110 | 111-130 | ≥131
PULSE_BANDS = _Bands((41, 51, 91, 111, 131), (3, 1, 0, 1, 2, 3))
# ≤35.0 | 35.1-36.0 | 36.1-38.0 | 38.1-39.0 | ≥39.1, in tenths of a degree
TEMPERATURE_BANDS = _Bands((351, 361, 381, 391), (3, 1, 0, 1, 2))
OXYGEN_SCORE = 2  # "Air or oxygen?": oxygen 2, air 0
CVPU_SCORE = 3  # "Consciousness": Alert 0, CVPU 3
ACVPU = ("A", "C", "V", "P", "U")


@dataclass(frozen=True, slots=True)
class News2One:
    """One patient's NEWS2: per-parameter scores in `News2Result.PARAMETERS` order, None = missing."""

    scores: tuple[int | None, ...]
    partial_total: int
    total: int | None
    risk: Risk | None
    risk_floor: Risk


@dataclass(frozen=True, slots=True)
class News2Result:
    """Per-parameter scores (int8, MISSING = -1), totals and risk for every patient."""

    PARAMETERS: ClassVar[tuple[str, ...]] = (
        "resp_rate", "spo2", "air_or_oxygen", "systolic_bp", "pulse", "consciousness", "temperature"
    )  # fmt: skip

    resp_rate: np.ndarray
    spo2: np.ndarray
    air_or_oxygen: np.ndarray
    systolic_bp: np.ndarray
    pulse: np.ndarray
    consciousness: np.ndarray
    temperature: np.ndarray
    partial_total: np.ndarray  # int8: the sum of the scores present (a lower bound when incomplete)
    incomplete: np.ndarray  # bool: some parameter missing or stale
    total: np.ndarray  # int8: 0-20, MISSING where incomplete
    red_score: np.ndarray  # bool: some present parameter scores 3
    risk: np.ndarray  # int8 Risk, MISSING where incomplete
    risk_floor: np.ndarray  # int8 Risk the present parameters already guarantee

    def one(self, i: int) -> News2One:
        scores = tuple(int(getattr(self, p)[i]) for p in self.PARAMETERS)
        return News2One(
            scores=tuple(None if s == MISSING else s for s in scores),
            partial_total=int(self.partial_total[i]),
            total=None if self.incomplete[i] else int(self.total[i]),
            risk=None if self.incomplete[i] else Risk(int(self.risk[i])),
            risk_floor=Risk(int(self.risk_floor[i])),
        )


def score(
    resp_rate: np.ndarray,
    spo2: np.ndarray,
    systolic_bp: np.ndarray,
    pulse: np.ndarray,
    temperature: np.ndarray,
    consciousness: np.ndarray,
    on_oxygen: np.ndarray,
    spo2_scale: np.ndarray,
) -> News2Result:
    """NEWS2 for every patient (RCP 2017 charts 1 and 2). Arrays broadcast to one shape."""
    resp, sat, sbp, hr, temp, oxygen, scale = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (resp_rate, spo2, systolic_bp, pulse, temperature, on_oxygen)),
        np.asarray(spo2_scale),
    )
    _check_oxygen_and_scale(oxygen, scale)
    sat_r = _round_half_up(sat, 1)
    on_o2 = oxygen == 1
    scale2 = np.where(on_o2, SPO2_SCALE_2_OXYGEN_BANDS.score(sat_r), SPO2_SCALE_2_AIR_BANDS.score(sat_r))
    spo2_s = np.where(scale == 2, scale2, SPO2_SCALE_1_BANDS.score(sat_r))
    # Scale 2 at ≥93 % cannot be scored without knowing air or oxygen.
    spo2_s[np.isnan(sat) | ((scale == 2) & (sat_r >= 93) & np.isnan(oxygen))] = MISSING
    parts = {
        "resp_rate": _banded(resp, RESP_RATE_BANDS, 1),
        "spo2": spo2_s,
        "air_or_oxygen": np.where(np.isnan(oxygen), MISSING, np.where(on_o2, OXYGEN_SCORE, 0)).astype(
            np.int8
        ),
        "systolic_bp": _banded(sbp, SYSTOLIC_BANDS, 1),
        "pulse": _banded(hr, PULSE_BANDS, 1),
        "consciousness": np.broadcast_to(_consciousness_scores(consciousness), resp.shape),
        "temperature": _banded(temp, TEMPERATURE_BANDS, 10),
    }
    stacked = np.stack([parts[p] for p in News2Result.PARAMETERS])
    present = stacked != MISSING
    partial = np.where(present, stacked, 0).sum(axis=0, dtype=np.int8)
    incomplete = ~present.all(axis=0)
    red = (stacked == 3).any(axis=0)
    floor = _risk(partial, red)
    return News2Result(
        **parts,
        partial_total=partial,
        incomplete=incomplete,
        total=np.where(incomplete, MISSING, partial).astype(np.int8),
        red_score=red,
        risk=np.where(incomplete, MISSING, floor).astype(np.int8),
        risk_floor=floor,
    )


def _round_half_up(x: np.ndarray, per_unit: int) -> np.ndarray:
    """`x` in chart units (`per_unit` steps per canonical unit), rounded half up; NaN stays NaN."""
    return np.floor(x * per_unit + _HALF_UP)


def _banded(x: np.ndarray, bands: _Bands, per_unit: int) -> np.ndarray:
    scores = bands.score(_round_half_up(x, per_unit))
    scores[np.isnan(x)] = MISSING
    return scores


def _risk(total: np.ndarray, red: np.ndarray) -> np.ndarray:
    """RCP chart 2: 7+ high, 5-6 medium, a single 3 with ≤4 low-medium, else low."""
    return np.select(
        [total >= 7, total >= 5, red], [Risk.HIGH, Risk.MEDIUM, Risk.LOW_MEDIUM], Risk.LOW
    ).astype(np.int8)


def _consciousness_scores(consciousness: np.ndarray) -> np.ndarray:
    c = np.asarray(consciousness)
    if c.dtype.kind == "O":
        c = np.where(c == None, "", c).astype(str)  # noqa: E711 (elementwise: which entries are None)
    if c.dtype.kind != "U":
        raise TypeError(f"consciousness must hold the letters A, C, V, P, U (got dtype {c.dtype})")
    if c.dtype.itemsize > 4:  # wider than one letter: only "" and single letters can be valid
        wide = np.char.str_len(c) > 1
        if wide.any():
            raise ValueError(
                f"consciousness {str(c[wide][0])!r} is not one of A, C, V, P, U or '' for missing"
            )
        c = c.astype("U1")
    code = c.view(np.uint32)  # compare code points, not strings
    missing = code == 0
    cvpu = (code == ord("C")) | (code == ord("V")) | (code == ord("P")) | (code == ord("U"))
    bad = ~(cvpu | missing | (code == ord("A")))
    if bad.any():
        raise ValueError(f"consciousness {str(c[bad][0])!r} is not one of A, C, V, P, U or '' for missing")
    scores: np.ndarray = (cvpu * np.int8(CVPU_SCORE) - missing).astype(np.int8)
    return scores


def _check_oxygen_and_scale(oxygen: np.ndarray, scale: np.ndarray) -> None:
    bad_o2 = ~np.isnan(oxygen) & (oxygen != 0) & (oxygen != 1)
    if bad_o2.any():
        raise ValueError(
            f"on_oxygen {oxygen[bad_o2][0]!r}: use 1/True (oxygen), 0/False (air), NaN (missing)"
        )
    bad_scale = (scale != 1) & (scale != 2)
    if bad_scale.any():
        raise ValueError(f"spo2_scale {scale[bad_scale][0]!r}: NEWS2 has SpO2 scales 1 and 2 only")


# --- freshness --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timed:
    """The latest value of one parameter per patient and when it was measured (epoch s, NaN = never)."""

    value: np.ndarray
    measured_at: np.ndarray


@dataclass(frozen=True, slots=True)
class FreshnessWindows:
    """How old a parameter's latest value may be and still count towards NEWS2.

    RCP chart 4 asks for observations at least 12-hourly at NEWS2 0 and 4-6-hourly at 1-4. At home,
    respiration rate, consciousness and oxygen are counted by a visiting nurse or the patient a few
    times a day (12 h); the Bluetooth devices take spot checks at least 4-hourly (4 h). A ward
    sets its own per monitoring plan. A value older than its window counts as missing.
    """

    resp_rate: timedelta = timedelta(hours=12)
    consciousness: timedelta = timedelta(hours=12)
    on_oxygen: timedelta = timedelta(hours=12)
    spo2: timedelta = timedelta(hours=4)
    systolic_bp: timedelta = timedelta(hours=4)
    pulse: timedelta = timedelta(hours=4)
    temperature: timedelta = timedelta(hours=4)


@dataclass(frozen=True, slots=True)
class News2Latest:
    """Every NEWS2 parameter's latest value per patient, with its time; the SpO2 scale is an order."""

    resp_rate: Timed
    spo2: Timed
    systolic_bp: Timed
    pulse: Timed
    temperature: Timed
    consciousness: Timed
    on_oxygen: Timed
    spo2_scale: np.ndarray = field(default_factory=lambda: np.array(1))


_INPUTS = ("resp_rate", "spo2", "systolic_bp", "pulse", "temperature", "consciousness", "on_oxygen")


def fresh_values(
    latest: News2Latest, *, now: datetime, windows: FreshnessWindows | None = None
) -> tuple[np.ndarray, ...]:
    """`score`'s arguments, each value older than its window masked as missing (NaN, or "")."""
    windows = windows or FreshnessWindows()
    now_s = now.timestamp()

    def fresh(name: str) -> np.ndarray:
        timed: Timed = getattr(latest, name)
        # NaN time → False; a reading a little in the future (device clock ahead, bounded by
        # core.contract.MAX_CLOCK_SKEW) is fresh.
        is_fresh = (
            now_s - np.asarray(timed.measured_at, dtype=float) <= getattr(windows, name).total_seconds()
        )
        if name == "consciousness":
            return np.where(is_fresh, timed.value, "")
        return np.where(is_fresh, np.asarray(timed.value, dtype=float), np.nan)

    return (*(fresh(name) for name in _INPUTS), np.asarray(latest.spo2_scale))


def fresh_score(
    latest: News2Latest, *, now: datetime, windows: FreshnessWindows | None = None
) -> News2Result:
    """NEWS2 on the values still inside their freshness window; stale ones count as missing."""
    return score(*fresh_values(latest, now=now, windows=windows))


# --- scalar twin, used only in tests ----------------------------------------------------------


def score_one(
    resp_rate: float | None,
    spo2: float | None,
    systolic_bp: float | None,
    pulse: float | None,
    temperature: float | None,
    consciousness: str | None,
    on_oxygen: bool | float | None,
    spo2_scale: int = 1,
) -> News2One:
    """One patient's NEWS2, transcribed from chart 1 with if-chains (the vectorized kernel's oracle)."""
    o2 = None if on_oxygen is None or on_oxygen != on_oxygen else bool(on_oxygen)
    rr, sat, sbp, hr = (_half_up_one(v, 1) for v in (resp_rate, spo2, systolic_bp, pulse))
    t10 = _half_up_one(temperature, 10)
    scores = (
        None if rr is None else 3 if rr <= 8 else 1 if rr <= 11 else 0 if rr <= 20 else 2 if rr <= 24 else 3,
        _spo2_one(sat, o2, spo2_scale),
        None if o2 is None else 2 if o2 else 0,
        None if sbp is None else 3 if sbp <= 90 else 2 if sbp <= 100 else 1 if sbp <= 110 else 0 if sbp <= 219
        else 3,
        None if hr is None else 3 if hr <= 40 else 1 if hr <= 50 else 0 if hr <= 90 else 1 if hr <= 110
        else 2 if hr <= 130 else 3,
        None if consciousness in (None, "") else 0 if consciousness == "A" else 3,
        None if t10 is None else 3 if t10 <= 350 else 1 if t10 <= 360 else 0 if t10 <= 380
        else 1 if t10 <= 390 else 2,
    )  # fmt: skip
    present = [s for s in scores if s is not None]
    partial = sum(present)
    red = 3 in present
    floor = (
        Risk.HIGH if partial >= 7 else Risk.MEDIUM if partial >= 5 else Risk.LOW_MEDIUM if red else Risk.LOW
    )
    complete = len(present) == len(scores)
    return News2One(scores, partial, partial if complete else None, floor if complete else None, floor)


def _spo2_one(sat: int | None, o2: bool | None, scale: int) -> int | None:
    if sat is None:
        return None
    if scale == 1:
        return 3 if sat <= 91 else 2 if sat <= 93 else 1 if sat <= 95 else 0
    if sat <= 92:
        return 3 if sat <= 83 else 2 if sat <= 85 else 1 if sat <= 87 else 0
    if o2 is None:
        return None
    return (1 if sat <= 94 else 2 if sat <= 96 else 3) if o2 else 0


def _half_up_one(value: float | None, per_unit: int) -> int | None:
    """Round half up in exact decimal arithmetic on the float's binary value, with the same 1e-9 guard."""
    if value is None or math.isnan(value):
        return None
    chart_units = Decimal(value) * per_unit + Decimal("0.5") + Decimal("1e-9")
    return int(chart_units.to_integral_value(rounding=ROUND_FLOOR))


# --- alert requests ---------------------------------------------------------------------------

NEWS2_RULE = RuleFamily.NEWS2.key()
# NEWS2 parameters measured by devices or entered as observations (pulse: pulse rate or heart rate).
NEWS2_VITALS = (
    Vital.RESPIRATORY_RATE, Vital.SPO2, Vital.SYSTOLIC_BP, Vital.PULSE_RATE, Vital.HEART_RATE,
    Vital.BODY_TEMPERATURE,
)  # fmt: skip
# RCP chart 4: 7+ needs an emergency response, 5-6 or a single red 3 an urgent one (IEC 60601-1-8 medium).
_RISK_PRIORITY = {Risk.LOW_MEDIUM: Priority.MEDIUM, Risk.MEDIUM: Priority.MEDIUM, Risk.HIGH: Priority.HIGH}
_RISK_TRIGGER = {Risk.LOW_MEDIUM: 3.0, Risk.MEDIUM: 5.0, Risk.HIGH: 7.0}


def news2_requests(
    result: News2Result,
    patient_ids: Sequence[uuid.UUID],
    *,
    now: datetime,
    observed_at: np.ndarray | None = None,
) -> RuleOutput:
    """Rule "news2": a request at the risk the present values guarantee; a clear only when complete and low.

    An incomplete set whose present parameters already reach low-medium or worse still raises (missing
    values could only add points); an incomplete low set neither raises nor clears: it is unknown, and
    the missing-data rules (`alerts.missing`) say what is missing. `observed_at` is per patient (epoch s,
    typically the newest contributing measurement); it defaults to `now`.
    """
    now_s = now.timestamp()
    at = (
        np.full(len(patient_ids), now_s)
        if observed_at is None
        else np.where(np.isnan(observed_at), now_s, observed_at)
    )
    requests = []
    for i in np.flatnonzero(result.risk_floor > Risk.LOW).tolist():
        risk = Risk(int(result.risk_floor[i]))
        total = int(result.partial_total[i])
        facts = News2Risk(total=total, incomplete=bool(result.incomplete[i]), risk=risk.label)
        requests.append(
            AlertRequest(
                patient_id=patient_ids[i],
                rule=NEWS2_RULE,
                vital=None,
                priority=_RISK_PRIORITY[risk],
                message=render(facts),
                value=float(total),
                threshold=_RISK_TRIGGER[risk],
                observed_at=from_epoch_seconds(float(at[i])),
            )
        )
    low = np.flatnonzero(~result.incomplete & (result.risk == Risk.LOW)).tolist()
    clears = [AlertClear(patient_ids[i], NEWS2_RULE, from_epoch_seconds(float(at[i]))) for i in low]
    return requests, clears


@dataclass(frozen=True, slots=True)
class News2Rule(WithEachBatch):
    """NEWS2 for every patient with a new NEWS2 parameter, measured or entered by a nurse."""

    freshness: FreshnessWindows = field(default_factory=FreshnessWindows)
    family: RuleFamily = RuleFamily.NEWS2

    def request(self, scope: Scope) -> News2Request | None:
        patients = scope.patients_of(NEWS2_VITALS) | scope.entered
        return News2Request(tuple(sorted(patients))) if patients else None

    def evaluate(self, inputs: News2Inputs, now: datetime) -> RuleOutput:
        latest = inputs.latest
        result = fresh_score(latest, now=now, windows=self.freshness)
        # The newest contributing measurement is when the score was observed.
        times = np.vstack([getattr(latest, name).measured_at for name in _INPUTS])
        newest = np.where(np.isnan(times), -np.inf, times).max(axis=0)
        observed = np.where(np.isfinite(newest), newest, np.nan)
        return news2_requests(result, inputs.patients, now=now, observed_at=observed)
