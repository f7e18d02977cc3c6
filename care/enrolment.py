"""Wards, and a patient's care episode: enrolment with a kit (gateway) and discharge.

Administration, not care: run by an operator (`hemma ward add`, `hemma patient enrol|discharge`) and
by `hemma demo`. Refusals name the field, never its value: a name, personal number or birth year is
patient data and must not reach a terminal, a log or a CI transcript.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from care.access_log import DISCHARGE_PATIENT, ENROL_PATIENT, OPERATOR
from care.acting import Origin, audited, execute
from care.kit import config_changed
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
    yield Sql(
        "INSERT INTO gateways (id, patient_id) VALUES (%s, %s)"
        " ON CONFLICT (id) DO UPDATE SET patient_id = EXCLUDED.patient_id",
        (gateway_id, patient_id),
    )
    yield from audited(origin, staff=None, username=OPERATOR, patient_id=patient_id, action=ENROL_PATIENT,
                       context=f"gateway:{gateway_id}")  # fmt: skip
    yield Notify(VitalsChanged(ward_id, (patient_id,)))
    return EnrolledPatient(patient_id, ward_id, gateway_id)


def discharge(*, gateway_id: str, origin: Origin | None) -> Steps[uuid.UUID]:
    """End the home care episode of the patient holding this kit and free the kit for the next one.

    The patient's record (observations, alerts, access log) stays; readings from the kit after this
    are dead-lettered as coming from a kit with no enrolled patient.
    """
    row = yield Sql(
        "SELECT p.id, p.ward_id FROM gateways g JOIN patients p ON p.id = g.patient_id"
        " WHERE g.id = %s AND p.discharged_at IS NULL FOR UPDATE",
        (gateway_id,),
        fetch="one",
    )
    if row is None:
        raise Refused(RefusalCode.NO_PATIENT_WITH_KIT, gateway_id=gateway_id)
    patient_id, ward_id = row
    yield Sql("UPDATE patients SET discharged_at = now() WHERE id = %s", (patient_id,))
    yield Sql("UPDATE gateways SET patient_id = NULL WHERE id = %s", (gateway_id,))
    # The patient app's devices end with the episode (care.patient_access refuses a discharged
    # patient's token anyway; this says so on the record).
    yield Sql(
        "UPDATE patient_devices SET revoked_at = now(), revoked_reason = 'discharged',"
        " link_sha256 = NULL WHERE patient_id = %s AND revoked_at IS NULL",
        (patient_id,),
    )
    # The patient's plan leaves the kit's schedule; its devices stay registered for the next patient.
    yield from config_changed(gateway_id=gateway_id)
    yield from audited(origin, staff=None, username=OPERATOR, patient_id=patient_id,
                       action=DISCHARGE_PATIENT, context=f"gateway:{gateway_id}")  # fmt: skip
    yield Notify(VitalsChanged(ward_id, (patient_id,)))
    return uuid.UUID(str(patient_id))


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
    conn: psycopg.Connection[Any], *, gateway_id: str, origin: Origin | None = None
) -> uuid.UUID:
    return execute(conn, discharge(gateway_id=gateway_id, origin=origin))
