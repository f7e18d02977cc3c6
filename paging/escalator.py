"""`hemma escalate`: page the on-call rota about open high alerts nobody has acknowledged.

Each tick looks at every open high alert. Per alert, a short transaction locks its row
(FOR UPDATE SKIP LOCKED, so a second escalator process skips it), asks alerts/escalation
whether the next level is due, picks who is on call (oncall_shifts + staff_contacts) and
commits an 'escalated' alert event. That committed event is the claim: every escalator
derives the level from the 'escalated' events, so the step is never sent twice. The
notification is then dispatched *outside* the transaction, and a second transaction stores
every delivery attempt ('notified', or 'notification_failed'). Every one of these rows is
written by alerts.store (the lifecycle's one writer), which also tells the dashboards.

Why two transactions: a dispatch may retry with back-off for up to a minute, and holding the
alert's row lock that long would stall ingest (alerts/store.py locks live alerts FOR UPDATE)
and a nurse's acknowledgement. The cost: a crash between the two leaves an 'escalated' event
without its delivery rows, and the next level follows N minutes later as usual.

A physician who could not be paged is something the ward must see: `PagingAlarms` turns a
channel the Dispatcher reports as failing (`notification_failing:<channel>`), and a notification
no channel could carry at all (`notification_failing:not_sent`), into a technical medium alert
for the patient whose alert was not passed on, through alerts.store like any rule's request; the
next delivery on that channel clears them.

A ward with an escalation ladder (issue 12, care.escalation_ladder) walks it instead of the on-call
chain: paging.ladder claims the due step in the same locked transaction (hand-off rows, 'handed_off'
or 'handoff_skipped' events, access-log rows under each receiver's care provider), and every receiver
is notified and recorded here as the on-call physician is. Each tick first settles the hand-offs of
alerts the ward has acknowledged or resolved since.

`run` also starts the FHIR push (paging.fhir_push) on a thread of its own, so a slow journal
system never delays a page.

Time comes in as `tick(now)`; only `run` reads the wall clock.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import signal
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg

from alerts import store
from alerts.lifecycle import (
    AlertState,
    Escalated,
    EventKind,
    LifecycleEvent,
    NotificationFailed,
    Notified,
    Refusal,
)
from alerts.model import Priority
from care import permissions
from care.care_levels import escalate_after
from care.escalation_handoffs import close_settled
from care.escalation_ladder import ladder as ward_ladder
from care.permissions import Action
from core.contract import AlertMessage
from core.redact import summary
from paging import fhir_push
from paging.alarms import NO_CHANNEL, PagingAlarms
from paging.escalation import LEVEL_NAMES_SV, EscalationDue, due_escalation, levels_to_try
from paging.ladder import LadderWalk, Page
from paging.notify import (
    Channel,
    Dispatcher,
    DispatchOutcome,
    EmailChannel,
    NoRoute,
    NotifyError,
    PushChannel,
    Recipient,
    SystemClock,
    WebhookChannel,
    notification_for_alert,
)
from storage import steps
from storage.db import migrate

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger(__name__)

TICK_INTERVAL_S = 15.0
NOBODY_ON_CALL = "ingen i jour"


@dataclass(frozen=True, slots=True)
class OnCall:
    staff_user_id: int
    level: int
    recipient: Recipient


@dataclass(frozen=True, slots=True)
class Escalation:
    """What one tick did to one alert."""

    alert_id: int
    ward_id: str
    level: int  # the level escalated to (the due one, or higher when nobody was on call at it)
    staff_user_id: int | None  # None: nobody on call at this level or above
    delivered: bool
    attempts: int


@dataclass(frozen=True, slots=True)
class _Claim:
    alert: AlertMessage
    level: int  # the level (or ladder step) claimed
    pages: tuple[Page, ...]  # empty: nobody to page (recorded and announced in the claim)
    changes: tuple[store.AlertChange, ...] = ()  # claim events still to announce with the delivery


# With the ward's escalation time, the patient's care level in force (the newest care_levels row): the
# two make the alert's own time (care.care_levels.escalate_after).
_ALERT = (
    "SELECT a.id, a.ward_id, a.patient_id, a.rule, a.priority, a.state, a.message, a.opened_at,"
    " w.escalate_after_minutes, (SELECT l.level FROM care_levels l WHERE l.patient_id = a.patient_id"
    " ORDER BY l.set_at DESC, l.id DESC LIMIT 1) FROM alerts a JOIN wards w ON w.id = a.ward_id"
    " WHERE a.id = %s AND a.state = %s AND a.priority = %s FOR UPDATE OF a SKIP LOCKED"
)
_OPEN_HIGH = (AlertState.OPEN.value, Priority.HIGH.label)
# The alert became high when it opened or when it was reprioritised to high; escalate from then.
_SINCE = "SELECT max(at) FROM alert_events WHERE alert_id = %s AND kind = %s AND priority = %s"
_LEVEL = (
    "SELECT coalesce(max((detail->>'level')::int), 0), max(at) FROM alert_events"
    " WHERE alert_id = %s AND kind = %s AND at >= %s"
)
_ON_CALL = (
    "SELECT s.staff_user_id, s.level, u.display_name, c.email, c.ntfy_topic, c.webhook_url"
    " FROM oncall_shifts s JOIN staff_users u ON u.id = s.staff_user_id"
    " JOIN staff_contacts c ON c.staff_user_id = s.staff_user_id"
    " WHERE s.ward_id = %s AND s.level >= %s AND s.level <= %s AND s.starts_at <= %s AND s.ends_at > %s"
    " AND NOT u.disabled AND u.role = ANY(%s) ORDER BY s.level, s.starts_at DESC, s.id DESC LIMIT 1"
)
# A shift outlives a change of role: someone no longer allowed on call (care.permissions) is passed
# over like a disabled account, and the level hands over to the next.
_ON_CALL_ROLES = list(permissions.allowed_roles(Action.BE_ON_CALL))


class Escalator:
    """Long-lived: one connection (reopened after a failure) and one Dispatcher per process."""

    def __init__(
        self,
        conn_factory: Callable[[], psycopg.Connection] | str,
        dispatcher: Dispatcher,
        *,
        dashboard_url: str,
    ) -> None:
        if isinstance(conn_factory, str):
            conninfo = conn_factory
            self._connect: Callable[[], psycopg.Connection] = lambda: psycopg.connect(
                conninfo, autocommit=True
            )
        else:
            self._connect = conn_factory
        self._dispatcher = dispatcher
        self._dashboard_url = dashboard_url
        self._conn: psycopg.Connection | None = None
        self.metrics: Counter[str] = Counter()
        self._paging_alarms = PagingAlarms(dispatcher)
        self._ladder = LadderWalk(dashboard_url, self.metrics)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Escalator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tick(self, now: datetime) -> list[Escalation]:
        """Escalate every open high alert whose next level is due at `now`."""
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        conn = self._connection()
        try:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM alerts WHERE state = %s AND priority = %s ORDER BY opened_at, id",
                    _OPEN_HIGH,
                )
            ]
            done: list[Escalation] = []
            with conn.transaction():
                # Hand-offs of alerts acknowledged or resolved since the last tick are settled.
                steps.run(conn, close_settled(now))
            for alert_id in ids:
                try:
                    escalations = self._escalate(conn, alert_id, now)
                except psycopg.OperationalError:
                    raise
                except Exception as exc:
                    # One alert that trips a bug must not stop the others from being escalated. Its
                    # type and place only: a database error's text quotes the row (the alert's value).
                    log.error("alert %s: escalation failed: %s", alert_id, summary(exc))
                    self.metrics["alert_errors"] += 1
                    continue
                done.extend(escalations)
            return done
        except psycopg.OperationalError:
            self.close()  # reconnect on the next tick
            raise

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    def _escalate(self, conn: psycopg.Connection, alert_id: int, now: datetime) -> list[Escalation]:
        with conn.transaction():
            claim = self._claim(conn, alert_id, now)
            if claim is None:
                return []
            if not claim.pages:
                return [Escalation(alert_id, claim.alert.ward_id, claim.level, None, False, 0)]
        done = []
        claimed = list(claim.changes)
        for page in claim.pages:
            outcome, failure = self._dispatch(claim.alert, page, now)
            with conn.transaction():
                changes = claimed + self._record_delivery(conn, claim.alert, page, outcome, failure, now)
                changes += self._raise_paging_alarms(conn, claim.alert, page, outcome, failure, now)
                # One announcement for the delivery and the alarms it raised: the dashboards re-read once.
                steps.run(conn, store.announce_changes(changes))
            claimed = []
            done.append(Escalation(
                alert_id, claim.alert.ward_id, page.level, page.staff_user_id, bool(outcome and outcome.ok),
                len(outcome.attempts) if outcome else 0,
            ))  # fmt: skip
        return done

    def _claim(self, conn: psycopg.Connection, alert_id: int, now: datetime) -> _Claim | None:
        """Lock the alert, decide, and write the 'escalated' event. None: not due, or not ours to take."""
        row = conn.execute(_ALERT, (alert_id, *_OPEN_HIGH)).fetchone()
        if row is None:
            return None  # acknowledged or resolved meanwhile, or another escalator holds it
        (alert_id, ward_id, patient_id, rule, priority, state, message, opened_at, ward_minutes,
         care_level) = row  # fmt: skip
        became_high = (alert_id, EventKind.REPRIORITISED.value, Priority.HIGH.label)
        reprioritised = conn.execute(_SINCE, became_high).fetchone()
        since = max(opened_at, reprioritised[0]) if reprioritised and reprioritised[0] else opened_at
        alert = AlertMessage(
            v=1, alert_id=alert_id, ward_id=ward_id, patient_id=patient_id, rule=rule,
            priority=priority, state=state, message=message, at=opened_at,
        )  # fmt: skip
        ladder = steps.run(conn, ward_ladder(ward_id))
        if ladder is not None and ladder.steps:
            # The ward's ladder takes the place of the on-call chain (paging.ladder).
            first_after = escalate_after(care_level, ward_minutes)
            rota = functools.partial(self._on_call, conn, ward_id)
            walked = self._ladder.claim(conn, alert, ladder, since, first_after, rota, now)
            return None if walked is None else _Claim(alert, *walked)
        level, last_at = conn.execute(_LEVEL, (alert_id, EventKind.ESCALATED.value, since)).fetchone()  # type: ignore[misc]
        due = due_escalation(
            opened_at=since,
            level=level,
            last_escalated_at=last_at,
            escalate_after_minutes=escalate_after(care_level, ward_minutes),
            now=now,
        )
        if due is None:
            return None
        on_call = self._on_call(conn, ward_id, due, now)
        if on_call is None:
            log.warning(
                "alert %s on ward %s: nobody on call at level %d or above", alert_id, ward_id, due.level
            )
            self.metrics["nobody_on_call"] += 1
            # Nobody will be paged: the dashboards hear of this step now, not after a delivery.
            nobody = Escalated(NOBODY_ON_CALL, {"level": due.level, "staff_user_id": None})
            if _recorded(conn, alert_id, nobody, now, announce=True) is None:
                return None
            return _Claim(alert, due.level, ())
        note = f"Eskalerat till {LEVEL_NAMES_SV[on_call.level]} {on_call.recipient.name}"
        detail: dict[str, Any] = {"level": on_call.level, "staff_user_id": on_call.staff_user_id}
        if on_call.level != due.level:
            detail["skipped_levels"] = list(range(due.level, on_call.level))
        if _recorded(conn, alert_id, Escalated(note, detail), now, announce=False) is None:
            return None
        self.metrics["escalated"] += 1
        log.info("alert %s escalated to level %d (staff %s)", alert_id, on_call.level, on_call.staff_user_id)
        return _Claim(alert, due.level, (Page(on_call.staff_user_id, on_call.level, on_call.recipient),))

    def _on_call(
        self, conn: psycopg.Connection, ward_id: str, due: EscalationDue, now: datetime
    ) -> OnCall | None:
        levels = levels_to_try(due.level)
        row = conn.execute(_ON_CALL, (ward_id, levels[0], levels[-1], now, now, _ON_CALL_ROLES)).fetchone()
        if row is None:
            return None
        staff_user_id, level, name, email, ntfy_topic, webhook_url = row
        try:
            recipient = Recipient(name, email=email, ntfy_topic=ntfy_topic, webhook_url=webhook_url)
        except ValueError as exc:
            # The table's CHECKs make this unreachable for rows written through Hemma; say so if not.
            log.error(
                "staff %s has unusable contact details (%s): treated as not on call", staff_user_id, exc
            )
            return None
        return OnCall(staff_user_id, level, recipient)

    def _dispatch(
        self, alert: AlertMessage, page: Page, now: datetime
    ) -> tuple[DispatchOutcome | None, str | None]:
        try:
            notification = notification_for_alert(
                alert,
                page.recipient,
                dashboard_url=self._dashboard_url,
                escalated_at=now,
                escalation_level=page.level,
            )
            if page.link is not None:
                notification = dataclasses.replace(notification, link=page.link)
            outcome = self._dispatcher.dispatch(notification)
        except (NotifyError, ValueError) as exc:
            # NoRoute (no configured channel reaches this person) or content we may not send. With no
            # channel at all (the demo) that was said once at start; the ward's technical alarm says
            # it for each alert, so this is not an error of its own then.
            level = logging.ERROR if self._dispatcher.has_channels else logging.INFO
            log.log(level, "alert %s: not dispatched: %s", alert.alert_id, exc)
            return None, f"{type(exc).__name__}: {exc}"
        for alarm in outcome.alarms:
            self.metrics[f"channel_failing:{alarm.channel}"] += 1
        return outcome, None

    def _raise_paging_alarms(
        self,
        conn: psycopg.Connection,
        alert: AlertMessage,
        page: Page,
        outcome: DispatchOutcome | None,
        failure: str | None,
        now: datetime,
    ) -> list[store.AlertChange]:
        """The ward's technical alarms about this dispatch; a bug here never loses the delivery record."""
        try:
            with conn.transaction():  # a savepoint inside the delivery transaction
                changes = self._paging_alarms.after_dispatch(
                    conn, alert, page.level, outcome, failure, now, whom=page.whom
                )
        except psycopg.OperationalError:
            raise
        except Exception as exc:
            log.error("alert %s: paging alarm not raised: %s", alert.alert_id, summary(exc))
            self.metrics["paging_alarm_errors"] += 1
            return []
        for change in changes:
            self.metrics[f"paging_alarm_{change.kind}"] += 1
        return changes

    def _record_delivery(
        self,
        conn: psycopg.Connection,
        alert: AlertMessage,
        page: Page,
        outcome: DispatchOutcome | None,
        failure: str | None,
        now: datetime,
    ) -> list[store.AlertChange]:
        """The alert_events rows of one dispatch (not yet announced: the caller does that)."""
        alert_id = alert.alert_id
        if outcome is None:
            self.metrics["notification_failed"] += 1
            detail = {"escalation_level": page.level, "recipient": page.recipient.name, "detail": failure}
            note = "Avisering kunde inte skickas"
            if failure and failure.startswith(NoRoute.__name__):
                note = f"Avisering till {page.recipient.name} kunde inte skickas: {NO_CHANNEL}"
            failed = _recorded(conn, alert_id, NotificationFailed(now, note, detail), now, announce=False)
            return [failed] if failed else []
        changes = []
        for attempt in outcome.attempts:
            row = attempt.alert_event()
            self.metrics["notified" if attempt.ok else "notification_failed"] += 1
            kind = Notified if attempt.ok else NotificationFailed
            change = _recorded(
                conn, alert_id, kind(row["at"], row["note"], row["detail"]), now, announce=False
            )
            changes += [change] if change else []
        if not outcome.ok:
            log.error("alert %s: no channel reached %s", alert_id, outcome.notification.recipient.name)
        return changes


