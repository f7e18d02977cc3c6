"""Send one notification over every channel that reaches its recipient, with retries, and keep the record.

Channels are tried in rounds: every channel once, then after a back-off only those that
failed temporarily, and so on, so that a dead webhook never delays the push message
behind its own retries. A permanent failure (4xx, SMTP 5xx, bad credentials) is not
retried. Every attempt becomes a `DeliveryAttempt`, which the caller stores as an
`alert_events` row (`DeliveryAttempt.alert_event()`).

A broken link in the chain is an alarm in its own right: when a channel has failed
`failure_threshold` times in a row (across notifications), the outcome carries a
`NotificationChannelFailing` request (rule `notification_failing:<channel>`, medium
priority, technical); its first success afterwards carries a `NotificationChannelRecovered`.

All time comes from the injected clock (`now`, `sleep`), so tests run without waiting. Logs
name alert ids and channels only; notifications hold no patient identity in any case.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from alerts.lifecycle import EventKind
from alerts.model import AlarmCondition, Priority
from alerts.rule import RuleFamily
from paging.notify.base import Channel, Clock, DeliveryFailed, DeliveryResult, NoRoute, Notification

log = logging.getLogger(__name__)

CHANNEL_LABELS_SV = {"email": "e-post", "push": "push (ntfy)", "webhook": "webhook"}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential back-off with jitter: before retry n, wait base·2^(n-1) capped, times a factor in [½, 1).

    The jitter spreads the retries of many notifications after a shared outage (a mail relay
    restarting) so they do not all arrive at once. The defaults give up within about 15 s of
    waiting plus the channels' timeouts, well inside a ward's escalation interval (minutes).
    """

    max_attempts: int = 4
    base_delay_s: float = 2.0
    max_delay_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay_s < 0 or self.max_delay_s < self.base_delay_s:
            raise ValueError(f"unusable retry policy {self}")

    def delay_before(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (1 = the second attempt)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (retry - 1))
        return ceiling * (0.5 + rng.random() / 2)


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One attempt on one channel, for the alert's audit trail."""

    alert_id: int
    escalation_level: int
    priority: Priority
    recipient: str  # staff name: who was meant to be told
    channel: str
    attempt: int
    ok: bool
    permanent: bool
    detail: str
    started_at: datetime
    finished_at: datetime

    def alert_event(self) -> dict[str, Any]:
        """The alert_events row (columns as in storage/migrations): kind 'notified', ok or not in `detail`.

        `detail` is a plain dict: wrap it in psycopg.types.json.Jsonb when inserting.
        """
        label = CHANNEL_LABELS_SV.get(self.channel, self.channel)
        if self.ok:
            note = f"Aviserat via {label} till {self.recipient} (försök {self.attempt})"
        else:
            kind = "bestående fel" if self.permanent else "tillfälligt fel"
            note = f"Avisering via {label} till {self.recipient} misslyckades (försök {self.attempt}, {kind})"
        return {
            "alert_id": self.alert_id,
            "at": self.finished_at,
            "kind": EventKind.NOTIFIED.value,
            "actor": "engine",
            "priority": self.priority.label,
            "note": note,
            "detail": {
                "channel": self.channel,
                "attempt": self.attempt,
                "ok": self.ok,
                "permanent": self.permanent,
                "detail": self.detail,
                "escalation_level": self.escalation_level,
                "recipient": self.recipient,
                "started_at": self.started_at.isoformat(),
            },
        }


@dataclass(frozen=True, slots=True)
class NotificationChannelFailing:
    """A technical alarm request: a channel keeps failing, so escalations may not reach anyone.

    Not an alerts.model.AlertRequest: that one is about a patient (patient_id is required),
    and this is about Hemma's own equipment. `ward_id`/`alert_id` name the notification
    that tripped it, so the caller can show it on that ward's dashboard.
    """

    channel: str
    consecutive_failures: int
    last_detail: str
    observed_at: datetime
    ward_id: str
    alert_id: int
    priority: Priority = Priority.MEDIUM
    condition: AlarmCondition = AlarmCondition.TECHNICAL

    @property
    def rule(self) -> str:
        return RuleFamily.NOTIFICATION_FAILING.key(self.channel)

    @property
    def message(self) -> str:
        label = CHANNEL_LABELS_SV.get(self.channel, self.channel)
        return f"Avisering via {label} fungerar inte: {self.consecutive_failures} misslyckade försök i rad"


@dataclass(frozen=True, slots=True)
class NotificationChannelRecovered:
    """The channel of an earlier NotificationChannelFailing delivered again: its alarm may clear."""

    channel: str
    observed_at: datetime

    @property
    def rule(self) -> str:
        return RuleFamily.NOTIFICATION_FAILING.key(self.channel)


