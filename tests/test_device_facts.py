"""Device facts in the gateway status: the contract, the rule for when to publish, and the gateway.

The gateway tests run the real path: virtual devices behind the fake bleak backend answer the
GATT read of Battery Level (0x2A19) with its byte, the decoder and the publisher run for real,
and the status is read back from the real broker.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from core import contract
from device_profiles import encode, uuids
from gateway.device_facts import DeviceFacts, battery_change_matters
from gateway.service import Gateway
from simulator.virtual_devices import HomeKit
from tests.support.gateway import Recorder, kit_config, wait_until

AT = "2025-03-14T06:00:03Z"
TOPIC = contract.status_topic("kit-0042")


def _status(devices: object, **fields: object) -> bytes:
    body = {"v": 1, "gateway_id": "kit-0042", "state": "online", "at": AT, **fields, "devices": devices}
    return json.dumps(body).encode()


def _device(device_id: str = "02:48:4D:00:01:01", **fields: object) -> dict[str, object]:
    return {"device_id": device_id, "battery_percent": 15, "battery_at": AT, **fields}


# --- contract ---------------------------------------------------------------------------------


def test_status_with_device_facts_round_trips_and_old_statuses_stay_valid() -> None:
    status = contract.decode_gateway_status(TOPIC, _status([_device(), _device("02:48:4D:00:01:02")]))
    assert status.devices is not None
    assert [(d.device_id, d.battery_percent) for d in status.devices] == [
        ("02:48:4D:00:01:01", 15),
        ("02:48:4D:00:01:02", 15),
    ]
    assert status.devices[0].battery_at == datetime(2025, 3, 14, 6, 0, 3, tzinfo=UTC)
    assert contract.decode_gateway_status(TOPIC, contract.encode(status)) == status
    # A v1 status without the field (older gateways, the last will) is as valid as before.
    will = b'{"v":1,"gateway_id":"kit-0042","state":"offline","software":"hemma-gateway/0.1.0"}'
    assert contract.decode_gateway_status(TOPIC, will).devices is None
    # The largest status the contract allows fits the status size limit.
    biggest = contract.GatewayStatus(
        v=1,
        gateway_id="k" * 63,
        state="online",
        at=datetime.now(UTC),
        software="s" * 64,
        devices=tuple(
            contract.DeviceStatus(
                device_id=f"{i:02d}" + "d" * 62, battery_percent=100, battery_at=datetime.now(UTC)
            )
            for i in range(contract.MAX_DEVICES_PER_STATUS)
        ),
    )
    assert len(contract.encode(biggest)) <= contract.MAX_STATUS_BYTES


_BATTERY = "schema: devices.0.battery_percent: Input should be"
_ID = "schema: devices.0.device_id: String should"
_AT = "schema: devices.0.battery_at: Value error,"


@pytest.mark.parametrize(
    ("devices", "reason"),
    [
        ([_device(battery_percent=150)], f"{_BATTERY} less than or equal to 100"),
        ([_device(battery_percent=-1)], f"{_BATTERY} greater than or equal to 0"),
        ([_device(battery_percent="15")], f"{_BATTERY} a valid integer"),
        ([_device(battery_percent=15.5)], f"{_BATTERY} a valid integer"),
        ([_device(battery_percent=True)], f"{_BATTERY} a valid integer"),
        (
            [_device(battery_at="2025-03-14T06:00:03")],
            "schema: devices.0.battery_at: Input should have timezone",
        ),
        ([_device(battery_at=1741932003)], f"{_AT} must be an ISO 8601"),
        ([_device(battery_at="1741932003")], f"{_AT} must be an ISO 8601"),
        ([_device(battery_at=None)], "schema: devices.0: Value error, battery_percent and battery_at come"),
        ([_device(device_id="a b")], f"{_ID} match pattern"),
        ([_device(device_id="x" * 65)], f"{_ID} have at most 64 characters"),
        ([_device(colour="red")], "schema: devices.0.colour: Extra inputs are not permitted"),
        ([_device(), _device()], "schema: message: Value error, devices: a device_id appears more than once"),
        ("all of them", "schema: devices: Input should be a valid array"),
        ([1, 2], "schema: devices.0: Input should be an object"),
        (
            [_device(f"d{i}") for i in range(contract.MAX_DEVICES_PER_STATUS + 1)],
            "schema: devices: Tuple should have at most 32 items after validation, not 33",
        ),
        ([_device(f"d{i}") for i in range(1000)], "oversized status: "),
    ],
)
def test_hostile_device_facts_are_refused_with_a_clear_reason(devices: object, reason: str) -> None:
    with pytest.raises(contract.PayloadRejected) as refused:
        contract.decode_gateway_status(TOPIC, _status(devices))
    assert refused.value.reason.startswith(reason), refused.value.reason


# --- when a change is worth a status ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("published", "level", "matters"),
    [
        (None, 90, True),  # a device's first level is news
        (90, 86, False),
        (90, 85, True),  # 5 points
        (50, 56, True),
        (22, 20, True),  # crossed into battery_low
        (20, 21, True),  # and back out
        (21, 22, False),
        (15, 12, False),  # still low, less than 5 points
        (15, 10, True),
    ],
)
def test_battery_change_rule(published: int | None, level: int, matters: bool) -> None:
    assert battery_change_matters(published, level) is matters


def test_facts_measure_changes_against_what_was_published() -> None:
    facts = DeviceFacts(max_devices=2)
    t = datetime(2025, 3, 14, 6, 0, tzinfo=UTC)
    assert facts.record_battery("a", 50, t)
    assert facts.record_battery("a", 48, t)  # nothing published yet: still news
    assert [(d.device_id, d.battery_percent) for d in facts.snapshot()] == [("a", 48)]
    assert not facts.record_battery("a", 46, t)
    assert not facts.record_battery("a", 44, t)  # drifting: 4 points from the published 48
    assert facts.record_battery("a", 43, t)  # 5 points
    facts.record_battery("b", 90, t.replace(minute=1))
    facts.record_battery("c", 80, t.replace(minute=2))
    # At most max_devices, the most recently read ones, in device order.
    assert [d.device_id for d in facts.snapshot()] == ["b", "c"]


# --- the gateway, through the fake bleak backend and the real broker -----------------------------------


def _with_devices(statuses: list[contract.GatewayStatus]) -> list[contract.GatewayStatus]:
    return [s for s in statuses if s.devices]


def test_gateway_publishes_a_low_battery_in_its_retained_status(settings, gateway_id, radio) -> None:
    kit = HomeKit.install(radio, battery_percent=15)
    addresses = {d.address for d in kit.devices}
    started = datetime.now(UTC)
    with (
        Recorder(settings.mqtt_url, contract.status_topic(gateway_id)) as rec,
        Gateway(settings, gateway_id=gateway_id, ble=radio.backend, config=kit_config(gateway_id, kit)) as gw,
    ):
        wait_until(
            lambda: any({d.device_id for d in s.devices or ()} == addresses for s in rec.statuses()),
            what="a status with the battery of every device",
        )
        # The level came from a GATT read of Battery Level on each device.
        assert all(("read", "2A19") in d.gatt_events() for d in kit.devices)
        assert gw.stats()["battery_percent"] == {a: 15 for a in addresses}
    statuses = rec.statuses()
    assert statuses[0].state == "online"
    full = next(s for s in statuses if {d.device_id for d in s.devices or ()} == addresses)
    assert full.state == "online"
    assert full.devices is not None
    for fact in full.devices:
        assert fact.battery_percent == 15
        assert fact.battery_at is not None and 0 <= (fact.battery_at - started).total_seconds() < 30
    # Saying goodbye: "offline", without device facts, and that is what the broker retains.
    assert statuses[-1].state == "offline" and statuses[-1].devices is None
    with Recorder(settings.mqtt_url, contract.status_topic(gateway_id)) as late:
        wait_until(lambda: late.statuses(), what="the retained status")
        assert late.messages[0].retain and late.statuses()[0].state == "offline"


def test_gateway_heartbeat_repeats_the_device_facts(settings, gateway_id, radio) -> None:
    kit = HomeKit.install(radio, battery_percent=60)
    with (
        Recorder(settings.mqtt_url, contract.status_topic(gateway_id)) as rec,
        Gateway(
            settings,
            gateway_id=gateway_id,
            ble=radio.backend,
            config=kit_config(gateway_id, kit),
            status_interval_s=0.5,
        ),
    ):
        wait_until(lambda: len(_with_devices(rec.statuses())) >= 4, what="heartbeats with device facts")
    beats = _with_devices(rec.statuses())
    assert all(s.state == "online" for s in beats)
    assert {d.device_id: d.battery_percent for d in beats[-1].devices or ()} == {
        d.address: 60 for d in kit.devices
    }


def test_gateway_publishes_a_marked_battery_change_at_once(settings, gateway_id, radio) -> None:
    kit = HomeKit.install(radio, battery_percent=90)
    ox = kit.oximeter

    def oximeter_levels() -> list[int | None]:
        return [
            d.battery_percent for s in rec.statuses() for d in s.devices or () if d.device_id == ox.address
        ]

    def reconnect_with(level: int) -> None:
        reads = ox.gatt_events().count(("read", "2A19"))
        ox.set_value(uuids.BATTERY_LEVEL, encode.battery_level(level))
        ox.leave_range()
        ox.enter_range()
        wait_until(lambda: ox.gatt_events().count(("read", "2A19")) > reads, what="battery read again")
        wait_until(lambda: gw.stats()["battery_percent"].get(ox.address) == level, what="level decoded")

    with (
        Recorder(settings.mqtt_url, contract.status_topic(gateway_id)) as rec,
        Gateway(
            settings, gateway_id=gateway_id, ble=radio.backend, config=kit_config(gateway_id, kit)
        ) as gw,  # heartbeat: 10 minutes
    ):
        addresses = {d.address for d in kit.devices}
        wait_until(
            lambda: any({d.device_id for d in s.devices or ()} == addresses for s in rec.statuses()),
            what="every device's first level",
        )
        time.sleep(1.5)  # longer than the publisher's coalescing gap: nothing more is on its way
        published, before = gw.publisher.statuses_published, oximeter_levels()
        assert set(before) == {90}
        # A small change waits for the heartbeat.
        reconnect_with(87)
        time.sleep(1.5)
        assert gw.publisher.statuses_published == published and oximeter_levels() == before
        # Dropping to 18 % (crossing 20 %, and 5 points from the 90 % published) goes out at once.
        reconnect_with(18)
        wait_until(lambda: oximeter_levels()[-1:] == [18], timeout=10, what="the low level published")
        assert gw.publisher.statuses_published == published + 1
