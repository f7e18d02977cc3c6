"""The alert engine as ingest runs it: every rule, fed from the stream and from a timer.

Two entry points, both inside a database transaction the caller owns:

* `after_readings` runs in the same transaction as each batch's observations, for the patients and
  vitals the batch touched: threshold rules with persistence and hysteresis (`alerts.judge`), NEWS2
  (`alerts.news2`), the heart-failure weight rules (`ingest.history_rules`). It also queues the
  batch's trustworthy SpO2 and systolic readings for the trend windows, which take them once the
  transaction has committed (`committed`).
* `tick`, every `tick_every` (15 s by default), for everything that happens without a reading: pending
  alerts whose hold time has passed, snoozes that ran out, manual observations entered on the
  dashboard (NEWS2 and respiration-rate thresholds), trends, and the technical alarms (a planned
  vital not measured, a device silent, a gateway offline, readings without a receipt, a low
  battery, a device clock not set).

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
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from alerts import judge, news2, store, thresholds, trends
from alerts.model import AlertClear, AlertRequest, Priority, RuleOutput
from alerts.running import SlotWindows
from alerts.store import AlertChange
from alerts.thresholds import DOUBTFUL_QUALITY, WARD_DEFAULT_RULES
from care.observations import NEWS2_LATEST_TRUSTED
from core.contract import MAX_CLOCK_SKEW
from core.vitals import Vital
from ingest import technical_rules
from ingest.history_rules import padded_rows, weight_baseline_rule, weight_gain_rule

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

_DOUBTFUL = sorted(DOUBTFUL_QUALITY)
_RULES_BY_VITAL: dict[Vital, dict[str, list[thresholds.ThresholdRule]]] = {}
for _rule in WARD_DEFAULT_RULES:
    _RULES_BY_VITAL.setdefault(_rule.vital, {}).setdefault(_rule.rule, []).append(_rule)

# NEWS2 parameters measured by devices or entered as observations, in `News2Latest` field order.
_NEWS2_VITALS = (
    Vital.RESPIRATORY_RATE,
    Vital.SPO2,
    Vital.SYSTOLIC_BP,
    Vital.PULSE_RATE,
    Vital.HEART_RATE,
    Vital.BODY_TEMPERATURE,
)
RISE_EVERY = timedelta(minutes=15)  # the resting-pulse rule compares whole days: no need to run it often


@dataclass
class _Trend:
    rule: trends.SlopeRule
    windows: SlotWindows


@dataclass
class EngineStats:
    """Counts for ingest's counters log line (`engine_*`)."""

    trend_rebuilds: int = 0
    manual_evaluated: int = 0
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
        freshness: news2.FreshnessWindows | None = None,
        trend_rules: Sequence[trends.SlopeRule] = trends.SLOPE_RULES,
        slots: int = 256,
    ) -> None:
        self.tick_every = tick_every
        self.freshness = freshness or news2.FreshnessWindows()
        self.trend_rules = tuple(trend_rules)
        self.slots = slots
        self.stats = EngineStats()
        self._rows: dict[uuid.UUID, int] = {}
        self._row_ids: list[uuid.UUID] = []
        self._trends: dict[Vital, _Trend] | None = None
        self._pending_trend: list[tuple[Vital, _TrendSamples]] = []
        self._last_tick: datetime | None = None
        self._last_rise: datetime | None = None

    # --- the stream -------------------------------------------------------------------------------

    def after_readings(
        self, conn: psycopg.Connection, inserted: list[tuple], ward_of: dict[uuid.UUID, str], *, now: datetime
    ) -> list[AlertChange]:
        """Rules for the readings just inserted: rows of (time, patient_id, vital, value, quality)."""
        touched: dict[Vital, set[uuid.UUID]] = {}
        trend_rows: dict[Vital, list[tuple]] = {}
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
        requests, clears = self._physiology(conn, touched, now=now)
        weighed = sorted(touched.get(Vital.BODY_WEIGHT, set()))
        for rule_output in (
            weight_gain_rule(conn, weighed, now=now),
            weight_baseline_rule(conn, weighed, now=now),
        ):
            requests += rule_output[0]
            clears += rule_output[1]
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
        ward_of = self._wards_in_care(conn)
        requests: list[AlertRequest] = []
        clears: list[AlertClear] = []
        for rule_output in (
            self._manual_observations(conn, now=now),
            self._trend_output(conn, now=now, ward_of=ward_of),
            self._resting_pulse(conn, now=now, ward_of=ward_of),
            self._technical(conn, now=now, ward_of=ward_of),
        ):
            requests += rule_output[0]
            clears += rule_output[1]
        requests = [r for r in requests if r.patient_id in ward_of]  # discharged meanwhile
        return changes + self._apply(conn, requests, clears, ward_of, now=now)

    # --- rules ----------------------------------------------------------------------------------

    def _physiology(
        self, conn: psycopg.Connection, touched: dict[Vital, set[uuid.UUID]], *, now: datetime
    ) -> RuleOutput:
        """Threshold keys of every touched vital, and NEWS2 for every patient with a new NEWS2 parameter."""
        requests: list[AlertRequest] = []
        clears: list[AlertClear] = []
        judged = {v: who for v, who in touched.items() if v in _RULES_BY_VITAL}
        scored = sorted({p for v in _NEWS2_VITALS for p in touched.get(v, ())})
        patients = sorted(set(scored).union(*judged.values()))
        if not patients:  # e.g. a batch of weights only: nothing here to judge
            return requests, clears
        personal = _personal_limits(conn, patients, now)
        scale_2 = _scale_2(conn, patients)
        for vital, who in judged.items():
            keys = _RULES_BY_VITAL[vital]
            ids = sorted(who)
            values, times, doubtful, continuous = _windows(conn, ids, vital, now=now)
            live = _live_priorities(conn, ids, list(keys))
            for key, rules in keys.items():
                limits = judge.KeyLimits.for_rows(rules, ids, personal=personal, spo2_scale_2=scale_2)
                live_priority = np.array([live.get((pid, key), 0) for pid in ids], dtype=np.int8)
                verdict = judge.judge(
                    limits,
                    values,
                    times,
                    doubtful,
                    live_priority=live_priority,
                    now=now,
                    continuous=continuous,
                )
                more = judge.judgement_output(limits, verdict, ids, live_priority=live_priority)
                requests += more[0]
                clears += more[1]
        more = self._news2(conn, scored, scale_2, now=now)
        return requests + more[0], clears + more[1]

    def _news2(
        self, conn: psycopg.Connection, patients: list[uuid.UUID], scale_2: set[uuid.UUID], *, now: datetime
    ) -> RuleOutput:
        if not patients:
            return [], []
        latest = _news2_latest(conn, patients, scale_2, now=now)
        result = news2.fresh_score(latest, now=now, windows=self.freshness)
        times = np.vstack(
            [
                getattr(latest, name).measured_at
                for name in (
                    "resp_rate",
                    "spo2",
                    "systolic_bp",
                    "pulse",
                    "temperature",
                    "consciousness",
                    "on_oxygen",
                )
            ]
        )
        newest = np.where(np.isnan(times), -np.inf, times).max(axis=0)
        observed = np.where(np.isfinite(newest), newest, np.nan)
        return news2.news2_requests(result, patients, now=now, observed_at=observed)

    def _manual_observations(self, conn: psycopg.Connection, *, now: datetime) -> RuleOutput:
        """Observations entered since the last tick: NEWS2, and respiration-rate thresholds."""
        rows = conn.execute(
            "UPDATE manual_observations m SET evaluated_at = %s"
            " WHERE id IN (SELECT id FROM manual_observations WHERE evaluated_at IS NULL"
            " ORDER BY id LIMIT 5000 FOR UPDATE SKIP LOCKED)"
            " RETURNING patient_id, respiratory_rate IS NOT NULL",
            (now,),
        ).fetchall()
        if not rows:
            return [], []
        self.stats.manual_evaluated += len(rows)
        touched: dict[Vital, set[uuid.UUID]] = {Vital.RESPIRATORY_RATE: {p for p, rr in rows if rr}}
        patients = sorted({p for p, _ in rows})
        requests, clears = (
            self._physiology(conn, touched, now=now) if touched[Vital.RESPIRATORY_RATE] else ([], [])
        )
        # NEWS2 for every patient with a new entry (the RR ones were scored above already).
        rest = sorted(set(patients) - touched[Vital.RESPIRATORY_RATE])
        more = self._news2(conn, rest, _scale_2(conn, rest), now=now)
        return requests + more[0], clears + more[1]

    def _trend_output(
        self, conn: psycopg.Connection, *, now: datetime, ward_of: dict[uuid.UUID, str]
    ) -> RuleOutput:
        if self._trends is None:
            self._rebuild_trends(conn, now=now, patients=list(ward_of))
        assert self._trends is not None
        requests: list[AlertRequest] = []
        clears: list[AlertClear] = []
        live = store.live_keys(conn, "trend:")
        ids = self._row_ids
        for trend in self._trends.values():
            trend.windows.advance(now.timestamp())
            slope = trend.windows.slope(trend.rule.min_samples)
            n = len(ids)
            cut = trends.Slope(slope.per_hour[:n], slope.change[:n], slope.n[:n], slope.span_h[:n])
            observed = trend.windows.last_t[:n]
            got, gone = trends.slope_output(trend.rule, cut, ids, now=now, observed_at=observed)
            requests += got
            clears += [c for c in gone if (c.patient_id, c.rule) in live]
        return requests, clears

    def _resting_pulse(
        self, conn: psycopg.Connection, *, now: datetime, ward_of: dict[uuid.UUID, str]
    ) -> RuleOutput:
        if self._last_rise is not None and now - self._last_rise < RISE_EVERY:
            return [], []
        self._last_rise = now
        rule = trends.RESTING_PULSE_RISING
        patients = list(ward_of)
        if not patients:
            return [], []
        # Hourly means: an oximeter's stream and a cuff's daily reading weigh alike per hour.
        rows = conn.execute(
            "SELECT patient_id, extract(epoch FROM date_bin('1 hour', time, 'epoch'::timestamptz))::float8"
            " + 1800, avg(value) FROM observations WHERE patient_id = ANY(%s) AND vital = %s"
            " AND time > %s AND time <= %s AND NOT quality && %s GROUP BY 1, 2 ORDER BY 1, 2",
            (patients, rule.vital.value, now - rule.recent - rule.reference, now, _DOUBTFUL),
        ).fetchall()
        values, times = padded_rows([(p, t, v) for p, t, v in rows], patients)
        requests, clears = trends.rise_output(rule, values, times, patients, now=now)
        live = store.live_keys(conn, rule.rule)
        return requests, [c for c in clears if (c.patient_id, c.rule) in live]

    def _technical(
        self, conn: psycopg.Connection, *, now: datetime, ward_of: dict[uuid.UUID, str]
    ) -> RuleOutput:
        requests: list[AlertRequest] = []
        clears: list[AlertClear] = []
        for prefix, rule_output in (
            ("missing:", technical_rules.missing_vitals(conn, now=now)),
            ("gateway_offline", technical_rules.gateways_offline(conn, now=now)),
            ("receipts_overdue", technical_rules.receipts_overdue(conn, now=now)),
            ("device_silent:", technical_rules.devices_silent(conn, now=now)),
            ("battery_low:", technical_rules.batteries(conn, now=now)),
            ("clock_not_set:", technical_rules.clocks(conn, now=now)),
        ):
            live = store.live_keys(conn, prefix)
            requests += rule_output[0]
            clears += [c for c in rule_output[1] if (c.patient_id, c.rule) in live]
        return requests, clears

    # --- helpers --------------------------------------------------------------------------------

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

    def _wards_in_care(self, conn: psycopg.Connection) -> dict[uuid.UUID, str]:
        rows = conn.execute("SELECT id, ward_id FROM patients WHERE discharged_at IS NULL").fetchall()
        return dict(rows)

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

    def _rebuild_trends(self, conn: psycopg.Connection, *, now: datetime, patients: list[uuid.UUID]) -> None:
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
            width = windows.width
            open_start = windows.open_start
            params = {
                "w": width, "p": patients, "v": rule.vital.value, "d": _DOUBTFUL, "open": open_start,
                "since": now - rule.window - timedelta(seconds=width), "until": now + MAX_CLOCK_SKEW,
            }  # fmt: skip
            # Row numbers come from the database (the patient's position in the list), and every
            # column is a number: no uuid is parsed per row.
            rows = conn.execute(_REBUILD_CLOSED_SLOTS, params).fetchall()
            rows += conn.execute(_REBUILD_OPEN_SLOT, params).fetchall()
            if rows:
                table = np.array(rows, dtype=float)
                windows.push(table[:, 0].astype(np.int64), table[:, 1], table[:, 2], now=now.timestamp())
        self._trends = built
        log.info("trend windows rebuilt for %d patients", len(patients))


