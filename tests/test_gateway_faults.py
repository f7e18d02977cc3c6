"""Fault tests: the broker goes away, the connection is cut, the gateway restarts with a full queue.

A message leaves the gateway's queue only on ingest's receipt, so every test that waits for the queue
to drain runs the real ingest service against a real database with the kit enrolled.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from care.enrolment import enrol_patient, ensure_ward
from core import contract
from core.settings import MqttTarget, Settings
from core.vitals import Vital
from devservices import services
from gateway.queue import StoreAndForwardQueue
from gateway.service import Gateway
from simulator.virtual_devices import HomeKit
from simulator.virtual_radio import VirtualRadio
from tests.support.gateway import Recorder, TcpProxy, clear_retained, kit_config, wait_until
from tests.support.ingest import running_ingest
from tests.support.mqtt import drop_session


def _spo2(m: contract.Measurement) -> float:
    return next(o.value for o in m.observations if o.vital == Vital.SPO2)


# The home's devices keep the site's local time, as the gateway sets and reads their clocks; a reading is
# the patient's only if the kit's lend covers its time (issue 11).
DEVICE_ZONE = Settings().site_zone()


@pytest.fixture
def kit(db, database_url, unique_id) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A gateway id enrolled to a patient, so ingest stores (and confirms) what it sends."""
    ensure_ward(db, f"ward-{unique_id}", "Testavdelning")
    gateway_id = f"gw-test-{unique_id}"
    enrol_patient(db, ward_id=f"ward-{unique_id}", display_name="Oskar Test", gateway_id=gateway_id)
    return gateway_id


def _ingest_settings(broker_url: str, database_url: str, unique_id: str) -> Settings:
    return Settings(
        mqtt_url=broker_url, database_url=database_url, ingest_client_id=f"ingest-gwf-{unique_id}"
    )


def _stored_spo2(db) -> list[float]:  # type: ignore[no-untyped-def]
    rows = db.execute("SELECT value FROM observations WHERE vital = 'spo2' ORDER BY time").fetchall()
    return [r[0] for r in rows]


def test_broker_outage_messages_wait_in_queue_and_arrive_after_restart(
    broker_dir, tmp_path, unique_id, kit, db, database_url
) -> None:
    broker = services.start_mosquitto(broker_dir)
    port = MqttTarget.from_url(broker.url).port
    gateway_id = kit
    settings = Settings(
        mqtt_url=broker.url, data_dir=tmp_path, gateway_batch_max_measurements=2, gateway_batch_linger_s=0.02
    )
    radio = VirtualRadio()
    home = HomeKit.install(radio, device_tz=DEVICE_ZONE)
    try:
        # A persistent session: what the gateway publishes while this subscriber reconnects is kept for it.
        with (
            running_ingest(_ingest_settings(broker.url, database_url, unique_id)),
            Recorder(
                broker.url,
                contract.measurements_topic(gateway_id),
                client_id=f"rec-{unique_id}",
                persistent=True,
            ) as rec,
            Gateway(
                settings, gateway_id=gateway_id, ble=radio.backend, config=kit_config(gateway_id, home)
            ) as gw,
        ):
            home.measure_spo2(97, 70)
            rec.wait_for_measurements(1)
            assert gw.publisher.flush(15), "first reading not confirmed"
            broker.stop()  # a clean stop: the broker saves ingest's session and the recorder's
            wait_until(lambda: not gw.publisher.connected, what="gateway to notice the outage")
            for spo2 in range(85, 95):
                home.measure_spo2(spo2, 80)
            wait_until(lambda: gw.measurements_enqueued == 11, what="readings queued")
            assert len(gw.queue) == 5  # 10 readings, 2 per message, all waiting on disk
            assert gw.publisher.confirmed == 1
            broker = services.start_mosquitto(broker_dir, port=port)
            wait_until(lambda: gw.publisher.reconnects >= 1, what="reconnect", timeout=20)
            assert gw.publisher.flush(30), "queue did not drain"
            got = rec.wait_for_measurements(11)
            stats = gw.stats()
    finally:
        broker.stop()
    assert stats["queue_depth"] == 0 and stats["confirmed"] == 6 and stats["unconfirmed"] == 0
    assert sorted(_stored_spo2(db)) == [*range(85, 95), 97]  # each reading stored once
    # At least once: a message may come twice, but then it is the very same message.
    ids = Counter(m.id for m in got)
    assert len(ids) == 11
    assert sorted(_spo2(m) for m in {m.id: m for m in got}.values()) == [*range(85, 95), 97]
    message_ids = Counter(b.message_id for b in rec.batches())
    assert len(message_ids) == 6
    for batch in rec.batches():
        assert ids[batch.measurements[0].id] == message_ids[batch.message_id]


