"""Replay stored readings through the engine's own kernels: what a limit would have done (issue 11).

A physician proposing a personal limit or a NEWS2 SpO2 scale wants to know what it would have done to
the alerts of the last days ("2 larm i stället för 14; tisdagens desaturation hade fortfarande
larmat"). Counting threshold crossings would answer a different question: the engine raises an alert
only after persistence (3 readings or 2 minutes of a stream), keeps it through hysteresis, escalates
it when a worse severity arrives, and a new alert opens only once the old one has resolved. So this
module runs the very same code on the stored readings, batch by batch as ingest judged them:

* `alerts.judge.judge` and `judgement_output` for a threshold key (the window of the last
  `WINDOW_READINGS` readings that had been stored by then, with its persistence and hysteresis), with
  `KeyLimits.for_rows` choosing the limits (personal, scale 2, ward);
* `alerts.news2.fresh_score` and `news2_requests` for NEWS2 (the newest trustworthy value of each
  parameter, its freshness window, the scale);
* `alerts.lifecycle.transition` for what becomes of each request and clear (pending holds, re-fire
  on a worse priority, resolution).

Rows of `judge` are batches here, not patients: one patient's batch after batch, each row with its own
window, so one vectorized call judges days of readings. The one thing that depends on the past, the
priority of the live alert (hysteresis), is handled by judging every row once per possible live
priority (none, and each severity of the key) and picking, while walking the batches in order through
the lifecycle, the answer for the priority that was live then. Exactly what the engine computed, since
`judge` reads nothing else of the past.

What replay assumes, and says: staff acknowledge each alert when it opens (so a high alert does not
stay latched until someone happens to look: the count depends on the limits, not on how quickly a
nurse responded), and no alert is live when the replayed period starts. Pure: arrays in, alerts out;
no clock, no I/O (care.limit_replay reads the rows).
"""

from __future__ import annotations

import bisect
import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from alerts.judge import WINDOW_READINGS, KeyLimits, judge, judgement_output
from alerts.lifecycle import (
    Acknowledged,
    Alert,
    AlertState,
    Cleared,
    HoldElapsed,
    Requested,
    Staff,
    transition,
)
from alerts.model import AlertClear, AlertRequest, Priority, RuleOutput, from_epoch_seconds
from alerts.news2 import FreshnessWindows, News2Latest, Timed, fresh_score, news2_requests
from alerts.thresholds import WARD_DEFAULT_RULES, ThresholdRule
from core.contract import MAX_CLOCK_SKEW

# Who "acknowledges" in a replay: nobody real (never written anywhere).
REPLAY_STAFF = Staff(0, "replay")
_WARD = "replay"
_SKEW_S = MAX_CLOCK_SKEW.total_seconds()


@dataclass(frozen=True, slots=True)
class Readings:
    """One vital's stored readings of one patient, each with the time ingest stored it (its batch)."""

    values: np.ndarray  # float
    times: np.ndarray  # epoch s, when measured
    doubtful: np.ndarray  # bool: a doubtful quality flag
    continuous: np.ndarray  # bool: from a streaming characteristic (persistence policy)
    stored: np.ndarray  # epoch s: the batch it came in, which the engine judged at that time

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True, slots=True)
class Limits:
    """What is proposed (or in force): personal limits by (rule key, priority), and the SpO2 scale."""

    personal: Mapping[tuple[str, Priority], float] = field(default_factory=dict)
    spo2_scale_2: bool = False


@dataclass(frozen=True, slots=True)
class ReplayedAlert:
    """One alert the engine would have raised: when it opened, how bad it got, when it ended."""

    rule: str
    opened_at: datetime
    priority: Priority  # the worst it reached
    value: float | None  # the reading it opened with
    message: str
    resolved_at: datetime | None  # None: still live at the end of the period

    def overlaps(self, other: ReplayedAlert, until: datetime) -> bool:
        end, other_end = self.resolved_at or until, other.resolved_at or until
        return self.opened_at <= other_end and other.opened_at <= end


# --- thresholds --------------------------------------------------------------------------------------


def threshold_rules(key: str) -> tuple[ThresholdRule, ...]:
    rules = tuple(r for r in WARD_DEFAULT_RULES if r.rule == key)
    if not rules:
        raise ValueError(f"no threshold rule key {key!r}")
    return rules


