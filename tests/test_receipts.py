"""End-to-end receipts: a gateway forgets a message only when ingest, after its commit, says so.

Real Mosquitto (the shared one, or one started here where the test needs a broker of its own),
real PostgreSQL, the real ingest service and the real gateway code on a virtual radio.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from care.enrolment import enrol_patient, ensure_ward
from core import contract
from core.settings import MqttTarget, Settings
from core.vitals import Vital
from devservices import services
from gateway.publisher import Publisher
from gateway.queue import StoreAndForwardQueue
from gateway.service import Gateway
from simulator.virtual_devices import HomeKit
from simulator.virtual_radio import VirtualRadio
from tests.support.gateway import clear_retained, kit_config
from tests.support.ingest import batch, measurement, running_ingest
from tests.support.mqtt import drop_session, publish_all, subscriber
from tests.support.waiting import wait_until


@pytest.fixture
def own_broker(broker_dir: Path) -> Iterator[services.Broker]:
    """A broker of this test's own: no other test's ingest session can be subscribed on it."""
    broker = services.start_mosquitto(broker_dir)
    yield broker
    broker.stop()


@pytest.fixture
def kit(db, unique_id: str) -> str:  # type: ignore[no-untyped-def]
    ensure_ward(db, f"ward-{unique_id}", "Testavdelning")
    gateway_id = f"gw-rc-{unique_id}"
    enrolled = enrol_patient(
        db, ward_id=f"ward-{unique_id}", display_name="Oskar Test", gateway_id=gateway_id
    )
    # The kit has been Oskar's since this morning: a reading is his only if his kit assignment covers
    # its time (issue 11), and the virtual devices here keep UTC while the gateway reads their clocks
    # as the site's time, so their readings carry times up to two hours back.
    db.execute(
        "UPDATE kit_assignments SET starts_at = now() - interval '3 hours' WHERE patient_id = %s",
        (enrolled.patient_id,),
    )
    return gateway_id


def _ingest(broker_url: str, database_url: str, unique_id: str) -> Settings:
    return Settings(mqtt_url=broker_url, database_url=database_url, ingest_client_id=f"ingest-rc-{unique_id}")


def _gateway_settings(broker_url: str, tmp_path: Path, **extra: object) -> Settings:
    return Settings(mqtt_url=broker_url, data_dir=tmp_path, gateway_batch_linger_s=0.02, **extra)  # type: ignore[arg-type]


def _count(db, sql: str, *params: object) -> int:  # type: ignore[no-untyped-def]
    return int(db.execute(sql, params).fetchone()[0])


def _receipts(messages: list) -> list[contract.MessageReceipt]:  # type: ignore[type-arg]
    out: list[contract.MessageReceipt] = []
    for m in messages:
        gateway_id = m.topic.split("/")[3]
        out += contract.decode_receipt(m.topic, bytes(m.payload), gateway_id=gateway_id).messages
    return out


# --- the gateway keeps a message until its receipt ------------------------------------------------


def test_a_puback_deletes_nothing_only_the_receipt_does(
    own_broker, db, database_url, kit, tmp_path, unique_id
) -> None:
    ingest = _ingest(own_broker.url, database_url, unique_id)
    with running_ingest(ingest):
        pass  # ingest's persistent session now exists on the broker, and ingest is gone
    radio = VirtualRadio()
    home = HomeKit.install(radio)
    with Gateway(
        _gateway_settings(own_broker.url, tmp_path),
        gateway_id=kit,
        ble=radio.backend,
        config=kit_config(kit, home),
    ) as gw:
        home.measure_spo2(93, 71)
        home.measure_spo2(94, 72)
        wait_until(lambda: gw.publisher.acked == gw.batches_enqueued >= 1, what="PUBACKs")
        # The broker has the messages (queued for ingest's session) and said so; the gateway keeps them.
        assert len(gw.queue) == gw.batches_enqueued and gw.publisher.confirmed == 0
        waiting = gw.publisher.stats()
        assert waiting["unconfirmed"] == gw.batches_enqueued
        with running_ingest(ingest):
            assert gw.publisher.flush(15), "not confirmed once ingest came back"
        assert gw.publisher.confirmed == gw.batches_enqueued and gw.publisher.no_subscribers == 0
    assert _count(db, "SELECT count(*) FROM observations WHERE vital = 'spo2'") == 2


def test_no_matching_subscribers_is_not_a_delivery(
    own_broker, db, database_url, kit, tmp_path, unique_id
) -> None:
    """A broker without ingest's session (it restarted without its state, or ingest never connected)
    PUBACKs 0x10 and keeps nothing: the gateway sends again, and the reading arrives once ingest is there."""
    radio = VirtualRadio()
    home = HomeKit.install(radio)
    ingest = _ingest(own_broker.url, database_url, unique_id)
    with Gateway(
        _gateway_settings(own_broker.url, tmp_path),
        gateway_id=kit,
        ble=radio.backend,
        config=kit_config(kit, home),
    ) as gw:
        home.measure_spo2(91, 88)
        wait_until(lambda: gw.publisher.no_subscribers >= 1, what="PUBACK 0x10")
        assert len(gw.queue) == 1 and gw.publisher.confirmed == 0
        with running_ingest(ingest):
            assert gw.publisher.flush(20), "not sent again and confirmed"
        assert gw.publisher.resent >= 1
    assert _count(db, "SELECT count(*) FROM observations WHERE vital = 'spo2'") == 1


def test_a_receipt_for_a_later_message_resends_an_earlier_one_at_once(
    mqtt_url, db, database_url, kit, tmp_path, unique_id
) -> None:
    """A message the broker lost (here: taken out of the broker's hands by sending it nowhere) has no
    receipt while a later one has: the gateway sends it again without waiting for its time-out."""
    queue = StoreAndForwardQueue(tmp_path / "q.sqlite")
    lost = batch(kit, [measurement({Vital.SPO2: 90})])
    later = batch(kit, [measurement({Vital.SPO2: 91})])
    lost_id = json.loads(lost[1])["message_id"]
    queue.put(lost[0], lost[1], message_id=lost_id, measurements=1)
    # As if sent long ago and dropped by a broker crash: due again only in an hour.
    queue.mark_sent([(lost_id, datetime.now(UTC).timestamp() + 3600)], now=1.0)
    queue.put(later[0], later[1], message_id=json.loads(later[1])["message_id"], measurements=1)
    ingest = _ingest(mqtt_url, database_url, unique_id)
    publisher = Publisher(
        MqttTarget.from_url(mqtt_url), kit, queue, receipt_timeout_s=3600, receipt_timeout_max_s=3600
    )
    try:
        with running_ingest(ingest):
            publisher.start()
            assert publisher.flush(15), "the lost message was not sent again behind the later one's receipt"
            publisher.stop()
    finally:
        drop_session(mqtt_url, ingest.ingest_client_id)
        clear_retained(mqtt_url, contract.status_topic(kit))
        queue.close()
    assert publisher.lost_in_transit == 1 and publisher.resent == 1
    assert sorted(r[0] for r in db.execute("SELECT value FROM observations").fetchall()) == [90, 91]


# --- what ingest confirms ------------------------------------------------------------------------


@pytest.fixture
def ingest_settings(mqtt_url: str, database_url: str, unique_id: str) -> Iterator[Settings]:
    s = _ingest(mqtt_url, database_url, unique_id)
    yield s
    drop_session(mqtt_url, s.ingest_client_id)


def test_every_outcome_is_confirmed_and_nothing_is_dropped(ingest_settings, db, kit, unique_id) -> None:
    good = batch(kit, [measurement({Vital.SPO2: 97})])
    bad_value = measurement({Vital.SPO2: 96}).model_dump(mode="json")
    bad_value["observations"][0]["value"] = 150.0  # impossible: dead-lettered alone
    twice = measurement({Vital.PULSE_RATE: 70}).model_dump(mode="json")
    twice["observations"].append({"vital": "pulse_rate", "value": 71.0, "unit": "/min", "quality": []})
    ok = measurement({Vital.SPO2: 95}).model_dump(mode="json")
    mixed = {
        "v": 1,
        "message_id": str(uuid.uuid4()),
        "gateway_id": kit,
        "sent_at": datetime.now(UTC).isoformat(),
        "measurements": [ok, bad_value, twice],
    }
    # A second "measurements" key: pydantic would keep the last array and drop the first in silence.
    doubled_key = json.dumps(mixed)[:-1] + ', "measurements": [' + json.dumps(ok) + "]}"
    stranger = f"gw-nobody-{unique_id}"
    unknown = batch(stranger, [measurement({Vital.SPO2: 97})])
    topic = contract.measurements_topic(kit)
    with (
        subscriber(ingest_settings.mqtt_url, contract.receipts_topic(kit)) as mine,
        subscriber(ingest_settings.mqtt_url, contract.receipts_topic(stranger)) as theirs,
        running_ingest(ingest_settings) as service,
    ):
        publish_all(
            ingest_settings.mqtt_url,
            [good, (topic, json.dumps(mixed).encode()), (topic, doubled_key.encode()), unknown, good],
        )
        got = _receipts(mine.take(1, timeout=15))
        while len(got) < 4:
            got += _receipts(mine.take(1, timeout=15))
        foreign = _receipts(theirs.take(1, timeout=15))
        assert service.metrics["receipts_sent"] == 5
    ids = [str(r.message_id) for r in got]
    good_id, mixed_id = json.loads(good[1])["message_id"], mixed["message_id"]
    assert ids == [good_id, mixed_id, mixed_id, good_id]  # arrival order; the re-send confirmed again
    assert [r.outcome for r in got] == ["stored", "partly_stored", "dead_lettered", "stored"]
    assert got[1].rejected == (1, 2)
    assert got[2].reason is not None and got[2].reason.startswith("schema: duplicate key")
    assert foreign[0].outcome == "dead_lettered" and "unknown gateway" in (foreign[0].reason or "")
    stored = db.execute("SELECT vital, value FROM observations ORDER BY value").fetchall()
    assert stored == [("spo2", 95.0), ("spo2", 97.0)]  # the good reading once, the mixed one's good part
    reasons = [r[0] for r in db.execute("SELECT reason FROM dead_letters ORDER BY id").fetchall()]
    assert len(reasons) == 4
    assert reasons[0].startswith("measurement 1: ") and reasons[1].startswith("measurement 2: ")
    assert "appears more than once" in reasons[1]
    assert reasons[2].startswith("schema: duplicate key") and "unknown gateway" in reasons[3]


def test_a_resend_never_raises_an_alert_twice_nor_moves_the_latest_value_back(
    ingest_settings, db, kit
) -> None:
    now = datetime.now(UTC)
    low = batch(kit, [measurement({Vital.SPO2: 85}, at=now - timedelta(minutes=3))])
    normal = batch(kit, [measurement({Vital.SPO2: 97}, at=now - timedelta(minutes=1))])
    late = batch(kit, [measurement({Vital.SPO2: 84}, at=now - timedelta(minutes=2))])  # lost, re-sent late
    events = "SELECT count(*) FROM alert_events WHERE kind IN ('opened', 'reprioritised', 'pending')"
    with running_ingest(ingest_settings) as service:
        publish_all(ingest_settings.mqtt_url, [low])
        wait_until(lambda: _count(db, events) >= 1, what="the alert")
        # A nurse acknowledges (a high alert latches until then), and the next reading is normal: resolved.
        db.execute("UPDATE alerts SET state = 'acknowledged', acknowledged_at = now() WHERE vital = 'spo2'")
        publish_all(ingest_settings.mqtt_url, [normal])
        latest = "SELECT value FROM latest_vitals WHERE vital = 'spo2'"
        wait_until(lambda: db.execute(latest).fetchone()[0] == 97.0, what="second message")
        raised = _count(db, events)
        before = db.execute("SELECT id, state, priority, message FROM alerts ORDER BY id").fetchall()
        assert ("resolved", "high", "Syremättnad ≤ 91 %: 85 %") in [a[1:] for a in before]
        publish_all(ingest_settings.mqtt_url, [low, late, low])  # re-sends, and a late first arrival
        wait_until(lambda: service.metrics["duplicates"] == 2, what="re-sends")
        wait_until(lambda: _count(db, "SELECT count(*) FROM observations") == 3, what="the late reading")
    assert _count(db, events) == raised
    assert db.execute("SELECT id, state, priority, message FROM alerts ORDER BY id").fetchall() == before
    assert db.execute("SELECT value FROM latest_vitals WHERE vital = 'spo2'").fetchone()[0] == 97.0
    assert _count(db, "SELECT count(*) FROM observations") == 3


# --- the gateway trusts only its own, well-formed receipts ---------------------------------------


def test_a_gateway_ignores_receipts_that_are_not_valid(mqtt_url, kit, tmp_path) -> None:
    radio = VirtualRadio()
    home = HomeKit.install(radio)
    unreachable_ingest = _gateway_settings(mqtt_url, tmp_path)  # no ingest: nothing gets confirmed
    topic = contract.receipts_topic(kit)
    try:
        with Gateway(
            unreachable_ingest, gateway_id=kit, ble=radio.backend, config=kit_config(kit, home)
        ) as gw:
            home.measure_spo2(92, 80)
            wait_until(lambda: gw.publisher.published >= 1, what="sent")
            (queued,) = gw.queue.peek(10)
            real = {
                "v": 1,
                "gateway_id": kit,
                "at": datetime.now(UTC).isoformat(),
                "messages": [{"message_id": queued.message_id, "outcome": "stored"}],
            }
            hostile = [
                b"not json",
                b"\xff\xfe",
                json.dumps({**real, "gateway_id": "gw-someone-else"}).encode(),
                json.dumps({**real, "extra": 1}).encode(),
                json.dumps({**real, "messages": []}).encode(),
                json.dumps(
                    {**real, "messages": [{"message_id": queued.message_id, "outcome": "lost"}]}
                ).encode(),
                json.dumps(real)[:-1].encode() + b', "gateway_id": "' + kit.encode() + b'"}',  # duplicate key
                json.dumps({**real, "v": 2}).encode(),
                b"{" + b'"a":' * 10 + b"1" + b"}" * 10,
            ]
            publish_all(mqtt_url, [(topic, p) for p in hostile])
            wait_until(lambda: gw.publisher.receipts_refused == len(hostile), what="refusals")
            assert len(gw.queue) == 1 and gw.publisher.confirmed == 0
            # A receipt for some other message id changes nothing either.
            other = {**real, "messages": [{"message_id": str(uuid.uuid4()), "outcome": "stored"}]}
            publish_all(mqtt_url, [(topic, json.dumps(other).encode()), (topic, json.dumps(real).encode())])
            wait_until(lambda: len(gw.queue) == 0, what="the valid receipt")
            assert gw.publisher.confirmed == 1
    finally:
        clear_retained(mqtt_url, contract.status_topic(kit))


# --- the broker's state and the kit's status -----------------------------------------------------


def test_ingest_counts_a_session_the_broker_lost(broker_dir, database_url, unique_id, caplog) -> None:
    broker = services.start_mosquitto(broker_dir)
    port = MqttTarget.from_url(broker.url).port
    try:
        with running_ingest(_ingest(broker.url, database_url, unique_id)) as service:
            wait_until(lambda: service.metrics["mqtt_session_absent_at_start"] == 1, what="first start")
            broker.stop()
            shutil.rmtree(broker_dir / "mosquitto")  # the broker comes back without its state
            broker = services.start_mosquitto(broker_dir, port=port)
            wait_until(lambda: service.metrics["mqtt_sessions_lost"] == 1, timeout=40, what="session lost")
            assert service.wait_connected(15)
    finally:
        broker.stop()
    assert "lost ingest's session" in caplog.text


def test_status_reports_what_awaits_a_receipt_and_ingest_raises_receipts_overdue(
    mqtt_url, db, database_url, kit, tmp_path, unique_id
) -> None:
    from ingest.engine import AlertEngine
    from ingest.writer import BatchWriter

    queue = StoreAndForwardQueue(tmp_path / "q.sqlite")
    for value in (90, 91, 92):
        topic, payload = batch(kit, [measurement({Vital.SPO2: value}), measurement({Vital.PULSE_RATE: 80})])
        queue.put(topic, payload, message_id=json.loads(payload)["message_id"], measurements=2)
    ingest = _ingest(mqtt_url, database_url, unique_id)
    # Sent 25 minutes ago and never confirmed (their time-out is far away): as a kit whose receipts
    # cannot reach it would see them.
    sent_at = datetime.now(UTC).timestamp() - 25 * 60
    queue.mark_sent([(m.message_id, sent_at + 10 * 3600) for m in queue.peek(10)], now=sent_at)
    publisher = Publisher(MqttTarget.from_url(mqtt_url), kit, queue, stuck_after_s=60)
    try:
        with running_ingest(ingest):
            publisher.start()
            wait_until(
                lambda: db.execute("SELECT unconfirmed_messages FROM gateways").fetchone()[0] == 3,
                what="status stored",
            )
            row = db.execute(
                "SELECT unconfirmed_measurements, extract(epoch FROM now() - unconfirmed_since) FROM gateways"
            ).fetchone()
            assert row[0] == 6 and 24 * 60 < row[1] < 27 * 60
            with _autocommit(database_url) as conn:
                writer = BatchWriter(conn, AlertEngine())
                now = datetime.now(UTC)
                writer.tick(now=now)
                writer.tick(now=now + timedelta(minutes=11))  # technical alarms wait 10 minutes
                alert = db.execute(
                    "SELECT state, priority, message FROM alerts WHERE rule = 'receipts_overdue'"
                ).fetchone()
                assert alert[:2] == ("open", "medium")
                assert alert[2].startswith("Mätvärden från hemenheten har inte bekräftats som mottagna på")
                assert "(6 mätningar)" in alert[2]
                # The kit's receipts arrive (ingest confirms the messages it is sent again): the all-clear.
                queue_due = [m.message_id for m in queue.peek(10)]
                queue.reschedule(queue_due, 0.0)
                publisher.wake()
                assert publisher.flush(15)
                wait_until(
                    lambda: db.execute("SELECT unconfirmed_messages FROM gateways").fetchone()[0] == 0,
                    what="all-clear status",
                )
                writer.tick(now=now + timedelta(minutes=12))
                state = db.execute("SELECT state FROM alerts WHERE rule = 'receipts_overdue'").fetchone()[0]
                assert state == "resolved"
            publisher.stop()
    finally:
        drop_session(mqtt_url, ingest.ingest_client_id)
        clear_retained(mqtt_url, contract.status_topic(kit))
        queue.close()


def _autocommit(url: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(url, autocommit=True)


def test_receipts_for_a_long_batch_respect_both_limits_and_keep_the_order() -> None:
    at = datetime.now(UTC)
    entries = [
        contract.MessageReceipt(
            message_id=uuid.uuid4(), outcome="partly_stored", rejected=tuple(range(i % 7, 499))
        )
        for i in range(1200)
    ]
    receipts = contract.receipts_for("gw-long", entries, at=at)
    assert [m for r in receipts for m in r.messages] == entries
    sizes = [len(contract.encode(r)) for r in receipts]
    assert max(sizes) <= contract.MAX_RECEIPT_BYTES < sum(sizes)
    assert all(len(r.messages) <= contract.MAX_RECEIPTS_PER_MESSAGE for r in receipts)
    # What a gateway accepts: every one of them decodes on its topic.
    for r in receipts:
        assert (
            contract.decode_receipt(
                contract.receipts_topic("gw-long"), contract.encode(r), gateway_id="gw-long"
            )
            == r
        )
    assert len(contract.receipts_for("gw-short", entries[:3], at=at)) == 1
