"""Hand-offs along the ward's escalation ladder (issue 12): who receives a step, and the one writer of a
hand-off, a skipped step and a receiver taking it.

Every hand-off is three rows in one transaction: the `escalation_handoffs` row (the receiver and their
care provider at that moment), an alert event through alerts.store (the lifecycle's one writer) and an
access-log row (ESCALATION_HANDOFF, entry point ESCALATOR, username ESCALATION_SERVICE) that names the
receiving account, so the database fills in the receiver's care unit, care provider and HSA-id
(migration 0018): the log says the patient's alert was passed to the municipality, under the
municipality. A partner's row also names the grant that allowed it.

Who receives (`receivers`):
* `home_visit_partner`: every partner whose grant in force for the patient (care.sharing.grant_in_force,
  the one decision) has purpose `home_visit`, so may take a visit (care.permissions.partner_may);
* `ward_physician`: the named physician, or every enabled physician of the ward;
* `on_call`: whoever paging.escalator finds on today's rota (its query, handed in as an id).
A receiver the escalator cannot reach (no staff_contacts row) does not count: a step whose receivers
are all unreachable, or who has none, is skipped with its reason.

The partner's "Jag åker på hembesök" (`take_visit`) marks the hand-off taken, ends the others of the
alert and records a `handoff_taken` event: the ladder stops (care.escalation_ladder.due_step). It does
not acknowledge the alert: the ward still sees it open until someone there does.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerts import store
from alerts.lifecycle import HandedOff, HandoffSkipped, HandoffTaken, LifecycleEvent, Refusal, Staff
from care import access_log
from care.escalation_ladder import LadderStep, StepDone, Target
from care.permissions import PartnerAction, Role, partner_may
from care.refusals import RefusalCode, Refused
from care.sharing import GrantInForce, grant_in_force
from storage.steps import Sql, Steps

PROVIDER_KINDS_SV = {
    "region": "region",
    "primary_care": "vårdcentral",
    "municipality": "kommun",
    "private": "privat vårdgivare",
}
SKIP_REASONS_SV = {
    "no_home_visit_grant": "ingen har uppdrag för hembesök hos patienten",
    "no_contact": "mottagaren saknar kontaktuppgift för larm",
    "no_physician": "ingen läkare på avdelningen",
    "nobody_on_call": "ingen i jour",
}
# For the ward's technical alarm when a receiver could not be paged (paging.alarms).
WHOM_SV = {
    Target.HOME_VISIT_PARTNER: "kommunens sjuksköterska",
    Target.WARD_PHYSICIAN: "avdelningens läkare",
    Target.ON_CALL: "jourläkaren",
}


@dataclass(frozen=True, slots=True)
class Receiver:
    """A staff account a step hands the alert to, with its care unit and how to reach it."""

    staff_user_id: int
    name: str
    unit_name: str
    provider_id: str
    provider_kind: str
    email: str | None
    ntfy_topic: str | None
    webhook_url: str | None
    partner_grant_id: int | None = None

    @property
    def reachable(self) -> bool:
        return any((self.email, self.ntfy_topic, self.webhook_url))

    @property
    def where_sv(self) -> str:
        """Like "Hemsjukvården Malmö (kommun)"."""
        return f"{self.unit_name} ({PROVIDER_KINDS_SV.get(self.provider_kind, self.provider_kind)})"


@dataclass(frozen=True, slots=True)
class Handed:
    """One hand-off written: its id and receiver, and the alert event's change (to announce)."""

    handoff_id: int
    receiver: Receiver
    change: store.AlertChange


_RECEIVERS = (
    "SELECT s.id, s.display_name, u.name, u.provider_id, p.kind, c.email, c.ntfy_topic, c.webhook_url"
    " FROM staff_users s JOIN care_units u ON u.id = s.care_unit_id"
    " JOIN care_providers p ON p.id = u.provider_id"
    " LEFT JOIN staff_contacts c ON c.staff_user_id = s.id WHERE s.id = ANY(%s) AND NOT s.disabled"
    " ORDER BY s.display_name, s.id"
)


