"""Ingest publishes each kit's configuration (issue 10; docs/protocol.md, "KitConfig").

Staff change a kit through care.kit, which issues a new version in `kit_configs`; ingest, the only
writer of config topics (broker ACL), publishes every version above the one published: retained, QoS
1, on the kit's own config topic, built by care.kit.kit_config (the one builder). A version is marked
published only after the broker's PUBACK; a publish that fails, or whose PUBACK does not come, is
sent again at a later check. Checks run at start (after each connection) and on the engine's timer.

Threads: `published` is called on paho's network thread and only hands the mid over; everything
else runs on ingest's writer thread, which owns the database connection.
"""

from __future__ import annotations

import logging
import queue
import time
from collections import Counter
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import psycopg

from care.kit import kit_config
from core import contract
from storage.steps import run

log = logging.getLogger(__name__)

# A publish without a PUBACK after this long is forgotten and sent again (the connection was lost).
_PUBACK_WAIT_S = 60.0
# MQTT 5 "No matching subscribers": the broker kept the retained message all the same.
_NO_MATCHING_SUBSCRIBERS = 0x10


@dataclass(frozen=True, slots=True)
class _InFlight:
    gateway_id: str
    version: int
    sent: float  # time.monotonic()


class KitConfigPublisher:
    def __init__(self, metrics: Counter[str]) -> None:
        self.metrics = metrics
        self._in_flight: dict[int, _InFlight] = {}
        self._acks: queue.Queue[tuple[int, bool]] = queue.Queue()

    def published(self, mid: int, reason_code: object) -> None:
        """paho's on_publish (network thread): the broker's PUBACK for `mid`, refused or not."""
        value = getattr(reason_code, "value", 0)
        ok = not getattr(reason_code, "is_failure", False) or value == _NO_MATCHING_SUBSCRIBERS
        self._acks.put((mid, ok))

    def record_acks(self, conn: psycopg.Connection) -> int:
        """Mark the versions the broker acknowledged as published; returns how many."""
        done = 0
        while True:
            try:
                mid, ok = self._acks.get_nowait()
            except queue.Empty:
                return done
            sent = self._in_flight.pop(mid, None)
            if sent is None:
                continue  # an alert or receipt, or a config forgotten after _PUBACK_WAIT_S
            if not ok:
                self.metrics["kit_config_publish_refused"] += 1
                log.error("broker refused the configuration of kit %s; retrying", sent.gateway_id)
                continue
            with conn.transaction():
                conn.execute(
                    "UPDATE kit_configs SET published_version = GREATEST(COALESCE(published_version, 0), %s),"
                    " published_at = now() WHERE gateway_id = %s AND version >= %s",
                    (sent.version, sent.gateway_id, sent.version),
                )
            self.metrics["kit_configs_published"] += 1
            done += 1

    def publish_pending(self, client: mqtt.Client, conn: psycopg.Connection) -> int:
        """Publish every kit configuration whose current version is above the published one and is
        not awaiting its PUBACK; returns how many were handed to the client."""
        now = time.monotonic()
        for mid, sent in list(self._in_flight.items()):
            if now - sent.sent > _PUBACK_WAIT_S:
                del self._in_flight[mid]
        waiting = {(s.gateway_id, s.version) for s in self._in_flight.values()}
        with conn.transaction():
            rows = conn.execute(
                "SELECT gateway_id, version FROM kit_configs"
                " WHERE published_version IS NULL OR published_version < version ORDER BY gateway_id"
            ).fetchall()
            configs = [run(conn, kit_config(g)) for g, v in rows if (g, v) not in waiting]
        handed = 0
        for config in configs:
            if config is None:
                continue
            info = client.publish(
                contract.config_topic(config.gateway_id), contract.encode(config),
                qos=contract.CONFIG_QOS, retain=True,
            )  # fmt: skip
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                self.metrics["kit_config_publish_failures"] += 1
                continue  # not connected: the next check sends it
            self._in_flight[info.mid] = _InFlight(config.gateway_id, config.version, now)
            handed += 1
        return handed