@dataclass(slots=True)
class DispatchOutcome:
    notification: Notification
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)  # channels that delivered
    failed: dict[str, DeliveryResult] = field(default_factory=dict)  # channel -> its last failed result
    alarms: list[NotificationChannelFailing] = field(default_factory=list)
    recoveries: list[NotificationChannelRecovered] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """At least one channel reached the recipient."""
        return bool(self.delivered)

    def raise_if_undelivered(self) -> None:
        if not self.delivered:
            details = "; ".join(f"{name}: {r.detail}" for name, r in self.failed.items())
            raise DeliveryFailed(
                f"alert {self.notification.alert_id}: no channel delivered ({details})",
                permanent=all(r.permanent for r in self.failed.values()),
            )


class Dispatcher:
    """Long-lived (one per service): it remembers each channel's run of failures across notifications.

    Thread-safe, so escalations may dispatch from several worker threads at once.
    """

    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        clock: Clock,
        policy: RetryPolicy | None = None,
        failure_threshold: int = 3,
        rng: random.Random | None = None,
    ) -> None:
        names = [c.name for c in channels]
        if len(set(names)) != len(names):
            raise ValueError(f"channel names must be unique, got {names}")
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self._channels = list(channels)
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._threshold = failure_threshold
        self._rng = rng or random.Random()  # jitter only: no secret
        self._lock = threading.Lock()
        self._failures = dict.fromkeys(names, 0)
        self._alarmed: set[str] = set()

    @property
    def has_channels(self) -> bool:
        return bool(self._channels)

    def consecutive_failures(self, channel: str) -> int:
        with self._lock:
            return self._failures[channel]

    def dispatch(self, notification: Notification) -> DispatchOutcome:
        """Try each channel that reaches the recipient until it delivers, fails for good or runs out of tries.

        Raises NoRoute when no configured channel has an address for the recipient.
        """
        pending = [c for c in self._channels if c.address(notification.recipient)]
        if not pending:
            raise NoRoute(
                f"alert {notification.alert_id}: recipient has no address for any configured channel"
                f" ({', '.join(c.name for c in self._channels) or 'none configured'})"
            )
        outcome = DispatchOutcome(notification)
        for attempt in range(1, self._policy.max_attempts + 1):
            if attempt > 1:
                self._clock.sleep(self._policy.delay_before(attempt - 1, self._rng))
            retry: list[Channel] = []
            for channel in pending:
                result = self._attempt(channel, notification, attempt, outcome)
                if result.ok:
                    outcome.delivered.append(channel.name)
                elif result.permanent or attempt == self._policy.max_attempts:
                    outcome.failed[channel.name] = result
                else:
                    retry.append(channel)
            pending = retry
            if not pending:
                break
        return outcome

    def _attempt(
        self, channel: Channel, notification: Notification, attempt: int, outcome: DispatchOutcome
    ) -> DeliveryResult:
        started = self._clock.now()
        try:
            result = replace(channel.send(notification), attempt=attempt)
        except Exception as exc:
            # A bug in one channel must not stop the others from reaching the physician.
            log.error(
                "alert %s: channel %s crashed (%s)",
                notification.alert_id,
                channel.name,
                type(exc).__name__,
                exc_info=True,
            )
            result = DeliveryResult(
                False, channel.name, attempt, f"internal error: {type(exc).__name__}", True
            )
        finished = self._clock.now()
        outcome.attempts.append(
            DeliveryAttempt(
                alert_id=notification.alert_id,
                escalation_level=notification.escalation_level,
                priority=notification.priority,
                recipient=notification.recipient.name,
                channel=channel.name,
                attempt=attempt,
                ok=result.ok,
                permanent=result.permanent,
                detail=result.detail,
                started_at=started,
                finished_at=finished,
            )
        )
        log.log(
            logging.INFO if result.ok else logging.WARNING,
            "alert %s: %s attempt %d %s: %s",
            notification.alert_id,
            channel.name,
            attempt,
            "delivered" if result.ok else "failed permanently" if result.permanent else "failed",
            result.detail,
        )
        self._track(channel.name, result, notification, finished, outcome)
        return result

    def _track(
        self,
        channel: str,
        result: DeliveryResult,
        notification: Notification,
        at: datetime,
        outcome: DispatchOutcome,
    ) -> None:
        with self._lock:
            if result.ok:
                self._failures[channel] = 0
                if channel in self._alarmed:
                    self._alarmed.discard(channel)
                    outcome.recoveries.append(NotificationChannelRecovered(channel, at))
                return
            self._failures[channel] += 1
            count = self._failures[channel]
            if count < self._threshold or channel in self._alarmed:
                return
            self._alarmed.add(channel)
        log.error("notification channel %s failing: %d failures in a row", channel, count)
        outcome.alarms.append(
            NotificationChannelFailing(
                channel, count, result.detail, at, notification.ward_id, notification.alert_id
            )
        )
