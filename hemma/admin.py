"""Administrative writes: wards, patient enrolment with a kit, staff accounts.

Used by the `hemma` CLI, by `hemma demo` to seed its simulated ward, and by tests.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg


class AdminError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class EnrolledPatient:
    patient_id: uuid.UUID
    ward_id: str
    gateway_id: str


def ensure_ward(conn: psycopg.Connection, ward_id: str, name: str) -> None:
    conn.execute(
        "INSERT INTO wards (id, name) VALUES (%s, %s) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name",
        (ward_id, name),
    )


def enrol_patient(
    conn: psycopg.Connection,
    *,
    ward_id: str,
    display_name: str,
    gateway_id: str,
    personal_number: str | None = None,
    birth_year: int | None = None,
    care_reason: str | None = None,
) -> EnrolledPatient:
    """Admit a patient to a virtual ward and lend them a kit (gateway). Idempotent per gateway+patient."""
    with conn.transaction():
        row = conn.execute(
            "SELECT g.patient_id FROM gateways g JOIN patients p ON p.id = g.patient_id"
            " WHERE g.id = %s AND p.discharged_at IS NULL",
            (gateway_id,),
        ).fetchone()
        if row is not None:
            existing = conn.execute(
                "SELECT id FROM patients WHERE id = %s AND display_name = %s", (row[0], display_name)
            ).fetchone()
            if existing is None:
                raise AdminError(f"gateway {gateway_id} is already lent to another patient")
            return EnrolledPatient(row[0], ward_id, gateway_id)
        patient_id = conn.execute(
            "INSERT INTO patients (ward_id, display_name, personal_number, birth_year, care_reason)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (ward_id, display_name, personal_number, birth_year, care_reason),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO gateways (id, patient_id) VALUES (%s, %s)"
            " ON CONFLICT (id) DO UPDATE SET patient_id = EXCLUDED.patient_id",
            (gateway_id, patient_id),
        )
    return EnrolledPatient(patient_id, ward_id, gateway_id)


def create_staff_user(
    conn: psycopg.Connection,
    *,
    username: str,
    display_name: str,
    role: str,
    password: str,
    ward_ids: list[str],
) -> int:
    """Create or update a staff account; the password is stored as an Argon2 hash only."""
    from pwdlib import PasswordHash

    if len(password) < 10:
        raise AdminError("password must be at least 10 characters")
    hashed = PasswordHash.recommended().hash(password)
    with conn.transaction():
        staff_id = conn.execute(
            "INSERT INTO staff_users (username, display_name, role, password_hash) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (username) DO UPDATE SET display_name = EXCLUDED.display_name,"
            " role = EXCLUDED.role, password_hash = EXCLUDED.password_hash, disabled = false RETURNING id",
            (username, display_name, role, hashed),
        ).fetchone()[0]  # type: ignore[index]
        for ward_id in ward_ids:
            conn.execute(
                "INSERT INTO staff_ward_access (staff_user_id, ward_id) VALUES (%s, %s)"
                " ON CONFLICT DO NOTHING",
                (staff_id, ward_id),
            )
    return int(staff_id)


def discharge_patient(conn: psycopg.Connection, *, gateway_id: str) -> uuid.UUID:
    """End the home care episode of the patient holding this kit and free the kit for the next patient.

    The patient's record (observations, alerts, access log) stays; readings from the kit after
    this are dead-lettered as coming from a kit with no enrolled patient.
    """
    with conn.transaction():
        row = conn.execute(
            "SELECT p.id FROM gateways g JOIN patients p ON p.id = g.patient_id"
            " WHERE g.id = %s AND p.discharged_at IS NULL FOR UPDATE",
            (gateway_id,),
        ).fetchone()
        if row is None:
            raise AdminError(f"no enrolled patient holds kit {gateway_id}")
        conn.execute("UPDATE patients SET discharged_at = now() WHERE id = %s", (row[0],))
        conn.execute("UPDATE gateways SET patient_id = NULL WHERE id = %s", (gateway_id,))
    return row[0]


def add_oncall_shift(
    conn: psycopg.Connection,
    *,
    ward_id: str,
    username: str,
    level: int,
    starts_at: datetime,
    ends_at: datetime,
) -> int:
    """Put a member of staff on the ward's on-call rota (level 1 jourläkare, 2 bakjour, 3 verksamhetschef)."""
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise AdminError("shift times must carry a time zone")
    if ends_at <= starts_at:
        raise AdminError("a shift must end after it starts")
    if not 1 <= level <= 3:
        raise AdminError(f"on-call level must be 1, 2 or 3, got {level}")
    with conn.transaction():
        if conn.execute("SELECT 1 FROM wards WHERE id = %s", (ward_id,)).fetchone() is None:
            raise AdminError(f"no ward {ward_id}")
        staff = conn.execute(
            "SELECT u.id, u.disabled, c.staff_user_id IS NOT NULL FROM staff_users u"
            " LEFT JOIN staff_contacts c ON c.staff_user_id = u.id WHERE u.username = %s",
            (username,),
        ).fetchone()
        if staff is None:
            raise AdminError(f"no staff account {username}")
        staff_id, disabled, has_contact = staff
        if disabled:
            raise AdminError(f"staff account {username} is disabled")
        if not has_contact:
            # Without an address nobody can page them: escalation would pass them by.
            raise AdminError(f"{username} has no contact details: run `hemma staff contact` first")
        shift_id = conn.execute(
            "INSERT INTO oncall_shifts (ward_id, staff_user_id, level, starts_at, ends_at)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (ward_id, staff_id, level, starts_at, ends_at),
        ).fetchone()[0]  # type: ignore[index]
    return int(shift_id)


