"""The alert engine as ingest runs it: every rule, fed from the stream and from a timer.

Two entry points, both inside a database transaction the caller owns:

* `after_readings` runs in the same transaction as each batch's observations: every rule of the
  registry (`alerts.registry.RULES`) triggered by a batch, for the patients and vitals it touched
  (thresholds with persistence and hysteresis, NEWS2, the heart-failure weight rules). It also queues
  the batch's trustworthy readings of the trend vitals for the trend windows, which take them once the
  transaction has committed (`committed`).
* `tick`, every `tick_every` (15 s by default), for everything that happens without a reading: pending
  alerts whose hold time has passed and snoozes that ran out (`alerts.store`), manual observations
  entered on the dashboard and questionnaires the patient answered (the batch rules again, for what
  a nurse typed or the patient reported), and every rule triggered by the timer (trends, the technical
  alarms), each at its own cadence.

This module only orchestrates: for each rule it asks for the rule's inputs (`ingest.rule_inputs`, the
one module that reads the database for rules), calls the rule's pure `evaluate`, and hands the requests
and clears to `alerts.store.apply`.

Where the state lives, so a restart neither forgets nor repeats:
* Alerts and their lifecycle (pending timers, snoozes, latches, hysteresis, which is "is there a live
  alert at this priority") are rows in `alerts`.
* Persistence runs, NEWS2 inputs and weight histories are read from `observations` when needed.
* Trend windows are the one in-memory structure (`alerts.running.SlotWindows`, running sums over time
  slots: a tick costs what arrived, see `benchmarks.alerts`). They are rebuilt from `observations` the first
  time the engine runs, with one aggregate row per patient and slot.

One engine per database: its trend windows see only the readings its own ingest stores. Run one
ingest process per deployment (docs/operations.md).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from alerts import store
from alerts.inputs import TrendSlopeRequest, TrendSlopes
from alerts.model import AlertClear, AlertRequest, RuleOutput
from alerts.registry import RULES
from alerts.rule import Rule, Scope, Trigger
from alerts.running import SlotWindows
from alerts.store import AlertChange
from alerts.thresholds import DOUBTFUL_QUALITY
from alerts.trends import Slope, SlopeRule, SlopeTrendRule
from core.vitals import Vital
from ingest.rule_inputs import RuleInputs

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)


@dataclass
class _Trend:
    rule: SlopeRule
    windows: SlotWindows


@dataclass
class EngineStats:
    """Counts for ingest's counters log line (`engine_*`)."""

    trend_rebuilds: int = 0
    manual_evaluated: int = 0
    answers_evaluated: int = 0  # questionnaire responses judged (care.questionnaires stores them)
    late_trend_samples: int = 0  # older than their trend window on arrival (they are in the database)


@dataclass(frozen=True, slots=True)
class _TrendSamples:
    patients: list[uuid.UUID]
    values: np.ndarray
    times: np.ndarray


