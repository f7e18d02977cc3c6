"""Drain the store-and-forward queue to the MQTT broker, QoS 1, in a bounded in-flight window.

One thread owns everything MQTT: it connects, publishes and reads acknowledgements, driving
paho's `loop_read`/`loop_write`/`loop_misc` from its own `select()` so a `wake()` from the
BLE side is noticed at once. Nobody else ever calls into paho (paho #354: publishing from
several threads can deadlock; #396: `loop_start` can peg a core).

Delivery is at least once, keyed by the queue's message id, and confirmed end to end:

* a message leaves the queue only when ingest's receipt names it (topic
  `hemma/v1/gw/{id}/receipts`, after ingest's database commit). The broker's PUBACK only
  frees a place in the in-flight window: a broker acknowledges and still loses what it held
  when it crashes before its next snapshot, and a PUBACK 0x10 "No matching subscribers" says
  that nobody received the message at all;
* a message without a receipt is sent again: after a time-out that doubles with each sending
  (`receipt_timeout_s` up to `receipt_timeout_max_s`, with jitter); soon after a 0x10 PUBACK;
  and at once when a receipt arrives for a message sent after it, which proves it was lost on
  the way (see gateway.queue). Ingest stores each reading once however often it arrives;
* each connection uses a fresh paho client (clean start), so after a drop paho does not
  resend its own in-memory copies; whatever was in flight is re-published from the queue
  under the same message id. Receipts published while the gateway is not connected are lost
  with its session, and the re-sending covers that too.

MQTT 5 is used because a v5 broker says *why* it refuses a PUBLISH (PUBACK 0x87 not
authorised, 0x97 quota exceeded); under 3.1.1 Mosquitto silently acks a publish its ACL
denies, and the queue would delete data nobody received.

Status (retained, outside the queue): "online" on every connection, again every
`status_interval_s` as a heartbeat, and promptly (at most once per `status_min_gap_s`) after
`request_status()`; each carries the `device_facts()` of that moment (battery levels, see
gateway.device_facts) and what awaits a receipt (`unconfirmed`); a status that reported a
message waiting longer than `stuck_after_s` (60 s) is followed by a prompt one once everything is confirmed,
so ingest's `receipts_overdue` alarm clears. "offline" on a clean stop, and as the last will.
An "online" status also carries the kit facts of that moment (`kit_facts()`: the applied
KitConfig version and the unknown compatible devices in range, see gateway.kit).

Kit configuration (downlink): the client subscribes to the kit's own retained config topic
(`hemma/v1/gw/{id}/config`, QoS 1) on every connection, so the broker hands over the latest
at once. A valid `KitConfig` goes to `on_config(config, payload)`, which only hands it over
(the gateway applies it on its own loop, and decides whether its version is new); one that
fails validation is counted (`config_refused`) and logged with the reason only, never its
content. An empty payload (the retained config was cleared) changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import random
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from broker.mqtt import set_nodelay, use_target
from core.contract import (
    CONFIG_QOS,
    MAX_STATUS_BYTES,
    RECEIPTS_QOS,
    STATUS_QOS,
    DeviceStatus,
    GatewayStatus,
    KitConfig,
    PayloadRejected,
    Unconfirmed,
    UnknownDevice,
    config_topic,
    decode_kit_config,
    decode_receipt,
    encode,
    receipts_topic,
    status_topic,
)
from core.settings import MqttTarget
from gateway import SOFTWARE
from gateway.queue import StoreAndForwardQueue

log = logging.getLogger(__name__)

_CONNACK_TIMEOUT_S = 10.0
_GOODBYE_TIMEOUT_S = 2.0
DEFAULT_STATUS_INTERVAL_S = 600.0  # the "online" heartbeat
_STATUS_MIN_GAP_S = 1.0  # prompt statuses (a battery change) are coalesced to one per gap
DEFAULT_RECEIPT_TIMEOUT_S = 60.0  # first re-send of a message without a receipt
DEFAULT_RECEIPT_TIMEOUT_MAX_S = 1800.0  # the time-out doubles with each sending up to this
_NO_SUBSCRIBERS = 0x10  # MQTT 5 PUBACK reason: accepted, and delivered to nobody
_NO_SUBSCRIBERS_RETRY_MAX_S = 30.0  # ingest's session normally comes back within seconds
_MAX_REPORTED_AGE_S = 90 * 86400.0  # as old as a reading ingest still accepts (MAX_READING_AGE)
_STUCK_S = 60.0  # a status that reported a message waiting this long is followed by an all-clear

# What the status says about the kit: the applied config version, and unknown compatible devices.
KitFacts = tuple[int | None, tuple[UnknownDevice, ...]]


def resend_delay(attempts: int, initial: float, maximum: float) -> float:
    """Seconds until a message sent `attempts` times goes again without a receipt: doubling, capped,
    with jitter so a ward's kits do not re-send in step after an outage."""
    delay = min(initial * 2 ** max(0, attempts - 1), maximum)
    return random.uniform(0.75 * delay, delay)


