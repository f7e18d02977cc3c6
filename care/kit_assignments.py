"""Lending a kit to a patient over a bounded time, taking it back, and its stock state (issue 11).

A kit is lent over [starts_at, ends_at) (migration 0016, `kit_assignments`); ingest puts each reading
on the patient whose assignment covers the reading's effective time (ingest.classify), so readings
still queued in a box when it changes hands stay with the patient who took them. Every way a kit
changes hands goes through here: `lend` (also `care.enrolment.enrol`), `take_back`, and
`end_at_discharge` (`care.enrolment.discharge`). They keep `gateways.patient_id` (the current holder,
read by the overview, the engine's technical rules and care.kit) and `gateways.kit_state`
(care.kit_states, the one transition function) in step with the assignment, in one transaction.

When an assignment starts and ends:
- It ends at the moment the take-back (or discharge) is recorded, never back-dated: an open interval
  only ever gets an end later than anything ingest has already read of it, which is what lets ingest
  cache intervals (ingest/directory.py).
- It starts when the lend is recorded, reaching back LEND_CLOCK_LEEWAY (but never before the kit's
  previous assignment ended): a home device's clock may be as far behind as the contract tolerates it
  ahead (MAX_CLOCK_SKEW), and the nurse records the lend at the bedside just after the first reading.
  Staff may name an earlier start (a lend recorded late); an overlap with the kit's previous
  assignment is refused (the table's exclusion constraint), so one kit is never two patients' at once.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from care import permissions
from care.access_log import OPERATOR
from care.acting import ActingStaff, Origin, acting_staff, audited, check_ward_access, staff_for_patient
from care.kit import config_changed
from care.kit_states import LENDABLE, KitEvent, KitState, next_state
from care.permissions import EquipmentAction
from care.refusals import RefusalCode, Refused
from core.contract import MAX_CLOCK_SKEW
from core.events import VitalsChanged
from storage.steps import Notify, Sql, Steps

ASSIGN = EquipmentAction.ASSIGN_KIT
STOCK = EquipmentAction.MANAGE_KIT_STOCK
LEND_CLOCK_LEEWAY = MAX_CLOCK_SKEW
# How far back staff may date a lend they record late.
LEND_BACKDATE_MAX = timedelta(days=7)
_KIT_ID = re.compile(r"[a-z0-9][a-z0-9-]{2,62}")  # care.enrolment.GATEWAY_ID, migration 0001's CHECK
END_TAKEN_BACK = "taken_back"
END_DISCHARGED = "discharged"


@dataclass(frozen=True, slots=True)
class Lent:
    assignment_id: int
    gateway_id: str
    patient_id: uuid.UUID
    ward_id: str
    starts_at: datetime


@dataclass(frozen=True, slots=True)
class TakenBack:
    assignment_id: int
    gateway_id: str
    patient_id: uuid.UUID
    ward_id: str
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class KitStateChanged:
    gateway_id: str
    state: KitState


def _locked_kit(gateway_id: str) -> Steps[tuple[KitState, uuid.UUID | None]]:
    """The kit's state and holder, its row locked for the change (changes of one kit are serial). An id
    that cannot be a kit's (gateways' CHECK) names no kit: refused before it reaches the database."""
    if not _KIT_ID.fullmatch(gateway_id):
        raise Refused(RefusalCode.NO_KIT, gateway_id=gateway_id[:64])
    row = yield Sql(
        "SELECT kit_state, patient_id FROM gateways WHERE id = %s FOR UPDATE", (gateway_id,), fetch="one"
    )
    if row is None:
        raise Refused(RefusalCode.NO_KIT, gateway_id=gateway_id[:64])
    return KitState(row[0]), row[1]


def lend(
    *,
    gateway_id: str,
    patient_id: uuid.UUID,
    by: str | None,
    origin: Origin | None,
    starts_at: datetime | None = None,
) -> Steps[Lent]:
    """Lend kit `gateway_id` to the patient, `by` a nurse or physician of the patient's ward
    (ASSIGN_KIT). `by` None is the operator's enrolment (care.enrolment.enrol), which checked the rest."""
    staff: ActingStaff | None = None
    if by is not None:
        staff, ward_id = yield from staff_for_patient(by, ASSIGN, patient_id)
    else:
        ward_row = yield Sql("SELECT ward_id FROM patients WHERE id = %s", (patient_id,), fetch="one")
        if ward_row is None:
            raise Refused(RefusalCode.NO_PATIENT, patient_id=patient_id)
        ward_id = str(ward_row[0])
    # One lend to a patient at a time: a second (a double click, another kit from a second tab) waits
    # for the first to end, then finds the kit held, never the open-assignment index's error.
    yield Sql("SELECT pg_advisory_xact_lock(hashtextextended('hemma lend ' || %s::text, 0))", (patient_id,))
    state, _holder = yield from _locked_kit(gateway_id)
    held = yield Sql(
        "SELECT gateway_id FROM kit_assignments WHERE patient_id = %s AND ends_at IS NULL",
        (patient_id,),
        fetch="one",
    )
    if held is not None:
        raise Refused(RefusalCode.PATIENT_HAS_KIT, patient_id=patient_id, gateway_id=str(held[0]))
    next_state(state, KitEvent.LEND)
    now_row = yield Sql("SELECT now()", (), fetch="one")
    now: datetime = now_row[0]
    if starts_at is not None and not now - LEND_BACKDATE_MAX <= starts_at <= now:
        raise Refused(RefusalCode.KIT_LEND_START, days=LEND_BACKDATE_MAX.days)
    try:
        row = yield Sql(
            "INSERT INTO kit_assignments (gateway_id, patient_id, ward_id, starts_at, assigned_by)"
            " SELECT %(kit)s, %(patient)s, %(ward)s, COALESCE(%(start)s, greatest(%(now)s - %(leeway)s,"
            " (SELECT max(ends_at) FROM kit_assignments WHERE gateway_id = %(kit)s))), %(by)s"
            " RETURNING id, starts_at",
            {
                "kit": gateway_id,
                "patient": patient_id,
                "ward": ward_id,
                "start": starts_at,
                "now": now,
                "leeway": LEND_CLOCK_LEEWAY,
                "by": staff.id if staff else None,
            },
            fetch="one",
        )
    except psycopg.errors.ExclusionViolation:
        raise Refused(RefusalCode.KIT_ASSIGNMENT_OVERLAP, gateway_id=gateway_id) from None
    yield Sql(
        "UPDATE gateways SET patient_id = %s, kit_state = 'assigned', kit_state_at = now() WHERE id = %s",
        (patient_id, gateway_id),
    )
    # The patient's plan and reminders become the kit's schedule.
    yield from config_changed(gateway_id=gateway_id)
    yield from audited(origin, staff=staff, username=by or OPERATOR, patient_id=patient_id,
                       action=ASSIGN.value, context=f"lend kit:{gateway_id}")  # fmt: skip
    yield Notify(VitalsChanged(ward_id, (patient_id,)))
    return Lent(int(row[0]), gateway_id, patient_id, ward_id, row[1])


