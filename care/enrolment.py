"""Wards, and a patient's care episode: enrolment with a kit (gateway) and discharge.

Wards and enrolment are administration, run by an operator (`hemma ward add`, `hemma patient enrol`)
and by `hemma demo`. A discharge is a clinical decision with an outcome (issue 11), taken by a nurse or
physician from the CLI (`hemma patient discharge`) or the record.
Refusals name the field, never its value: a name, personal number or birth year is
patient data and must not reach a terminal, a log or a CI transcript.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from alerts import store
from alerts.lifecycle import Staff as AlertStaff
from alerts.lifecycle import StaffResolved
from alerts.model import AlertClear
from care.access_log import ENROL_PATIENT, OPERATOR
from care.acting import (
    ActingStaff,
    CareSteps,
    Origin,
    audited,
    execute,
    in_care,
    patient_ward,
    staff_for_patient,
)
from care.kit_assignments import end_at_discharge, lend, register_kit
from care.messages import clean_text
from care.permissions import Action
from care.refusals import RefusalCode, Refused
from core.events import VitalsChanged
from storage.steps import Notify, Sql, Steps

# The shapes the tables' CHECKs allow (migration 0001), checked first so that a refusal names the
# field and never echoes a failing row (which would carry the patient's name and personal number).
WARD_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
GATEWAY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")
BIRTH_YEAR_MIN = 1890
# How long an open high alert may stay unacknowledged before the on-call physician is paged.
ESCALATE_AFTER_MINUTES = (1, 120)


@dataclass(frozen=True, slots=True)
class EnrolledPatient:
    patient_id: uuid.UUID
    ward_id: str
    gateway_id: str


def check_ward(ward_id: str, name: str, escalate_after_minutes: int | None) -> None:
    if not WARD_ID.fullmatch(ward_id):
        raise Refused(RefusalCode.WARD_ID_FORM, ward_id=ward_id)
    if not name.strip():
        raise Refused(RefusalCode.WARD_NAME_EMPTY)
    low, high = ESCALATE_AFTER_MINUTES
    if escalate_after_minutes is not None and not low <= escalate_after_minutes <= high:
        raise Refused(RefusalCode.ESCALATION_MINUTES, minutes=escalate_after_minutes)


def save_ward(ward_id: str, name: str, *, escalate_after_minutes: int | None = None) -> Steps[None]:
    """Create or rename a ward. `escalate_after_minutes` (ward policy; default 5 when the ward is
    created) None leaves an existing ward's policy as it is."""
    check_ward(ward_id, name, escalate_after_minutes)
    yield Sql(
        "INSERT INTO wards (id, name, escalate_after_minutes) VALUES (%s, %s, COALESCE(%s, 5))"
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,"
        " escalate_after_minutes = COALESCE(%s, wards.escalate_after_minutes)",
        (ward_id, name, escalate_after_minutes, escalate_after_minutes),
    )


def check_enrolment(display_name: str, gateway_id: str, birth_year: int | None, *, this_year: int) -> None:
    if not display_name.strip():
        raise Refused(RefusalCode.PATIENT_NAME_EMPTY)
    if not GATEWAY_ID.fullmatch(gateway_id):
        raise Refused(RefusalCode.KIT_ID_FORM, gateway_id=gateway_id)
    if birth_year is not None and not BIRTH_YEAR_MIN <= birth_year <= this_year:
        raise Refused(RefusalCode.BIRTH_YEAR, minimum=BIRTH_YEAR_MIN, maximum=this_year)


