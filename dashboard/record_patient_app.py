"""The patient record's patient_app section (issue 10): the patient's and relatives' app devices, and
the forms that make a new link or revoke a device (dashboard.patient_enrol), for staff who may
(care.permissions: MANAGE_PATIENT_APP) while the patient is in care. The read is logged as the
record's own.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from care.patient_enrolment import PatientDevice, devices
from care.permissions import Action, Holder
from dashboard.model import StaffUser
from storage.steps import run_async

if TYPE_CHECKING:
    import psycopg

HOLDER_WORDS: Mapping[str, str] = MappingProxyType(
    {Holder.PATIENT: "Patienten", Holder.RELATIVE: "Närstående"}
)


@dataclass(frozen=True, slots=True)
class PatientAppSection:
    patient_id: uuid.UUID
    devices: tuple[PatientDevice, ...]
    may_manage: bool  # the forms: a clinician, the patient in care

    @property
    def holder_words(self) -> Mapping[str, str]:
        return HOLDER_WORDS


async def load(
    conn: psycopg.AsyncConnection[Any], staff: StaffUser, patient_id: uuid.UUID
) -> PatientAppSection | None:
    cur = await conn.execute("SELECT discharged_at IS NULL FROM patients WHERE id = %s", (patient_id,))
    row = await cur.fetchone()
    if row is None:
        return None
    found = await run_async(conn, devices(patient_id))
    may_manage = bool(row[0]) and staff.may(Action.MANAGE_PATIENT_APP)
    if not found and not may_manage:
        return None
    return PatientAppSection(patient_id, tuple(found), may_manage)