class AlertEngine:
    """Owned by ingest's writer thread (not thread-safe). Never reads the clock: every call takes `now`."""

    def __init__(
        self,
        *,
        tick_every: timedelta = timedelta(seconds=15),
        rules: Sequence[Rule[Any]] = RULES,
        slots: int = 256,
    ) -> None:
        self.tick_every = tick_every
        self.rules = tuple(rules)
        # The slope rules' windows are the engine's one in-memory state (see the module docstring).
        self.trend_rules = tuple(r.rule for r in self.rules if isinstance(r, SlopeTrendRule))
        self.slots = slots
        self.stats = EngineStats()
        self._rows: dict[uuid.UUID, int] = {}
        self._row_ids: list[uuid.UUID] = []
        self._trends: dict[Vital, _Trend] | None = None
        self._pending_trend: list[tuple[Vital, _TrendSamples]] = []
        self._last_tick: datetime | None = None
        self._last_run: dict[int, datetime] = {}  # rules with a cadence of their own: index -> last run

    # --- the stream -------------------------------------------------------------------------------

    def after_readings(
        self,
        conn: psycopg.Connection,
        inserted: list[tuple[Any, ...]],
        ward_of: dict[uuid.UUID, str],
        *,
        now: datetime,
    ) -> list[AlertChange]:
        """Rules for the readings just inserted: rows of (time, patient_id, vital, value, quality)."""
        touched: dict[Vital, set[uuid.UUID]] = {}
        trend_rows: dict[Vital, list[tuple[uuid.UUID, float, float]]] = {}
        trend_vitals = {r.vital for r in self.trend_rules}
        for at, patient_id, vital_name, value, quality in inserted:
            vital = Vital(vital_name)
            touched.setdefault(vital, set()).add(patient_id)
            if vital in trend_vitals and not (quality and not DOUBTFUL_QUALITY.isdisjoint(quality)):
                trend_rows.setdefault(vital, []).append((patient_id, value, at.timestamp()))
        for vital, rows in trend_rows.items():
            ids = [r[0] for r in rows]
            self._pending_trend.append(
                (vital, _TrendSamples(ids, np.array([r[1] for r in rows]), np.array([r[2] for r in rows])))
            )
        scope = Scope(touched={v: frozenset(who) for v, who in touched.items()})
        requests, clears = self._run(RuleInputs(conn, now=now), Trigger.BATCH, scope, now=now)
        return self._apply(conn, requests, clears, ward_of, now=now)

    def committed(self) -> None:
        """The batch's transaction committed: its trustworthy trend readings join the windows."""
        pending, self._pending_trend = self._pending_trend, []
        if self._trends is None:
            return  # the windows are built from the database, committed rows included, on first use
        for vital, samples in pending:
            trend = self._trends[vital]
            rows = self._row_indices(samples.patients)
            if rows is None:
                self._trends = None  # a patient beyond capacity: rebuild at the next tick
                return
            before = trend.windows.dropped
            trend.windows.push(rows, samples.values, samples.times, now=float(samples.times.max()))
            self.stats.late_trend_samples += trend.windows.dropped - before

    def rolled_back(self) -> None:
        self._pending_trend.clear()

    # --- the timer ------------------------------------------------------------------------------

    def due(self, now: datetime) -> bool:
        return self._last_tick is None or now - self._last_tick >= self.tick_every

    def tick(self, conn: psycopg.Connection, *, now: datetime) -> list[AlertChange]:
        """Everything time-driven. Runs in the caller's transaction."""
        self._last_tick = now
        changes = store.promote_due(conn, now=now) + store.expire_snoozes(conn, now=now)
        reads = RuleInputs(conn, now=now)
        ward_of = reads.wards_in_care()
        requests, clears = self._entered_since(reads, now=now)
        if self._trends is None:
            self._rebuild_trends(reads, now=now, patients=list(ward_of))
        more = self._run(reads, Trigger.TICK, Scope(in_care=tuple(ward_of)), now=now)
        requests += more[0]
        clears += more[1]
        requests = [r for r in requests if r.patient_id in ward_of]  # discharged meanwhile
        return changes + self._apply(conn, requests, clears, ward_of, now=now)

    # --- running the rules --------------------------------------------------------------------------

    def _run(self, reads: RuleInputs, trigger: Trigger, scope: Scope, *, now: datetime) -> RuleOutput:
        """Every rule of `trigger` that is due: its inputs loaded, then its pure `evaluate`."""
        requests: list[AlertRequest] = []
        clears: list[AlertClear] = []
        for index, rule in enumerate(self.rules):
            if rule.trigger is not trigger or not self._rule_due(index, rule, now):
                continue
            request = rule.request(scope)
            if request is None:
                continue
            if isinstance(request, TrendSlopeRequest):
                inputs: Any = self._trend_slopes(request, now=now)
            else:
                inputs = reads.load(request)
            got, gone = rule.evaluate(inputs, now)
            if rule.clears_where_live:
                live = reads.live_keys(rule.family)
                gone = [c for c in gone if (c.patient_id, c.rule) in live]
            requests += got
            clears += gone
        return requests, clears

    def _rule_due(self, index: int, rule: Rule[Any], now: datetime) -> bool:
        if rule.every is None:
            return True
        last = self._last_run.get(index)
        if last is not None and now - last < rule.every:
            return False
        self._last_run[index] = now
        return True

    def _entered_since(self, reads: RuleInputs, *, now: datetime) -> RuleOutput:
        """Observations entered and questionnaires answered since the last tick, through the batch
        rules: NEWS2 for every patient with an entry, respiration-rate thresholds for those with a
        respiration rate, the symptoms and weight rules for those who answered."""
        rows = reads.claim_manual_observations()
        answers = reads.claim_questionnaire_responses()
        if not rows and not answers:
            return [], []
        self.stats.manual_evaluated += len(rows)
        self.stats.answers_evaluated += len(answers)
        counted = frozenset(p for p, has_rate in rows if has_rate)
        answered: dict[str, set[uuid.UUID]] = {}
        for patient_id, questionnaire in answers:
            answered.setdefault(questionnaire, set()).add(patient_id)
        scope = Scope(
            touched={Vital.RESPIRATORY_RATE: counted} if counted else {},
            entered=frozenset(p for p, _ in rows),
            answered={q: frozenset(who) for q, who in answered.items()},
        )
        return self._run(reads, Trigger.BATCH, scope, now=now)

    def _apply(
        self,
        conn: psycopg.Connection,
        requests: list[AlertRequest],
        clears: list[AlertClear],
        ward_of: dict[uuid.UUID, str],
        *,
        now: datetime,
    ) -> list[AlertChange]:
        if not requests and not clears:
            return []
        return store.apply(conn, requests, clears, ward_of, now=now)

    # --- trend windows --------------------------------------------------------------------------

    def _trend_slopes(self, request: TrendSlopeRequest, *, now: datetime) -> TrendSlopes:
        """A slope rule's inputs, from the windows in memory (a tick costs what arrived)."""
        assert self._trends is not None
        windows = self._trends[request.vital].windows
        windows.advance(now.timestamp())
        slope = windows.slope(request.min_samples)
        n = len(self._row_ids)
        cut = Slope(slope.per_hour[:n], slope.change[:n], slope.n[:n], slope.span_h[:n])
        return TrendSlopes(tuple(self._row_ids), cut, windows.last_t[:n])

    def _row_indices(self, patients: list[uuid.UUID]) -> np.ndarray | None:
        assert self._trends is not None
        capacity = next(iter(self._trends.values())).windows.patients if self._trends else 0
        out = np.empty(len(patients), np.int64)
        for i, pid in enumerate(patients):
            row = self._rows.get(pid)
            if row is None:
                if len(self._row_ids) >= capacity:
                    return None
                row = self._rows[pid] = len(self._row_ids)
                self._row_ids.append(pid)
            out[i] = row
        return out

    def _rebuild_trends(self, reads: RuleInputs, *, now: datetime, patients: list[uuid.UUID]) -> None:
        """Trend windows from the database: one point per patient and slot (its mean value at its mean
        time, exactly what the window commits for a closed slot); the open slot's readings one by one."""
        self.stats.trend_rebuilds += 1
        self._rows = {pid: i for i, pid in enumerate(patients)}
        self._row_ids = list(patients)
        capacity = max(1024, 2 * len(patients))
        built: dict[Vital, _Trend] = {}
        for rule in self.trend_rules:
            windows = SlotWindows(capacity, rule.window, start=now.timestamp(), slots=self.slots)
            built[rule.vital] = _Trend(rule, windows)
            if not patients:
                continue
            table = reads.trend_points(
                rule.vital, patients, width=windows.width, open_start=windows.open_start, window=rule.window
            )
            if len(table):
                windows.push(table[:, 0].astype(np.int64), table[:, 1], table[:, 2], now=now.timestamp())
        self._trends = built
        log.info("trend windows rebuilt for %d patients", len(patients))