def staff_receivers(ids: Sequence[int], grants: dict[int, int] | None = None) -> Steps[list[Receiver]]:
    """The enabled accounts among `ids` as receivers (`grants`: partner id -> grant id)."""
    rows = yield Sql(_RECEIVERS, (list(ids),), fetch="all")
    grants = grants or {}
    return [_receiver(r, grants.get(int(r[0]))) for r in rows]


def _receiver(r: Sequence[Any], grant_id: int | None = None) -> Receiver:
    return Receiver(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], grant_id)


def home_visit_grants(patient_id: uuid.UUID, at: datetime) -> Steps[list[GrantInForce]]:
    """The grants in force at `at` that let their partner take a home visit for the patient."""
    rows = yield Sql(
        "SELECT DISTINCT staff_user_id FROM partner_grants WHERE patient_id = %s AND purpose = 'home_visit'"
        " ORDER BY staff_user_id",
        (patient_id,),
        fetch="all",
    )
    grants = []
    for (staff_user_id,) in rows:
        grant = yield from grant_in_force(staff_user_id=staff_user_id, patient_id=patient_id, at=at)
        if grant is not None and partner_may(grant.purpose, PartnerAction.ACKNOWLEDGE_VISIT):
            grants.append(grant)
    return grants


def receivers(
    step: LadderStep, *, ward_id: str, patient_id: uuid.UUID, on_call_id: int | None, at: datetime
) -> Steps[tuple[list[Receiver], str | None]]:
    """Who receives `step` now, and the skip reason (SKIP_REASONS_SV) when nobody can."""
    if step.target is Target.HOME_VISIT_PARTNER:
        grants = yield from home_visit_grants(patient_id, at)
        if not grants:
            return [], "no_home_visit_grant"
        found = yield from staff_receivers(
            [g.staff_user_id for g in grants], {g.staff_user_id: g.id for g in grants}
        )
    elif step.target is Target.WARD_PHYSICIAN:
        rows = yield Sql(
            "SELECT s.id FROM staff_users s JOIN staff_ward_access a ON a.staff_user_id = s.id"
            " WHERE a.ward_id = %s AND s.role = %s AND NOT s.disabled AND (%s::int IS NULL OR s.id = %s)",
            (ward_id, Role.PHYSICIAN.value, step.physician_id, step.physician_id),
            fetch="all",
        )
        if not rows:
            return [], "no_physician"
        found = yield from staff_receivers([int(r[0]) for r in rows])
    else:
        if on_call_id is None:
            return [], "nobody_on_call"
        found = yield from staff_receivers([on_call_id])
    reachable = [r for r in found if r.reachable]
    return reachable, None if reachable else ("no_contact" if found else "no_physician")


def history(alert_id: int, since: datetime) -> Steps[list[StepDone]]:
    """The steps this alert's walk has been through since `since`, one per position."""
    rows = yield Sql(
        "SELECT position, min(handed_at), bool_and(skipped_reason IS NOT NULL), bool_or(taken_at IS NOT NULL)"
        " FROM escalation_handoffs WHERE alert_id = %s AND handed_at >= %s"
        " GROUP BY position ORDER BY position",
        (alert_id, since),
        fetch="all",
    )
    return [StepDone(int(r[0]), r[1], bool(r[2]), bool(r[3])) for r in rows]


def _event(alert_id: int, event: LifecycleEvent, now: datetime) -> Steps[store.AlertChange | None]:
    change = yield from store.act(alert_id, event, now=now, announce=False)
    return None if isinstance(change, Refusal) else change


def pass_on(alert_id: int, now: datetime) -> Steps[None]:
    """The hand-offs still open when the next step is handed the alert."""
    yield Sql(
        "UPDATE escalation_handoffs SET outcome = 'passed_on', outcome_at = %s"
        " WHERE alert_id = %s AND outcome IS NULL",
        (now, alert_id),
    )