def test_queue_left_by_a_stopped_gateway_is_sent_by_the_next_run(
    mqtt_url, tmp_path, unique_id, kit, db, database_url
) -> None:
    gateway_id = kit
    queue_path = tmp_path / "queue.sqlite"
    radio = VirtualRadio()
    home = HomeKit.install(radio, device_tz=DEVICE_ZONE)
    unreachable = Settings(mqtt_url=f"mqtt://127.0.0.1:{services.free_port()}", data_dir=tmp_path)
    with Gateway(
        unreachable,
        gateway_id=gateway_id,
        queue_path=queue_path,
        ble=radio.backend,
        config=kit_config(gateway_id, home),
    ) as gw:
        sent = [home.measure_spo2(spo2, 75) for spo2 in (91, 92, 93)]
        wait_until(lambda: gw.measurements_enqueued == 3, what="readings queued")
        assert gw.publisher.acked == 0
    ingest = _ingest_settings(mqtt_url, database_url, unique_id)
    try:
        with running_ingest(ingest), Recorder(mqtt_url, contract.measurements_topic(gateway_id)) as rec:
            settings = Settings(mqtt_url=mqtt_url, data_dir=tmp_path)
            with Gateway(
                settings, gateway_id=gateway_id, queue_path=queue_path, ble=VirtualRadio().backend
            ) as gw:
                got = rec.wait_for_measurements(3)
                assert gw.publisher.flush(15)
    finally:
        drop_session(mqtt_url, ingest.ingest_client_id)
        clear_retained(mqtt_url, contract.status_topic(gateway_id))
    assert [m.raw for m in got] == [p.hex() for p in sent]
    assert _stored_spo2(db) == [91, 92, 93]


def test_last_will_says_offline_when_the_connection_dies(mqtt_url, tmp_path, unique_id) -> None:
    gateway_id = f"gw-test-{unique_id}"
    proxy = TcpProxy(MqttTarget.from_url(mqtt_url))
    settings = Settings(mqtt_url=proxy.url, data_dir=tmp_path)
    try:
        with Recorder(mqtt_url, contract.status_topic(gateway_id)) as rec:
            with Gateway(settings, gateway_id=gateway_id, ble=VirtualRadio().backend) as gw:
                wait_until(lambda: rec.statuses(), what="online status")
                proxy.cut()  # like the home router losing power: no DISCONNECT reaches the broker
                wait_until(lambda: len(rec.statuses()) >= 2, what="last will")
                wait_until(lambda: len(rec.statuses()) >= 3, what="online again after reconnecting")
                assert gw.publisher.reconnects == 1
            wait_until(lambda: len(rec.statuses()) >= 4, what="goodbye")
            statuses = rec.statuses()
            retained = [m.retain for m in rec.messages]
    finally:
        proxy.close()
        clear_retained(mqtt_url, contract.status_topic(gateway_id))
    assert [s.state for s in statuses] == ["online", "offline", "online", "offline"]
    will, goodbye = statuses[1], statuses[3]
    assert will.at is None and will.gateway_id == gateway_id  # composed at connect time: the will
    assert goodbye.at is not None
    assert retained == [False, False, False, False]  # live deliveries; the broker also retained each one


