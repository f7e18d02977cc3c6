"""Kit assignment is bounded in time (issue 11): a reading belongs to the patient whose assignment of
the kit covers its effective time, whoever holds the kit when it arrives.

Real Mosquitto (a broker of the test's own), real PostgreSQL, the real ingest service, and the real
gateway (store-and-forward queue, publisher) on the virtual radio, as tests/test_receipts.py.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from care.acting import execute
from care.enrolment import discharge_patient, enrol_patient, ensure_ward
from care.kit_assignments import lend, mark_cleaned, take_back
from care.staff import create_staff_user
from core import contract
from core.settings import Settings
from core.vitals import Vital
from devservices import services
from gateway.service import Gateway
from ingest.classify import NOT_LENT_AT_TIME
from simulator.virtual_devices import HomeKit
from simulator.virtual_radio import VirtualRadio
from tests.support.gateway import kit_config
from tests.support.ingest import batch, measurement, running_ingest
from tests.support.mqtt import publish_all, subscriber
from tests.support.waiting import wait_until

PASSWORD = "ett långt lösenord"


@pytest.fixture
def own_broker(broker_dir: Path) -> Iterator[services.Broker]:
    broker = services.start_mosquitto(broker_dir)
    yield broker
    broker.stop()


class Ward:
    """A ward with a nurse, patient A holding kit `kit` since an hour ago, and patient B without one."""

    def __init__(self, db, unique_id: str) -> None:  # type: ignore[no-untyped-def]
        self.db = db
        self.ward = f"ward-{unique_id}"
        self.kit = f"gw-ho-{unique_id}"
        ensure_ward(db, self.ward, "Hemsjukvård")
        self.nurse = f"n{unique_id}"[:20]
        create_staff_user(db, username=self.nurse, display_name="Sara", role="nurse", password=PASSWORD,
                          ward_ids=[self.ward])  # fmt: skip
        self.a = enrol_patient(db, ward_id=self.ward, display_name="Anna A", gateway_id=self.kit).patient_id
        # Anna has had the kit for an hour (a lend recorded late may move its start earlier only).
        db.execute("UPDATE kit_assignments SET starts_at = now() - interval '1 hour' WHERE patient_id = %s",
                   (self.a,))  # fmt: skip
        self.b = enrol_patient(db, ward_id=self.ward, display_name="Bertil B", gateway_id=f"gw-b-{unique_id}")
        self.b = self.b.patient_id
        # Bertil's first kit goes back (he gets Anna's after her): so he holds none at the handover.
        execute(db, take_back(by=self.nurse, origin=None, patient_id=self.b))

    def hand_over(self) -> datetime:
        """Anna's kit taken back, cleaned and lent to Bertil, by the nurse, through the commands."""
        ended = execute(self.db, take_back(by=self.nurse, origin=None, gateway_id=self.kit))
        execute(self.db, mark_cleaned(gateway_id=self.kit, by=self.nurse))
        lent = execute(self.db, lend(gateway_id=self.kit, patient_id=self.b, by=self.nurse, origin=None))
        assert lent.starts_at == ended.ends_at  # the lend's clock leeway never reaches into Anna's time
        return ended.ends_at

    def readings(self, patient: uuid.UUID, vital: str = "spo2") -> list[float]:
        rows = self.db.execute(
            "SELECT value FROM observations WHERE patient_id = %s AND vital = %s ORDER BY time, value",
            (patient, vital),
        ).fetchall()
        return [r[0] for r in rows]


@pytest.fixture
def ward(db, unique_id: str) -> Ward:  # type: ignore[no-untyped-def]
    return Ward(db, unique_id)


