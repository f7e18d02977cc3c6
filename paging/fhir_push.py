"""FHIR push: deliver each active Subscription's changes as a signed notification (issue 12).

What is sent is fhir_api.notifications' decision; this module sends it, with the webhook channel's
own signature (paging.notify.webhook.sign: `X-Hemma-Signature: t=...,v1=...` over the raw body,
`X-Hemma-Delivery` the delivery's id, also Bundle.id) and HTTP POST (paging.notify.http_transport:
bounded timeout, no redirects followed, 408/425/429/5xx temporary, other 4xx permanent).

Where it runs: inside `hemma escalate` (which the demo and deploy already run), on a thread of its
own every HEMMA_FHIR_PUSH_INTERVAL_S (default 10 s, 0: off), so a journal system that answers
slowly never delays a page to the on-call physician. One pusher at a time across processes (a
PostgreSQL advisory lock), so two escalators never send the same delivery side by side.

A failed delivery stays pending with its id and is tried again after a back-off (PushPolicy:
base·2^(n-1), capped); a permanent failure, or `max_failures` in a row, puts the subscription in
`error` (R4's status, shown to the client with the last error) until the operator runs
`hemma fhir subscription on`. Each tick takes `now`; only `start` reads the wall clock. Logs name
subscriptions and deliveries only, never a patient.
"""

from __future__ import annotations

import logging
import ssl
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

import psycopg

from core.redact import summary
from fhir_api import notifications
from paging.notify import http_transport
from paging.notify.base import DeliveryFailed
from paging.notify.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, sign
from storage import steps

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger(__name__)

_LOCK_KEY = 0x48454D4D41_46  # "HEMMA" "F": pg_try_advisory_lock's key of the one pusher


@dataclass(frozen=True, slots=True)
class PushPolicy:
    max_failures: int = 8  # in a row, then `error` (about 2 hours with the defaults)
    base_delay_s: float = 30.0
    max_delay_s: float = 1800.0
    timeout_s: float = 5.0
    settle_s: float = 10.0  # changes younger than this wait for the next tick (notifications docstring)
    batch: int = 100  # resources in one notification
    deliveries_per_tick: int = 20  # per subscription

    def retry_at(self, failures: int, now: datetime) -> datetime:
        """When to try again after the `failures`-th failure in a row."""
        return now + timedelta(seconds=min(self.max_delay_s, self.base_delay_s * 2 ** (failures - 1)))


@dataclass(frozen=True, slots=True)
class Pushed:
    """One attempt of one delivery."""

    subscription_id: uuid.UUID
    delivery_id: uuid.UUID
    attempt: int
    events: int
    ok: bool
    detail: str


