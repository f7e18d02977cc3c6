#!/usr/bin/env python3
"""Check a Hemma broker's authentication, ACL and session queueing from outside, as the clients see it.

Every client here uses MQTT 5, like the gateway and ingest: under MQTT 5 Mosquitto answers a
publish its ACL refuses with PUBACK reason code 0x87 (Not authorized), under 3.1.1 it acks
the publish and drops it silently, and a test could not tell the difference.

    python verify_acl.py --host mqtt.region.example --port 8883 --tls \\
        --services-host mosquitto --services-port 1883 \\
        --gateway verify-kit-a --other-gateway verify-kit-b \\
        --ingest hemma-ingest --notifier hemma-notifier

Passwords come from HEMMA_VERIFY_GATEWAY_PASSWORD, HEMMA_VERIFY_INGEST_PASSWORD,
HEMMA_VERIFY_NOTIFIER_PASSWORD and HEMMA_VERIFY_MONITOR_PASSWORD, or are prompted for.
--other-gateway needs no account or password: the script only tries to publish to its topics.

What is checked:

* anonymous clients and wrong passwords are refused;
* a gateway may publish to its own measurements and status topics, and to nothing else
  (PUBACK 0x87 for another gateway's topics and for alerts); it receives nothing, whatever
  it subscribes to (Mosquitto's acl_file grants every SUBACK and enforces read access per
  message at delivery, so the check is on delivery);
* a last will aimed at another gateway's status topic is not delivered; the gateway's own
  last will is delivered when its connection drops;
* ingest may subscribe to all gateways' measurements and status topics and receives them,
  may publish alerts, and may not publish measurements;
* the notifier (optional) receives alerts and nothing else, and publishes nothing;
* the monitoring account (optional) reads the broker's $SYS statistics and no Hemma topic;
* a persistent MQTT 5 session with ingest's credentials (a separate, random client id)
  receives the messages published while it was disconnected: the broker property ingest's
  "nothing lost while ingest restarts" depends on. Mosquitto 2.0.12 to 2.0.22 fail this with
  `per_listener_settings true` (eclipse-mosquitto issue #2618); deploy/mosquitto/mosquitto.conf
  does not set it.

Against a live system, use a dedicated test kit account for --gateway (created like any kit,
never enrolled), and know what a run leaves behind:

* four messages on the test kit's measurements topic (payload `{"verify_acl": "<nonce>"}`,
  not a MeasurementBatch) reach the running ingest, which dead-letters them: four
  dead_letters rows per run with gateway_id = the test kit;
* one non-contract message on hemma/v1/alerts/<--ward> (default "verify-acl") reaches any
  alert consumer;
* the last-will check publishes a non-retained "offline" status for the test kit; ingest
  ignores statuses of gateways it has no row for.

Client ids are random (`verify-acl-<role>-<hex>`), so the script never takes over the real
ingest session (client id hemma-ingest) or a real gateway's connection; the session check
deletes its own session at the end.

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
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # --- paho callbacks (network thread) ---------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:  # type: ignore[no-untyped-def]
        with self._changed:
            self.connack, self.connack_properties = reason, properties
            self.session_present = getattr(flags, "session_present", None)
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

    def _wait(self, predicate) -> bool:  # type: ignore[no-untyped-def]
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
        props = None
        if self.session_expiry_s:
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
        if not self._wait(lambda: self.connack is not None):
            return "no CONNACK (timeout)"
        assert self.connack is not None
        if self.connack.is_failure:
            return f"refused: {self.connack} (0x{self.connack.value:02X})"
        return "accepted"

    def publish(self, topic: str, payload: bytes) -> ReasonCode | None:
        info = self.client.publish(topic, payload, qos=1)
        if not self._wait(lambda: info.mid in self._acks):
            return None
        return self._acks[info.mid]

    def subscribe(self, topic: str) -> ReasonCode | None:
        result, mid = self.client.subscribe(topic, qos=1)
        if result != mqtt.MQTT_ERR_SUCCESS or not self._wait(lambda: mid in self._subacks):
            return None
        return self._subacks[mid][0]

    def got(self, topic: str, payload: bytes, *, wait: bool = True) -> bool:
        def seen() -> bool:
            return (topic, payload) in self.received

        return self._wait(seen) if wait else seen()

    def got_all(self, expected: list[tuple[str, bytes]]) -> bool:
        return self._wait(lambda: all(item in self.received for item in expected))

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


def run(args: argparse.Namespace) -> list[Result]:
    """Every check, in order; one linear script."""
    gw_ep = Endpoint(args.host, args.port, args.tls, args.cafile)
    separate = bool(args.services_host or args.services_port)
    svc_ep = Endpoint(
        args.services_host or args.host,
        args.services_port or args.port,
        args.services_tls if separate else args.tls,
        args.cafile,
    )
    gw_pw = _password("HEMMA_VERIFY_GATEWAY_PASSWORD", args.gateway)
    ingest_pw = _password("HEMMA_VERIFY_INGEST_PASSWORD", args.ingest)
    notifier_pw = _password("HEMMA_VERIFY_NOTIFIER_PASSWORD", args.notifier) if args.notifier else None
    monitor_pw = _password("HEMMA_VERIFY_MONITOR_PASSWORD", args.monitor) if args.monitor else None

    gw, other, ward, ingest_user = args.gateway, args.other_gateway, args.ward, args.ingest
    nonce = uuid.uuid4().hex[:12]

    def body(label: str) -> bytes:
        return json.dumps({"verify_acl": nonce, "check": label}).encode()

    results: list[Result] = []
    opened: list[Session] = []

    def check(ok: bool, what: str, got: str) -> bool:
        results.append(Result(ok, what, got))
        return ok

    def info(what: str, got: str) -> None:
        results.append(Result(None, what, got))

    def session(role: str, ep: Endpoint, user: str | None, pw: str | None, **kw: object) -> Session:
        s = Session(role, ep, user, pw, args.timeout, **kw)  # type: ignore[arg-type]
        opened.append(s)
        return s

    try:
        # --- authentication ---------------------------------------------------------------------
        s = session("anon", gw_ep, None, None)
        outcome = s.connect()
        check(
            outcome != "accepted", f"anonymous client refused on the gateway listener {gw_ep.port}", outcome
        )
        s.close()
        if svc_ep != gw_ep:
            s = session("anon-svc", svc_ep, None, None)
            outcome = s.connect()
            check(
                outcome != "accepted",
                f"anonymous client refused on the service listener {svc_ep.port}",
                outcome,
            )
            s.close()
        s = session("badpw", gw_ep, gw, gw_pw + "-wrong")
        outcome = s.connect()
        check(outcome != "accepted", f"{gw} with a wrong password refused", outcome)
        s.close()

        ingest = session("ingest", svc_ep, ingest_user, ingest_pw)
        outcome = ingest.connect()
        if not check(
            outcome == "accepted", f"{ingest_user} connects to the service listener {svc_ep.port}", outcome
        ):
            return results
        will_body = json.dumps({"v": 1, "gateway_id": gw, "state": "offline", "verify_acl": nonce}).encode()
        gateway = session("gateway", gw_ep, gw, gw_pw, will=(f"{ROOT}/gw/{gw}/status", will_body))
        outcome = gateway.connect()
        if not check(
            outcome == "accepted",
            f"{gw} connects to the gateway listener {gw_ep.port} with a last will on its own status topic",
            outcome,
        ):
            return results
        info("broker CONNACK properties", _connack_summary(gateway))
        notifier = None
        if args.notifier:
            notifier = session("notifier", svc_ep, args.notifier, notifier_pw)
            outcome = notifier.connect()
            if not check(outcome == "accepted", f"{args.notifier} connects to the service listener", outcome):
                notifier = None
        monitor = None
        if args.monitor:
            monitor = session("monitor", svc_ep, args.monitor, monitor_pw)
            outcome = monitor.connect()
            if not check(outcome == "accepted", f"{args.monitor} connects to the service listener", outcome):
                monitor = None

        # --- subscriptions ------------------------------------------------------------------------
        for topic in (f"{ROOT}/gw/+/measurements", f"{ROOT}/gw/+/status"):
            code = ingest.subscribe(topic)
            check(_granted(code), f"{ingest_user} may subscribe to {topic}", _describe(code))
        for topic in (f"{ROOT}/gw/+/measurements", f"{ROOT}/gw/+/status", f"{ROOT}/alerts/#"):
            info(
                f"{gw} subscribes to {topic} (SUBACK; delivery is checked below)",
                _describe(gateway.subscribe(topic)),
            )
        if notifier is not None:
            code = notifier.subscribe(f"{ROOT}/alerts/#")
            check(_granted(code), f"{args.notifier} may subscribe to {ROOT}/alerts/#", _describe(code))
            info(
                f"{args.notifier} subscribes to {ROOT}/gw/+/measurements (SUBACK; checked below)",
                _describe(notifier.subscribe(f"{ROOT}/gw/+/measurements")),
            )
        if monitor is not None:
            for topic in ("$SYS/broker/version", f"{ROOT}/#"):
                info(
                    f"{args.monitor} subscribes to {topic} (SUBACK; delivery is checked below)",
                    _describe(monitor.subscribe(topic)),
                )
            # $SYS/broker/version is retained: it arrives at once on subscription.
            got = monitor._wait(lambda: any(t == "$SYS/broker/version" for t, _ in monitor.received))
            version = next(
                (p.decode(errors="replace") for t, p in monitor.received if t == "$SYS/broker/version"), ""
            )
            check(got, f"{args.monitor} reads $SYS/broker/version", version or "nothing received")

        # --- the gateway publishes ----------------------------------------------------------------
        own = f"{ROOT}/gw/{gw}/measurements"
        code = gateway.publish(own, body("own-measurements"))
        check(_granted(code), f"{gw} may publish to {own}", _describe(code))
        check(
            ingest.got(own, body("own-measurements")),
            f"{ingest_user} receives that message",
            "received" if ingest.got(own, body("own-measurements"), wait=False) else "not received",
        )
        code = gateway.publish(f"{ROOT}/gw/{gw}/status", b"")  # empty and not retained: ingest ignores it
        check(_granted(code), f"{gw} may publish to {ROOT}/gw/{gw}/status", _describe(code))
        for topic in (
            f"{ROOT}/gw/{other}/measurements",
            f"{ROOT}/gw/{other}/status",
            f"{ROOT}/alerts/{ward}",
        ):
            code = gateway.publish(topic, body("refused"))
            check(_denied(code), f"{gw} may NOT publish to {topic} (PUBACK 0x87)", _describe(code))
        check(
            gateway.client.is_connected(),
            f"{gw} is still connected after refused publishes",
            "connected" if gateway.client.is_connected() else "disconnected by the broker",
        )

        # --- ingest and the notifier publish ------------------------------------------------------
        alerts = f"{ROOT}/alerts/{ward}"
        code = ingest.publish(alerts, body("alert"))
        check(_granted(code), f"{ingest_user} may publish to {alerts}", _describe(code))
        if notifier is not None:
            check(
                notifier.got(alerts, body("alert")),
                f"{args.notifier} receives that alert message",
                "received" if notifier.got(alerts, body("alert"), wait=False) else "not received",
            )
            code = notifier.publish(alerts, body("refused"))
            check(_denied(code), f"{args.notifier} may NOT publish to {alerts}", _describe(code))
        for topic in (own, f"{ROOT}/gw/{ingest_user}/measurements"):
            code = ingest.publish(topic, body("refused"))
            check(_denied(code), f"{ingest_user} may NOT publish to {topic}", _describe(code))

        # --- who received what they must not -----------------------------------------------------
        time.sleep(SETTLE_S)
        leaked = [t for t, p in ingest.received if p == body("refused")]
        check(
            not leaked, f"{ingest_user} received none of the refused publishes", ", ".join(leaked) or "none"
        )
        leaked = [t for t, _ in gateway.received]
        check(not leaked, f"{gw} received nothing (it may read no topic)", ", ".join(leaked) or "nothing")
        if notifier is not None:
            leaked = [t for t, _ in notifier.received if not t.startswith(f"{ROOT}/alerts/")]
            check(
                not leaked,
                f"{args.notifier} received nothing but alerts",
                ", ".join(leaked) or "nothing else",
            )
        if monitor is not None:
            leaked = [t for t, _ in monitor.received if not t.startswith("$SYS/")]
            check(not leaked, f"{args.monitor} received no Hemma topic", ", ".join(leaked) or "nothing else")

        # --- the persistent session ingest relies on ----------------------------------------------
        held = session("session", svc_ep, ingest_user, ingest_pw, session_expiry_s=300)
        outcome = held.connect(clean_start=False)
        if check(
            outcome == "accepted",
            f"a persistent MQTT 5 session (SessionExpiryInterval 300) for {ingest_user}",
            outcome,
        ):
            code = held.subscribe(own)
            check(_granted(code), f"that session subscribes to {own}", _describe(code))
            held.close()
            sent = [(own, body(f"queued-{i}")) for i in range(3)]
            codes = [gateway.publish(topic, payload) for topic, payload in sent]
            check(
                all(_granted(c) for c in codes),
                f"{gw} publishes 3 messages while the session is disconnected",
                ", ".join(_describe(c) for c in codes),
            )
            again = session(
                "session", svc_ep, ingest_user, ingest_pw, session_expiry_s=300, client_id=held.client_id
            )
            outcome = again.connect(clean_start=False)
            if check(
                outcome == "accepted" and again.session_present is True,
                "the session reconnects (clean start off) and the broker still has it",
                f"{outcome}, session present: {again.session_present}",
            ):
                ok = again.got_all(sent)
                n = sum(item in again.received for item in sent)
                check(ok, "it receives the 3 messages queued while it was away", f"{n} of 3 received")
            again.close(end_session=True)

        # --- last wills ------------------------------------------------------------------------------
        foreign_will = json.dumps({"verify_acl": nonce, "check": "foreign-will"}).encode()
        rogue = session("rogue-will", gw_ep, gw, gw_pw, will=(f"{ROOT}/gw/{other}/status", foreign_will))
        outcome = rogue.connect()
        info(f"{gw} connects with a last will on {other}'s status topic", outcome)
        if outcome == "accepted":
            rogue.drop()
        gateway.drop()
        status = f"{ROOT}/gw/{gw}/status"
        check(
            ingest.got(status, will_body),
            f"connection of {gw} lost: {ingest_user} receives its last will",
            "received" if ingest.got(status, will_body, wait=False) else "not received",
        )
        time.sleep(SETTLE_S)
        leaked = ingest.got(f"{ROOT}/gw/{other}/status", foreign_will, wait=False)
        check(
            not leaked,
            f"a last will of {gw} on {other}'s status topic is not delivered",
            "delivered" if leaked else "not delivered",
        )
        return results
    finally:
        for s in opened:
            with contextlib.suppress(Exception):  # best-effort teardown of a test client
                s.close()


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
    parser.add_argument("--gateway", required=True, help="a kit account (username = gateway id) to test with")
    parser.add_argument("--other-gateway", required=True, help="another gateway id (no password needed)")
    parser.add_argument("--ingest", default="hemma-ingest", help="ingest's broker account")
    parser.add_argument("--notifier", help="the notifier's broker account (optional)")
    parser.add_argument("--monitor", help="the monitoring account that reads $SYS (optional)")
    parser.add_argument("--ward", default="verify-acl", help="ward id for the alert topic check")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each broker answer")
    parser.add_argument("--debug", action="store_true", help="log every MQTT packet (paho's debug log)")
    args = parser.parse_args(argv)
    if args.gateway == args.other_gateway:
        parser.error("--gateway and --other-gateway must differ")
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, format="%(relativeCreated)7.0f ms %(name)s: %(message)s")

    results = run(args)
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