def test_message_stays_queued_until_its_receipt_and_is_resent_with_the_same_id(
    mqtt_url, tmp_path, unique_id, kit, db, database_url
) -> None:
    gateway_id = kit
    proxy = TcpProxy(MqttTarget.from_url(mqtt_url))
    settings = Settings(mqtt_url=proxy.url, data_dir=tmp_path, gateway_batch_linger_s=0.02)
    ingest = _ingest_settings(mqtt_url, database_url, unique_id)
    radio = VirtualRadio()
    home = HomeKit.install(radio, device_tz=DEVICE_ZONE)
    try:
        with (
            running_ingest(ingest),
            Recorder(mqtt_url, contract.measurements_topic(gateway_id)) as rec,
            Gateway(
                settings, gateway_id=gateway_id, ble=radio.backend, config=kit_config(gateway_id, home)
            ) as gw,
        ):
            assert gw.publisher.wait_connected(10)
            # The broker gets the PUBLISH; its PUBACK and ingest's receipt are lost on the way back.
            proxy.drop_replies = True
            sent = home.measure_spo2(94, 88)
            rec.wait_for_measurements(1)
            wait_until(lambda: _stored_spo2(db) == [94], what="stored by ingest")
            assert len(gw.queue) == 1 and gw.publisher.acked == 0  # delivered, but not known to be
            proxy.drop_replies = False
            proxy.cut()
            assert gw.publisher.flush(15), "not re-sent and confirmed after reconnecting"
            got = rec.wait_for_measurements(2)
            assert gw.publisher.published == 2 and gw.publisher.acked == 1 and gw.publisher.confirmed == 1
    finally:
        proxy.close()
        drop_session(mqtt_url, ingest.ingest_client_id)
        clear_retained(mqtt_url, contract.status_topic(gateway_id))
    first, second = rec.batches()
    assert first.message_id == second.message_id  # a QoS 1 duplicate, recognisable as such
    assert got[0].id == got[1].id and got[0].raw == sent.hex()
    assert _stored_spo2(db) == [94]  # stored once


def test_full_queue_holds_readings_in_memory_until_the_broker_drains_it(
    mqtt_url, tmp_path, unique_id, kit, db, database_url
) -> None:
    gateway_id = kit
    # The proxy forwards to a closed port first: the broker is "not there yet".
    proxy = TcpProxy(MqttTarget(host="127.0.0.1", port=services.free_port()))
    settings = Settings(
        mqtt_url=proxy.url, data_dir=tmp_path, gateway_batch_max_measurements=1, gateway_batch_linger_s=0
    )
    radio = VirtualRadio()
    home = HomeKit.install(radio, device_tz=DEVICE_ZONE)
    tiny = StoreAndForwardQueue(tmp_path / "tiny.sqlite", max_bytes=48 * 1024)
    expected = [(float(80 + i % 20), float(60 + i % 40)) for i in range(120)]
    ingest = _ingest_settings(mqtt_url, database_url, unique_id)
    try:
        with (
            running_ingest(ingest),
            Recorder(mqtt_url, contract.measurements_topic(gateway_id)) as rec,
            Gateway(
                settings,
                gateway_id=gateway_id,
                queue=tiny,
                ble=radio.backend,
                config=kit_config(gateway_id, home),
            ) as gw,
        ):
            for spo2, pulse in expected:
                home.measure_spo2(spo2, pulse)
            wait_until(lambda: gw.queue_full_events >= 1, what="queue full")
            assert 0 < len(gw.queue) < 120 and gw.pending_measurements > 0
            proxy.upstream = MqttTarget.from_url(mqtt_url)  # the network is back
            got = rec.wait_for_measurements(120, timeout=30)
            assert gw.publisher.flush(20)
            assert gw.pending_measurements == 0 and gw.measurements_enqueued == 120
    finally:
        proxy.close()
        drop_session(mqtt_url, ingest.ingest_client_id)
        clear_retained(mqtt_url, contract.status_topic(gateway_id))
    # Nothing dropped, nothing reordered; each stored once.
    assert [tuple(o.value for o in m.observations) for m in got] == expected
    assert sorted(_stored_spo2(db)) == sorted(spo2 for spo2, _ in expected)
