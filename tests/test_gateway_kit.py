"""The kit is the patient's own (issue 10): the gateway reads only the devices its KitConfig lists.

Real Mosquitto (the shared one, or one a test starts and stops), real ingest and PostgreSQL where
delivery is checked end to end; only the Bluetooth radio is fake (simulator.virtual_radio), and
it runs the gateway's real connect, pairing and decode paths.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bleak import BleakClient
from bleak.exc import BleakError, BleakGATTProtocolError

from care.enrolment import enrol_patient, ensure_ward
from core import contract
from core.settings import MqttTarget, Settings
from core.vitals import Vital
from device_profiles import uuids
from device_profiles.catalogue import load_profiles
from devservices import services
from gateway.ble import BleBackend, BleCentral
from gateway.service import Gateway
from simulator.virtual_devices import METER_PASSKEY, HomeKit, device_from_profile, glucose_meter
from simulator.virtual_radio import VirtualRadio
from tests.support.gateway import (
    Recorder,
    TcpProxy,
    kit_config,
    publish_retained,
    wait_until,
)
from tests.support.ingest import running_ingest

METER = "02:48:4D:00:B0:01"


def _config(gateway_id: str, version: int, *devices: contract.KitDevice) -> contract.KitConfig:
    return contract.KitConfig(
        v=1, gateway_id=gateway_id, version=version, issued_at=datetime.now(UTC), devices=devices
    )


def _publish(url: str, config: contract.KitConfig) -> None:
    """As the server does: the whole config, retained, on the kit's own config topic."""
    publish_retained(url, contract.config_topic(config.gateway_id), contract.encode(config))


def _spo2(m: contract.Measurement) -> float:
    return next(o.value for o in m.observations if o.vital == Vital.SPO2)


def _with_version(statuses: list[contract.GatewayStatus], version: int) -> list[contract.GatewayStatus]:
    return [s for s in statuses if s.state == "online" and s.config_version == version]


def _unknown(status: contract.GatewayStatus) -> dict[str, str]:
    return {d.address: d.profile for d in status.unknown_devices or ()}


# --- a neighbour's devices in range ---------------------------------------------------------------


def test_a_neighbours_compatible_devices_in_range_are_never_read(settings, gateway_id, radio) -> None:
    own = HomeKit.install(radio, home=1)
    neighbour = HomeKit.install(radio, home=2)  # the flat next door, on the same air
    # One of ours advertises its address in lower case: compared case-insensitively.
    by_id = {p.id: p for p in load_profiles()}
    own_scale = radio.add(device_from_profile(by_id["generic_weight_scale"], "02:48:4d:00:01:aa", "Scale2"))
    config = kit_config(gateway_id, own, own_scale)
    with (
        Recorder(settings.mqtt_url, contract.measurements_topic(gateway_id)) as rec,
        Recorder(settings.mqtt_url, contract.status_topic(gateway_id)) as statuses,
        Gateway(settings, gateway_id=gateway_id, ble=radio.backend, config=config) as gw,
    ):
        neighbour_readings = [neighbour.measure_spo2(88, 101), neighbour.measure_weight(104.2)]
        wait_until(lambda: own.oximeter.subscribed(uuids.PLX_SPOT_CHECK_MEASUREMENT), what="own oximeter")
        own_reading = own.measure_spo2(96, 64)
        wait_until(lambda: own_scale.subscribed(uuids.WEIGHT_MEASUREMENT), what="own lower-case scale")
        got = rec.wait_for_measurements(1)
        status = wait_until(
            lambda: next((s for s in statuses.statuses() if len(_unknown(s)) == 4), None),
            what="a status naming the neighbour's four devices",
        )
        stats = gw.stats()
    assert [m.raw for m in got] == [own_reading.hex()]
    assert {m.device_id for m in got} <= {d.address for d in (*own.devices, own_scale)}
    # Never connected to, never read: the neighbour's readings are still in its devices' memory.
    for device in neighbour.devices:
        assert ("connect", device.address) not in device.gatt_events()
        assert device.sent == 0
    assert all(r.hex() not in {m.raw for m in rec.measurements()} for r in neighbour_readings)
    assert _unknown(status) == {
        neighbour.oximeter.address: "generic_pulse_oximeter",
        neighbour.bp_cuff.address: "generic_blood_pressure",
        neighbour.thermometer.address: "generic_health_thermometer",
        neighbour.scale.address: "generic_weight_scale",
    }
    assert status.config_version == 1
    assert stats["unknown_devices"] == 4 and stats["ble_devices_connected"] == 5


