"""Try a limit before saving it (issue 11): a proposed personal limit or SpO2 scale, replayed on the
patient's stored readings with the engine's own kernels (alerts.replay), beside what the limits in
force did over the same readings.

The one home of the decision and its words: the record's "Pröva gränsen" button, its JSON endpoint and
`hemma limits replay` all run `replay_limit`. It is a read: nurses and physicians may run it
(care.permissions.Action.REPLAY_LIMIT) and it writes one access-log row (`replay_limit`); saving the
limit stays the physician's order (care.limits, care.orders).

A personal limit replays its own rule key; a scale change replays the SpO2 key (scale 2 has limits of
its own, alerts.judge.SCALE_2_SPO2_LIMITS) and NEWS2 (SpO2 scores on the other scale).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from alerts import replay
from alerts.judge import CONTINUOUS_CHARACTERISTICS, SCALE_2_SPO2_LIMITS, WINDOW_READINGS
from alerts.model import Priority
from alerts.news2 import NEWS2_RULE, NEWS2_VITALS
from alerts.thresholds import DOUBTFUL_QUALITY, threshold_keys
from care.acting import Origin, audited, staff_for_patient
from care.limits import LIMITS_IN_FORCE, check_limit
from care.orders import ON_SCALE_2
from care.permissions import Action
from care.refusals import RefusalCode, Refused
from core.contract import MAX_CLOCK_SKEW
from core.vitals import Vital
from storage.steps import Sql, Steps

PERIODS: Mapping[str, timedelta] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "14d": timedelta(days=14),
}
DEFAULT_PERIOD = "7d"
PERIOD_SV = {"24h": "senaste dygnet", "7d": "senaste 7 dygnen", "14d": "senaste 14 dygnen"}
_WEEKDAYS_SV = ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag")
_DOUBTFUL = sorted(DOUBTFUL_QUALITY)
_NEWS2_LOOKBACK = timedelta(hours=12)  # the longest NEWS2 freshness window (alerts.news2)


@dataclass(frozen=True, slots=True)
class Proposal:
    """What to try: limits of one rule key by priority label ("high", "medium"), and/or an SpO2 scale."""

    rule: str | None = None
    limits: Mapping[str, float] = field(default_factory=dict)
    spo2_scale: int | None = None


@dataclass(frozen=True, slots=True)
class KeyReplay:
    """One alert key over the period: the alerts with the limits in force, and with the proposal."""

    rule: str
    current: tuple[replay.ReplayedAlert, ...]
    proposed: tuple[replay.ReplayedAlert, ...]
    until: datetime

    def still_fires(self, alert: replay.ReplayedAlert) -> replay.ReplayedAlert | None:
        """The proposal's alert over the same time as `alert` of the limits in force, if any."""
        return next((p for p in self.proposed if p.overlaps(alert, self.until)), None)


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    patient_id: uuid.UUID
    period: str
    since: datetime
    until: datetime
    keys: tuple[KeyReplay, ...]
    readings: int  # how many stored readings were replayed


def check_proposal(
    proposal: Proposal, period: str, current: Mapping[tuple[str, Priority], float], *, scale_2: bool = False
) -> None:
    """A proposal's rule, priorities, values, order of severities and period; no database. The order is
    judged on the limits that would be in force: the ward's (scale 2's for SpO2), the patient's own,
    the proposed."""
    if period not in PERIODS:
        raise Refused(RefusalCode.REPLAY_PERIOD, period=period, known=tuple(PERIODS))
    if proposal.spo2_scale is not None and proposal.spo2_scale not in (1, 2):
        raise Refused(RefusalCode.SCALE_CHOICE, scale=proposal.spo2_scale)
    if proposal.rule is None or not proposal.limits:
        if proposal.spo2_scale is None:
            raise Refused(RefusalCode.REPLAY_NOTHING)
        return
    for priority, value in proposal.limits.items():
        check_limit(proposal.rule, priority, value, reason="prövas")  # rule, priority, plausible value
    vital, direction, _ = threshold_keys()[proposal.rule]
    merged = {r.priority: r.limit for r in replay.threshold_rules(proposal.rule)}
    if scale_2 and vital is Vital.SPO2:
        merged |= SCALE_2_SPO2_LIMITS
    merged |= {p: v for (rule, p), v in current.items() if rule == proposal.rule}
    merged |= {Priority.parse(p): v for p, v in proposal.limits.items()}
    if Priority.HIGH in merged and Priority.MEDIUM in merged:
        high, medium = merged[Priority.HIGH], merged[Priority.MEDIUM]
        if (high > medium) if direction == "below" else (high < medium):
            raise Refused(RefusalCode.LIMIT_ORDER, rule=proposal.rule)