def take_back(
    *,
    by: str,
    origin: Origin | None,
    gateway_id: str | None = None,
    patient_id: uuid.UUID | None = None,
) -> Steps[TakenBack]:
    """Take the kit back from the patient holding it (named by kit or by patient), now: its
    assignment ends, the kit is `returned` until cleaned. ASSIGN_KIT, staff of the patient's ward."""
    if (gateway_id is None) == (patient_id is None):
        raise ValueError("name the kit by gateway_id or by patient_id")
    if patient_id is None:
        staff = yield from acting_staff(by, ASSIGN)
        assert gateway_id is not None
        _state, holder = yield from _locked_kit(gateway_id)
        if holder is None:
            raise Refused(RefusalCode.KIT_NOT_LENT, gateway_id=gateway_id[:64])
        ward = yield Sql("SELECT ward_id FROM patients WHERE id = %s", (holder,), fetch="one")
        yield from check_ward_access(staff, str(ward[0]), ASSIGN)
    else:
        # A discharged patient's kit was taken back at the discharge; the check says so.
        staff, _ward = yield from staff_for_patient(by, ASSIGN, patient_id)
    ended = yield from _end(staff, END_TAKEN_BACK, gateway_id=gateway_id, patient_id=patient_id)
    if ended is None:
        raise Refused(RefusalCode.PATIENT_WITHOUT_KIT, patient_id=patient_id)
    yield from audited(origin, staff=staff, username=by, patient_id=ended.patient_id, action=ASSIGN.value,
                       context=f"take back kit:{ended.gateway_id}")  # fmt: skip
    yield Notify(VitalsChanged(ended.ward_id, (ended.patient_id,)))
    return ended


