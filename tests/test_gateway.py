"""The gateway end to end: virtual devices -> fake bleak backend -> Gateway -> real Mosquitto -> subscriber.

Only the radio is simulated; bleak's BleakScanner/BleakClient, the decoders, the queue and
paho all run for real.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core import contract
from core.settings import Settings
from core.vitals import Vital
from device_profiles import uuids
from gateway.service import Gateway
from simulator.virtual_devices import HomeKit
from simulator.virtual_radio import VirtualRadio
from tests.support.gateway import (
    Recorder,
    clear_retained,
    kit_config,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent
STOCKHOLM = ZoneInfo("Europe/Stockholm")


@pytest.fixture
def kit(radio: VirtualRadio) -> HomeKit:
    return HomeKit.install(radio, device_tz=STOCKHOLM)


def _values(m: contract.Measurement) -> dict[Vital, tuple[float, str]]:
    return {o.vital: (o.value, o.unit) for o in m.observations}


def test_readings_arrive_byte_exact_with_their_values(settings, gateway_id, radio, kit) -> None:
    with (
        Recorder(settings.mqtt_url, f"hemma/v1/gw/{gateway_id}/#") as rec,
        Gateway(
            settings,
            gateway_id=gateway_id,
            ble=radio.backend,
            config=kit_config(gateway_id, kit),
            device_tz=STOCKHOLM,
        ) as gw,
    ):
        sent = {
            "2A5E": kit.measure_spo2(96, 72),
            "2A35": kit.measure_blood_pressure(128, 80, 96, pulse_rate=70),
            "2A1C": kit.measure_temperature(37.2),
            "2A9D": kit.measure_weight(81.3),
        }
        got = rec.wait_for_measurements(4)
        stats = gw.stats()
    assert len(got) == 4
    by_char = {m.characteristic: m for m in got}
    assert {c: m.raw for c, m in by_char.items()} == {c: payload.hex() for c, payload in sent.items()}
    assert _values(by_char["2A5E"]) == {Vital.SPO2: (96.0, "%"), Vital.PULSE_RATE: (72.0, "/min")}
    assert _values(by_char["2A35"]) == {
        Vital.SYSTOLIC_BP: (128.0, "mm[Hg]"),
        Vital.DIASTOLIC_BP: (80.0, "mm[Hg]"),
        Vital.MEAN_ARTERIAL_PRESSURE: (96.0, "mm[Hg]"),
        Vital.PULSE_RATE: (70.0, "/min"),
    }
    assert _values(by_char["2A1C"]) == {Vital.BODY_TEMPERATURE: (37.2, "Cel")}
    assert _values(by_char["2A9D"]) == {Vital.BODY_WEIGHT: (81.3, "kg")}
    assert {m.device_id for m in got} == {d.address for d in kit.devices}
    assert by_char["2A5E"].device_id == kit.oximeter.address
    now = datetime.now(UTC)
    for m in got:
        # Device clocks are Stockholm wall time to the second; the gateway made them UTC.
        assert m.effective_time.utcoffset() == timedelta(0)
        assert timedelta(0) <= m.received_time - m.effective_time < timedelta(seconds=5)
        assert now - m.received_time < timedelta(seconds=30)
        assert all(o.quality == () for o in m.observations)
    assert len({m.id for m in got}) == 4
    assert stats["decode_errors"] == {} and stats["rejected_values"] == {}
    # Battery levels were read at connect; they are counted, not published as measurements.
    assert stats["battery_percent"] == {d.address: 90 for d in kit.devices}
    batches = rec.batches()
    assert all(b.gateway_id == gateway_id for b in batches)
    assert rec.statuses()[0].state == "online"


def test_malformed_and_implausible_values_are_counted_and_later_readings_flow(
    settings, gateway_id, radio, kit, caplog
) -> None:
    caplog.set_level(logging.INFO)
    ox = kit.oximeter.address
    with (
        Recorder(settings.mqtt_url, contract.measurements_topic(gateway_id)) as rec,
        Gateway(
            settings,
            gateway_id=gateway_id,
            ble=radio.backend,
            config=kit_config(gateway_id, kit),
            device_tz=STOCKHOLM,
        ) as gw,
    ):
        kit.oximeter.inject_malformed(1, "truncated")
        truncated = kit.measure_spo2(93, 101)
        garbage = kit.oximeter.send(uuids.PLX_SPOT_CHECK_MEASUREMENT, b"\xff\x13\x37")
        implausible = kit.measure_spo2(140, 88)  # SpO2 over 100 % is a sensor lying
        good = kit.measure_spo2(95, 77)
        got = rec.wait_for_measurements(2)
        wait_until(lambda: gw.stats()["decode_errors"], what="decode errors counted")
        stats = gw.stats()
    assert [_values(m) for m in got] == [
        {Vital.PULSE_RATE: (88.0, "/min")},  # the plausible half of the implausible reading
        {Vital.SPO2: (95.0, "%"), Vital.PULSE_RATE: (77.0, "/min")},
    ]
    assert [m.raw for m in got] == [implausible.hex(), good.hex()]
    assert stats["decode_errors"] == {f"{ox}/2A5E": 2}
    assert stats["rejected_values"] == {f"{ox}/2A5E": 1}
    assert "malformed PLX Spot-Check Measurement" in caplog.text
    # No patient data in the logs: neither the bytes nor the values.
    for payload in (truncated, garbage, implausible, good):
        assert payload.hex() not in caplog.text
    assert "140" not in caplog.text and "101" not in caplog.text


def test_dropped_device_is_reconnected_and_its_stored_reading_arrives(
    settings, gateway_id, radio, kit
) -> None:
    with (
        Recorder(settings.mqtt_url, contract.measurements_topic(gateway_id)) as rec,
        Gateway(settings, gateway_id=gateway_id, ble=radio.backend, config=kit_config(gateway_id, kit)) as gw,
    ):
        wait_until(lambda: kit.thermometer.subscribed(uuids.TEMPERATURE_MEASUREMENT), what="subscription")
        kit.measure_temperature(36.9)
        rec.wait_for_measurements(1)
        kit.thermometer.leave_range()
        wait_until(lambda: gw.central.link_losses == 1, what="link loss noticed")
        offline_reading = kit.measure_temperature(38.4)  # kept in the thermometer's memory
        kit.thermometer.enter_range()
        got = rec.wait_for_measurements(2)
        assert gw.central.connects == 5
    assert [_values(m)[Vital.BODY_TEMPERATURE] for m in got] == [(36.9, "Cel"), (38.4, "Cel")]
    assert got[1].raw == offline_reading.hex()


def test_batches_are_bounded_and_keep_reading_order(mqtt_url, tmp_path, gateway_id, radio, kit) -> None:
    settings = Settings(
        mqtt_url=mqtt_url, data_dir=tmp_path, gateway_batch_max_measurements=3, gateway_batch_linger_s=0.5
    )
    with Recorder(mqtt_url, contract.measurements_topic(gateway_id)) as rec:
        # Readings taken before the gateway starts wait in the oximeter and arrive in one burst.
        for spo2 in range(90, 97):
            kit.measure_spo2(spo2, 70)
        with Gateway(
            settings, gateway_id=gateway_id, ble=radio.backend, config=kit_config(gateway_id, kit)
        ) as gw:
            got = rec.wait_for_measurements(7)
            assert gw.batches_enqueued == 3
    assert [_values(m)[Vital.SPO2][0] for m in got] == [90, 91, 92, 93, 94, 95, 96]
    assert [len(b.measurements) for b in rec.batches()] == [3, 3, 1]
    assert len({b.message_id for b in rec.batches()}) == 3


def test_run_entry_point_goes_online_and_exits_0_on_sigterm(mqtt_url, tmp_path, gateway_id) -> None:
    # The real bleak backend: without a Bluetooth adapter it keeps retrying the scan, MQTT still works.
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HEMMA_GATEWAY_ID": gateway_id,
        "HEMMA_MQTT_URL": mqtt_url,
        "HEMMA_DATA_DIR": str(tmp_path),
    }
    code = (
        "import sys; from gateway.service import run; from core.settings import Settings; "
        "sys.exit(run(Settings()))"
    )
    with Recorder(mqtt_url, contract.status_topic(gateway_id)) as rec:
        child = subprocess.Popen(
            [sys.executable, "-c", code], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            wait_until(lambda: [s for s in rec.statuses() if s.state == "online"], what="online status")
            child.send_signal(signal.SIGTERM)
            assert child.wait(15) == 0
        finally:
            if child.poll() is None:
                child.kill()
            stderr = child.communicate()[1].decode()
        wait_until(lambda: len(rec.statuses()) >= 2, what="offline status")
    assert [s.state for s in rec.statuses()] == ["online", "offline"]
    assert rec.statuses()[1].at is not None  # said goodbye itself, not the last will
    assert (tmp_path / f"gateway-{gateway_id}.sqlite").exists()
    assert "Traceback" not in stderr


def test_gateway_starts_without_server_dependencies() -> None:
    code = (
        "import sys, gateway.service, simulator.homes, gateway.publisher\n"
        "bad = sorted(m for m in ('psycopg', 'fastapi', 'numpy', 'uvicorn') if m in sys.modules)\n"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.stdout.strip() == ""


def test_a_gateway_stops_promptly_while_its_devices_are_connecting(mqtt_url, tmp_path, unique_id) -> None:
    """Stopping right after the devices' first readings, while their links are being set up: on Python
    3.11 a cancelled link could swallow its cancellation and keep the gateway from ever stopping
    (it hung in about one stop of four before the fix)."""
    settings = Settings(mqtt_url=mqtt_url, data_dir=tmp_path, gateway_batch_linger_s=0.05)
    stopped = 0
    for attempt in range(16):
        gateway_id = f"gw-stop-{unique_id}-{attempt}"
        radio = VirtualRadio()
        kit = HomeKit.install(radio)
        gateway = Gateway(
            settings, gateway_id=gateway_id, ble=radio.backend, config=kit_config(gateway_id, kit)
        ).start()
        try:
            for spo2 in (95, 96, 97):
                kit.measure_spo2(spo2, 70)
            gateway.stop(timeout=10)  # raises GatewayError if it does not stop
            stopped += 1
        finally:
            clear_retained(mqtt_url, contract.status_topic(gateway_id))
    assert stopped == 16