def hand_off(
    *,
    alert_id: int,
    patient_id: uuid.UUID,
    ladder_id: int,
    step: LadderStep,
    receiver: Receiver,
    now: datetime,
) -> Steps[Handed | None]:
    """Hand the alert to one receiver: the hand-off, its alert event and its access-log row. None: the
    lifecycle refused (the alert is no longer open and high), and nothing was written."""
    what = "hembesök" if step.target is Target.HOME_VISIT_PARTNER else "bedömning"
    note = f"Överlämnat till {receiver.where_sv}: {receiver.name} ({what}, steg {step.position})"
    detail: dict[str, Any] = {
        "step": step.position, "target": step.target.value, "staff_user_id": receiver.staff_user_id,
        "care_provider_id": receiver.provider_id, "minutes": step.minutes,
    }  # fmt: skip
    change = yield from _event(alert_id, HandedOff(note, detail), now)
    if change is None:
        return None
    (handoff_id,) = yield Sql(
        "INSERT INTO escalation_handoffs (alert_id, ladder_id, position, target, staff_user_id,"
        " care_provider_id, partner_grant_id, handed_at) SELECT %s, %s, %s, %s, s.id, u.provider_id, %s, %s"
        " FROM staff_users s JOIN care_units u ON u.id = s.care_unit_id WHERE s.id = %s RETURNING id",
        (alert_id, ladder_id, step.position, step.target.value, receiver.partner_grant_id, now,
         receiver.staff_user_id),
        fetch="one",
    )  # fmt: skip
    # The receiving account, so the database fills in the receiver's care unit, provider and HSA-id.
    record = access_log.AccessRecord(
        staff_user_id=receiver.staff_user_id, username=access_log.ESCALATION_SERVICE, patient_id=patient_id,
        action=access_log.ESCALATION_HANDOFF, entry_point=access_log.ESCALATOR,
        context=f"alert:{alert_id} handoff:{handoff_id} step:{step.position}",
        partner_grant_id=receiver.partner_grant_id,
    )  # fmt: skip
    yield Sql(access_log.INSERT_ACCESS_LOG, record.row())
    return Handed(int(handoff_id), receiver, change)


def skip(
    *, alert_id: int, ladder_id: int, step: LadderStep, reason: str, now: datetime
) -> Steps[store.AlertChange | None]:
    """A step with nobody to receive it: its row and an alert event saying why."""
    note = f"Steg {step.position} ({step.label_sv.lower()}) hoppades över: {SKIP_REASONS_SV[reason]}"
    detail = {"step": step.position, "target": step.target.value, "reason": reason}
    change = yield from _event(alert_id, HandoffSkipped(note, detail), now)
    if change is None:
        return None
    yield Sql(
        "INSERT INTO escalation_handoffs (alert_id, ladder_id, position, target, handed_at, skipped_reason,"
        " outcome, outcome_at) VALUES (%s, %s, %s, %s, %s, %s, 'skipped', %s)",
        (alert_id, ladder_id, step.position, step.target.value, now, reason, now),
    )
    return change


def close_settled(now: datetime) -> Steps[int]:
    """Hand-offs still open whose alert the ward acknowledged or resolved: their outcome. A receiving
    physician who acknowledged the alert (from the message's link) took it."""
    rows = yield Sql(
        "UPDATE escalation_handoffs h SET outcome = CASE"
        " WHEN a.acknowledged_by = h.staff_user_id THEN 'taken'"
        " WHEN a.state = 'resolved' THEN 'resolved' ELSE 'acknowledged' END,"
        " outcome_at = coalesce(a.acknowledged_at, a.resolved_at, %s),"
        " taken_at = CASE WHEN a.acknowledged_by = h.staff_user_id THEN a.acknowledged_at END,"
        " taken_by = CASE WHEN a.acknowledged_by = h.staff_user_id THEN a.acknowledged_by END"
        " FROM alerts a WHERE a.id = h.alert_id AND h.outcome IS NULL AND a.state <> 'open' RETURNING h.id",
        (now,),
        fetch="all",
    )
    return len(rows)