def test_without_any_config_nothing_is_read_and_compatible_devices_are_unknown(
    settings, gateway_id, radio
) -> None:
    """A new kit before the server published its config: reading whatever is in range could record a
    neighbour's values as this patient's, so the gateway reads nothing and says what it sees."""
    kit = HomeKit.install(radio)
    with (
        Recorder(settings.mqtt_url, contract.status_topic(gateway_id)) as statuses,
        Gateway(settings, gateway_id=gateway_id, ble=radio.backend) as gw,
    ):
        kit.measure_spo2(95, 70)
        status = wait_until(
            lambda: next((s for s in statuses.statuses() if len(_unknown(s)) == 4), None),
            what="a status naming the four devices as unknown",
        )
        stats = gw.stats()
    assert status.config_version is None and gw.config is None
    assert stats["ble_connects"] == 0 and stats["measurements_enqueued"] == 0
    assert all(d.sent == 0 and not d.connected for d in kit.devices)


# --- a new configuration, without restart ---------------------------------------------------------


def test_a_new_config_version_is_applied_without_restart_and_an_old_one_is_ignored(
    mqtt_url, tmp_path, gateway_id, radio
) -> None:
    kit = HomeKit.install(radio, home=1)
    spare = HomeKit.install(radio, home=3)  # a second kit's scale, to be added
    proxy = TcpProxy(MqttTarget.from_url(mqtt_url))
    settings = Settings(mqtt_url=proxy.url, data_dir=tmp_path, gateway_batch_linger_s=0.05)
    v1 = kit_config(gateway_id, kit)
    # Version 2: the thermometer is gone from the kit, the spare scale joined it.
    kept = [d for d in kit.kit_devices() if d.address != kit.thermometer.address]
    v2 = _config(gateway_id, 2, *kept, *[d for d in spare.kit_devices() if d.address == spare.scale.address])
    try:
        with (
            Recorder(mqtt_url, contract.measurements_topic(gateway_id)) as rec,
            Recorder(mqtt_url, contract.status_topic(gateway_id)) as statuses,
            Gateway(settings, gateway_id=gateway_id, ble=radio.backend, config=v1) as gw,
        ):
            wait_until(lambda: kit.thermometer.subscribed(uuids.TEMPERATURE_MEASUREMENT), what="thermometer")
            first = kit.measure_temperature(37.1)
            rec.wait_for_measurements(1)
            assert spare.scale.sent == 0 and not spare.scale.connected
            _publish(mqtt_url, v2)
            wait_until(lambda: _with_version(statuses.statuses(), 2), what="a status reporting version 2")
            wait_until(lambda: not kit.thermometer.connected, what="the removed thermometer disconnected")
            connects = kit.thermometer.gatt_events().count(("connect", kit.thermometer.address))
            removed_reading = kit.measure_temperature(38.9)
            wait_until(lambda: spare.scale.subscribed(uuids.WEIGHT_MEASUREMENT), what="the added scale")
            added_reading = spare.measure_weight(81.5)
            still = kit.measure_spo2(95, 66)
            got = rec.wait_for_measurements(3)
            status = wait_until(
                lambda: next(
                    (
                        s
                        for s in _with_version(statuses.statuses(), 2)
                        if kit.thermometer.address in _unknown(s)
                    ),
                    None,
                ),
                what="the removed thermometer reported as unknown",
            )
            # The same version again, then an older one: both ignored, version 2 stays.
            _publish(mqtt_url, v2)
            wait_until(lambda: gw.configs_ignored >= 1, what="the equal version ignored")
            _publish(mqtt_url, v1)
            wait_until(lambda: gw.configs_ignored >= 2, what="the older version ignored")
            assert gw.config == v2
            # A reconnect: the broker hands over the retained config again; nothing changes.
            _publish(mqtt_url, v2)
            wait_until(lambda: gw.configs_ignored >= 3, what="v2 again")
            proxy.cut()
            wait_until(lambda: gw.publisher.reconnects >= 1, what="reconnect")
            wait_until(lambda: gw.configs_ignored >= 4, what="the retained config after the reconnect")
            stats = gw.stats()
    finally:
        proxy.close()
    assert stats["configs_applied"] == 1 and stats["kit_config_version"] == 2
    assert stats["config_refused"] == 0 and stats["kit_removed_disconnects"] == 1
    assert kit.thermometer.gatt_events().count(("connect", kit.thermometer.address)) == connects
    assert sorted(m.raw for m in got) == sorted(r.hex() for r in (first, added_reading, still))
    assert removed_reading.hex() not in {m.raw for m in rec.measurements()}
    assert status.config_version == 2
    assert all(s.config_version in (1, 2) for s in statuses.statuses() if s.state == "online")