def end_at_discharge(patient_id: uuid.UUID, staff: ActingStaff | None) -> Steps[TakenBack | None]:
    """The discharge's part (care.enrolment.discharge, whose role check and access_log row cover it):
    the patient's kit assignment ends now and the kit is `returned`. None: the patient held no kit."""
    return (yield from _end(staff, END_DISCHARGED, gateway_id=None, patient_id=patient_id))


def _end(
    staff: ActingStaff | None, reason: str, *, gateway_id: str | None, patient_id: uuid.UUID | None
) -> Steps[TakenBack | None]:
    row = yield Sql(
        "SELECT id, gateway_id, patient_id, ward_id FROM kit_assignments WHERE ends_at IS NULL"
        " AND (gateway_id = %s OR patient_id = %s) FOR UPDATE",
        (gateway_id, patient_id),
        fetch="one",
    )
    if row is None:
        return None
    assignment_id, kit, holder, ward_id = int(row[0]), str(row[1]), row[2], str(row[3])
    state, _ = yield from _locked_kit(kit)
    after = next_state(state, KitEvent.TAKE_BACK)
    # An assignment started by a lend recorded with the clock leeway may start after now() in this
    # transaction only if it was made in it; the end is never before its start (the table's CHECK).
    ended = yield Sql(
        "UPDATE kit_assignments SET ends_at = greatest(now(), starts_at + interval '1 microsecond'),"
        " ended_by = %s, end_reason = %s WHERE id = %s RETURNING ends_at",
        (staff.id if staff else None, reason, assignment_id),
        fetch="one",
    )
    yield Sql(
        "UPDATE gateways SET patient_id = NULL, kit_state = %s, kit_state_at = now() WHERE id = %s",
        (after.value, kit),
    )
    # The patient's plan leaves the kit's schedule; its devices stay registered for the next patient.
    yield from config_changed(gateway_id=kit)
    return TakenBack(assignment_id, kit, holder, ward_id, ended[0])


def _stock_change(gateway_id: str, event: KitEvent, by: str) -> Steps[KitStateChanged]:
    """A stock step of a kit lent to nobody: no patient's data, so no access_log row."""
    yield from acting_staff(by, STOCK)
    state, _ = yield from _locked_kit(gateway_id)
    after = next_state(state, event)
    yield Sql(
        "UPDATE gateways SET kit_state = %s, kit_state_at = now() WHERE id = %s", (after.value, gateway_id)
    )
    return KitStateChanged(gateway_id, after)


def mark_cleaned(*, gateway_id: str, by: str) -> Steps[KitStateChanged]:
    """A returned kit has been cleaned (MANAGE_KIT_STOCK): it may be lent again."""
    return (yield from _stock_change(gateway_id, KitEvent.CLEANED, by))


def back_in_stock(*, gateway_id: str, by: str) -> Steps[KitStateChanged]:
    """A cleaned kit goes back on the shelf (MANAGE_KIT_STOCK)."""
    return (yield from _stock_change(gateway_id, KitEvent.TO_STOCK, by))


