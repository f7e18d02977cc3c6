"""The NEWS2 line on the patient record, computed with the alert engine's own kernel.

`alerts.news2.fresh_score` scores the latest value of each parameter that is still inside its
freshness window (alerts.news2.FreshnessWindows); a missing or stale parameter is never scored
0. An incomplete set is shown as a lower bound ("NEWS2 ≥ 3 (ofullständig: saknar AF, …)"),
never as a total.

The patient record (one patient) and the ward overview's chips (every patient of the ward) both go
through `summarise_many`, one kernel call for all of them; `dashboard.queries.fetch_news2` reads the
inputs for all of them in two queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from alerts.messages_sv import NEWS2_RISK_SV
from alerts.news2 import FreshnessWindows, News2Latest, News2One, News2Result, Timed, fresh_score
from core.vitals import VITALS, Vital
from dashboard.model import ACVPU_LABELS, iso_or_none

Reading = tuple[float, datetime]  # (value, measured at)

# News2Result.PARAMETERS -> (label staff read, News2Latest / FreshnessWindows field)
PARAMETERS = {
    "resp_rate": ("AF", "resp_rate"),
    "spo2": ("SpO₂", "spo2"),
    "air_or_oxygen": ("luft/syrgas", "on_oxygen"),
    "systolic_bp": ("systoliskt BT", "systolic_bp"),
    "pulse": ("puls", "pulse"),
    "consciousness": ("medvetandegrad", "consciousness"),
    "temperature": ("temp", "temperature"),
}
_VITAL_OF = {
    "resp_rate": Vital.RESPIRATORY_RATE,
    "spo2": Vital.SPO2,
    "systolic_bp": Vital.SYSTOLIC_BP,
    "pulse": Vital.PULSE_RATE,
    "temperature": Vital.BODY_TEMPERATURE,
}


@dataclass(frozen=True, slots=True)
class News2Inputs:
    """The newest value and time of every parameter (None = never measured)."""

    resp_rate: Reading | None
    spo2: Reading | None
    systolic_bp: Reading | None
    pulse: Reading | None  # pulse_rate or heart_rate, whichever is newer
    temperature: Reading | None
    consciousness: tuple[str, datetime] | None  # ACVPU letter
    on_oxygen: tuple[bool, datetime] | None
    spo2_scale: int = 1


def _timed(readings: Sequence[tuple[object, datetime] | None], *, text: bool = False) -> Timed:
    """One parameter's newest value and time for every patient, as the kernel takes them."""
    if text:
        values = np.array(["" if r is None else str(r[0]) for r in readings], dtype=str)
    else:
        values = np.array([np.nan if r is None else float(r[0]) for r in readings], dtype=float)  # type: ignore[arg-type]
    times = np.array([np.nan if r is None else r[1].timestamp() for r in readings], dtype=float)
    return Timed(values, times)


def summarise(inputs: News2Inputs, now: datetime, windows: FreshnessWindows | None = None) -> News2Summary:
    """One patient's NEWS2 line (the patient record's; `summarise_many` of one)."""
    return summarise_many([inputs], now, windows)[0]


def summarise_many(
    inputs: Sequence[News2Inputs], now: datetime, windows: FreshnessWindows | None = None
) -> list[News2Summary]:
    """Every patient's NEWS2 line in one call of the engine's kernel, in the order of `inputs`."""
    if not inputs:
        return []
    windows = windows or FreshnessWindows()
    latest = News2Latest(
        resp_rate=_timed([i.resp_rate for i in inputs]),
        spo2=_timed([i.spo2 for i in inputs]),
        systolic_bp=_timed([i.systolic_bp for i in inputs]),
        pulse=_timed([i.pulse for i in inputs]),
        temperature=_timed([i.temperature for i in inputs]),
        consciousness=_timed([i.consciousness for i in inputs], text=True),
        on_oxygen=_timed([i.on_oxygen for i in inputs]),
        spo2_scale=np.array([i.spo2_scale for i in inputs]),
    )
    result: News2Result = fresh_score(latest, now=now, windows=windows)
    return [_summary(one, result.one(index), now, windows) for index, one in enumerate(inputs)]


def _summary(inputs: News2Inputs, one: News2One, now: datetime, windows: FreshnessWindows) -> News2Summary:
    parts = []
    fresh_until: datetime | None = None
    for index, (key, (label, field)) in enumerate(PARAMETERS.items()):
        reading = getattr(inputs, field)
        score = one.scores[index]
        if reading is None:
            status = "missing"
        elif now - reading[1] > getattr(windows, field):
            status = "stale"
        elif score is None:
            status = "unscorable"  # scale 2 at ≥ 93 % without air/oxygen
        else:
            status = "ok"
        if status in ("ok", "unscorable"):
            # The score changes when this value leaves its window.
            expires = reading[1] + getattr(windows, field)
            fresh_until = expires if fresh_until is None else min(fresh_until, expires)
        parts.append(
            News2Part(
                key=key,
                label=label,
                value_text=_value_text(key, reading),
                at=reading[1] if reading else None,
                score=score if status == "ok" else None,
                status=status,
            )
        )
    risk = one.risk if one.risk is not None else one.risk_floor
    return News2Summary(
        parts=tuple(parts),
        partial_total=one.partial_total,
        total=one.total,
        risk=NEWS2_RISK_SV[one.risk.label] if one.risk is not None else None,
        risk_floor=NEWS2_RISK_SV[one.risk_floor.label],
        risk_key=risk.label,
        spo2_scale=inputs.spo2_scale,
        risk_level=int(risk),
        fresh_until=fresh_until,
    )


