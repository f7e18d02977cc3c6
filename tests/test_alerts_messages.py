"""Alert texts: every rule family's stored text, byte for byte as before the texts left the kernels.

The expected strings were recorded from the kernels that still wrote their own text (commit 2bf3acf);
the kernels now return facts and `alerts.messages_sv` renders them. Each case drives the public kernel
output function, so a change in the facts a kernel hands over shows here too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from alerts import judge, missing, news2, trends, weight
from alerts import persistence as ps
from alerts.model import Priority, RuleOutput
from alerts.thresholds import WARD_DEFAULT_RULES
from core.vitals import Vital

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
P = [uuid.UUID(int=i + 1) for i in range(8)]


def _thresholds(
    key: str, values: list[float], *, live: int = 0, personal: dict[Priority, float] | None = None,
    scale_2: bool = False,
) -> RuleOutput:  # fmt: skip
    rules = [r for r in WARD_DEFAULT_RULES if r.rule == key]
    ids = P[: len(values)]
    mine = {(ids[0], key, priority): limit for priority, limit in (personal or {}).items()}
    scale_2_ids = set(ids) if scale_2 else set()
    limits = judge.KeyLimits.for_rows(rules, ids, personal=mine, spo2_scale_2=scale_2_ids)
    live_priority = np.full(len(ids), live, np.int8)
    verdict = judge.judge(
        limits, np.array(values)[:, None], np.full((len(ids), 1), NOW.timestamp() - 60),
        np.zeros((len(ids), 1), bool), live_priority=live_priority, now=NOW,
        continuous=np.zeros(len(ids), bool),
    )  # fmt: skip
    return judge.judgement_output(limits, verdict, ids, live_priority=live_priority)


def _persistence() -> RuleOutput:
    rule = next(r for r in WARD_DEFAULT_RULES if r.rule == "temperature_high")
    return ps.threshold_output(
        rule, P[:1], was_active=np.zeros(1, bool), active=np.ones(1, bool), value=np.array([39.4]),
        measured_at=np.array([NOW.timestamp()]), now=NOW,
    )  # fmt: skip


def _news2() -> RuleOutput:
    n = 4
    result = news2.score(
        np.array([26.0, 22.0, np.nan, 22.0]), np.array([90.0, 95.0, 91.0, 93.0]),
        np.array([95.0, 120.0, 120.0, 120.0]), np.array([120.0, 80.0, 80.0, 95.0]),
        np.array([38.5, 37.0, 37.0, 37.0]), np.array(["V", "A", "A", "A"]), np.array([1.0, 0.0, 0.0, 0.0]),
        np.ones(n, int),
    )  # fmt: skip
    return news2.news2_requests(result, P[:n], now=NOW)


def _weights() -> RuleOutput:
    day = 86400.0
    t0 = NOW.timestamp() - 3 * day
    gain = weight.weight_gain(
        np.array([[70.3, 71.0, 72.44], [80.0, 80.5, 82.06]]), np.array([[t0, t0 + day, t0 + 2 * day]] * 2),
        now=NOW,
    )  # fmt: skip
    out = weight.weight_gain_output(gain, P[:2], now=NOW)
    chart = weight.BaselineChart.empty(1)
    start = NOW.timestamp() - 20 * day
    for k, kg in enumerate([70.0, 70.4, 69.8, 70.2, 70.1, 69.9, 70.3, 70.0, 71.5, 72.5, 73.6, 74.2]):
        chart = weight.update_baseline(chart, np.array([kg]), np.array([start + k * day]))
    more = weight.baseline_output(chart, P[2:3], now=NOW, observed_at=np.array([NOW.timestamp()]))
    return out[0] + more[0], out[1] + more[1]


def _trends() -> RuleOutput:
    hours = np.arange(0, 13, 1.0)
    values = np.vstack([140 - 2.5 * hours, 97 - 0.6 * hours])
    times = NOW.timestamp() - (12 - hours) * 3600
    systolic = trends.window_slope(values[:1], times[None], now=NOW, window=trends.SYSTOLIC_FALLING.window)
    out = trends.slope_output(trends.SYSTOLIC_FALLING, systolic, P[:1], now=NOW, observed_at=times[-1:])
    spo2 = trends.window_slope(values[1:], times[None], now=NOW, window=trends.SPO2_FALLING.window)
    more = trends.slope_output(trends.SPO2_FALLING, spo2, P[1:2], now=NOW, observed_at=times[-1:])
    hourly = np.arange(0, 96, 1.0)
    pulse = np.where(hourly < 72, 70.0, 82.5)[None]
    at = NOW.timestamp() - (96 - hourly)[None] * 3600 + 1800
    rise = trends.rise_output(trends.RESTING_PULSE_RISING, pulse, at, P[2:3], now=NOW)
    return out[0] + more[0] + rise[0], out[1] + more[1] + rise[1]


def _technical() -> RuleOutput:
    now_s, h = NOW.timestamp(), 3600.0
    parts = [
        missing.missing_vital_output(
            Vital.SPO2, P[:2], last_trusted_at=np.array([now_s - 9 * h, np.nan]),
            every=np.array([4 * h, 4 * h]),
            plan_started_at=np.array([now_s - 20 * h, now_s - 5 * h]), now=NOW,
        ),
        missing.device_silent_output(
            P[:1], ["AA:BB"], last_seen_at=np.array([now_s - 30 * h]), silent_after=timedelta(hours=26),
            now=NOW,
        ),
        missing.gateway_offline_output(
            P[:2], status=["offline", "offline"], status_at=np.array([now_s - 1200, now_s - 3 * h]),
            registered_at=np.array([0.0, 0.0]), now=NOW,
        ),
        missing.receipts_overdue_output(
            P[:2], status=["online", "online"], unconfirmed_since=np.array([now_s - 1500, now_s - 2 * h]),
            measurements=np.array([12.0, np.nan]), now=NOW,
        ),
        missing.battery_low_output(
            P[:2], ["b1", "b2"], percent=np.array([18.4, 7.0]), measured_at=np.array([now_s, now_s]), now=NOW
        ),
        missing.clock_not_set_output(
            P[:1], ["c1"], clock_not_set=np.array([True]), measured_at=np.array([now_s]), now=NOW
        ),
    ]  # fmt: skip
    return [r for req, _ in parts for r in req], [c for _, clr in parts for c in clr]


CASES: dict[str, tuple[Callable[[], RuleOutput], list[str]]] = {
    "threshold, ward default": (
        lambda: _thresholds("pulse_high", [135.0, 115.0]),
        [
            "Puls ≥ 131/min: 135 /min",
            "Puls 111–130/min: 115 /min",
        ],
    ),
    "threshold, held by hysteresis": (
        lambda: _thresholds("pulse_high", [128.0], live=3),
        [
            "Puls ≥ 131/min; senast 128 /min",
        ],
    ),
    "threshold, personal limit below": (
        lambda: _thresholds("spo2_low", [87.0, 87.0], personal={Priority.HIGH: 86.0, Priority.MEDIUM: 88.0}),
        [
            "Syremättnad under personlig gräns 88 %: 87 %",
            "Syremättnad ≤ 91 %: 87 %",
        ],
    ),
    "threshold, personal limit above": (
        lambda: _thresholds("pulse_high", [125.0], personal={Priority.MEDIUM: 120.0}),
        [
            "Puls över personlig gräns 120 /min: 125 /min",
        ],
    ),
    "threshold, SpO2 scale 2": (
        lambda: _thresholds("spo2_low", [83.0, 85.0], scale_2=True),
        [
            "Syremättnad ≤ 83 % (skala 2): 83 %",
            "Syremättnad 84–85 % (skala 2): 85 %",
        ],
    ),
    "threshold, one decimal": (
        lambda: _thresholds("temperature_low", [34.8]),
        [
            "Temperatur ≤ 35,0 °C: 34,8 °C",
        ],
    ),
    "threshold, persistence kernel": (
        _persistence,
        [
            "Temperatur ≥ 39,1 °C: 39,4 °C",
        ],
    ),
    "news2": (
        _news2,
        [
            "NEWS2 16: hög risk",
            "NEWS2 ≥ 3 (ofullständig): låg–medel risk",
            "NEWS2 5: medel risk",
        ],
    ),
    "weight": (
        _weights,
        [
            "Viktökning 2,1 kg på 3 dygn (gräns 2 kg)",
            "Viktökning 2,1 kg på 3 dygn (gräns 2 kg)",
            "Vikten 2,4 kg över patientens baslinje (gräns 0,6 kg)",
        ],
    ),
    "trends": (
        _trends,
        [
            "Systoliskt blodtryck sjunker: 30 mmHg på 12 h (gräns 20 på 12 h)",
            "Syremättnaden sjunker: 4 % på 6 h (gräns 3 på 6 h)",
            "Vilopulsen stiger: +12 /min mot föregående 3 dygn",
        ],
    ),
    "technical": (
        _technical,
        [
            "Ingen ny tillförlitlig mätning av SpO₂ på 9 h (planerad var 4 h)",
            "Ingen tillförlitlig mätning av SpO₂ på 5 h (planerad var 4 h)",
            "Enheten AA:BB har inte hörts av på 30 h",
            "Hemenheten har varit offline i 20 min",
            "Hemenheten har varit offline i 3 h",
            "Mätvärden från hemenheten har inte bekräftats som mottagna på 25 min (12 mätningar)",
            "Mätvärden från hemenheten har inte bekräftats som mottagna på 2 h",
            "Låg batterinivå i b1: 18 %",
            "Låg batterinivå i b2: 7 %",
            "Klockan i c1 är inte ställd",
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_rule_family_writes_the_same_text_as_before(case: str) -> None:
    produce, expected = CASES[case]
    requests, _ = produce()
    assert [r.message for r in requests] == expected