def _recorded(
    conn: psycopg.Connection, alert_id: int, event: LifecycleEvent, now: datetime, *, announce: bool
) -> store.AlertChange | None:
    """Record `event` through the alert store; None if the lifecycle refused it (logged by code)."""
    outcome = steps.run(conn, store.act(alert_id, event, now=now, announce=announce))
    if isinstance(outcome, Refusal):
        log.warning("alert %s: %s not recorded: %s", alert_id, type(event).__name__, outcome.code.value)
        return None
    return outcome


def channels_from_settings(
    settings: Settings, clock: SystemClock, *, allow_none: bool = False
) -> list[Channel]:
    channels: list[Channel] = []
    if settings.notify_smtp_host:
        if not settings.notify_smtp_sender:
            raise RuntimeError("HEMMA_NOTIFY_SMTP_SENDER is not set (the From address of alert mail)")
        channels.append(
            EmailChannel(
                settings.notify_smtp_host,
                settings.notify_smtp_port,
                sender=settings.notify_smtp_sender,
                security=settings.notify_smtp_security,
                # An empty line in an env file (NAME=) means "not set", not "log in as nobody".
                username=settings.notify_smtp_username or None,
                password=settings.notify_smtp_password or None,
                zone=settings.site_zone(),
            )
        )
    if settings.notify_ntfy_url:
        channels.append(PushChannel(settings.notify_ntfy_url, token=settings.notify_ntfy_token or None))
    if settings.notify_webhook_secret:
        channels.append(WebhookChannel(settings.notify_webhook_secret, clock=clock))
    if not channels and allow_none:
        # Said once at INFO: whoever passed --allow-no-channel chose this (the demo says so on its own
        # console), and every page that cannot go raises the ward's technical alarm anyway.
        log.info(
            "no notification channel configured (HEMMA_NOTIFY_*): escalations are recorded as '%s'"
            " and the ward gets a technical alarm instead of the physician a page",
            NO_CHANNEL,
        )
    elif not channels:
        raise RuntimeError(
            "no notification channel configured: set HEMMA_NOTIFY_SMTP_HOST (and _SENDER),"
            " HEMMA_NOTIFY_NTFY_URL or HEMMA_NOTIFY_WEBHOOK_SECRET"
        )
    return channels


