"""The patient app's charts (Mina värden): one value over two weeks as a small SVG, drawn on the server.

Hand-built, not a chart library: the app's Content-Security-Policy allows no inline `<style>` or
`<script>` (a chart from pygal carries both in its SVG, even with `js=[]`), and none of the libraries
shades a target band without stacking tricks. What is drawn is little: the patient's own band, a line
through the hourly points (dots when there are few), a few large axis labels in Swedish with the
decimal comma, and a title for screen readers. Colours and sizes are classes in patient.css.

Pure: points in, the geometry out (`Chart`); `patient_app/_values_chart.html` writes the SVG from it,
autoescaped like every other page.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from care.patient_today import MONTHS_SV
from care.patient_values import History
from dashboard.formatting import format_value

# viewBox units: at phone width one unit is about 0.85 CSS px, so labels of 20 read as 17 px and more.
WIDTH, HEIGHT = 360, 230
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 14, 46
FONT = 20
DOTS_UP_TO = 60  # more points than this: a line only
_MONTHS_SHORT = tuple(m[:3] for m in MONTHS_SV)


def nice_step(span: float, ticks: int = 4) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about `ticks` labels over `span`."""
    raw = max(span, 1e-9) / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def y_range(
    values: Sequence[float], decimals: int, edges: Sequence[float] = ()
) -> tuple[float, float, float]:
    """(low, high, step): the data with some air, at least a few display steps tall, and a band edge
    when it is near the data (so the patient sees the edge; a far one would squash the line flat)."""
    lo, hi = min(values), max(values)
    least = 4 * 10**-decimals if decimals else 4.0
    reach = max(hi - lo, least)
    for edge in edges:
        if lo - reach <= edge <= hi + reach:
            lo, hi = min(lo, edge), max(hi, edge)
    if hi - lo < least:
        mid = (hi + lo) / 2
        lo, hi = mid - least / 2, mid + least / 2
    step = nice_step(hi - lo)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step, step


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str  # SVG text-anchor


@dataclass(frozen=True, slots=True)
class Chart:
    """Where everything goes, in viewBox units (WIDTH x HEIGHT)."""

    label: str  # the Swedish text of role="img": what the chart shows, and the neutral sentence
    band: tuple[float, float] | None  # (top y, height) of the patient's own range
    grid: tuple[Label, ...]  # value labels, one per horizontal grid line at their y
    days: tuple[Label, ...]  # dates under the axis
    line: str  # polyline points "x,y x,y"; "" for a single point
    dots: tuple[tuple[float, float], ...]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    axis_y: int = HEIGHT - BOTTOM
    font: int = FONT


def chart_of(history: History, *, now: datetime, zone: ZoneInfo, days: int) -> Chart:
    """One value's last `days` days: its band, grid, dates, line and dots."""
    points = history.points
    start, end = now - timedelta(days=days), now
    band_edges = [e for e in (history.band.low, history.band.high) if e is not None] if history.band else []
    lo, hi, step = y_range([p.value for p in points], history.decimals, band_edges)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at: datetime) -> float:
        return round(LEFT + plot_w * min(max((at - start) / (end - start), 0.0), 1.0), 1)

    def y(value: float) -> float:
        return round(TOP + plot_h * (1 - (min(max(value, lo), hi) - lo) / (hi - lo)), 1)

    band = None
    if history.band is not None:
        top = y(history.band.high) if history.band.high is not None else TOP
        bottom = y(history.band.low) if history.band.low is not None else TOP + plot_h
        band = (top, round(bottom - top, 1)) if bottom - top > 0.5 else None
    decimals = 0 if step >= 1 else history.decimals
    count = round((hi - lo) / step)
    grid = tuple(
        Label(LEFT - 8, y(lo + i * step), format_value(lo + i * step, decimals), "end")
        for i in range(count + 1)
    )
    coords = [(x(p.at), y(p.value)) for p in points]
    return Chart(
        label=f"{history.name} de senaste {days} dagarna. {history.summary}",
        band=band,
        grid=grid,
        days=_day_labels(start, end, zone, x),
        line=" ".join(f"{cx},{cy}" for cx, cy in coords) if len(coords) > 1 else "",
        dots=tuple(coords) if len(coords) <= DOTS_UP_TO else (),
    )


def _day_labels(
    start: datetime, end: datetime, zone: ZoneInfo, place: Callable[[datetime], float]
) -> tuple[Label, ...]:
    """Three dates under the axis (the start, the middle, today), as '23 nov'."""
    labels = []
    for i, at in enumerate((start, start + (end - start) / 2, end)):
        local = at.astimezone(zone)
        text = "idag" if i == 2 else f"{local.day} {_MONTHS_SHORT[local.month - 1]}"
        labels.append(Label(place(at), HEIGHT - 12, text, ("start", "middle", "end")[i]))
    return tuple(labels)
