"""`alerts.registry`: one list of rules covers every family the engine raises, and every rule is pure.

Adding a rule is one kernel module and one registry entry: these tests hold each entry to the protocol
(`alerts.rule`): its request is one the reads module answers, its `evaluate` takes inputs and `now`
only (no connection), returns the same for the same inputs without touching them, and raises only
keys of its own family, worded by `alerts.messages_sv`.
"""

from __future__ import annotations

import dataclasses
import inspect
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, get_type_hints

import numpy as np
import pytest

from alerts import inputs as ai
from alerts import messages_sv, news2
from alerts.model import Priority
from alerts.registry import RULES
from alerts.rule import InputRequest, Rule, RuleFamily, Scope, family_of
from alerts.symptoms import SymptomsExpiryRule
from alerts.thresholds import WARD_DEFAULT_RULES, threshold_keys
from alerts.trends import RESTING_PULSE_RISING, SPO2_FALLING, SYSTOLIC_FALLING, Slope
from core.vitals import Vital
from ingest.engine import AlertEngine
from ingest.rule_inputs import _READERS

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
NOW_S = NOW.timestamp()
H = 3600.0
A, B = uuid.UUID(int=1), uuid.UUID(int=2)
SCOPE = Scope(
    touched={v: frozenset({A, B}) for v in Vital},
    entered=frozenset({A}),
    in_care=(A, B),
    answered={"hemma-hf-daily": frozenset({A})},
)  # every rule has something to do


def _row(*values: float) -> np.ndarray:
    return np.array(values, float)


def _inputs_for(request: InputRequest[Any]) -> object:
    """Inputs that make each rule fire for one patient (and stay quiet or clear for the other)."""
    match request:
        case ai.ThresholdRequest(by_vital=by_vital):
            abnormal = {
                Vital.SPO2: 85.0, Vital.PULSE_RATE: 140.0, Vital.HEART_RATE: 140.0, Vital.SYSTOLIC_BP: 85.0,
                Vital.BODY_TEMPERATURE: 39.5, Vital.RESPIRATORY_RATE: 28.0,
            }  # fmt: skip
            windows = tuple(
                ai.RecentReadings(
                    vital,
                    who,
                    values=np.array([[abnormal[vital]], [np.nan]]),
                    times=np.array([[NOW_S - 60], [np.nan]]),
                    doubtful=np.zeros((2, 1), bool),
                    continuous=np.zeros(2, bool),
                    live={},
                )
                for vital, who, _ in by_vital
            )
            return ai.ThresholdInputs(windows, personal={}, spo2_scale_2=frozenset())
        case ai.News2Request(patients=patients):
            at = _row(NOW_S - 60, NOW_S - 60)
            return ai.News2Inputs(
                patients,
                news2.News2Latest(
                    resp_rate=news2.Timed(_row(26, 16), at), spo2=news2.Timed(_row(90, 97), at),
                    systolic_bp=news2.Timed(_row(95, 125), at), pulse=news2.Timed(_row(125, 70), at),
                    temperature=news2.Timed(_row(38.5, 37), at),
                    consciousness=news2.Timed(np.array(["V", "A"], dtype=object), at),
                    on_oxygen=news2.Timed(_row(1, 0), at), spo2_scale=np.array([1, 1]),
                ),
            )  # fmt: skip
        case ai.RecentWeightsRequest(patients=patients) | ai.WeightHistoryRequest(patients=patients):
            return _weights(patients)
        case ai.WeightGainRequest(patients=patients):
            return ai.WeightGainInputs(
                _weights(patients), reported_at=_row(NOW_S - H, np.nan), reported=(("breathless-worse",), ())
            )
        case ai.SymptomReportsRequest():
            return ai.SymptomReports(
                (A, B), ("hemma-hf-daily", "hemma-wellbeing"), authored_at=_row(NOW_S - H, NOW_S - 40 * H),
                codes=("dizzy", "feeling-worse"), flag=np.array([[0], [1]]), priority=np.array([[1], [2]]),
                weights=_weights((A, B)), weight_row=np.array([0, 1]),
            )  # fmt: skip
        case ai.HourlyMeansRequest(patients=patients):
            hours = np.arange(96.0)
            pulse = np.vstack([np.where(hours < 72, 70.0, 85.0), np.full(96, 70.0)])
            return ai.Series(patients, pulse, np.vstack([NOW_S - (96 - hours) * H + 1800] * 2))
        case ai.TrendSlopeRequest():
            return ai.TrendSlopes(
                (A, B),
                Slope(per_hour=_row(-5, 0), change=_row(-30, 0), n=np.array([20, 20]), span_h=_row(6, 6)),
                observed_at=_row(NOW_S, NOW_S),
            )  # fmt: skip
        case ai.PlannedVitalsRequest():
            return (
                ai.PlannedVital(
                    Vital.SPO2, (A, B), last_trusted_at=_row(NOW_S - 9 * H, NOW_S - H),
                    every_s=_row(4 * H, 4 * H), plan_started_at=_row(NOW_S - 20 * H, NOW_S - 20 * H),
                ),
            )  # fmt: skip
        case ai.KitStatusRequest():
            return ai.KitStatus(
                (A, B), ("offline", "online"), status_at=_row(NOW_S - 2 * H, NOW_S), registered_at=_row(0, 0),
                unconfirmed_since=_row(np.nan, NOW_S - 2 * H), unconfirmed_measurements=_row(np.nan, 12),
            )  # fmt: skip
        case ai.KitConfigRequest():
            return ai.KitConfigStates(
                (A, B), ("online", "online"), version=_row(3, 3), issued_at=_row(NOW_S - H, NOW_S - H),
                applied_version=_row(2, 3),
            )  # fmt: skip
        case ai.ContactRequestsRequest():
            return ai.ContactRequests(
                (A, B), oldest_open_at=_row(NOW_S - 12 * 60, np.nan), source=("button", ""),
                after_s=_row(5 * 60, 5 * 60),
            )  # fmt: skip
        case ai.DeviceStatesRequest():
            return ai.DeviceStates(
                (A, B), ("dev-a", "dev-b"), last_seen_at=_row(NOW_S - 30 * H, NOW_S),
                battery_percent=_row(8, 80), battery_at=_row(NOW_S, NOW_S),
                clock_not_set=np.array([True, False]), clock_checked_at=_row(NOW_S, NOW_S),
            )  # fmt: skip
    raise AssertionError(f"no example inputs for {type(request).__name__}: add them with the new request")


