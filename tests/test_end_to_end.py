"""The whole slice for real: virtual BLE devices -> gateway -> Mosquitto -> ingest -> PostgreSQL ->
alert engine -> dashboard websocket. Only the radio is simulated; the GATT bytes are the ones
a real device would send, and the real decode path runs on them."""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import device_profiles
from care.enrolment import enrol_patient, ensure_ward
from care.staff import create_staff_user
from core import contract
from core.settings import Settings
from gateway.service import Gateway
from simulator.virtual_devices import HomeKit
from simulator.virtual_radio import VirtualRadio
from tests.support.cards import cards_of
from tests.support.dashboard_server import logged_in, running_dashboard, ward_socket
from tests.support.gateway import clear_retained
from tests.support.ingest import running_ingest
from tests.support.mqtt import drop_session
from tests.support.waiting import wait_until

STOCKHOLM = ZoneInfo("Europe/Stockholm")
PASSWORD = "ett långt lösenord"


@pytest.fixture
def settings(database_url: str, mqtt_url: str, tmp_path: Path, unique_id: str):  # type: ignore[no-untyped-def]
    s = Settings(
        database_url=database_url,
        mqtt_url=mqtt_url,
        data_dir=tmp_path,
        ingest_client_id=f"ingest-e2e-{unique_id}",
        gateway_batch_linger_s=0.05,
        session_secret="e2e-secret-" + unique_id,
    )
    yield s
    drop_session(mqtt_url, s.ingest_client_id)


@pytest.fixture
def home(db, settings: Settings, unique_id: str):  # type: ignore[no-untyped-def]
    ward = f"ward-{unique_id}"
    ensure_ward(db, ward, "Hemsjukvård Landskrona")
    patient = enrol_patient(
        db, ward_id=ward, display_name="Oskar Lindqvist", gateway_id=f"gw-e2e-{unique_id}", birth_year=1943
    )
    create_staff_user(
        db,
        username=f"nurse-{unique_id}",
        display_name="Sara Sjöström",
        role="nurse",
        password=PASSWORD,
        ward_ids=[ward],
    )
    yield patient
    clear_retained(settings.mqtt_url, contract.status_topic(patient.gateway_id))


def _receive_until(socket, predicate, limit: int = 50):  # type: ignore[no-untyped-def]
    for _ in range(limit):
        message = json.loads(socket.recv(timeout=15))
        if predicate(message):
            return message
    raise AssertionError("the expected websocket message never came")


def _alerts_in(message: dict) -> list[dict]:
    return [a for card in cards_of(message) for a in card["alerts"]]


def test_desaturation_at_home_reaches_the_ward_dashboard_live(settings, home, unique_id: str) -> None:
    radio = VirtualRadio()
    kit = HomeKit.install(radio, device_tz=STOCKHOLM)
    with (
        running_ingest(settings),
        running_dashboard(settings) as base_url,
        logged_in(base_url, f"nurse-{unique_id}", PASSWORD) as client,
        ward_socket(client, base_url, home.ward_id) as socket,
        Gateway(
            settings,
            gateway_id=home.gateway_id,
            ble=radio.backend,
            device_tz=STOCKHOLM,
            config=kit.kit_config(home.gateway_id),
        ),
    ):
        snapshot = json.loads(socket.recv(timeout=15))
        assert snapshot["type"] == "snapshot"
        assert [card["name"] for card in cards_of(snapshot)] == ["Oskar Lindqvist"]
        assert _alerts_in(snapshot) == []

        # A reading taken before the gateway has subscribed is kept by the device and sent on subscribe.
        kit.measure_spo2(87, 104)

        delta = _receive_until(socket, lambda m: m["type"] == "delta" and _alerts_in(m))
    # What the nurse sees on the card: the SpO2 alarm and NEWS2. SpO2 87 % scores 3 and pulse 104/min
    # 1: with respiration, consciousness, blood pressure and temperature unknown, NEWS2 is at least 4
    # with a red score, low-medium risk, never shown as complete.
    by_message = {a["message"]: a for a in _alerts_in(delta)}
    assert set(by_message) == {"Syremättnad ≤ 91 %: 87 %", "NEWS2 ≥ 4 (ofullständig): låg–medel risk"}
    alert = by_message["Syremättnad ≤ 91 %: 87 %"]
    assert alert["priority"] == "high"
    assert alert["state"] == "open"
    [card] = cards_of(delta)
    assert card["id"] == str(home.patient_id)
    spo2 = next(v for v in card["vitals"] if v["vital"] == "spo2")
    assert spo2["text"] == "87"


def test_stored_observations_equal_what_the_devices_encoded(settings, home, db) -> None:
    radio = VirtualRadio()
    kit = HomeKit.install(radio, device_tz=STOCKHOLM)
    with (
        running_ingest(settings) as service,
        Gateway(
            settings,
            gateway_id=home.gateway_id,
            ble=radio.backend,
            device_tz=STOCKHOLM,
            config=kit.kit_config(home.gateway_id),
        ),
    ):
        sent = {
            "2A5E": kit.measure_spo2(96, 71),
            "2A35": kit.measure_blood_pressure(132, 84, 100, 73),
            "2A1C": kit.measure_temperature(37.4),
            "2A9D": kit.measure_weight(84.35),
        }
        wait_until(lambda: service.metrics["observations_stored"] >= 8, what="8 observations stored")
    rows = db.execute(
        "SELECT characteristic, vital, value, unit FROM observations WHERE patient_id = %s ORDER BY 1, 2",
        (home.patient_id,),
    ).fetchall()
    assert rows == [
        ("2A1C", "body_temperature", 37.4, "Cel"),
        ("2A35", "diastolic_bp", 84.0, "mm[Hg]"),
        ("2A35", "mean_arterial_pressure", 100.0, "mm[Hg]"),
        ("2A35", "pulse_rate", 73.0, "/min"),
        ("2A35", "systolic_bp", 132.0, "mm[Hg]"),
        ("2A5E", "pulse_rate", 71.0, "/min"),
        ("2A5E", "spo2", 96.0, "%"),
        ("2A9D", "body_weight", 84.35, "kg"),
    ]
    # And they are exactly what the bytes on the air say, decoded independently here.
    expected = sorted(
        (uuid, o.vital.value, o.value, o.unit)
        for uuid, payload in sent.items()
        for o in device_profiles.normalise(device_profiles.parse(uuid, payload)).observations
    )
    assert rows == expected
    assert db.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0
