"""The patient app's Idag and Mina värden (issue 10) through the real dashboard, with a device cookie:
what is due and done from the plan and the readings, the word beside a value as the alert engine
decides it (a physician's personal limit moves the boundary for both), a relative's narrower view,
the access-log row of every read, and the live fragment."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from care.enrolment import EnrolledPatient
from care.limits import set_personal_threshold
from care.patient_access import digest, new_secret
from care.permissions import PatientAction
from care.plans import set_monitoring_plan
from core.settings import Settings
from dashboard.patient_realm import DEVICE_COOKIE
from tests.support.dashboard_server import running_dashboard
from tests.support.waiting import past_local_midnight_if_near
from tests.support.ward_seed import seed_two_wards

SECRET = "test-session-secret-patient-today-0123"
RELATIVE_ONLY = "Den här delen visas bara för patienten själv."
TODAY, VALUES = PatientAction.VIEW_TODAY.value, PatientAction.VIEW_VALUES.value


@dataclass
class AppSeed:
    patient: EnrolledPatient
    other: EnrolledPatient  # another patient of the same ward
    nurse_id: int
    physician: str
    patient_device: int
    patient_token: str
    relative_device: int
    relative_token: str


def add_device(
    db: psycopg.Connection, patient_id: uuid.UUID, holder: str, created_by: int, label: str = "Surfplatta"
) -> tuple[int, str]:
    """An enrolled device as the enrolment command leaves it: the token's digest, enrolled_at set."""
    token = new_secret()
    row = db.execute(
        "INSERT INTO patient_devices (patient_id, holder, label, consent_note, token_sha256, enrolled_at,"
        " created_by) VALUES (%s, %s, %s, %s, %s, now(), %s) RETURNING id",
        (patient_id, holder, label, "Muntligt samtycke" if holder == "relative" else None, digest(token),
         created_by),
    ).fetchone()  # fmt: skip
    assert row is not None
    return int(row[0]), token


def reading(
    db: psycopg.Connection,
    patient: EnrolledPatient,
    vital: str,
    value: float,
    at: datetime,
    *,
    characteristic: str = "2A5E",
    quality: tuple[str, ...] = (),
) -> None:
    """An observation row as ingest stores it (latest_vitals is the ward overview's, not read here)."""
    db.execute(
        "INSERT INTO observations (time, patient_id, vital, value, unit, quality, measurement_id, gateway_id,"
        " device_id, characteristic, received_at) VALUES (%s, %s, %s, %s, 'x', %s, gen_random_uuid(), %s,"
        " 'AA:BB:CC:DD:EE:01', %s, %s)",
        (at, patient.patient_id, vital, value, list(quality), patient.gateway_id, characteristic, at),
    )


def backdate(db: psycopg.Connection, patient: EnrolledPatient, days: float) -> None:
    """The patient enrolled and the plan set `days` ago: the plan's clock runs from the readings."""
    db.execute(
        "UPDATE patients SET enrolled_at = now() - make_interval(secs => %s) WHERE id = %s",
        (days * 86400, patient.patient_id),
    )
    db.execute(
        "UPDATE monitoring_plans SET set_at = now() - make_interval(secs => %s) WHERE patient_id = %s",
        (days * 86400, patient.patient_id),
    )