def run(settings: Settings, *, allow_no_channel: bool = False) -> int:
    """`hemma escalate`: tick every TICK_INTERVAL_S with the wall clock until SIGINT/SIGTERM.

    Without a notification channel it refuses to start, unless `allow_no_channel` (the demo).
    """
    database_url = settings.require_database_url()
    clock = SystemClock()
    channels = channels_from_settings(settings, clock, allow_none=allow_no_channel)
    dispatcher = Dispatcher(channels, clock=clock)
    with psycopg.connect(database_url, autocommit=True) as conn:
        applied = migrate(conn)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log.info("escalator running (every %g s)", TICK_INTERVAL_S)
    pusher = fhir_push.start(settings, stop)  # FHIR Subscriptions' notifications, on a thread of their own
    with Escalator(database_url, dispatcher, dashboard_url=settings.dashboard_url) as escalator:
        while not stop.is_set():
            try:
                escalator.tick(datetime.now(UTC))
            except psycopg.OperationalError as exc:
                log.error("database unavailable (%s); retrying in %g s", exc, TICK_INTERVAL_S)
            except Exception as exc:
                # A bug on one tick must not end paging for every ward: log it and try again.
                log.error("escalation tick failed: %s", summary(exc))
                escalator.metrics["tick_errors"] += 1
            stop.wait(TICK_INTERVAL_S)
    if pusher is not None:
        pusher.join(30)
    counters = " ".join(f"{k}={v}" for k, v in sorted(escalator.metrics.items()))
    log.info("escalator stopped: %s", counters or "nothing escalated")
    return 0