def enrol(
    *,
    ward_id: str,
    display_name: str,
    gateway_id: str,
    personal_number: str | None = None,
    birth_year: int | None = None,
    care_reason: str | None = None,
    origin: Origin | None,
) -> Steps[EnrolledPatient]:
    """Admit a patient to a virtual ward and lend them a kit. Idempotent per kit and patient."""
    check_enrolment(display_name, gateway_id, birth_year, this_year=datetime.now(UTC).year)
    ward = yield Sql("SELECT 1 FROM wards WHERE id = %s", (ward_id,), fetch="one")
    if ward is None:
        raise Refused(RefusalCode.NO_WARD, ward_id=ward_id)
    row = yield Sql(
        "SELECT g.patient_id, p.display_name = %s FROM gateways g JOIN patients p ON p.id = g.patient_id"
        " WHERE g.id = %s AND p.discharged_at IS NULL",
        (display_name, gateway_id),
        fetch="one",
    )
    if row is not None:
        if not row[1]:
            raise Refused(RefusalCode.KIT_LENT, gateway_id=gateway_id)
        # Enrolled already (a repeated command): recorded again, as the operator did act.
        yield from audited(origin, staff=None, username=OPERATOR, patient_id=row[0], action=ENROL_PATIENT,
                           context=f"gateway:{gateway_id}")  # fmt: skip
        return EnrolledPatient(row[0], ward_id, gateway_id)
    if personal_number is not None:
        taken = yield Sql(
            "SELECT id, discharged_at FROM patients WHERE personal_number = %s",
            (personal_number,),
            fetch="one",
        )
        # patients.personal_number is UNIQUE: one patient row per person, discharged ones included.
        if taken is not None and taken[1] is None:
            raise Refused(RefusalCode.PERSONAL_NUMBER_ENROLLED, patient_id=taken[0])
        if taken is not None:
            raise Refused(RefusalCode.PERSONAL_NUMBER_DISCHARGED, patient_id=taken[0],
                          discharged_on=f"{taken[1]:%Y-%m-%d}")  # fmt: skip
    created = yield Sql(
        "INSERT INTO patients (ward_id, display_name, personal_number, birth_year, care_reason)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (ward_id, display_name, personal_number, birth_year, care_reason),
        fetch="one",
    )
    patient_id = created[0]
    # --- the kit (issue 11, care.kit_assignments): registered if new, then lent from now on ---
    yield from register_kit(gateway_id=gateway_id, by=None)
    yield from lend(gateway_id=gateway_id, patient_id=patient_id, by=None, origin=None)
    # --- end of the kit's part ---
    yield from audited(origin, staff=None, username=OPERATOR, patient_id=patient_id, action=ENROL_PATIENT,
                       context=f"gateway:{gateway_id}")  # fmt: skip
    yield Notify(VitalsChanged(ward_id, (patient_id,)))
    return EnrolledPatient(patient_id, ward_id, gateway_id)


# How a home care episode ended (patients.discharge_outcome's CHECK, migration 0014), in the ward's words.
OUTCOMES_SV = {
    "stayed_home": "Stannar hemma, vården avslutad",
    "transferred_to_hospital": "Överflyttad till sjukhus",
    "died": "Avliden",
    "other": "Annat",
}
MAX_DISCHARGE_NOTE = 500
# What an open contact request is closed with when its patient is discharged.
CLOSED_AT_DISCHARGE = "Utskriven"


@dataclass(frozen=True, slots=True)
class Discharged:
    patient_id: uuid.UUID
    ward_id: str
    gateway_id: str | None  # the kit freed (None: the patient had none)
    outcome: str
    discharged_at: datetime
    alert_ids: tuple[int, ...]  # the live alerts that ended with the episode
    contact_request_ids: tuple[int, ...]  # the requests closed "Utskriven"


def check_discharge(outcome: object, note: object) -> tuple[str, str | None]:
    """(outcome, note stripped or None): the outcome one of OUTCOMES_SV, the note ≤ MAX_DISCHARGE_NOTE."""
    if not isinstance(outcome, str) or outcome not in OUTCOMES_SV:
        raise Refused(RefusalCode.DISCHARGE_OUTCOME, outcome=str(outcome)[:40], known=tuple(OUTCOMES_SV))
    if not isinstance(note, str):
        return outcome, None
    # Stripped, NFC, no control or direction-override characters (the one check of staff free text).
    text = clean_text(
        note, maximum=MAX_DISCHARGE_NOTE, empty=None, too_long=RefusalCode.DISCHARGE_NOTE_TOO_LONG
    )
    return outcome, text


