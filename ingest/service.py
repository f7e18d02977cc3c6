"""The ingest service: subscribe, validate, write in batches, acknowledge after commit, send receipts.

Threads: paho's network loop thread only moves received messages into a queue (it never
touches the database); the main thread batches, writes, commits, then acknowledges (paho v2
manual acks), sends each gateway a receipt for its messages, and publishes alert messages. A
crash between receipt and commit therefore loses nothing: the broker still holds every
unacknowledged message of the persistent session and redelivers it, and the idempotent write
stores nothing twice. What the broker itself loses (a crash before its next snapshot, a
restart without ingest's session) is sent again by the gateways, which keep every message until
its receipt arrives: only the end that stores a reading can confirm it.
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
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from broker.mqtt import set_nodelay, use_target
from core import contract
from core.settings import Settings
from ingest import classify
from ingest.classify import Incoming
from ingest.directory import GatewayDirectory
from ingest.engine import AlertEngine
from ingest.kit_configs import KitConfigPublisher
from ingest.writer import BatchWriter, CommitResult, DeadLetter
from storage.db import migrate

log = logging.getLogger(__name__)

_SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps our queue for a week of ingest downtime
# Database retries: quick at first, then every 2 s, so readings flow again within about 2 s of the
# database coming back (a back-off that grew to 30 s kept them waiting long after recovery).
_DB_RETRY_FIRST_S = 0.25
_DB_RETRY_MAX_S = 2.0


class StopRequested(Exception):
    """Raised inside a database retry loop when the service is asked to stop."""


class IngestService:
    def __init__(
        self,
        settings: Settings,
        *,
        on_commit: Callable[[CommitResult, float], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.on_commit = on_commit
        self.metrics: Counter[str] = Counter()
        self._inbox: queue.Queue[Incoming] = queue.Queue()
        self._decoded: queue.Queue[classify.Decoded] = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._directory = GatewayDirectory()
        self._connects = 0  # CONNACKs accepted in this process
        self._missing_sessions: queue.Queue[int] = queue.Queue()  # connections without a broker session
        self._client: mqtt.Client | None = None
        self._conn: psycopg.Connection | None = None
        self._writer: BatchWriter | None = None
        # The engine outlives database reconnects: its trend windows are rebuilt only once.
        self.engine = AlertEngine(tick_every=timedelta(seconds=settings.engine_tick_seconds))
        self._clock = clock
        self._kit_configs = KitConfigPublisher(self.metrics)
        # When to look for kit configurations to publish next (time.monotonic()); 0 = at once, as
        # after each connection: the engine's timer cadence.
        self._next_config_check = 0.0

    # --- lifecycle -----------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def run(self) -> None:
        """Block until stop(): connect to broker and database, then process batches.

        Three threads: paho's network thread queues what arrives; the decoder thread validates
        the next batch while this (writer) thread commits the previous one; this thread writes,
        commits, then acknowledges. The hand-over queue holds two batches, so a slow database
        slows the decoder, which stops taking messages; the broker then stops sending once the
        receive maximum of unacknowledged messages is reached and queues the rest for this
        session (up to its max_queued_messages, see deploy/mosquitto/mosquitto.conf). Nothing is
        dropped here; the gateways are not slowed, since the broker acknowledges their publishes.
        """
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
        decoder = threading.Thread(target=self._decode_loop, name="ingest-decoder", daemon=True)
        decoder.start()
        last_report = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    decoded = self._decoded.get(timeout=0.2)
                except queue.Empty:
                    decoded = None
                # Before the batch: its messages arrived after the CONNACK that may have said the
                # session is gone, and storing them must not make a first start look like a loss.
                self._judge_missing_sessions()
                if decoded is not None:
                    try:
                        self._process(decoded)
                    except StopRequested:
                        # Stopped while the database was away: the batch stays unacknowledged
                        # and the broker hands it to the next ingest.
                        break
                self._tick_if_due()
                self._kit_configs_if_due()
                if time.monotonic() - last_report > 60:
                    self._report()
                    last_report = time.monotonic()
        finally:
            self._stop.set()
            decoder.join(5)
            client.disconnect()
            client.loop_stop()
            if self._conn is not None:
                self._conn.close()
            self._report()

    def _decode_loop(self) -> None:
        while not self._stop.is_set():
            messages = self._collect()
            if not messages:
                continue
            decoded = classify.decode(
                messages, now=datetime.now(UTC), max_bytes=self.settings.ingest_max_payload_bytes
            )
            while not self._stop.is_set():
                try:
                    self._decoded.put(decoded, timeout=0.2)
                    break
                except queue.Full:
                    continue

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
        use_target(client, target)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        client.on_socket_open = set_nodelay
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
        self._connects += 1
        if not getattr(flags, "session_present", False):
            self._session_missing()
        client.subscribe(
            [
                (contract.MEASUREMENTS_SUBSCRIPTION, contract.MEASUREMENTS_QOS),
                (contract.STATUS_SUBSCRIPTION, contract.STATUS_QOS),
                # The box's button (KitEventBatch): the same session, manual acks and receipts.
                (contract.EVENTS_SUBSCRIPTION, contract.EVENTS_QOS),
            ]
        )
        self.metrics["mqtt_connects"] += 1
        self._next_config_check = 0.0  # publish what is pending now that the broker is there
        log.info("connected to broker %s", self.settings.mqtt().url())

    def _on_publish(
        self, client: mqtt.Client, userdata: object, mid: int, reason: object, properties: object
    ) -> None:
        self._kit_configs.published(mid, reason)

    def _session_missing(self) -> None:
        """Network thread: note it; the writer thread judges it (`_judge_missing_sessions`)."""
        self._missing_sessions.put(self._connects)

    def _judge_missing_sessions(self) -> None:
        """The broker had no session for us: whatever it queued for ingest is gone. Harmless for the data
        (gateways send again what has no receipt), but an operator must know the broker lost state. On
        the first connection of a process that is also what a first start looks like; the database
        tells the two apart (has ingest ever stored a kit's message?)."""
        while True:
            try:
                connection = self._missing_sessions.get_nowait()
            except queue.Empty:
                return
            if connection == 1 and not self._stored_before():
                self.metrics["mqtt_session_absent_at_start"] += 1
                log.info("the broker holds no session for ingest yet (first start); it is created now")
                continue
            self.metrics["mqtt_sessions_lost"] += 1
            log.warning(
                "the broker lost ingest's session (a broker crash, or a restart without its state): what"
                " it had queued for ingest is gone, and the gateways send it again as its receipts are"
                " missing. Find out why the broker lost its state."
            )

    def _stored_before(self) -> bool:
        try:
            if self._writer is None:
                self._connect_database()
            assert self._conn is not None
            row = self._conn.execute(
                "SELECT EXISTS (SELECT 1 FROM gateways WHERE last_message_at IS NOT NULL)"
            )
            return bool(row.fetchone()[0])  # type: ignore[index]
        except psycopg.Error:
            self._writer = None
            return True  # cannot tell: say it was lost rather than stay silent

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
        # Take what has already arrived, then linger at most flush_interval for more. Under load the
        # inbox fills while the previous batch commits, so batches grow by themselves; at low load
        # a short linger keeps the latency of a lone message low.
        deadline = time.monotonic() + self.settings.ingest_flush_interval_ms / 1000
        limit = self.settings.ingest_batch_max_messages
        while len(batch) < limit:
            try:
                batch.append(self._inbox.get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self._inbox.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    # --- processing ----------------------------------------------------------------------------

    def _process(self, decoded: classify.Decoded) -> None:
        started = time.perf_counter()
        result = self._write_with_retry(decoded)
        assert self._client is not None
        for item in decoded.messages:
            self._client.ack(item.mid, item.qos)
        self._send_receipts(result.receipts)
        self._publish_alerts(result)
        self.metrics["messages"] += len(decoded.messages)
        self.metrics["observations_stored"] += result.observations_stored
        self.metrics["duplicates"] += result.duplicates
        self.metrics["contact_requests_stored"] += result.events_stored
        self.metrics["dead_letters"] += result.dead_letters
        self.metrics["alert_changes"] += len(result.alert_changes)
        self.metrics["engine_failures"] += result.engine_failures
        self.metrics["batches"] += 1
        if self.on_commit is not None:
            self.on_commit(result, time.perf_counter() - started)

    def _tick_if_due(self) -> None:
        """The engine's timer rules. A database failure here is logged and retried at the next tick: the
        messages in flight are not involved, and the batch path reconnects on its own."""
        now = self._clock()
        if not self.engine.due(now):
            return
        try:
            if self._writer is None:
                self._connect_database()
            assert self._writer is not None
            changes = self._writer.tick(now=now)
        except Exception as exc:
            # A database error or a fault in a rule: the tick's transaction is rolled back and the next
            # tick tries again; ingest keeps storing readings meanwhile.
            self.metrics["engine_tick_failures"] += 1
            log.error("alert engine tick failed (%s); retrying next tick", type(exc).__name__)
            if isinstance(exc, psycopg.OperationalError):
                self._writer = None
            return
        self.metrics["engine_ticks"] += 1
        self.metrics["alert_changes"] += len(changes)
        self._publish_alerts(CommitResult(alert_changes=changes))

    def _kit_configs_if_due(self) -> None:
        """Record the PUBACKs of kit configurations, and on the engine's cadence publish the versions
        not yet published (care.kit issues them). A failure is logged and retried at the next check."""
        if self._writer is None or self._conn is None or self._client is None:
            return
        try:
            self._kit_configs.record_acks(self._conn)
            if time.monotonic() < self._next_config_check or not self._connected.is_set():
                return
            self._next_config_check = time.monotonic() + self.settings.engine_tick_seconds
            self._kit_configs.publish_pending(self._client, self._conn)
        except psycopg.Error as exc:
            self.metrics["kit_config_check_failures"] += 1
            log.error("kit configuration check failed (%s); retrying next tick", type(exc).__name__)
            if isinstance(exc, psycopg.OperationalError):
                self._writer = None

    def _write_with_retry(self, decoded: classify.Decoded) -> CommitResult:
        delay = _DB_RETRY_FIRST_S
        while True:
            try:
                if self._writer is None:
                    self._connect_database()
                assert self._writer is not None and self._conn is not None
                resolved = classify.resolve(decoded, self._conn, self._directory, self.metrics)
                result = self._writer.commit(
                    resolved.accepted,
                    resolved.dead,
                    resolved.statuses,
                    now=decoded.now,
                    kit_events=resolved.events,
                )
                result.receipts = resolved.receipts
                return result
            except psycopg.OperationalError as exc:
                # The database went away: keep the messages unacknowledged, reconnect and try again.
                self.metrics["db_retries"] += 1
                log.error("database unavailable (%s); retrying in %.2f s", type(exc).__name__, delay)
                self._writer = None
                if self._stop.wait(delay):
                    raise StopRequested from exc
                delay = min(delay * 2, _DB_RETRY_MAX_S)
            except psycopg.Error as exc:
                # The data itself was refused. Find the message responsible, dead-letter it, keep the rest.
                self.metrics["db_rejections"] += 1
                log.error("database refused a batch (%s); isolating the message", exc.sqlstate)
                return self._isolate(decoded, exc)

    def _isolate(self, decoded: classify.Decoded, exc: psycopg.Error) -> CommitResult:
        assert self._writer is not None
        if len(decoded.messages) == 1:
            item = decoded.messages[0]
            reason = f"database refused: {exc.sqlstate} {type(exc).__name__}"
            letter = DeadLetter(item.topic, contract.gateway_id_from_topic(item.topic), reason, item.payload)
            result = self._writer.commit([], [letter], [], now=decoded.now)
            receipt = classify.dead_lettered_receipt(item, reason)
            result.receipts = [receipt] if receipt is not None else []
            return result
        merged = CommitResult()
        for item in decoded.messages:
            single = classify.decode(
                [item], now=decoded.now, max_bytes=self.settings.ingest_max_payload_bytes
            )
            part = self._write_with_retry(single)
            merged.observations_offered += part.observations_offered
            merged.observations_stored += part.observations_stored
            merged.dead_letters += part.dead_letters
            merged.alert_changes += part.alert_changes
            merged.engine_failures += part.engine_failures
            merged.receipts += part.receipts
            merged.events_offered += part.events_offered
            merged.events_stored += part.events_stored
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
        self._writer = BatchWriter(self._conn, self.engine)
        self._directory.forget()

    def _send_receipts(self, receipts: list[classify.ReceiptEntry]) -> None:
        """One receipt message per gateway (in chunks), after COMMIT and the acks, in arrival order.

        QoS 1, not retained. A receipt that does not arrive (the gateway is offline, the broker
        restarts) costs a re-send, which stores nothing twice and is confirmed again."""
        assert self._client is not None
        by_gateway: dict[str, list[contract.MessageReceipt]] = {}
        for entry in receipts:
            by_gateway.setdefault(entry.gateway_id, []).append(entry.receipt)
        at = datetime.now(UTC)
        for gateway_id, entries in by_gateway.items():
            for receipt in contract.receipts_for(gateway_id, entries, at=at):
                self._client.publish(
                    contract.receipts_topic(gateway_id), contract.encode(receipt), qos=contract.RECEIPTS_QOS
                )
        self.metrics["receipts_sent"] += len(receipts)

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
        for name, value in vars(self.engine.stats).items():
            if value:
                self.metrics[f"engine_{name}"] = value
        if self.metrics:
            log.info("ingest counters: %s", " ".join(f"{k}={v}" for k, v in sorted(self.metrics.items())))


def run(settings: Settings) -> int:
    """`hemma ingest`: run until SIGINT/SIGTERM."""
    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
        applied = migrate(conn)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
    target = settings.mqtt()
    if target.username and target.username != settings.ingest_client_id:
        # The production broker replaces every client id with the account's username
        # (deploy/mosquitto/mosquitto.conf): the session lives under the username, whatever is set here.
        log.warning(
            "HEMMA_INGEST_CLIENT_ID (%s) differs from the broker username (%s); a broker that binds client"
            " ids to usernames keeps ingest's session under the username",
            settings.ingest_client_id,
            target.username,
        )
    service = IngestService(settings)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: service.stop())
    service.run()
    return 0
