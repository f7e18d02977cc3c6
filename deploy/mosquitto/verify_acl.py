#!/usr/bin/env python3
"""Check a Hemma broker's authentication, ACL, client-id binding and session queueing from outside.

Every client here uses MQTT 5, like the gateway and ingest: under MQTT 5 Mosquitto answers a
publish its ACL refuses with PUBACK reason code 0x87 (Not authorized), under 3.1.1 it acks
the publish and drops it silently, and a test could not tell the difference.

    python verify_acl.py --host mqtt.region.example --port 8883 --tls \\
        --services-host mosquitto --services-port 1883 \\
        --gateway verify-kit-a --other-gateway verify-kit-b \\
        --ingest hemma-verify --notifier hemma-notifier --monitor hemma-monitor

Passwords come from HEMMA_VERIFY_GATEWAY_PASSWORD, HEMMA_VERIFY_OTHER_GATEWAY_PASSWORD,
HEMMA_VERIFY_INGEST_PASSWORD, HEMMA_VERIFY_NOTIFIER_PASSWORD and HEMMA_VERIFY_MONITOR_PASSWORD,
or are prompted for.

--ingest names the account that plays ingest in the checks. Against a live broker that is the
verification account `hemma-verify` (the default), which deploy/mosquitto/acl gives exactly
ingest's rights, never `hemma-ingest` itself: the broker binds client ids to usernames
(`use_username_as_clientid`), so any connection with ingest's username IS the running ingest's
client id and would disconnect it, and a clean start would discard its session and every
measurement queued in it. The script therefore refuses `--ingest hemma-ingest` unless
--throwaway-broker says the broker is a throw-away copy (selftest.sh).

What is checked:

* anonymous clients and wrong passwords are refused;
* a gateway may publish to its own measurements, status and events topics, and to nothing else
  (PUBACK 0x87 for another gateway's topics, for alerts and for any receipts or config topic, its
  own included); it receives its own receipts and configuration and nothing else, whatever it
  subscribes to
  (Mosquitto's acl_file grants every SUBACK and enforces read access per message at delivery,
  so the checks are on delivery);
* ingest (the --ingest account) receives the gateways' measurements, statuses and events, may publish
  alerts, receipts and configurations, and may not publish measurements;
* the notifier (optional) receives alerts and nothing else, and publishes nothing;
* the monitoring account (optional) reads the broker's $SYS statistics and no Hemma topic;
* a gateway's own last will is delivered when its connection drops; one aimed at another
  gateway's status topic is not;
* client ids are bound to usernames: a gateway's credentials with ingest's client id do not
  disconnect ingest, with another gateway's id do not disconnect that gateway or fire its last
  will, and a clean start with ingest's id while ingest is away does not discard ingest's
  session (review finding, issue 8; the attack is eclipse-mosquitto issues #3551 and #3553);
* a persistent MQTT 5 session of ingest's account receives the messages published while it was
  disconnected: the broker property ingest's "nothing lost while ingest restarts" depends on.
  Mosquitto 2.0.12 to 2.0.22 fail this with `per_listener_settings true` (eclipse-mosquitto
  issue #2618); deploy/mosquitto/mosquitto.conf does not set it.

Against a live system, use two dedicated test kit accounts for --gateway and --other-gateway
(created like any kit, never enrolled, no gateway running with their ids) and the
hemma-verify account, and know what a run does and leaves behind:

* it never connects with ingest's username, so the running ingest keeps its connection and
  session; the takeover checks aim at hemma-verify's client id and the test kits' instead
  (with the binding, which id the attacker names makes no difference);
* four messages on the test kit's measurements topic (payload `{"verify_acl": "<nonce>"}`,
  not a MeasurementBatch) reach the running ingest, which dead-letters them: four
  dead_letters rows per run with gateway_id = the test kit; likewise one message on its events
  topic (not a KitEventBatch: no contact request is made), one more dead letter;
* one non-contract message on hemma/v1/alerts/<--ward> (default "verify-acl") reaches any
  alert consumer, and one on each test kit's receipts and config topics (not retained), which
  nobody reads;
* the last-will check publishes a non-retained "offline" status for the test kit (and, on a
  broker without the binding, the other test kit's will too); ingest ignores statuses of
  gateways it has no row for;
* hemma-verify's persistent session subscribes only to the test kits' topics and is deleted at
  the end (it expires after 5 minutes if the run is interrupted).

Needs only paho-mqtt >= 2 (any Hemma virtualenv has it). Exit status 0 when every check passes.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import logging
import os
import socket
import ssl
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

ROOT = "hemma/v1"
NOT_AUTHORIZED = 0x87
SETTLE_S = 0.5  # after a positive delivery, how long to wait before asserting that others got nothing
SESSION_EXPIRY_S = 300  # the test session's expiry: gone 5 minutes after an interrupted run
LIVE_INGEST = "hemma-ingest"  # the running ingest's account; only on a throw-away broker


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls: bool
    cafile: str | None


@dataclass
class Result:
    ok: bool | None  # None: information, not a check
    what: str
    got: str


@dataclass
class Session:
    """One MQTT 5 client with its network loop on a thread, and blocking helpers for the checks."""

    role: str
    endpoint: Endpoint
    username: str | None
    password: str | None
    timeout: float
    will: tuple[str, bytes] | None = None
    client_id: str = ""
    session_expiry_s: int = 0
    client: mqtt.Client = field(init=False)
    connack: ReasonCode | None = None
    connack_properties: object = None
    session_present: bool | None = None
    received: list[tuple[str, bytes]] = field(default_factory=list)
    disconnects: list[str] = field(default_factory=list)
    _acks: dict[int, ReasonCode] = field(default_factory=dict)
    _subacks: dict[int, list[ReasonCode]] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self.client_id = self.client_id or f"verify-acl-{self.role}-{uuid.uuid4().hex[:8]}"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=False,
        )
        if self.username is not None:
            self.client.username_pw_set(self.username, self.password)
        if self.endpoint.tls:
            self.client.tls_set(ca_certs=self.endpoint.cafile, cert_reqs=ssl.CERT_REQUIRED)
        if self.will is not None:
            self.client.will_set(self.will[0], self.will[1], qos=1, retain=False)
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            self.client.enable_logger(logging.getLogger(f"verify_acl.{self.role}"))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # --- paho callbacks (network thread) ---------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:  # type: ignore[no-untyped-def]
        with self._changed:
            self.connack, self.connack_properties = reason, properties
            self.session_present = getattr(flags, "session_present", None)
            self._changed.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:  # type: ignore[no-untyped-def]
        with self._changed:
            self.disconnects.append(str(reason))
            self._changed.notify_all()

    def _on_publish(self, client, userdata, mid, reason, properties) -> None:  # type: ignore[no-untyped-def]
        with self._changed:
            self._acks[mid] = reason
            self._changed.notify_all()

    def _on_subscribe(self, client, userdata, mid, reasons, properties) -> None:  # type: ignore[no-untyped-def]
        with self._changed:
            self._subacks[mid] = list(reasons)
            self._changed.notify_all()

    def _on_message(self, client, userdata, message) -> None:  # type: ignore[no-untyped-def]
        with self._changed:
            self.received.append((message.topic, bytes(message.payload)))
            self._changed.notify_all()

    def wait(self, predicate) -> bool:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + self.timeout
        with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    # --- blocking helpers (main thread) ----------------------------------------------------------

    def connect(self, *, clean_start: bool = True) -> str:
        """'accepted', or why not: a CONNACK reason code, a TLS/socket error or a timeout."""
        self.connack = None
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s
        try:
            self.client.connect(
                self.endpoint.host,
                self.endpoint.port,
                keepalive=30,
                clean_start=clean_start,
                properties=props,
            )
        except (OSError, ssl.SSLError) as exc:
            return f"{type(exc).__name__}: {exc}"
        self.client.loop_start()
        if not self.wait(lambda: self.connack is not None):
            return "no CONNACK (timeout)"
        assert self.connack is not None
        if self.connack.is_failure:
            return f"refused: {self.connack} (0x{self.connack.value:02X})"
        return "accepted"

    def publish(self, topic: str, payload: bytes) -> ReasonCode | None:
        info = self.client.publish(topic, payload, qos=1)
        if not self.wait(lambda: info.mid in self._acks):
            return None
        return self._acks[info.mid]

    def subscribe(self, topic: str) -> ReasonCode | None:
        result, mid = self.client.subscribe(topic, qos=1)
        if result != mqtt.MQTT_ERR_SUCCESS or not self.wait(lambda: mid in self._subacks):
            return None
        return self._subacks[mid][0]

    def got(self, topic: str, payload: bytes, *, wait: bool = True) -> bool:
        def seen() -> bool:
            return (topic, payload) in self.received

        return self.wait(seen) if wait else seen()

    def got_all(self, expected: list[tuple[str, bytes]]) -> bool:
        return self.wait(lambda: all(item in self.received for item in expected))

    def still_connected(self) -> bool:
        """Connected, and never disconnected by the broker since connect()."""
        return not self.disconnects and self.client.is_connected()

    def drop(self) -> None:
        """Lose the connection without DISCONNECT (power cut, broken router): the broker sends the will."""
        sock = self.client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.client.loop_stop()

    def close(self, *, end_session: bool = False) -> None:
        """DISCONNECT; with end_session, also tell the broker to discard the session (expiry 0)."""
        if self.client.is_connected():
            props = None
            if end_session:
                props = Properties(PacketTypes.DISCONNECT)
                props.SessionExpiryInterval = 0
            self.client.disconnect(properties=props)
        self.client.loop_stop()


def _describe(code: ReasonCode | None) -> str:
    return "no answer (timeout)" if code is None else f"{code} (0x{code.value:02X})"


def _granted(code: ReasonCode | None) -> bool:
    """PUBACK/SUBACK below 0x80; 0x10 'No matching subscribers' is a success too."""
    return code is not None and not code.is_failure


def _denied(code: ReasonCode | None) -> bool:
    return code is not None and code.value == NOT_AUTHORIZED


def _password(env: str, username: str) -> str:
    value = os.environ.get(env)
    if value:
        return value
    if not sys.stdin.isatty():
        raise SystemExit(f"set {env} (no terminal to prompt for the password of {username})")
    return getpass.getpass(f"MQTT password for {username}: ")


def _connack_summary(session: Session) -> str:
    props = session.connack_properties
    wanted = ("ReceiveMaximum", "MaximumPacketSize", "MaximumQoS", "RetainAvailable", "TopicAliasMaximum")
    if props is None:
        return "none"
    found = [f"{name}={getattr(props, name)}" for name in wanted if hasattr(props, name)]
    return ", ".join(found) or "none"


def _yes(flag: bool, yes: str, no: str) -> str:
    return yes if flag else no


class Checks:
    """The checks in order, sharing the accounts, the open sessions and the results."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.gw_ep = Endpoint(args.host, args.port, args.tls, args.cafile)
        separate = bool(args.services_host or args.services_port)
        self.svc_ep = Endpoint(
            args.services_host or args.host,
            args.services_port or args.port,
            args.services_tls if separate else args.tls,
            args.cafile,
        )
        self.gw, self.other, self.ingest_user = args.gateway, args.other_gateway, args.ingest
        self.gw_pw = _password("HEMMA_VERIFY_GATEWAY_PASSWORD", args.gateway)
        self.other_pw = _password("HEMMA_VERIFY_OTHER_GATEWAY_PASSWORD", args.other_gateway)
        self.ingest_pw = _password("HEMMA_VERIFY_INGEST_PASSWORD", args.ingest)
        self.notifier_pw = (
            _password("HEMMA_VERIFY_NOTIFIER_PASSWORD", args.notifier) if args.notifier else None
        )
        self.monitor_pw = _password("HEMMA_VERIFY_MONITOR_PASSWORD", args.monitor) if args.monitor else None
        self.nonce = uuid.uuid4().hex[:12]
        self.results: list[Result] = []
        self.opened: list[Session] = []
        self.notifier: Session | None = None
        self.monitor: Session | None = None

    def body(self, label: str) -> bytes:
        return json.dumps({"verify_acl": self.nonce, "check": label}).encode()

    def topic(self, gateway: str, kind: str) -> str:
        return f"{ROOT}/gw/{gateway}/{kind}"

    def check(self, ok: bool, what: str, got: str) -> bool:
        self.results.append(Result(ok, what, got))
        return ok

    def info(self, what: str, got: str) -> None:
        self.results.append(Result(None, what, got))

    def session(self, role: str, ep: Endpoint, user: str | None, pw: str | None, **kw: object) -> Session:
        s = Session(role, ep, user, pw, self.args.timeout, **kw)  # type: ignore[arg-type]
        self.opened.append(s)
        return s

    def kit(self, gateway: str, role: str, **kw: object) -> Session:
        """A connection with a kit's credentials; its client id defaults to the gateway id, as a gateway's."""
        pw = self.gw_pw if gateway == self.gw else self.other_pw
        kw.setdefault("client_id", gateway)
        return self.session(role, self.gw_ep, gateway, pw, **kw)

    def ingest_session(self) -> Session:
        # Client id = username, as ingest's: without the binding the takeover checks below must
        # aim at the id this session really holds.
        return self.session(
            "ingest",
            self.svc_ep,
            self.ingest_user,
            self.ingest_pw,
            client_id=self.ingest_user,
            session_expiry_s=SESSION_EXPIRY_S,
        )

    def run(self) -> list[Result]:
        try:
            self.authentication()
            ingest, gateway, other = self.connections()
            if ingest is None or gateway is None or other is None:
                return self.results
            self.subscriptions(ingest, gateway, other)
            self.gateway_publishes(ingest, gateway)
            self.service_publishes(ingest)
            self.receipts(ingest, gateway, other)
            self.configs(ingest, gateway, other)
            self.leaks(ingest, gateway, other)
            self.last_wills(ingest, gateway)
            self.takeover(ingest, other)
            self.session_queue(ingest)
            other.close()  # DISCONNECT: its last will is discarded
            return self.results
        finally:
            for s in self.opened:
                with contextlib.suppress(Exception):  # best-effort teardown of a test client
                    s.close()

    # --- the phases, in order ------------------------------------------------------------------------

    def authentication(self) -> None:
        s = self.session("anon", self.gw_ep, None, None)
        outcome = s.connect()
        self.check(
            outcome != "accepted",
            f"anonymous client refused on the gateway listener {self.gw_ep.port}",
            outcome,
        )
        s.close()
        if self.svc_ep != self.gw_ep:
            s = self.session("anon-svc", self.svc_ep, None, None)
            outcome = s.connect()
            self.check(
                outcome != "accepted",
                f"anonymous client refused on the service listener {self.svc_ep.port}",
                outcome,
            )
            s.close()
        s = self.session("badpw", self.gw_ep, self.gw, self.gw_pw + "-wrong")
        outcome = s.connect()
        self.check(outcome != "accepted", f"{self.gw} with a wrong password refused", outcome)
        s.close()

    def connections(self) -> tuple[Session | None, Session | None, Session | None]:
        """ingest (a fresh persistent session), both kits with a last will, the notifier and the monitor."""
        ingest = self.ingest_session()
        outcome = ingest.connect()
        if not self.check(
            outcome == "accepted",
            f"{self.ingest_user} connects to the service listener {self.svc_ep.port}"
            f" (persistent session, expiry {SESSION_EXPIRY_S} s)",
            outcome,
        ):
            return None, None, None
        kits: list[Session | None] = []
        for gateway in (self.gw, self.other):
            will = json.dumps({"v": 1, "gateway_id": gateway, "state": "offline", "verify_acl": self.nonce})
            s = self.kit(gateway, gateway, will=(self.topic(gateway, "status"), will.encode()))
            outcome = s.connect()
            ok = self.check(
                outcome == "accepted",
                f"{gateway} connects to the gateway listener {self.gw_ep.port}, last will on its status",
                outcome,
            )
            kits.append(s if ok else None)
        if kits[0] is not None:
            self.info("broker CONNACK properties", _connack_summary(kits[0]))
        for name, pw, attr in (
            (self.args.notifier, self.notifier_pw, "notifier"),
            (self.args.monitor, self.monitor_pw, "monitor"),
        ):
            if name:
                s = self.session(attr, self.svc_ep, name, pw, client_id=name)
                outcome = s.connect()
                if self.check(outcome == "accepted", f"{name} connects to the service listener", outcome):
                    setattr(self, attr, s)
        return ingest, kits[0], kits[1]

    def subscriptions(self, ingest: Session, gateway: Session, other: Session) -> None:
        # Ingest's own filters are hemma/v1/gw/+/...; the test session subscribes to the test kits'
        # topics only, so that no patient's readings flow to it on a live broker. The ACL is
        # checked per message at delivery, so this tests the same read grant.
        for topic in (
            self.topic(self.gw, "measurements"),
            self.topic(self.gw, "status"),
            self.topic(self.other, "status"),
            self.topic(self.gw, "events"),
        ):
            code = ingest.subscribe(topic)
            self.check(_granted(code), f"{self.ingest_user} may subscribe to {topic}", _describe(code))
        for topic in (
            f"{ROOT}/gw/+/measurements",
            f"{ROOT}/gw/+/status",
            f"{ROOT}/gw/+/receipts",
            f"{ROOT}/gw/+/config",
            f"{ROOT}/alerts/#",
        ):
            self.info(
                f"{self.gw} subscribes to {topic} (SUBACK; delivery is checked below)",
                _describe(gateway.subscribe(topic)),
            )
        for topic in (f"{ROOT}/gw/+/receipts", f"{ROOT}/gw/+/config"):
            self.info(
                f"{self.other} subscribes to {topic} (SUBACK; delivery is checked below)",
                _describe(other.subscribe(topic)),
            )
        if self.notifier is not None:
            code = self.notifier.subscribe(f"{ROOT}/alerts/#")
            self.check(
                _granted(code), f"{self.args.notifier} may subscribe to {ROOT}/alerts/#", _describe(code)
            )
            for topic in (f"{ROOT}/gw/+/measurements", f"{ROOT}/gw/+/receipts"):
                self.info(
                    f"{self.args.notifier} subscribes to {topic} (SUBACK; checked below)",
                    _describe(self.notifier.subscribe(topic)),
                )
        if self.monitor is not None:
            monitor = self.monitor
            for topic in ("$SYS/broker/version", f"{ROOT}/#"):
                self.info(
                    f"{self.args.monitor} subscribes to {topic} (SUBACK; delivery is checked below)",
                    _describe(monitor.subscribe(topic)),
                )
            # $SYS/broker/version is retained: it arrives at once on subscription.
            got = monitor.wait(lambda: any(t == "$SYS/broker/version" for t, _ in monitor.received))
            version = next(
                (p.decode(errors="replace") for t, p in monitor.received if t == "$SYS/broker/version"), ""
            )
            self.check(got, f"{self.args.monitor} reads $SYS/broker/version", version or "nothing received")

    def gateway_publishes(self, ingest: Session, gateway: Session) -> None:
        gw, other = self.gw, self.other
        own = self.topic(gw, "measurements")
        code = gateway.publish(own, self.body("own-measurements"))
        self.check(_granted(code), f"{gw} may publish to {own}", _describe(code))
        got = ingest.got(own, self.body("own-measurements"))
        self.check(got, f"{self.ingest_user} receives that message", _yes(got, "received", "not received"))
        code = gateway.publish(self.topic(gw, "status"), b"")  # empty and not retained: ingest ignores it
        self.check(_granted(code), f"{gw} may publish to {self.topic(gw, 'status')}", _describe(code))
        events = self.topic(gw, "events")
        code = gateway.publish(events, self.body("own-events"))  # not a KitEventBatch: dead-lettered
        self.check(_granted(code), f"{gw} may publish to {events}", _describe(code))
        got = ingest.got(events, self.body("own-events"))
        self.check(got, f"{self.ingest_user} receives that message", _yes(got, "received", "not received"))
        for topic in (
            self.topic(other, "measurements"),
            self.topic(other, "status"),
            # A kit must not raise a contact request in another patient's name.
            self.topic(other, "events"),
            f"{ROOT}/alerts/{self.args.ward}",
            # A kit must not forge the receipt that tells it (or another kit) a batch is stored.
            self.topic(gw, "receipts"),
            self.topic(other, "receipts"),
            # Nor a configuration: it could point a kit at a neighbour's devices.
            self.topic(gw, "config"),
            self.topic(other, "config"),
        ):
            code = gateway.publish(topic, self.body("refused"))
            self.check(_denied(code), f"{gw} may NOT publish to {topic} (PUBACK 0x87)", _describe(code))
        self.check(
            gateway.still_connected(),
            f"{gw} is still connected after refused publishes",
            _yes(gateway.still_connected(), "connected", "disconnected by the broker"),
        )

    def service_publishes(self, ingest: Session) -> None:
        alerts = f"{ROOT}/alerts/{self.args.ward}"
        code = ingest.publish(alerts, self.body("alert"))
        self.check(_granted(code), f"{self.ingest_user} may publish to {alerts}", _describe(code))
        if self.notifier is not None:
            got = self.notifier.got(alerts, self.body("alert"))
            self.check(
                got,
                f"{self.args.notifier} receives that alert message",
                _yes(got, "received", "not received"),
            )
            code = self.notifier.publish(alerts, self.body("refused"))
            self.check(_denied(code), f"{self.args.notifier} may NOT publish to {alerts}", _describe(code))
        for topic in (self.topic(self.gw, "measurements"), self.topic(self.ingest_user, "measurements")):
            code = ingest.publish(topic, self.body("refused"))
            self.check(_denied(code), f"{self.ingest_user} may NOT publish to {topic}", _describe(code))

    def receipts(self, ingest: Session, gateway: Session, other: Session) -> None:
        for kit, name in ((gateway, self.gw), (other, self.other)):
            topic = self.topic(name, "receipts")
            code = ingest.publish(topic, self.body(f"receipt-{name}"))
            self.check(_granted(code), f"{self.ingest_user} may publish to {topic}", _describe(code))
            got = kit.got(topic, self.body(f"receipt-{name}"))
            self.check(got, f"{name} receives that receipt", _yes(got, "received", "not received"))

    def configs(self, ingest: Session, gateway: Session, other: Session) -> None:
        """Ingest writes each kit's configuration; each kit reads its own (not retained here, so a
        live broker keeps nothing of the check)."""
        for kit, name in ((gateway, self.gw), (other, self.other)):
            topic = self.topic(name, "config")
            code = ingest.publish(topic, self.body(f"config-{name}"))
            self.check(_granted(code), f"{self.ingest_user} may publish to {topic}", _describe(code))
            got = kit.got(topic, self.body(f"config-{name}"))
            self.check(got, f"{name} receives that configuration", _yes(got, "received", "not received"))

    def leaks(self, ingest: Session, gateway: Session, other: Session) -> None:
        """After the deliveries above: nobody received what their account may not read."""
        time.sleep(SETTLE_S)
        leaked = [t for t, p in ingest.received if p == self.body("refused")]
        self.check(
            not leaked,
            f"{self.ingest_user} received none of the refused publishes",
            ", ".join(leaked) or "none",
        )
        for kit, name in ((gateway, self.gw), (other, self.other)):
            own = {
                (self.topic(name, "receipts"), self.body(f"receipt-{name}")),
                (self.topic(name, "config"), self.body(f"config-{name}")),
            }
            leaked = [t for t, p in kit.received if (t, p) not in own]
            self.check(
                not leaked,
                f"{name} received nothing but its own receipt and configuration (it may read no other topic)",
                ", ".join(leaked) or "nothing else",
            )
        if self.notifier is not None:
            leaked = [t for t, _ in self.notifier.received if not t.startswith(f"{ROOT}/alerts/")]
            self.check(
                not leaked,
                f"{self.args.notifier} received nothing but alerts",
                ", ".join(leaked) or "nothing else",
            )
        if self.monitor is not None:
            leaked = [t for t, _ in self.monitor.received if not t.startswith("$SYS/")]
            self.check(
                not leaked,
                f"{self.args.monitor} received no Hemma topic",
                ", ".join(leaked) or "nothing else",
            )

    def last_wills(self, ingest: Session, gateway: Session) -> None:
        gw, other = self.gw, self.other
        status = self.topic(gw, "status")
        will_body = gateway.will[1] if gateway.will else b""
        gateway.drop()
        got = ingest.got(status, will_body)
        self.check(
            got,
            f"connection of {gw} lost: {self.ingest_user} receives its last will",
            _yes(got, "received", "not received"),
        )
        foreign_will = self.body("foreign-will")
        rogue = self.kit(gw, "rogue-will", will=(self.topic(other, "status"), foreign_will))
        outcome = rogue.connect()
        self.info(f"{gw} connects with a last will on {other}'s status topic", outcome)
        if outcome == "accepted":
            rogue.drop()
        time.sleep(SETTLE_S)
        leaked = ingest.got(self.topic(other, "status"), foreign_will, wait=False)
        self.check(
            not leaked,
            f"a last will of {gw} on {other}'s status topic is not delivered",
            _yes(leaked, "delivered", "not delivered"),
        )

    def takeover(self, ingest: Session, other: Session) -> None:
        """A kit's credentials with someone else's client id must not take that client's place.

        Without use_username_as_clientid Mosquitto disconnects whoever holds the id ("already
        connected, closing old connection"), publishes that client's last will, and a clean
        start discards its session (MQTT 5 section 3.1.4; eclipse-mosquitto issue #3551).
        """
        gw, other_id = self.gw, self.other
        other_will = other.will[1] if other.will else b""
        rogue = self.kit(gw, "rogue-other", client_id=other_id)
        outcome = rogue.connect()
        self.info(f"{gw}'s credentials connect with client id {other_id}", outcome)
        time.sleep(SETTLE_S)
        self.check(
            other.still_connected(),
            f"{other_id} stays connected",
            _yes(other.still_connected(), "connected", f"disconnected ({', '.join(other.disconnects)})"),
        )
        fired = ingest.got(self.topic(other_id, "status"), other_will, wait=False)
        self.check(
            not fired, f"{other_id}'s last will is not fired", _yes(fired, "delivered", "not delivered")
        )
        rogue.close()

        rogue = self.kit(gw, "rogue-ingest", client_id=self.ingest_user)
        outcome = rogue.connect()
        self.info(f"{gw}'s credentials connect with client id {self.ingest_user} (clean start)", outcome)
        time.sleep(SETTLE_S)
        self.check(
            ingest.still_connected(),
            f"{self.ingest_user} stays connected",
            _yes(ingest.still_connected(), "connected", f"disconnected ({', '.join(ingest.disconnects)})"),
        )
        rogue.close()

    def session_queue(self, ingest: Session) -> None:
        """Messages queued for ingest's session while it is away reach it, despite a takeover attempt."""
        gw = self.gw
        own = self.topic(gw, "measurements")
        ingest.close()  # DISCONNECT with the session kept (expiry SESSION_EXPIRY_S)
        sender = self.kit(gw, "sender")
        outcome = sender.connect()
        sent = [(own, self.body(f"queued-{i}")) for i in range(3)]
        codes = [sender.publish(topic, payload) for topic, payload in sent] if outcome == "accepted" else []
        self.check(
            len(codes) == 3 and all(_granted(c) for c in codes),
            f"{gw} publishes 3 messages while {self.ingest_user} is disconnected",
            ", ".join(_describe(c) for c in codes) or outcome,
        )
        sender.close()
        rogue = self.kit(gw, "rogue-session", client_id=self.ingest_user)
        outcome = rogue.connect(clean_start=True)  # session expiry 0: would end an unbound session
        self.info(
            f"meanwhile {gw}'s credentials connect with client id {self.ingest_user} (clean start)", outcome
        )
        rogue.close()
        again = self.ingest_session()
        outcome = again.connect(clean_start=False)
        if self.check(
            outcome == "accepted" and again.session_present is True,
            f"{self.ingest_user} reconnects (clean start off) and the broker still has its session",
            f"{outcome}, session present: {again.session_present}",
        ):
            ok = again.got_all(sent)
            n = sum(item in again.received for item in sent)
            self.check(ok, "it receives the 3 messages queued while it was away", f"{n} of 3 received")
        again.close(end_session=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--host", required=True, help="broker host of the gateway listener")
    parser.add_argument("--port", type=int, required=True, help="gateway listener port (8883 in production)")
    parser.add_argument("--tls", action="store_true", help="the gateway listener speaks TLS")
    parser.add_argument("--cafile", help="CA bundle to verify the broker (default: the system store)")
    parser.add_argument("--services-host", help="host of the service listener (default: --host)")
    parser.add_argument("--services-port", type=int, help="service listener port (1883; default: --port)")
    parser.add_argument(
        "--services-tls",
        action="store_true",
        help="the service listener speaks TLS (default: plain when --services-host or "
        "--services-port is given, else as --tls)",
    )
    parser.add_argument("--gateway", required=True, help="a test kit account (username = gateway id)")
    parser.add_argument("--other-gateway", required=True, help="a second test kit account")
    parser.add_argument(
        "--ingest",
        default="hemma-verify",
        help="the account that plays ingest: hemma-verify (ingest's rights in the ACL) on a live broker; "
        f"{LIVE_INGEST} only with --throwaway-broker",
    )
    parser.add_argument(
        "--throwaway-broker",
        action="store_true",
        help=f"the broker is a throw-away copy (selftest.sh): allows --ingest {LIVE_INGEST}",
    )
    parser.add_argument("--notifier", help="the notifier's broker account (optional)")
    parser.add_argument("--monitor", help="the monitoring account that reads $SYS (optional)")
    parser.add_argument("--ward", default="verify-acl", help="ward id for the alert topic check")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each broker answer")
    parser.add_argument("--debug", action="store_true", help="log every MQTT packet (paho's debug log)")
    args = parser.parse_args(argv)
    if args.gateway == args.other_gateway:
        parser.error("--gateway and --other-gateway must differ")
    if args.ingest == LIVE_INGEST and not args.throwaway_broker:
        parser.error(
            f"--ingest {LIVE_INGEST} would take over the running ingest's client id and could discard its "
            "session with every measurement queued in it; use --ingest hemma-verify (deploy/README.md), "
            "or --throwaway-broker on a broker started for the test"
        )
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, format="%(relativeCreated)7.0f ms %(name)s: %(message)s")

    results = Checks(args).run()
    width = max(len(r.what) for r in results)
    for r in results:
        mark = "info" if r.ok is None else ("PASS" if r.ok else "FAIL")
        print(f"{mark:<4}  {r.what:<{width}}  -> {r.got}")
    checks = [r for r in results if r.ok is not None]
    failed = sum(not r.ok for r in checks)
    print(f"\n{len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
