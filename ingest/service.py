"""The ingest service: subscribe, validate, write in batches, acknowledge after commit.

Threads: paho's network loop thread only moves received messages into a queue (it never
touches the database); the main thread batches, writes, commits, then acknowledges (paho v2
manual acks) and publishes alert messages. A crash between receipt and commit therefore
loses nothing: the broker still holds every unacknowledged message of the persistent session
and redelivers it, and the idempotent write stores nothing twice.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hemma import contract
from hemma.db import migrate
from hemma.settings import Settings
from ingest.directory import GatewayDirectory
from ingest.writer import AcceptedBatch, BatchWriter, CommitResult, DeadLetter

log = logging.getLogger(__name__)

_SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps our queue for a week of ingest downtime


@dataclass(frozen=True, slots=True)
class Incoming:
    mid: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


class StopRequested(Exception):
    """Raised inside a database retry loop when the service is asked to stop."""


class IngestService:
    def __init__(
        self,
        settings: Settings,
        *,
        on_commit: Callable[[CommitResult, float], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_commit = on_commit
        self.metrics: Counter[str] = Counter()
        self._inbox: queue.Queue[Incoming] = queue.Queue()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._directory = GatewayDirectory()
        self._client: mqtt.Client | None = None
        self._conn: psycopg.Connection | None = None
        self._writer: BatchWriter | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def run(self) -> None:
        """Block until stop(): connect to broker and database, then process batches."""
        client = self._make_client()
        self._client = client
        target = self.settings.mqtt()
        if self.settings.mqtt_protocol == "5":
            client.connect_async(
                target.host,
                target.port,
                keepalive=30,
                clean_start=False,
                properties=self._connect_properties(),
            )
        else:
            client.connect_async(target.host, target.port, keepalive=30)
        client.loop_start()
        last_report = time.monotonic()
        try:
            while not self._stop.is_set():
                batch = self._collect()
                if batch:
                    try:
                        self._process(batch)
                    except StopRequested:
                        # Stopped while the database was away: the batch stays unacknowledged
                        # and the broker hands it to the next ingest.
                        break
                if time.monotonic() - last_report > 60:
                    self._report()
                    last_report = time.monotonic()
        finally:
            client.disconnect()
            client.loop_stop()
            if self._conn is not None:
                self._conn.close()
            self._report()

    # --- MQTT ----------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        target = self.settings.mqtt()
        v5 = self.settings.mqtt_protocol == "5"
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.settings.ingest_client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            # MQTT 3.1.1 has no session expiry: a persistent session is clean_session=False.
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        if target.username:
            client.username_pw_set(target.username, target.password)
        if target.tls:
            client.tls_set()
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_socket_open = _set_nodelay
        return client

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = _SESSION_EXPIRY_S
        # How many unacknowledged messages the broker may hand us: one batch's worth.
        props.ReceiveMaximum = min(self.settings.ingest_batch_max_messages, 65535)
        return props

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, properties: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.error("broker refused connection: %s", reason)
            self.metrics["mqtt_connect_refused"] += 1
            return
        client.subscribe(
            [
                (contract.MEASUREMENTS_SUBSCRIPTION, contract.MEASUREMENTS_QOS),
                (contract.STATUS_SUBSCRIPTION, contract.STATUS_QOS),
            ]
        )
        self.metrics["mqtt_connects"] += 1
        log.info("connected to broker %s", self.settings.mqtt().url())

    def _on_subscribe(
        self, client: mqtt.Client, userdata: object, mid: int, reasons: list, properties: object
    ) -> None:
        failed = [r for r in reasons if getattr(r, "is_failure", False)]
        if failed:
            log.error("broker refused subscription: %s", failed)
            self.metrics["mqtt_subscribe_refused"] += 1
            return
        log.info("subscribed to gateway topics; ingest ready")
        self._connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, properties: object
    ) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            self.metrics["mqtt_disconnects"] += 1
            log.warning("disconnected from broker (%s); paho reconnects", reason)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        # Network thread: hand over and return; never block here.
        self._inbox.put(Incoming(msg.mid, msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain)))

    def _collect(self) -> list[Incoming]:
        try:
            first = self._inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.settings.ingest_flush_interval_ms / 1000
        limit = self.settings.ingest_batch_max_messages
        while len(batch) < limit:
            remaining = deadline - time.monotonic()
            try:
                batch.append(
                    self._inbox.get_nowait() if remaining <= 0 else self._inbox.get(timeout=remaining)
                )
            except queue.Empty:
                break
        return batch

    # --- processing ----------------------------------------------------------------------------

    def _process(self, batch: list[Incoming]) -> None:
        now = datetime.now(UTC)
        started = time.perf_counter()
        result = self._write_with_retry(batch, now)
        assert self._client is not None
        for item in batch:
            self._client.ack(item.mid, item.qos)
        self._publish_alerts(result)
        self.metrics["messages"] += len(batch)
        self.metrics["observations_stored"] += result.observations_stored
        self.metrics["duplicates"] += result.duplicates
        self.metrics["dead_letters"] += result.dead_letters
        self.metrics["alert_changes"] += len(result.alert_changes)
        self.metrics["batches"] += 1
        if self.on_commit is not None:
            self.on_commit(result, time.perf_counter() - started)

    def _classify(self, batch: list[Incoming], now: datetime):  # type: ignore[no-untyped-def]
        """Split a batch into accepted measurements, dead letters and gateway statuses."""
        assert self._conn is not None
        decoded: list[tuple[int, Incoming, contract.DecodedBatch]] = []
        dead: list[tuple[int, DeadLetter]] = []  # kept in arrival order for the operator
        statuses: list[contract.GatewayStatus] = []
        for position, item in enumerate(batch):
            gateway = contract.gateway_id_from_topic(item.topic)
            try:
                if item.topic.endswith("/status"):
                    if item.payload:  # an empty retained payload clears a status; nothing to store
                        statuses.append(contract.decode_gateway_status(item.topic, item.payload))
                else:
                    decoded.append(
                        (
                            position,
                            item,
                            contract.decode_measurement_batch(
                                item.topic,
                                item.payload,
                                now=now,
                                max_bytes=self.settings.ingest_max_payload_bytes,
                            ),
                        )
                    )
            except contract.PayloadRejected as exc:
                dead.append((position, DeadLetter(item.topic, gateway, exc.reason, item.payload)))
        ids = {d.gateway_id for _, _, d in decoded} | {s.gateway_id for s in statuses}
        enrolments = self._directory.lookup(self._conn, ids) if ids else {}
        accepted: list[AcceptedBatch] = []
        for position, item, d in decoded:
            enrolment = enrolments.get(d.gateway_id)
            if enrolment is None:
                dead.append(
                    (
                        position,
                        DeadLetter(
                            item.topic, d.gateway_id, "unknown gateway or no enrolled patient", item.payload
                        ),
                    )
                )
                continue
            for r in d.rejected:
                dead.append(
                    (
                        position,
                        DeadLetter(
                            item.topic,
                            d.gateway_id,
                            f"measurement {r.index}: {r.reason}",
                            _json(r.measurement),
                        ),
                    )
                )
            if d.measurements:
                accepted.append(AcceptedBatch(d, enrolment))
        known_statuses = []
        for s in statuses:
            if enrolments.get(s.gateway_id) is None and not self._gateway_exists(s.gateway_id):
                self.metrics["status_unknown_gateway"] += 1
                continue
            known_statuses.append((s, enrolments.get(s.gateway_id)))
        dead.sort(key=lambda pair: pair[0])
        return accepted, [d for _, d in dead], known_statuses

    def _gateway_exists(self, gateway_id: str) -> bool:
        assert self._conn is not None
        row = self._conn.execute("SELECT 1 FROM gateways WHERE id = %s", (gateway_id,)).fetchone()
        return row is not None

    def _write_with_retry(self, batch: list[Incoming], now: datetime) -> CommitResult:
        delay = 0.5
        while True:
            try:
                if self._writer is None:
                    self._connect_database()
                accepted, dead, statuses = self._classify(batch, now)
                assert self._writer is not None
                return self._writer.commit(accepted, dead, statuses, now=now)
            except psycopg.OperationalError as exc:
                # The database went away: keep the messages unacknowledged, reconnect and try again.
                self.metrics["db_retries"] += 1
                log.error("database unavailable (%s); retrying in %.1f s", type(exc).__name__, delay)
                self._writer = None
                if self._stop.wait(delay):
                    raise StopRequested from exc
                delay = min(delay * 2, 30)
            except psycopg.Error as exc:
                # The data itself was refused. Find the message responsible, dead-letter it, keep the rest.
                self.metrics["db_rejections"] += 1
                log.error("database refused a batch (%s); isolating the message", exc.sqlstate)
                if len(batch) == 1:
                    item = batch[0]
                    reason = f"database refused: {exc.sqlstate} {type(exc).__name__}"
                    dead = [
                        DeadLetter(
                            item.topic, contract.gateway_id_from_topic(item.topic), reason, item.payload
                        )
                    ]
                    return self._writer.commit([], dead, [], now=now)  # type: ignore[union-attr]
                merged = CommitResult()
                for item in batch:
                    part = self._write_with_retry([item], now)
                    merged.observations_offered += part.observations_offered
                    merged.observations_stored += part.observations_stored
                    merged.dead_letters += part.dead_letters
                    merged.alert_changes += part.alert_changes
                return merged

    def _connect_database(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        # Autocommit, so that `conn.transaction()` in the writer is a real BEGIN/COMMIT.
        # connect_timeout: an unreachable host must not hang the loop for minutes.
        self._conn = psycopg.connect(
            self.settings.require_database_url(),
            autocommit=True,
            application_name="hemma-ingest",
            connect_timeout=10,
        )
        self._writer = BatchWriter(self._conn)
        self._directory.forget()

    def _publish_alerts(self, result: CommitResult) -> None:
        assert self._client is not None
        for change in result.alert_changes:
            if not change.notify:
                continue
            message = contract.AlertMessage(
                v=1,
                alert_id=change.alert_id,
                ward_id=change.ward_id,
                patient_id=change.patient_id,
                rule=change.rule,
                priority=change.priority,
                state=change.state,
                message=change.message,
                at=change.at,
            )
            self._client.publish(contract.alerts_topic(change.ward_id), contract.encode(message), qos=1)

    def _report(self) -> None:
        if self.metrics:
            log.info("ingest counters: %s", " ".join(f"{k}={v}" for k, v in sorted(self.metrics.items())))


def _json(value: object) -> bytes:
    import json

    return json.dumps(value, default=str).encode()


def _set_nodelay(client: mqtt.Client, userdata: object, sock: object) -> None:
    import socket

    # Not a TCP socket (websockets, unix): nothing to tune.
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[attr-defined]


def run(settings: Settings) -> int:
    """`hemma ingest`: run until SIGINT/SIGTERM."""
    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
        applied = migrate(conn)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
    service = IngestService(settings)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: service.stop())
    service.run()
    return 0
