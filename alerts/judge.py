"""Threshold rules over each patient's recent readings: limits, persistence and hysteresis together.

`alerts.thresholds` judges one batch on its own; at home that is not enough. A pulse oximeter that
slips gives a few seconds of nonsense, and a value wobbling around a limit would open and close an
alert with every reading. So the engine loads, for every patient who just sent a reading of a vital,
that vital's last readings (`WINDOW_READINGS`, oldest first) and judges each rule key with all its
severities at once:

* limits: the ward default of every severity, replaced per patient by a physician's personal limit
  or by the SpO2 scale-2 defaults for a patient ordered on NEWS2 scale 2;
* persistence (`alerts.persistence`): the run of trustworthy breaching readings at the end of the
  window must be long enough (continuous oximetry: 3 readings or 2 minutes; spot checks: one);
* hysteresis: a severity that is active (the live alert is at that priority or worse) stays active
  until a trustworthy reading is back inside its limit by the vital's margin.

The key's level is its worst active severity. A request goes to the lifecycle for every row with a
level, a clear for every row with a live alert and no active severity. Rows with no trustworthy
reading in the window say nothing. Every array is [rows] or [rows, readings]; vectorized over rows.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from alerts import persistence as ps
from alerts.facts import LimitKind, ThresholdBreach
from alerts.inputs import ThresholdInputs, ThresholdRequest
from alerts.messages_sv import render
from alerts.model import AlertClear, AlertRequest, Priority, RuleOutput, from_epoch_seconds
from alerts.rule import RuleFamily, Scope, WithEachBatch
from alerts.thresholds import WARD_DEFAULT_RULES, PersonalLimits, ThresholdRule
from core.vitals import Vital

# Characteristics that stream (PLX Continuous Measurement, Heart Rate Measurement): their readings need
# persistence. Everything else is a spot check a person takes on purpose: one trustworthy reading counts.
CONTINUOUS_CHARACTERISTICS = frozenset({"2A5F", "2A37"})

# Enough for the longest persistence rule (3 readings) with room for doubtful readings between them.
WINDOW_READINGS = 16

# NEWS2 scale 2 (RCP 2017 chart 1, for hypercapnic patients ordered on it): SpO2 ≤83 % scores 3 and
# 84-85 % scores 2, so the ward's SpO2 limits for such a patient are these instead of scale 1's.
SCALE_2_SPO2_LIMITS = {Priority.HIGH: 84.0, Priority.MEDIUM: 86.0}


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """Per severity (most severe first) and row: the limit in force and whether it is the patient's own."""

    rules: tuple[ThresholdRule, ...]
    limit: np.ndarray  # float [severities, rows]
    own: np.ndarray  # bool [severities, rows]
    scale_2: np.ndarray  # bool [severities, rows]: the scale-2 default replaced the ward's

    @classmethod
    def for_rows(
        cls,
        rules: Sequence[ThresholdRule],
        patient_ids: Sequence[uuid.UUID],
        *,
        personal: PersonalLimits,
        spo2_scale_2: Set[uuid.UUID],
    ) -> KeyLimits:
        ordered = tuple(sorted(rules, key=lambda r: r.priority, reverse=True))
        rows = len(patient_ids)
        limit = np.array([np.full(rows, r.limit) for r in ordered], dtype=float).reshape(len(ordered), rows)
        own = np.zeros(limit.shape, bool)
        scale_2 = np.zeros(limit.shape, bool)
        for s, rule in enumerate(ordered):
            for i, pid in enumerate(patient_ids):
                mine = personal.get((pid, rule.rule, rule.priority))
                if mine is not None:
                    limit[s, i], own[s, i] = mine, True
                elif (
                    rule.vital is Vital.SPO2 and pid in spo2_scale_2 and rule.priority in SCALE_2_SPO2_LIMITS
                ):
                    limit[s, i], scale_2[s, i] = SCALE_2_SPO2_LIMITS[rule.priority], True
        return cls(ordered, limit, own, scale_2)


