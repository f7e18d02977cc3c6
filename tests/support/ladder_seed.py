"""What the escalation-ladder tests share: a municipality with its home-care unit, a partner nurse with a
home_visit grant, the ward's physician and on-call physician, and the ladder nurse → physician → on call.

Care providers, units and grants are written as rows (the partner helper owns their commands); the
ladder itself through its command (care.escalation_ladder.set_ladder).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from care.acting import execute
from care.enrolment import EnrolledPatient, enrol_patient, ensure_ward
from care.escalation_ladder import StepInput, set_ladder
from care.oncall import add_oncall_shift
from care.staff import create_staff_user, set_staff_contact
from tests.support.ward_seed import PASSWORD

WARD = "asih-nord"
MUNICIPALITY = "malmo-stad"
HOME_CARE_UNIT = "malmo-hemsjukvard"
HOME_CARE_NAME = "Hemsjukvården Malmö"
NURSE = "sara.kommun"
PHYSICIAN = "karin.ek"
ON_CALL = "asa.berg"
WARD_PHONE = "040-33 10 00"
LADDER = (
    StepInput("home_visit_partner", 10),
    StepInput("ward_physician", 10, PHYSICIAN),
    StepInput("on_call", 10),
)


@dataclass(frozen=True, slots=True)
class LadderWard:
    patient_id: uuid.UUID
    nurse: int
    physician: int
    on_call: int
    grant: int
    enrolled: EnrolledPatient


def seed_ladder_ward(
    db: psycopg.Connection[Any], now: datetime, *, grant: bool = True, ladder: bool = True
) -> LadderWard:
    """The ward asih-nord (region) with one patient, and its partners, physicians, rota and ladder."""
    ensure_ward(db, WARD, "ASIH Nord")
    patient = enrol_patient(db, ward_id=WARD, display_name="Oskar Nilsson", gateway_id="gw-oskar",
                            birth_year=1944, care_reason="Hjärtsvikt")  # fmt: skip
    # In care since the day before `now` (a test's explicit clock may lie in the past).
    since = now - timedelta(days=1)
    db.execute("UPDATE patients SET enrolled_at = %s WHERE id = %s", (since, patient.patient_id))
    db.execute(
        "INSERT INTO care_providers (id, name, kind) VALUES (%s, 'Malmö stad', 'municipality')"
        " ON CONFLICT DO NOTHING",
        (MUNICIPALITY,),
    )
    db.execute(
        "INSERT INTO care_units (id, provider_id, name) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (HOME_CARE_UNIT, MUNICIPALITY, HOME_CARE_NAME),
    )
    nurse = create_staff_user(db, username=NURSE, display_name="Sara Lind", role="partner",
                              password=PASSWORD, ward_ids=[])  # fmt: skip
    db.execute("UPDATE staff_users SET care_unit_id = %s WHERE id = %s", (HOME_CARE_UNIT, nurse))
    set_staff_contact(db, username=NURSE, email="sara.lind@malmo.example")
    physician = create_staff_user(db, username=PHYSICIAN, display_name="Dr. Karin Ek", role="physician",
                                  password=PASSWORD, ward_ids=[WARD])  # fmt: skip
    set_staff_contact(db, username=PHYSICIAN, email="karin.ek@region.example")
    on_call = create_staff_user(db, username=ON_CALL, display_name="Dr. Åsa Berg", role="physician",
                                password=PASSWORD, ward_ids=[WARD])  # fmt: skip
    set_staff_contact(db, username=ON_CALL, email="asa.berg@region.example")
    add_oncall_shift(db, ward_id=WARD, username=ON_CALL, level=1, starts_at=now - timedelta(hours=8),
                     ends_at=now + timedelta(hours=8), now=now - timedelta(hours=8))  # fmt: skip
    grant_id = add_grant(db, patient.patient_id, nurse, physician, now) if grant else 0
    if ladder:
        execute(db, set_ladder(ward_id=WARD, steps=LADDER, phone=WARD_PHONE, by=PHYSICIAN, origin=None))
    return LadderWard(patient.patient_id, nurse, physician, on_call, grant_id, patient)


def add_grant(
    db: psycopg.Connection[Any], patient_id: uuid.UUID, partner: int, granted_by: int, now: datetime,
    *, purpose: str = "home_visit",
) -> int:  # fmt: skip
    """A grant with the patient's consent, in force from a day before `now` for 14 days."""
    row = db.execute(
        "INSERT INTO partner_grants (patient_id, staff_user_id, purpose, valid_from, valid_until, consent_by,"
        " consent_at, granted_by) VALUES (%s, %s, %s, %s, %s, 'patient', %s, %s) RETURNING id",
        (patient_id, partner, purpose, now - timedelta(days=1), now + timedelta(days=13),
         now - timedelta(days=1), granted_by),
    ).fetchone()  # fmt: skip
    assert row is not None
    return int(row[0])