def _value_text(key: str, reading: tuple[object, datetime] | None) -> str:
    if reading is None:
        return "–"
    value = reading[0]
    if key == "air_or_oxygen":
        return "Syrgas" if value else "Luft"
    if key == "consciousness":
        return f"{value} – {ACVPU_LABELS.get(str(value), '')}"
    return VITALS[_VITAL_OF[key]].format(float(value))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class News2Part:
    """One NEWS2 parameter: its latest value, when, and its score (None when missing, stale or unscorable)."""

    key: str  # News2Result.PARAMETERS name
    label: str
    value_text: str
    at: datetime | None
    score: int | None
    status: str  # 'ok', 'missing', 'stale', 'unscorable'

    @property
    def status_text(self) -> str:
        return {
            "ok": "",
            "missing": "saknas",
            "stale": "inaktuellt",
            "unscorable": "kan inte poängsättas utan uppgift om luft/syrgas",
        }[self.status]


@dataclass(frozen=True, slots=True)
class News2Summary:
    """NEWS2 on the values fresh enough to count. An incomplete score is never shown as a total."""

    parts: tuple[News2Part, ...]
    partial_total: int
    total: int | None  # None when incomplete
    risk: str | None  # Swedish risk label, None when incomplete
    risk_floor: str  # the risk the present parameters already guarantee
    risk_key: str  # 'low', 'low-medium', 'medium', 'high' (complete) or the floor's (incomplete)
    spo2_scale: int
    risk_level: int = 0  # alerts.news2.Risk of risk_key: 0 low … 3 high
    fresh_until: datetime | None = None  # when the first counted value leaves its window (the score changes)

    @property
    def complete(self) -> bool:
        return self.total is not None

    @property
    def has_values(self) -> bool:
        """Some parameter is fresh enough to count (else nothing can be said, not even a lower bound)."""
        return any(p.status not in ("missing", "stale") for p in self.parts)

    @property
    def chip_text(self) -> str:
        """The ward overview's chip: 'NEWS2 3', 'NEWS2 ≥ 3' (incomplete), or a dash (nothing to score)."""
        if self.complete:
            return f"NEWS2 {self.total}"
        return f"NEWS2 ≥ {self.partial_total}" if self.has_values else "NEWS2 –"

    @property
    def chip_marker(self) -> str | None:
        """What the chip says beside the number when it is not a total; None for a complete score."""
        if self.complete:
            return None
        return "ofullständig" if self.has_values else "inga värden"

    @property
    def band(self) -> str:
        """The chip's colour: the risk band of a complete score, or the band an incomplete one already
        guarantees; an incomplete set whose present values say only 'low' is 'unknown' (grey), since
        the missing values could raise it."""
        if self.complete or self.risk_level > 0:
            return self.risk_key
        return "unknown"

    @property
    def urgency(self) -> int:
        """Higher sorts first among patients otherwise equal: the risk band, then the (partial) total."""
        return self.risk_level * 32 + self.partial_total

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.chip_text,
            "marker": self.chip_marker,
            "title": self.headline,
            "band": self.band,
            "complete": self.complete,
            "total": self.total,
            "partial_total": self.partial_total,
            "risk": self.risk_key,
            "urgency": self.urgency,
            "fresh_until": iso_or_none(self.fresh_until),
        }

    @property
    def missing(self) -> tuple[News2Part, ...]:
        return tuple(p for p in self.parts if p.status != "ok")

    @property
    def headline(self) -> str:
        """'NEWS2 5 (medel risk)' or 'NEWS2 ≥ 3 (ofullständig: saknar AF, medvetandegrad)'."""
        if self.complete:
            return f"NEWS2 {self.total} ({self.risk} risk)"
        if all(p.status in ("missing", "stale") for p in self.parts):
            return "NEWS2 kan inte beräknas (inga aktuella värden)"
        absent = [p.label for p in self.missing if p.status == "missing"]
        stale = [p.label for p in self.missing if p.status == "stale"]
        unscorable = [p.label for p in self.missing if p.status == "unscorable"]
        reasons = []
        if absent:
            reasons.append("saknar " + ", ".join(absent))
        if stale:
            reasons.append("inaktuellt " + ", ".join(stale))
        if unscorable:
            reasons.append("kan inte poängsätta " + ", ".join(unscorable))
        return f"NEWS2 ≥ {self.partial_total} (ofullständig: {'; '.join(reasons)})"