def _weights(patients: tuple[uuid.UUID, ...]) -> ai.Series:
    days = np.arange(12.0)
    kg = np.vstack([70 + np.where(days < 9, 0.1 * (days % 2), 1.2 * (days - 8)), np.full(12, 80.0)])
    return ai.Series(patients, kg, np.vstack([NOW_S - (11 - days) * 24 * H] * 2))


def _read_only(value: object) -> None:
    """Freeze every array inside `value`, so a rule that writes to its inputs fails loudly."""
    if isinstance(value, np.ndarray):
        value.setflags(write=False)
    elif dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            _read_only(getattr(value, f.name))
    elif isinstance(value, tuple):
        for item in value:
            _read_only(item)


def test_the_registry_covers_every_family_the_engine_raises() -> None:
    assert AlertEngine().rules == RULES
    engine_families = set(RuleFamily) - {RuleFamily.NOTIFICATION_FAILING}  # paging's, raised by the escalator
    assert {rule.family for rule in RULES} == engine_families
    assert all(family_of(key) is RuleFamily.THRESHOLD for key in threshold_keys())
    assert {family_of(r.rule) for r in (SPO2_FALLING, SYSTOLIC_FALLING, RESTING_PULSE_RISING)} == {
        RuleFamily.TREND
    }


def test_rule_keys_and_families_round_trip() -> None:
    assert RuleFamily.MISSING.key("spo2") == "missing:spo2"
    assert RuleFamily.BATTERY_LOW.key("AA:BB") == "battery_low:AA:BB"  # a device id may hold colons
    assert family_of("battery_low:AA:BB") is RuleFamily.BATTERY_LOW
    assert RuleFamily.GATEWAY_OFFLINE.prefix == RuleFamily.GATEWAY_OFFLINE.key() == "gateway_offline"
    assert RuleFamily.NOTIFICATION_FAILING.prefix == "notification_failing:"
    for bad in ("missing", "gateway_offline:x", "spo2_lower", "threshold"):
        with pytest.raises(ValueError, match="no rule family"):
            family_of(bad)
    with pytest.raises(ValueError, match="needs"):
        RuleFamily.DEVICE_SILENT.key()
    with pytest.raises(ValueError, match="share no prefix"):
        _ = RuleFamily.THRESHOLD.prefix


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.family.value}-{type(r).__name__}")
def test_every_rule_is_pure_and_raises_only_its_own_family(rule: Rule[Any]) -> None:
    parameters = list(inspect.signature(rule.evaluate).parameters)
    assert parameters == ["inputs", "now"]  # no connection, no clock: everything arrives as inputs
    hints = get_type_hints(type(rule).evaluate)
    assert hints["inputs"].__module__ in ("alerts.inputs", "builtins")
    request = rule.request(SCOPE)
    assert isinstance(request, InputRequest)
    assert type(request) in _READERS or isinstance(request, ai.TrendSlopeRequest)  # the engine's windows
    inputs = _inputs_for(request)
    _read_only(inputs)
    requests, clears = rule.evaluate(inputs, NOW)
    assert (requests, clears) == rule.evaluate(inputs, NOW)  # same inputs, same answer
    if isinstance(rule, SymptomsExpiryRule):  # only ends alerts: never raises one from an old answer
        assert clears and not requests, "the example inputs should make the rule end one and raise none"
    else:
        assert requests, "the example inputs should make the rule fire"
    assert {family_of(r.rule) for r in requests + clears} == {rule.family}  # type: ignore[operator]
    assert all(r.message for r in requests)


def test_every_ward_default_and_trend_has_its_text() -> None:
    assert set(messages_sv.WARD_THRESHOLD_TEXT) == {(r.rule, r.priority) for r in WARD_DEFAULT_RULES}
    assert set(messages_sv.TREND_TEXT) == {
        r.rule for r in (SPO2_FALLING, SYSTOLIC_FALLING, RESTING_PULSE_RISING)
    }
    assert set(messages_sv.SCALE_2_TEXT) == {Priority.HIGH, Priority.MEDIUM}


def test_a_rule_with_a_cadence_runs_at_its_own_pace() -> None:
    engine = AlertEngine()
    rising = next(i for i, r in enumerate(RULES) if r.every is not None)
    every = RULES[rising].every
    assert every == timedelta(minutes=15)
    assert engine._rule_due(rising, RULES[rising], NOW)
    assert not engine._rule_due(rising, RULES[rising], NOW + every - timedelta(seconds=1))
    assert engine._rule_due(rising, RULES[rising], NOW + every)