def test_a_malformed_config_is_refused_counted_and_the_current_one_stays(
    settings, gateway_id, radio, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    kit = HomeKit.install(radio)
    v1 = kit_config(gateway_id, kit)
    good = contract.encode(_config(gateway_id, 7, *kit.kit_devices())).decode()
    secret = "02:48:4D:99:99:99"  # an address that must not reach the log
    hostile = [
        b"{not json",
        good.replace(f'"gateway_id":"{gateway_id}"', '"gateway_id":"gw-someone-else"').encode(),
        good.replace(kit.scale.address, secret.lower()).encode(),  # addresses are upper-case
        good.replace('"version":7', '"version":"8"').encode(),  # a string, not an integer
        good.replace('"version":7', '"version":0').encode(),
        good.replace('"v":1', '"v":2').encode(),
        b'{"v":1,"v":1}',
        b"x" * (contract.MAX_CONFIG_BYTES + 1),
    ]
    with (
        Recorder(settings.mqtt_url, contract.measurements_topic(gateway_id)) as rec,
        Gateway(settings, gateway_id=gateway_id, ble=radio.backend, config=v1) as gw,
    ):
        for payload in hostile:
            publish_retained(settings.mqtt_url, contract.config_topic(gateway_id), payload)
        wait_until(lambda: gw.publisher.config_refused == len(hostile), what="every bad config refused")
        wait_until(lambda: kit.oximeter.subscribed(uuids.PLX_SPOT_CHECK_MEASUREMENT), what="oximeter")
        reading = kit.measure_spo2(94, 70)
        got = rec.wait_for_measurements(1)
        stats = gw.stats()
    assert stats["config_refused"] == len(hostile) and stats["configs_applied"] == 0
    assert gw.config == v1 and stats["kit_config_version"] == 1
    assert [m.raw for m in got] == [reading.hex()]
    assert "refused a kit config that is not valid" in caplog.text
    assert secret not in caplog.text.upper() and "not json" not in caplog.text


# --- a reboot without network ---------------------------------------------------------------------


def test_the_applied_config_survives_a_restart_without_broker(mqtt_url, tmp_path, gateway_id) -> None:
    radio = VirtualRadio()
    kit = HomeKit.install(radio, home=1)
    neighbour = HomeKit.install(radio, home=2)
    queue_path = tmp_path / "queue.sqlite"
    settings = Settings(mqtt_url=mqtt_url, data_dir=tmp_path, gateway_batch_linger_s=0.05)
    _publish(mqtt_url, kit_config(gateway_id, kit, version=3))
    # First boot: no config of its own; the server's arrives from the broker.
    with Gateway(settings, gateway_id=gateway_id, queue_path=queue_path, ble=radio.backend) as gw:
        wait_until(lambda: gw.configs_applied == 1, what="the config from the broker applied")
        assert gw.config is not None and gw.config.version == 3
    # Reboot with the router down: the saved config still decides what is read.
    unreachable = Settings(mqtt_url=f"mqtt://127.0.0.1:{services.free_port()}", data_dir=tmp_path)
    with Gateway(unreachable, gateway_id=gateway_id, queue_path=queue_path, ble=radio.backend) as gw:
        wait_until(lambda: kit.oximeter.subscribed(uuids.PLX_SPOT_CHECK_MEASUREMENT), what="own oximeter")
        neighbour.measure_spo2(85, 110)
        kit.measure_spo2(97, 61)
        wait_until(lambda: gw.measurements_enqueued == 1, what="the own reading queued")
        wait_until(lambda: gw.stats()["unknown_devices"] == 4, what="the neighbour's devices seen")
        stats = gw.stats()
        queued = gw.queue.peek(10)
    assert stats["kit_config_version"] == 3 and stats["connected"] is False
    assert stats["ble_connects"] == 4
    (message,) = queued
    batch = contract.MeasurementBatch.model_validate_json(message.payload)
    assert [_spo2(m) for m in batch.measurements] == [97]
    assert all(d.sent == 0 for d in neighbour.devices)


def test_an_initial_config_does_not_override_a_newer_saved_one(mqtt_url, tmp_path, gateway_id) -> None:
    radio = VirtualRadio()
    kit = HomeKit.install(radio)
    queue_path = tmp_path / "queue.sqlite"
    unreachable = Settings(mqtt_url=f"mqtt://127.0.0.1:{services.free_port()}", data_dir=tmp_path)
    newer = _config(gateway_id, 5, *kit.kit_devices()[:1])
    with Gateway(unreachable, gateway_id=gateway_id, queue_path=queue_path, ble=radio.backend, config=newer):
        pass
    older = kit_config(gateway_id, kit, version=1)
    with Gateway(
        unreachable, gateway_id=gateway_id, queue_path=queue_path, ble=radio.backend, config=older
    ) as gw:
        assert gw.config == newer
    newest = kit_config(gateway_id, kit, version=6)
    with Gateway(
        unreachable, gateway_id=gateway_id, queue_path=queue_path, ble=radio.backend, config=newest
    ) as gw:
        assert gw.config == newest


# --- pairing --------------------------------------------------------------------------------------


def test_the_virtual_meter_refuses_an_unbonded_link_as_a_real_one_does() -> None:
    """The fake radio's side of pairing, through bleak's public client: the gateway's tests rely on it."""
    radio = VirtualRadio()
    meter = glucose_meter(radio, METER)

    async def main() -> None:
        async with BleakClient(METER, backend=radio.backend.client) as client:
            measurement = client.services.get_characteristic(uuids.long_uuid(uuids.GLUCOSE_MEASUREMENT))
            battery = client.services.get_characteristic(uuids.long_uuid(uuids.BATTERY_LEVEL))
            assert measurement is not None and battery is not None
            with pytest.raises(BleakGATTProtocolError) as refused:
                await client.start_notify(measurement, lambda _c, _d: None)
            assert refused.value.code == 0x05  # Insufficient Authentication
            assert await client.read_gatt_char(battery)  # the Battery Service needs no bond
            with pytest.raises(BleakError, match="authentication failed"):
                await client.pair(passkey="000000")
            await client.pair(passkey=METER_PASSKEY)
            await client.start_notify(measurement, lambda _c, _d: None)

    asyncio.run(main())
    assert meter.bonded and meter.pairings_refused == 1 and meter.security_refusals == 1


def test_a_passkey_meter_is_read_with_the_right_passkey_and_refused_with_a_wrong_one(
    settings, gateway_id, radio, caplog
) -> None:
    meter = glucose_meter(radio, METER)
    record = meter.take_reading(mmol_per_l=7.3)
    wrong = _config(
        gateway_id, 1, contract.KitDevice(address=METER, profile=meter.profile_id or "", passkey="123456")
    )
    gw = Gateway(settings, gateway_id=gateway_id, ble=radio.backend, config=wrong)
    gw.central.retry_min_s = 0.2
    with Recorder(settings.mqtt_url, contract.measurements_topic(gateway_id)) as rec, gw:
        wait_until(lambda: gw.central.pairing_failures[METER] >= 2, what="pairing refused, retried")
        refused_stats = gw.stats()
        assert meter.sent == 0 and not meter.subscribed(uuids.GLUCOSE_MEASUREMENT) and not meter.bonded
        _publish(settings.mqtt_url, kit_config(gateway_id, meter, version=2))  # the right passkey
        got = rec.wait_for_measurements(1)
        stats = gw.stats()
    assert [m.raw for m in got] == [record.hex()]
    assert meter.bonded and meter.pairings_refused == refused_stats["ble_pairing_failures"][METER]  # type: ignore[index]
    assert refused_stats["measurements_enqueued"] == 0 and refused_stats["ble_connect_steps"] == {}
    assert stats["kit_config_version"] == 2
    assert "pairing (passkey) failed" in caplog.text
    assert METER_PASSKEY not in caplog.text and "123456" not in caplog.text


def test_a_passkey_device_without_a_usable_passkey_is_refused_and_counted() -> None:
    radio = VirtualRadio()
    meter = glucose_meter(radio, METER)
    no_passkey = _config("gw-kit-test", 1, contract.KitDevice(address=METER, profile="generic_glucose_meter"))
    with_passkey = kit_config("gw-kit-test", meter)
    # bleak's BlueZ backend cannot enter a passkey: the same radio without that ability.
    no_entry = BleBackend(scanner=radio.backend.scanner, client=radio.backend.client, passkey_entry=False)

    async def run(backend: BleBackend, config: contract.KitConfig) -> BleCentral:
        central = BleCentral(backend, load_profiles(), lambda *_a: None, config=config)
        stop = asyncio.Event()
        task = asyncio.create_task(central.run(stop))
        await asyncio.sleep(0.5)  # ten advertising intervals
        stop.set()
        await task
        return central

    for backend, config, reason in (
        (radio.backend, no_passkey, "no_passkey"),
        (no_entry, with_passkey, "passkey_unsupported"),
    ):
        central = asyncio.run(run(backend, config))
        assert central.stats()["kit_devices_refused"] == {f"{METER}/{reason}": 1}
        assert central.connects == 0 and central.stats()["unknown_devices"] == 0
    assert ("connect", METER) not in meter.gatt_events()


# --- the broker outage: exactly once, and only the kit's readings ----------------------------------


@pytest.fixture
def enrolled(db, database_url, unique_id) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A gateway id enrolled to a patient, so ingest stores (and confirms) what it sends."""
    ensure_ward(db, f"ward-{unique_id}", "Testavdelning")
    kit = f"gw-test-{unique_id}"
    enrolled = enrol_patient(db, ward_id=f"ward-{unique_id}", display_name="Oskar Test", gateway_id=kit)
    # A reading is the patient's when their kit assignment covers its time (issue 11); the virtual
    # devices keep UTC while the gateway reads their clocks as the site's time, up to two hours back.
    db.execute(
        "UPDATE kit_assignments SET starts_at = now() - interval '3 hours' WHERE patient_id = %s",
        (enrolled.patient_id,),
    )
    return kit


def _stored_spo2(db) -> list[float]:  # type: ignore[no-untyped-def]
    rows = db.execute("SELECT value FROM observations WHERE vital = 'spo2' ORDER BY time").fetchall()
    return [r[0] for r in rows]


def test_broker_outage_delivers_the_kits_readings_exactly_once_and_no_neighbours(
    broker_dir: Path, tmp_path, db, database_url, unique_id, enrolled
) -> None:
    broker = services.start_mosquitto(broker_dir)
    port = MqttTarget.from_url(broker.url).port
    gateway_id = enrolled
    radio = VirtualRadio()
    kit = HomeKit.install(radio, home=1)
    neighbour = HomeKit.install(radio, home=2)
    settings = Settings(
        mqtt_url=broker.url, data_dir=tmp_path, gateway_batch_max_measurements=2, gateway_batch_linger_s=0.02
    )
    ingest = Settings(
        mqtt_url=broker.url, database_url=database_url, ingest_client_id=f"ingest-kit-{unique_id}"
    )
    _publish(broker.url, kit_config(gateway_id, kit, version=4))  # retained, kept across the restart
    try:
        with (
            running_ingest(ingest),
            Recorder(
                broker.url,
                contract.measurements_topic(gateway_id),
                client_id=f"rec-{unique_id}",
                persistent=True,
            ) as rec,
            Gateway(settings, gateway_id=gateway_id, ble=radio.backend) as gw,
        ):
            wait_until(lambda: gw.configs_applied == 1, what="the retained config applied")
            wait_until(lambda: kit.oximeter.subscribed(uuids.PLX_SPOT_CHECK_MEASUREMENT), what="oximeter")
            kit.measure_spo2(97, 70)
            neighbour.measure_spo2(70, 130)
            assert gw.publisher.flush(15), "first reading not confirmed"
            broker.stop()
            wait_until(lambda: not gw.publisher.connected, what="the outage noticed")
            for spo2 in range(85, 91):
                kit.measure_spo2(spo2, 80)
                neighbour.measure_spo2(spo2 - 20, 120)
            wait_until(lambda: gw.measurements_enqueued == 7, what="own readings queued")
            broker = services.start_mosquitto(broker_dir, port=port)
            wait_until(lambda: gw.publisher.reconnects >= 1, what="reconnect", timeout=20)
            assert gw.publisher.flush(30), "queue did not drain"
            got = rec.wait_for_measurements(7)
            wait_until(lambda: gw.configs_ignored >= 1, what="the retained config again, ignored")
            stats = gw.stats()
    finally:
        broker.stop()
    assert stats["configs_applied"] == 1 and stats["kit_config_version"] == 4
    assert stats["queue_depth"] == 0 and stats["unconfirmed"] == 0
    assert sorted(_stored_spo2(db)) == [*range(85, 91), 97]  # each own reading stored once, none else
    ids = Counter(m.id for m in got)
    assert len(ids) == 7
    assert all(d.sent == 0 for d in neighbour.devices)
