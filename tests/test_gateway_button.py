"""The box's button and light (issue 10): a contact request through the store-and-forward queue.

Real Mosquitto and the real gateway code; only the GPIO is virtual (`simulator.virtual_box`, or
gpiozero's own MockFactory behind the real `GpioBox`). Ingest's events path belongs to the server
side, so `EventsIngest` here answers as ingest must: it stores each event once by `event_id`, then
publishes a receipt naming the message (as tests/test_receipts.py checks against the real ingest).
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest

from core import contract
from core.contract import PlannedMeasurement
from core.settings import MqttTarget, Settings
from core.vitals import Vital
from devservices import services
from gateway.box import ButtonGuard, PressVerdict, reminder_at
from gateway.queue import StoreAndForwardQueue
from gateway.service import Gateway
from simulator.virtual_box import VirtualBox
from simulator.virtual_devices import HomeKit
from simulator.virtual_radio import VirtualRadio
from tests.support.gateway import kit_config
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
STOCKHOLM = ZoneInfo("Europe/Stockholm")


class EventsIngest:
    """A stand-in for ingest's events path: keeps every KitEventBatch, stores each event once by its id
    and answers with a receipt. A persistent session, so what arrives while it reconnects waits for it."""

    def __init__(self, url: str, gateway_id: str, *, client_id: str, answer: bool = True) -> None:
        self.gateway_id = gateway_id
        self.answer = answer
        self.target = MqttTarget.from_url(url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]  # paho says int, takes float
        self._lock = threading.Lock()
        self.batches: list[contract.KitEventBatch] = []
        self.stored: dict[uuid.UUID, contract.KitEvent] = {}
        self._subscribed = threading.Event()
        self.client.on_connect = lambda c, *a: c.subscribe(contract.events_topic(gateway_id), qos=1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        batch = contract.decode_kit_events(message.topic, bytes(message.payload))
        with self._lock:
            self.batches.append(batch)
            for event in batch.events:
                self.stored.setdefault(event.event_id, event)
        if self.answer:
            receipt = contract.Receipt(
                v=1,
                gateway_id=self.gateway_id,
                at=datetime.now(UTC),
                messages=(contract.MessageReceipt(message_id=batch.message_id, outcome="stored"),),
            )
            client.publish(contract.receipts_topic(self.gateway_id), contract.encode(receipt), qos=1)

    def __enter__(self) -> EventsIngest:
        self.client.connect(self.target.host, self.target.port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "subscription not acknowledged"
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def received(self) -> list[contract.KitEventBatch]:
        with self._lock:
            return list(self.batches)


def _box_gateway(settings: Settings, gateway_id: str, box: VirtualBox, **extra: Any) -> Gateway:
    return Gateway(
        settings, gateway_id=gateway_id, ble=VirtualRadio().backend, box=box, box_tick_s=0.05, **extra
    )


# --- a press on a running gateway ------------------------------------------------------------------


def test_a_press_arrives_as_one_contact_request_and_its_receipt_ends_the_slow_blink(
    mqtt_url, settings, gateway_id, unique_id
) -> None:
    box = VirtualBox()
    with (
        EventsIngest(mqtt_url, gateway_id, client_id=f"ev-{unique_id}") as ingest,
        _box_gateway(settings, gateway_id, box) as gw,
    ):
        # The box's first tick sets the light (off: no plan); the press comes after it, so what the
        # light shows from here on is the press's doing.
        wait_until(lambda: box.lights, what="the box's first light")
        before = datetime.now(UTC)
        shown = len(box.lights)
        assert box.press()
        wait_until(lambda: ingest.received(), what="the events message at the subscriber")
        assert gw.publisher.flush(15), "the contact request was not confirmed"
        wait_until(lambda: box.light == "off", what="the light off after the receipt")
        stats = gw.stats()
    [batch] = ingest.received()
    assert batch.gateway_id == gateway_id
    [event] = batch.events
    assert (event.kind, event.source) == ("contact_request", "button")
    assert before <= event.at <= datetime.now(UTC)
    assert stats["contact_requests_queued"] == 1 and stats["button_presses_ignored"] == 0
    assert stats["confirmed"] == 1 and stats["queue_depth"] == 0
    # One blink when it was queued, slow blinking until the receipt, then off (no plan: nothing due).
    assert box.lights[shown : shown + 2] == ["flash", "slow_blink"] and box.lights[-1] == "off"
    assert box.closed


def test_a_press_during_a_broker_outage_is_kept_and_arrives_exactly_once(
    broker_dir, tmp_path, unique_id
) -> None:
    broker = services.start_mosquitto(broker_dir)
    port = MqttTarget.from_url(broker.url).port
    gw_id = f"gw-btn-{unique_id}"
    box = VirtualBox()
    settings = Settings(mqtt_url=broker.url, data_dir=tmp_path)
    try:
        with (
            EventsIngest(broker.url, gw_id, client_id=f"ev-{unique_id}") as ingest,
            _box_gateway(settings, gw_id, box) as gw,
        ):
            assert gw.publisher.wait_connected(10)
            broker.stop()  # a clean stop: the broker keeps the stand-in's session
            wait_until(lambda: not gw.publisher.connected, what="the gateway to notice the outage")
            assert box.press()
            # On disk before anything is sent; the patient sees it waiting.
            assert len(gw.queue) == 1 and gw.queue.waiting_events() == 1
            wait_until(lambda: box.light == "slow_blink", what="slow blinking while it waits")
            assert gw.publisher.published == 0
            broker = services.start_mosquitto(broker_dir, port=port)
            assert gw.publisher.flush(30), "the contact request was not confirmed after the outage"
            wait_until(lambda: box.light == "off", what="the light off after the receipt")
            stats = gw.stats()
    finally:
        broker.stop()
    batches = ingest.received()
    assert len(batches) == 1 and len(ingest.stored) == 1  # exactly once: one message, one event
    assert stats["confirmed"] == 1 and stats["contact_requests_queued"] == 1 and stats["queue_depth"] == 0


def test_a_storm_of_500_presses_makes_one_request_and_counts_the_rest(
    mqtt_url, settings, gateway_id, unique_id
) -> None:
    box = VirtualBox()
    with (
        EventsIngest(mqtt_url, gateway_id, client_id=f"ev-{unique_id}") as ingest,
        _box_gateway(settings, gateway_id, box) as gw,
    ):
        box.burst(500, within_s=1.0)
        assert gw.publisher.flush(15)
        box.press()  # the line is still in its storm: counted, no request
        stats = gw.stats()
    assert len(ingest.received()) == 1 and len(ingest.stored) == 1
    assert stats["button_presses"] == 501 and stats["button_presses_ignored"] == 500
    assert stats["contact_requests_queued"] == 1 and stats["button_storms"] == 1
    assert box.lights.count("flash") == 1


def test_a_gateway_killed_with_an_unconfirmed_request_sends_the_same_message_again(
    mqtt_url, tmp_path, gateway_id, unique_id
) -> None:
    queue_path = tmp_path / "queue.sqlite"
    code = (
        "import sys, time\n"
        "from core.settings import Settings\n"
        "from gateway.service import Gateway\n"
        "from simulator.virtual_box import VirtualBox\n"
        "from simulator.virtual_radio import VirtualRadio\n"
        "box = VirtualBox()\n"
        # A short receipt time-out: the restarted gateway sends it again soon after its first sending.
        "settings = Settings(mqtt_url=sys.argv[1], data_dir=sys.argv[3], gateway_receipt_timeout_s=1.0,"
        " gateway_receipt_timeout_max_s=1.0)\n"
        "gw = Gateway(settings, gateway_id=sys.argv[2], queue_path=sys.argv[4], ble=VirtualRadio().backend,"
        " box=box)\n"
        "gw.start()\n"
        "gw.publisher.wait_connected(10)\n"
        "box.press()\n"
        "print('pressed', flush=True)\n"
        "time.sleep(120)\n"
    )
    # The stand-in does not answer: the request is sent, and never confirmed before the kill.
    with EventsIngest(mqtt_url, gateway_id, client_id=f"ev1-{unique_id}", answer=False) as silent:
        process = subprocess.Popen(
            [sys.executable, "-c", code, mqtt_url, gateway_id, str(tmp_path), str(queue_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None and process.stdout.readline().strip() == "pressed"
            wait_until(lambda: silent.received(), what="the first sending")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            assert process.stdout is not None
            process.stdout.close()
    sent = silent.received()
    first = sent[0]
    assert {b.message_id for b in sent} == {first.message_id}  # sent again unconfirmed: the same message
    box = VirtualBox()
    with (
        EventsIngest(mqtt_url, gateway_id, client_id=f"ev2-{unique_id}") as ingest,
        _box_gateway(
            Settings(mqtt_url=mqtt_url, data_dir=tmp_path), gateway_id, box, queue_path=queue_path
        ) as gw,
    ):
        wait_until(lambda: box.light == "slow_blink", what="the waiting request shown after the restart")
        assert gw.publisher.flush(15), "the request left by the killed gateway was not confirmed"
        wait_until(lambda: box.light == "off", what="the light off after the receipt")
        stats = gw.stats()
    [again] = ingest.received()
    assert again.message_id == first.message_id
    assert [e.event_id for e in again.events] == [e.event_id for e in first.events]
    assert stats["resent"] == 1 and stats["contact_requests_queued"] == 0 and stats["queue_depth"] == 0


# --- the reminder light ----------------------------------------------------------------------------


def test_the_reminder_light_is_on_while_a_planned_vital_is_due_and_off_after_a_reading(
    tmp_path, unique_id
) -> None:
    gw_id = f"gw-rem-{unique_id}"
    radio = VirtualRadio()
    home = HomeKit.install(radio, device_tz=STOCKHOLM)  # the devices show the site's time, as set
    config = kit_config(gw_id, home).model_copy(
        update={"schedule": (PlannedMeasurement(vital=Vital.SPO2, every_minutes=60),)}
    )
    offline = Settings(mqtt_url=f"mqtt://127.0.0.1:{services.free_port()}", data_dir=tmp_path)
    box = VirtualBox()
    with Gateway(offline, gateway_id=gw_id, ble=radio.backend, box=box, box_tick_s=0.05, config=config) as gw:
        wait_until(lambda: box.light == "on", what="the light on: SpO2 never measured")
        home.measure_spo2(95, 70)
        wait_until(lambda: gw.measurements_enqueued == 1, what="the reading queued")
        wait_until(lambda: box.light == "off", what="the light off after the reading")
        assert Vital.SPO2.value in gw.queue.last_readings()
    assert box.lights == ["on", "off"]
    # The time of that reading is in the queue file: after a reboot the light stays off.
    box = VirtualBox()
    with Gateway(offline, gateway_id=gw_id, ble=VirtualRadio().backend, box=box, box_tick_s=0.05) as gw:
        wait_until(lambda: box.lights, what="the first light after the restart")
        assert box.light == "off" and gw.config is not None and gw.config.schedule


def test_reminder_at_is_a_function_of_now() -> None:
    plan = (PlannedMeasurement(vital=Vital.SPO2, every_minutes=60),)
    now = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
    assert reminder_at(now, plan, (), {}, STOCKHOLM).due == {Vital.SPO2}  # never measured
    fresh = {Vital.SPO2: now - timedelta(minutes=59)}
    assert not reminder_at(now, plan, (), fresh, STOCKHOLM).on
    assert reminder_at(now, plan, (), {Vital.SPO2: now - timedelta(minutes=60)}, STOCKHOLM).on
    assert not reminder_at(now, (), (), {}, STOCKHOLM).on  # no plan, no reminder times: never on
    # Weight once a day, reminded at 08:00 Stockholm (07:00 UTC in winter).
    daily = (PlannedMeasurement(vital=Vital.BODY_WEIGHT, every_minutes=24 * 60),)
    yesterday = {Vital.BODY_WEIGHT: datetime(2025, 1, 14, 12, 0, tzinfo=UTC)}
    at_0659 = datetime(2025, 1, 15, 6, 59, tzinfo=UTC)
    assert not reminder_at(at_0659, daily, ("08:00",), yesterday, STOCKHOLM).on
    assert reminder_at(at_0659 + timedelta(minutes=1), daily, ("08:00",), yesterday, STOCKHOLM).due == {
        Vital.BODY_WEIGHT
    }
    early = {Vital.BODY_WEIGHT: datetime(2025, 1, 15, 6, 30, tzinfo=UTC)}  # 07:30 local, just before 08:00
    assert not reminder_at(at_0659 + timedelta(hours=2), daily, ("08:00",), early, STOCKHOLM).on
    # Summer time: 08:00 Stockholm is 06:00 UTC.
    summer = datetime(2025, 7, 1, 6, 0, tzinfo=UTC)
    old = {Vital.BODY_WEIGHT: summer - timedelta(hours=20)}
    assert reminder_at(summer, daily, ("08:00",), old, STOCKHOLM).on
    assert not reminder_at(summer - timedelta(minutes=1), daily, ("08:00",), old, STOCKHOLM).on
    # Without a plan, a reminder time lights it until any reading arrives.
    assert reminder_at(summer, (), ("08:00",), old, STOCKHOLM).reminder_time
    assert not reminder_at(summer, (), ("08:00",), {Vital.PULSE_RATE: summer}, STOCKHOLM).on


def test_the_button_guard_refuses_too_soon_waiting_and_storms() -> None:
    guard = ButtonGuard(60.0, storm_presses=20, storm_window_s=10.0, quiet_s=60.0)
    assert guard.press(0.0, request_waiting=False) is PressVerdict.ACCEPTED
    assert guard.press(30.0, request_waiting=False) is PressVerdict.TOO_SOON
    assert guard.press(61.0, request_waiting=True) is PressVerdict.WAITING  # still waits for its receipt
    assert guard.press(62.0, request_waiting=False) is PressVerdict.ACCEPTED
    verdicts = [guard.press(200.0 + i * 0.1, request_waiting=False) for i in range(30)]
    assert verdicts[0] is PressVerdict.ACCEPTED
    assert set(verdicts[1:20]) == {PressVerdict.TOO_SOON} and set(verdicts[20:]) == {PressVerdict.STORM}
    assert guard.storms == 1
    last = 200.0 + 29 * 0.1
    assert guard.press(last + 59.0, request_waiting=False) is PressVerdict.STORM  # not quiet long enough
    assert guard.press(last + 59.0 + 60.0, request_waiting=False) is PressVerdict.ACCEPTED
    assert guard.storms == 1


# --- the queue ------------------------------------------------------------------------------------


def test_a_queue_file_from_before_the_button_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    with sqlite3.connect(path) as old:  # the outbox of a gateway with receipts and kit config, no events
        old.execute(
            "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL UNIQUE,"
            " topic TEXT NOT NULL, payload BLOB NOT NULL, enqueued_at REAL NOT NULL,"
            " attempts INTEGER NOT NULL DEFAULT 0, measurements INTEGER NOT NULL DEFAULT 0, send_no INTEGER,"
            " first_send_no INTEGER, first_sent_at REAL, resend_at REAL NOT NULL DEFAULT 0)"
        )
        old.execute("INSERT INTO outbox (message_id, topic, payload, enqueued_at, measurements) VALUES"
                    " ('old-1', 'hemma/v1/gw/gw-x/measurements', x'01', 1.0, 2)")  # fmt: skip
    old.close()
    with StoreAndForwardQueue(path) as q:
        assert q.waiting_events() == 0 and q.last_readings() == {}
        [kept] = q.due(10, now=0.0)
        assert (kept.message_id, kept.topic, kept.measurements) == (
            "old-1",
            "hemma/v1/gw/gw-x/measurements",
            2,
        )
        q.put("hemma/v1/gw/gw-x/events", b"{}", message_id="ev-1", events=1)
        q.put("hemma/v1/gw/gw-x/measurements", b"{}", message_id="m-2", measurements=1,
              readings={"spo2": 100.0, "pulse_rate": 90.0})  # fmt: skip
        q.put(
            "hemma/v1/gw/gw-x/measurements", b"{}", message_id="m-3", measurements=1, readings={"spo2": 50.0}
        )
        assert q.waiting_events() == 1 and q.last_readings() == {"spo2": 100.0, "pulse_rate": 90.0}
    with StoreAndForwardQueue(path) as q:  # all of it on disk
        assert q.waiting_events() == 1 and [m.message_id for m in q.peek(10)] == [
            "old-1",
            "ev-1",
            "m-2",
            "m-3",
        ]
        assert q.confirm(["ev-1"]).removed == 1 and q.waiting_events() == 0


def test_a_receipt_proves_a_loss_only_among_messages_of_its_own_topic(tmp_path: Path) -> None:
    """Ingest may commit events and measurements on separate paths: an events receipt arriving before
    an earlier measurements message's receipt says nothing about that one."""
    with StoreAndForwardQueue(tmp_path / "q.sqlite") as q:
        m1 = q.put("t/measurements", b"1", measurements=1)
        e1 = q.put("t/events", b"e", events=1)
        m2 = q.put("t/measurements", b"2", measurements=1)
        q.mark_sent([(m1, 10_000.0), (e1, 10_000.0), (m2, 10_000.0)], now=100.0)
        assert q.confirm([e1]).made_due == 0  # m1 may still be on its way
        assert q.confirm([m2]).made_due == 1  # m1 was sent before m2, on the same topic: lost
        assert [m.message_id for m in q.due(10, now=200.0)] == [m1]


