"""Paging alarms: tell the ward, on its own dashboard, that its physician was not paged.

`paging.escalator` reports every delivery outcome here. A channel the Dispatcher says keeps failing
(`notification_failing:<channel>`), and a notification no channel could carry at all
(`notification_failing:not_sent`), become a technical medium alert for each patient whose alert was
not passed on, through `alerts.store` like any rule's request, with no hold: the Dispatcher already
waited for repeated failures after retries, so a hold would only delay telling the ward. The
channel's next delivery clears them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from alerts import store
from alerts.lifecycle import AlertState
from alerts.model import AlarmCondition, AlertClear, AlertRequest, Priority
from alerts.rule import RuleFamily
from paging.notify import Dispatcher, DispatchOutcome, NoRoute
from paging.notify.delivery import CHANNEL_LABELS_SV
from storage.steps import run

if TYPE_CHECKING:
    import psycopg

    from core.contract import AlertMessage

NO_CHANNEL = "ingen kanal"
# `not_sent`: no channel could even be tried.
NOT_SENT_RULE = RuleFamily.NOTIFICATION_FAILING.key("not_sent")
_LEVEL_DEFINITE_SV = {1: "jourläkaren", 2: "bakjouren", 3: "verksamhetschefen"}


@dataclass(frozen=True, slots=True)
class _Unpaged:
    """A patient whose escalation a channel failed to carry, not yet told to their ward."""

    ward_id: str
    level: int
    at: datetime
    whom: str  # who was not paged, in the ward's words ("jourläkaren")


class PagingAlarms:
    """Tell the ward, on its own dashboard, that its physician was not paged about its patient.

    The Dispatcher decides when a channel "keeps failing" (`failure_threshold` failed attempts in a
    row, across notifications) and says so once, in the outcome that crossed the line. From then
    on, and for the patients whose notifications failed on that channel on the way there, every
    patient whose escalation the channel failed to carry gets a technical medium alert
    `notification_failing:<channel>` (one per patient: the store keys alerts by patient and rule).
    The channel's next delivery, to anyone, clears all of them. A channel with a live alarm in the
    database counts as failing after a restart too, so the Dispatcher's counter starting again from
    zero does not hide the next failure.

    A notification no channel could even try (NoRoute: no channel configured, or none with an
    address for the person on call) raises `notification_failing:not_sent` at once, cleared by the
    next delivery that reaches anyone. Medium, not high: a high alert would itself be escalated.
    Opened at once (no hold time): see the module docstring.
    """

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self._failing: set[str] = set()
        self._unpaged: dict[str, dict[uuid.UUID, _Unpaged]] = {}

    def after_dispatch(
        self,
        conn: psycopg.Connection,
        alert: AlertMessage,
        level: int,
        outcome: DispatchOutcome | None,
        failure: str | None,
        now: datetime,
        *,
        whom: str | None = None,
    ) -> list[store.AlertChange]:
        """Requests and clears for one dispatch, applied in the caller's transaction, which announces
        them (with the delivery they are about). `whom`: who was to be paged, when not the on-call
        level's physician (the escalation ladder's receivers: "kommunens sjuksköterska")."""
        requests: list[AlertRequest] = []
        clears: list[AlertClear] = []
        ward_of = {alert.patient_id: alert.ward_id}
        whom = whom or _LEVEL_DEFINITE_SV.get(level, "jourläkaren")
        if outcome is None:
            why = NO_CHANNEL if failure and failure.startswith(NoRoute.__name__) else "avvisades"
            message = f"Larm kunde inte skickas till {whom}: {why}"
            requests.append(_paging_request(alert.patient_id, NOT_SENT_RULE, message, None, now))
            return run(conn, store.apply_steps(requests, clears, ward_of, now=now, announce=False))
        # Work on copies: if the store refuses, the patients still waiting to be told are not lost.
        failing = set(self._failing)
        waiting = {channel: dict(patients) for channel, patients in self._unpaged.items()}
        alarmed = {a.channel for a in outcome.alarms}
        for channel in outcome.failed:
            at = max(a.finished_at for a in outcome.attempts if a.channel == channel)
            waiting.setdefault(channel, {})[alert.patient_id] = _Unpaged(alert.ward_id, level, at, whom)
            if channel in alarmed or channel in failing or _alarm_live(conn, _rule(channel)):
                failing.add(channel)
                failures = float(self._dispatcher.consecutive_failures(channel))
                label = CHANNEL_LABELS_SV.get(channel, channel)
                for patient_id, u in waiting.pop(channel).items():
                    ward_of[patient_id] = u.ward_id
                    whom_then = u.whom
                    message = f"Larm kunde inte skickas via {label} till {whom_then}"
                    requests.append(_paging_request(patient_id, _rule(channel), message, failures, u.at))
        for channel in outcome.delivered:
            at = max(a.finished_at for a in outcome.attempts if a.channel == channel and a.ok)
            failing.discard(channel)
            waiting.pop(channel, None)
            clears += _clears(conn, _rule(channel), at)
        if outcome.ok:
            delivered_at = max(a.finished_at for a in outcome.attempts if a.ok)
            clears += _clears(conn, NOT_SENT_RULE, delivered_at)
        changes = run(conn, store.apply_steps(requests, clears, ward_of, now=now, announce=False))
        self._failing, self._unpaged = failing, waiting
        return changes


def _rule(channel: str) -> str:
    return RuleFamily.NOTIFICATION_FAILING.key(channel)


def _paging_request(
    patient_id: uuid.UUID, rule: str, message: str, failures: float | None, at: datetime
) -> AlertRequest:
    return AlertRequest(
        patient_id=patient_id, rule=rule, vital=None, priority=Priority.MEDIUM, message=message,
        value=failures, threshold=None, observed_at=at, condition=AlarmCondition.TECHNICAL,
        hold=timedelta(0),
    )  # fmt: skip


def _alarm_live(conn: psycopg.Connection, rule: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM alerts WHERE rule = %s AND state <> %s LIMIT 1", (rule, AlertState.RESOLVED.value)
    )
    return row.fetchone() is not None


def _clears(conn: psycopg.Connection, rule: str, at: datetime) -> list[AlertClear]:
    return [AlertClear(patient_id, r, at) for patient_id, r in store.live_keys(conn, rule) if r == rule]