def _patient_of_kit(gateway_id: str) -> Steps[uuid.UUID]:
    row = yield Sql(
        "SELECT p.id FROM gateways g JOIN patients p ON p.id = g.patient_id"
        " WHERE g.id = %s AND p.discharged_at IS NULL",
        (gateway_id,),
        fetch="one",
    )
    if row is None:
        raise Refused(RefusalCode.NO_PATIENT_WITH_KIT, gateway_id=gateway_id)
    return uuid.UUID(str(row[0]))


def discharge(
    *,
    patient_id: uuid.UUID | None = None,
    gateway_id: str | None = None,
    outcome: str | None,
    note: str | None = None,
    by: str | None,
    origin: Origin | None,
    now: datetime | None = None,
) -> CareSteps[Discharged]:
    """End the patient's home care episode with its outcome (the patient named by id, or as the holder
    of kit `gateway_id`), `by` a nurse or physician (care.permissions.Action.DISCHARGE_PATIENT).

    In the one transaction: every live alert of the patient ends through the alert store (so the ward's
    alarm and the escalation stop at once), the monitoring plan and the questionnaire schedules are
    cleared (no missing-data alarms, no reminders), open contact requests are closed "Utskriven" by
    `by`, the patient app's devices are revoked, the kit's assignment ends now and the kit is returned
    (care.kit_assignments: cleaned before the next patient), the access log records it, and the ward's
    overview drops the patient. The record (readings, alerts and their history, answers, messages, the
    closed requests, the access log) stays. Readings the kit took before now still arrive onto this
    patient (without alerts); later ones are dead-lettered as lent to nobody at their time.

    `by` None is only for a program seeding a database (`origin` None: tests, `hemma demo`): nobody is
    named, and open contact requests stay as they were (their CHECK wants who closed them).
    """
    if by is None and origin is not None:
        raise ValueError("a discharge from an entry point names the staff member who discharges")
    chosen, text = check_discharge(outcome, note)
    now = now or datetime.now(UTC)
    if patient_id is None:
        if gateway_id is None:
            raise ValueError("discharge needs the patient or the kit")
        patient_id = yield from _patient_of_kit(gateway_id)
    # One discharge of a patient at a time: the row is locked for the update below before the checks
    # read it FOR SHARE (care.acting.patient_ward). Two discharges both holding the shared lock would
    # deadlock on the update (a double click: one answered 500); now the second waits, then is refused
    # as discharged.
    yield Sql("SELECT 1 FROM patients WHERE id = %s FOR NO KEY UPDATE", (patient_id,))
    staff: ActingStaff | None = None
    if by is not None:
        staff, ward_id = yield from staff_for_patient(by, Action.DISCHARGE_PATIENT, patient_id)
    else:
        ward_id, discharged_at = yield from patient_ward(patient_id)
        in_care(patient_id, discharged_at)
    # Locked for the episode's end: a concurrent discharge waits here and is then refused as discharged.
    row = yield Sql(
        "UPDATE patients SET discharged_at = now(), discharge_outcome = %s, discharge_note = %s,"
        " discharged_by = %s WHERE id = %s AND discharged_at IS NULL RETURNING discharged_at",
        (chosen, text, staff.id if staff else None, patient_id),
        fetch="one",
    )
    if row is None:
        raise Refused(RefusalCode.PATIENT_DISCHARGED, patient_id=patient_id, discharged_on=f"{now:%Y-%m-%d}")
    alert_ids = yield from _end_alerts(patient_id, ward_id, staff, now)
    yield Sql("DELETE FROM monitoring_plans WHERE patient_id = %s", (patient_id,))
    yield Sql("DELETE FROM questionnaire_schedules WHERE patient_id = %s", (patient_id,))
    closed: list[Any] = []
    if staff is not None:
        closed = yield Sql(
            "UPDATE contact_requests SET state = 'closed', taken_by = COALESCE(taken_by, %(by)s),"
            " taken_at = COALESCE(taken_at, now()), closed_by = %(by)s, closed_at = now(),"
            " close_note = %(note)s WHERE patient_id = %(patient)s AND state <> 'closed' RETURNING id",
            {"by": staff.id, "note": CLOSED_AT_DISCHARGE, "patient": patient_id},
            fetch="all",
        )
    # The patient app's devices end with the episode (care.patient_access refuses a discharged
    # patient's token anyway; this says so on the record).
    yield Sql(
        "UPDATE patient_devices SET revoked_at = now(), revoked_reason = 'discharged',"
        " link_sha256 = NULL WHERE patient_id = %s AND revoked_at IS NULL",
        (patient_id,),
    )
    # --- the kit (issue 11, care.kit_assignments): its assignment ends now, the kit is returned ---
    ended = yield from end_at_discharge(patient_id, staff)
    kit_id = ended.gateway_id if ended else None
    # --- end of the kit's part ---
    yield from audited(origin, staff=staff, username=by or OPERATOR, patient_id=patient_id,
                       action=Action.DISCHARGE_PATIENT,
                       context=f"outcome:{chosen}" + (f" gateway:{kit_id}" if kit_id else ""))  # fmt: skip
    yield Notify(VitalsChanged(ward_id, (patient_id,)))
    return Discharged(
        patient_id, ward_id, kit_id, chosen, row[0], alert_ids, tuple(int(r[0]) for r in closed)
    )


