"""Device profiles' connect steps, end to end: set the clock, read features, ask for stored records.

Virtual device models (simulator.virtual_models) behave as the real ones do: an A&D cuff
keeps its readings until its Date Time is written, a glucose meter sends its records only
when asked over the Record Access Control Point. Only the radio is fake; bleak, the
decoders, the queue, paho and Mosquitto are real.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import device_profiles
from core import contract
from core.vitals import Vital
from device_profiles import RacpOpCode, RacpOperator, RacpRequest, RacpResponseCode, uuids
from device_profiles.catalogue import load_profiles
from gateway.ble import BleCentral
from gateway.service import Gateway
from simulator.virtual_devices import HomeKit, and_ua651ble, device_from_profile, glucose_meter
from simulator.virtual_radio import VirtualRadio
from tests.support.gateway import (
    Recorder,
    kit_config,
    wait_until,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")
CUFF = "02:48:4D:00:A0:01"
METER = "02:48:4D:00:A0:02"


def _values(m: contract.Measurement) -> dict[Vital, tuple[float, str]]:
    return {o.vital: (o.value, o.unit) for o in m.observations}


# --- A&D: the Date Time write releases the stored readings -----------------------------------------


def test_and_cuff_sends_its_stored_readings_only_after_the_gateway_set_its_clock(
    settings, gateway_id, radio
) -> None:
    clock_now = datetime.now(UTC).replace(microsecond=654_321)  # the gateway's (injected) clock
    cuff = and_ua651ble(radio, CUFF, device_tz=STOCKHOLM)
    sent = [
        cuff.measure_blood_pressure(132, 84, 100, 71, at=clock_now - timedelta(hours=2)),
        cuff.measure_blood_pressure(128.5, 79, 95, 68, at=clock_now - timedelta(minutes=50)),
    ]
    generic_only = [p for p in load_profiles() if p.id != "and_ua651ble"]
    # Listed as the generic cuff it is taken for first; then (version 2) as the A&D it is.
    as_generic = contract.KitConfig(
        v=1,
        gateway_id=gateway_id,
        version=1,
        issued_at=datetime.now(UTC),
        devices=(contract.KitDevice(address=CUFF, profile="generic_blood_pressure"),),
    )
    with Recorder(settings.mqtt_url, contract.measurements_topic(gateway_id)) as rec:
        # A collector that does not know the A&D quirk subscribes and gets nothing.
        with Gateway(
            settings,
            gateway_id=gateway_id,
            ble=radio.backend,
            device_tz=STOCKHOLM,
            profiles=generic_only,
            config=as_generic,
        ):
            wait_until(lambda: cuff.subscribed(uuids.BLOOD_PRESSURE_MEASUREMENT), what="generic subscription")
            wait_until(lambda: ("read", "2A19") in cuff.gatt_events(), what="generic profile's battery read")
        assert cuff.sent == 0 and cuff.writes == [] and not cuff.connected
        with Gateway(
            settings,
            gateway_id=gateway_id,
            ble=radio.backend,
            device_tz=STOCKHOLM,
            clock=lambda: clock_now,
            config=kit_config(gateway_id, cuff, version=2),
        ) as gw:
            got = rec.wait_for_measurements(2)
            stats = gw.stats()
    device_time = clock_now.astimezone(STOCKHOLM).replace(tzinfo=None, microsecond=0)
    assert [char for char, _ in cuff.writes] == ["2A08"]
    written = device_profiles.parse("2A08", cuff.writes[0][1])
    assert written == device_profiles.DateTimeCharacteristic(device_time)
    assert cuff.clock_writes == [device_time]
    # The A&D order: Date Time written, then indications enabled, then the stored readings.
    log = cuff.gatt_events()
    second_connect = len(log) - 1 - log[::-1].index(("connect", CUFF))
    now_log = log[second_connect:]
    assert now_log.index(("write", "2A08")) < now_log.index(("subscribe", "2A35"))
    assert now_log.index(("subscribe", "2A35")) < now_log.index(("send", "2A35"))
    assert [m.raw for m in got] == [p.hex() for p in sent]
    assert [_values(m) for m in got] == [
        {
            Vital.SYSTOLIC_BP: (132.0, "mm[Hg]"),
            Vital.DIASTOLIC_BP: (84.0, "mm[Hg]"),
            Vital.MEAN_ARTERIAL_PRESSURE: (100.0, "mm[Hg]"),
            Vital.PULSE_RATE: (71.0, "/min"),
        },
        {
            Vital.SYSTOLIC_BP: (128.5, "mm[Hg]"),
            Vital.DIASTOLIC_BP: (79.0, "mm[Hg]"),
            Vital.MEAN_ARTERIAL_PRESSURE: (95.0, "mm[Hg]"),
            Vital.PULSE_RATE: (68.0, "/min"),
        },
    ]
    # Stockholm wall time on the cuff, UTC on the wire; the receive time is the injected clock.
    assert [m.effective_time for m in got] == [
        (clock_now - timedelta(hours=2)).replace(microsecond=0),
        (clock_now - timedelta(minutes=50)).replace(microsecond=0),
    ]
    assert all(m.received_time == clock_now and m.device_id == CUFF for m in got)
    assert stats["ble_connect_steps"] == {f"{CUFF}/write_date_time": 1, f"{CUFF}/subscribe": 1}
    assert stats["ble_step_failures"] == {} and stats["ble_steps_missing"] == {}
    assert stats["battery_percent"] == {CUFF: 80}


def test_failing_clock_write_is_counted_and_retried_on_the_next_connection(
    settings, gateway_id, radio, caplog
) -> None:
    caplog.set_level(logging.INFO)
    cuff = and_ua651ble(radio, CUFF, device_tz=STOCKHOLM)
    kit = HomeKit.install(radio, home=7, device_tz=STOCKHOLM)
    reading = cuff.measure_blood_pressure(141, 90, 107, 80)
    cuff.fail_writes(1)  # the first Date Time write gets an ATT error
    gw = Gateway(
        settings,
        gateway_id=gateway_id,
        ble=radio.backend,
        device_tz=STOCKHOLM,
        config=kit_config(gateway_id, cuff, kit),
    )
    gw.central.retry_min_s = 0.2
    with Recorder(settings.mqtt_url, contract.measurements_topic(gateway_id)) as rec, gw:
        wait_until(lambda: gw.stats()["ble_step_failures"], what="the failed write counted")
        # Meanwhile the gateway keeps serving the other devices.
        wait_until(lambda: kit.thermometer.subscribed(uuids.TEMPERATURE_MEASUREMENT), what="thermometer")
        temperature = kit.measure_temperature(37.4)
        got = rec.wait_for_measurements(2)
        stats = gw.stats()
    assert sorted(m.raw for m in got) == sorted([reading.hex(), temperature.hex()])
    assert stats["ble_step_failures"] == {f"{CUFF}/write_date_time": 1}
    assert gw.central.steps.done[f"{CUFF}/write_date_time"] == 1
    assert stats["internal_errors"] == 0 and stats["ble_callback_errors"] == 0
    # Refused on the first connection, so that link was dropped; written on the second.
    assert [e for e in cuff.gatt_events() if e[0] in ("connect", "write")] == [
        ("connect", CUFF),
        ("connect", CUFF),
        ("write", "2A08"),
    ]
    assert "write_date_time (Date Time (0x2A08)) failed" in caplog.text
    assert reading.hex() not in caplog.text


# --- glucose meter: Record Access Control Point ------------------------------------------------------


def test_glucose_meter_reports_its_stored_records_with_their_device_times(
    settings, gateway_id, radio
) -> None:
    meter = glucose_meter(radio, METER, device_tz=STOCKHOLM)
    now = datetime.now(UTC)
    taken = [now - timedelta(hours=9), now - timedelta(hours=3, minutes=12), now - timedelta(minutes=40)]
    records = [
        meter.take_reading(mmol_per_l=5.4, at=taken[0]),
        meter.take_reading(mg_per_dl=99, at=taken[1]),  # sent in kg/L; 99 / 18.016 = 5.495 mmol/L
        meter.take_reading(mmol_per_l=11.2, at=taken[2]),
    ]
    with (
        Recorder(settings.mqtt_url, contract.measurements_topic(gateway_id)) as rec,
        Gateway(
            settings,
            gateway_id=gateway_id,
            ble=radio.backend,
            device_tz=STOCKHOLM,
            config=kit_config(gateway_id, meter),
        ) as gw,
    ):
        got = rec.wait_for_measurements(3)
        wait_until(lambda: gw.central.steps.done[f"{METER}/racp_report_all"], what="RACP done")
        stats = gw.stats()
        # The next connection asks again; the meter re-sends every record, under the same ids.
        meter.drop_connection()
        again = rec.wait_for_measurements(6)[3:]
    assert [m.raw for m in got] == [r.hex() for r in records]
    assert {m.characteristic for m in got} == {"2A18"}
    assert [_values(m) for m in got] == [
        {Vital.GLUCOSE: (5.4, "mmol/L")},
        {Vital.GLUCOSE: (5.5, "mmol/L")},
        {Vital.GLUCOSE: (11.2, "mmol/L")},
    ]
    # The meter's Stockholm wall time of each record, not the time it was sent.
    assert [m.effective_time for m in got] == [t.replace(microsecond=0) for t in taken]
    assert [(m.id, m.raw) for m in again] == [(m.id, m.raw) for m in got]
    assert meter.racp_requests[0] == RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.ALL_RECORDS)
    assert stats["racp_responses"] == {f"{METER}/success": 1}
    assert stats["ble_connect_steps"] == {
        f"{METER}/read_features": 1,
        f"{METER}/subscribe": 1,
        f"{METER}/racp_report_all": 1,
    }
    # The meter has no Current Time Service: the profile's optional write is skipped, not an error.
    assert stats["ble_steps_skipped"] == {f"{METER}/write_current_time": 1}
    assert stats["ble_steps_missing"] == {} and stats["ble_step_failures"] == {}
    assert stats["device_features"] == {
        f"{METER}/2A51": [
            "low_battery_detection",
            "sensor_strip_insertion_error_detection",
            "sensor_result_high_low_detection",
            "time_fault",
        ]
    }
    log = meter.gatt_events()
    racp_write = log.index(("write", "2A52"))
    assert log.index(("subscribe", "2A18")) < racp_write and log.index(("subscribe", "2A52")) < racp_write
    assert log.index(("send", "2A18")) > racp_write
    assert log[racp_write + 4] == ("send", "2A52")  # three records, then the Response Code


@pytest.mark.parametrize(
    ("answer", "response"),
    [(None, None), (RacpResponseCode.PROCEDURE_NOT_COMPLETED, "procedure_not_completed")],
    ids=["no-answer", "error-response"],
)
def test_racp_timeout_or_error_is_counted_and_the_link_stays_up(
    settings, gateway_id, radio, answer, response, caplog
) -> None:
    meter = glucose_meter(radio, METER, device_tz=STOCKHOLM, answer=answer)
    meter.take_reading(mmol_per_l=6.1)
    kit = HomeKit.install(radio, home=8)
    gw = Gateway(
        settings,
        gateway_id=gateway_id,
        ble=radio.backend,
        device_tz=STOCKHOLM,
        config=kit_config(gateway_id, meter, kit),
    )
    gw.central.racp_timeout_s = 0.3
    with Recorder(settings.mqtt_url, contract.measurements_topic(gateway_id)) as rec, gw:
        wait_until(lambda: gw.stats()["ble_step_failures"], what="the RACP failure counted")
        kit.measure_spo2(97, 64)
        got = rec.wait_for_measurements(1)
        stats = gw.stats()
        wait_until(lambda: gw.central.connects == 5, what="the kit connected too")
        assert meter.connected and gw.central.link_losses == 0  # the link stayed up
    assert [m.characteristic for m in got] == ["2A5E"]  # no glucose record was sent
    assert stats["ble_step_failures"] == {f"{METER}/racp_report_all": 1}
    assert stats["racp_responses"] == ({f"{METER}/{response}": 1} if response else {})
    assert f"{METER}/racp_report_all" not in gw.central.steps.done
    expected = "no answer to 'report all stored records'" if answer is None else "refused: procedure_not"
    assert expected in caplog.text


# --- the home kit: features, Current Time, a missing required characteristic ------------------------


def test_home_kit_reads_features_sets_clocks_and_survives_a_missing_feature_characteristic(
    settings, gateway_id, radio, caplog
) -> None:
    clock_now = datetime.now(UTC)
    kit = HomeKit.install(radio, device_tz=STOCKHOLM)
    by_id = {p.id: p for p in load_profiles()}
    # A cuff without the Blood Pressure Feature the generic profile requires.
    odd_cuff = radio.add(
        device_from_profile(
            by_id["generic_blood_pressure"], CUFF, "OddBP", omit=[uuids.BLOOD_PRESSURE_FEATURE]
        )
    )
    odd_cuff.set_value(uuids.BATTERY_LEVEL, device_profiles.encode.battery_level(55))
    with (
        Recorder(settings.mqtt_url, contract.measurements_topic(gateway_id)) as rec,
        Gateway(
            settings,
            gateway_id=gateway_id,
            ble=radio.backend,
            device_tz=STOCKHOLM,
            clock=lambda: clock_now,
            config=kit_config(gateway_id, kit, odd_cuff),
        ) as gw,
    ):
        wait_until(lambda: odd_cuff.subscribed(uuids.BLOOD_PRESSURE_MEASUREMENT), what="odd cuff subscribed")
        odd = odd_cuff.send(
            uuids.BLOOD_PRESSURE_MEASUREMENT, device_profiles.encode.blood_pressure(118, 76, 90)
        )
        got = rec.wait_for_measurements(1)
        wait_until(lambda: len(gw.decoder.counters.device_features) == 3, what="features of the kit")
        stats = gw.stats()
    assert [m.raw for m in got] == [odd.hex()]
    assert stats["ble_steps_missing"] == {f"{CUFF}/read_features": 1}
    assert stats["ble_step_failures"] == {} and stats["ble_steps_skipped"] == {}
    assert "lacks Blood Pressure Feature (0x2A49) that profile generic_blood_pressure needs" in caplog.text
    assert stats["device_features"] == {
        f"{kit.oximeter.address}/2A60": ["spot_check_measurement_storage", "spot_check_timestamp"],
        f"{kit.bp_cuff.address}/2A49": [
            "body_movement_detection",
            "cuff_fit_detection",
            "irregular_pulse_detection",
        ],
        f"{kit.scale.address}/2A9E": ["timestamp", "weight_resolution:kg_0_005_or_lb_0_01"],
    }
    assert gw.decoder.counters.not_clinical[f"{kit.bp_cuff.address}/2A49"] == 1
    # Both cuffs and the scale got the Current Time, in Stockholm wall time, as an NTP-set gateway.
    local = clock_now.astimezone(STOCKHOLM).replace(tzinfo=None)
    for device in (kit.bp_cuff, kit.scale, odd_cuff):
        (char, value), *_ = device.writes
        written = device_profiles.parse(char, value)
        assert isinstance(written, device_profiles.CurrentTime)
        assert written.date_time == local.replace(microsecond=0)
        assert written.fractions256 == local.microsecond * 256 // 1_000_000
        assert written.adjust_reason == device_profiles.AdjustReason.EXTERNAL_REFERENCE_TIME_UPDATE
    assert kit.oximeter.writes == [] and kit.thermometer.writes == []  # their profiles write nothing


def test_an_exception_in_the_value_handler_never_escapes_the_bleak_callback() -> None:
    radio = VirtualRadio()
    kit = HomeKit.install(radio)
    handled: list[str] = []

    def broken_handler(address: str, characteristic: str, payload: bytes) -> None:
        handled.append(characteristic)
        raise RuntimeError("a bug in the decode path")

    async def main() -> BleCentral:
        central = BleCentral(
            radio.backend, load_profiles(), broken_handler, config=kit_config("gw-handler", kit)
        )
        stop = asyncio.Event()
        task = asyncio.create_task(central.run(stop))
        while not kit.thermometer.subscribed(uuids.TEMPERATURE_MEASUREMENT):
            await asyncio.sleep(0.01)
        kit.measure_temperature(36.8)
        while "2A1C" not in handled:
            await asyncio.sleep(0.01)
        stop.set()
        await task
        return central

    central = asyncio.run(main())
    # Four battery reads, three feature reads and the temperature: all reached the handler, counted.
    assert central.steps.callback_errors == len(handled) == 8
    assert central.connect_failures == 0 and central.stats()["ble_devices_connected"] == 0