# --- the receiver's side: the partner's visit page ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VisitAccess:
    """A partner's way to one alert: the grant in force and the newest hand-off to them."""

    alert_id: int
    patient_id: uuid.UUID
    ward_id: str
    state: str
    grant: GrantInForce
    handoff_id: int
    position: int
    handed_at: datetime
    taken_at: datetime | None
    minutes: int | None  # the step's minutes: "hembesök inom N min"


def visit_access(
    *, alert_id: int, staff_user_id: int, action: PartnerAction, at: datetime
) -> Steps[VisitAccess]:
    """Whether this partner may see (or act on) the alert: a grant in force for its patient whose
    purpose allows `action` and is home_visit, and a hand-off of this alert to them. One refusal for
    every way of not (NO_HANDOFF): the page answers 404 alike."""
    row = yield Sql("SELECT patient_id, ward_id, state FROM alerts WHERE id = %s", (alert_id,), fetch="one")
    refused = Refused(RefusalCode.NO_HANDOFF, alert_id=alert_id, staff_user_id=staff_user_id)
    if row is None:
        raise refused
    grant = yield from grant_in_force(staff_user_id=staff_user_id, patient_id=row[0], at=at)
    if grant is None or grant.purpose != "home_visit" or not partner_may(grant.purpose, action):
        raise refused
    handoff = yield Sql(
        "SELECT h.id, h.position, h.handed_at, h.taken_at, t.minutes FROM escalation_handoffs h"
        " LEFT JOIN escalation_ladder_steps t ON t.ladder_id = h.ladder_id AND t.position = h.position"
        " WHERE h.alert_id = %s AND h.staff_user_id = %s ORDER BY h.handed_at DESC, h.id DESC LIMIT 1",
        (alert_id, staff_user_id),
        fetch="one",
    )
    if handoff is None:
        raise refused
    return VisitAccess(alert_id, row[0], row[1], row[2], grant, *handoff)


def take_visit(
    *, alert_id: int, staff_user_id: int, username: str, now: datetime, client_address: str | None
) -> Steps[VisitAccess]:
    """ "Jag åker på hembesök": the partner takes the hand-off. Taking it twice changes nothing more;
    on an alert already resolved it is refused by the lifecycle and nothing is written."""
    access = yield from visit_access(
        alert_id=alert_id, staff_user_id=staff_user_id, action=PartnerAction.ACKNOWLEDGE_VISIT, at=now
    )
    if access.taken_at is not None:
        return access
    names = yield Sql(_RECEIVERS, ([staff_user_id],), fetch="one")
    receiver = _receiver(names) if names else None
    who = f"{receiver.name}, {receiver.where_sv}" if receiver else username
    detail = {"step": access.position, "handoff_id": access.handoff_id, "staff_user_id": staff_user_id}
    taken = HandoffTaken(Staff(staff_user_id, username), f"Hembesök tagen av {who}", detail)
    change = yield from _event(alert_id, taken, now)
    if change is None:
        raise Refused(RefusalCode.NO_HANDOFF, alert_id=alert_id, staff_user_id=staff_user_id)
    yield Sql(
        "UPDATE escalation_handoffs SET taken_at = %s, taken_by = %s, outcome = 'taken', outcome_at = %s"
        " WHERE id = %s",
        (now, staff_user_id, now, access.handoff_id),
    )
    yield Sql(
        "UPDATE escalation_handoffs SET outcome = 'stopped', outcome_at = %s WHERE alert_id = %s"
        " AND outcome IS NULL",
        (now, alert_id),
    )
    record = access_log.AccessRecord(
        staff_user_id=staff_user_id, username=username, patient_id=access.patient_id,
        action=PartnerAction.ACKNOWLEDGE_VISIT.value, context=f"alert:{alert_id} handoff:{access.handoff_id}",
        entry_point=access_log.PARTNER, client_address=client_address, partner_grant_id=access.grant.id,
    )  # fmt: skip
    yield Sql(access_log.INSERT_ACCESS_LOG, record.row())
    yield from store.announce_changes([change])
    return VisitAccess(
        access.alert_id, access.patient_id, access.ward_id, access.state, access.grant, access.handoff_id,
        access.position, access.handed_at, now, access.minutes,
    )  # fmt: skip
