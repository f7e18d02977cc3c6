#!/usr/bin/env python3
"""Check a Hemma broker's authentication and ACL from the outside, as the real clients see it.

Every check uses MQTT 5, like the gateway and ingest, because under MQTT 5 Mosquitto answers
a publish its ACL refuses with PUBACK reason code 0x87 (Not authorized); under 3.1.1 it acks
the publish and silently drops it, and a test could not tell the difference.

    python verify_acl.py --host mqtt.example.se --port 8883 --tls \\
        --services-host mosquitto --services-port 1883 \\
        --gateway verify-gw-a --other-gateway verify-gw-b \\
        --ingest hemma-ingest --notifier hemma-notifier

Passwords come from HEMMA_VERIFY_GATEWAY_PASSWORD, HEMMA_VERIFY_INGEST_PASSWORD and
HEMMA_VERIFY_NOTIFIER_PASSWORD, or are prompted for. The other gateway needs no password:
the script only tries to publish to its topics.

Against a live system, use a dedicated test kit account (created like any kit, never enrolled)
for --gateway, and understand what the checks leave behind:

* the allowed publish to the test kit's measurements topic reaches the running ingest, which
  dead-letters it (the payload is `{"verify_acl": "<nonce>"}`, not a MeasurementBatch): one
  dead_letters row per run, gateway_id = the test kit;
* the allowed alert publish goes to hemma/v1/alerts/<--ward> (default "verify-acl"), so any
  alert consumer receives one non-contract message there;
* the last-will check publishes a non-retained "offline" status for the test kit, which ingest
  ignores (no gateways row for it).

Client ids are random (`verify-acl-<role>-<hex>`) with clean start, so the script never takes
over the real ingest session (client id hemma-ingest) or a real gateway's connection.

Needs only paho-mqtt >= 2 (any Hemma virtualenv has it). Exit status 0 when every check passes.
"""

from __future__ import annotations

import argparse
import getpass
import json
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
from paho.mqtt.reasoncodes import ReasonCode

ROOT = "hemma/v1"
NOT_AUTHORIZED = 0x87


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls: bool
    cafile: str | None


@dataclass
class Result:
    ok: bool
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
    client: mqtt.Client = field(init=False)
    connack: ReasonCode | None = None
    connack_properties: object = None
    received: list[tuple[str, bytes]] = field(default_factory=list)
    _connected: threading.Event = field(default_factory=threading.Event)
    _acks: dict[int, ReasonCode] = field(default_factory=dict)
    _subacks: dict[int, list[ReasonCode]] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"verify-acl-{self.role}-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=False,
        )
        if self.username is not None:
            self.client.username_pw_set(self.username, self.password)
        if self.endpoint.tls:
            self.client.tls_set(ca_certs=self.endpoint.cafile, cert_reqs=ssl.CERT_REQUIRED)
        if self.will is not None:
            self.client.will_set(self.will[0], self.will[1], qos=1, retain=False)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # paho callbacks (network thread)
    def _on_connect(self, client, userdata, flags, reason, properties) -> None:  # type: ignore[no-untyped-def]
        with self._changed:
            self.connack, self.connack_properties = reason, properties
            self._changed.notify_all()
        if not reason.is_failure:
            self._connected.set()

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

    # blocking helpers (main thread)
    def connect(self) -> str:
        """'accepted', or why not: a CONNACK reason code, a TLS/socket error or a timeout."""
        try:
            self.client.connect(self.endpoint.host, self.endpoint.port, keepalive=30, clean_start=True)
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

    def drop(self) -> None:
        """Lose the connection without DISCONNECT (power cut, broken router): the broker sends the will."""
        sock = self.client.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.client.loop_stop()

    def close(self) -> None:
        if self._connected.is_set():
            self.client.disconnect()
        self.client.loop_stop()


def _describe(code: ReasonCode | None) -> str:
    return "no answer (timeout)" if code is None else f"{code} (0x{code.value:02X})"


def _granted(code: ReasonCode | None) -> bool:
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
    found = [f"{name}={getattr(props, name)}" for name in wanted if props is not None and hasattr(props, name)]
    return ", ".join(found) or "none"


