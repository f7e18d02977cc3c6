"""Per-vital threshold rules, evaluated with numpy over every patient in a batch at once.

Ward defaults follow the NEWS2 bands (RCP 2017, chart 1): a value that would score 3 on its
own raises a high-priority alert, one scoring 2 a medium one. Personal thresholds, trends,
NEWS2 aggregation and hysteresis arrive with the full engine (issue 4).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from alerts.model import AlertClear, AlertRequest, Priority
from hemma.vitals import VITALS, Vital

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

VITAL_CODES: dict[Vital, int] = {v: i for i, v in enumerate(Vital)}
_VITAL_BY_CODE = list(Vital)


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    rule: str  # alert key, shared by the severities of one direction: "spo2_low"
    vital: Vital
    direction: str  # "below" or "above"
    limit: float
    priority: Priority
    message: str


def _r(
    rule: str, vital: Vital, direction: str, limit: float, priority: Priority, message: str
) -> ThresholdRule:
    return ThresholdRule(rule, vital, direction, limit, priority, message)


H, M = Priority.HIGH, Priority.MEDIUM
WARD_DEFAULT_RULES: tuple[ThresholdRule, ...] = (
    _r("spo2_low", Vital.SPO2, "below", 92, H, "Syremättnad ≤ 91 %"),
    _r("spo2_low", Vital.SPO2, "below", 94, M, "Syremättnad 92–93 %"),
    _r("pulse_high", Vital.PULSE_RATE, "above", 130, H, "Puls ≥ 131/min"),
    _r("pulse_high", Vital.PULSE_RATE, "above", 110, M, "Puls 111–130/min"),
    _r("pulse_low", Vital.PULSE_RATE, "below", 41, H, "Puls ≤ 40/min"),
    _r("heart_rate_high", Vital.HEART_RATE, "above", 130, H, "Hjärtfrekvens ≥ 131/min"),
    _r("heart_rate_high", Vital.HEART_RATE, "above", 110, M, "Hjärtfrekvens 111–130/min"),
    _r("heart_rate_low", Vital.HEART_RATE, "below", 41, H, "Hjärtfrekvens ≤ 40/min"),
    _r("systolic_low", Vital.SYSTOLIC_BP, "below", 91, H, "Systoliskt blodtryck ≤ 90 mmHg"),
    _r("systolic_low", Vital.SYSTOLIC_BP, "below", 101, M, "Systoliskt blodtryck 91–100 mmHg"),
    _r("systolic_high", Vital.SYSTOLIC_BP, "above", 219, H, "Systoliskt blodtryck ≥ 220 mmHg"),
    _r("temperature_high", Vital.BODY_TEMPERATURE, "above", 39.05, M, "Temperatur ≥ 39,1 °C"),
    _r("temperature_low", Vital.BODY_TEMPERATURE, "below", 35.05, H, "Temperatur ≤ 35,0 °C"),
    _r("resp_rate_high", Vital.RESPIRATORY_RATE, "above", 24, H, "Andningsfrekvens ≥ 25/min"),
    _r("resp_rate_high", Vital.RESPIRATORY_RATE, "above", 20, M, "Andningsfrekvens 21–24/min"),
    _r("resp_rate_low", Vital.RESPIRATORY_RATE, "below", 9, H, "Andningsfrekvens ≤ 8/min"),
)


@dataclass(frozen=True, slots=True)
class ObservationArrays:
    """A batch of observations as parallel arrays (one element per observation)."""

    patient: np.ndarray  # int32 index into `patient_ids`
    vital: np.ndarray  # int16 code, see VITAL_CODES
    value: np.ndarray  # float64, canonical units
    time: np.ndarray  # int64 epoch microseconds (effective time)
    doubtful: np.ndarray  # bool: carries a quality flag from DOUBTFUL_QUALITY
    patient_ids: list[uuid.UUID]

    def __len__(self) -> int:
        return int(self.value.shape[0])


# A physician's limit for one patient, replacing the ward default of (rule key, priority).
PersonalLimits = dict[tuple[uuid.UUID, str, Priority], float]


def evaluate(
    obs: ObservationArrays,
    rules: tuple[ThresholdRule, ...] = WARD_DEFAULT_RULES,
    *,
    now: datetime,
    personal: PersonalLimits | None = None,
) -> tuple[list[AlertRequest], list[AlertClear]]:
    """Compare every trustworthy observation in the batch with the rules.

    Returns, per patient and rule key, the worst breach (newest among equals) as an alert request,
    and, where the newest trustworthy value is within limits, a clear. Judging every reading (not
    only the newest) makes the outcome independent of how readings happened to be batched: a
    breach followed by a normal value gives a request and a later clear, exactly as it would in
    two batches. Doubtful readings neither raise nor clear. `personal` limits replace the ward's
    for that patient, rule key and priority (a COPD patient's SpO2 target, say). `now` is unused by
    threshold rules but part of every rule's signature (trend and missing-data rules need it).
    """
    del now
    row_of = {pid: i for i, pid in enumerate(obs.patient_ids)}
    if len(obs) == 0:
        return [], []
    trusted = ~obs.doubtful
    requests: list[AlertRequest] = []
    clears: list[AlertClear] = []
    for key, key_rules in _rules_by_key(rules).items():
        of_vital = (obs.vital == VITAL_CODES[key_rules[0].vital]) & trusted
        candidates = np.flatnonzero(of_vital)
        if candidates.size == 0:
            continue
        value, patient, time = obs.value[candidates], obs.patient[candidates], obs.time[candidates]
        # Worst priority per observation over the severities of this key (0 = within limits).
        level = np.zeros(candidates.size, dtype=np.int8)
        limit = np.full(candidates.size, np.nan)
        own = np.zeros(candidates.size, dtype=bool)  # the breached limit is the patient's own
        for rule in key_rules:  # ordered most severe first
            rule_limit, rule_own = _limits(rule, len(obs.patient_ids), row_of, personal)
            lim = rule_limit[patient]
            breach = (level == 0) & (value < lim if rule.direction == "below" else value > lim)
            level[breach] = int(rule.priority)
            limit[breach] = lim[breach]
            own[breach] = rule_own[patient][breach]
        info = VITALS[key_rules[0].vital]
        messages = {int(r.priority): r.message for r in key_rules}
        below = key_rules[0].direction == "below"
        for i in _last_per_patient(patient, level, time, only=level > 0):
            side = "under" if below else "över"
            text = (
                f"{info.display} {side} personlig gräns {info.format(float(limit[i]))}"
                if own[i]
                else messages[int(level[i])]
            )
            requests.append(
                AlertRequest(
                    patient_id=obs.patient_ids[int(patient[i])],
                    rule=key,
                    vital=info.vital.value,
                    priority=Priority(int(level[i])),
                    message=f"{text}: {info.format(float(value[i]))}",
                    value=float(value[i]),
                    threshold=float(limit[i]),
                    observed_at=_from_micros(int(time[i])),
                )
            )
        newest = _last_per_patient(patient, np.zeros_like(level), time, only=np.ones(level.shape, dtype=bool))
        for i in newest[level[newest] == 0]:
            clears.append(AlertClear(obs.patient_ids[int(patient[i])], key, _from_micros(int(time[i]))))
    return requests, clears


def _limits(
    rule: ThresholdRule, rows: int, row_of: dict[uuid.UUID, int], personal: PersonalLimits | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per patient row: the limit of `rule` (personal where set) and whether it is personal."""
    limits = np.full(rows, rule.limit)
    own = np.zeros(rows, dtype=bool)
    for (patient_id, key, priority), value in (personal or {}).items():
        row = row_of.get(patient_id)
        if row is not None and key == rule.rule and priority == rule.priority:
            limits[row] = value
            own[row] = True
    return limits, own


def threshold_keys() -> dict[str, tuple[Vital, str, tuple[Priority, ...]]]:
    """The rule keys a personal limit may replace: key -> (vital, direction, priorities)."""
    return {
        key: (group[0].vital, group[0].direction, tuple(r.priority for r in group))
        for key, group in _rules_by_key(WARD_DEFAULT_RULES).items()
    }


def _last_per_patient(
    patient: np.ndarray, level: np.ndarray, time: np.ndarray, *, only: np.ndarray
) -> np.ndarray:
    """Per patient among `only`: the index with the highest level, newest among equals."""
    idx = np.flatnonzero(only)
    if idx.size == 0:
        return idx
    order = idx[np.lexsort((time[idx], level[idx], patient[idx]))]
    p = patient[order]
    last_of_run = np.ones(order.size, dtype=bool)
    last_of_run[:-1] = p[1:] != p[:-1]
    return np.asarray(order[last_of_run])


def _rules_by_key(rules: tuple[ThresholdRule, ...]) -> dict[str, list[ThresholdRule]]:
    grouped: dict[str, list[ThresholdRule]] = {}
    for rule in rules:
        grouped.setdefault(rule.rule, []).append(rule)
    for key, group in grouped.items():
        if len({(r.vital, r.direction) for r in group}) != 1:
            raise ValueError(f"rule key {key} mixes vitals or directions")
        group.sort(key=lambda r: r.priority, reverse=True)
    return grouped


def _from_micros(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)
