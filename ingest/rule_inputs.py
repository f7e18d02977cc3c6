"""Every database read the alert rules need, and nothing else: the one module the rules' SQL lives in.

A rule asks for its inputs with a typed request (`alerts.inputs`); `RuleInputs.load` answers it inside
the engine's transaction. One `RuleInputs` serves one run of the engine (one batch or one tick, one
`now`): a request asked twice in a run (the two gateway rules, the three device rules) is read once,
and so are the limits the threshold rules and NEWS2 share (SpO2 scale-2 orders).

Every read is for a list of patients in one round trip (`= ANY(%s)`, `unnest ... WITH ORDINALITY`),
returns numbers rather than rows of objects where it can, and reads the database as the engine's state:
nothing here survives the run, so a restart rebuilds nothing but the trend windows (`trend_points`).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np

from alerts import inputs as ai
from alerts import judge, news2
from alerts.model import Priority
from alerts.rule import InputRequest, RuleFamily, family_of
from alerts.thresholds import DOUBTFUL_QUALITY, PersonalLimits
from care.limits import LIMITS_IN_FORCE
from care.observations import NEWS2_LATEST_TRUSTED
from care.orders import ON_SCALE_2
from core.contract import MAX_CLOCK_SKEW
from core.vitals import Vital

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")
_DOUBTFUL = sorted(DOUBTFUL_QUALITY)


class RuleInputs:
    """The reads of one engine run, in the caller's transaction."""

    def __init__(self, conn: psycopg.Connection, *, now: datetime) -> None:
        self.conn, self.now = conn, now
        self._answers: dict[InputRequest[Any], object] = {}
        self._scale_2: dict[uuid.UUID, bool] = {}
        self._live: dict[RuleFamily, set[tuple[uuid.UUID, str]]] | None = None

    def load(self, request: InputRequest[T]) -> T:
        if request not in self._answers:
            self._answers[request] = _READERS[type(request)](self, request)
        return cast(T, self._answers[request])

    # --- what the engine itself needs -------------------------------------------------------------

    def wards_in_care(self) -> dict[uuid.UUID, str]:
        rows = self.conn.execute("SELECT id, ward_id FROM patients WHERE discharged_at IS NULL").fetchall()
        return dict(rows)

    def claim_manual_observations(self) -> list[tuple[uuid.UUID, bool]]:
        """(patient, has a respiration rate) of the observations entered since the last tick, marked as
        evaluated in this transaction (SKIP LOCKED: a dashboard still inserting is taken next time)."""
        return self.conn.execute(
            "UPDATE manual_observations m SET evaluated_at = %s"
            " WHERE id IN (SELECT id FROM manual_observations WHERE evaluated_at IS NULL"
            " ORDER BY id LIMIT 5000 FOR UPDATE SKIP LOCKED)"
            " RETURNING patient_id, respiratory_rate IS NOT NULL",
            (self.now,),
        ).fetchall()

    def claim_questionnaire_responses(self) -> list[tuple[uuid.UUID, str]]:
        """(patient, questionnaire) of the responses stored since the last tick, marked as evaluated in
        this transaction, as manual observations are (care.questionnaires stores them; the engine judges
        them here, never in the patient's request)."""
        return self.conn.execute(
            "UPDATE questionnaire_responses SET evaluated_at = %s"
            " WHERE id IN (SELECT id FROM questionnaire_responses WHERE evaluated_at IS NULL"
            " ORDER BY id LIMIT 5000 FOR UPDATE SKIP LOCKED)"
            " RETURNING patient_id, questionnaire",
            (self.now,),
        ).fetchall()

    def live_keys(self, family: RuleFamily) -> set[tuple[uuid.UUID, str]]:
        """(patient, key) of every live alert of `family`: rules that judge everyone on the timer send
        clears only for these, not one per patient per tick. One read per run for every family (a
        scan of the live alerts each, seven times a tick, was most of a tick's time)."""
        if self._live is None:
            rows = self.conn.execute(
                "SELECT patient_id, rule FROM alerts WHERE state <> 'resolved'"
                " AND split_part(rule, ':', 1) = ANY(%s)",
                ([f.value for f in RuleFamily if f is not RuleFamily.THRESHOLD],),
            ).fetchall()
            self._live = {}
            for patient_id, rule in rows:
                self._live.setdefault(family_of(rule), set()).add((patient_id, rule))
        return self._live.get(family, set())

    def trend_points(
        self,
        vital: Vital,
        patients: Sequence[uuid.UUID],
        *,
        width: float,
        open_start: float,
        window: timedelta,
    ) -> np.ndarray:
        """Rows of (patient row, value, epoch s) to rebuild a trend window: one point per patient and
        closed slot (its mean value at its mean time, exactly what the window commits when a slot closes),
        then the open slot's readings one by one. Row numbers come from the database (the patient's place
        in `patients`) and every column is a number: no uuid is parsed per row."""
        params = {
            "w": width, "p": list(patients), "v": vital.value, "d": _DOUBTFUL, "open": open_start,
            "since": self.now - window - timedelta(seconds=width), "until": self.now + MAX_CLOCK_SKEW,
        }  # fmt: skip
        rows = self.conn.execute(_REBUILD_CLOSED_SLOTS, params).fetchall()
        rows += self.conn.execute(_REBUILD_OPEN_SLOT, params).fetchall()
        return np.array(rows, dtype=float).reshape(-1, 3)

    # --- thresholds and NEWS2 -----------------------------------------------------------------------

    def _thresholds(self, request: ai.ThresholdRequest) -> ai.ThresholdInputs:
        patients = sorted({p for _, who, _ in request.by_vital for p in who})
        return ai.ThresholdInputs(
            windows=tuple(self._recent(vital, who, keys) for vital, who, keys in request.by_vital),
            personal=self._personal_limits(patients),
            spo2_scale_2=frozenset(self.scale_2(patients)),
        )

    def _recent(self, vital: Vital, patients: ai.Patients, keys: tuple[str, ...]) -> ai.RecentReadings:
        """Each patient's last WINDOW_READINGS readings of `vital` (doubtful ones included, flagged), oldest
        first, whether the newest came from a streaming characteristic, and the live alerts of `keys`."""
        rows = self.conn.execute(
            "SELECT t.patient_id, extract(epoch FROM o.time)::float8, o.value, o.quality && %(d)s,"
            " o.characteristic FROM unnest(%(p)s::uuid[]) AS t(patient_id) CROSS JOIN LATERAL ("
            "   SELECT time, value, quality, characteristic FROM observations"
            "   WHERE patient_id = t.patient_id AND vital = %(v)s AND time <= %(until)s"
            "   ORDER BY time DESC LIMIT %(k)s) o",
            {"p": list(patients), "v": vital.value, "d": _DOUBTFUL, "until": self.now + MAX_CLOCK_SKEW,
             "k": judge.WINDOW_READINGS},
        ).fetchall()  # fmt: skip
        order = {p: i for i, p in enumerate(patients)}
        n, k = len(patients), judge.WINDOW_READINGS
        values, times = np.full((n, k), np.nan), np.full((n, k), np.nan)
        doubtful, continuous = np.zeros((n, k), bool), np.zeros(n, bool)
        filled = np.zeros(n, np.int64)
        for pid, at, value, bad, characteristic in rows:  # newest first per patient: fill from the right
            row = order[pid]
            col = k - 1 - filled[row]
            values[row, col], times[row, col], doubtful[row, col] = value, at, bool(bad)
            if filled[row] == 0:
                continuous[row] = characteristic.upper() in judge.CONTINUOUS_CHARACTERISTICS
            filled[row] += 1
        live = self.conn.execute(
            "SELECT patient_id, rule, priority FROM alerts WHERE state <> 'resolved' AND patient_id = ANY(%s)"
            " AND rule = ANY(%s)",
            (list(patients), list(keys)),
        ).fetchall()
        return ai.RecentReadings(
            vital, patients, values, times, doubtful, continuous,
            live={(pid, rule): int(Priority.parse(priority)) for pid, rule, priority in live},
        )  # fmt: skip

    def _personal_limits(self, patients: list[uuid.UUID]) -> PersonalLimits:
        """Physicians' limits in force for these patients (expired ones no longer count)."""
        rows = self.conn.execute(LIMITS_IN_FORCE, (patients, self.now)).fetchall()
        return {(pid, rule, Priority.parse(priority)): value for pid, rule, priority, value in rows}

    def scale_2(self, patients: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Patients ordered on NEWS2 SpO2 scale 2; each patient is read once per run."""
        unknown = [p for p in patients if p not in self._scale_2]
        if unknown:
            rows = self.conn.execute(ON_SCALE_2, (unknown,)).fetchall()
            ordered = {r[0] for r in rows}
            self._scale_2.update((p, p in ordered) for p in unknown)
        return {p for p in patients if self._scale_2[p]}

    def _news2(self, request: ai.News2Request) -> ai.News2Inputs:
        """Each NEWS2 parameter's newest trustworthy value per patient (pulse: pulse rate or heart rate,
        whichever is newer), and the newest consciousness and air/oxygen entries."""
        patients = list(request.patients)
        scale_2 = self.scale_2(patients)
        until = self.now + MAX_CLOCK_SKEW
        rows = self.conn.execute(
            NEWS2_LATEST_TRUSTED,
            {"patients": patients, "vitals": [v.value for v in news2.NEWS2_VITALS], "until": until,
             "doubtful": _DOUBTFUL},
        ).fetchall()  # fmt: skip
        order = {p: i for i, p in enumerate(patients)}
        n = len(patients)
        got = {v: (np.full(n, np.nan), np.full(n, np.nan)) for v in news2.NEWS2_VITALS}
        for pid, vital, value, at in rows:
            got[Vital(vital)][0][order[pid]] = value
            got[Vital(vital)][1][order[pid]] = at.timestamp()
        pulse_v, pulse_t = got[Vital.PULSE_RATE]
        hr_v, hr_t = got[Vital.HEART_RATE]
        use_hr = np.nan_to_num(hr_t, nan=-math.inf) > np.nan_to_num(pulse_t, nan=-math.inf)
        pulse = news2.Timed(np.where(use_hr, hr_v, pulse_v), np.where(use_hr, hr_t, pulse_t))
        consciousness = np.full(n, "", dtype=object)
        conscious_at, oxygen, oxygen_at = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        entries = (patients, until)
        for pid, letter, at in self.conn.execute(_NEWEST_ENTRY.format(column="consciousness"), entries):
            consciousness[order[pid]], conscious_at[order[pid]] = letter, at
        for pid, on, at in self.conn.execute(_NEWEST_ENTRY.format(column="on_oxygen"), entries):
            oxygen[order[pid]], oxygen_at[order[pid]] = float(on), at
        latest = news2.News2Latest(
            resp_rate=news2.Timed(*got[Vital.RESPIRATORY_RATE]),
            spo2=news2.Timed(*got[Vital.SPO2]),
            systolic_bp=news2.Timed(*got[Vital.SYSTOLIC_BP]),
            pulse=pulse,
            temperature=news2.Timed(*got[Vital.BODY_TEMPERATURE]),
            consciousness=news2.Timed(consciousness, conscious_at),
            on_oxygen=news2.Timed(oxygen, oxygen_at),
            spo2_scale=np.array([2 if p in scale_2 else 1 for p in patients]),
        )
        return ai.News2Inputs(request.patients, latest)

    # --- series: weights and hourly means -----------------------------------------------------------

    def _recent_weights(self, request: ai.RecentWeightsRequest) -> ai.Series:
        rows = self.conn.execute(
            _WEIGHT_WINDOW_SQL,
            {"patients": list(request.patients), "vital": Vital.BODY_WEIGHT.value, "doubtful": _DOUBTFUL,
             "window": request.window},
        ).fetchall()  # fmt: skip
        return ai.Series(request.patients, *padded_rows(rows, request.patients))

    def _weight_gain(self, request: ai.WeightGainRequest) -> ai.WeightGainInputs:
        """Recent weights, and the time of each patient's newest answer to the questionnaire when it
        carries the flag (the combined rule: the newest answer decides, "Som vanligt" ends it)."""
        weights = self.load(ai.RecentWeightsRequest(request.patients, request.window))
        rows = self.conn.execute(
            "SELECT DISTINCT ON (patient_id) patient_id, extract(epoch FROM authored_at)::float8,"
            " flags FROM questionnaire_responses WHERE patient_id = ANY(%(patients)s)"
            " AND questionnaire = %(q)s AND authored_at <= %(until)s"
            " ORDER BY patient_id, authored_at DESC, id DESC",
            {"patients": list(request.patients), "q": request.questionnaire, "until": self.now},
        ).fetchall()
        order = {p: i for i, p in enumerate(request.patients)}
        reported_at = np.full(len(request.patients), np.nan)
        reported: list[tuple[str, ...]] = [()] * len(request.patients)
        for patient_id, at, flags in rows:
            if request.flag in flags:
                reported_at[order[patient_id]] = at
                reported[order[patient_id]] = tuple(flags)
        return ai.WeightGainInputs(weights, reported_at, tuple(reported))

    def _symptom_reports(self, request: ai.SymptomReportsRequest) -> ai.SymptomReports:
        """The newest response per patient and questionnaire within the window, with a row also for each
        live symptoms alert (its response may have aged out). For the timer (`patients` None): the rows
        of the live alerts only."""
        prefix = RuleFamily.SYMPTOMS.prefix
        if request.patients is None:
            live = {(p, rule.removeprefix(prefix)) for p, rule in self.live_keys(RuleFamily.SYMPTOMS)}
            patients = sorted({p for p, _ in live})
            if not patients:  # the usual tick: no symptoms alert is live, nothing to read
                return _no_reports()
        else:
            patients = list(request.patients)
            rows = self.conn.execute(
                "SELECT patient_id, rule FROM alerts WHERE state <> 'resolved' AND patient_id = ANY(%s)"
                " AND starts_with(rule, %s)",
                (patients, prefix),
            ).fetchall()
            live = {(p, rule.removeprefix(prefix)) for p, rule in rows}
        answers = self.conn.execute(
            "SELECT DISTINCT ON (patient_id, questionnaire) patient_id, questionnaire,"
            " extract(epoch FROM authored_at)::float8, flags, flag_priorities FROM questionnaire_responses"
            " WHERE patient_id = ANY(%s) AND authored_at > %s AND authored_at <= %s"
            " ORDER BY patient_id, questionnaire, authored_at DESC, id DESC",
            (patients, self.now - request.window, self.now),
        ).fetchall()
        newest = {(p, q): (at, flags, priorities) for p, q, at, flags, priorities in answers}
        keys = sorted(live if request.patients is None else live | set(newest))
        codes: list[str] = []
        width = max((len(newest[k][1]) for k in keys if k in newest), default=0)
        flag = np.full((len(keys), width), -1, np.int64)
        priority = np.zeros((len(keys), width), np.int64)
        authored_at = np.full(len(keys), np.nan)
        for row, key in enumerate(keys):
            if key not in newest:
                continue
            at, flags, priorities = newest[key]
            authored_at[row] = at
            for col, (code, label) in enumerate(zip(flags, priorities, strict=True)):
                if code not in codes:
                    codes.append(code)
                flag[row, col] = codes.index(code)
                priority[row, col] = int(Priority.parse(label))
        if not keys:
            return _no_reports()
        who = tuple(sorted({p for p, _ in keys}))
        weights = self.load(ai.RecentWeightsRequest(who, request.weight_window))
        order = {p: i for i, p in enumerate(who)}
        return ai.SymptomReports(
            tuple(p for p, _ in keys), tuple(q for _, q in keys), authored_at, tuple(codes), flag, priority,
            weights, np.array([order[p] for p, _ in keys], np.int64),
        )  # fmt: skip

    def _weight_history(self, request: ai.WeightHistoryRequest) -> ai.Series:
        rows = self.conn.execute(
            _WEIGHT_HISTORY_SQL,
            {"patients": list(request.patients), "vital": Vital.BODY_WEIGHT.value, "doubtful": _DOUBTFUL,
             "until": self.now + MAX_CLOCK_SKEW},
        ).fetchall()  # fmt: skip
        return ai.Series(request.patients, *padded_rows(rows, request.patients))

    def _hourly_means(self, request: ai.HourlyMeansRequest) -> ai.Series:
        rows = self.conn.execute(
            "SELECT patient_id, extract(epoch FROM date_bin('1 hour', time, 'epoch'::timestamptz))::float8"
            " + 1800, avg(value) FROM observations WHERE patient_id = ANY(%s) AND vital = %s"
            " AND time > %s AND time <= %s AND NOT quality && %s GROUP BY 1, 2 ORDER BY 1, 2",
            (list(request.patients), request.vital.value, self.now - request.span, self.now, _DOUBTFUL),
        ).fetchall()
        return ai.Series(request.patients, *padded_rows(rows, request.patients))

    # --- technical alarms: plans, gateways, devices of every patient in care -------------------------

    def _plans(self, request: ai.PlannedVitalsRequest) -> tuple[ai.PlannedVital, ...]:
        rows = self.conn.execute(
            "SELECT m.patient_id, m.vital, m.every_minutes * 60.0,"
            " extract(epoch FROM greatest(m.set_at, p.enrolled_at))::float8,"
            " (SELECT extract(epoch FROM o.time)::float8 FROM observations o"
            "   WHERE o.patient_id = m.patient_id AND o.vital = m.vital AND o.time <= %(until)s"
            "   AND NOT o.quality && %(d)s"
            "   ORDER BY o.time DESC LIMIT 1)"
            " FROM monitoring_plans m JOIN patients p ON p.id = m.patient_id WHERE p.discharged_at IS NULL"
            " ORDER BY m.vital, m.patient_id",
            {"until": self.now + MAX_CLOCK_SKEW, "d": _DOUBTFUL},
        ).fetchall()
        by_vital: dict[str, list[tuple[Any, ...]]] = {}
        for row in rows:
            by_vital.setdefault(row[1], []).append(row)
        plans = (
            (Vital(name), tuple(r[0] for r in group), _floats(group, 4), _floats(group, 2), _floats(group, 3))
            for name, group in by_vital.items()
        )
        return tuple(
            ai.PlannedVital(vital, who, last_trusted_at=last, every_s=every, plan_started_at=start)
            for vital, who, last, every, start in plans
        )

    def _kits(self, request: ai.KitStatusRequest) -> ai.KitStatus:
        rows = self.conn.execute(
            "SELECT g.patient_id, g.status, extract(epoch FROM g.status_at)::float8,"
            " extract(epoch FROM g.registered_at)::float8, extract(epoch FROM g.unconfirmed_since)::float8,"
            " g.unconfirmed_measurements::float8 FROM gateways g JOIN patients p ON p.id = g.patient_id"
            " WHERE p.discharged_at IS NULL"
        ).fetchall()
        return ai.KitStatus(
            tuple(r[0] for r in rows), tuple(r[1] for r in rows), status_at=_floats(rows, 2),
            registered_at=_floats(rows, 3), unconfirmed_since=_floats(rows, 4),
            unconfirmed_measurements=_floats(rows, 5),
        )  # fmt: skip

    def _kit_configs(self, request: ai.KitConfigRequest) -> ai.KitConfigStates:
        rows = self.conn.execute(
            "SELECT g.patient_id, g.status, k.version::float8, extract(epoch FROM k.issued_at)::float8,"
            " g.config_version::float8 FROM kit_configs k JOIN gateways g ON g.id = k.gateway_id"
            " JOIN patients p ON p.id = g.patient_id WHERE p.discharged_at IS NULL"
        ).fetchall()
        return ai.KitConfigStates(
            tuple(r[0] for r in rows), tuple(r[1] for r in rows), version=_floats(rows, 2),
            issued_at=_floats(rows, 3), applied_version=_floats(rows, 4),
        )  # fmt: skip

    def _contact_requests(self, request: ai.ContactRequestsRequest) -> ai.ContactRequests:
        """Every patient in care, with the oldest request still open (by ingest's receive time, never the
        box's clock: docs/protocol.md, "KitEventBatch") and the ward's escalation time."""
        rows = self.conn.execute(
            "SELECT p.id, extract(epoch FROM c.received_at)::float8, coalesce(c.source, ''),"
            " w.escalate_after_minutes * 60.0 FROM patients p JOIN wards w ON w.id = p.ward_id"
            " LEFT JOIN LATERAL (SELECT received_at, source FROM contact_requests"
            "   WHERE patient_id = p.id AND state = 'open' ORDER BY received_at, id LIMIT 1) c ON true"
            " WHERE p.discharged_at IS NULL ORDER BY p.id"
        ).fetchall()
        return ai.ContactRequests(
            tuple(r[0] for r in rows), oldest_open_at=_floats(rows, 1), source=tuple(r[2] for r in rows),
            after_s=_floats(rows, 3),
        )  # fmt: skip

    def _devices(self, request: ai.DeviceStatesRequest) -> ai.DeviceStates:
        rows = self.conn.execute(
            "SELECT g.patient_id, d.device_id, extract(epoch FROM d.last_seen_at)::float8,"
            " d.battery_percent::float8, extract(epoch FROM d.battery_at)::float8, d.clock_not_set,"
            " extract(epoch FROM d.clock_checked_at)::float8"
            " FROM devices d JOIN gateways g ON g.id = d.gateway_id JOIN patients p ON p.id = g.patient_id"
            " WHERE p.discharged_at IS NULL ORDER BY g.patient_id, d.device_id"
        ).fetchall()
        return ai.DeviceStates(
            tuple(r[0] for r in rows), tuple(r[1] for r in rows), last_seen_at=_floats(rows, 2),
            battery_percent=_floats(rows, 3), battery_at=_floats(rows, 4),
            clock_not_set=np.array([bool(r[5]) for r in rows], bool), clock_checked_at=_floats(rows, 6),
        )  # fmt: skip


_READERS: dict[type, Callable[[RuleInputs, Any], object]] = {
    ai.ThresholdRequest: RuleInputs._thresholds,
    ai.News2Request: RuleInputs._news2,
    ai.RecentWeightsRequest: RuleInputs._recent_weights,
    ai.WeightGainRequest: RuleInputs._weight_gain,
    ai.SymptomReportsRequest: RuleInputs._symptom_reports,
    ai.WeightHistoryRequest: RuleInputs._weight_history,
    ai.HourlyMeansRequest: RuleInputs._hourly_means,
    ai.PlannedVitalsRequest: RuleInputs._plans,
    ai.KitStatusRequest: RuleInputs._kits,
    ai.KitConfigRequest: RuleInputs._kit_configs,
    ai.DeviceStatesRequest: RuleInputs._devices,
    ai.ContactRequestsRequest: RuleInputs._contact_requests,
}


def _no_reports() -> ai.SymptomReports:
    empty = np.full((0, 1), np.nan)
    return ai.SymptomReports(
        (), (), np.zeros(0), (), np.zeros((0, 0), np.int64), np.zeros((0, 0), np.int64),
        ai.Series((), empty, empty), np.zeros(0, np.int64),
    )  # fmt: skip


def _floats(rows: Sequence[Sequence[Any]], column: int) -> np.ndarray:
    """One column as float64, NULL as NaN."""
    return np.array([math.nan if r[column] is None else r[column] for r in rows], float)


def padded_rows(rows: list[tuple[Any, ...]], patients: Sequence[uuid.UUID]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of (patient, epoch s, value), grouped by patient in time order, as NaN-padded [patients, n]."""
    order = {p: i for i, p in enumerate(patients)}
    counts = np.zeros(len(patients), dtype=np.int64)
    for patient_id, _, _ in rows:
        counts[order[patient_id]] += 1
    width = max(1, int(counts.max(initial=0)))
    values = np.full((len(patients), width), np.nan)
    times = np.full((len(patients), width), np.nan)
    filled = np.zeros(len(patients), dtype=np.int64)
    for patient_id, at, value in rows:
        row = order[patient_id]
        values[row, filled[row]] = value
        times[row, filled[row]] = at
        filled[row] += 1
    return values, times


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
# The newest manual entry of one NEWS2 parameter a nurse records (consciousness, air or oxygen).
_NEWEST_ENTRY = (
    "SELECT DISTINCT ON (patient_id) patient_id, {column}, extract(epoch FROM time)::float8"
    " FROM manual_observations WHERE patient_id = ANY(%s) AND {column} IS NOT NULL AND time <= %s"
    " ORDER BY patient_id, time DESC, id DESC"
)
# Each patient's trustworthy weights from the 3 days (plus slack) before their newest weight.
_WEIGHT_WINDOW_SQL = """
WITH newest AS (
    SELECT patient_id, max(time) AS t FROM observations
    WHERE patient_id = ANY(%(patients)s) AND vital = %(vital)s AND NOT quality && %(doubtful)s
    GROUP BY patient_id
)
SELECT o.patient_id, extract(epoch FROM o.time)::float8, o.value
FROM observations o JOIN newest n USING (patient_id)
WHERE o.vital = %(vital)s AND o.time >= n.t - %(window)s AND NOT o.quality && %(doubtful)s
ORDER BY o.patient_id, o.time
"""
# Each patient's trustworthy weights since enrolment, oldest first: the EWMA chart is replayed from the
# first weight, so it is the same after a restart as if the engine had never stopped.
_WEIGHT_HISTORY_SQL = """
SELECT o.patient_id, extract(epoch FROM o.time)::float8, o.value
FROM observations o JOIN patients p ON p.id = o.patient_id
WHERE o.patient_id = ANY(%(patients)s) AND o.vital = %(vital)s AND NOT o.quality && %(doubtful)s
  AND o.time >= p.enrolled_at AND o.time <= %(until)s
ORDER BY o.patient_id, o.time
"""