def _backoff(initial: float, maximum: float) -> Iterator[float]:
    """Exponential back-off with jitter, so a ward's gateways do not reconnect in lockstep after an outage."""
    delay = initial
    while True:
        yield random.uniform(delay / 2, delay)
        delay = min(delay * 2, maximum)


class Publisher:
    """Publishes queued messages on a thread of its own; see the module docstring."""

    def __init__(
        self,
        target: MqttTarget,
        gateway_id: str,
        queue: StoreAndForwardQueue,
        *,
        inflight_max: int = 20,
        keepalive_s: int = 30,
        backoff_initial_s: float = 0.25,
        backoff_max_s: float = 30.0,
        protocol: str = "5",
        device_facts: Callable[[], tuple[DeviceStatus, ...]] | None = None,
        status_interval_s: float = DEFAULT_STATUS_INTERVAL_S,
        status_min_gap_s: float = _STATUS_MIN_GAP_S,
        receipt_timeout_s: float = DEFAULT_RECEIPT_TIMEOUT_S,
        receipt_timeout_max_s: float = DEFAULT_RECEIPT_TIMEOUT_MAX_S,
        stuck_after_s: float = _STUCK_S,
        kit_facts: Callable[[], KitFacts] | None = None,
        on_config: Callable[[KitConfig, bytes], None] | None = None,
    ) -> None:
        if protocol not in ("5", "3.1.1"):
            raise ValueError(f"MQTT protocol must be '5' or '3.1.1', got {protocol!r}")
        if not status_interval_s > 0:
            raise ValueError(f"status interval must be positive, got {status_interval_s!r}")
        if not 0 < receipt_timeout_s <= receipt_timeout_max_s:
            raise ValueError(
                f"receipt time-outs must satisfy 0 < {receipt_timeout_s!r} <= {receipt_timeout_max_s!r}"
            )
        # MQTT 5 is the one to use with Mosquitto: under 3.1.1 a publish the broker's ACL denies is
        # still acknowledged, and the queue would delete data nobody received. 3.1.1 exists for
        # the demo's fallback broker (amqtt), which speaks nothing newer.
        self.protocol = protocol
        self.target = target
        self.gateway_id = gateway_id
        self.queue = queue
        self.inflight_max = inflight_max
        self.keepalive_s = keepalive_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self.device_facts = device_facts
        self.status_interval_s = status_interval_s
        self.status_min_gap_s = status_min_gap_s
        self.receipt_timeout_s = receipt_timeout_s
        self.receipt_timeout_max_s = receipt_timeout_max_s
        self.stuck_after_s = stuck_after_s
        self.kit_facts = kit_facts
        self.on_config = on_config
        # Counters, written only by the publisher thread.
        self.published = 0  # PUBLISH packets sent for queued messages, re-sends included
        self.resent = 0  # of those, sendings of a message sent before
        self.acked = 0  # successful PUBACKs for queued messages (a hop, not a delivery)
        self.no_subscribers = 0  # PUBACK 0x10: the broker had nobody to give it to (sent again soon)
        self.broker_rejected = 0  # PUBACKs with a failure reason code (message kept, session restarted)
        self.confirmed = 0  # messages removed from the queue by ingest's receipts
        self.confirmed_dead_lettered = 0  # of those, messages (or measurements) ingest dead-lettered
        self.lost_in_transit = 0  # messages made due by a receipt for a later one
        self.receipts_refused = 0  # receipt messages that failed validation (ignored)
        self.configs_received = 0  # valid kit configs handed to on_config (new or not)
        self.config_refused = 0  # kit config messages that failed validation (the current one stays)
        self.connects = 0
        self.connect_failures = 0
        self.connected = False
        self.statuses_published = 0  # "online" and "offline" statuses sent (not the last will)
        self._stop = threading.Event()
        self._status_wanted = threading.Event()
        self._last_status = 0.0  # time.monotonic() of the last "online" status
        self._has_work = threading.Event()
        self._has_work.set()
        self._next_due = 0.0  # time.time() when the queue is next looked at for re-sends
        self._wake_r: socket.socket | None = None  # a byte written to _wake_w interrupts select()
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._inflight: dict[int, tuple[str, int]] = {}  # paho mid -> (queue message id, sendings)
        self._status_mids: set[int] = set()
        self._unheard: list[tuple[str, int]] = []  # PUBACK 0x10: (message id, sendings)
        self._confirmations: list[str] = []  # message ids named by receipts, not yet applied
        self._reported_stuck = False  # the last status reported a message waiting >= _STUCK_S
        self._session_failed: str | None = None

    @property
    def reconnects(self) -> int:
        """Connections established after the first one."""
        return max(0, self.connects - 1)

    def stats(self) -> dict[str, float | int | bool]:
        age = None if self.queue.closed else self.queue.oldest_age()
        waiting = self._unconfirmed()
        return {
            "connected": self.connected,
            "published": self.published,
            "resent": self.resent,
            "acked": self.acked,
            "no_subscribers": self.no_subscribers,
            "broker_rejected": self.broker_rejected,
            "confirmed": self.confirmed,
            "confirmed_dead_lettered": self.confirmed_dead_lettered,
            "lost_in_transit": self.lost_in_transit,
            "receipts_refused": self.receipts_refused,
            "configs_received": self.configs_received,
            "config_refused": self.config_refused,
            "reconnects": self.reconnects,
            "connect_failures": self.connect_failures,
            "statuses_published": self.statuses_published,
            "inflight": len(self._inflight),
            "queue_depth": len(self.queue),
            "queue_oldest_age_s": age.total_seconds() if age is not None else 0.0,
            "unconfirmed": waiting.messages if waiting else 0,
            "unconfirmed_oldest_age_s": waiting.oldest_age_s if waiting else 0.0,
        }

    # --- control, from any thread -------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("publisher already started")
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{self.gateway_id}", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Tell the publisher the queue has new messages."""
        self._has_work.set()
        if self._wake_w is not None:
            with contextlib.suppress(OSError):  # BlockingIOError: a wake-up is already pending
                self._wake_w.send(b"\0")

    def request_status(self) -> None:
        """Publish an "online" status with the current device facts soon (when connected)."""
        self._status_wanted.set()
        self.wake()

    def wait_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.connected:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def flush(self, timeout: float) -> bool:
        """Wait until the queue is empty (everything confirmed by ingest's receipts); False on timeout."""
        deadline = time.monotonic() + timeout
        self.wake()
        while len(self.queue) or self._inflight:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Say goodbye (retained "offline" status, DISCONNECT) and stop. Queued messages stay queued."""
        self._stop.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning(
                    "gateway %s: publisher thread did not stop within %.0f s", self.gateway_id, timeout
                )
                return  # leave its sockets open: it may still be selecting on them
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()

    # --- the publisher thread -----------------------------------------------------------------

    def _run(self) -> None:
        delays = _backoff(self._backoff_initial_s, self._backoff_max_s)
        while not self._stop.is_set():
            reached_broker = False
            try:
                reached_broker = self._session()
            except OSError as exc:
                self.connect_failures += 1
                log.warning(
                    "gateway %s: cannot reach MQTT broker %s: %s", self.gateway_id, self.target.url(), exc
                )
            except Exception:
                self.connect_failures += 1
                log.exception("gateway %s: MQTT session failed", self.gateway_id)
            finally:
                self.connected = False
                self._requeue_inflight()
                self._status_mids.clear()
            if reached_broker:
                delays = _backoff(self._backoff_initial_s, self._backoff_max_s)
            if not self._stop.is_set():
                self._stop.wait(next(delays))

    def _new_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.gateway_id,
            protocol=mqtt.MQTTv5 if self.protocol == "5" else mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        use_target(client, self.target)
        offline = GatewayStatus(v=1, gateway_id=self.gateway_id, state="offline", software=SOFTWARE)
        client.will_set(status_topic(self.gateway_id), encode(offline), qos=STATUS_QOS, retain=True)
        # Our window is the limit; paho's own queue must never hold messages back behind it.
        client.max_inflight_messages_set(self.inflight_max + 4)
        client.on_socket_open = set_nodelay
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _session(self) -> bool:
        """One connection, from CONNECT until it drops or we stop. Returns whether CONNACK arrived."""
        client = self._new_client()
        self._session_failed = None
        if self.protocol == "5":
            client.connect(self.target.host, self.target.port, keepalive=self.keepalive_s, clean_start=True)
        else:
            client.connect(self.target.host, self.target.port, keepalive=self.keepalive_s)
        connack_deadline = time.monotonic() + _CONNACK_TIMEOUT_S
        reached = False
        try:
            while not self._stop.is_set() and self._session_failed is None:
                if self.connected and not reached:
                    reached = True
                    self._publish_status(client, "online")
                elif self.connected and self._status_due():
                    self._publish_status(client, "online")
                if self.connected:
                    self._fill_window(client)
                elif time.monotonic() > connack_deadline:
                    raise OSError(f"no CONNACK within {_CONNACK_TIMEOUT_S:.0f} s")
                if not self._pump(client, timeout=1.0):
                    break
            if self._session_failed:
                log.warning("gateway %s: ending MQTT session: %s", self.gateway_id, self._session_failed)
            elif self._stop.is_set() and self.connected:
                self._say_goodbye(client)
        finally:
            self._settle()
            sock = client.socket()
            if sock is not None:
                sock.close()
        return reached

    def _pump(self, client: mqtt.Client, timeout: float) -> bool:
        """Wait for network or wake-up events and let paho handle them; False when the connection is gone."""
        sock = client.socket()
        if sock is None or self._wake_r is None:
            return False
        pending = getattr(sock, "pending", None)  # TLS may hold decrypted bytes select() cannot see
        ok = True
        if pending is not None and pending():
            readable: list[Any] = [sock]
        else:
            want = [sock] if client.want_write() else []
            readable, writable, _ = select.select([sock, self._wake_r], want, [], timeout)
            if self._wake_r in readable:
                self._drain_wake()
            if sock in writable:
                ok = client.loop_write() == MQTTErrorCode.MQTT_ERR_SUCCESS
        if ok and sock in readable:
            ok = client.loop_read() == MQTTErrorCode.MQTT_ERR_SUCCESS
        if ok:
            ok = client.loop_misc() == MQTTErrorCode.MQTT_ERR_SUCCESS
        self._settle()  # even when the connection just dropped: those receipts did arrive
        return ok and client.socket() is not None

    def _drain_wake(self) -> None:
        assert self._wake_r is not None
        with contextlib.suppress(OSError):  # BlockingIOError: drained
            while self._wake_r.recv(4096):
                pass

    def _fill_window(self, client: mqtt.Client) -> None:
        room = self.inflight_max - len(self._inflight)
        # Refill in chunks: each refill is a query and a commit, so waiting for half a window keeps
        # the queue's fsyncs per message low without ever letting the window run dry.
        if room <= 0 or (self._inflight and room < max(1, self.inflight_max // 2)):
            return
        now = time.time()
        if not self._has_work.is_set() and now < self._next_due:
            return
        self._has_work.clear()  # before reading: a put() racing with us sets it again
        batch = self.queue.due(room, now=now, exclude=[m for m, _ in self._inflight.values()])
        if len(batch) == room:
            self._has_work.set()  # probably more behind these
        sent: list[tuple[str, float]] = []
        for message in batch:
            info = client.publish(message.topic, message.payload, qos=1)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._session_failed = f"publish failed: {mqtt.error_string(info.rc)}"
                break
            attempts = message.attempts + 1
            self._inflight[info.mid] = (message.message_id, attempts)
            sent.append((message.message_id, now + self._resend_delay(attempts)))
            self.published += 1
            self.resent += message.attempts > 0
        self.queue.mark_sent(sent, now=now)
        self._next_due = now + 1.0  # look again for messages whose time-out has passed

    def _resend_delay(self, attempts: int) -> float:
        return resend_delay(attempts, self.receipt_timeout_s, self.receipt_timeout_max_s)

    def _settle(self) -> None:
        """Apply what arrived in callbacks (receipts, PUBACK 0x10) to the queue, outside paho's loop."""
        if self._unheard:
            unheard, self._unheard = self._unheard, []
            now = time.time()
            for message_id, attempts in unheard:
                delay = min(2.0 ** min(attempts, 5), _NO_SUBSCRIBERS_RETRY_MAX_S)
                self.queue.reschedule([message_id], now + delay)
            self._next_due = min(self._next_due, now + 1.0)
        if self._confirmations:
            ids, self._confirmations = self._confirmations, []
            done = self.queue.confirm(ids)
            self.confirmed += done.removed
            if done.made_due:
                self.lost_in_transit += done.made_due
                log.warning(
                    "gateway %s: %d message(s) sent before a confirmed one have no receipt; sending again",
                    self.gateway_id,
                    done.made_due,
                )
            self._has_work.set()  # those are due now
            if self._reported_stuck and self.queue.unconfirmed().messages == 0:
                self._reported_stuck = False
                self.request_status()  # the all-clear, so the receipts_overdue alarm ends

    def _requeue_inflight(self) -> None:
        """The connection is gone: what had no PUBACK goes again on the next one."""
        if self._inflight and not self.queue.closed:
            self.queue.reschedule([m for m, _ in self._inflight.values()], 0.0)
        self._inflight.clear()

    def _unconfirmed(self) -> Unconfirmed | None:
        if self.queue.closed:
            return None
        summary = self.queue.unconfirmed()
        oldest = summary.oldest_first_sent_at
        # Clamped: a Pi has no battery-backed clock, and a message first sent before NTP set the time
        # (1970, or the last shutdown) must not make the status invalid, which would end every session.
        age = min(max(0.0, time.time() - oldest), _MAX_REPORTED_AGE_S) if oldest is not None else 0.0
        return Unconfirmed(messages=summary.messages, measurements=summary.measurements, oldest_age_s=age)

    def _status_due(self) -> bool:
        since = time.monotonic() - self._last_status
        if since >= self.status_interval_s:
            return True
        return self._status_wanted.is_set() and since >= self.status_min_gap_s

    def _publish_status(self, client: mqtt.Client, state: Literal["online", "offline"]) -> int:
        devices: tuple[DeviceStatus, ...] | None = None
        unconfirmed: Unconfirmed | None = None
        config_version: int | None = None
        unknown: tuple[UnknownDevice, ...] | None = None
        if state == "online":
            unconfirmed = self._unconfirmed()
            self._reported_stuck = unconfirmed is not None and unconfirmed.oldest_age_s >= self.stuck_after_s
            # Cleared before the snapshot: a change recorded meanwhile asks again.
            self._status_wanted.clear()
            self._last_status = time.monotonic()
            if self.device_facts is not None:
                try:
                    devices = self.device_facts() or None
                except Exception:  # the status itself matters more than the facts in it
                    log.exception("gateway %s: cannot collect device facts", self.gateway_id)
            if self.kit_facts is not None:
                config_version, unknown_now = self.kit_facts()
                unknown = unknown_now or None
        status = GatewayStatus(
            v=1,
            gateway_id=self.gateway_id,
            state=state,
            at=datetime.now(UTC),
            software=SOFTWARE,
            devices=devices,
            unconfirmed=unconfirmed,
            config_version=config_version,
            unknown_devices=unknown,
        )
        payload = encode(status)
        if len(payload) > MAX_STATUS_BYTES:  # cannot happen within the contract's limits; never send one
            log.error(
                "gateway %s: status of %d bytes; sent without device facts", self.gateway_id, len(payload)
            )
            payload = encode(status.model_copy(update={"devices": None}))
        info = client.publish(status_topic(self.gateway_id), payload, qos=STATUS_QOS, retain=True)
        self._status_mids.add(info.mid)
        self.statuses_published += 1
        return info.mid

    def _say_goodbye(self, client: mqtt.Client) -> None:
        """A clean DISCONNECT suppresses the last will, so publish "offline" ourselves first."""
        mid = self._publish_status(client, "offline")
        deadline = time.monotonic() + _GOODBYE_TIMEOUT_S
        while mid in self._status_mids and time.monotonic() < deadline:
            if not self._pump(client, timeout=0.1):
                return
        self.connected = False  # a requested disconnect, not worth a warning in on_disconnect
        client.disconnect()

    # --- paho callbacks (run inside loop_read on this thread) -----------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            self._session_failed = f"broker refused connection: {reason}"
            log.error(
                "gateway %s: %s (check HEMMA_MQTT_URL credentials)", self.gateway_id, self._session_failed
            )
            return
        self.connected = True
        self.connects += 1
        self._has_work.set()
        # Clean start: the subscription is renewed on every connection (read access to its own receipts
        # topic only, deploy/mosquitto/acl). Receipts published while it was away are not kept.
        client.subscribe(receipts_topic(self.gateway_id), qos=RECEIPTS_QOS)
        # Its own config topic only (ACL); retained, so the latest arrives with the subscription.
        client.subscribe(config_topic(self.gateway_id), qos=CONFIG_QOS)
        log.info("gateway %s: connected to %s", self.gateway_id, self.target.url())

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if self.connected:
            log.warning("gateway %s: disconnected from MQTT broker (%s)", self.gateway_id, reason)
        self.connected = False

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any
    ) -> None:
        if mid in self._status_mids:
            self._status_mids.discard(mid)
            return
        sent = self._inflight.pop(mid, None)
        if sent is None:
            return
        if reason.is_failure:
            # Keep the message; restart the session after a back-off rather than hammering the broker.
            self.broker_rejected += 1
            self._session_failed = f"broker refused a measurements message: {reason}"
            self._inflight[mid] = sent  # requeued at once when the session ends
            return
        self.acked += 1
        if reason.value == _NO_SUBSCRIBERS:
            # Accepted and given to nobody (ingest's session does not exist yet, e.g. the broker restarted
            # without it): certainly not delivered. Send it again soon rather than at the time-out.
            self.no_subscribers += 1
            self._unheard.append(sent)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == config_topic(self.gateway_id):
            self._on_config_message(bytes(message.payload))
        else:
            self._on_receipt(message)

    def _on_config_message(self, payload: bytes) -> None:
        """The kit's configuration: validated here, applied by the gateway on its loop."""
        if not payload:
            log.info(
                "gateway %s: the retained kit config was cleared; keeping the one applied", self.gateway_id
            )
            return
        try:
            config = decode_kit_config(config_topic(self.gateway_id), payload, gateway_id=self.gateway_id)
        except PayloadRejected as exc:
            self.config_refused += 1
            # The reason names the field and rule, never a value (addresses, passkeys stay out of logs).
            log.error(
                "gateway %s: refused a kit config that is not valid (%d bytes): %s; keeping the one applied",
                self.gateway_id,
                len(payload),
                exc.reason,
            )
            return
        self.configs_received += 1
        if self.on_config is not None:
            self.on_config(config, payload)

    def _on_receipt(self, message: mqtt.MQTTMessage) -> None:
        """A receipt from ingest: the messages it names are stored (or dead-lettered) for good."""
        try:
            receipt = decode_receipt(message.topic, bytes(message.payload), gateway_id=self.gateway_id)
        except PayloadRejected as exc:
            self.receipts_refused += 1
            log.warning("gateway %s: ignored a receipt that is not valid: %s", self.gateway_id, exc.reason)
            return
        for entry in receipt.messages:
            self._confirmations.append(str(entry.message_id))
            if entry.outcome != "stored":
                self.confirmed_dead_lettered += 1
                log.warning(
                    "gateway %s: ingest dead-lettered %s of message %s (%s)",
                    self.gateway_id,
                    "all" if entry.outcome == "dead_lettered" else f"{len(entry.rejected)} measurement(s)",
                    entry.message_id,
                    entry.reason or "see ingest's dead letters",
                )
