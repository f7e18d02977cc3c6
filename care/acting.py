"""Who acts, for which patient, from where: the prologue and the audit every care command shares.

A clinical command starts with `staff_for_patient` (the account is enabled and its role may do the
action, care.permissions; the patient exists; the member of staff has access to the patient's ward;
the patient is in care) and ends with `audited` (the access_log row, care.access_log's INSERT, in the
command's transaction). These are storage.steps generators, so the CLI and the dashboard run the
very same checks: `yield from staff_for_patient(...)` inside the command.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias, TypeVar

import psycopg

from care import access_log, permissions
from care.permissions import AnyAction
from care.refusals import RefusalCode, Refused
from storage.steps import Sql, Steps, run, run_async

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ActingStaff:
    """An enabled staff account whose role may do the action it was looked up for."""

    id: int
    username: str
    role: str


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a command came from, for its access_log row: `entry_point` is care.access_log.CLI or
    DASHBOARD (later the patient app, FHIR); `client_address` the browser's address; `os_user`
    ("user@host") who ran a command line."""

    entry_point: str
    client_address: str | None = None
    os_user: str | None = None


def acting_staff(username: str, action: AnyAction) -> Steps[ActingStaff]:
    """The enabled account `username`, if its role may do `action` (care.permissions)."""
    row = yield Sql(
        "SELECT id, role FROM staff_users WHERE username = %s AND NOT disabled", (username,), fetch="one"
    )
    if row is None:
        raise Refused(RefusalCode.NO_ACTIVE_ACCOUNT, username=username, action=action)
    if not permissions.may(row[1], action):
        raise Refused(RefusalCode.ROLE, username=username, role=str(row[1]), action=action)
    return ActingStaff(int(row[0]), username, str(row[1]))


def check_ward_access(staff: ActingStaff, ward_id: str, action: AnyAction) -> Steps[None]:
    """Staff act only for patients of their own wards (care.permissions.may_see_ward), on every entry
    point: Patientdatalagen's inner secrecy, and an operator naming the wrong colleague."""
    rows = yield Sql(
        "SELECT ward_id FROM staff_ward_access WHERE staff_user_id = %s", (staff.id,), fetch="all"
    )
    if not permissions.may_see_ward(staff.role, [r[0] for r in rows], ward_id):
        raise Refused(RefusalCode.WARD_ACCESS, username=staff.username, ward_id=ward_id, action=action)


def patient_ward(patient_id: uuid.UUID) -> Steps[tuple[str, datetime | None]]:
    """(ward, discharged_at) of a patient, the row locked FOR SHARE: the patient cannot be discharged
    or moved to another ward while a command acts on the record."""
    row = yield Sql(
        "SELECT ward_id, discharged_at FROM patients WHERE id = %s FOR SHARE", (patient_id,), fetch="one"
    )
    if row is None:
        raise Refused(RefusalCode.NO_PATIENT, patient_id=patient_id)
    return str(row[0]), row[1]


def in_care(patient_id: uuid.UUID, discharged_at: datetime | None) -> None:
    """Discharged patients take no new orders or observations."""
    if discharged_at is not None:
        raise Refused(
            RefusalCode.PATIENT_DISCHARGED, patient_id=patient_id, discharged_on=f"{discharged_at:%Y-%m-%d}"
        )


def staff_for_patient(
    username: str, action: AnyAction, patient_id: uuid.UUID, *, must_be_in_care: bool = True
) -> Steps[tuple[ActingStaff, str]]:
    """Who acts and the patient's ward, checked in this order: account and role, patient, ward
    access, and (unless `must_be_in_care` is False) that the patient is in care. Ward access comes
    before the discharge, so staff of another ward learn nothing about this patient's episode."""
    staff = yield from acting_staff(username, action)
    ward_id, discharged_at = yield from patient_ward(patient_id)
    yield from check_ward_access(staff, ward_id, action)
    if must_be_in_care:
        in_care(patient_id, discharged_at)
    return staff, ward_id


def audited(
    origin: Origin | None,
    *,
    staff: ActingStaff | None,
    username: str,
    patient_id: uuid.UUID | None,
    action: str,
    context: str,
) -> Steps[None]:
    """The access_log row of a change, in its transaction (care.access_log). `origin` None is a
    program seeding a database directly (tests, `hemma demo`'s simulated ward): no person and no
    entry point acted, so there is nothing to record."""
    if origin is None:
        return
    record = access_log.AccessRecord(
        staff_user_id=staff.id if staff else None,
        username=staff.username if staff else username,
        patient_id=patient_id,
        action=action,
        context=context,
        entry_point=origin.entry_point,
        client_address=origin.client_address,
        os_user=origin.os_user,
    )
    yield Sql(access_log.INSERT_ACCESS_LOG, record.row())


def admin_audited(
    origin: Origin | None, *, staff: ActingStaff | None, action: AnyAction, context: str
) -> Steps[None]:
    """The log row of an admin's work on staff accounts or the on-call rota (AdminAction): the
    access_log with no patient, so one append-only table answers "who changed what" for staff and
    patient data alike, and no patient's log extract ever lists it. `staff` None is the CLI's
    operator (care.access_log.OPERATOR, with the OS user); `origin` None a program seeding a database."""
    yield from audited(origin, staff=staff, username=access_log.OPERATOR, patient_id=None, action=action,
                       context=context)  # fmt: skip


def acting_admin(by: str | None, action: AnyAction) -> Steps[ActingStaff | None]:
    """Who does an admin's work: `by`, an enabled account whose role may (care.permissions), or None
    for the CLI's operator, who holds the database itself and is named in the log by the OS user."""
    if by is None:
        return None
    return (yield from acting_staff(by, action))


# --- the drivers -------------------------------------------------------------------------------------

# A care command: storage.steps' steps (the alert store's own steps are yielded from it, so ending an
# alarm happens in the command's transaction, through the one writer of the alerts tables).
CareSteps: TypeAlias = Steps[T]


def execute(conn: psycopg.Connection[Any], steps: CareSteps[T]) -> T:
    """Run a command on a synchronous connection in a transaction of its own (or a savepoint in the
    caller's): the CLI, `hemma demo` and tests."""
    with conn.transaction():
        return run(conn, steps)


async def execute_async(conn: psycopg.AsyncConnection[Any], steps: CareSteps[T]) -> T:
    """Run a command on an asynchronous connection (the dashboard pool's) in a transaction."""
    async with conn.transaction():
        return await run_async(conn, steps)
