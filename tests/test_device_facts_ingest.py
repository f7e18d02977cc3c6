"""Device facts in ingest, against a real Mosquitto and a real PostgreSQL: battery levels from the
gateway status and the clock flag of each device's newest reading land in `devices`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from care.enrolment import enrol_patient, ensure_ward
from core import contract
from core.settings import Settings
from core.vitals import Vital
from device_profiles import encode, uuids
from gateway.service import Gateway
from simulator.virtual_devices import HomeKit
from simulator.virtual_radio import VirtualRadio
from tests.support.gateway import clear_retained
from tests.support.ingest import batch, measurement, running_ingest
from tests.support.mqtt import drop_session, publish_all
from tests.support.waiting import wait_until

STOCKHOLM = ZoneInfo("Europe/Stockholm")
OX = "02:48:4D:00:01:01"
CUFF = "02:48:4D:00:01:02"


@pytest.fixture
def settings(database_url: str, mqtt_url: str, tmp_path: Path, unique_id: str):  # type: ignore[no-untyped-def]
    s = Settings(
        database_url=database_url,
        mqtt_url=mqtt_url,
        data_dir=tmp_path,
        ingest_client_id=f"ingest-facts-{unique_id}",
        gateway_batch_linger_s=0.05,
    )
    yield s
    drop_session(mqtt_url, s.ingest_client_id)


@pytest.fixture
def patient(db, settings: Settings, unique_id: str):  # type: ignore[no-untyped-def]
    ensure_ward(db, f"ward-{unique_id}", "Testavdelning")
    enrolled = enrol_patient(
        db, ward_id=f"ward-{unique_id}", display_name="Oskar Test", gateway_id=f"gw-{unique_id}"
    )
    yield enrolled
    clear_retained(settings.mqtt_url, contract.status_topic(enrolled.gateway_id))


def _status(
    gateway_id: str, *facts: tuple[str, int, datetime], software: str = "hemma-gateway/test"
) -> tuple[str, bytes]:
    status = contract.GatewayStatus(
        v=1,
        gateway_id=gateway_id,
        state="online",
        at=datetime.now(UTC),
        software=software,
        devices=tuple(
            contract.DeviceStatus(device_id=d, battery_percent=p, battery_at=at) for d, p, at in facts
        ),
    )
    return contract.status_topic(gateway_id), contract.encode(status)


def _software(db, gateway_id: str) -> str:  # type: ignore[no-untyped-def]
    return db.execute("SELECT software FROM gateways WHERE id = %s", (gateway_id,)).fetchone()[0]


def _dead_letters(db, gateway_id: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    # Only this test's gateway: ingest subscribes to every gateway on the shared test broker.
    return db.execute(
        "SELECT topic, reason FROM dead_letters WHERE gateway_id = %s ORDER BY id", (gateway_id,)
    ).fetchall()


def _battery(db, gateway_id: str) -> dict[str, tuple[int, datetime]]:  # type: ignore[no-untyped-def]
    rows = db.execute(
        "SELECT device_id, battery_percent, battery_at FROM devices"
        " WHERE gateway_id = %s AND battery_percent IS NOT NULL",
        (gateway_id,),
    ).fetchall()
    return {device: (percent, at) for device, percent, at in rows}


def _clock(db, gateway_id: str, device_id: str) -> tuple[bool, datetime] | None:  # type: ignore[no-untyped-def]
    return db.execute(
        "SELECT clock_not_set, clock_checked_at FROM devices WHERE gateway_id = %s AND device_id = %s",
        (gateway_id, device_id),
    ).fetchone()


def test_status_battery_facts_are_stored_and_never_go_back_in_time(settings, db, patient) -> None:
    gw = patient.gateway_id
    t1 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    with running_ingest(settings) as service:
        publish_all(settings.mqtt_url, [_status(gw, (OX, 15, t1), (CUFF, 80, t1))])
        wait_until(lambda: len(_battery(db, gw)) == 2, what="both devices' battery levels")
        assert _battery(db, gw) == {OX: (15, t1), CUFF: (80, t1)}
        # Devices first known from a status were heard when their level was read.
        assert db.execute(
            "SELECT first_seen_at, last_seen_at FROM devices WHERE gateway_id = %s AND device_id = %s",
            (gw, OX),
        ).fetchone() == (t1, t1)
        # An older fact (a retained status re-delivered late) changes nothing.
        publish_all(settings.mqtt_url, [_status(gw, (OX, 90, t1 - timedelta(minutes=1)), software="older")])
        wait_until(lambda: _software(db, gw) == "older", what="the older status")
        assert _battery(db, gw)[OX] == (15, t1)
        # A newer one does, for its own device only.
        t2 = t1 + timedelta(minutes=2)
        publish_all(settings.mqtt_url, [_status(gw, (OX, 12, t2))])
        wait_until(lambda: _battery(db, gw)[OX] == (12, t2), what="the newer level")
        assert _battery(db, gw)[CUFF] == (80, t1)
        # A gateway clock ahead of ingest's counts as now, so it cannot lock out later levels.
        before = datetime.now(UTC)
        publish_all(settings.mqtt_url, [_status(gw, (OX, 11, before + timedelta(hours=1)))])
        wait_until(lambda: _battery(db, gw)[OX][0] == 11, what="the level from the future")
        assert before <= _battery(db, gw)[OX][1] <= datetime.now(UTC)
        # Readings from the device leave its battery level alone.
        publish_all(settings.mqtt_url, [batch(gw, [measurement({Vital.SPO2: 95}, device_id=OX)])])
        wait_until(lambda: service.metrics["observations_stored"] >= 1, what="a reading")
        assert _battery(db, gw)[OX][0] == 11
        assert _dead_letters(db, gw) == []
    assert db.execute("SELECT status FROM gateways WHERE id = %s", (gw,)).fetchone()[0] == "online"


def test_hostile_statuses_are_dead_lettered_and_ingest_keeps_going(settings, db, patient) -> None:
    gw = patient.gateway_id
    topic = contract.status_topic(gw)
    at = datetime.now(UTC).isoformat()

    def status(devices: object) -> tuple[str, bytes]:
        body = {"v": 1, "gateway_id": gw, "state": "online", "at": at, "devices": devices}
        return topic, json.dumps(body).encode()

    def fact(device_id: str = OX, **fields: object) -> dict[str, object]:
        return {"device_id": device_id, "battery_percent": 15, "battery_at": at, **fields}

    hostile = [
        status([fact(battery_percent=150)]),
        status([fact(f"AA:{i:04d}") for i in range(1000)]),
        status([fact(battery_percent="15")]),
        status([fact(battery_at=12345)]),
        status([fact(f"AA:{i:04d}") for i in range(contract.MAX_DEVICES_PER_STATUS + 1)]),
        status("many"),
    ]
    with running_ingest(settings):
        publish_all(settings.mqtt_url, hostile)
        wait_until(lambda: len(_dead_letters(db, gw)) >= len(hostile), what="the hostile statuses")
        publish_all(settings.mqtt_url, [_status(gw, (OX, 20, datetime.now(UTC)))])
        wait_until(lambda: OX in _battery(db, gw), what="a good status after the bad ones")
    assert _battery(db, gw)[OX][0] == 20
    letters = _dead_letters(db, gw)
    assert {t for t, _ in letters} == {topic}
    reasons = [r for _, r in letters]
    assert reasons[0] == "schema: devices.0.battery_percent: Input should be less than or equal to 100"
    assert reasons[1].startswith("oversized status: ") and reasons[1].endswith("bytes > limit 8192")
    assert reasons[2] == "schema: devices.0.battery_percent: Input should be a valid integer"
    assert reasons[3] == (
        "schema: devices.0.battery_at: Value error, must be an ISO 8601 date-time with a UTC offset"
    )
    assert reasons[4] == "schema: devices: Tuple should have at most 32 items after validation, not 33"
    assert reasons[5] == "schema: devices: Input should be a valid array"
    assert len(reasons) == len(hostile)
    # Nothing of the refused statuses was stored.
    assert db.execute("SELECT count(*) FROM devices WHERE gateway_id = %s", (gw,)).fetchone()[0] == 1


def test_clock_not_set_follows_each_devices_newest_reading(settings, db, patient) -> None:
    gw = patient.gateway_id
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)

    def reading(minute: int, *, flagged: bool, device_id: str = OX) -> contract.Measurement:
        quality = (contract.CLOCK_NOT_SET_FLAG,) if flagged else ()
        return measurement(
            {Vital.SPO2: 96, Vital.PULSE_RATE: 70},
            at=t0 + timedelta(minutes=minute),
            device_id=device_id,
            quality=quality,
        )

    steps: list[tuple[list[contract.Measurement], tuple[bool, int]]] = [
        ([reading(2, flagged=True)], (True, 2)),
        ([reading(1, flagged=False)], (True, 2)),  # late and older: the newer reading's flag stands
        ([reading(4, flagged=False), reading(3, flagged=True)], (False, 4)),  # the newest in the batch
        ([reading(6, flagged=True), reading(5, flagged=False)], (True, 6)),
        ([reading(7, flagged=False)], (False, 7)),  # a later good reading clears it
    ]
    with running_ingest(settings) as service:
        stored = 0
        for readings, (flag, minute) in steps:
            publish_all(settings.mqtt_url, [batch(gw, readings)])
            stored += 2 * len(readings)
            wait_until(lambda n=stored: service.metrics["observations_stored"] >= n, what="readings stored")
            assert _clock(db, gw, OX) == (flag, t0 + timedelta(minutes=minute)), (readings, flag, minute)
        # Another device's readings say nothing about this one's clock.
        publish_all(settings.mqtt_url, [batch(gw, [reading(8, flagged=True, device_id=CUFF)])])
        wait_until(lambda: _clock(db, gw, CUFF) is not None, what="the cuff")
    assert _clock(db, gw, CUFF) == (True, t0 + timedelta(minutes=8))
    assert _clock(db, gw, OX) == (False, t0 + timedelta(minutes=7))


def test_battery_and_clock_of_virtual_devices_reach_the_devices_table(settings, db, patient) -> None:
    """Virtual devices -> fake bleak backend -> gateway -> Mosquitto -> ingest -> PostgreSQL."""
    gw = patient.gateway_id
    radio = VirtualRadio()
    kit = HomeKit.install(radio, device_tz=STOCKHOLM, battery_percent=15)
    ox = kit.oximeter.address
    with (
        running_ingest(settings),
        Gateway(settings, gateway_id=gw, ble=radio.backend, device_tz=STOCKHOLM, config=kit.kit_config(gw)),
    ):
        wait_until(lambda: len(_battery(db, gw)) == len(kit.devices), what="every device's battery level")
        assert {d: p for d, (p, _) in _battery(db, gw).items()} == {d.address: 15 for d in kit.devices}
        # A reading whose device clock is not set (a PLX spot-check flagging it) ...
        flagged = encode.plx_spot_check(
            97, 70, timestamp=datetime(2000, 1, 1, 0, 5), device_clock_not_set=True
        )
        kit.oximeter.send(uuids.PLX_SPOT_CHECK_MEASUREMENT, flagged)
        wait_until(lambda: (_clock(db, gw, ox) or (False,))[0], what="clock_not_set from the oximeter")
        # ... and a later one with a good clock (device time to the second, so a little ahead).
        kit.measure_spo2(96, 72, at=datetime.now(UTC) + timedelta(seconds=2))
        wait_until(lambda: _clock(db, gw, ox)[0] is False, what="clock_not_set cleared")
    qualities = db.execute(
        "SELECT quality FROM observations WHERE device_id = %s AND vital = 'spo2' ORDER BY time", (ox,)
    ).fetchall()
    assert [q for (q,) in qualities] == [[contract.CLOCK_NOT_SET_FLAG], []]
