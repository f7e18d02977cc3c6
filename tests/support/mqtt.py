"""Small real-MQTT helpers for tests: a publisher that waits for PUBACKs and a collecting subscriber."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import paho.mqtt.client as mqtt

from broker import mqtt as mqtt_common
from core.settings import MqttTarget


def _client(url: str, client_id: str | None = None) -> tuple[mqtt.Client, MqttTarget]:
    target = MqttTarget.from_url(url)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"test-{uuid.uuid4().hex[:10]}"
    )
    return mqtt_common.use_target(client, target), target


@contextmanager
def publisher(url: str) -> Iterator[mqtt.Client]:
    client, target = _client(url)
    client.connect(target.host, target.port)
    client.loop_start()
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def publish_all(url: str, messages: list[tuple[str, bytes]], qos: int = 1, retain: bool = False) -> None:
    """Publish and wait until the broker acknowledged every message."""
    with publisher(url) as client:
        infos = [client.publish(topic, payload, qos=qos, retain=retain) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout=10)
            assert info.is_published()


class Collector:
    def __init__(self) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()

    def take(self, n: int, timeout: float = 10.0) -> list[mqtt.MQTTMessage]:
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"received {len(out)} of {n} messages within {timeout} s")
            try:
                out.append(self.messages.get(timeout=remaining))
            except queue.Empty:
                continue
        return out


@contextmanager
def subscriber(url: str, topic: str) -> Iterator[Collector]:
    client, target = _client(url)
    collector = Collector()
    ready = threading.Event()
    client.on_message = lambda c, u, msg: collector.messages.put(msg)
    client.on_subscribe = lambda *a: ready.set()
    client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
    client.connect(target.host, target.port)
    client.loop_start()
    try:
        assert ready.wait(10), "subscription not acknowledged"
        yield collector
    finally:
        client.disconnect()
        client.loop_stop()


def drop_session(url: str, client_id: str) -> None:
    """End a persistent session left on a shared broker by a test's ingest client."""
    mqtt_common.drop_session(MqttTarget.from_url(url), client_id)
