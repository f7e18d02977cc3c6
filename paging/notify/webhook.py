"""Webhook channel: POST the notification as JSON to the recipient's URL, signed with a shared secret.

Signature scheme (the one Stripe uses, so receivers find it familiar)
--------------------------------------------------------------------
Every request carries::

    X-Hemma-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>

where the HMAC key is the shared secret (UTF-8) and the signed message is the decimal
timestamp, a full stop, and the raw request body, byte for byte::

    v1 = hex(HMAC_SHA256(secret, f"{t}." + body))

A receiver must, in this order:

1. take the raw body as received (before any JSON parsing or re-serialisation);
2. read `t` and every `v1` from the header (more than one `v1` may be present while a
   secret is being rotated; any one matching is enough);
3. recompute the HMAC and compare in constant time (`hmac.compare_digest`);
4. refuse the request if `t` is more than a tolerance (5 minutes by default) away from its
   own clock, so that a captured request cannot be replayed later. Within the tolerance, the
   `id` field of the body (also sent as `X-Hemma-Delivery`) identifies a notification: a
   receiver that keeps the ids it has seen drops a replay or a retry of a delivered one.

`verify_signature` below does all four and is what the tests use. The timestamp is taken
at each attempt, so a retry after back-off is signed afresh.

Body (UTF-8 JSON, `"v": 1`): `id`, `event` ("alert.escalated"), `alert_id`, `ward_id`,
`patient_ref` (an opaque reference: only Hemma can tell who it is), `priority`, `rule`,
`message`, `escalation_level`, `link`, `raised_at`, `escalated_at`, `recipient` (staff
name). Answer 2xx when accepted; 408/425/429 and 5xx are retried; other 3xx/4xx are
permanent failures (redirects are not followed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
from datetime import datetime

from paging.notify import http_transport
from paging.notify.base import (
    Clock,
    DeliveryFailed,
    DeliveryResult,
    Notification,
    NotifyError,
    Recipient,
    outcome_of,
)

SIGNATURE_HEADER = "X-Hemma-Signature"
DELIVERY_HEADER = "X-Hemma-Delivery"
DEFAULT_TOLERANCE_S = 300
PAYLOAD_VERSION = 1


class SignatureInvalid(NotifyError):
    """A webhook request whose signature does not hold; `reason` says which check failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _key(secret: str | bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def _digest(key: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The X-Hemma-Signature header value for `body` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},v1={_digest(_key(secret), timestamp, body)}"


def verify_signature(
    secret: str | bytes,
    header: str | None,
    body: bytes,
    now: datetime,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Check a received request; raises SignatureInvalid, returns None when the request is authentic."""
    if not header:
        raise SignatureInvalid(f"missing {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureInvalid("malformed signature header")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureInvalid("malformed timestamp") from None
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureInvalid("signature header lacks t= or v1=")
    expected = _digest(_key(secret), timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureInvalid("signature does not match the body")
    # Checked after the HMAC: an unauthentic request is reported as such, whatever its timestamp.
    if abs(now.timestamp() - timestamp) > tolerance_s:
        raise SignatureInvalid(f"timestamp outside the {tolerance_s:g} s tolerance (replay or clock skew)")


def payload(notification: Notification) -> bytes:
    """The JSON body for a notification (see the module docstring)."""
    n = notification
    document = {
        "v": PAYLOAD_VERSION,
        "id": n.key,
        "event": "alert.escalated",
        "alert_id": n.alert_id,
        "ward_id": n.ward_id,
        "patient_ref": n.patient_ref,
        "priority": n.priority.label,
        "rule": n.rule,
        "message": n.message,
        "escalation_level": n.escalation_level,
        "link": n.link,
        "raised_at": n.raised_at.isoformat(),
        "escalated_at": n.escalated_at.isoformat(),
        "recipient": n.recipient.name,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


class WebhookChannel:
    """Signed JSON POST to `Recipient.webhook_url`; `clock` gives the signature's timestamp."""

    name = "webhook"

    def __init__(
        self,
        secret: str | bytes,
        *,
        clock: Clock,
        timeout_s: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = "hemma-notify/1",
    ) -> None:
        self._key = _key(secret)
        self._clock = clock
        self._timeout_s = timeout_s
        self._ssl_context = ssl_context
        self._user_agent = user_agent

    def address(self, recipient: Recipient) -> str | None:
        return recipient.webhook_url

    def send(self, notification: Notification) -> DeliveryResult:
        return outcome_of(self.name, self._deliver, notification)

    def _deliver(self, notification: Notification) -> str:
        url = notification.recipient.webhook_url
        if url is None:
            raise DeliveryFailed("recipient has no webhook URL", permanent=True)
        body = payload(notification)
        timestamp = int(self._clock.now().timestamp())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": self._user_agent,
            SIGNATURE_HEADER: sign(self._key, body, timestamp),
            DELIVERY_HEADER: notification.key,
        }
        return http_transport.post(
            url, body, headers, timeout_s=self._timeout_s, ssl_context=self._ssl_context
        )