def replay_limit(
    *, patient_id: uuid.UUID, by: str, proposal: Proposal, period: str = DEFAULT_PERIOD, origin: Origin | None
) -> Steps[ReplayOutcome]:
    """What `proposal` would have done to this patient's alerts over `period`, beside what was in force."""
    if period not in PERIODS:
        raise Refused(RefusalCode.REPLAY_PERIOD, period=period, known=tuple(PERIODS))
    staff, _ward = yield from staff_for_patient(by, Action.REPLAY_LIMIT, patient_id)
    (until,) = yield Sql("SELECT now()", fetch="one")
    rows = yield Sql(LIMITS_IN_FORCE, ([patient_id], until), fetch="all")
    personal = {(r[1], Priority.parse(r[2])): float(r[3]) for r in rows}
    scale_2 = bool((yield Sql(ON_SCALE_2, ([patient_id],), fetch="all")))
    check_proposal(
        proposal,
        period,
        personal,
        scale_2=scale_2 if proposal.spo2_scale is None else proposal.spo2_scale == 2,
    )
    since = until - PERIODS[period]
    in_force = replay.Limits(personal, scale_2)
    tried = replay.Limits(
        personal | {(proposal.rule, Priority.parse(p)): v for p, v in proposal.limits.items()}
        if proposal.rule
        else personal,
        scale_2 if proposal.spo2_scale is None else proposal.spo2_scale == 2,
    )
    keys: list[KeyReplay] = []
    counted = 0
    rules = [proposal.rule] if proposal.rule else []
    if proposal.spo2_scale is not None and "spo2_low" not in rules:
        rules.append("spo2_low")
    for rule in rules:
        vital = threshold_keys()[rule][0]
        readings = yield from _readings(patient_id, vital, since, until)
        counted += len(readings)
        current = replay.replay_threshold(rule, readings, in_force, since=since)
        proposed = replay.replay_threshold(rule, readings, tried, since=since)
        keys.append(KeyReplay(rule, tuple(current), tuple(proposed), until))
    if proposal.spo2_scale is not None:
        series = yield from _news2_series(patient_id, since, until)
        keys.append(KeyReplay(
            NEWS2_RULE, tuple(replay.replay_news2(series, in_force, since=since)),
            tuple(replay.replay_news2(series, tried, since=since)), until,
        ))  # fmt: skip
    context = f"replay:{proposal.rule or 'spo2_scale'} {period}"
    yield from audited(origin, staff=staff, username=by, patient_id=patient_id, action=Action.REPLAY_LIMIT,
                       context=context)  # fmt: skip
    return ReplayOutcome(patient_id, period, since, until, tuple(keys), counted)


_READINGS_SQL = (
    "SELECT extract(epoch FROM time)::float8, value, quality && %(d)s, upper(characteristic) = ANY(%(c)s),"
    " extract(epoch FROM stored_at)::float8 FROM ("
    "  (SELECT * FROM observations WHERE patient_id = %(p)s AND vital = %(v)s AND time <= %(since)s"
    "   ORDER BY time DESC LIMIT %(k)s)"
    "  UNION ALL (SELECT * FROM observations WHERE patient_id = %(p)s AND vital = %(v)s AND time > %(since)s"
    "   AND time <= %(until)s)) o"
)


def _readings(
    patient_id: uuid.UUID, vital: Vital, since: datetime, until: datetime
) -> Steps[replay.Readings]:
    """The readings of the period, and the window's worth before it (the engine's state when it began)."""
    rows = yield Sql(
        _READINGS_SQL,
        {"p": patient_id, "v": vital.value, "d": _DOUBTFUL, "c": sorted(CONTINUOUS_CHARACTERISTICS),
         "since": since, "until": until + MAX_CLOCK_SKEW, "k": WINDOW_READINGS},
        fetch="all",
    )  # fmt: skip
    table = np.array(rows, dtype=float).reshape(-1, 5)
    return replay.Readings(table[:, 1], table[:, 0], table[:, 2] > 0, table[:, 3] > 0, table[:, 4])


