"""Push channel for an ntfy server (self-hosted by the region, https://docs.ntfy.sh/publish/).

One HTTP POST to `{base_url}/{topic}`: the body is the message, headers carry the title,
priority, tags and the click-through deep link. The phone shows the title and message on
the lock screen, so both hold only the priority, the ward and the rule's message; the
patient reference is not sent at all.

Header values must be Latin-1 on the wire (http.client encodes them so); Swedish text in
the title is sent as an RFC 2047 encoded-word, which ntfy decodes.
"""

from __future__ import annotations

import re
import ssl
from email.header import Header

from alerts.model import Priority
from alerts.texts_sv import PRIORITY_SV
from paging.notify import http_transport
from paging.notify.base import (
    DeliveryFailed,
    DeliveryResult,
    Notification,
    Recipient,
    outcome_of,
)

# ntfy priorities: 5 = urgent/max (bypasses Do Not Disturb where the user allows it), 4 = high, 3 = default.
NTFY_PRIORITY = {Priority.HIGH: "5", Priority.MEDIUM: "4", Priority.LOW: "3"}
# Tags that ntfy shows as emoji (rotating_light = 🚨): the priority is visible before the text is read.
NTFY_TAGS = {Priority.HIGH: "rotating_light", Priority.MEDIUM: "warning", Priority.LOW: "information_source"}
# ntfy's own rule for topic names.
TOPIC_PATTERN = re.compile(r"^[-_A-Za-z0-9]{1,64}$")


def header_text(text: str) -> str:
    """A header value http.client can send: ASCII as is, anything else as an RFC 2047 encoded-word."""
    if text.isascii():
        return text
    return Header(text, "utf-8").encode()


def title(notification: Notification) -> str:
    return f"Hemma: {PRIORITY_SV[notification.priority]} prioritet – {notification.ward_id}"


def body(notification: Notification) -> bytes:
    n = notification
    return f"{n.message}\nRegel: {n.rule} · eskaleringsnivå {n.escalation_level}".encode()


class PushChannel:
    """POST to an ntfy server; `token` is an ntfy access token sent as a bearer token."""

    name = "push"

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_s: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._timeout_s = timeout_s
        self._ssl_context = ssl_context

    def address(self, recipient: Recipient) -> str | None:
        return recipient.ntfy_topic

    def send(self, notification: Notification) -> DeliveryResult:
        return outcome_of(self.name, self._deliver, notification)

    def _deliver(self, notification: Notification) -> str:
        topic = notification.recipient.ntfy_topic
        if topic is None:
            raise DeliveryFailed("recipient has no ntfy topic", permanent=True)
        if not TOPIC_PATTERN.match(topic):
            raise DeliveryFailed("recipient's ntfy topic is not a valid topic name", permanent=True)
        headers = {
            "Title": header_text(title(notification)),
            "Priority": NTFY_PRIORITY[notification.priority],
            "Tags": f"{NTFY_TAGS[notification.priority]},hemma",
            "Click": notification.link,
            "Content-Type": "text/plain; charset=utf-8",
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return http_transport.post(
            f"{self._base_url}/{topic}",
            body(notification),
            headers,
            timeout_s=self._timeout_s,
            ssl_context=self._ssl_context,
        )
