"""A region for the FHIR tests: two wards of the region, the municipality with a partner nurse and
grants in every state, readings, alerts, a plan, answers; system clients with real keys; and a
dashboard whose public URL is its own (the `aud` of client assertions)."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from care.acting import execute
from care.enrolment import EnrolledPatient, enrol_patient, ensure_ward
from care.questionnaires import BySimulator, answer
from care.staff import create_staff_user
from core.settings import Settings
from dashboard.app import create_app
from devservices.services import free_port
from fhir_api.clients import jwks_from_pem, register_client
from tests.support.ward_seed import PASSWORD, add_alert

ALL_READ = [
    f"system/{t}.rs"
    for t in ("Patient", "Encounter", "Observation", "Device", "Flag", "QuestionnaireResponse", "CarePlan")
]
SCALE = "AA:BB:CC:00:00:01"
OXIMETER = "AA:BB:CC:00:00:02"
CUFF = "AA:BB:CC:00:00:03"


def rsa_key() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _pems(key)


def ec_key() -> tuple[bytes, bytes]:
    return _pems(ec.generate_private_key(ec.SECP384R1()))


def _pems(key: Any) -> tuple[bytes, bytes]:
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@dataclass
class Region:
    anna: EnrolledPatient  # avd-norr, 30 days of readings, a kit with devices, alerts, plan, answers
    bertil: EnrolledPatient  # avd-norr
    agnes: EnrolledPatient  # avd-norr, discharged (died)
    cecilia: EnrolledPatient  # avd-syd: not the journal's
    dora: EnrolledPatient  # avd-syd, a grant to the municipal nurse in force now
    erik: EnrolledPatient  # avd-syd, a grant that starts tomorrow
    frida: EnrolledPatient  # avd-syd, a grant that ended yesterday
    gustav: EnrolledPatient  # avd-syd, a revoked grant
    dora_grant: int
    journal_key: bytes  # RSA private key of `journal`
    kommun_key: bytes  # EC P-384 private key of `kommun`
    journal_public: bytes


def seed_region(db: psycopg.Connection[Any], *, days: int = 30) -> Region:
    ensure_ward(db, "avd-norr", "Avdelning Norr")
    ensure_ward(db, "avd-syd", "Avdelning Syd")
    db.execute("UPDATE care_providers SET hsa_id = 'SE2321000016-0001' WHERE id = 'region'")
    db.execute("INSERT INTO care_providers (id, name, kind) VALUES ('kommunen', 'Kommunen', 'municipality')")
    db.execute(
        "INSERT INTO care_units (id, provider_id, name) VALUES ('kommunen-hsl', 'kommunen', 'Hemsjukvården')"
    )
    nurse = create_staff_user(
        db,
        username="sara",
        display_name="Sara Sjöström",
        role="nurse",
        password=PASSWORD,
        ward_ids=["avd-norr", "avd-syd"],
    )
    partner = create_staff_user(
        db, username="kommun.ssk", display_name="Kim Kommun", role="partner", password=PASSWORD, ward_ids=[]
    )
    db.execute("UPDATE staff_users SET care_unit_id = 'kommunen-hsl' WHERE id = %s", (partner,))

    def enrol(ward: str, name: str, kit: str, number: str | None = None) -> EnrolledPatient:
        return enrol_patient(
            db,
            ward_id=ward,
            display_name=name,
            gateway_id=kit,
            personal_number=number,
            care_reason="Hjärtsvikt",
        )

    anna = enrol("avd-norr", "Anna Andersson", "kit-anna", "19480315-1234")
    bertil = enrol("avd-norr", "Bertil Berg", "kit-bertil", "19390702-4560")
    agnes = enrol("avd-norr", "Agnes Ahl", "kit-agnes", "19300171-2383")  # a samordningsnummer (day 71)
    cecilia = enrol("avd-syd", "Cecilia Ceder", "kit-cecilia")
    dora = enrol("avd-syd", "Dora Dahl", "kit-dora")
    erik = enrol("avd-syd", "Erik Ek", "kit-erik")
    frida = enrol("avd-syd", "Frida Fors", "kit-frida")
    gustav = enrol("avd-syd", "Gustav Gran", "kit-gustav")
    db.execute("UPDATE patients SET birth_year = 1948 WHERE id = %s", (anna.patient_id,))
    db.execute(
        "UPDATE patients SET discharged_at = now(), discharge_outcome = 'died', discharged_by = %s"
        " WHERE id = %s",
        (nurse, agnes.patient_id),
    )
    grant = _grants(db, partner, nurse, dora, erik, frida, gustav)
    _readings(db, anna, nurse, days)
    for patient in (bertil, agnes):
        _reading(db, patient, "body_weight", 80.0, "kg", SCALE, minutes_ago=30)
    add_alert(db, anna, priority="high", message="SpO₂ 85 % under gränsen 88 %")
    add_alert(
        db,
        anna,
        priority="medium",
        state="resolved",
        rule="weight_gain",
        vital="body_weight",
        message="Vikten har ökat 2,4 kg på 3 dygn",
        value=2.4,
    )
    add_alert(db, anna, priority="low", state="pending", rule="temp_high", vital="body_temperature")
    add_alert(db, bertil, priority="medium", rule="pulse_high", vital="pulse_rate", message="Puls 121/min")
    add_alert(db, cecilia, priority="high", message="SpO₂ 84 % under gränsen 88 %")
    add_alert(db, dora, priority="high", message="SpO₂ 83 % under gränsen 88 %")
    db.execute(
        "INSERT INTO monitoring_plans (patient_id, vital, every_minutes, set_by) VALUES"
        " (%s, 'body_weight', 1440, %s), (%s, 'spo2', 240, %s)",
        (anna.patient_id, nurse, anna.patient_id, nurse),
    )
    db.execute(
        "INSERT INTO self_care_instructions (patient_id, rule, text, set_by) VALUES (%s, 'weight_gain',"
        " 'Ta en extra vätskedrivande tablett och ring avdelningen.', %s)",
        (anna.patient_id, nurse),
    )
    answers = {"breathless": "much-more", "swelling": "a-little", "pillows": "no", "dizziness": "no"}
    execute(
        db,
        answer(
            patient_id=anna.patient_id,
            questionnaire="hemma-hf-daily",
            version="1.0",
            answers=answers,
            response_id=uuid.uuid4(),
            source=BySimulator(),
            origin=None,
        ),
    )
    db.execute(
        "INSERT INTO manual_observations (patient_id, time, consciousness, on_oxygen, oxygen_l_min, source,"
        " entered_by) VALUES (%s, now() - interval '2 hours', 'C', true, 2, 'nurse', %s)",
        (anna.patient_id, nurse),
    )
    journal_key, journal_public = rsa_key()
    kommun_key, kommun_public = ec_key()
    execute(
        db,
        register_client(
            client_id="kommun",
            name="Kommunens verksamhetssystem",
            provider_id="kommunen",
            jwks=jwks_from_pem(kommun_public),
            scopes=["system/*.rs"],
            wards=[],
            origin=None,
        ),
    )
    return Region(
        anna,
        bertil,
        agnes,
        cecilia,
        dora,
        erik,
        frida,
        gustav,
        grant,
        journal_key,
        kommun_key,
        journal_public,
    )


def _grants(db: psycopg.Connection[Any], partner: int, nurse: int, *patients: EnrolledPatient) -> int:
    now = datetime.now(UTC)
    day = timedelta(days=1)
    periods = [
        (now - day, now + 13 * day),
        (now + day, now + 14 * day),
        (now - 14 * day, now - day),
        (now - day, now + 13 * day),
    ]
    ids = []
    for patient, (start, end) in zip(patients, periods, strict=True):
        row = db.execute(
            "INSERT INTO partner_grants (patient_id, staff_user_id, purpose, valid_from, valid_until,"
            " consent_by, consent_at, granted_by)"
            " VALUES (%s, %s, 'read', %s, %s, 'patient', %s, %s) RETURNING id",
            (patient.patient_id, partner, start, end, start, nurse),
        ).fetchone()
        assert row is not None
        ids.append(int(row[0]))
    db.execute("UPDATE partner_grants SET revoked_at = now(), revoked_by = %s WHERE id = %s", (nurse, ids[3]))
    return ids[0]


def _reading(
    db: psycopg.Connection[Any],
    p: EnrolledPatient,
    vital: str,
    value: float,
    unit: str,
    address: str,
    *,
    minutes_ago: float,
    quality: tuple[str, ...] = (),
) -> None:
    db.execute(
        "INSERT INTO observations (time, patient_id, vital, value, unit, quality, measurement_id, gateway_id,"
        " device_id, characteristic, received_at) VALUES (now() - make_interval(secs => %s), %s, %s, %s, %s,"
        " %s, gen_random_uuid(), %s, %s, '2A9D', now())",
        (minutes_ago * 60, p.patient_id, vital, value, unit, list(quality), p.gateway_id, address),
    )


def _readings(db: psycopg.Connection[Any], anna: EnrolledPatient, nurse: int, days: int) -> None:
    """Anna's kit: scale, oximeter and cuff since the lend began; SpO2 and pulse every 5 minutes for
    `days` days, a weight each morning, blood pressure twice a day."""
    db.execute(
        "UPDATE kit_assignments SET starts_at = now() - make_interval(days => %s) WHERE patient_id = %s",
        (days + 1, anna.patient_id),
    )
    db.execute(
        "UPDATE patients SET enrolled_at = now() - make_interval(days => %s) WHERE id = %s",
        (days + 1, anna.patient_id),
    )
    for address, profile in ((SCALE, "and_uc352ble"), (OXIMETER, "berrymed_bm1000"), (CUFF, "and_ua651ble")):
        db.execute(
            "INSERT INTO kit_devices (gateway_id, address, profile, added_by, added_at)"
            " VALUES (%s, %s, %s, %s, now() - make_interval(days => %s))",
            (anna.gateway_id, address, profile, nurse, days + 1),
        )
    common = " gen_random_uuid(), %(kit)s, %(address)s, %(char)s, now()"
    db.execute(
        "WITH t AS (SELECT generate_series(now() - make_interval(days => %(days)s), now(),"
        " interval '5 minutes') AS at) INSERT INTO observations (time, patient_id, vital, value, unit,"
        " quality, measurement_id, gateway_id, device_id, characteristic, received_at)"
        " SELECT at, %(p)s, v.vital, v.value + (extract(epoch FROM at)::bigint %% 3), v.unit,"
        " CASE WHEN extract(minute FROM at)::int = 0 THEN '{signal_questionable}'::text[] ELSE '{}' END,"
        + common
        + " FROM t, (VALUES ('spo2', 93.0, '%%'), ('pulse_rate', 72.0, '/min')) AS v (vital, value, unit)",
        {"days": days, "p": anna.patient_id, "kit": anna.gateway_id, "address": OXIMETER, "char": "bci"},
    )
    for n in range(days):
        _reading(db, anna, "body_weight", 81.0 + 0.1 * n, "kg", SCALE, minutes_ago=(days - n) * 1440 - 60)
    for n in range(2 * days):
        at = (days - n / 2) * 1440 - 30
        measurement = uuid.uuid4()
        for vital, value in (("systolic_bp", 128.0 + n % 5), ("diastolic_bp", 78.0)):
            db.execute(
                "INSERT INTO observations (time, patient_id, vital, value, unit, quality, measurement_id,"
                " gateway_id, device_id, characteristic, received_at) VALUES"
                " (date_trunc('second', now()) - make_interval(secs => %s), %s, %s, %s, 'mm[Hg]', '{}', %s,"
                " %s, %s, '2A35', now())",
                (at * 60, anna.patient_id, vital, value, measurement, anna.gateway_id, CUFF),
            )


@contextlib.contextmanager
def fhir_dashboard(database_url: str) -> Iterator[str]:
    """The dashboard on a free port whose HEMMA_DASHBOARD_URL is its own address; yields it."""
    host, port = "127.0.0.1", free_port()
    url = f"http://{host}:{port}"
    settings = Settings(
        database_url=database_url,
        dashboard_host=host,
        dashboard_port=port,
        dashboard_url=url,
        session_secret="fhir-tests-session-secret-0123456789",
    )
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"fhir-dashboard-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the dashboard did not start")
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(15)