def test_a_kit_handed_over_with_readings_still_queued_puts_every_one_on_its_own_patient(
    own_broker, db, database_url, ward, tmp_path, unique_id
) -> None:
    settings = Settings(mqtt_url=own_broker.url, data_dir=tmp_path, gateway_batch_linger_s=0.02)
    ingest = Settings(
        mqtt_url=own_broker.url, database_url=database_url, ingest_client_id=f"ingest-ho-{unique_id}"
    )
    radio = VirtualRadio()
    # The devices' clocks in the zone the gateway reads them in (as a kit set up by its gateway is).
    home = HomeKit.install(radio, device_tz=settings.site_zone())
    anna = [91.0, 92.0, 93.0, 94.0]
    bertil = [96.0, 97.0]
    with Gateway(settings, gateway_id=ward.kit, ble=radio.backend, config=kit_config(ward.kit, home)) as gw:
        for i, spo2 in enumerate(anna):
            home.measure_spo2(spo2, 70 + i)
            time.sleep(0.05)
        wait_until(
            lambda: gw.batches_enqueued >= 1 and gw.publisher.stats()["unconfirmed"] >= 1, what="queued"
        )
        # No ingest: Anna's readings wait in the box's queue, unconfirmed, while the kit changes hands.
        assert len(gw.queue) == gw.batches_enqueued and gw.publisher.confirmed == 0
        time.sleep(1.1)  # device clocks keep whole seconds: Anna's last second is over
        handover = ward.hand_over()
        time.sleep(1.1)
        for i, spo2 in enumerate(bertil):
            home.measure_spo2(spo2, 60 + i)
            time.sleep(0.05)
        wait_until(lambda: gw.publisher.stats()["unconfirmed"] >= 2, what="Bertil's readings queued")
        queued = gw.batches_enqueued
        with running_ingest(ingest) as service:
            assert gw.publisher.flush(30), "the queue did not drain"
            wait_until(
                lambda: service.metrics["observations_stored"] >= 2 * (len(anna) + len(bertil)), what="stored"
            )
        assert gw.publisher.confirmed == queued and len(gw.queue) == 0
    assert ward.readings(ward.a) == anna
    assert ward.readings(ward.a, "pulse_rate") == [70.0, 71.0, 72.0, 73.0]
    assert ward.readings(ward.b) == bertil
    assert ward.readings(ward.b, "pulse_rate") == [60.0, 61.0]
    assert db.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0
    # Every reading of Anna's is from before the handover, every one of Bertil's from after.
    (last_a,) = db.execute("SELECT max(time) FROM observations WHERE patient_id = %s", (ward.a,)).fetchone()
    (first_b,) = db.execute("SELECT min(time) FROM observations WHERE patient_id = %s", (ward.b,)).fetchone()
    assert last_a < handover <= first_b


def _receipts(messages: list) -> list[contract.MessageReceipt]:  # type: ignore[type-arg]
    out: list[contract.MessageReceipt] = []
    for m in messages:
        out += contract.decode_receipt(m.topic, bytes(m.payload), gateway_id=m.topic.split("/")[3]).messages
    return out


def test_one_message_across_a_handover_splits_and_a_reading_before_any_lend_is_dead_lettered(
    db, database_url, mqtt_url, ward, unique_id
) -> None:
    before_anna = datetime.now(UTC) - timedelta(hours=2)  # before the kit was lent to anyone
    anna_time = datetime.now(UTC) - timedelta(minutes=30)
    handover = ward.hand_over()
    bertil_time = handover + timedelta(seconds=1)
    readings = [
        measurement({Vital.SPO2: 93}, at=anna_time),
        measurement({Vital.SPO2: 97}, at=bertil_time),
        measurement({Vital.SPO2: 88}, at=before_anna),
    ]
    message = batch(ward.kit, readings)
    settings = Settings(
        mqtt_url=mqtt_url, database_url=database_url, ingest_client_id=f"ingest-sp-{unique_id}"
    )
    with (
        subscriber(mqtt_url, contract.receipts_topic(ward.kit)) as receipts,
        running_ingest(settings) as service,
    ):
        publish_all(mqtt_url, [message])
        got = _receipts(receipts.take(1, timeout=15))
        publish_all(mqtt_url, [message])  # redelivered: stored once, confirmed again the same way
        got += _receipts(receipts.take(1, timeout=15))
        assert service.metrics["measurements_uncovered"] == 2  # the early reading, in each delivery
    assert [(r.outcome, r.rejected) for r in got] == [("partly_stored", (2,)), ("partly_stored", (2,))]
    assert ward.readings(ward.a) == [93.0]
    assert ward.readings(ward.b) == [97.0]
    letters = db.execute("SELECT reason, payload FROM dead_letters ORDER BY id").fetchall()
    assert [r[0] for r in letters] == [f"measurement 2: {NOT_LENT_AT_TIME}"] * 2
    assert json.loads(bytes(letters[0][1]))["id"] == str(readings[2].id)
    assert db.execute("SELECT count(*) FROM observations").fetchone()[0] == 2


def test_a_discharged_patients_late_readings_are_their_record_and_raise_nothing(
    db, database_url, mqtt_url, ward, unique_id
) -> None:
    taken = datetime.now(UTC) - timedelta(minutes=5)
    discharge_patient(db, patient_id=ward.a)
    kit_state = db.execute("SELECT kit_state, patient_id FROM gateways WHERE id = %s", (ward.kit,)).fetchone()
    assert kit_state == ("returned", None)
    late = batch(ward.kit, [measurement({Vital.SPO2: 82}, at=taken)])  # would page for a patient in care
    settings = Settings(
        mqtt_url=mqtt_url, database_url=database_url, ingest_client_id=f"ingest-dc-{unique_id}"
    )
    with running_ingest(settings) as service:
        publish_all(mqtt_url, [late])
        wait_until(lambda: service.metrics["observations_stored"] >= 1, what="stored")
    assert ward.readings(ward.a) == [82.0]
    assert db.execute("SELECT count(*) FROM alerts WHERE patient_id = %s", (ward.a,)).fetchone()[0] == 0
