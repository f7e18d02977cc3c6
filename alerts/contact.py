"""Alarm `contact_request_open`: the patient asked for contact on the box ("Kontakta mig", issue 10)
and nobody has taken the request within the ward's time.

The time is the ward's `escalate_after_minutes`, the one setting a ward already keeps for "how long
may something wait for a person before it escalates" (paging/escalation.py uses it for high alerts):
a second knob would be one more number to set and to disagree with. It is counted from ingest's time
of receipt, never the box's clock (docs/protocol.md, "KitEventBatch").

Medium priority, physiological (IEC 60601-1-8: the condition is the patient's, not the equipment's),
so the lifecycle opens it at once rather than holding it pending like a technical alarm: the ward's
time has already been waited. It is not high: the patient is asking, not deteriorating in a reading,
and the escalator pages the physician on call only for high alerts. A request taken or closed clears
it (care.contact does so in its own transaction; this rule's tick would otherwise within 15 s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from alerts.facts import ContactRequestOpen
from alerts.inputs import ContactRequests, ContactRequestsRequest, Patients
from alerts.model import AlarmCondition, Priority, RuleOutput
from alerts.requests import output_from_masks
from alerts.rule import OnTheTimer, RuleFamily, Scope


def contact_request_open_output(
    patient_ids: Patients,
    *,
    oldest_open_at: np.ndarray,
    source: tuple[str, ...],
    after_s: np.ndarray,
    now: datetime,
) -> RuleOutput:
    """Per patient: fire when the oldest open request has waited at least the ward's time; clear
    otherwise (none open, or the open one still within the time: the one that waited was taken)."""
    waited = now.timestamp() - oldest_open_at
    fire = ~np.isnan(oldest_open_at) & (waited >= after_s)
    known = np.ones(fire.shape, bool)

    def facts(i: int) -> ContactRequestOpen:
        return ContactRequestOpen(waited_s=float(waited[i]), source=source[i])

    return output_from_masks(
        patient_ids=patient_ids, rule=RuleFamily.CONTACT_REQUEST_OPEN.key(), vital=None,
        priority=Priority.MEDIUM, fire=fire, known=known, value=np.where(fire, waited / 60, np.nan),
        threshold=after_s / 60, observed_at=np.full(fire.shape, now.timestamp()), facts=facts, now=now,
        condition=AlarmCondition.PHYSIOLOGICAL,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ContactRequestOpenRule(OnTheTimer):
    family: RuleFamily = RuleFamily.CONTACT_REQUEST_OPEN

    def request(self, scope: Scope) -> ContactRequestsRequest | None:
        return ContactRequestsRequest() if scope.in_care else None

    def evaluate(self, inputs: ContactRequests, now: datetime) -> RuleOutput:
        if not inputs.patients:
            return [], []
        return contact_request_open_output(
            inputs.patients, oldest_open_at=inputs.oldest_open_at, source=inputs.source,
            after_s=inputs.after_s, now=now,
        )  # fmt: skip


# --- scalar twin, used only in tests: "clear" or the priority to raise --------------------------------


def contact_request_open_one(oldest_open_at: float, after_s: float, now_s: float) -> Priority | str:
    if math.isnan(oldest_open_at) or now_s - oldest_open_at < after_s:
        return "clear"
    return Priority.MEDIUM