# --- the real GpioBox, on gpiozero's own mock pins -------------------------------------------------


@pytest.fixture
def mock_pins() -> Iterator[Any]:
    gpiozero = pytest.importorskip("gpiozero")
    from gpiozero.pins.mock import MockFactory

    before = gpiozero.Device.pin_factory
    gpiozero.Device.pin_factory = factory = MockFactory()
    yield factory
    factory.reset()
    gpiozero.Device.pin_factory = before


def test_a_press_on_the_gpio_button_queues_a_request_and_lights_the_led(
    mock_pins, tmp_path, unique_id
) -> None:
    offline = Settings(
        mqtt_url=f"mqtt://127.0.0.1:{services.free_port()}",
        data_dir=tmp_path,
        gateway_button_pin=17,
        gateway_light_pin=27,
    )
    with Gateway(
        offline, gateway_id=f"gw-gpio-{unique_id}", ble=VirtualRadio().backend, box_tick_s=0.05
    ) as gw:
        assert gw.box is not None
        button, led = mock_pins.pin(17), mock_pins.pin(27)
        button.drive_low()  # pressed: the button pulls the line to ground
        wait_until(lambda: gw.queue.waiting_events() == 1, what="the request queued from the GPIO press")
        button.drive_high()
        wait_until(lambda: gw.box is not None and gw.box.light == "slow_blink", what="slow blinking")
        wait_until(lambda: led.state, what="the LED lit while blinking", timeout=5)
        [message] = gw.queue.peek(10)
        assert message.topic == contract.events_topic(gw.gateway_id)
        contract.decode_kit_events(message.topic, message.payload)  # a valid KitEventBatch
