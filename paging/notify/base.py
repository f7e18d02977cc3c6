"""What every notification channel shares: the notification, its recipient, the result, the errors, time.

A notification leaves the hospital network (a mail relay, a push service, a paging
integration), so it carries no patient identity: the alert's priority, rule and short
Swedish message, the ward, an opaque patient reference and a deep link into the dashboard,
where the patient is shown only after login. `Notification` refuses a message that looks
like it holds a Swedish personnummer, as a last guard against a rule that puts one there.

Channels are synchronous (smtplib and http.client block): async callers run
`Dispatcher.dispatch` in a worker thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from alerts.model import Priority

if TYPE_CHECKING:
    from core.contract import AlertMessage

log = logging.getLogger(__name__)

# Personnummer / samordningsnummer, with or without century and separator (YYMMDD-NNNN, YYYYMMDDNNNN).
_PERSONAL_NUMBER = re.compile(r"(?<!\d)(?:\d{2})?\d{6}[-+ ]?\d{4}(?!\d)")
MAX_MESSAGE_CHARS = 200

# The dashboard path for one alert. The dashboard must serve it behind its login (redirecting to the
# patient's page), so that the link itself names no patient.
ALERT_LINK_PATH = "/alerts/{alert_id}"


class NotifyError(Exception):
    """Base of every error of the notification channels."""


class DeliveryFailed(NotifyError):
    """One delivery attempt failed. `permanent`: retrying the same notification cannot help."""

    def __init__(self, detail: str, *, permanent: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.permanent = permanent


class UnsafeContent(NotifyError, ValueError):
    """A notification would carry something that must not leave the hospital network."""


class NoRoute(NotifyError):
    """A recipient has no address for any configured channel: nobody would be told."""


class Clock(Protocol):
    """Time for the channels and the dispatcher; tests pass a fake that never waits."""

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock, for a service's `main`. The only place in this package that reads the wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True, slots=True)
class Recipient:
    """A member of staff and the addresses they can be reached at; channels use whichever apply."""

    name: str
    email: str | None = None
    ntfy_topic: str | None = None
    webhook_url: str | None = None

    def __post_init__(self) -> None:
        if self.email is not None and "@" not in self.email:
            raise ValueError(f"recipient {self.name!r}: email {self.email!r} has no @")
        if self.webhook_url is not None:
            _check_http_url(self.webhook_url, f"recipient {self.name!r}: webhook_url")


@dataclass(frozen=True, slots=True)
class Notification:
    """One escalated alert, addressed to one recipient, with no patient identity in it."""

    alert_id: int
    ward_id: str
    # Opaque reference (Hemma's patient uuid), meaningful only inside Hemma. Never a name or personnummer.
    patient_ref: str
    priority: Priority
    rule: str
    message: str  # short Swedish text from the rule, e.g. "NEWS2 7: hög risk"
    link: str  # deep link to the alert in the dashboard (see alert_link)
    raised_at: datetime  # when the alert was raised
    escalated_at: datetime  # when the escalation decided to send this notification
    recipient: Recipient
    escalation_level: int = 1  # step of the escalation chain: 1 = first person told

    def __post_init__(self) -> None:
        if self.escalation_level < 1:
            raise ValueError(f"escalation_level must be >= 1, got {self.escalation_level}")
        for name in ("raised_at", "escalated_at"):
            if getattr(self, name).tzinfo is None:
                raise ValueError(f"{name} must be an aware datetime")
        if len(self.message) > MAX_MESSAGE_CHARS:
            raise ValueError(f"alert {self.alert_id}: message longer than {MAX_MESSAGE_CHARS} characters")
        _check_http_url(self.link, f"alert {self.alert_id}: link")
        for name in ("message", "rule", "ward_id"):
            if _PERSONAL_NUMBER.search(getattr(self, name)):
                # The offending text is not repeated: it may be the very identity we must not spread.
                raise UnsafeContent(f"alert {self.alert_id}: {name} looks like it holds a personnummer")

    @property
    def key(self) -> str:
        """Stable id of this notification: the same alert, priority, level and recipient give the same key.

        Used as the mail's Message-ID and the webhook's delivery id, so a retried or re-sent
        notification can be recognised as the same one by the receiver.
        """
        who = "\x1f".join(
            [
                self.recipient.name,
                self.recipient.email or "",
                self.recipient.ntfy_topic or "",
                self.recipient.webhook_url or "",
            ]
        )
        digest = hashlib.sha256(who.encode()).hexdigest()[:12]
        return f"alert-{self.alert_id}.{self.priority.label}.l{self.escalation_level}.{digest}"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The outcome of one attempt on one channel. `detail` is our own text (status codes, error kinds)."""

    ok: bool
    channel: str
    attempt: int
    detail: str
    permanent: bool = False

    def __post_init__(self) -> None:
        if self.ok and self.permanent:
            raise ValueError("a delivered result cannot be a permanent failure")


class Channel(Protocol):
    """One way to reach a person. `send` never raises for delivery problems: it returns a failed result."""

    name: str

    def address(self, recipient: Recipient) -> str | None:
        """The recipient's address on this channel, or None when the channel does not apply to them."""
        ...

    def send(self, notification: Notification) -> DeliveryResult: ...


def alert_link(dashboard_url: str, alert_id: int) -> str:
    """The deep link to one alert, e.g. https://hemma.region.se/alerts/42."""
    return dashboard_url.rstrip("/") + ALERT_LINK_PATH.format(alert_id=alert_id)


def notification_for_alert(
    alert: AlertMessage,
    recipient: Recipient,
    *,
    dashboard_url: str,
    escalated_at: datetime,
    escalation_level: int = 1,
) -> Notification:
    """The notification for an alert as ingest publishes it (core.contract.AlertMessage).

    A message that is too long is shortened; one that looks like it holds a personnummer is
    replaced by a generic text rather than refused, so that a faulty rule text can never stop
    the on-call physician from being told that there is an alert.
    """
    message = alert.message
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    if _PERSONAL_NUMBER.search(message):
        log.warning(
            "alert %s: message withheld from notification (looks like a personnummer)", alert.alert_id
        )
        message = "Larm – öppna Hemma för detaljer"
    return Notification(
        alert_id=alert.alert_id,
        ward_id=alert.ward_id,
        patient_ref=str(alert.patient_id),
        priority=Priority.parse(alert.priority),
        rule=alert.rule,
        message=message,
        link=alert_link(dashboard_url, alert.alert_id),
        raised_at=alert.at,
        escalated_at=escalated_at,
        recipient=recipient,
        escalation_level=escalation_level,
    )


def outcome_of(
    channel: str, deliver: Callable[[Notification], str], notification: Notification
) -> DeliveryResult:
    """Run a channel's raising `deliver(notification)` and turn DeliveryFailed into a failed result."""
    try:
        detail = deliver(notification)
    except DeliveryFailed as exc:
        return DeliveryResult(False, channel, 1, exc.detail, exc.permanent)
    return DeliveryResult(True, channel, 1, detail)


def _check_http_url(url: str, what: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an http(s) URL with a host")
