"""Admission (issue 11): pathways as data, what a care level sets, the ward's inclusion checklist, and the
`admit` command (care.admission) on a real database, with its refusals and access-log rows."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from care import texts_en, texts_sv
from care.access_log import CLI
from care.acting import Origin, execute
from care.admission import Admitted, admission_choices, admit, template_plan
from care.care_levels import LEVELS, NO_LEVEL, CareLevel, escalate_after, level_plan_minutes, set_level
from care.enrolment import ensure_ward
from care.inclusion import criteria, set_criteria
from care.pathways import PathwayError, load_directory, parse, pathways
from care.personal_numbers import check_personal_number
from care.plans import set_plan
from care.refusals import RefusalCode, Refused
from care.staff import create_staff_user
from core.vitals import Vital
from tests.support.ward_seed import PASSWORD

C = RefusalCode
ORIGIN = Origin(CLI, os_user="test@host")
ASTRID = "19480101-9870"  # valid check digit
BERTIL = "19500505-2229"
DEFAULT_CRITERIA = [
    "Patienten samtycker till vård i hemmet",
    "Stabil nog för vård i hemmet enligt läkarbedömning",
    "Bor inom teamets upptagningsområde",
    "Kan hantera mätutrustningen själv eller med hjälp",
    "Telefon nås dygnet runt",
]


# --- pathways: data, validated on load ------------------------------------------------------------------


def test_the_shipped_pathways_and_their_templates() -> None:
    shipped = pathways()
    assert set(shipped) == {"hjartsvikt", "kol", "infektion-iv-antibiotika"}
    hf = shipped["hjartsvikt"]
    assert hf.vitals == (Vital.BODY_WEIGHT, Vital.SYSTOLIC_BP, Vital.PULSE_RATE, Vital.SPO2)
    assert [(q.questionnaire, q.times) for q in hf.questionnaires] == [("hemma-hf-daily", ("08:00",))]
    kol = shipped["kol"]
    assert Vital.RESPIRATORY_RATE in kol.vitals and kol.note is not None and "skala 2" in kol.note
    assert [q.questionnaire for q in kol.questionnaires] == ["hemma-copd-daily"]
    iv = shipped["infektion-iv-antibiotika"]
    assert [q.questionnaire for q in iv.questionnaires] == ["hemma-wellbeing"]
    assert {p.suggested_level for p in shipped.values()} <= {"red", "yellow", "green"}


GOOD: dict[str, Any] = {
    "id": "test-vag", "title": "Test", "description": "Ett test", "suggested_level": "red",
    "vitals": ["spo2"], "questionnaires": [{"id": "hemma-wellbeing", "times": ["09:00"]}],
}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"id": "annan"}, "`id` must be the file's name"),
        ({"vitals": ["spo2", "blood_sugar"]}, "does not know"),
        ({"vitals": []}, "at least one vital"),
        ({"vitals": ["spo2", "spo2"]}, "more than once"),
        ({"vitals": ["diastolic_bp"]}, "systolic_bp"),
        ({"suggested_level": "purple"}, "suggested_level"),
        ({"questionnaires": [{"id": "hemma-nope", "times": ["09:00"]}]}, "not in care/questionnaires"),
        ({"questionnaires": [{"id": "hemma-wellbeing", "times": ["25:00"]}]}, "HH:MM"),
        ({"questionnaires": [{"id": "hemma-wellbeing", "times": []}]}, "HH:MM"),
        ({"colour": "blue"}, "unknown keys"),
        ({"title": " "}, "`title` is missing"),
    ],
)
def test_a_bad_template_fails_naming_file_and_field(change: dict[str, Any], complaint: str) -> None:
    assert parse(GOOD, name="test-vag.toml").vitals == (Vital.SPO2,)
    with pytest.raises(PathwayError) as caught:
        parse(GOOD | change, name="test-vag.toml")
    assert str(caught.value).startswith("test-vag.toml: ") and complaint in str(caught.value)


def test_a_directory_with_broken_toml_is_refused(tmp_path: Path) -> None:
    (tmp_path / "trasig.toml").write_text("id = [", encoding="utf-8")
    with pytest.raises(PathwayError, match=r"trasig\.toml: not readable TOML"):
        load_directory(tmp_path)


# --- personal numbers ----------------------------------------------------------------------------------


def test_personal_numbers_by_date_and_check_digit() -> None:
    today = date(2025, 3, 4)
    astrid = check_personal_number(" 194801019870 ", today=today)
    assert (astrid.number, astrid.birth_year, astrid.coordination) == (ASTRID, 1948, False)
    assert check_personal_number("19121212-1212", today=today).birth_year == 1912
    # Samordningsnummer: day + 60 (1912-12-12 → 72), its own check digit.
    coordination = check_personal_number("19121272-1219", today=today)
    assert (coordination.birth_year, coordination.coordination) == (1912, True)
    for bad in ("19480101-9871", "480101-9870", "19480230-1234", "20990101-0000", "1948-01-01-9870",
                "", "19480101_9870", "١٩٤٨٠١٠١٩٨٧٠"):  # fmt: skip
        with pytest.raises(Refused) as caught:
            check_personal_number(bad, today=today)
        assert caught.value.code is C.PERSONAL_NUMBER_FORM
        assert bad.strip() == "" or bad not in str(caught.value) + texts_sv.text(caught.value.refusal)


# --- what a care level sets ----------------------------------------------------------------------------


def test_what_a_level_sets() -> None:
    table = {m.level: (m.review_every, m.measure_every, m.escalate_after_minutes) for m in LEVELS.values()}
    assert table == {
        CareLevel.RED: (timedelta(hours=8), timedelta(hours=4), 5),
        CareLevel.YELLOW: (timedelta(hours=24), timedelta(hours=8), 10),
        CareLevel.GREEN: (timedelta(hours=72), timedelta(hours=12), 15),
    }
    # Weight is daily whatever the level; every other vital follows it.
    assert [level_plan_minutes(m, Vital.BODY_WEIGHT) for m in LEVELS.values()] == [1440] * 3
    assert [level_plan_minutes(m, Vital.SPO2) for m in LEVELS.values()] == [240, 480, 720]
    assert level_plan_minutes(NO_LEVEL, Vital.PULSE_RATE) == 480
    # The shorter of the level's and the ward's time; no level: the ward's.
    assert [escalate_after(lv, 15) for lv in ("red", "yellow", "green", None)] == [5, 10, 15, 15]
    assert [escalate_after(lv, 5) for lv in ("red", "yellow", "green", None)] == [5, 5, 5, 5]
    assert escalate_after("red", 3) == 3 and escalate_after("purple", 12) == 12


# --- the command ---------------------------------------------------------------------------------------


@pytest.fixture
def ward(db: psycopg.Connection) -> psycopg.Connection:
    ensure_ward(db, "avd-norr", "Avdelning Norr")
    ensure_ward(db, "avd-syd", "Avdelning Syd")
    for username, name, role, wards in [
        ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
        ("dr.lund", "Erik Lund", "physician", ["avd-norr"]),
        ("nurse.syd", "Sven Syd", "nurse", ["avd-syd"]),
        ("admin", "Ada Admin", "admin", []),
    ]:
        create_staff_user(db, username=username, display_name=name, role=role, password=PASSWORD,
                          ward_ids=wards)  # fmt: skip
    db.execute("INSERT INTO gateways (id) VALUES ('kit-0101'), ('kit-0102'), ('kit-0103')")
    return db


def _admit(db: psycopg.Connection, **kw: Any) -> Admitted:
    args: dict[str, Any] = {
        "ward_id": "avd-norr", "display_name": "Astrid Lindqvist", "personal_number": ASTRID,
        "care_reason": "Hjärtsvikt NYHA III, ökad vikt", "pathway_id": "hjartsvikt",
        "gateway_id": "kit-0101", "confirmed": DEFAULT_CRITERIA, "by": "nurse.norr", "origin": ORIGIN,
    }  # fmt: skip
    return execute(db, admit(**(args | kw)))


def _refused(db: psycopg.Connection, **kw: Any) -> Refused:
    with pytest.raises(Refused) as caught:
        _admit(db, **kw)
    return caught.value


def _plan(db: psycopg.Connection, patient: uuid.UUID) -> dict[str, tuple[int, str]]:
    rows = db.execute(
        "SELECT vital, every_minutes, source FROM monitoring_plans WHERE patient_id = %s", (patient,)
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def test_new_wards_start_with_the_default_checklist(ward: psycopg.Connection) -> None:
    assert execute(ward, criteria("avd-syd")) == DEFAULT_CRITERIA
    choices = execute(ward, admission_choices("avd-norr"))
    assert (choices.kits, choices.criteria) == (("kit-0101", "kit-0102", "kit-0103"), tuple(DEFAULT_CRITERIA))


def test_a_physician_admits_with_a_level_and_the_pathways_plan(ward: psycopg.Connection) -> None:
    done = _admit(ward, by="dr.lund", level="red", level_reason="Nyinsatt diuretika, följs tätt")
    assert (done.level, done.provisional_level, done.gateway_id) == (CareLevel.RED, None, "kit-0101")
    row = ward.execute(
        "SELECT display_name, personal_number, birth_year, care_reason, ward_id FROM patients WHERE id = %s",
        (done.patient_id,),
    ).fetchone()
    assert row == ("Astrid Lindqvist", ASTRID, 1948, "Hjärtsvikt NYHA III, ökad vikt", "avd-norr")
    assert _plan(ward, done.patient_id) == {
        "body_weight": (1440, "level"), "systolic_bp": (240, "level"),
        "pulse_rate": (240, "level"), "spo2": (240, "level"),
    }  # fmt: skip
    schedules = ward.execute(
        "SELECT questionnaire, times::text[] FROM questionnaire_schedules WHERE patient_id = %s",
        (done.patient_id,),
    ).fetchall()
    assert schedules == [("hemma-hf-daily", ["08:00:00"])]
    level = ward.execute("SELECT level, reason FROM care_levels WHERE patient_id = %s", (done.patient_id,))
    assert level.fetchall() == [("red", "Nyinsatt diuretika, följs tätt")]
    assert ward.execute("SELECT patient_id FROM gateways WHERE id = 'kit-0101'").fetchone() == (
        done.patient_id,
    )
    admission = ward.execute(
        "SELECT pathway, provisional_level, confirmed, not_confirmed, override_reason FROM admissions"
        " WHERE patient_id = %s",
        (done.patient_id,),
    ).fetchone()
    assert admission == ("hjartsvikt", None, DEFAULT_CRITERIA, [], None)
    log = ward.execute(
        "SELECT username, action, context, entry_point FROM access_log WHERE patient_id = %s ORDER BY id",
        (done.patient_id,),
    ).fetchall()
    assert log == [
        ("dr.lund", "set_questionnaire_schedule", "questionnaire_schedule:hemma-hf-daily", CLI),
        ("dr.lund", "set_care_level", log[1][2], CLI),
        ("dr.lund", "admit_patient", "pathway:hjartsvikt gateway:kit-0101", CLI),
    ]
    assert log[1][2].startswith("care_level:")


def test_a_nurse_admits_without_a_level_and_the_plan_follows_the_physicians_first_decision(
    ward: psycopg.Connection,
) -> None:
    done = _admit(ward, pathway_id="kol", personal_number=BERTIL, display_name="Bertil Berg")
    assert (done.level, done.provisional_level) == (None, CareLevel.YELLOW)
    assert ward.execute("SELECT count(*) FROM care_levels").fetchone() == (0,)
    assert {v: m for v, (m, _) in _plan(ward, done.patient_id).items()} == {
        "spo2": 480, "pulse_rate": 480, "body_temperature": 480, "respiratory_rate": 480,
    }  # fmt: skip
    # A nurse sets the temperature by hand: a change of level leaves that row alone.
    execute(ward, set_plan(patient_id=done.patient_id, vital="body_temperature", every=timedelta(hours=6),
                           by="nurse.norr", origin=ORIGIN))  # fmt: skip
    execute(ward, set_level(patient_id=done.patient_id, level="red", reason="Sjunkande SpO2",
                            by="dr.lund", origin=ORIGIN))  # fmt: skip
    assert _plan(ward, done.patient_id) == {
        "spo2": (240, "level"), "pulse_rate": (240, "level"),
        "respiratory_rate": (240, "level"), "body_temperature": (360, "clinician"),
    }  # fmt: skip
    execute(ward, set_level(patient_id=done.patient_id, level="green", reason="Stabil sedan två dygn",
                            by="dr.lund", origin=ORIGIN))  # fmt: skip
    assert _plan(ward, done.patient_id)["spo2"] == (720, "level")
    assert _plan(ward, done.patient_id)["body_temperature"] == (360, "clinician")


def test_the_checklist_is_required_and_a_physician_may_override_with_a_reason(
    ward: psycopg.Connection,
) -> None:
    partial = DEFAULT_CRITERIA[:3] + DEFAULT_CRITERIA[4:]
    refused = _refused(ward, confirmed=partial)
    assert refused.code is C.INCLUSION_NOT_CONFIRMED and refused.params["missing"] == 1
    assert texts_sv.text(refused.refusal).startswith("1 av inklusionskriterierna är inte bekräftade")
    assert _refused(ward, confirmed=partial, by="dr.lund").code is C.INCLUSION_OVERRIDE_REASON
    assert _refused(ward, confirmed=[*DEFAULT_CRITERIA, "Något annat"]).code is C.INCLUSION_CHANGED
    done = _admit(ward, confirmed=partial, by="dr.lund", override_reason="Dottern hjälper med vågen")
    row = ward.execute(
        "SELECT not_confirmed, override_reason FROM admissions WHERE patient_id = %s", (done.patient_id,)
    ).fetchone()
    assert row == ([DEFAULT_CRITERIA[3]], "Dottern hjälper med vågen")
    assert done.overridden == (DEFAULT_CRITERIA[3],)
    context = ward.execute(
        "SELECT context FROM access_log WHERE patient_id = %s AND action = 'admit_patient'",
        (done.patient_id,),
    ).fetchone()
    assert context == ("pathway:hjartsvikt gateway:kit-0101 override",)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"personal_number": "19480101-9871"}, C.PERSONAL_NUMBER_FORM),
        ({"display_name": "  "}, C.PATIENT_NAME_EMPTY),
        ({"display_name": "A" * 101}, C.PATIENT_NAME_TOO_LONG),
        ({"care_reason": "x"}, C.ADMISSION_CARE_REASON),
        ({"pathway_id": "cancer"}, C.UNKNOWN_PATHWAY),
        ({"gateway_id": "kit-9999"}, C.KIT_NOT_OFFERED),
        ({"gateway_id": "KIT 1; DROP"}, C.KIT_NOT_OFFERED),
        ({"level": "red"}, C.ROLE),  # a nurse names no level
        ({"by": "admin"}, C.ROLE),  # admins do not admit
        ({"by": "nurse.syd"}, C.WARD_ACCESS),
        ({"ward_id": "avd-ost"}, C.NO_WARD),
        ({"by": "dr.lund", "level": "purple"}, C.CARE_LEVEL_CHOICE),
    ],
)
def test_refusals_leave_nothing_behind(
    ward: psycopg.Connection, change: dict[str, Any], code: RefusalCode
) -> None:
    refused = _refused(ward, **change)
    assert refused.code is code
    assert ASTRID not in str(refused) and ASTRID not in texts_sv.text(refused.refusal)
    assert ward.execute("SELECT count(*) FROM patients").fetchone() == (0,)
    assert ward.execute("SELECT count(*) FROM access_log").fetchone() == (0,)


def test_the_kit_and_the_personal_number_are_one_patients(ward: psycopg.Connection) -> None:
    first = _admit(ward)
    lent = _refused(ward, personal_number=BERTIL, display_name="Bertil Berg")
    assert (lent.code, str(lent)) == (C.KIT_LENT, texts_en.text(lent.refusal))
    twice = _refused(ward, gateway_id="kit-0102")
    assert twice.code is C.PERSONAL_NUMBER_ENROLLED
    # The same number written without the hyphen is the same person.
    assert (
        _refused(ward, gateway_id="kit-0102", personal_number="194801019870").code
        is C.PERSONAL_NUMBER_ENROLLED
    )
    assert ward.execute("SELECT count(*) FROM patients").fetchone() == (1,)
    assert execute(ward, admission_choices("avd-norr")).kits == ("kit-0102", "kit-0103")
    assert first.patient_id


def test_physicians_edit_the_checklist_others_may_not(ward: psycopg.Connection) -> None:
    saved = execute(ward, set_criteria(ward_id="avd-norr", items=["  Samtycke  ", "", "Bor i Umeå"],
                                       by="dr.lund"))  # fmt: skip
    assert saved == ("Samtycke", "Bor i Umeå") and execute(ward, criteria("avd-norr")) == list(saved)
    assert execute(ward, criteria("avd-syd")) == DEFAULT_CRITERIA  # another ward's list stays
    for by, code in (("nurse.norr", C.ROLE), ("admin", C.ROLE)):
        with pytest.raises(Refused) as caught:
            execute(ward, set_criteria(ward_id="avd-norr", items=["Annat"], by=by))
        assert caught.value.code is code
    for items in (
        [],
        ["ok"],
        ["Samma", "Samma"],
        ["x" * 201],
        [f"Punkt {i}" for i in range(21)],
        ["a\x00bc"],
    ):
        with pytest.raises(Refused) as caught:
            execute(ward, set_criteria(ward_id="avd-norr", items=items, by="dr.lund"))
        assert caught.value.code in (C.INCLUSION_ITEMS, C.TEXT_CHARACTERS)
    assert execute(ward, criteria("avd-norr")) == ["Samtycke", "Bor i Umeå"]


def test_template_plan_is_what_admit_lays_down(ward: psycopg.Connection) -> None:
    hf = pathways()["hjartsvikt"]
    preview = template_plan(hf, LEVELS[CareLevel.YELLOW])
    done = _admit(ward)
    assert done.plan == preview
    assert {v.value: (m, "level") for v, m in preview} == _plan(ward, done.patient_id)


def test_the_cli_admits_with_the_same_command(ward: psycopg.Connection, database_url: str) -> None:
    from tests.support.entry_points import hemma_cli

    shown = hemma_cli(database_url, "ward", "criteria", "avd-norr")
    assert shown.returncode == 0 and shown.stdout.splitlines()[0] == f"1. {DEFAULT_CRITERIA[0]}"
    common = ["patient", "admit", "--ward", "avd-norr", "--name", "Astrid Lindqvist", "--reason",
              "Infektion, iv antibiotika", "--pathway", "infektion-iv-antibiotika",
              "--kit", "kit-0102"]  # fmt: skip
    bad = hemma_cli(database_url, *common, "--personal-number", "19480101-9871", "--confirmed", "all",
                    "--by", "nurse.norr")  # fmt: skip
    assert (
        bad.returncode == 2 and "19480101" not in bad.stderr and "personal number is not valid" in bad.stderr
    )
    partial = hemma_cli(database_url, *common, "--personal-number", ASTRID, "--confirmed", "1,2,3",
                        "--by", "nurse.norr")  # fmt: skip
    assert partial.returncode == 2 and "2 inclusion criteria not confirmed" in partial.stderr
    done = hemma_cli(database_url, *common, "--personal-number", ASTRID, "--confirmed", "all", "--level",
                     "green", "--by", "dr.lund")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "care level: green; plan: body_temperature every 720 min" in done.stdout
    assert ASTRID not in done.stdout
    log = ward.execute("SELECT username, entry_point FROM access_log WHERE action = 'admit_patient'")
    assert log.fetchall() == [("dr.lund", "cli")]
