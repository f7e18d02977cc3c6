"""paho-mqtt details every Hemma MQTT client shares (gateway, ingest, benchmark, tests)."""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from core.settings import MqttTarget


def set_nodelay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """paho `on_socket_open` callback: turn off Nagle's algorithm.

    Nagle holds small PUBLISH/PUBACK packets for tens of milliseconds (PERFORMANCE-NOTES.md);
    neither paho nor Mosquitto disables it by default.
    """
    with contextlib.suppress(OSError, AttributeError):  # a websocket or unix socket: nothing to tune
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def use_target(client: mqtt.Client, target: MqttTarget) -> mqtt.Client:
    """Give a paho client the broker account and TLS of `target` (mqtt:// or mqtts://)."""
    if target.username:
        client.username_pw_set(target.username, target.password)
    if target.tls:
        client.tls_set()
    return client


def drop_session(target: MqttTarget, client_id: str) -> None:
    """End a persistent MQTT v5 session (and the messages queued for it) on the broker."""
    client = use_target(
        mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5), target
    )
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    client.connect(target.host, target.port, clean_start=True, properties=props)
    client.loop(timeout=1.0)  # read the CONNACK before leaving
    client.disconnect()