# --- database reads (all for a list of patients, one round trip each) --------------------------

# Trend windows: (row, mean value, mean time) per patient and closed slot before the open one...
_REBUILD_CLOSED_SLOTS = (
    "SELECT t.i - 1, avg(o.value), avg(extract(epoch FROM o.time))::float8"
    " FROM unnest(%(p)s::uuid[]) WITH ORDINALITY AS t(patient_id, i)"
    " JOIN observations o ON o.patient_id = t.patient_id"
    " WHERE o.vital = %(v)s AND NOT o.quality && %(d)s AND o.time > %(since)s"
    " AND o.time < to_timestamp(%(open)s)"
    " GROUP BY t.i, floor(extract(epoch FROM o.time) / %(w)s)"
)
# ... and (row, value, time) of every reading in the open slot.
_REBUILD_OPEN_SLOT = (
    "SELECT t.i - 1, o.value, extract(epoch FROM o.time)::float8"
    " FROM unnest(%(p)s::uuid[]) WITH ORDINALITY AS t(patient_id, i)"
    " JOIN observations o ON o.patient_id = t.patient_id"
    " WHERE o.vital = %(v)s AND NOT o.quality && %(d)s AND o.time >= to_timestamp(%(open)s)"
    " AND o.time <= %(until)s"
)