class FhirPusher:
    """Push every due subscription's changes on each `tick(now)`."""

    def __init__(
        self,
        database_url: str,
        *,
        base_url: str,
        zone: tzinfo,
        policy: PushPolicy | None = None,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = "hemma-fhir-push/1",
    ) -> None:
        self._database_url = database_url
        self._base = base_url.rstrip("/")
        self._zone = zone
        self.policy = policy or PushPolicy()
        self._ssl_context = ssl_context
        self._user_agent = user_agent
        self._conn: psycopg.Connection | None = None
        self.metrics: Counter[str] = Counter()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> FhirPusher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._database_url, autocommit=True)
        return self._conn

    def tick(self, now: datetime) -> list[Pushed]:
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        conn = self._connection()
        try:
            locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_KEY,)).fetchone()
            if not locked or not locked[0]:
                return []  # another escalator is pushing
            try:
                done: list[Pushed] = []
                for subscription_id in steps.run(conn, notifications.due(now)):
                    done += self._push(conn, subscription_id, now)
                return done
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
        except psycopg.OperationalError:
            self.close()  # reconnect on the next tick
            raise

    def _push(self, conn: psycopg.Connection, subscription_id: uuid.UUID, now: datetime) -> list[Pushed]:
        """The subscription's deliveries due now, until nothing is left or one fails."""
        done: list[Pushed] = []
        for _ in range(self.policy.deliveries_per_tick):
            try:
                with conn.transaction():
                    delivery = steps.run(conn, notifications.prepare(
                        subscription_id, now=now, settle=timedelta(seconds=self.policy.settle_s),
                        zone=self._zone, base=self._base, batch=self.policy.batch,
                    ))  # fmt: skip
            except psycopg.OperationalError:
                raise
            except Exception as exc:  # one subscription's bug must not stop the others
                log.error("subscription %s: not prepared: %s", subscription_id, summary(exc))
                self.metrics["prepare_errors"] += 1
                return done
            if delivery is None:
                return done
            pushed = self._send(delivery, now)
            with conn.transaction():
                if pushed.ok:
                    steps.run(conn, notifications.delivered(delivery, now=now, detail=pushed.detail))
                else:
                    retry_at = self._retry_at(delivery, pushed, now)
                    steps.run(
                        conn, notifications.failed(delivery, now=now, detail=pushed.detail, retry_at=retry_at)
                    )
            done.append(pushed)
            if not pushed.ok:
                return done
        return done

    def _retry_at(self, delivery: notifications.Delivery, pushed: Pushed, now: datetime) -> datetime | None:
        permanent = pushed.detail.startswith("permanent:")
        if permanent or delivery.attempt >= self.policy.max_failures:
            log.warning(
                "subscription %s: in error after %d attempts", delivery.subscription_id, delivery.attempt
            )
            self.metrics["subscriptions_in_error"] += 1
            return None
        return self.policy.retry_at(delivery.attempt, now)

    def _send(self, delivery: notifications.Delivery, now: datetime) -> Pushed:
        body = notifications.body(delivery.bundle)
        headers = dict(_channel_headers(delivery.headers))
        headers |= {
            "Content-Type": "application/fhir+json; charset=utf-8",
            "User-Agent": self._user_agent,
            SIGNATURE_HEADER: sign(delivery.secret, body, int(now.timestamp())),
            DELIVERY_HEADER: str(delivery.delivery_id),
        }
        try:
            detail = http_transport.post(
                delivery.endpoint,
                body,
                headers,
                timeout_s=self.policy.timeout_s,
                ssl_context=self._ssl_context,
            )
            ok = True
            self.metrics["delivered"] += 1
        except DeliveryFailed as exc:
            detail, ok = ("permanent: " if exc.permanent else "") + exc.detail, False
            self.metrics["failed"] += 1
            log.warning("subscription %s: delivery %s failed: %s",
                        delivery.subscription_id, delivery.delivery_id, detail)  # fmt: skip
        return Pushed(
            delivery.subscription_id, delivery.delivery_id, delivery.attempt, delivery.events, ok, detail
        )


def _channel_headers(lines: tuple[str, ...]) -> list[tuple[str, str]]:
    """The subscription's own `channel.header`s ("Name: value", checked when it was made)."""
    return [(name.strip(), value.strip()) for name, _, value in (h.partition(":") for h in lines)]


def start(settings: Settings, stop: threading.Event) -> threading.Thread | None:
    """The push loop on a thread of the escalator's process; None when HEMMA_FHIR_PUSH_INTERVAL_S is 0."""
    interval = settings.fhir_push_interval_s
    if interval <= 0:
        log.info("FHIR push off (HEMMA_FHIR_PUSH_INTERVAL_S=0)")
        return None
    pusher = FhirPusher(
        settings.require_database_url(),
        base_url=settings.dashboard_url.rstrip("/") + "/fhir",
        zone=settings.site_zone(),
    )

    def loop() -> None:
        with pusher:
            while not stop.is_set():
                try:
                    pusher.tick(datetime.now(UTC))
                except psycopg.OperationalError as exc:
                    log.error("FHIR push: database unavailable (%s); retrying", summary(exc))
                except Exception as exc:
                    log.error("FHIR push tick failed: %s", summary(exc))
                    pusher.metrics["tick_errors"] += 1
                stop.wait(interval)

    thread = threading.Thread(target=loop, name="fhir-push", daemon=True)
    thread.start()
    log.info("FHIR push running (every %g s)", interval)
    return thread
