"""Webhook and ntfy push channels, and the dispatcher's retries, against a real local HTTP receiver."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alerts.model import AlarmCondition, Priority
from devservices.services import free_port
from paging.notify import (
    DeliveryFailed,
    DeliveryResult,
    Dispatcher,
    NoRoute,
    Notification,
    PushChannel,
    Recipient,
    RetryPolicy,
    SignatureInvalid,
    WebhookChannel,
    alert_link,
    verify_signature,
)
from paging.notify.webhook import DELIVERY_HEADER, SIGNATURE_HEADER

SECRET = "test-webhook-secret-0123456789"
PATIENT_REF = "5f0c3c2e-2b7e-4d36-9a55-0e4f6f1c9a01"
T0 = datetime(2025, 3, 4, 13, 7, tzinfo=UTC)


class FakeClock:
    """Time that moves only when the dispatcher sleeps: tests never wait for a back-off."""

    def __init__(self, start: datetime = T0) -> None:
        self.current = start
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.current += timedelta(seconds=seconds)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


STALL = -1  # a scripted "status" that makes the receiver accept and then never answer


class Receiver:
    """An HTTP server on 127.0.0.1 (free port, own thread) that records POSTs and answers from a script."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: deque[int] = deque()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                status = receiver.script.popleft() if receiver.script else 200
                if status == STALL:
                    receiver.release.wait(10)
                    return
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def refused_url() -> str:
    """A local URL where nothing listens: connection refused."""
    return f"http://127.0.0.1:{free_port()}/hook"


def notification(
    recipient: Recipient, *, priority: Priority = Priority.HIGH, alert_id: int = 42, level: int = 1
) -> Notification:
    return Notification(
        alert_id=alert_id,
        ward_id="avd-7",
        patient_ref=PATIENT_REF,
        priority=priority,
        rule="news2",
        message="NEWS2 7: hög risk",
        link=alert_link("https://hemma.region.example", alert_id),
        raised_at=T0 - timedelta(minutes=6),
        escalated_at=T0,
        recipient=recipient,
        escalation_level=level,
    )


def dispatcher(*channels: object, clock: FakeClock, attempts: int = 3, threshold: int = 3) -> Dispatcher:
    return Dispatcher(
        channels,  # type: ignore[arg-type]
        clock=clock,
        policy=RetryPolicy(max_attempts=attempts, base_delay_s=2.0, max_delay_s=30.0),
        failure_threshold=threshold,
        rng=random.Random(7),
    )


# --- webhook ----------------------------------------------------------------------------------


def test_webhook_posts_signed_json_the_receiver_can_verify(receiver: Receiver) -> None:
    clock = FakeClock()
    channel = WebhookChannel(SECRET, clock=clock, timeout_s=2)
    n = notification(Recipient("Dr. Berg", webhook_url=receiver.url + "/hemma/hook?source=hemma"))

    result = channel.send(n)

    assert result == DeliveryResult(True, "webhook", 1, "HTTP 200 OK", False)
    [request] = receiver.requests
    assert request.path == "/hemma/hook?source=hemma"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.headers[DELIVERY_HEADER] == n.key
    verify_signature(SECRET, request.headers[SIGNATURE_HEADER], request.body, now=T0 + timedelta(seconds=2))
    assert request.headers[SIGNATURE_HEADER].startswith(f"t={int(T0.timestamp())},v1=")
    assert json.loads(request.body) == {
        "v": 1,
        "id": n.key,
        "event": "alert.escalated",
        "alert_id": 42,
        "ward_id": "avd-7",
        "patient_ref": PATIENT_REF,
        "priority": "high",
        "rule": "news2",
        "message": "NEWS2 7: hög risk",
        "escalation_level": 1,
        "link": "https://hemma.region.example/alerts/42",
        "raised_at": "2025-03-04T13:01:00+00:00",
        "escalated_at": "2025-03-04T13:07:00+00:00",
        "recipient": "Dr. Berg",
    }


