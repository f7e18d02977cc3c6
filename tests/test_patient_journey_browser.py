"""Oskar's week in the patient app, end to end in real Chromium with the real services (issue 10).

The nurse makes the app's link on the patient record; Oskar's tablet opens it and is enrolled with no
password; he answers the heart-failure check ("mycket mer andfådd"); the morning's weight reaches the
ward through real Mosquitto and the real ingest service, 2.1 kg above three days ago; the ward gets one
high alert carrying both facts while, at the same moment, Oskar's Idag shows the self-care action he
and the team agreed for that rule; and his "Vem har läst" lists the nurse's read of his record.
(Kontakta mig and the message round trip in a browser are tests/test_patient_conversation_browser.py;
the audit of every screen is tests/test_patient_accessibility.py.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from care.acting import execute
from care.enrolment import enrol_patient, ensure_ward
from care.plans import set_monitoring_plan
from care.questionnaires import set_schedule
from care.self_care import set_instruction
from care.staff import create_staff_user
from core.settings import Settings
from core.vitals import Vital
from tests.support.dashboard_server import log_in_page, running_dashboard, watched_page
from tests.support.ingest import batch, measurement, running_ingest
from tests.support.mqtt import drop_session, publish_all
from tests.support.waiting import wait_until
from tests.support.ward_seed import PASSWORD

TABLET = {"width": 820, "height": 1180}
SELF_CARE = "Om vikten ökat mer än 2 kg på 3 dagar: ta en extra vätskedrivande tablett och ring oss."
SCALE = "2A9D"  # the Weight Measurement characteristic


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("HEMMA_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def world(
    database_url: str, mqtt_url: str, db: psycopg.Connection, unique_id: str
) -> Iterator[dict[str, Any]]:
    ward = f"ward-{unique_id}"
    ensure_ward(db, ward, "Mobila närsjukvården")
    oskar = enrol_patient(db, ward_id=ward, display_name="Oskar Lindqvist", gateway_id=f"gw-j-{unique_id}",
                          birth_year=1943)  # fmt: skip
    create_staff_user(db, username="sara", display_name="Sara Sjöström", role="nurse", password=PASSWORD,
                      ward_ids=[ward])  # fmt: skip
    # Oskar has had his kit all week: a reading is his when his kit assignment covers its time (issue 11).
    db.execute("UPDATE kit_assignments SET starts_at = now() - interval '7 days' WHERE patient_id = %s",
               (oskar.patient_id,))  # fmt: skip
    set_monitoring_plan(db, oskar.patient_id, "body_weight", timedelta(days=1), "sara")
    execute(db, set_schedule(patient_id=oskar.patient_id, questionnaire="hemma-hf-daily", times=["08:00"],
                             by="sara", origin=None))  # fmt: skip
    execute(db, set_instruction(patient_id=oskar.patient_id, rule="weight_gain_3d", text=SELF_CARE, by="sara",
                                origin=None))  # fmt: skip
    settings = Settings(database_url=database_url, mqtt_url=mqtt_url, session_secret="journey-" + unique_id,
                        ingest_client_id=f"ingest-journey-{unique_id}", patient_poll_seconds=1)  # fmt: skip
    with running_ingest(settings), running_dashboard(settings) as base_url:
        yield {"base_url": base_url, "oskar": oskar, "ward": ward, "settings": settings}
    drop_session(mqtt_url, settings.ingest_client_id)


def weigh(settings: Settings, gateway_id: str, kg: float, at: datetime) -> None:
    """A weight from the kit's scale, through the broker to the real ingest service."""
    reading = measurement({Vital.BODY_WEIGHT: kg}, at=at, characteristic=SCALE)
    assert settings.mqtt_url is not None
    publish_all(settings.mqtt_url, [batch(gateway_id, [reading])])


