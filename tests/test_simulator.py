"""Simulated patients: the scenarios' physiology, the demo roster, and a simulated ward end to end."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from core import contract
from core.vitals import Vital
from devservices import services
from simulator.homes import demo_roster
from simulator.scenarios import SCENARIOS, make_scenario
from tests.support.gateway import Recorder, wait_until

ROOT = Path(__file__).resolve().parent.parent
HOURS = [timedelta(minutes=30 * i) for i in range(7 * 48 + 1)]  # a week, every half hour


# --- scenarios --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_infection_is_normal_at_start_and_septic_at_12_hours(seed: int) -> None:
    start = make_scenario("infection", seed=seed).vitals_at(timedelta(0))
    assert 36.0 <= start[Vital.BODY_TEMPERATURE] <= 37.5
    assert 55 <= start[Vital.PULSE_RATE] <= 90
    assert start[Vital.SPO2] >= 95
    assert start[Vital.SYSTOLIC_BP] >= 110
    later = make_scenario("infection", seed=seed).vitals_at(timedelta(hours=12))
    assert 39.0 <= later[Vital.BODY_TEMPERATURE] <= 40.0
    assert 115 <= later[Vital.PULSE_RATE] <= 135
    assert 86 <= later[Vital.SPO2] <= 91
    assert 84 <= later[Vital.SYSTOLIC_BP] <= 100


@pytest.mark.parametrize("seed", range(5))
def test_heart_failure_gains_weight_day_by_day(seed: int) -> None:
    scenario = make_scenario("heart_failure", seed=seed)
    baseline = scenario.baseline.weight
    weights = [scenario.vitals_at(timedelta(days=d))[Vital.BODY_WEIGHT] for d in range(6)]
    assert abs(weights[0] - baseline) < 0.5
    assert weights[5] >= baseline + 3.0
    assert weights == sorted(weights)  # 0.8 kg a day outgrows the scale's noise
    day5 = scenario.vitals_at(timedelta(days=5))
    assert day5[Vital.SPO2] <= 93 and day5[Vital.PULSE_RATE] >= scenario.baseline.pulse + 10


@pytest.mark.parametrize("seed", range(5))
def test_stable_patient_stays_in_normal_bands_for_a_week(seed: int) -> None:
    scenario = make_scenario("stable", seed=seed)
    readings = [scenario.vitals_at(t) for t in HOURS]
    for v in readings:
        assert 94 <= v[Vital.SPO2] <= 100
        assert 50 <= v[Vital.PULSE_RATE] <= 95
        assert 105 <= v[Vital.SYSTOLIC_BP] <= 150
        assert 60 <= v[Vital.DIASTOLIC_BP] <= 95
        assert 36.0 <= v[Vital.BODY_TEMPERATURE] <= 37.5
        assert abs(v[Vital.BODY_WEIGHT] - scenario.baseline.weight) <= 0.5
    # Noise, not a flat line: a real device never repeats itself for a week.
    assert len({v[Vital.PULSE_RATE] for v in readings}) > 5


def test_copd_saturation_stays_in_its_target_band() -> None:
    scenario = make_scenario("copd", seed=3)
    spo2 = [scenario.vitals_at(t)[Vital.SPO2] for t in HOURS]
    assert min(spo2) >= 88 and max(spo2) <= 92


def test_scenarios_are_reproducible_per_seed_and_report_device_resolution() -> None:
    for name in SCENARIOS:
        a = [make_scenario(name, seed=7).vitals_at(t) for t in HOURS[:20]]
        b = [make_scenario(name, seed=7).vitals_at(t) for t in HOURS[:20]]
        c = [make_scenario(name, seed=8).vitals_at(t) for t in HOURS[:20]]
        assert a == b and a != c
        for v in a:
            assert v[Vital.SPO2] == int(v[Vital.SPO2])
            assert round(v[Vital.BODY_TEMPERATURE], 1) == v[Vital.BODY_TEMPERATURE]
            assert v[Vital.DIASTOLIC_BP] < v[Vital.MEAN_ARTERIAL_PRESSURE] < v[Vital.SYSTOLIC_BP]
    with pytest.raises(ValueError, match="unknown scenario"):
        make_scenario("plague")


# --- roster -----------------------------------------------------------------------------------


def test_demo_roster_is_deterministic_and_tells_the_stories() -> None:
    roster = demo_roster(24)
    assert roster == demo_roster(24)
    assert demo_roster(10) == roster[:10]
    assert [p.gateway_id for p in roster[:3]] == ["sim-0001", "sim-0002", "sim-0003"]
    assert all(contract.GATEWAY_ID_PATTERN.match(p.gateway_id) for p in roster)
    assert len({p.gateway_id for p in roster}) == len({p.display_name for p in roster}) == 24
    first_six = {p.scenario for p in roster[:6]}
    assert {"infection", "heart_failure"} <= first_six
    oskar = roster[0]
    assert (oskar.display_name.split()[0], oskar.scenario, oskar.care_reason) == (
        "Oskar",
        "heart_failure",
        "Hjärtsvikt, förvärrad",
    )
    assert sum(p.scenario == "stable" for p in roster) >= 14
    assert all(p.scenario in SCENARIOS and p.care_reason and 1925 <= p.birth_year <= 1980 for p in roster)
    assert len(demo_roster(200)) == 200


# --- the simulated ward, end to end -------------------------------------------------------------


@pytest.fixture
def broker() -> Iterator[services.Broker]:
    # A private broker: the simulator's ids (sim-0001...) are fixed, the shared broker is not ours.
    folder = Path(tempfile.mkdtemp(prefix="hemma-sim-broker-"))
    folder.chmod(0o755)
    b = services.start_mosquitto(folder)
    yield b
    b.stop()
    shutil.rmtree(folder, ignore_errors=True)


def test_simulator_run_publishes_every_home_and_exits_0_on_sigint(broker, tmp_path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HEMMA_MQTT_URL": broker.url,
        "HEMMA_DATA_DIR": str(tmp_path),
    }
    code = (
        "import sys; from simulator.homes import run; from core.settings import Settings; "
        "sys.exit(run(Settings(), patients=3, speed=3600, interval_s=0.2, seed=5))"
    )
    with Recorder(broker.url, "hemma/v1/gw/+/measurements") as rec:
        child = subprocess.Popen(
            [sys.executable, "-c", code], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:

            def every_kind_from_every_home() -> bool:
                seen = {(m.device_id[-5:-3], m.characteristic) for m in rec.measurements()}
                return len(seen) == 3 * 4

            wait_until(every_kind_from_every_home, timeout=30, what="all four devices of all three homes")
            child.send_signal(signal.SIGINT)
            assert child.wait(20) == 0
        finally:
            if child.poll() is None:
                child.kill()
            stderr = child.communicate()[1].decode()
        batches = rec.batches()
    assert "Traceback" not in stderr
    assert {b.gateway_id for b in batches} == {"sim-0001", "sim-0002", "sim-0003"}
    for batch in batches:
        for m in batch.measurements:
            assert m.effective_time <= m.received_time  # device clocks are real time, never ahead
            assert m.characteristic in {"2A5E", "2A35", "2A1C", "2A9D"}
    assert sorted(p.name for p in (tmp_path / "sim-queues").iterdir() if p.suffix == ".sqlite") == [
        "sim-0001.sqlite",
        "sim-0002.sqlite",
        "sim-0003.sqlite",
    ]