def test_tampered_body_and_replayed_request_fail_verification(receiver: Receiver) -> None:
    channel = WebhookChannel(SECRET, clock=FakeClock(), timeout_s=2)
    channel.send(notification(Recipient("Dr. Berg", webhook_url=receiver.url)))
    [request] = receiver.requests
    header = request.headers[SIGNATURE_HEADER]

    tampered = request.body.replace(b'"priority":"high"', b'"priority":"low"')
    assert tampered != request.body
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_signature(SECRET, header, tampered, now=T0)
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_signature("another-secret", header, request.body, now=T0)
    # The same captured request, replayed once the tolerance has passed, is refused.
    verify_signature(SECRET, header, request.body, now=T0 + timedelta(seconds=300))
    with pytest.raises(SignatureInvalid, match="tolerance"):
        verify_signature(SECRET, header, request.body, now=T0 + timedelta(seconds=301))
    with pytest.raises(SignatureInvalid, match="tolerance"):
        verify_signature(SECRET, header, request.body, now=T0 - timedelta(minutes=10))


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("v1=abc", "lacks"),
        ("t=1741093620", "lacks"),
        ("t=soon,v1=abc", "malformed timestamp"),
        ("garbage", "malformed"),
    ],
)
def test_malformed_signature_headers_are_refused(header: str | None, reason: str) -> None:
    with pytest.raises(SignatureInvalid, match=reason):
        verify_signature(SECRET, header, b"{}", now=T0)


def test_any_v1_may_match_while_a_secret_is_rotated() -> None:
    from paging.notify.webhook import sign

    body = b'{"v":1}'
    t = int(T0.timestamp())
    old, new = sign("old-secret", body, t), sign("new-secret", body, t)
    both = f"{old},{new.split(',')[1]}"
    verify_signature("new-secret", both, body, now=T0)
    verify_signature("old-secret", both, body, now=T0)
    with pytest.raises(SignatureInvalid):
        verify_signature("third-secret", both, body, now=T0)


def test_500_then_200_is_retried_and_delivered_on_attempt_2(receiver: Receiver) -> None:
    receiver.script.extend([500, 200])
    clock = FakeClock()
    d = dispatcher(WebhookChannel(SECRET, clock=clock, timeout_s=2), clock=clock)

    outcome = d.dispatch(notification(Recipient("Dr. Berg", webhook_url=receiver.url)))

    assert outcome.ok and outcome.delivered == ["webhook"]
    assert [(a.attempt, a.ok, a.permanent, a.detail) for a in outcome.attempts] == [
        (1, False, False, "HTTP 500 Internal Server Error"),
        (2, True, False, "HTTP 200 OK"),
    ]
    assert len(clock.sleeps) == 1 and 1.0 <= clock.sleeps[0] < 2.0
    first, second = receiver.requests
    assert first.body == second.body
    assert first.headers[DELIVERY_HEADER] == second.headers[DELIVERY_HEADER]
    # The retry is signed afresh, at the time it is sent.
    assert first.headers[SIGNATURE_HEADER] != second.headers[SIGNATURE_HEADER]
    verify_signature(SECRET, second.headers[SIGNATURE_HEADER], second.body, now=clock.now(), tolerance_s=0.5)
    assert outcome.alarms == [] and d.consecutive_failures("webhook") == 0


@pytest.mark.parametrize("status", [400, 404, 410, 302])
def test_client_errors_and_redirects_are_permanent_and_not_retried(receiver: Receiver, status: int) -> None:
    receiver.script.append(status)
    clock = FakeClock()
    d = dispatcher(WebhookChannel(SECRET, clock=clock, timeout_s=2), clock=clock)

    outcome = d.dispatch(notification(Recipient("Dr. Berg", webhook_url=receiver.url)))

    assert not outcome.ok
    assert len(receiver.requests) == 1 and clock.sleeps == []
    [attempt] = outcome.attempts
    assert (attempt.attempt, attempt.ok, attempt.permanent) == (1, False, True)
    assert attempt.detail.startswith(f"HTTP {status}")
    assert outcome.failed["webhook"].permanent


@pytest.mark.parametrize("status", [408, 429, 503])
def test_timeout_and_rate_limit_answers_are_retried(receiver: Receiver, status: int) -> None:
    receiver.script.extend([status, 204])
    clock = FakeClock()
    d = dispatcher(WebhookChannel(SECRET, clock=clock, timeout_s=2), clock=clock)

    outcome = d.dispatch(notification(Recipient("Dr. Berg", webhook_url=receiver.url)))

    assert [(a.attempt, a.ok) for a in outcome.attempts] == [(1, False), (2, True)]
    assert len(receiver.requests) == 2


