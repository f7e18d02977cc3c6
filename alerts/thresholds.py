"""Per-vital threshold rules, evaluated with numpy over every patient in a batch at once.

Ward defaults follow the NEWS2 bands (RCP 2017, chart 1): a value that would score 3 on its
own raises a high-priority alert, one scoring 2 a medium one. `alerts.judge` applies them over
each patient's recent readings, with personal limits, persistence and hysteresis.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from alerts.model import Priority
from core.vitals import Vital

# Quality flags that make a reading doubtful: such a reading never raises a physiological alarm alone.
DOUBTFUL_QUALITY = frozenset(
    {
        "cuff_loose",
        "body_movement",
        "improper_position",
        "sensor_displaced",
        "low_perfusion",
        "signal_questionable",
        "measurement_ongoing",
        "early_estimate",
    }
)


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    rule: str  # alert key, shared by the severities of one direction: "spo2_low"
    vital: Vital
    direction: str  # "below" or "above"
    limit: float
    priority: Priority


def _r(rule: str, vital: Vital, direction: str, limit: float, priority: Priority) -> ThresholdRule:
    return ThresholdRule(rule, vital, direction, limit, priority)


H, M = Priority.HIGH, Priority.MEDIUM
WARD_DEFAULT_RULES: tuple[ThresholdRule, ...] = (
    _r("spo2_low", Vital.SPO2, "below", 92, H),
    _r("spo2_low", Vital.SPO2, "below", 94, M),
    _r("pulse_high", Vital.PULSE_RATE, "above", 130, H),
    _r("pulse_high", Vital.PULSE_RATE, "above", 110, M),
    _r("pulse_low", Vital.PULSE_RATE, "below", 41, H),
    _r("heart_rate_high", Vital.HEART_RATE, "above", 130, H),
    _r("heart_rate_high", Vital.HEART_RATE, "above", 110, M),
    _r("heart_rate_low", Vital.HEART_RATE, "below", 41, H),
    _r("systolic_low", Vital.SYSTOLIC_BP, "below", 91, H),
    _r("systolic_low", Vital.SYSTOLIC_BP, "below", 101, M),
    _r("systolic_high", Vital.SYSTOLIC_BP, "above", 219, H),
    _r("temperature_high", Vital.BODY_TEMPERATURE, "above", 39.05, M),
    _r("temperature_low", Vital.BODY_TEMPERATURE, "below", 35.05, H),
    _r("resp_rate_high", Vital.RESPIRATORY_RATE, "above", 24, H),
    _r("resp_rate_high", Vital.RESPIRATORY_RATE, "above", 20, M),
    _r("resp_rate_low", Vital.RESPIRATORY_RATE, "below", 9, H),
)


# A physician's limit for one patient, replacing the ward default of (rule key, priority).
PersonalLimits = dict[tuple[uuid.UUID, str, Priority], float]


def threshold_keys() -> dict[str, tuple[Vital, str, tuple[Priority, ...]]]:
    """The rule keys a personal limit may replace: key -> (vital, direction, priorities)."""
    return {
        key: (group[0].vital, group[0].direction, tuple(r.priority for r in group))
        for key, group in _rules_by_key(WARD_DEFAULT_RULES).items()
    }


def _rules_by_key(rules: tuple[ThresholdRule, ...]) -> dict[str, list[ThresholdRule]]:
    grouped: dict[str, list[ThresholdRule]] = {}
    for rule in rules:
        grouped.setdefault(rule.rule, []).append(rule)
    for key, group in grouped.items():
        if len({(r.vital, r.direction) for r in group}) != 1:
            raise ValueError(f"rule key {key} mixes vitals or directions")
        group.sort(key=lambda r: r.priority, reverse=True)
    return grouped
