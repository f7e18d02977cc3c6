"""Helpers shared by the gateway and simulator tests.

A recording MQTT subscriber that decodes what it receives with the wire contract, a TCP
proxy that can cut connections abruptly (psycopg's suite does the same for fault tests),
and small waiting helpers. Everything talks to a real broker.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import struct
import tempfile
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from core import contract
from core.settings import MqttTarget, Settings
from simulator.virtual_devices import HomeKit
from simulator.virtual_radio import VirtualDevice, VirtualRadio
from tests.support.waiting import wait_until

MAX_BYTES = 256 * 1024


class Recorder:
    """A real subscriber that keeps every message it receives, in order.

    `persistent=True` keeps a broker session (clean_session=False) so messages published
    while this client is reconnecting (broker restart) are queued for it.
    """

    def __init__(
        self, url: str, topic: str, *, client_id: str | None = None, persistent: bool = False
    ) -> None:
        self.target = MqttTarget.from_url(url)
        self.topic = topic
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-rec-{uuid.uuid4().hex[:10]}",
            clean_session=not persistent,
        )
        self._client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]  # paho says int, takes float
        self._lock = threading.Lock()
        self._messages: list[mqtt.MQTTMessage] = []
        self._subscribed = threading.Event()
        self._client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.on_message = self._on_message

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._messages.append(message)

    def __enter__(self) -> Recorder:
        self._client.connect(self.target.host, self.target.port)
        self._client.loop_start()
        assert self._subscribed.wait(10), "subscription not acknowledged"
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def messages(self) -> list[mqtt.MQTTMessage]:
        with self._lock:
            return list(self._messages)

    def batches(self) -> list[contract.DecodedBatch]:
        """Every measurements message, validated against the contract (PayloadRejected fails the test)."""
        now = datetime.now(UTC)
        return [
            contract.decode_measurement_batch(m.topic, bytes(m.payload), now=now, max_bytes=MAX_BYTES)
            for m in self.messages
            if m.topic.endswith("/measurements")
        ]

    def measurements(self) -> list[contract.Measurement]:
        out: list[contract.Measurement] = []
        for batch in self.batches():
            assert batch.rejected == [], batch.rejected
            out.extend(batch.measurements)
        return out

    def wait_for_measurements(self, n: int, timeout: float = 15.0) -> list[contract.Measurement]:
        wait_until(lambda: len(self.measurements()) >= n, timeout, what=f"{n} measurements at the broker")
        return self.measurements()

    def statuses(self) -> list[contract.GatewayStatus]:
        return [
            contract.decode_gateway_status(m.topic, bytes(m.payload))
            for m in self.messages
            if m.topic.endswith("/status") and m.payload
        ]


def clear_retained(url: str, topic: str) -> None:
    """Remove a retained message a test left on the shared broker (empty retained payload)."""
    publish_retained(url, topic, b"")


def publish_retained(url: str, topic: str, payload: bytes) -> None:
    """Publish one retained message at QoS 1, as the server publishes a kit's config."""
    target = MqttTarget.from_url(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-pub-{uuid.uuid4().hex[:10]}")
    client.connect(target.host, target.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a broker; `cut()` kills every connection with a TCP reset."""

    def __init__(self, upstream: MqttTarget) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self._sockets: list[socket.socket] = []
        self.drop_replies = False  # True: the broker's packets (CONNACK, PUBACK...) never reach the client
        self._lock = threading.Lock()
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((self.upstream.host, self.upstream.port))
            except OSError:
                downstream.close()
                continue
            with self._lock:
                self._sockets += [downstream, upstream]
                self.accepted += 1
            for src, dst, replies in ((downstream, upstream, False), (upstream, downstream, True)):
                threading.Thread(target=self._pump, args=(src, dst, replies), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, replies: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if not (replies and self.drop_replies):
                    dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                # Linger 0: close() sends RST, no FIN, like a router losing power.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._listener.close()
        self.cut()


# --- fixtures shared by the gateway test modules (import them by name) -------------------------


@pytest.fixture
def broker_dir() -> Iterator[Path]:
    """A folder for a broker a test starts (and kills) itself. Not tmp_path: mosquitto started as root
    drops to the `mosquitto` user, which must be able to reach its folder to persist sessions across a
    restart (pytest's tmp root is mode 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="hemma-broker-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def gateway_id(mqtt_url: str, unique_id: str) -> Iterator[str]:
    """A gateway id of this test's own; its retained status and config are cleared afterwards."""
    gw = f"gw-test-{unique_id}"
    yield gw
    clear_retained(mqtt_url, contract.status_topic(gw))
    clear_retained(mqtt_url, contract.config_topic(gw))


@pytest.fixture
def settings(mqtt_url: str, tmp_path: Path) -> Settings:
    return Settings(mqtt_url=mqtt_url, data_dir=tmp_path, gateway_batch_linger_s=0.05)


@pytest.fixture
def radio() -> VirtualRadio:
    return VirtualRadio()


def kit_config(gateway_id: str, *devices: VirtualDevice | HomeKit, version: int = 1) -> contract.KitConfig:
    """A KitConfig listing `devices` (a home kit stands for its four), each with the profile it was
    made from and, for a passkey profile, the passkey it shows."""
    listed: list[contract.KitDevice] = []
    for device in devices:
        if isinstance(device, HomeKit):
            listed.extend(device.kit_devices())
            continue
        assert device.profile_id is not None, f"{device} was not made from a catalogue profile"
        listed.append(
            contract.KitDevice(
                address=device.address.upper(), profile=device.profile_id, passkey=device.passkey
            )
        )
    return contract.KitConfig(
        v=1, gateway_id=gateway_id, version=version, issued_at=datetime.now(UTC), devices=tuple(listed)
    )