def test_connection_refused_is_retried_then_given_up_with_a_technical_alarm() -> None:
    clock = FakeClock()
    d = dispatcher(WebhookChannel(SECRET, clock=clock, timeout_s=2), clock=clock, attempts=3, threshold=3)

    outcome = d.dispatch(notification(Recipient("Dr. Berg", webhook_url=refused_url())))

    assert not outcome.ok
    assert [(a.attempt, a.ok, a.permanent, a.detail) for a in outcome.attempts] == [
        (n, False, False, "connection refused") for n in (1, 2, 3)
    ]
    # Exponential back-off with jitter: before retry n, base·2^(n-1) times a factor in [½, 1).
    assert len(clock.sleeps) == 2
    assert 1.0 <= clock.sleeps[0] < 2.0 and 2.0 <= clock.sleeps[1] < 4.0
    [alarm] = outcome.alarms
    assert alarm.rule == "notification_failing:webhook"
    assert alarm.priority is Priority.MEDIUM and alarm.condition is AlarmCondition.TECHNICAL
    assert (alarm.consecutive_failures, alarm.last_detail, alarm.alert_id, alarm.ward_id) == (
        3,
        "connection refused",
        42,
        "avd-7",
    )
    assert alarm.observed_at == clock.now()
    assert "webhook" in alarm.message and "3 misslyckade försök i rad" in alarm.message
    with pytest.raises(DeliveryFailed, match="no channel delivered") as raised:
        outcome.raise_if_undelivered()
    assert raised.value.permanent is False

    # Still failing: counted on, but the alarm is raised once, not once per notification.
    again = d.dispatch(notification(Recipient("Dr. Berg", webhook_url=refused_url()), alert_id=43))
    assert again.alarms == [] and d.consecutive_failures("webhook") == 6


def test_failures_count_across_notifications_and_a_success_clears_the_alarm(receiver: Receiver) -> None:
    receiver.script.extend([500, 500, 500, 200])
    clock = FakeClock()
    d = dispatcher(WebhookChannel(SECRET, clock=clock, timeout_s=2), clock=clock, attempts=1, threshold=3)
    berg = Recipient("Dr. Berg", webhook_url=receiver.url)

    first, second = (d.dispatch(notification(berg, alert_id=i)) for i in (1, 2))
    assert first.alarms == second.alarms == [] and d.consecutive_failures("webhook") == 2
    third = d.dispatch(notification(berg, alert_id=3))
    assert [a.consecutive_failures for a in third.alarms] == [3]
    fourth = d.dispatch(notification(berg, alert_id=4))
    assert fourth.ok and [r.rule for r in fourth.recoveries] == ["notification_failing:webhook"]
    assert d.consecutive_failures("webhook") == 0


def test_a_stalled_receiver_costs_at_most_the_timeout_per_attempt(receiver: Receiver) -> None:
    receiver.script.extend([STALL, STALL])
    clock = FakeClock()
    d = dispatcher(WebhookChannel(SECRET, clock=clock, timeout_s=0.3), clock=clock, attempts=2)

    started = time.monotonic()
    outcome = d.dispatch(notification(Recipient("Dr. Berg", webhook_url=receiver.url)))
    elapsed = time.monotonic() - started

    assert [(a.ok, a.permanent, a.detail) for a in outcome.attempts] == [
        (False, False, "no answer within 0.3 s")
    ] * 2
    assert 0.5 <= elapsed < 2.0


# --- ntfy push --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "ntfy_priority", "tag", "label"),
    [
        (Priority.HIGH, "5", "rotating_light", "Hög"),
        (Priority.MEDIUM, "4", "warning", "Medel"),
        (Priority.LOW, "3", "information_source", "Låg"),
    ],
    ids=["high", "medium", "low"],
)
def test_push_posts_to_the_topic_with_ntfy_headers(
    receiver: Receiver, priority: Priority, ntfy_priority: str, tag: str, label: str
) -> None:
    channel = PushChannel(receiver.url + "/ntfy/", token="tk_secret-token", timeout_s=2)
    n = notification(Recipient("Dr. Berg", ntfy_topic="hemma-jour-berg"), priority=priority)

    assert channel.send(n) == DeliveryResult(True, "push", 1, "HTTP 200 OK", False)

    [request] = receiver.requests
    assert request.path == "/ntfy/hemma-jour-berg"
    assert str(make_header(decode_header(request.headers["Title"]))) == f"Hemma: {label} prioritet – avd-7"
    assert request.headers["Priority"] == ntfy_priority
    assert request.headers["Tags"] == f"{tag},hemma"
    assert request.headers["Click"] == "https://hemma.region.example/alerts/42"
    assert request.headers["Authorization"] == "Bearer tk_secret-token"
    assert request.body.decode() == "NEWS2 7: hög risk\nRegel: news2 · eskaleringsnivå 1"
    # The phone's lock screen is outside the hospital: not even the opaque patient reference goes there.
    assert PATIENT_REF.encode() not in request.body
    assert all(PATIENT_REF not in value for value in request.headers.values())