def _news2_series(patient_id: uuid.UUID, since: datetime, until: datetime) -> Steps[replay.News2Series]:
    rows = yield Sql(
        "SELECT vital, extract(epoch FROM time)::float8, value, NOT quality && %s,"
        " extract(epoch FROM stored_at)::float8 FROM observations WHERE patient_id = %s AND vital = ANY(%s)"
        " AND time > %s AND time <= %s ORDER BY time",
        (
            _DOUBTFUL,
            patient_id,
            [v.value for v in NEWS2_VITALS],
            since - _NEWS2_LOOKBACK,
            until + MAX_CLOCK_SKEW,
        ),
        fetch="all",
    )
    entries = yield Sql(
        "SELECT extract(epoch FROM time)::float8, consciousness, on_oxygen,"
        " extract(epoch FROM entered_at)::float8 FROM manual_observations"
        " WHERE patient_id = %s AND time > %s AND time <= %s ORDER BY time",
        (patient_id, since - _NEWS2_LOOKBACK, until + MAX_CLOCK_SKEW),
        fetch="all",
    )

    def series(*vitals: Vital) -> tuple[np.ndarray, np.ndarray]:
        got = [(r[1], r[2]) for r in rows if r[0] in {v.value for v in vitals} and r[3]]
        return np.array([g[1] for g in got], dtype=float), np.array([g[0] for g in got], dtype=float)

    conscious = [(e[0], e[1]) for e in entries if e[1] is not None]
    oxygen = [(e[0], float(e[2])) for e in entries if e[2] is not None]
    batches = [r[4] for r in rows] + [e[3] for e in entries]
    letters = np.array([c[1] for c in conscious], dtype=object)
    return replay.News2Series(
        resp_rate=series(Vital.RESPIRATORY_RATE), spo2=series(Vital.SPO2),
        systolic_bp=series(Vital.SYSTOLIC_BP), pulse=series(Vital.PULSE_RATE, Vital.HEART_RATE),
        temperature=series(Vital.BODY_TEMPERATURE),
        consciousness=(letters, np.array([c[0] for c in conscious])),
        on_oxygen=(np.array([o[1] for o in oxygen]), np.array([o[0] for o in oxygen])),
        batches=np.array(batches, dtype=float),
    )  # fmt: skip


# --- in words ---------------------------------------------------------------------------------------


def key_label_sv(rule: str) -> str:
    if rule == NEWS2_RULE:
        return "NEWS2"
    from care.texts_sv import rule_label

    return rule_label(rule)


def _count_sv(n: int) -> str:
    return f"{n} larm"


def _when_sv(at: datetime, zone: ZoneInfo) -> str:
    local = at.astimezone(zone)
    return f"{_WEEKDAYS_SV[local.weekday()]} {local.day}/{local.month} {local:%H:%M}"


PRIORITY_WORD_SV = {Priority.HIGH: "hög", Priority.MEDIUM: "medel", Priority.LOW: "låg"}


def key_summary_sv(key: KeyReplay, period: str, zone: ZoneInfo, *, named: int = 3) -> str:
    """'Syremättnad, låg: 2 larm senaste 7 dygnen i stället för 14; tisdag 3/6 14:05 hade fortfarande
    larmat (hög).' The alerts of the limits in force that would still fire are named, worst first."""
    now, before = len(key.proposed), len(key.current)
    head = f"{key_label_sv(key.rule)}: {_count_sv(now)} {PERIOD_SV[period]}"
    head += " – samma som nu" if now == before else f" i stället för {before}"
    still = [(a, key.still_fires(a)) for a in key.current]
    kept = sorted(
        ((a, p) for a, p in still if p is not None), key=lambda ap: (-ap[1].priority, ap[0].opened_at)
    )
    parts = [
        f"{_when_sv(a.opened_at, zone)} hade fortfarande larmat ({PRIORITY_WORD_SV[p.priority]})"
        for a, p in kept[:named]
    ]
    dropped = sum(1 for _, p in still if p is None)
    if dropped and now != before:
        parts.append(f"{dropped} av dem hade inte larmat")
    return head + ("; " + "; ".join(parts) if parts else "") + "."


def outcome_json(outcome: ReplayOutcome, zone: ZoneInfo) -> dict[str, object]:
    """The outcome for the JSON endpoint and `hemma limits replay --json`: numbers, times and the words."""

    def alert(a: replay.ReplayedAlert) -> dict[str, object]:
        return {
            "opened_at": a.opened_at.isoformat(), "priority": a.priority.label, "value": _number(a.value),
            "message": a.message, "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
        }  # fmt: skip

    return {
        "period": outcome.period, "since": outcome.since.isoformat(), "until": outcome.until.isoformat(),
        "readings": outcome.readings,
        "keys": [{
            "rule": k.rule, "label": key_label_sv(k.rule), "current": [alert(a) for a in k.current],
            "proposed": [alert(a) for a in k.proposed],
            "still_fires": [alert(a) for a in k.current if k.still_fires(a) is not None],
            "summary": key_summary_sv(k, outcome.period, zone),
        } for k in outcome.keys],
    }  # fmt: skip


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


__all__ = [
    "DEFAULT_PERIOD",
    "PERIODS",
    "KeyReplay",
    "Proposal",
    "ReplayOutcome",
    "check_proposal",
    "key_summary_sv",
    "outcome_json",
    "replay_limit",
]
