"""The NEWS2 line on the patient record, computed with the alert engine's own kernel.

`alerts.news2.fresh_score` scores the latest value of each parameter that is still inside its
freshness window (alerts.news2.FreshnessWindows); a missing or stale parameter is never scored
0. An incomplete set is shown as a lower bound ("NEWS2 ≥ 3 (ofullständig: saknar AF, …)"),
never as a total.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from alerts.news2 import FreshnessWindows, News2Latest, News2Result, Risk, Timed, fresh_score
from dashboard.model import ACVPU_LABELS, News2Part, News2Summary
from hemma.vitals import VITALS, Vital

Reading = tuple[float, datetime]  # (value, measured at)

RISK_SV = {Risk.LOW: "låg", Risk.LOW_MEDIUM: "låg–medel", Risk.MEDIUM: "medel", Risk.HIGH: "hög"}
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


def _timed(reading: tuple[object, datetime] | None, *, text: bool = False) -> Timed:
    if reading is None:
        return Timed(np.array([""] if text else [np.nan]), np.array([np.nan]))
    value, at = reading
    return Timed(np.array([value if text else float(value)]), np.array([at.timestamp()]))  # type: ignore[arg-type]


def summarise(inputs: News2Inputs, now: datetime, windows: FreshnessWindows | None = None) -> News2Summary:
    windows = windows or FreshnessWindows()
    latest = News2Latest(
        resp_rate=_timed(inputs.resp_rate),
        spo2=_timed(inputs.spo2),
        systolic_bp=_timed(inputs.systolic_bp),
        pulse=_timed(inputs.pulse),
        temperature=_timed(inputs.temperature),
        consciousness=_timed(inputs.consciousness, text=True),
        on_oxygen=_timed(inputs.on_oxygen),
        spo2_scale=np.array([inputs.spo2_scale]),
    )
    result: News2Result = fresh_score(latest, now=now, windows=windows)
    one = result.one(0)
    parts = []
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
        risk=RISK_SV[one.risk] if one.risk is not None else None,
        risk_floor=RISK_SV[one.risk_floor],
        risk_key=risk.label,
        spo2_scale=inputs.spo2_scale,
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