def register_kit(*, gateway_id: str, by: str | None) -> Steps[KitStateChanged]:
    """A new kit joins the stock (MANAGE_KIT_STOCK; `by` None: an operator's enrolment or seeding)."""
    if not _KIT_ID.fullmatch(gateway_id):
        raise Refused(RefusalCode.KIT_ID_FORM, gateway_id=gateway_id[:64])
    if by is not None:
        yield from acting_staff(by, STOCK)
    row = yield Sql(
        "INSERT INTO gateways (id) VALUES (%s) ON CONFLICT (id) DO NOTHING RETURNING id",
        (gateway_id,),
        fetch="one",
    )
    if row is None and by is not None:
        raise Refused(RefusalCode.KIT_EXISTS, gateway_id=gateway_id)
    return KitStateChanged(gateway_id, KitState.IN_STOCK)


def available_kits() -> Steps[tuple[str, ...]]:
    """The kits a patient can be given now (in stock or cleaned), for the admission page's choice."""
    rows = yield Sql(
        "SELECT id FROM gateways WHERE kit_state = ANY(%s) ORDER BY id",
        (sorted(s.value for s in LENDABLE),),
        fetch="all",
    )
    return tuple(str(r[0]) for r in rows)


# --- what staff see: the kits, their state, holder and history -----------------------------------

# Access-log action of a kit list that shows patients (one row per patient shown).
LIST_KITS = "list_kits"
HISTORY_SHOWN = 5


@dataclass(frozen=True, slots=True)
class AssignmentView:
    patient_id: uuid.UUID | None  # None: a patient of a ward the reader may not see
    patient_name: str | None
    ward_id: str
    starts_at: datetime
    ends_at: datetime | None
    end_reason: str | None


@dataclass(frozen=True, slots=True)
class KitListing:
    gateway_id: str
    state: KitState
    state_since: datetime
    ward_id: str | None  # the ward of its latest assignment (None: never lent)
    history: tuple[AssignmentView, ...]  # newest first, the open one (if lent) first of all

    @property
    def holder(self) -> AssignmentView | None:
        current = self.history[0] if self.history else None
        return current if current is not None and current.ends_at is None else None


def list_kits(*, by: str, origin: Origin | None) -> Steps[list[KitListing]]:
    """The kits `by` may see: an admin every kit; staff the kits last lent in their wards and every
    kit that can be lent. Patients are named only for the reader's wards, each in the access log."""
    staff = yield from acting_staff(by, STOCK)
    wards = yield Sql(
        "SELECT ward_id FROM staff_ward_access WHERE staff_user_id = %s", (staff.id,), fetch="all"
    )
    mine = {str(r[0]) for r in wards}
    rows = yield Sql(
        "SELECT g.id, g.kit_state, g.kit_state_at, a.patient_id, p.display_name, a.ward_id, a.starts_at,"
        " a.ends_at, a.end_reason FROM gateways g LEFT JOIN LATERAL (SELECT * FROM kit_assignments k"
        " WHERE k.gateway_id = g.id ORDER BY k.starts_at DESC LIMIT %s) a ON true"
        " LEFT JOIN patients p ON p.id = a.patient_id ORDER BY g.id, a.starts_at DESC",
        (HISTORY_SHOWN,),
        fetch="all",
    )
    kits: dict[str, KitListing] = {}
    history: dict[str, list[AssignmentView]] = {}
    for kit, state, since, patient, name, ward, starts, ends, reason in rows:
        if kit not in kits:
            kits[kit] = KitListing(str(kit), KitState(state), since, ward, ())
            history[kit] = []
        if patient is not None:
            seen = permissions.may_see_ward(staff.role, mine, str(ward))
            history[kit].append(AssignmentView(patient if seen else None, name if seen else None, str(ward),
                                               starts, ends, reason))  # fmt: skip
    shown: list[KitListing] = []
    for kit, listing in kits.items():
        visible = (
            staff.role == "admin"
            or listing.state in LENDABLE
            or listing.ward_id is None
            or listing.ward_id in mine
        )
        if visible:
            shown.append(KitListing(listing.gateway_id, listing.state, listing.state_since, listing.ward_id,
                                    tuple(history[kit])))  # fmt: skip
    named = sorted({a.patient_id for k in shown for a in k.history if a.patient_id is not None}, key=str)
    for patient_id in named:
        yield from audited(origin, staff=staff, username=by, patient_id=patient_id, action=LIST_KITS,
                           context="kits")  # fmt: skip
    return shown
