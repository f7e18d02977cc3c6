"""Administrative writes: wards, patient enrolment with a kit, staff accounts.

Used by the `hemma` CLI, by `hemma demo` to seed its simulated ward, and by tests.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
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
