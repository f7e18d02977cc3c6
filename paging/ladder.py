"""The escalator's walk along a ward's escalation ladder (issue 12), in place of the on-call chain.

paging.escalator locks an open high alert and, when its ward has a ladder (care.escalation_ladder),
asks `LadderWalk.claim` instead of the on-call chain. In the same transaction the claim decides which
step is due (care.escalation_ladder.due_step, pure), finds its receivers
(care.escalation_handoffs.receivers), and writes each hand-off (its row, alert event and access-log
row under the receiver's care provider) or, when nobody can receive the step, the skip with its reason,
and goes straight on to the next step. The hand-off events are the claim, as the 'escalated' events are
for the chain: a second escalator derives the same history and does not hand the step twice.

The escalator then notifies every receiver through the existing channels, outside the transaction, as
it does the on-call physician: a partner's link leads to their visit page (`/partner/besok/{id}`), a
physician's to the alert's own (`/alerts/{id}`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import psycopg

from alerts import store
from care.escalation_handoffs import WHOM_SV, Receiver, hand_off, history, pass_on, receivers, skip
from care.escalation_ladder import Due, Ladder, Target, due_step
from core.contract import AlertMessage
from paging.escalation import EscalationDue
from paging.notify import Recipient
from storage import steps

log = logging.getLogger(__name__)

# The partner's page for a hand-off (dashboard.partner_visit), behind the partner's login.
PARTNER_VISIT_LINK_PATH = "/partner/besok/{alert_id}"


@dataclass(frozen=True, slots=True)
class Page:
    """One person to notify about a claimed step: the on-call level, or the ladder's step (`level`)."""

    staff_user_id: int
    level: int
    recipient: Recipient
    link: str | None = None  # None: the alert's own link (/alerts/{id})
    whom: str | None = None  # who was not paged, for the ward's alarm; None: the on-call level's word


class OnCallFound(Protocol):
    """What paging.escalator's rota lookup returns (OnCall): the field the ladder needs."""

    @property
    def staff_user_id(self) -> int: ...


OnCallLookup = Callable[[EscalationDue, datetime], OnCallFound | None]


def partner_visit_link(dashboard_url: str, alert_id: int) -> str:
    return dashboard_url.rstrip("/") + PARTNER_VISIT_LINK_PATH.format(alert_id=alert_id)


class LadderWalk:
    """Claims ladder steps for the escalator; `metrics` is the escalator's own counter."""

    def __init__(self, dashboard_url: str, metrics: Counter[str]) -> None:
        self._dashboard_url = dashboard_url
        self.metrics = metrics

    def claim(
        self,
        conn: psycopg.Connection,
        alert: AlertMessage,
        ladder: Ladder,
        since: datetime,
        first_after_minutes: int,
        on_call: OnCallLookup,
        now: datetime,
    ) -> tuple[int, tuple[Page, ...], tuple[store.AlertChange, ...]] | None:
        """(step, pages, changes to announce) of what is due now, written; None: nothing due."""
        done = steps.run(conn, history(alert.alert_id, since))
        changes: list[store.AlertChange] = []
        for _ in ladder.steps:  # each pass hands one step or skips it: never more passes than steps
            decision = due_step(ladder.steps, since=since, first_after_minutes=first_after_minutes,
                                done=done, now=now)  # fmt: skip
            if not isinstance(decision, Due):
                break
            step = decision.step
            found = on_call(EscalationDue(1, decision.due_at), now) if step.target is Target.ON_CALL else None
            who, reason = steps.run(conn, receivers(
                step, ward_id=alert.ward_id, patient_id=alert.patient_id,
                on_call_id=found.staff_user_id if found else None, at=now,
            ))  # fmt: skip
            steps.run(conn, pass_on(alert.alert_id, now))
            if reason is not None:
                skipped = steps.run(conn, skip(alert_id=alert.alert_id, ladder_id=ladder.id, step=step,
                                               reason=reason, now=now))  # fmt: skip
                if skipped is None:
                    return None  # the lifecycle refused: no longer open and high
                self.metrics["handoff_skipped"] += 1
                log.info("alert %s: ladder step %d skipped (%s)", alert.alert_id, step.position, reason)
                changes.append(skipped)
                done = steps.run(conn, history(alert.alert_id, since))
                continue
            pages = []
            for receiver in who:
                handed = steps.run(conn, hand_off(alert_id=alert.alert_id, patient_id=alert.patient_id,
                                                  ladder_id=ladder.id, step=step, receiver=receiver,
                                                  now=now))  # fmt: skip
                if handed is None:
                    return None
                self.metrics["handed_off"] += 1
                changes.append(handed.change)
                pages.append(self._page(alert.alert_id, step.position, step.target, receiver))
            log.info(
                "alert %s: ladder step %d handed to %d receiver(s)", alert.alert_id, step.position, len(pages)
            )
            return step.position, tuple(pages), tuple(changes)
        if not changes:
            return None
        # Every remaining step was skipped: nobody to page; the dashboards hear of it now.
        steps.run(conn, store.announce_changes(changes))
        return max(d.position for d in done), (), ()

    def _page(self, alert_id: int, position: int, target: Target, receiver: Receiver) -> Page:
        link = (
            partner_visit_link(self._dashboard_url, alert_id) if target is Target.HOME_VISIT_PARTNER else None
        )
        recipient = Recipient(
            receiver.name,
            email=receiver.email,
            ntfy_topic=receiver.ntfy_topic,
            webhook_url=receiver.webhook_url,
        )
        return Page(receiver.staff_user_id, position, recipient, link, WHOM_SV[target])