def batch_windows(readings: Readings) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per batch (distinct `stored`, in order): its time and the window the engine loaded then.

    The window is the last WINDOW_READINGS readings by measurement time among those stored by then, up to
    the batch's time plus the clock skew ingest accepts (ingest.rule_inputs' query); readings after the
    batch's time are NaN here, as `judge` would not count them. Returns (batch times, values, times,
    doubtful, continuous) with rows = batches.
    """
    order = np.lexsort((readings.times, readings.stored))
    batches = np.unique(readings.stored)
    k, rows = WINDOW_READINGS, len(batches)
    values, times = np.full((rows, k), np.nan), np.full((rows, k), np.nan)
    doubtful, continuous = np.zeros((rows, k), bool), np.zeros(rows, bool)
    known_t: list[float] = []  # times of the readings stored so far, sorted
    known_i: list[int] = []  # their indices, in the same order
    pos = 0
    for row, at in enumerate(batches.tolist()):
        while pos < len(order) and readings.stored[order[pos]] <= at:
            i = int(order[pos])
            place = bisect.bisect_right(known_t, float(readings.times[i]))
            known_t.insert(place, float(readings.times[i]))
            known_i.insert(place, i)
            pos += 1
        cut = bisect.bisect_right(known_t, at + _SKEW_S)
        window = known_i[max(0, cut - k) : cut]
        if not window:
            continue
        idx = np.asarray(window)
        values[row, k - len(idx) :] = readings.values[idx]
        times[row, k - len(idx) :] = readings.times[idx]
        doubtful[row, k - len(idx) :] = readings.doubtful[idx]
        continuous[row] = bool(readings.continuous[idx[-1]])
    late = times > batches[:, None]  # measured after the batch's time: the engine's `now` excludes it
    values[late] = np.nan
    return batches, values, times, doubtful, continuous


def _row_ids(rows: int) -> list[uuid.UUID]:
    """`judge` keys its rows by patient; here a row is a batch, named by its number."""
    return [uuid.UUID(int=row) for row in range(rows)]


def replay_threshold(key: str, readings: Readings, limits: Limits, *, since: datetime) -> list[ReplayedAlert]:
    """The alerts of threshold key `key` the engine would have raised from `since` on, with `limits`."""
    rules = threshold_rules(key)
    batches, values, times, doubtful, continuous = batch_windows(readings)
    keep = batches >= since.timestamp()
    batches, values, times, doubtful, continuous = (
        a[keep] for a in (batches, values, times, doubtful, continuous)
    )
    rows = len(batches)
    if rows == 0:
        return []
    ids = _row_ids(rows)
    one = uuid.UUID(int=0)
    personal = {(one, rule, priority): value for (rule, priority), value in limits.personal.items()}
    single = KeyLimits.for_rows(
        rules, [one], personal=personal, spo2_scale_2={one} if limits.spo2_scale_2 else set()
    )
    every = KeyLimits(
        single.rules, np.repeat(single.limit, rows, axis=1), np.repeat(single.own, rows, axis=1),
        np.repeat(single.scale_2, rows, axis=1),
    )  # fmt: skip
    now = from_epoch_seconds(float(batches[-1]))
    outputs: dict[int, RuleOutput] = {}
    for live in (0, *sorted({int(r.priority) for r in rules})):
        live_priority = np.full(rows, live, np.int8)
        verdict = judge(
            every, values, times, doubtful, live_priority=live_priority, now=now, continuous=continuous
        )
        outputs[live] = judgement_output(every, verdict, ids, live_priority=live_priority)
    return _walk(batches, outputs, live_dependent=True)


# --- NEWS2 -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class News2Series:
    """Every NEWS2 input of one patient over the period, each in measurement order (epoch s)."""

    resp_rate: tuple[np.ndarray, np.ndarray]  # (values, times) of trustworthy readings
    spo2: tuple[np.ndarray, np.ndarray]
    systolic_bp: tuple[np.ndarray, np.ndarray]
    pulse: tuple[np.ndarray, np.ndarray]  # pulse rate and heart rate together
    temperature: tuple[np.ndarray, np.ndarray]
    consciousness: tuple[np.ndarray, np.ndarray]  # letters (object array), times
    on_oxygen: tuple[np.ndarray, np.ndarray]  # 1.0 / 0.0, times
    batches: np.ndarray  # epoch s of every batch that touched a NEWS2 parameter (the rule ran then)


_NEWS2_INPUTS = ("resp_rate", "spo2", "systolic_bp", "pulse", "temperature", "consciousness", "on_oxygen")


def _latest(series: tuple[np.ndarray, np.ndarray], at: np.ndarray, missing: Any) -> Timed:
    """The newest value measured by each time in `at` (within the accepted clock skew)."""
    values, times = series
    index = np.searchsorted(times, at + _SKEW_S, side="right") - 1
    has = index >= 0
    safe = np.maximum(index, 0)
    picked = np.where(has, values[safe], missing) if len(values) else np.full(len(at), missing, dtype=object)
    return Timed(
        np.asarray(picked), np.where(has, times[safe], np.nan) if len(times) else np.full(len(at), np.nan)
    )


def replay_news2(
    series: News2Series, limits: Limits, *, since: datetime, freshness: FreshnessWindows | None = None
) -> list[ReplayedAlert]:
    """The NEWS2 alerts the engine would have raised from `since` on, scoring SpO2 on the given scale.

    `fresh_score` takes one `now`; every batch has its own. Times are shifted per row by the batch's
    distance to the last one, so "now - measured" is each batch's own age of each value.
    """
    batches = np.unique(series.batches[series.batches >= since.timestamp()])
    rows = len(batches)
    if rows == 0:
        return []
    ref = float(batches[-1])
    shift = ref - batches

    def timed(name: str, missing: Any = np.nan) -> Timed:
        t = _latest(getattr(series, name), batches, missing)
        return Timed(t.value, t.measured_at + shift)

    latest = News2Latest(
        resp_rate=timed("resp_rate"), spo2=timed("spo2"), systolic_bp=timed("systolic_bp"),
        pulse=timed("pulse"), temperature=timed("temperature"), consciousness=timed("consciousness", ""),
        on_oxygen=timed("on_oxygen"), spo2_scale=np.full(rows, 2 if limits.spo2_scale_2 else 1),
    )  # fmt: skip
    now = from_epoch_seconds(ref)
    result = fresh_score(latest, now=now, windows=freshness or FreshnessWindows())
    # The newest contributing measurement is when the score was observed (alerts.news2.News2Rule).
    stamps = np.vstack([getattr(latest, name).measured_at for name in _NEWS2_INPUTS]) - shift
    newest = np.where(np.isnan(stamps), -np.inf, stamps).max(axis=0)
    observed = np.where(np.isfinite(newest), newest, np.nan)
    output = news2_requests(result, _row_ids(rows), now=now, observed_at=observed)
    return _walk(batches, {0: output}, live_dependent=False)


# --- the lifecycle, batch by batch --------------------------------------------------------------------


def _walk(
    batches: np.ndarray, outputs: Mapping[int, RuleOutput], *, live_dependent: bool
) -> list[ReplayedAlert]:
    """Feed each batch's request or clear (the one for the priority live then) through the lifecycle."""
    by_row: dict[int, tuple[dict[int, AlertRequest], dict[int, AlertClear]]] = {
        live: ({r.patient_id.int: r for r in requests}, {c.patient_id.int: c for c in clears})
        for live, (requests, clears) in outputs.items()
    }
    alert: Alert | None = None
    found: list[ReplayedAlert] = []
    for row, at in enumerate(batches.tolist()):
        now = from_epoch_seconds(at)
        pending = alert is not None and alert.state is AlertState.PENDING and alert.pending_until is not None
        if pending and alert.pending_until <= now:  # type: ignore[union-attr, operator]
            # The engine's tick came first: a hold that ran out opens the alert.
            alert = _step(alert, transition(alert, HoldElapsed(), now).alert, found, now)
        live = int(alert.priority) if alert is not None and alert.live and live_dependent else 0
        requests, clears = by_row[live]
        if (request := requests.get(row)) is not None:
            alert = _step(alert, transition(alert, Requested(request, _WARD), now).alert, found, now)
        elif (clear := clears.get(row)) is not None:
            alert = _step(alert, transition(alert, Cleared(clear), now).alert, found, now)
        if alert is not None and alert.state is AlertState.OPEN:
            alert = transition(alert, Acknowledged(REPLAY_STAFF), now).alert
    return found


def _step(
    before: Alert | None, after: Alert | None, found: list[ReplayedAlert], now: datetime
) -> Alert | None:
    """Record what a transition did to the episode list: a new alert, a worse one, an ending."""
    if after is None:
        return before
    was_live = before is not None and before.live and before.state is not AlertState.PENDING
    opened = after.state in (AlertState.OPEN, AlertState.ACKNOWLEDGED)
    if opened and not was_live:
        found.append(ReplayedAlert(after.rule, now, after.priority, after.value, after.message, None))
    elif opened and found and after.priority > found[-1].priority:
        found[-1] = _replace(found[-1], priority=after.priority, message=after.message)
    elif not after.live and was_live and found and found[-1].resolved_at is None:
        found[-1] = _replace(found[-1], resolved_at=now)
    return after


def _replace(alert: ReplayedAlert, **changes: object) -> ReplayedAlert:
    return dataclasses.replace(alert, **changes)  # type: ignore[arg-type]


__all__ = [
    "REPLAY_STAFF",
    "Limits",
    "News2Series",
    "Readings",
    "ReplayedAlert",
    "batch_windows",
    "replay_news2",
    "replay_threshold",
    "threshold_rules",
]