def set_staff_contact(
    conn: psycopg.Connection,
    *,
    username: str,
    email: str | None = None,
    ntfy_topic: str | None = None,
    webhook_url: str | None = None,
) -> None:
    """Where a member of staff is paged. Addresses given replace the stored ones; others are kept."""
    import psycopg

    if email is None and ntfy_topic is None and webhook_url is None:
        raise AdminError("give at least one of e-mail, ntfy topic or webhook URL")
    row = conn.execute("SELECT id FROM staff_users WHERE username = %s", (username,)).fetchone()
    if row is None:
        raise AdminError(f"no staff account {username}")
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO staff_contacts (staff_user_id, email, ntfy_topic, webhook_url)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (staff_user_id) DO UPDATE SET"
                " email = coalesce(EXCLUDED.email, staff_contacts.email),"
                " ntfy_topic = coalesce(EXCLUDED.ntfy_topic, staff_contacts.ntfy_topic),"
                " webhook_url = coalesce(EXCLUDED.webhook_url, staff_contacts.webhook_url),"
                " updated_at = now()",
                (row[0], email, ntfy_topic, webhook_url),
            )
    except psycopg.errors.CheckViolation as exc:
        raise AdminError(
            f"contact for {username} refused: an e-mail needs an @, an ntfy topic only letters,"
            " digits, - and _, a webhook URL must start with http:// or https://"
        ) from exc


def set_personal_threshold(
    conn: psycopg.Connection,
    *,
    patient_id: uuid.UUID,
    rule: str,
    priority: str,
    limit: float,
    reason: str,
    set_by_username: str,
    valid_until: datetime | None = None,
) -> int:
    """A physician's own limit for one patient, replacing the ward default (and any earlier one).

    Only physicians set limits; the earlier limit for the same rule and priority is revoked in the
    same transaction, so the history of who changed what, when and why stays in the table.
    """
    from alerts.model import Priority
    from alerts.thresholds import threshold_keys
    from hemma.vitals import VITALS, plausibility_problem

    keys = threshold_keys()
    if rule not in keys:
        raise AdminError(f"unknown threshold rule {rule!r}; known: {', '.join(sorted(keys))}")
    vital, _direction, priorities = keys[rule]
    if Priority.parse(priority) not in priorities:
        allowed = ", ".join(p.label for p in priorities)
        raise AdminError(f"rule {rule} has no {priority} limit to replace (it has: {allowed})")
    problem = plausibility_problem(vital, limit)
    if problem:
        raise AdminError(f"limit {limit:g} {VITALS[vital].ucum} is not a possible {vital.value} value")
    if len(reason.strip()) < 3:
        raise AdminError("a reason is required (who asked for it and why)")
    with conn.transaction():
        staff = conn.execute(
            "SELECT id, role FROM staff_users WHERE username = %s AND NOT disabled", (set_by_username,)
        ).fetchone()
        if staff is None or staff[1] not in ("physician", "admin"):
            raise AdminError(f"{set_by_username} is not an active physician; only physicians set limits")
        if conn.execute("SELECT 1 FROM patients WHERE id = %s", (patient_id,)).fetchone() is None:
            raise AdminError(f"no patient {patient_id}")
        conn.execute(
            "UPDATE personal_thresholds SET revoked_at = now(), revoked_by = %s"
            " WHERE patient_id = %s AND rule = %s AND priority = %s AND revoked_at IS NULL",
            (staff[0], patient_id, rule, priority),
        )
        row = conn.execute(
            "INSERT INTO personal_thresholds"
            " (patient_id, rule, priority, limit_value, reason, set_by, valid_until)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (patient_id, rule, priority, limit, reason.strip(), staff[0], valid_until),
        ).fetchone()
    return int(row[0])  # type: ignore[index]
