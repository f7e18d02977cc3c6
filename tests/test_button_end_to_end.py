"""The whole way of a press, with every real part: the box's button (virtual GPIO) on the real gateway,
Mosquitto, the real ingest and PostgreSQL. The press becomes one contact request on the patient, the
gateway's queue empties on ingest's receipt, and the light stops blinking; a nurse takes it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from care.acting import execute
from care.contact import take
from care.enrolment import enrol_patient, ensure_ward
from care.staff import create_staff_user
from core.settings import Settings
from gateway.service import Gateway
from simulator.virtual_box import VirtualBox
from simulator.virtual_radio import VirtualRadio
from tests.support.ingest import running_ingest
from tests.support.mqtt import drop_session
from tests.support.waiting import wait_until
from tests.support.ward_seed import PASSWORD


@pytest.fixture
def ingest_settings(mqtt_url: str, database_url: str, unique_id: str, tmp_path: Path) -> Iterator[Settings]:
    s = Settings(mqtt_url=mqtt_url, database_url=database_url, data_dir=tmp_path,
                 ingest_client_id=f"ingest-btn-{unique_id}", gateway_batch_linger_s=0.05)  # fmt: skip
    yield s
    drop_session(mqtt_url, s.ingest_client_id)


def test_a_press_on_the_box_becomes_one_contact_request_a_nurse_takes(
    ingest_settings: Settings, db: psycopg.Connection, gateway_id: str
) -> None:
    ensure_ward(db, "avd-norr", "Sjukhusvård i hemmet Norr")
    oskar = enrol_patient(db, ward_id="avd-norr", display_name="Oskar Lindqvist", gateway_id=gateway_id)
    create_staff_user(db, username="nurse.norr", display_name="Sara Sjöström", role="nurse",
                      password=PASSWORD, ward_ids=["avd-norr"])  # fmt: skip
    box = VirtualBox()
    with (
        running_ingest(ingest_settings) as service,
        Gateway(
            ingest_settings, gateway_id=gateway_id, ble=VirtualRadio().backend, box=box, box_tick_s=0.05
        ) as gw,
    ):
        assert box.press()
        assert box.press()  # a second press at once is counted, not a second request
        assert gw.publisher.flush(20), "the contact request was not confirmed by ingest"
        wait_until(lambda: box.light == "off", what="the light off after ingest's receipt")
        stats = gw.stats()
        assert service.metrics["contact_requests_stored"] == 1
    assert stats["contact_requests_queued"] == 1 and stats["button_presses_ignored"] == 1
    assert stats["queue_depth"] == 0
    rows = db.execute(
        "SELECT id, patient_id, source, state FROM contact_requests WHERE gateway_id = %s", (gateway_id,)
    ).fetchall()
    assert [(r[1], r[2], r[3]) for r in rows] == [(oskar.patient_id, "button", "open")]
    request_id = rows[0][0]

    execute(db, take(patient_id=oskar.patient_id, request_id=request_id, by="nurse.norr", origin=None))
    state = db.execute(
        "SELECT c.state, s.username FROM contact_requests c JOIN staff_users s ON s.id = c.taken_by"
        " WHERE c.id = %s",
        (request_id,),
    ).fetchone()
    assert state == ("taken", "nurse.norr")
