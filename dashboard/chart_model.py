"""The pure part of the record's charts (dashboard.record_charts reads, this decides): which window and
bucket width a range means, the limits drawn as bands, the NEWS2 track and the 3-day weight rule,
each computed with the alert engine's own kernels so the chart shows what the engine decides.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from alerts import news2, weight
from alerts.judge import KeyLimits
from alerts.model import Priority
from alerts.thresholds import WARD_DEFAULT_RULES, PersonalLimits
from core.vitals import Vital
from storage.rollups import WIDTHS, BucketWidth

# The range buttons: 24 h, 7 days, 30 days, the whole stay (None: from enrolment).
RANGES: dict[str, timedelta | None] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "stay": None,
}
RANGE_LABELS_SV = {"24h": "24 tim", "7d": "7 dygn", "30d": "30 dygn", "stay": "Hela vårdtiden"}
# A chart is a few hundred points: the finest width giving at most this many buckets.
MAX_BUCKETS = 800
NEWS2 = "news2"  # the NEWS2 track's name beside the vitals


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime
    width: BucketWidth


def chart_window(
    range_key: str,
    *,
    now: datetime,
    enrolled_at: datetime,
    discharged_at: datetime | None,
    zoom: tuple[datetime, datetime] | None = None,
) -> Window:
    """The time window and bucket width of a range, or of a zoomed part of it (zoom clipped to the range)."""
    end = min(now, discharged_at) if discharged_at else now
    span = RANGES[range_key]
    start = enrolled_at if span is None else end - span
    if zoom is not None:
        start, end = max(start, zoom[0]), min(end, zoom[1])
        if end <= start:
            end = start + timedelta(seconds=WIDTHS[0].seconds)
    return Window(start, end, bucket_width(end - start))


def bucket_width(span: timedelta) -> BucketWidth:
    for width in WIDTHS:
        if span.total_seconds() / width.seconds <= MAX_BUCKETS:
            return width
    return WIDTHS[-1]


# --- limits --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitBand:
    rule: str
    direction: str  # 'below' or 'above'
    priority: str  # 'high', 'medium'
    value: float
    kind: str  # 'ward', 'personal', 'scale_2'


LIMIT_KIND_SV = {"ward": "avdelningens gräns", "personal": "personlig gräns", "scale_2": "skala 2"}


def limit_bands(
    vital: Vital, patient_id: uuid.UUID, *, personal: PersonalLimits, scale_2: bool
) -> list[LimitBand]:
    """The limits in force for this vital, as the engine's judge sets them (alerts.judge.KeyLimits: a
    physician's own limit replaces the ward's, scale 2 replaces scale 1's SpO2 limits)."""
    bands = []
    keys = sorted({r.rule for r in WARD_DEFAULT_RULES if r.vital is vital})
    for key in keys:
        rules = [r for r in WARD_DEFAULT_RULES if r.rule == key]
        limits = KeyLimits.for_rows(
            rules, [patient_id], personal=personal, spo2_scale_2={patient_id} if scale_2 else set()
        )
        for s, rule in enumerate(limits.rules):
            kind = "personal" if limits.own[s, 0] else "scale_2" if limits.scale_2[s, 0] else "ward"
            bands.append(LimitBand(key, rule.direction, rule.priority.label, float(limits.limit[s, 0]), kind))
    return bands


def personal_limits(patient_id: uuid.UUID, rows: Sequence[tuple]) -> PersonalLimits:
    """care.limits.LIMITS_IN_FORCE's rows as the judge takes them."""
    return {(patient_id, rule, Priority.parse(priority)): float(value) for _, rule, priority, value in rows}


# --- the 3-day weight rule -----------------------------------------------------------------------


def weight_rule_track(times: np.ndarray, values: np.ndarray, shown_from: float) -> list[tuple[float, float]]:
    """(epoch s, kg) for each weight at or after `shown_from`: its gain over the lowest weight of the 3
    days (plus slack) before it, by alerts.weight.weight_gain, the kernel of rule "weight_gain_3d".
    `times`/`values`: trustworthy weights, oldest first, from 3 days before `shown_from`."""
    shown = np.flatnonzero(times >= shown_from)
    if shown.size == 0:
        return []
    # One row per weight shown, holding every weight up to it (later ones masked): the kernel's newest
    # weight of row i is weight i, compared with the lowest of its own 3 days.
    rows = np.where(times[None, :] <= times[shown][:, None], values[None, :], np.nan)
    at = datetime.fromtimestamp(float(times[shown[-1]]), tz=UTC)
    gains = weight.weight_gain(rows, np.broadcast_to(times, rows.shape), now=at).gain
    return [(float(times[c]), float(g)) for c, g in zip(shown, gains, strict=True) if not math.isnan(g)]


# --- NEWS2 ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Newest:
    """One NEWS2 parameter's readings, oldest first (epoch s), of which the newest before a time counts."""

    times: np.ndarray
    values: np.ndarray

    def at(self, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The newest value and its time at or before each grid time (NaN / "" where none)."""
        index = np.searchsorted(self.times, grid, side="right") - 1
        has = index >= 0
        text = self.values.dtype.kind in "UO"
        if self.values.size == 0:
            values = np.full(grid.shape, "" if text else np.nan, dtype=str if text else float)
            return values, np.full(grid.shape, np.nan)
        picked = self.values[np.clip(index, 0, None)]
        return np.where(has, picked, "" if text else np.nan), np.where(
            has, self.times[np.clip(index, 0, None)], np.nan
        )


@dataclass(frozen=True, slots=True)
class News2Point:
    at: float  # epoch s
    partial_total: int
    total: int | None  # None: incomplete (a lower bound, never shown as a total)


def news2_track(
    grid: np.ndarray,
    *,
    resp_rate: Newest,
    spo2: Newest,
    systolic_bp: Newest,
    pulse: Newest,
    temperature: Newest,
    consciousness: Newest,
    on_oxygen: Newest,
    spo2_scale: int,
    windows: news2.FreshnessWindows | None = None,
) -> list[News2Point]:
    """NEWS2 at each grid time by alerts.news2.fresh_score, as the engine would have scored it then: the
    newest value of each parameter, counted only inside its freshness window.

    The kernel takes one `now`; each grid point is its own row, its readings' times shifted so that
    their age at that point is their age at the common `now` (age is all the freshness test uses)."""
    if grid.size == 0:
        return []
    ref = float(grid.max())
    shift = ref - grid

    def timed(newest: Newest) -> news2.Timed:
        value, at = newest.at(grid)
        return news2.Timed(value, at + shift)

    latest = news2.News2Latest(
        resp_rate=timed(resp_rate), spo2=timed(spo2), systolic_bp=timed(systolic_bp), pulse=timed(pulse),
        temperature=timed(temperature), consciousness=timed(consciousness), on_oxygen=timed(on_oxygen),
        spo2_scale=np.full(grid.shape, spo2_scale),
    )  # fmt: skip
    result = news2.fresh_score(latest, now=datetime.fromtimestamp(ref, tz=UTC), windows=windows)
    return [
        News2Point(
            float(t), int(result.partial_total[i]), None if result.incomplete[i] else int(result.total[i])
        )
        for i, t in enumerate(grid)
    ]