def test_oskars_week_enrol_answer_weight_alert_and_self_care_at_the_same_moment(
    browser: Any, world: dict[str, Any], db: psycopg.Connection, shots: Path
) -> None:
    base_url, oskar, settings = world["base_url"], world["oskar"], world["settings"]
    problems: list[str] = []
    now = datetime.now(UTC)
    # Three mornings of weights, through the real path: 80.0, 80.5, 81.2 kg.
    for days_ago, kg in ((3, 80.0), (2, 80.5), (1, 81.2)):
        weigh(settings, oskar.gateway_id, kg, now - timedelta(days=days_ago, minutes=5))
    stored = "SELECT count(*) FROM observations WHERE patient_id = %s"
    wait_until(
        lambda: db.execute(stored, (oskar.patient_id,)).fetchone()[0] == 3, what="three weights stored"
    )

    # The nurse makes the link on the record: a printable page with the QR code and the link.
    nurse_context, nurse = watched_page(browser, problems)
    log_in_page(nurse, base_url, f"/patients/{oskar.patient_id}", "sara", PASSWORD)
    editor = nurse.locator("details.app-device-editor")
    if editor.get_attribute("open") is None:  # open already while the patient has no device
        editor.locator("summary").click()
    nurse.get_by_label("Namn på enheten eller den närstående").fill("Oskars surfplatta")
    nurse.get_by_role("button", name="Skapa länk och QR-kod").click()
    nurse.get_by_role("heading", name="Anslut till Hemma").wait_for()
    assert nurse.locator(".app-link-qr img").get_attribute("src").startswith("data:image/svg+xml")
    link = nurse.locator(".app-link-url code").inner_text()
    assert link.startswith(f"{Settings().dashboard_url}/p/anslut?kod=")

    # Oskar's tablet opens it (the same path on this test's server) and is enrolled: no password.
    tablet_context = browser.new_context(viewport=TABLET, locale="sv-SE", timezone_id="Europe/Stockholm")
    tablet = tablet_context.new_page()
    tablet.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tablet.on("pageerror", lambda e: problems.append(str(e)))
    tablet.goto(base_url + link.removeprefix(Settings().dashboard_url))
    tablet.get_by_role("button", name="Anslut").click()
    tablet.wait_for_url("**/p/")
    assert "Oskar!" in tablet.inner_text("main")  # "God morgon/Hej/God kväll, Oskar!" by the hour
    assert SELF_CARE not in tablet.inner_text("main")  # no weight alert yet

    # He answers the heart-failure check: much more breathless, swollen ankles.
    tablet.goto(base_url + "/p/fragor/hemma-hf-daily")
    tablet.get_by_label("Mycket mer andfådd").check()
    tablet.get_by_label("Ja, lite mer").check()
    tablet.locator("fieldset", has_text="fler kuddar").get_by_label("Nej").check()
    tablet.locator("fieldset", has_text="yr eller svimmat").get_by_label("Nej").check()
    tablet.get_by_role("button", name="Skicka svaren").click()
    tablet.get_by_text("Tack!").first.wait_for()
    tablet.goto(base_url + "/p/")

    # The morning's weight: 82.1 kg, 2.1 kg above the lowest of the three days before.
    weigh(settings, oskar.gateway_id, 82.1, datetime.now(UTC) - timedelta(seconds=5))

    # One high alert with both facts on the ward; the agreed self-care on Oskar's Idag, by itself.
    def live_alerts() -> list[tuple[str, str, str]]:
        return db.execute(
            "SELECT rule, priority, message FROM alerts WHERE patient_id = %s AND state <> 'resolved'"
            " AND condition = 'physiological' ORDER BY id",
            (oskar.patient_id,),
        ).fetchall()

    alerts = wait_until(lambda: live_alerts() or None, what="the weight alert")
    both = "Viktökning 2,1 kg på 3 dygn (gräns 2 kg); patienten rapporterar: mycket mer andfådd"
    assert alerts == [("weight_gain_3d", "high", both)]
    tablet.get_by_text(SELF_CARE).wait_for(timeout=15000)
    tablet.screenshot(path=str(shots / "journey-idag-self-care-tablet.png"), full_page=True)
    nurse.goto(f"{base_url}/wards/{world['ward']}")
    card = nurse.locator(f'article.patient[data-patient-id="{oskar.patient_id}"]')
    assert "mycket mer andfådd" in card.inner_text()
    notice = db.execute("SELECT text, patient_device_id IS NOT NULL FROM self_care_notices").fetchall()
    assert notice == [(SELF_CARE, True)]  # shown to him once, recorded beside the alert

    # The nurse reads his record; his "Vem har läst" shows it, as role and unit.
    nurse.goto(f"{base_url}/patients/{oskar.patient_id}")
    nurse.locator("#patient-app").wait_for()
    nurse.wait_for_function(  # every chart fetched (and so logged) before he looks
        "() => [...document.querySelectorAll('[data-chart]')].every(f => f.dataset.points !== undefined)"
    )
    tablet.goto(base_url + "/p/vem-har-last")
    entries = tablet.locator("#vem-har-last-lista li").all_inner_texts()
    assert "Du själv (Oskars surfplatta)" in entries[0]  # his own look at this page, newest first
    # The record's read, then its charts' reads (dashboard.record_charts logs each chart it serves),
    # newest first: both as the nurse's role and unit.
    nurse_reads = entries[1:3]
    assert "Tittade på dina mätvärden i diagram" in nurse_reads[0]
    assert "Läste din journal i Hemma" in nurse_reads[1]
    assert all("Sjuksköterska, Mobila närsjukvården" in read for read in nurse_reads)
    assert "Sara" not in tablet.inner_text("main")  # names on request from the region, not here
    tablet.screenshot(path=str(shots / "journey-vem-har-last-tablet.png"), full_page=True)

    assert problems == []
    tablet_context.close()
    nurse_context.close()