def _personal_limits(
    conn: psycopg.Connection, patients: list[uuid.UUID], now: datetime
) -> thresholds.PersonalLimits:
    """Physicians' limits in force for these patients (expired ones no longer count)."""
    rows = conn.execute(
        "SELECT patient_id, rule, priority, limit_value FROM personal_thresholds"
        " WHERE patient_id = ANY(%s) AND revoked_at IS NULL AND (valid_until IS NULL OR valid_until > %s)",
        (patients, now),
    ).fetchall()
    return {(pid, rule, Priority.parse(priority)): value for pid, rule, priority, value in rows}


def _scale_2(conn: psycopg.Connection, patients: list[uuid.UUID]) -> set[uuid.UUID]:
    if not patients:
        return set()
    rows = conn.execute(
        "SELECT patient_id FROM spo2_scale_orders"
        " WHERE patient_id = ANY(%s) AND revoked_at IS NULL AND scale = 2",
        (patients,),
    ).fetchall()
    return {r[0] for r in rows}


def _windows(
    conn: psycopg.Connection, patients: list[uuid.UUID], vital: Vital, *, now: datetime
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each patient's last WINDOW_READINGS readings of `vital` (doubtful included, flagged), oldest first,
    and whether the newest came from a streaming characteristic."""
    rows = conn.execute(
        "SELECT t.patient_id, extract(epoch FROM o.time)::float8, o.value, o.quality && %(d)s,"
        " o.characteristic FROM unnest(%(p)s::uuid[]) AS t(patient_id) CROSS JOIN LATERAL ("
        "   SELECT time, value, quality, characteristic FROM observations"
        "   WHERE patient_id = t.patient_id AND vital = %(v)s AND time <= %(until)s"
        "   ORDER BY time DESC LIMIT %(k)s) o",
        {
            "p": patients,
            "v": vital.value,
            "d": _DOUBTFUL,
            "until": now + MAX_CLOCK_SKEW,
            "k": judge.WINDOW_READINGS,
        },
    ).fetchall()
    order = {p: i for i, p in enumerate(patients)}
    k = judge.WINDOW_READINGS
    values = np.full((len(patients), k), np.nan)
    times = np.full((len(patients), k), np.nan)
    doubtful = np.zeros((len(patients), k), bool)
    continuous = np.zeros(len(patients), bool)
    filled = np.zeros(len(patients), np.int64)
    for pid, at, value, bad, characteristic in rows:  # newest first per patient: fill from the right
        row = order[pid]
        col = k - 1 - filled[row]
        values[row, col], times[row, col], doubtful[row, col] = value, at, bool(bad)
        if filled[row] == 0:
            continuous[row] = characteristic.upper() in judge.CONTINUOUS_CHARACTERISTICS
        filled[row] += 1
    return values, times, doubtful, continuous


def _live_priorities(
    conn: psycopg.Connection, patients: list[uuid.UUID], rules: list[str]
) -> dict[tuple[uuid.UUID, str], int]:
    rows = conn.execute(
        "SELECT patient_id, rule, priority FROM alerts WHERE state <> 'resolved' AND patient_id = ANY(%s)"
        " AND rule = ANY(%s)",
        (patients, rules),
    ).fetchall()
    return {(pid, rule): int(Priority.parse(priority)) for pid, rule, priority in rows}


def _news2_latest(
    conn: psycopg.Connection, patients: list[uuid.UUID], scale_2: set[uuid.UUID], *, now: datetime
) -> news2.News2Latest:
    """Each NEWS2 parameter's newest trustworthy value per patient (pulse: pulse rate or heart rate,
    whichever is newer), and the newest consciousness and air/oxygen entries."""
    until = now + MAX_CLOCK_SKEW
    rows = conn.execute(
        NEWS2_LATEST_TRUSTED,
        {
            "patients": patients,
            "vitals": [v.value for v in _NEWS2_VITALS],
            "until": until,
            "doubtful": _DOUBTFUL,
        },
    ).fetchall()
    order = {p: i for i, p in enumerate(patients)}
    n = len(patients)

    def empty() -> tuple[np.ndarray, np.ndarray]:
        return np.full(n, np.nan), np.full(n, np.nan)

    got = {v: empty() for v in _NEWS2_VITALS}
    for pid, vital, value, at in rows:
        got[Vital(vital)][0][order[pid]] = value
        got[Vital(vital)][1][order[pid]] = at.timestamp()
    pulse_v, pulse_t = got[Vital.PULSE_RATE]
    hr_v, hr_t = got[Vital.HEART_RATE]
    use_hr = np.nan_to_num(hr_t, nan=-math.inf) > np.nan_to_num(pulse_t, nan=-math.inf)
    pulse = news2.Timed(np.where(use_hr, hr_v, pulse_v), np.where(use_hr, hr_t, pulse_t))
    consciousness = np.full(n, "", dtype=object)
    conscious_at, oxygen, oxygen_at = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    for pid, letter, at in conn.execute(
        "SELECT DISTINCT ON (patient_id) patient_id, consciousness, extract(epoch FROM time)::float8"
        " FROM manual_observations WHERE patient_id = ANY(%s) AND consciousness IS NOT NULL AND time <= %s"
        " ORDER BY patient_id, time DESC, id DESC",
        (patients, until),
    ):
        consciousness[order[pid]], conscious_at[order[pid]] = letter, at
    for pid, on, at in conn.execute(
        "SELECT DISTINCT ON (patient_id) patient_id, on_oxygen, extract(epoch FROM time)::float8"
        " FROM manual_observations WHERE patient_id = ANY(%s) AND on_oxygen IS NOT NULL AND time <= %s"
        " ORDER BY patient_id, time DESC, id DESC",
        (patients, until),
    ):
        oxygen[order[pid]], oxygen_at[order[pid]] = float(on), at
    return news2.News2Latest(
        resp_rate=news2.Timed(*got[Vital.RESPIRATORY_RATE]),
        spo2=news2.Timed(*got[Vital.SPO2]),
        systolic_bp=news2.Timed(*got[Vital.SYSTOLIC_BP]),
        pulse=pulse,
        temperature=news2.Timed(*got[Vital.BODY_TEMPERATURE]),
        consciousness=news2.Timed(consciousness, conscious_at),
        on_oxygen=news2.Timed(oxygen, oxygen_at),
        spo2_scale=np.array([2 if p in scale_2 else 1 for p in patients]),
    )
