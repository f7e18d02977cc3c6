"""Notification channels: how an escalated alert reaches the on-call physician.

`Dispatcher` (delivery.py) sends a `Notification` (base.py) over every `Channel` that has an
address for its recipient: e-mail over SMTP (email.py), push through an ntfy server
(push.py), a signed JSON webhook (webhook.py). It retries with back-off, records every
attempt for alert_events, and turns a channel that keeps failing into a technical alarm.
Nothing here imports the database or reads the wall clock; the caller wires both in.
"""

from paging.notify.base import (
    Channel,
    Clock,
    DeliveryFailed,
    DeliveryResult,
    NoRoute,
    Notification,
    NotifyError,
    Recipient,
    SystemClock,
    UnsafeContent,
    alert_link,
    notification_for_alert,
)
from paging.notify.delivery import (
    DeliveryAttempt,
    Dispatcher,
    DispatchOutcome,
    NotificationChannelFailing,
    NotificationChannelRecovered,
    RetryPolicy,
)
from paging.notify.email import EmailChannel
from paging.notify.push import PushChannel
from paging.notify.webhook import SignatureInvalid, WebhookChannel, verify_signature

__all__ = [
    "Channel",
    "Clock",
    "DeliveryAttempt",
    "DeliveryFailed",
    "DeliveryResult",
    "DispatchOutcome",
    "Dispatcher",
    "EmailChannel",
    "NoRoute",
    "Notification",
    "NotificationChannelFailing",
    "NotificationChannelRecovered",
    "NotifyError",
    "PushChannel",
    "Recipient",
    "RetryPolicy",
    "SignatureInvalid",
    "SystemClock",
    "UnsafeContent",
    "WebhookChannel",
    "alert_link",
    "notification_for_alert",
    "verify_signature",
]
