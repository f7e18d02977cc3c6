"""The dashboard's pure parts of the engine work: snooze choices from the caps, lengths of time as
staff read them, and the record's NEWS2 line (never an incomplete score shown as a total)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from alerts.model import Priority
from alerts.news2 import score_one
from alerts.store import SNOOZE_CAP
from dashboard.formatting import format_minutes
from dashboard.model import snooze_caps_minutes, snooze_choices_for
from dashboard.news2_summary import News2Inputs, summarise

NOW = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def test_snooze_choices_follow_the_caps_of_alerts_store() -> None:
    caps = snooze_caps_minutes()
    assert caps == {p.label: int(cap.total_seconds() // 60) for p, cap in SNOOZE_CAP.items()}
    assert snooze_choices_for(Priority.HIGH.label) == (15, 30)
    assert snooze_choices_for("medium") == (30, 60, 240)
    assert snooze_choices_for("low") == (60, 240, 1440)
    for label, cap in caps.items():
        assert max(snooze_choices_for(label)) <= cap
    assert snooze_choices_for("unknown") == ()


def test_lengths_of_time() -> None:
    cases = {1: "1 min", 30: "30 min", 60: "1 h", 90: "1 h 30 min", 240: "4 h", 1440: "24 h", 10080: "7 d"}
    assert {m: format_minutes(m) for m in cases} == cases


def test_a_complete_set_is_a_total_with_its_risk() -> None:
    inputs = News2Inputs(
        resp_rate=(16, ago(60)),
        spo2=(97, ago(10)),
        systolic_bp=(130, ago(10)),
        pulse=(70, ago(10)),
        temperature=(36.8, ago(10)),
        consciousness=("A", ago(600)),
        on_oxygen=(False, ago(600)),
    )
    summary = summarise(inputs, NOW)
    assert summary.complete and summary.total == 0 and summary.headline == "NEWS2 0 (låg risk)"
    assert [p.status for p in summary.parts] == ["ok"] * 7
    red = summarise(replace(inputs, consciousness=("C", ago(5))), NOW)
    assert red.headline == "NEWS2 3 (låg–medel risk)" and red.risk_key == "low-medium"


def test_scale_2_above_92_without_air_or_oxygen_cannot_be_scored() -> None:
    inputs = News2Inputs(
        resp_rate=(18, ago(30)),
        spo2=(95, ago(10)),
        systolic_bp=(125, ago(10)),
        pulse=(80, ago(10)),
        temperature=(37.0, ago(10)),
        consciousness=("A", ago(30)),
        on_oxygen=None,
        spo2_scale=2,
    )
    summary = summarise(inputs, NOW)
    assert score_one(18, 95, 125, 80, 37.0, "A", None, 2).total is None
    assert not summary.complete and summary.total is None
    statuses = {p.key: p.status for p in summary.parts}
    assert statuses["spo2"] == "unscorable" and statuses["air_or_oxygen"] == "missing"
    assert summary.headline == "NEWS2 ≥ 0 (ofullständig: saknar luft/syrgas; kan inte poängsätta SpO₂)"
    assert summary.spo2_scale == 2


def test_stale_values_do_not_count_and_a_clock_a_little_ahead_does() -> None:
    inputs = News2Inputs(
        resp_rate=(26, ago(13 * 60)),  # older than the 12 h window
        spo2=(90, ago(-2)),  # two minutes ahead of the server's clock
        systolic_bp=None,
        pulse=(120, ago(5 * 60)),  # older than 4 h
        temperature=(39.4, ago(30)),
        consciousness=None,
        on_oxygen=(True, ago(60)),
    )
    summary = summarise(inputs, NOW)
    statuses = {p.key: p.status for p in summary.parts}
    assert statuses == {
        "resp_rate": "stale", "spo2": "ok", "air_or_oxygen": "ok", "systolic_bp": "missing", "pulse": "stale",
        "consciousness": "missing", "temperature": "ok",
    }  # fmt: skip
    assert summary.partial_total == 3 + 2 + 2 and summary.risk_floor == "hög"
    assert summary.headline == (
        "NEWS2 ≥ 7 (ofullständig: saknar systoliskt BT, medvetandegrad; inaktuellt AF, puls)"
    )
    assert [p.score for p in summary.parts if p.status != "ok"] == [None] * 4