def run(args: argparse.Namespace) -> list[Result]:
    gw_ep = Endpoint(args.host, args.port, args.tls, args.cafile)
    svc_ep = Endpoint(args.services_host or args.host, args.services_port or args.port,
                      args.services_tls if args.services_port else args.tls, args.cafile)
    split = (svc_ep.host, svc_ep.port) != (gw_ep.host, gw_ep.port)
    gw_pw = _password("HEMMA_VERIFY_GATEWAY_PASSWORD", args.gateway)
    ingest_pw = _password("HEMMA_VERIFY_INGEST_PASSWORD", args.ingest)
    notifier_pw = _password("HEMMA_VERIFY_NOTIFIER_PASSWORD", args.notifier) if args.notifier else None

    gw, other, ward = args.gateway, args.other_gateway, args.ward
    nonce = uuid.uuid4().hex[:12]
    payload = json.dumps({"verify_acl": nonce}).encode()
    results: list[Result] = []
    opened: list[Session] = []

    def check(ok: bool, what: str, got: str) -> bool:
        results.append(Result(ok, what, got))
        return ok

    def session(role: str, ep: Endpoint, user: str | None, pw: str | None,
                will: tuple[str, bytes] | None = None) -> Session:
        s = Session(role, ep, user, pw, args.timeout, will)
        opened.append(s)
        return s

    try:
        # --- authentication ---------------------------------------------------------------------
        s = session("anon", gw_ep, None, None)
        outcome = s.connect()
        check(outcome != "accepted", "anonymous client refused on the gateway listener", outcome)
        s.close()

        s = session("badpw", gw_ep, gw, gw_pw + "-wrong")
        outcome = s.connect()
        check(outcome != "accepted", f"{gw} with a wrong password refused", outcome)
        s.close()

        if split:
            s = session("svc-on-gw", gw_ep, args.ingest, ingest_pw)
            outcome = s.connect()
            check(outcome != "accepted",
                  f"service account {args.ingest} refused on the gateway listener (separate password files)",
                  outcome)
            s.close()

        s = session("foreign-will", gw_ep, gw, gw_pw, will=(f"{ROOT}/gw/{other}/status", b""))
        outcome = s.connect()
        check(outcome != "accepted", f"{gw} refused when its last will targets {other}'s status topic", outcome)
        s.close()

        ingest = session("ingest", svc_ep, args.ingest, ingest_pw)
        outcome = ingest.connect()
        if not check(outcome == "accepted", f"{args.ingest} connects to the service listener {svc_ep.port}",
                     outcome):
            return results

        will_payload = json.dumps({"v": 1, "gateway_id": gw, "state": "offline", "verify_acl": nonce}).encode()
        gateway = session("gateway", gw_ep, gw, gw_pw, will=(f"{ROOT}/gw/{gw}/status", will_payload))
        outcome = gateway.connect()
        if not check(outcome == "accepted", f"{gw} connects to the gateway listener {gw_ep.port} "
                     "with a last will on its own status topic", outcome):
            return results
        results.append(Result(True, "broker CONNACK properties (information)", _connack_summary(gateway)))

        # --- ingest subscribes --------------------------------------------------------------------
        for topic in (f"{ROOT}/gw/+/measurements", f"{ROOT}/gw/+/status"):
            code = ingest.subscribe(topic)
            check(_granted(code), f"{args.ingest} may subscribe to {topic}", _describe(code))

        # --- what a gateway may and may not do ----------------------------------------------------
        topic = f"{ROOT}/gw/{gw}/measurements"
        code = gateway.publish(topic, payload)
        check(_granted(code), f"{gw} may publish to {topic}", _describe(code))
        check(ingest.got(topic, payload), f"{args.ingest} receives that message", "received"
              if ingest.got(topic, payload, wait=False) else "not received")

        topic = f"{ROOT}/gw/{gw}/status"
        code = gateway.publish(topic, b"")  # empty and not retained: ingest ignores it
        check(_granted(code), f"{gw} may publish to {topic}", _describe(code))

        for topic in (f"{ROOT}/gw/{other}/measurements", f"{ROOT}/gw/{other}/status", f"{ROOT}/alerts/{ward}"):
            code = gateway.publish(topic, payload)
            check(_denied(code), f"{gw} may NOT publish to {topic} (PUBACK 0x87)", _describe(code))
        leaked = ingest.got(f"{ROOT}/gw/{other}/measurements", payload, wait=False)
        check(not leaked, f"{args.ingest} did not receive the refused publish", "received" if leaked else "nothing")

        for topic in (f"{ROOT}/gw/{gw}/measurements", f"{ROOT}/gw/+/measurements", f"{ROOT}/alerts/#"):
            code = gateway.subscribe(topic)
            check(code is not None and code.is_failure, f"{gw} may NOT subscribe to {topic}", _describe(code))

        # --- notifier -----------------------------------------------------------------------------
        notifier = None
        if args.notifier:
            notifier = session("notifier", svc_ep, args.notifier, notifier_pw)
            outcome = notifier.connect()
            if check(outcome == "accepted", f"{args.notifier} connects to the service listener", outcome):
                code = notifier.subscribe(f"{ROOT}/alerts/#")
                check(_granted(code), f"{args.notifier} may subscribe to {ROOT}/alerts/#", _describe(code))
                code = notifier.subscribe(f"{ROOT}/gw/+/measurements")
                check(code is not None and code.is_failure,
                      f"{args.notifier} may NOT subscribe to {ROOT}/gw/+/measurements", _describe(code))
                code = notifier.publish(f"{ROOT}/alerts/{ward}", payload)
                check(_denied(code), f"{args.notifier} may NOT publish to {ROOT}/alerts/{ward}", _describe(code))
            else:
                notifier = None

        # --- what ingest may and may not publish --------------------------------------------------
        topic = f"{ROOT}/alerts/{ward}"
        alert_payload = json.dumps({"verify_acl": nonce, "from": "ingest"}).encode()
        code = ingest.publish(topic, alert_payload)
        check(_granted(code), f"{args.ingest} may publish to {topic}", _describe(code))
        if notifier is not None:
            check(notifier.got(topic, alert_payload), f"{args.notifier} receives that alert message",
                  "received" if notifier.got(topic, alert_payload, wait=False) else "not received")
        for topic in (f"{ROOT}/gw/{gw}/measurements", f"{ROOT}/gw/{args.ingest}/measurements"):
            code = ingest.publish(topic, payload)
            check(_denied(code), f"{args.ingest} may NOT publish to {topic}", _describe(code))

        # --- last will ----------------------------------------------------------------------------
        gateway.drop()
        topic = f"{ROOT}/gw/{gw}/status"
        check(ingest.got(topic, will_payload),
              f"connection of {gw} lost: {args.ingest} receives its last will on {topic}",
              "received" if ingest.got(topic, will_payload, wait=False) else "not received")
        return results
    finally:
        for s in opened:
            try:
                s.close()
            except Exception:  # noqa: BLE001 - best effort teardown of a test client
                pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", required=True, help="broker host of the gateway listener")
    parser.add_argument("--port", type=int, required=True, help="gateway listener port (8883 in production)")
    parser.add_argument("--tls", action="store_true", help="the gateway listener speaks TLS")
    parser.add_argument("--cafile", help="CA bundle to verify the broker (default: the system store, as gateways)")
    parser.add_argument("--services-host", help="host of the service listener (default: --host)")
    parser.add_argument("--services-port", type=int, help="service listener port (1883); default: --port")
    parser.add_argument("--services-tls", action="store_true", help="the service listener speaks TLS")
    parser.add_argument("--gateway", required=True, help="a kit account (username = gateway id) to test with")
    parser.add_argument("--other-gateway", required=True, help="another gateway id (no password needed)")
    parser.add_argument("--ingest", default="hemma-ingest", help="ingest's broker account")
    parser.add_argument("--notifier", help="the notifier's broker account (optional)")
    parser.add_argument("--ward", default="verify-acl", help="ward id used for the alert topic check")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each broker answer")
    args = parser.parse_args(argv)
    if args.gateway == args.other_gateway:
        parser.error("--gateway and --other-gateway must differ")

    results = run(args)
    width = max(len(r.what) for r in results)
    for r in results:
        print(f"{'PASS' if r.ok else 'FAIL'}  {r.what:<{width}}  -> {r.got}")
    failed = sum(not r.ok for r in results)
    print(f"\n{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