def _end_alerts(
    patient_id: uuid.UUID, ward_id: str, staff: ActingStaff | None, now: datetime
) -> Steps[tuple[int, ...]]:
    """Every live alert of the patient ends, through alerts.store (the one writer of the alerts
    tables): open and acknowledged ones are resolved by the discharging clinician with the note
    "Utskriven" (a high alert is latched until a person acts, alerts.lifecycle, and this is that act);
    pending ones are withdrawn. The escalator pages open high alerts only, so nobody is paged for a
    patient who has left the ward."""
    live = yield Sql(
        "SELECT id, rule, observed_at, state FROM alerts WHERE patient_id = %s AND state <> 'resolved'"
        " ORDER BY id FOR UPDATE",
        (patient_id,),
        fetch="all",
    )
    ended: list[int] = []
    clears = []
    for alert_id, rule, observed_at, state in live:
        if staff is not None and state in ("open", "acknowledged"):
            event = StaffResolved(AlertStaff(staff.id, staff.username), CLOSED_AT_DISCHARGE)
            change = yield from store.act(int(alert_id), event, now=now)
            if isinstance(change, store.AlertChange):
                ended.append(change.alert_id)
        else:
            # Newer than anything the engine saw for the alert, whatever its clock said.
            clears.append(AlertClear(patient_id, rule, max(now, observed_at + timedelta(microseconds=1))))
    changes = yield from store.apply_steps([], clears, {patient_id: ward_id}, now=now)
    return tuple(ended) + tuple(c.alert_id for c in changes if c.state.value == "resolved")


# --- on a synchronous connection (CLI, `hemma demo`, benchmarks, tests) ---------------------------------


def ensure_ward(
    conn: psycopg.Connection[Any], ward_id: str, name: str, *, escalate_after_minutes: int | None = None
) -> None:
    execute(conn, save_ward(ward_id, name, escalate_after_minutes=escalate_after_minutes))


def enrol_patient(
    conn: psycopg.Connection[Any],
    *,
    ward_id: str,
    display_name: str,
    gateway_id: str,
    personal_number: str | None = None,
    birth_year: int | None = None,
    care_reason: str | None = None,
    origin: Origin | None = None,
) -> EnrolledPatient:
    return execute(conn, enrol(ward_id=ward_id, display_name=display_name, gateway_id=gateway_id,
                               personal_number=personal_number, birth_year=birth_year,
                               care_reason=care_reason, origin=origin))  # fmt: skip


def discharge_patient(
    conn: psycopg.Connection[Any],
    *,
    gateway_id: str | None = None,
    patient_id: uuid.UUID | None = None,
    outcome: str = "stayed_home",
    note: str | None = None,
    by: str | None = None,
    origin: Origin | None = None,
) -> uuid.UUID:
    """Discharge on a synchronous connection. The outcome's default is for tests and `hemma demo`
    seeding a database (`by` and `origin` None); the CLI and the dashboard always pass the chosen one."""
    done = execute(conn, discharge(patient_id=patient_id, gateway_id=gateway_id, outcome=outcome,
                                   note=note, by=by, origin=origin))  # fmt: skip
    return done.patient_id