def test_push_without_token_sends_no_authorization(receiver: Receiver) -> None:
    PushChannel(receiver.url, timeout_s=2).send(notification(Recipient("Dr. Berg", ntfy_topic="jour")))
    [request] = receiver.requests
    assert request.path == "/jour" and "Authorization" not in request.headers


def test_invalid_topic_is_a_permanent_failure_and_nothing_is_sent(receiver: Receiver) -> None:
    result = PushChannel(receiver.url, timeout_s=2).send(
        notification(Recipient("Dr. Berg", ntfy_topic="../admin"))
    )
    assert (result.ok, result.permanent) == (False, True)
    assert receiver.requests == []


# --- dispatching over several channels --------------------------------------------------------


def test_a_dead_channel_does_not_delay_the_others(receiver: Receiver) -> None:
    clock = FakeClock()
    d = dispatcher(
        WebhookChannel(SECRET, clock=clock, timeout_s=2), PushChannel(receiver.url, timeout_s=2), clock=clock
    )
    berg = Recipient("Dr. Berg", ntfy_topic="jour-berg", webhook_url=refused_url())

    outcome = d.dispatch(notification(berg))

    assert outcome.delivered == ["push"] and set(outcome.failed) == {"webhook"}
    assert [(a.channel, a.attempt, a.ok) for a in outcome.attempts] == [
        ("webhook", 1, False),
        ("push", 1, True),
        ("webhook", 2, False),
        ("webhook", 3, False),
    ]
    # The push went out before the first back-off.
    assert outcome.attempts[1].finished_at == T0
    outcome.raise_if_undelivered()  # one channel reached the physician: that is enough


def test_only_channels_with_an_address_are_used_and_none_is_an_error(receiver: Receiver) -> None:
    clock = FakeClock()
    d = dispatcher(
        WebhookChannel(SECRET, clock=clock, timeout_s=2), PushChannel(receiver.url, timeout_s=2), clock=clock
    )
    outcome = d.dispatch(notification(Recipient("Dr. Berg", ntfy_topic="jour-berg")))
    assert [a.channel for a in outcome.attempts] == ["push"]

    with pytest.raises(NoRoute, match="no address for any configured channel"):
        d.dispatch(notification(Recipient("Dr. Berg", email="berg@region.example")))


class CrashingChannel:
    """A channel with a bug in it (not a stand-in for a server)."""

    name = "crashing"

    def address(self, recipient: Recipient) -> str | None:
        return recipient.name

    def send(self, notification: Notification) -> DeliveryResult:
        raise KeyError("bug")


def test_a_crashing_channel_does_not_stop_the_others(receiver: Receiver) -> None:
    clock = FakeClock()
    d = dispatcher(CrashingChannel(), PushChannel(receiver.url, timeout_s=2), clock=clock)

    outcome = d.dispatch(notification(Recipient("Dr. Berg", ntfy_topic="jour-berg")))

    assert outcome.delivered == ["push"]
    assert outcome.failed["crashing"].detail == "internal error: KeyError"
    assert outcome.failed["crashing"].permanent


def test_a_socket_that_closes_without_answering_is_retried() -> None:
    # A listener that accepts and closes at once (a proxy with no upstream): a network error, retried.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def slam() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            conn.close()

    threading.Thread(target=slam, daemon=True).start()
    clock = FakeClock()
    d = dispatcher(WebhookChannel(SECRET, clock=clock, timeout_s=2), clock=clock, attempts=2)
    try:
        outcome = d.dispatch(notification(Recipient("Dr. Berg", webhook_url=f"http://127.0.0.1:{port}/")))
    finally:
        listener.close()
    assert [(a.ok, a.permanent) for a in outcome.attempts] == [(False, False)] * 2
    assert all(a.detail.startswith("network error: ") for a in outcome.attempts)