@dataclass(frozen=True, slots=True)
class Judgement:
    level: np.ndarray  # int8 Priority value of the worst active severity, 0 = none
    severity: np.ndarray  # int index into KeyLimits.rules of that severity (-1 = none)
    value: np.ndarray  # the newest trustworthy reading (NaN = none in the window)
    at: np.ndarray  # its time, epoch s


def judge(
    limits: KeyLimits,
    values: np.ndarray,
    times: np.ndarray,
    doubtful: np.ndarray,
    *,
    live_priority: np.ndarray,
    now: datetime,
    continuous: np.ndarray | None = None,
    margin: float | None = None,
) -> Judgement:
    """Levels per row for one rule key. `values`/`times`/`doubtful` are [rows, readings], oldest first,
    NaN-padded; `live_priority` is the live alert's Priority value per row (0 = none). `continuous` says
    per row whether the readings come from a continuous stream (persistence `ps.CONTINUOUS`) or are
    deliberate spot checks (`ps.SPOT_CHECK`); None: the vital's default (`ps.DEFAULT_PERSISTENCE`)."""
    vital = limits.rules[0].vital
    sign = ps.sign_of(limits.rules[0].direction)
    if continuous is None:
        policy = ps.DEFAULT_PERSISTENCE[vital]
        readings: np.ndarray | int = policy.readings
        duration_s: np.ndarray | float = policy.duration_s
    else:
        readings = np.where(continuous, ps.CONTINUOUS.readings, ps.SPOT_CHECK.readings)
        duration_s = np.where(continuous, ps.CONTINUOUS.duration_s, ps.SPOT_CHECK.duration_s)
    margin = ps.DEFAULT_MARGIN.get(vital, 0.0) if margin is None else margin
    rows = values.shape[0]
    trusted = ~np.isnan(values) & ~doubtful & (times <= now.timestamp())
    has = trusted.any(axis=1)
    last_col = values.shape[1] - 1 - np.argmax(trusted[:, ::-1], axis=1)
    newest = np.where(has, values[np.arange(rows), last_col], np.nan)
    newest_at = np.where(has, times[np.arange(rows), last_col], np.nan)
    level = np.zeros(rows, np.int8)
    severity = np.full(rows, -1)
    for s, rule in enumerate(limits.rules):
        runs = ps.trailing_runs(values, times, doubtful, limit=limits.limit[s], sign=sign, now=now)
        persistent = runs.persistent(readings, duration_s)
        was = live_priority >= int(rule.priority)
        active = ps.alarm_state(
            was, persistent, newest, np.zeros(rows, bool), limit=limits.limit[s], sign=sign, margin=margin
        )
        take = active & (level == 0) & has
        level[take] = int(rule.priority)
        severity[take] = s
    return Judgement(level, severity, newest, newest_at)


def judgement_output(
    limits: KeyLimits, judgement: Judgement, patient_ids: Sequence[uuid.UUID], *, live_priority: np.ndarray
) -> RuleOutput:
    """Requests at each row's level; clears where a live alert exists and no severity is active."""
    first = limits.rules[0]
    requests = []
    sign = ps.sign_of(first.direction)
    chosen = np.take_along_axis(limits.limit, np.maximum(judgement.severity, 0)[None, :], axis=0)[0]
    beyond = (judgement.value - chosen) * sign > 0
    for i in np.flatnonzero(judgement.level > 0).tolist():
        s = int(judgement.severity[i])
        rule, limit = limits.rules[s], float(limits.limit[s, i])
        own, scale_2 = bool(limits.own[s, i]), bool(limits.scale_2[s, i])
        kind = LimitKind.PERSONAL if own else LimitKind.SCALE_2 if scale_2 else LimitKind.WARD
        facts = ThresholdBreach(
            first.rule, rule.priority, first.vital, first.direction, limit, kind, float(judgement.value[i]),
            beyond=bool(beyond[i]),
        )  # fmt: skip
        requests.append(
            AlertRequest(
                patient_id=patient_ids[i],
                rule=first.rule,
                vital=first.vital.value,
                priority=Priority(int(judgement.level[i])),
                message=render(facts),
                value=float(judgement.value[i]),
                threshold=limit,
                observed_at=from_epoch_seconds(float(judgement.at[i])),
            )
        )
    cleared = (judgement.level == 0) & (live_priority > 0) & ~np.isnan(judgement.value)
    clears = [
        AlertClear(patient_ids[i], first.rule, from_epoch_seconds(float(judgement.at[i])))
        for i in np.flatnonzero(cleared).tolist()
    ]
    return requests, clears