def seed_app(db: psycopg.Connection) -> AppSeed:
    anna, bertil, _, staff = seed_two_wards(
        db,
        [("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
         ("dr.lund", "Erik Lund", "physician", ["avd-norr"])],
    )  # fmt: skip
    nurse_id = staff[0]
    pd, pt = add_device(db, anna.patient_id, "patient", nurse_id)
    rd, rt = add_device(db, anna.patient_id, "relative", nurse_id, "Dotterns telefon")
    return AppSeed(anna, bertil, nurse_id, "dr.lund", pd, pt, rd, rt)


@pytest.fixture
def app_seed(db: psycopg.Connection) -> AppSeed:
    return seed_app(db)


@pytest.fixture
def base_url(database_url: str, app_seed: AppSeed) -> Iterator[str]:
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield url


def device_client(base_url: str, token: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=10)
    client.cookies.set(DEVICE_COOKIE, token, path="/p")
    return client


def tasks_of(html: str) -> dict[str, tuple[str, str]]:
    """Idag's task list: phrase -> (state, text and the next time, if shown)."""
    found = re.findall(
        r'<li class="p-task p-task-(\w+)">\s*<span class="p-task-name">([^<]+)</span>\s*'
        r'<span class="p-state[^"]*"><span aria-hidden="true">.</span> ([^<]+)</span>\s*'
        r'(?:<span class="p-task-next p-muted">([^<]+)</span>)?',
        html,
    )
    return {
        phrase: (state, " · ".join(filter(None, (text.strip(), then)))) for state, phrase, text, then in found
    }


def values_of(html: str) -> dict[str, tuple[str, str]]:
    """Idag's latest values: name -> (value text, word)."""
    found = re.findall(
        r'<span class="p-latest-name">([^<]+)</span>\s*<span class="p-value">([^<]+)</span>\s*'
        r'<span class="p-word">([^<]+)</span>',
        html,
    )
    return {name: (value, word) for name, value, word in found}


def access_rows(db: psycopg.Connection, device_id: int) -> list[tuple[str, str, str]]:
    return db.execute(
        "SELECT action, context, entry_point FROM access_log WHERE patient_device_id = %s ORDER BY id",
        (device_id,),
    ).fetchall()


# --- Idag ------------------------------------------------------------------------------------------


def test_idag_says_what_is_done_due_and_later_from_the_plan_and_the_readings(
    db: psycopg.Connection, app_seed: AppSeed, base_url: str
) -> None:
    anna = app_seed.patient
    now = datetime.now(UTC)
    plan = {"body_weight": timedelta(days=1), "systolic_bp": timedelta(hours=4),
            "diastolic_bp": timedelta(hours=4), "body_temperature": timedelta(hours=4)}  # fmt: skip
    for vital, every in plan.items():
        set_monitoring_plan(db, anna.patient_id, vital, every, "nurse.norr")
    backdate(db, anna, 2)
    reading(db, anna, "body_weight", 74.3, now - timedelta(minutes=1))  # weighed: done
    reading(db, anna, "systolic_bp", 128, now - timedelta(hours=5))  # the cuff 5 h ago on a 4 h plan: due
    reading(db, anna, "diastolic_bp", 82, now - timedelta(hours=5))
    reading(db, anna, "body_temperature", 36.8, now - timedelta(hours=1))  # not due for 3 h
    # A doubtful weight never counts as done (the engine's missing-data rule ignores it too).
    reading(db, anna, "body_temperature", 36.9, now - timedelta(minutes=2), quality=("body_movement",))

    with device_client(base_url, app_seed.patient_token) as client:
        page = client.get("/p/")
    assert page.status_code == 200, page.text
    tasks = tasks_of(page.text)
    assert tasks["Väg dig"][0] == "done" and tasks["Väg dig"][1].startswith("Gjort "), tasks
    assert tasks["Mät blodtrycket"] == ("due", "Dags nu"), tasks  # systolic and diastolic: one task
    # The thermometer 1 h ago on a 4 h plan: done today, the next time shown only while it is today too
    # (from 21:00 the next is tomorrow, and Idag keeps to today); just after midnight it was yesterday.
    zone = Settings().site_zone()
    measured_day = (now - timedelta(hours=1)).astimezone(zone).date()
    next_day = (now + timedelta(hours=3)).astimezone(zone).date()
    today = now.astimezone(zone).date()
    temperature = tasks["Mät temperaturen"]
    if measured_day != today:
        assert temperature[0] == "later" and temperature[1].startswith("Nästa gång omkring "), tasks
    elif next_day == today:
        assert temperature[0] == "done" and " · Nästa gång omkring " in temperature[1], tasks
    else:
        assert temperature[0] == "done" and "Nästa gång" not in temperature[1], tasks
    assert temperature[0] == "later" or temperature[1].startswith("Gjort "), tasks
    assert len(tasks) == 3
    assert "försenad" not in page.text.lower()
    assert 'data-live="/p/fragment/idag"' in page.text
    assert 'href="/p/kontakt"' in page.text
    values = values_of(page.text)
    assert values["Vikt"] == ("74,3 kg", "Som vanligt"), values
    # The cuff's reading together, as the patient knows it; older than its plan: nothing new since.
    assert values["Blodtryck"][0] == "128/82 mmHg", values
    assert values["Blodtryck"][1].startswith("Inget nytt värde sedan "), values
    assert "Mår du sämre? Tryck på Kontakta oss." in page.text


@pytest.mark.parametrize("personal_limit", [False, True], ids=["ward-default", "personal-limit"])
def test_the_word_is_the_engines_decision_and_a_personal_limit_moves_it(
    db: psycopg.Connection, app_seed: AppSeed, base_url: str, personal_limit: bool
) -> None:
    """SpO2 93 %: below the ward's 94 % (the engine alarms, the ward has seen it); with a physician's
    limit of 90 % it is inside (as usual). The engine itself, run on the same rows, agrees."""
    from alerts.inputs import ThresholdRequest
    from alerts.judge import ThresholdsRule
    from core.vitals import Vital
    from ingest.rule_inputs import RuleInputs

    anna = app_seed.patient
    now = datetime.now(UTC)
    reading(db, anna, "spo2", 93, now - timedelta(minutes=3))
    if personal_limit:
        for priority, limit in (("high", 88.0), ("medium", 90.0)):
            set_personal_threshold(db, patient_id=anna.patient_id, rule="spo2_low", priority=priority,
                                   limit=limit, reason="Mål 90-94 %", set_by_username="dr.lund")  # fmt: skip
    with device_client(base_url, app_seed.patient_token) as client:
        word = values_of(client.get("/p/").text)["Syret i blodet"]
    rule = ThresholdsRule()
    request = ThresholdRequest(((Vital.SPO2, (anna.patient_id,), ("spo2_low",)),))
    engine = rule.evaluate(RuleInputs(db, now=now).load(request), now)[0]
    assert word[0] == "93 %"
    if personal_limit:
        assert (word[1], engine) == ("Som vanligt", [])
    else:
        assert word[1] == "Avdelningen har sett värdet och hör av sig om något behöver göras"
        assert [r.rule for r in engine] == ["spo2_low"]


def test_a_relative_sees_the_tasks_but_no_numbers_and_not_mina_varden(
    db: psycopg.Connection, app_seed: AppSeed, base_url: str
) -> None:
    anna = app_seed.patient
    now = datetime.now(UTC)
    set_monitoring_plan(db, anna.patient_id, "body_weight", timedelta(days=1), "nurse.norr")
    backdate(db, anna, 2)
    reading(db, anna, "body_weight", 74.3, now - timedelta(minutes=1))
    reading(db, anna, "spo2", 93, now - timedelta(minutes=1))
    with device_client(base_url, app_seed.relative_token) as client:
        page = client.get("/p/")
        values = client.get("/p/varden")
        fragment = client.get("/p/fragment/idag")
    assert page.status_code == 200
    assert "Väg dig" in page.text and "Dina senaste värden" not in page.text
    assert not re.search(r"\d+,\d+ kg|\d+ %", page.text + fragment.text), "a relative's Idag shows no values"
    assert "För närstående" in page.text and 'href="/p/varden"' not in page.text
    assert values.status_code == 403 and RELATIVE_ONLY in values.text
    assert "74,3" not in values.text
    # Every read logged with the device; the refused one is not a read.
    assert access_rows(db, app_seed.relative_device) == [
        (TODAY, "page:idag", "patient_app"), (TODAY, "fragment:idag", "patient_app"),
    ]  # fmt: skip


def test_every_read_writes_one_access_log_row_with_the_device_and_the_fragment_is_the_partial(
    db: psycopg.Connection, app_seed: AppSeed, base_url: str
) -> None:
    with device_client(base_url, app_seed.patient_token) as client:
        page = client.get("/p/")
        fragment = client.get("/p/fragment/idag")
        values = client.get("/p/varden")
    assert (page.status_code, fragment.status_code, values.status_code) == (200, 200, 200)
    assert "<html" not in fragment.text and "Att göra idag" in fragment.text
    assert "Att göra idag" in page.text and "Dina senaste värden" in fragment.text
    assert access_rows(db, app_seed.patient_device) == [
        (TODAY, "page:idag", "patient_app"),
        (TODAY, "fragment:idag", "patient_app"),
        (VALUES, "page:varden", "patient_app"),
    ]
    other = db.execute(
        "SELECT count(*) FROM access_log WHERE patient_device_id IS NOT NULL AND patient_id <> %s",
        (app_seed.patient.patient_id,),
    ).fetchone()
    assert other == (0,)


def test_without_a_device_the_pages_answer_not_connected(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for path in ("/p/", "/p/fragment/idag", "/p/varden"):
            response = client.get(path)
            assert response.status_code == 401, path
            assert "inte ansluten" in response.text


# --- Mina värden ----------------------------------------------------------------------------------


def test_mina_varden_charts_two_weeks_with_the_band_a_table_and_a_neutral_sentence(
    db: psycopg.Connection, app_seed: AppSeed, base_url: str
) -> None:
    anna = app_seed.patient
    now = datetime.now(UTC)
    for day in range(14, -1, -1):  # a weight each morning, up 2.1 kg over the last 3 days
        weight = 72.0 + (0.7 * (3 - day) if day < 3 else 0.0)
        reading(db, anna, "body_weight", weight, now - timedelta(days=day, minutes=5))
    streamed = 0
    for minute in range(0, 14 * 24 * 60, 20):  # continuous oximetry: 3 readings an hour for 14 days
        reading(db, anna, "spo2", 95 + (minute // 20) % 3, now - timedelta(minutes=minute + 1),
                characteristic="2A5F")  # fmt: skip
        streamed += 1
    with device_client(base_url, app_seed.patient_token) as client:
        page = client.get("/p/varden")
    assert page.status_code == 200
    html = page.text
    charts = re.findall(r'<svg class="p-chart-svg"[^>]*role="img" aria-label="([^"]+)"', html)
    assert [c.split(" de senaste")[0] for c in charts] == ["Vikt", "Syret i blodet"]
    assert "Ändring på 3 dagar: +2,1 kg" in html
    assert "lägst 72,0 kg och högst 74,1 kg" in html
    assert "högst 97 %" in html and "lägst 95 %" in html
    # Downsampled: at most one point an hour, and a line without dots for the stream.
    spo2 = html.split('id="varde-spo2"')[1]
    points = re.search(r'<polyline class="p-chart-line" points="([^"]+)"', spo2)
    assert points is not None
    assert 14 * 24 - 2 <= len(points.group(1).split()) <= 14 * 24 + 1 < streamed
    assert len(html) < 150_000
    # The band: SpO2's ward limit (94 %) is this patient's lower edge; weight has no band.
    assert 'class="p-chart-band"' in spo2 and 'class="p-chart-band"' not in html.split('id="varde-spo2"')[0]
    assert html.count("<summary>Visa som tabell</summary>") == 2
    for clinical in ("gått upp", "för hög", "för låg", "varning"):
        assert clinical not in html.lower()


def test_idag_in_the_browser_turns_a_due_task_done_by_itself(
    db: psycopg.Connection, app_seed: AppSeed, database_url: str, browser: object
) -> None:
    """The live region (patient.js, data-live): a weight arriving while Idag is open ticks the task off
    without a reload."""
    anna = app_seed.patient
    past_local_midnight_if_near()  # the task is today's: not one that turns into tomorrow's meanwhile
    set_monitoring_plan(db, anna.patient_id, "body_weight", timedelta(days=1), "nurse.norr")
    backdate(db, anna, 2)
    settings = Settings(database_url=database_url, session_secret=SECRET, patient_poll_seconds=1)
    with running_dashboard(settings) as url:
        context = browser.new_context(viewport={"width": 390, "height": 844}, locale="sv-SE")  # type: ignore[attr-defined]
        try:
            context.add_cookies(
                [{"name": DEVICE_COOKIE, "value": app_seed.patient_token, "url": url + "/p/"}]
            )
            page = context.new_page()
            page.goto(url + "/p/")
            assert page.locator("#idag .p-task-due .p-task-name").inner_text() == "Väg dig"
            reading(db, anna, "body_weight", 74.3, datetime.now(UTC))
            page.wait_for_selector("#idag .p-task-done", timeout=15_000)
            assert page.locator("#idag .p-task-done .p-state").inner_text().startswith("✓ Gjort ")
        finally:
            context.close()
