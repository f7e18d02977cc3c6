"""Mina värden in the patient app (issue 10): the last two weeks of each value, the patient's own band,
and one neutral sentence. The band and the words of time are care.patient_today's (the same limits the
alert engine judges by); the sentence describes, it never judges ("lägst", "högst", never "för högt").

A stream of readings (continuous oximetry, a pulse band) becomes at most one point an hour (their
mean at their mean time; lowest and highest kept for the table), so the page stays small.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from care.patient_today import (
    DOUBTFUL,
    HISTORY_DAYS,
    NAME_SV,
    SHOWN_VITALS,
    Band,
    Reading,
    band_of,
    date_sv,
    latest_readings,
    limits_in_force,
    when_sv,
)
from core.contract import MAX_CLOCK_SKEW
from core.vitals import VITALS, Vital
from storage.steps import Sql, Steps


@dataclass(frozen=True, slots=True)
class Point:
    at: datetime  # the mean time of the readings of one hour
    value: float  # their mean: a stream of readings becomes at most one point an hour
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class DayRow:
    day: str  # "söndag 6 december"
    low: str
    high: str
    readings: int


@dataclass(frozen=True, slots=True)
class History:
    vital: Vital
    name: str
    unit: str
    decimals: int
    points: tuple[Point, ...]
    band: Band | None  # the range inside this patient's limits, when the vital has any
    days: tuple[DayRow, ...]  # newest first
    summary: str  # neutral: the latest, the lowest and the highest (weight: the change in 3 days)


def history_points(patient_id: uuid.UUID, now: datetime) -> Steps[dict[Vital, list[Point]]]:
    """Trustworthy readings of the shown vitals over HISTORY_DAYS, one mean point per vital and hour."""
    rows = yield Sql(
        "SELECT vital, to_timestamp(avg(extract(epoch FROM time))), avg(value), min(value), max(value)"
        " FROM observations WHERE patient_id = %(p)s AND vital = ANY(%(v)s) AND time > %(since)s"
        " AND time <= %(until)s AND NOT quality && %(d)s"
        " GROUP BY vital, date_bin('1 hour', time, '2000-01-01'::timestamptz) ORDER BY vital, 2",
        {"p": patient_id, "v": [v.value for v in SHOWN_VITALS], "since": now - timedelta(days=HISTORY_DAYS),
         "until": now + MAX_CLOCK_SKEW, "d": DOUBTFUL},
        fetch="all",
    )  # fmt: skip
    points: dict[Vital, list[Point]] = {}
    for name, at, mean, low, high in rows:
        points.setdefault(Vital(name), []).append(Point(at, float(mean), float(low), float(high)))
    return points


def change_over(points: Sequence[Point], span: timedelta, slack: timedelta) -> float | None:
    """The newest point minus the one nearest to `span` before it (within `slack`), or None."""
    if not points:
        return None
    newest = points[-1]
    target = newest.at - span
    near = [p for p in points if abs(p.at - target) <= slack]
    if not near:
        return None
    return newest.value - min(near, key=lambda p: abs(p.at - target)).value


def summary_sv(vital: Vital, points: Sequence[Point], latest: Reading | None, now: datetime,
               zone: ZoneInfo) -> str:  # fmt: skip
    """One neutral sentence: what the latest value was and the range of the period, never a judgement."""
    from alerts.weight import WEIGHT_WINDOW, WEIGHT_WINDOW_SLACK

    info = VITALS[vital]
    low, high = min(p.low for p in points), max(p.high for p in points)
    newest = latest.value if latest is not None else points[-1].value
    at = latest.at if latest is not None else points[-1].at
    text = (
        f"Senaste värdet {info.format(newest)}, {when_sv(at, now, zone)}. "
        f"De senaste {HISTORY_DAYS} dagarna: lägst {info.format(low)} och högst {info.format(high)}."
    )
    if vital is Vital.BODY_WEIGHT:
        change = change_over(points, WEIGHT_WINDOW, WEIGHT_WINDOW_SLACK)
        if change is not None:
            days = WEIGHT_WINDOW.days
            sign = "+" if change > 0.05 else ""
            text += f" Ändring på {days} dagar: {sign}{info.format(change)}."
    return text


def day_rows(vital: Vital, points: Sequence[Point], zone: ZoneInfo) -> tuple[DayRow, ...]:
    info = VITALS[vital]
    days: dict[date, list[Point]] = {}
    for p in points:
        days.setdefault(p.at.astimezone(zone).date(), []).append(p)
    return tuple(
        DayRow(date_sv(day).capitalize(), info.format(min(p.low for p in group)),
               info.format(max(p.high for p in group)), len(group))
        for day, group in sorted(days.items(), reverse=True)
    )  # fmt: skip


def value_history(patient_id: uuid.UUID, *, now: datetime, zone: ZoneInfo) -> Steps[list[History]]:
    """Mina värden: per shown vital with readings, the points, the patient's band, the day table and
    the neutral summary."""
    points = yield from history_points(patient_id, now)
    if not points:
        return []
    latest = yield from latest_readings(patient_id, now)
    limits = yield from limits_in_force(patient_id, now)
    shown = []
    for vital in SHOWN_VITALS:
        got = points.get(vital)
        if not got:
            continue
        info = VITALS[vital]
        shown.append(
            History(vital, NAME_SV[vital], info.display_unit, info.decimals, tuple(got),
                    band_of(patient_id, vital, limits.personal, limits.scale_2), day_rows(vital, got, zone),
                    summary_sv(vital, got, latest.get(vital), now, zone))
        )  # fmt: skip
    return shown
