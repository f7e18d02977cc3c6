"""What a rule found, as facts: values, limits, counts. The words are `alerts.messages_sv`'s job.

Kernels fill one of these per alert request; `alerts.messages_sv.render` turns it into the text
staff read. Plain numbers and names only (no numpy scalars), so a fact compares and prints as a value.
Times are seconds (ages, spans) or hours where the rule speaks in hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from alerts.model import Priority
from core.vitals import Vital


class LimitKind(Enum):
    """Whose limit a threshold breach is measured against."""

    WARD = "ward"  # the ward default (alerts.thresholds)
    PERSONAL = "personal"  # a physician's limit for this patient (personal_thresholds)
    SCALE_2 = "scale_2"  # the SpO2 scale-2 default of a patient ordered on NEWS2 scale 2


@dataclass(frozen=True, slots=True)
class ThresholdBreach:
    rule: str  # the threshold key, e.g. "spo2_low"
    priority: Priority  # the severity whose limit is shown
    vital: Vital
    direction: str  # "below" or "above"
    limit: float
    limit_kind: LimitKind
    value: float  # the newest trustworthy reading
    beyond: bool  # False: back inside, held by hysteresis


@dataclass(frozen=True, slots=True)
class News2Risk:
    total: int  # the partial total when incomplete
    incomplete: bool
    risk: str  # alerts.news2.RISK_LABELS: "low-medium", "medium", "high"


@dataclass(frozen=True, slots=True)
class WeightGain3d:
    gain_kg: float
    limit_kg: float
    # Symptom flags the patient reported with the gain (alerts.weight.weight_gain_with_breathlessness:
    # the combined rule, one high alert carrying both facts); empty for the weight alone.
    reported: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WeightAboveBaseline:
    excess_kg: float
    limit_kg: float


@dataclass(frozen=True, slots=True)
class TrendSlope:
    rule: str  # "trend:spo2_falling"
    vital: Vital
    change: float  # fitted change across the samples' span (negative: falling)
    span_h: float
    limit_change: float
    window_h: float


@dataclass(frozen=True, slots=True)
class TrendRise:
    rule: str  # "trend:resting_pulse_rising"
    vital: Vital
    rise: float
    reference_days: int


@dataclass(frozen=True, slots=True)
class MissingVital:
    vital: Vital
    never: bool  # no trustworthy reading since the plan started
    age_s: float
    every_s: float


@dataclass(frozen=True, slots=True)
class DeviceSilent:
    device: str
    silent_s: float


@dataclass(frozen=True, slots=True)
class GatewayOffline:
    offline_s: float


@dataclass(frozen=True, slots=True)
class ReceiptsOverdue:
    waited_s: float
    measurements: float | None  # None: the kit did not say how many


@dataclass(frozen=True, slots=True)
class BatteryLow:
    device: str
    percent: float


@dataclass(frozen=True, slots=True)
class ClockNotSet:
    device: str


@dataclass(frozen=True, slots=True)
class ConfigNotApplied:
    version: int  # the kit's current configuration version
    applied: int | None  # the version the kit reports (None: it has applied none)
    waited_s: float  # since the current version was issued


@dataclass(frozen=True, slots=True)
class ContactRequestOpen:
    waited_s: float  # since ingest received the oldest request nobody has taken
    source: str  # "button"


@dataclass(frozen=True, slots=True)
class SymptomsReported:
    questionnaire: str  # its id, e.g. "hemma-hf-daily"
    symptoms: tuple[str, ...]  # the flag codes of the newest answer, in the questionnaire's order


Facts = (
    ThresholdBreach | News2Risk | WeightGain3d | WeightAboveBaseline | TrendSlope | TrendRise | MissingVital
    | DeviceSilent | GatewayOffline | ReceiptsOverdue | BatteryLow | ClockNotSet | ConfigNotApplied
    | ContactRequestOpen | SymptomsReported
)  # fmt: skip