# --- the rule -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThresholdsRule(WithEachBatch):
    """Every threshold key of the vitals a batch touched (manual respiration rates included)."""

    rules: tuple[ThresholdRule, ...] = WARD_DEFAULT_RULES
    family: RuleFamily = RuleFamily.THRESHOLD
    # clears_where_live is False: a clear is sent only where a live alert says so (`judgement_output`)

    def keys_of(self, vital: Vital) -> dict[str, list[ThresholdRule]]:
        keys: dict[str, list[ThresholdRule]] = {}
        for rule in self.rules:
            if rule.vital is vital:
                keys.setdefault(rule.rule, []).append(rule)
        return keys

    def request(self, scope: Scope) -> ThresholdRequest | None:
        judged = tuple(
            (vital, tuple(sorted(who)), tuple(keys))
            for vital, who in scope.touched.items()
            if who and (keys := self.keys_of(vital))
        )
        return ThresholdRequest(judged) if judged else None

    def evaluate(self, inputs: ThresholdInputs, now: datetime) -> RuleOutput:
        requests: list[AlertRequest] = []
        clears: list[AlertClear] = []
        for window in inputs.windows:
            ids = window.patients
            for key, rules in self.keys_of(window.vital).items():
                limits = KeyLimits.for_rows(
                    rules, ids, personal=inputs.personal, spo2_scale_2=inputs.spo2_scale_2
                )
                live_priority = np.array([window.live.get((pid, key), 0) for pid in ids], dtype=np.int8)
                verdict = judge(
                    limits, window.values, window.times, window.doubtful, live_priority=live_priority,
                    now=now, continuous=window.continuous,
                )  # fmt: skip
                more = judgement_output(limits, verdict, ids, live_priority=live_priority)
                requests += more[0]
                clears += more[1]
        return requests, clears


# --- scalar twin, used only in tests ----------------------------------------------------------


def judge_one(
    limits: Sequence[float],
    priorities: Sequence[Priority],
    direction: str,
    readings: Sequence[tuple[float, float, bool]],
    *,
    live_priority: int,
    now_s: float,
    continuous: bool,
    margin: float,
) -> int:
    """One patient's level for one key, reading by reading with the persistence and hysteresis twins.

    `limits`/`priorities` are most severe first; `readings` are (value, epoch s, doubtful), oldest first.
    """
    sign = ps.sign_of(direction)
    policy = ps.CONTINUOUS if continuous else ps.SPOT_CHECK
    known = [(v, t, d) for v, t, d in readings if not math.isnan(v) and t <= now_s]
    trusted = [(v, t) for v, t, d in known if not d]
    if not trusted:
        return 0
    newest = trusted[-1][0]
    for limit, priority in zip(limits, priorities, strict=True):
        run = ps.RunOne()
        for value, at, doubtful in known:
            run = ps.advance_run_one(run, value, doubtful, at, limit, sign)
        persistent = ps.persistent_one(run, policy.readings, policy.duration_s)
        was = live_priority >= int(priority)
        if ps.alarm_state_one(was, persistent, newest, False, limit, sign, margin):
            return int(priority)
    return 0
