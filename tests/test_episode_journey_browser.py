"""A whole home care episode on the dashboard (issue 11): a nurse admits a patient with a pathway and a
kit from stock, the kit's readings arrive through MQTT and ingest onto the record and its charts, a
nurse discharges him, and the kit comes back as "returned", its later readings on nobody.

Real PostgreSQL, Mosquitto, the ingest service and Chromium; each step done the way staff do it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from care.acting import execute
from care.enrolment import ensure_ward
from care.kit_assignments import register_kit
from care.staff import create_staff_user
from core.settings import Settings
from core.vitals import Vital
from tests.support.dashboard_server import log_in_page, running_dashboard, watched_page
from tests.support.ingest import batch, measurement, running_ingest
from tests.support.mqtt import publish_all
from tests.support.waiting import wait_until
from tests.support.ward_seed import PASSWORD

SECRET = "test-session-secret-episode-0123456789"
SHOTS = Path("/tmp/shots-episode")
KIT = "kit-0201"
CRITERIA = [
    "Patienten samtycker till vård i hemmet",
    "Stabil nog för vård i hemmet enligt läkarbedömning",
    "Bor inom teamets upptagningsområde",
    "Kan hantera mätutrustningen själv eller med hjälp",
    "Telefon nås dygnet runt",
]


@pytest.fixture
def site(database_url: str, db: psycopg.Connection) -> Iterator[str]:
    ensure_ward(db, "avd-norr", "Avdelning Norr")
    create_staff_user(db, username="nurse.norr", display_name="Sara Sjöström", role="nurse",
                      password=PASSWORD, ward_ids=["avd-norr"])  # fmt: skip
    execute(db, register_kit(gateway_id=KIT, by=None))
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield url


def _observations(db: psycopg.Connection) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT p.display_name, o.vital, o.value FROM observations o JOIN patients p ON p.id = o.patient_id"
        " ORDER BY o.time, o.vital"
    ).fetchall()


def test_admit_lend_readings_and_discharge_on_the_dashboard(
    site: str, browser: Any, db: psycopg.Connection, database_url: str, mqtt_url: str, unique_id: str
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    context, page = watched_page(browser, problems)
    ingest = Settings(mqtt_url=mqtt_url, database_url=database_url, ingest_client_id=f"ingest-ep-{unique_id}")
    try:
        # Admission: the nurse chooses the pathway and a kit in stock; the level is left to a physician.
        log_in_page(page, site, "/wards/avd-norr", "nurse.norr", PASSWORD)
        page.click("text=Skriv in patient")
        page.fill("#display_name", "Oskar Nilsson")
        page.fill("#personal_number", "19430312-1232")
        page.fill("#care_reason", "Hjärtsvikt, viktuppgång")
        page.check("input[name=pathway][value=hjartsvikt]")
        for item in CRITERIA:
            page.check(f"input[name=confirmed][value='{item}']")
        assert KIT in page.locator("#gateway_id option").all_inner_texts()
        page.select_option("#gateway_id", KIT)
        page.click("button:has-text('Skriv in patienten')")
        page.wait_for_url("**/patients/*")
        patient_id = page.url.rsplit("/", 1)[1]
        lent = db.execute(
            "SELECT patient_id::text, ends_at FROM kit_assignments WHERE gateway_id = %s", (KIT,)
        ).fetchall()
        assert lent == [(patient_id, None)]
        assert db.execute("SELECT kit_state FROM gateways WHERE id = %s", (KIT,)).fetchone() == ("assigned",)

        # Readings from the kit, through the broker and ingest, land on him and on his record's charts.
        now = datetime.now(UTC)
        readings = [
            measurement({Vital.BODY_WEIGHT: w}, at=now - timedelta(minutes=m), characteristic="2A9D")
            for w, m in ((81.4, 3), (81.6, 2))
        ] + [measurement({Vital.SPO2: 95, Vital.PULSE_RATE: 78}, at=now - timedelta(minutes=1))]
        with running_ingest(ingest) as service:
            publish_all(mqtt_url, [batch(KIT, readings)])
            wait_until(lambda: service.metrics["observations_stored"] >= 4, timeout=30, what="stored")
        assert _observations(db) == [
            ("Oskar Nilsson", "body_weight", 81.4),
            ("Oskar Nilsson", "body_weight", 81.6),
            ("Oskar Nilsson", "pulse_rate", 78.0),
            ("Oskar Nilsson", "spo2", 95.0),
        ]
        page.reload()
        weight = page.locator('[data-chart="body_weight"]')
        weight.wait_for()
        page.wait_for_function(
            "() => document.querySelector('[data-chart=body_weight]').dataset.points !== undefined"
        )
        assert int(weight.get_attribute("data-points") or 0) >= 1  # the chart was given his weighings
        page.screenshot(path=str(SHOTS / "episode-record-with-readings.png"), full_page=True)

        # Discharge with an outcome, confirmed in the details box: the kit comes back.
        page.check("#discharge-stayed_home")
        page.fill("#discharge-note", "Stabil vikt, åter till vårdcentralen")
        page.click("#utskrivning summary")
        page.click("button:has-text('Bekräfta utskrivning')")
        page.locator(".discharge-summary").wait_for()
        assert "Stannar hemma" in page.inner_text(".discharge-summary")
        page.screenshot(path=str(SHOTS / "episode-discharged.png"), full_page=True)
        assert [p for p in problems if "status of 4" not in p] == []
    finally:
        context.close()
    ended = db.execute("SELECT ends_at IS NOT NULL FROM kit_assignments WHERE gateway_id = %s", (KIT,))
    assert ended.fetchall() == [(True,)]
    assert db.execute("SELECT kit_state FROM gateways WHERE id = %s", (KIT,)).fetchone() == ("returned",)
    outcome = db.execute("SELECT discharge_outcome FROM patients WHERE id = %s", (patient_id,)).fetchone()
    assert outcome == ("stayed_home",)

    # A reading the kit takes after the discharge belongs to nobody: dead-lettered with its reason. (One
    # taken before the lend ended, even a moment before, is his record: stored, raising nothing.)
    ended_at = db.execute("SELECT ends_at FROM kit_assignments WHERE gateway_id = %s", (KIT,)).fetchone()[0]
    late = measurement({Vital.SPO2: 91}, at=ended_at + timedelta(seconds=2))
    with running_ingest(ingest) as service:
        publish_all(mqtt_url, [batch(KIT, [late])])
        wait_until(lambda: service.metrics["dead_letters"] >= 1, timeout=30, what="dead-lettered")
    assert len(_observations(db)) == 4
    letters = db.execute("SELECT gateway_id FROM dead_letters").fetchall()
    assert letters == [(KIT,)]
    actions = {r[0] for r in db.execute("SELECT action FROM access_log WHERE patient_id = %s", (patient_id,))}
    assert {"admit_patient", "patient_record", "view_chart", "discharge_patient"} <= actions
