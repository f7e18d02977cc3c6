"""The end-of-stay summary (issue 12): one seeded heart-failure stay — admitted on a pathway by a nurse,
a physician's care level change, four days of weight climbing and SpO2 dipping, alerts acknowledged with
notes and one escalated, questionnaire answers, a contact request taken and answered, discharge with an
outcome — read back exactly (care.stay_summary), printed (`/patients/{id}/vardtid`, the partner's
`/partner/patients/{id}/vardtid`, `hemma patient summary`), and refused to everyone who may not read it.
One module-scoped database and dashboard; one Chromium screenshot of the printed page.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import psycopg
import pytest

from care.acting import Origin, execute
from care.admission import admit
from care.care_levels import CareLevel, set_level
from care.enrolment import discharge, enrol_patient, ensure_ward
from care.staff import create_staff_user
from care.stay_summary import StaySummary, stay_summary
from care.stay_summary_text import plain_text, sparkline
from core.settings import Settings
from core.vitals import Vital
from storage import rollups
from tests.conftest import _with_dbname
from tests.support.dashboard_server import logged_in, running_dashboard

PASSWORD = "rätt häst batteri häftklammer"
SECRET = "test-session-secret-stay-summary-0123"
PERSONAL_NUMBER = "19480101-9870"
CRITERIA = [
    "Patienten samtycker till vård i hemmet",
    "Stabil nog för vård i hemmet enligt läkarbedömning",
    "Bor inom teamets upptagningsområde",
    "Kan hantera mätutrustningen själv eller med hjälp",
    "Telefon nås dygnet runt",
]
WEIGHTS = (78.0, 78.9, 79.6, 80.4)  # one a day: +2,4 kg in three days
SPO2 = ((95.0, 94.0), (93.0, 92.0), (89.0, 93.0), (94.0, 96.0))  # two a day
ACK_NOTE = "Ringt patienten, lugn i vila. Kontroll om 1 h."
DOCTOR_NOTE = "Furosemid 40 mg extra i dag, ny vikt i morgon."


@dataclass
class Stay:
    url: str
    database_url: str
    patient: uuid.UUID
    other_patient: uuid.UUID  # Bertil, same ward, no grant
    base: datetime  # 00:00 UTC four days before today: day 0 of the stay
    ids: dict[str, int]
    grant_id: int


@pytest.fixture(scope="module")
def stay_db(postgres_admin_url: str, template_database: str) -> Iterator[str]:
    name = f"hemma_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    yield _with_dbname(postgres_admin_url, name)
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _staff(db: psycopg.Connection) -> dict[str, int]:
    ensure_ward(db, "avd-norr", "Avdelning Norr")
    ensure_ward(db, "avd-syd", "Avdelning Syd")
    db.execute(
        "INSERT INTO care_providers (id, name, kind, hsa_id) VALUES"
        " ('region-norr', 'Region Norrland', 'region', 'SE2321000000-0001'),"
        " ('kommun-a', 'Kommunen A', 'municipality', NULL), ('kommun-b', 'Kommunen B', 'municipality', NULL)"
    )
    db.execute(
        "INSERT INTO care_units (id, provider_id, name, hsa_id) VALUES"
        " ('norr-hemma', 'region-norr', 'Sjukhusvård i hemmet Norr', 'SE2321000000-0002'),"
        " ('kommun-a-hsv', 'kommun-a', 'Hemsjukvården Kommunen A', NULL),"
        " ('kommun-b-hsv', 'kommun-b', 'Hemsjukvården Kommunen B', NULL)"
    )
    db.execute("UPDATE wards SET care_unit_id = 'norr-hemma' WHERE id = 'avd-norr'")
    people = [
        ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
        ("dr.lund", "Erik Lund", "physician", ["avd-norr"]),
        ("nurse.syd", "Siv Sund", "nurse", ["avd-syd"]),
        ("admin", "Ada Admin", "admin", []),
        ("kommun.ssk", "Karin Kommun", "partner", []),
        ("kommun.late", "Lars Sen", "partner", []),
        ("kommun.early", "Tidig Tove", "partner", []),
        ("kommun.revoked", "Rut Återkallad", "partner", []),
        ("kommun.blocked", "Bo Spärrad", "partner", []),
    ]
    ids = {
        u: create_staff_user(db, username=u, display_name=n, role=r, password=PASSWORD, ward_ids=w)
        for u, n, r, w in people
    }
    db.execute("UPDATE staff_users SET care_unit_id = 'kommun-a-hsv' WHERE role = 'partner'")
    db.execute("UPDATE staff_users SET care_unit_id = 'kommun-b-hsv' WHERE username = 'kommun.blocked'")
    return ids


def _obs(
    db: psycopg.Connection, patient: uuid.UUID, vital: str, unit: str, at: datetime, value: float
) -> None:
    db.execute(
        "INSERT INTO observations (time, patient_id, vital, value, unit, measurement_id, gateway_id,"
        " device_id, characteristic, received_at)"
        " VALUES (%s, %s, %s, %s, %s, gen_random_uuid(), 'kit-1', 'dev', 'x', %s)",
        (at, patient, vital, value, unit, at),
    )


def _alert(
    db: psycopg.Connection,
    patient: uuid.UUID,
    rule: str,
    vital: str | None,
    priority: str,
    condition: str,
    message: str,
    value: float | None,
    at: datetime,
    events: list[tuple[timedelta, str, str, str | None]],
    opened: bool = True,
) -> int:
    state = (
        "resolved"
        if any(e[1] == "resolved" for e in events) or not opened
        else ("acknowledged" if any(e[1] == "acknowledged" for e in events) else "open")
    )
    row = db.execute(
        "INSERT INTO alerts (patient_id, ward_id, rule, vital, priority, state, condition, message, value,"
        " observed_at, opened_at, resolved_at)"
        " VALUES (%s, 'avd-norr', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " RETURNING id",
        (
            patient,
            rule,
            vital,
            priority,
            state,
            condition,
            message,
            value,
            at,
            at,
            at + timedelta(hours=2) if state == "resolved" else None,
        ),
    ).fetchone()
    assert row is not None
    alert_id = int(row[0])
    first = (
        [(timedelta(0), "opened", "engine", None)]
        if opened
        else [(timedelta(0), "pending", "engine", None), (timedelta(minutes=1), "withdrawn", "engine", None)]
    )
    for offset, kind, actor, note in first + events:
        db.execute(
            "INSERT INTO alert_events (alert_id, at, kind, actor, priority, note)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (alert_id, at + offset, kind, actor, priority, note),
        )
    return alert_id


def _seed(db: psycopg.Connection) -> tuple[uuid.UUID, uuid.UUID, datetime, dict[str, int], int]:
    ids = _staff(db)
    db.execute("INSERT INTO gateways (id) VALUES ('kit-1')")
    cli = Origin("cli", os_user="test@host")
    done = execute(
        db,
        admit(
            ward_id="avd-norr",
            display_name="Astrid Ek",
            personal_number=PERSONAL_NUMBER,
            care_reason="Hjärtsvikt, försämring NYHA III",
            pathway_id="hjartsvikt",
            gateway_id="kit-1",
            confirmed=CRITERIA,
            by="nurse.norr",
            origin=cli,
        ),
    )
    patient = done.patient_id
    row = db.execute(
        "SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '4 days'"
    ).fetchone()
    assert row is not None
    base: datetime = row[0]
    admitted = base + timedelta(hours=7)
    # The stay began four days ago (the command wrote now(); seeding moves it back).
    db.execute("UPDATE patients SET enrolled_at = %s WHERE id = %s", (admitted, patient))
    db.execute("UPDATE admissions SET admitted_at = %s WHERE patient_id = %s", (admitted, patient))
    execute(
        db,
        set_level(
            patient_id=patient, level="red", reason="Ökande andfåddhet, vikt stiger", by="dr.lund", origin=cli
        ),
    )
    db.execute(
        "INSERT INTO personal_thresholds (patient_id, rule, priority, limit_value, reason, set_by, set_at)"
        " VALUES (%s, 'spo2_low', 'high', 88, 'Habituellt låg saturation', %s, %s)",
        (patient, ids["dr.lund"], admitted),
    )
    for day in range(4):
        morning = base + timedelta(days=day, hours=8)
        _obs(db, patient, "body_weight", "kg", morning, WEIGHTS[day])
        _obs(db, patient, "spo2", "%", morning + timedelta(minutes=1), SPO2[day][0])
        _obs(db, patient, "spo2", "%", morning + timedelta(hours=8), SPO2[day][1])
    rollups.rebuild(db, patient)
    # Alerts: a high SpO2 alert acknowledged with a note; a high weight alert escalated to the physician
    # on call and acknowledged by him; a medium SpO2; a technical alarm; a pending one that never opened.
    day2 = base + timedelta(days=2, hours=8, minutes=1)
    _alert(
        db,
        patient,
        "spo2_low",
        "spo2",
        "high",
        "physiological",
        "Syremättnad 89 % (gräns 88 %)",
        89,
        day2,
        [
            (timedelta(minutes=4), "acknowledged", "staff:nurse.norr", ACK_NOTE),
            (timedelta(hours=2), "resolved", "engine", "tillståndet upphörde"),
        ],
    )
    day3 = base + timedelta(days=3, hours=8, minutes=5)
    _alert(
        db,
        patient,
        "weight_gain_3d",
        "body_weight",
        "high",
        "physiological",
        "Vikt +2,4 kg på 3 dygn",
        80.4,
        day3,
        [
            (timedelta(minutes=10), "escalated", "engine", "Eskalerat till jourläkare Erik Lund"),
            (timedelta(minutes=25), "acknowledged", "staff:dr.lund", DOCTOR_NOTE),
        ],
    )
    _alert(
        db,
        patient,
        "spo2_low",
        "spo2",
        "medium",
        "physiological",
        "Syremättnad 92 %",
        92,
        base + timedelta(days=1, hours=16),
        [(timedelta(hours=1), "resolved", "engine", None)],
    )
    _alert(
        db,
        patient,
        "missing:spo2",
        "spo2",
        "medium",
        "technical",
        "Ingen syremättnad på 9 h",
        None,
        base + timedelta(days=1, hours=2),
        [(timedelta(hours=1), "resolved", "engine", None)],
    )
    _alert(
        db,
        patient,
        "pulse_high",
        "pulse_rate",
        "high",
        "physiological",
        "Puls 135/min",
        135,
        base + timedelta(days=1, hours=3),
        [],
        opened=False,
    )
    for day, (score, flags) in enumerate(
        ((1, []), (3, ["swollen-legs"]), (5, ["swollen-legs", "breathless-worse"]))
    ):
        db.execute(
            "INSERT INTO questionnaire_responses (response_id, patient_id, questionnaire,"
            " questionnaire_version,"
            " authored_at, source, staff_user_id, response, score, flags, flag_priorities) VALUES"
            " (gen_random_uuid(), %s, 'hemma-hf-daily', '1', %s, 'staff', %s, '{}', %s, %s, %s)",
            (
                patient,
                base + timedelta(days=day + 1, hours=7),
                ids["nurse.norr"],
                score,
                flags,
                ["medium"] * len(flags),
            ),
        )
    asked = base + timedelta(days=3, hours=9)
    db.execute(
        "INSERT INTO contact_requests (patient_id, gateway_id, event_id, source, reason, requested_at,"
        " received_at,"
        " state, taken_by, taken_at, call_within_minutes, closed_by, closed_at, close_note) VALUES"
        " (%s, 'kit-1', gen_random_uuid(), 'button', 'contact_request', %s, %s, 'closed', %s, %s, 30, %s, %s,"
        " 'Ringde upp, frågor om vätskeintag.')",
        (
            patient,
            asked,
            asked,
            ids["nurse.norr"],
            asked + timedelta(minutes=3),
            ids["nurse.norr"],
            asked + timedelta(minutes=20),
        ),
    )
    db.execute(
        "INSERT INTO self_care_instructions (patient_id, rule, text, set_by) VALUES"
        " (%s, 'weight_gain_3d', 'Ta en extra vätskedrivande tablett och ring oss.', %s)",
        (patient, ids["nurse.norr"]),
    )
    execute(
        db,
        discharge(
            patient_id=patient,
            outcome="stayed_home",
            note="Stabil vikt två dygn, åter till vårdcentralen.",
            by="nurse.norr",
            origin=cli,
        ),
    )
    bertil = enrol_patient(db, ward_id="avd-norr", display_name="Bertil Berg", gateway_id="kit-2").patient_id
    grants = [  # (partner, patient, from, until, revoked)
        ("kommun.ssk", patient, "-1 day", "+13 days", False),
        ("kommun.late", patient, "-20 days", "-1 day", False),
        ("kommun.early", patient, "+1 day", "+10 days", False),
        ("kommun.revoked", patient, "-1 day", "+10 days", True),
        ("kommun.blocked", patient, "-1 day", "+10 days", False),
    ]
    grant_ids = []
    for partner, pid, start, end, revoked in grants:
        row = db.execute(
            "INSERT INTO partner_grants (patient_id, staff_user_id, purpose, valid_from, valid_until,"
            " consent_by,"
            " consent_at, granted_by) VALUES (%s, %s, 'read', now() + %s::interval, now() + %s::interval,"
            " 'patient', now() - interval '1 day', %s) RETURNING id",
            (pid, ids[partner], start, end, ids["nurse.norr"]),
        ).fetchone()
        assert row is not None
        grant_ids.append(int(row[0]))
        if revoked:
            db.execute(
                "UPDATE partner_grants SET revoked_at = now(), revoked_by = %s WHERE id = %s",
                (ids["nurse.norr"], row[0]),
            )
    # The patient has blocked (spärr) Kommunen B, kommun.blocked's care provider.
    db.execute(
        "INSERT INTO patient_blocks (patient_id, provider_id, recorded_by, recorded_at) VALUES"
        " (%s, 'kommun-b', %s, now() - interval '1 hour')",
        (patient, ids["nurse.norr"]),
    )
    return patient, bertil, base, ids, grant_ids[0]


@pytest.fixture(scope="module")
def stay(stay_db: str) -> Iterator[Stay]:
    with psycopg.connect(stay_db, autocommit=True) as db:
        patient, bertil, base, ids, grant = _seed(db)
    with running_dashboard(Settings(database_url=stay_db, session_secret=SECRET)) as url:
        yield Stay(url, stay_db, patient, bertil, base, ids, grant)


def words(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _summary(stay: Stay, patient: uuid.UUID | None = None) -> StaySummary:
    with psycopg.connect(stay.database_url, autocommit=True) as db:
        return execute(db, stay_summary(patient or stay.patient))


def _log(stay: Stay, action: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(stay.database_url, autocommit=True) as db:
        return db.execute(
            "SELECT username, patient_id, entry_point, context, partner_grant_id, care_provider_id"
            " FROM access_log WHERE action = %s ORDER BY id",
            (action,),
        ).fetchall()


def test_the_summary_holds_the_stay_exactly(stay: Stay) -> None:
    s = _summary(stay)
    assert not s.preliminary and s.name == "Astrid Ek" and s.personal_number == PERSONAL_NUMBER
    assert (s.setting.care_provider_name, s.setting.care_unit_name, s.setting.ward_name) == (
        "Region Norrland",
        "Sjukhusvård i hemmet Norr",
        "Avdelning Norr",
    )
    a = s.admission
    assert (a.care_reason, a.pathway_id, a.pathway_title, a.admitted_by, a.provisional_level) == (
        "Hjärtsvikt, försämring NYHA III",
        "hjartsvikt",
        "Hjärtsvikt",
        "Sara Sjöström",
        CareLevel.YELLOW,
    )
    assert a.admitted_at == stay.base + timedelta(hours=7)
    assert [(lv.level, lv.reason, lv.by) for lv in s.levels] == [
        (CareLevel.RED, "Ökande andfåddhet, vikt stiger", "Erik Lund")
    ]
    # Vitals, from the rollups: the weight climbs 2,4 kg; SpO2 dips to 89 % on day 3.
    by_vital = {t.vital: t for t in s.vitals}
    assert list(by_vital) == [Vital.SPO2, Vital.BODY_WEIGHT]
    weight = by_vital[Vital.BODY_WEIGHT]
    assert (weight.n, weight.first_value, weight.last_value, weight.minimum, weight.maximum) == (
        4,
        78.0,
        80.4,
        78.0,
        80.4,
    )
    assert [d.mean for d in weight.days] == list(WEIGHTS)
    assert weight.first_at == stay.base + timedelta(hours=8) and weight.last_at == stay.base + timedelta(
        days=3, hours=8
    )
    assert weight.loinc == "29463-7" and weight.ucum == "kg" and weight.limits == ()
    spo2 = by_vital[Vital.SPO2]
    flat = [v for pair in SPO2 for v in pair]
    assert (spo2.n, spo2.first_value, spo2.last_value, spo2.minimum, spo2.maximum) == (
        8,
        95.0,
        96.0,
        89.0,
        96.0,
    )
    assert spo2.mean == pytest.approx(sum(flat) / 8)
    assert [d.mean for d in spo2.days] == [sum(p) / 2 for p in SPO2]
    assert [(lim.rule, lim.priority.label, lim.limit_value, lim.set_by) for lim in spo2.limits] == [
        ("spo2_low", "high", 88.0, "Erik Lund")
    ]
    # Alerts that opened, by rule and priority; the pending one that never opened is not there.
    assert [(c.rule, c.high, c.medium, c.low) for c in s.alert_counts] == [
        ("spo2_low", 1, 1, 0),
        ("weight_gain_3d", 1, 0, 0),
    ]
    assert s.technical_alerts == 1
    spo2_alert, weight_alert = s.high_alerts
    assert spo2_alert.acknowledged is not None
    assert (spo2_alert.acknowledged.by, spo2_alert.acknowledged.note) == ("Sara Sjöström", ACK_NOTE)
    assert spo2_alert.value == 89 and spo2_alert.escalated == ()
    assert [(st.kind, st.by, st.note) for st in weight_alert.steps] == [
        ("escalated", None, "Eskalerat till jourläkare Erik Lund"),
        ("acknowledged", "Erik Lund", DOCTOR_NOTE),
        ("resolved", "Sara Sjöström", "Utskriven"),  # ended by the discharge
    ]
    assert [(q.score, q.flags) for q in s.questionnaires] == [
        (1, ()),
        (3, ("swollen-legs",)),
        (5, ("swollen-legs", "breathless-worse")),
    ]
    (contact,) = s.contacts
    assert (contact.taken_by, contact.call_within_minutes, contact.closed_by, contact.close_note) == (
        "Sara Sjöström",
        30,
        "Sara Sjöström",
        "Ringde upp, frågor om vätskeintag.",
    )
    # The plan at discharge (deleted by the discharge, kept by its history): the pathway's vitals at the
    # red level's frequency, weight daily; the morning questions; the agreed self-care.
    assert s.plan_known
    assert [(p.vital, p.every_minutes, p.source) for p in s.plan] == [
        (Vital.SPO2, 240, "level"),
        (Vital.PULSE_RATE, 240, "level"),
        (Vital.SYSTOLIC_BP, 240, "level"),
        (Vital.BODY_WEIGHT, 1440, "level"),
    ]
    assert [(q.questionnaire, q.times) for q in s.schedules] == [("hemma-hf-daily", ("08:00",))]
    assert [(sc.rule, sc.set_by) for sc in s.self_care] == [("weight_gain_3d", "Sara Sjöström")]
    assert s.discharge is not None
    assert (s.discharge.outcome, s.discharge.by, s.discharge.note) == (
        "stayed_home",
        "Sara Sjöström",
        "Stabil vikt två dygn, åter till vårdcentralen.",
    )
    with psycopg.connect(stay.database_url, autocommit=True) as db:
        assert db.execute(
            "SELECT count(*) FROM monitoring_plans WHERE patient_id = %s", (stay.patient,)
        ).fetchone() == (0,)


def test_a_patient_still_admitted_gets_a_preliminary_summary(stay: Stay) -> None:
    s = _summary(stay, stay.other_patient)
    assert s.preliminary and s.discharge is None and s.vitals == () and s.admission.pathway_id is None
    assert s.setting.care_provider_name == "Region Norrland"
    with logged_in(stay.url, "nurse.norr", PASSWORD) as nurse:
        page = nurse.get(f"/patients/{stay.other_patient}/vardtid")
        assert page.status_code == 200 and "Preliminär" in page.text and "pågår" in words(page.text)
        record = nurse.get(f"/patients/{stay.other_patient}").text
        assert (
            f'href="/patients/{stay.other_patient}/vardtid">Sammanfattning av vårdtiden (preliminär)'
            in record
        )


def test_the_ward_reads_the_printable_document_and_each_read_is_logged_once(stay: Stay) -> None:
    before = len(_log(stay, "stay_summary"))
    with logged_in(stay.url, "nurse.norr", PASSWORD) as nurse:
        record = nurse.get(f"/patients/{stay.patient}").text
        assert 'id="vardtid"' in record and f'href="/patients/{stay.patient}/vardtid"' in record
        page = nurse.get(f"/patients/{stay.patient}/vardtid")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert (
        '<link rel="stylesheet" href="/static/stay_summary.css">' in page.text and "<script" not in page.text
    )
    text = words(page.text)
    for expected in (
        "Region Norrland",
        "Sjukhusvård i hemmet Norr (HSA-id SE2321000000-0002)",
        "Sammanfattning av vårdtiden",
        f"Personnummer {PERSONAL_NUMBER}",
        "Vårdförlopp Hjärtsvikt",
        "Hjärtsvikt, försämring NYHA III",
        "Röd Erik Lund Ökande andfåddhet, vikt stiger",
        "Kroppsvikt LOINC 29463-7",
        "78,0 kg – 80,4 kg",
        "Syremättnad LOINC 2708-6",
        "89 % – 96 %",
        "Personlig gräns: Syremättnad, låg, hög 88 %",
        "Syremättnad, låg 1 1 0",
        "Viktökning på 3 dygn 1 0 0",
        "Dessutom 1 tekniskt larm",
        "Kvitterat av Sara Sjöström",
        ACK_NOTE,
        "Eskalerat",
        "Eskalerat till jourläkare Erik Lund",
        "Kvitterat av Erik Lund",
        DOCTOR_NOTE,
        "mer svullna anklar eller ben, mycket mer andfådd",
        "Knappen på hemenheten (via knappen)",
        "Tagen av Sara Sjöström",
        "ringer inom 30 min",
        "Ringde upp, frågor om vätskeintag.",
        "Syremättnad: var 4:e timme (följer vårdnivån)",
        "Kroppsvikt: en gång per dygn (följer vårdnivån)",
        "kl. 08:00",
        "Ta en extra vätskedrivande tablett och ring oss.",
        "Utfall Stannar hemma, vården avslutad",
        "Stabil vikt två dygn, åter till vårdcentralen.",
        "Utskrift",
        "av Sara Sjöström (Sjuksköterska)",
    ):
        assert expected in text, expected
    assert "Preliminär" not in page.text and "Puls 135/min" not in text
    assert page.text.count('<svg class="sparkline"') == 2
    # The weight's line rises: the last dot higher on the page (smaller y) than the first.
    line = sparkline(list(WEIGHTS))
    assert line is not None and line.last[1] < line.first[1] and f'points="{line.points}"' in page.text
    rows = _log(stay, "stay_summary")[before:]
    assert rows == [("nurse.norr", stay.patient, "dashboard", "ward:avd-norr html", None, "region")]


def test_who_may_read_it_on_the_ward(stay: Stay) -> None:
    before = len(_log(stay, "stay_summary"))
    with logged_in(stay.url, "nurse.syd", PASSWORD) as other:
        refused = other.get(f"/patients/{stay.patient}/vardtid")
        assert refused.status_code == 403 and "Astrid" not in refused.text
        assert other.get(f"/patients/{uuid.uuid4()}/vardtid").status_code == 404
        assert other.get("/patients/inte-ett-id/vardtid").status_code == 404
    with logged_in(stay.url, "kommun.ssk", PASSWORD) as partner:  # the ward's route is not the partner's
        assert partner.get(f"/patients/{stay.patient}/vardtid").status_code == 403
    with logged_in(stay.url, "admin", PASSWORD) as admin:  # as the record: an admin sees every ward
        assert admin.get(f"/patients/{stay.patient}/vardtid").status_code == 200
    with logged_in(stay.url, "dr.lund", PASSWORD) as doctor:
        assert doctor.get(f"/patients/{stay.patient}/vardtid").status_code == 200
    assert [(r[0], r[2]) for r in _log(stay, "stay_summary")[before:]] == [
        ("admin", "dashboard"),
        ("dr.lund", "dashboard"),
    ]


def test_a_partner_reads_it_only_under_a_grant_in_force(stay: Stay) -> None:
    path = f"/partner/patients/{stay.patient}/vardtid"
    before = len(_log(stay, "partner_view_stay_summary"))
    with logged_in(stay.url, "kommun.ssk", PASSWORD) as partner:
        page = partner.get(path)
        assert page.status_code == 200 and "Sammanfattning av vårdtiden" in page.text
        assert "Karin Kommun (Samverkanspartner)" in words(page.text) and "78,0 kg – 80,4 kg" in words(
            page.text
        )
        # Another patient of the same ward, an unknown one, a malformed id: all the same 404.
        for other in (stay.other_patient, uuid.uuid4(), "inte-ett-id"):
            response = partner.get(f"/partner/patients/{other}/vardtid")
            assert response.status_code == 404 and "Bertil" not in response.text
    # After the grant, before it, revoked, blocked (spärr): 404, as a patient that does not exist.
    for username in (
        "kommun.late",
        "kommun.early",
        "kommun.revoked",
        "kommun.blocked",
        "nurse.norr",
        "admin",
    ):
        with logged_in(stay.url, username, PASSWORD) as client:
            response = client.get(path)
            assert response.status_code == 404, username
            assert "Astrid" not in response.text
    rows = _log(stay, "partner_view_stay_summary")[before:]
    assert rows == [
        ("kommun.ssk", stay.patient, "partner", f"grant:{stay.grant_id} html", stay.grant_id, "kommun-a")
    ]


def test_the_command_line_prints_text_without_the_personnummer_and_writes_the_document(
    stay: Stay, tmp_path: Path
) -> None:
    env_run = [sys.executable, "-m", "hemma.cli", "patient", "summary", str(stay.patient)]
    env = {"HEMMA_DATABASE_URL": stay.database_url, "PATH": "/usr/bin:/bin"}
    before = len(_log(stay, "stay_summary"))
    printed = subprocess.run(env_run, env=env, capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    assert PERSONAL_NUMBER not in printed.stdout and "Astrid Ek, född 1948" in printed.stdout
    assert "Kroppsvikt [LOINC 29463-7]: 78,0 kg → 80,4 kg; 78,0 kg–80,4 kg" in printed.stdout
    assert "Syremättnad, låg: 1/1/0" in printed.stdout and DOCTOR_NOTE in printed.stdout
    file = tmp_path / "vardtid.html"
    written = subprocess.run(
        [*env_run, "--html", str(file)], env=env, capture_output=True, text=True, timeout=60
    )
    assert written.returncode == 0, written.stderr
    html = file.read_text(encoding="utf-8")
    assert PERSONAL_NUMBER in html and "<style>" in html and "@page" in html and "/static/" not in html
    assert [(r[0], r[2], r[3]) for r in _log(stay, "stay_summary")[before:]] == [
        ("(operator)", "cli", "cli"),
        ("(operator)", "cli", "cli html"),
    ]
    unknown = subprocess.run(
        [*env_run[:-1], str(uuid.uuid4())], env=env, capture_output=True, text=True, timeout=60
    )
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr


def test_plain_text_and_sparklines_are_pure(stay: Stay) -> None:
    from zoneinfo import ZoneInfo

    text = plain_text(_summary(stay), ZoneInfo("Europe/Stockholm"))
    assert text.startswith("Sammanfattning av vårdtiden\nAstrid Ek, född 1948\nRegion Norrland")
    assert sparkline([]) is None
    flat = sparkline([5.0, 5.0, 5.0], width=100, height=20, pad=0)
    assert flat is not None and flat.points == "0,10 50,10 100,10"
    one = sparkline([7.0], width=100, height=20, pad=0)
    assert one is not None and one.points == "50,10"
    rising = sparkline([1.0, 2.0, 3.0], width=100, height=20, pad=0)
    assert rising is not None and rising.points == "0,20 50,10 100,0"


def test_the_printed_page_on_a4(stay: Stay, browser: Any) -> None:
    shots = Path("/tmp/shots-summary")
    shots.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 794, "height": 1123}, locale="sv-SE")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(f"{stay.url}/login?next=/patients/{stay.patient}/vardtid")
    page.fill("#username", "nurse.norr")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/patients/{stay.patient}/vardtid")
    page.emulate_media(media="print")
    assert not page.locator(".screen-only").is_visible()
    page.screenshot(path=str(shots / "stay_summary_print_a4.png"), full_page=True)
    page.pdf(path=str(shots / "stay_summary.pdf"), format="A4", print_background=True)
    assert (shots / "stay_summary.pdf").stat().st_size > 10_000
    page.emulate_media(media="screen")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(shots / "stay_summary_phone.png"), full_page=True)
    context.close()
    assert problems == []
