"""The ward overview in a real Chromium: login, live updates without reload, acknowledging an alert."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from care.enrolment import EnrolledPatient, enrol_patient, ensure_ward
from care.staff import create_staff_user
from core.settings import Settings
from tests.support.dashboard_server import running_dashboard, watched_page

PASSWORD = "rätt häst batteri häftklammer"
SCREENSHOTS = Path(__file__).resolve().parent.parent / ".hemma-test" / "screenshots"


def set_vital(
    db: psycopg.Connection,
    patient: EnrolledPatient,
    vital: str,
    value: float,
    unit: str,
    minutes_ago: int = 0,
) -> None:
    db.execute(
        "INSERT INTO latest_vitals (patient_id, vital, time, value, unit)"
        " VALUES (%s, %s, now() - make_interval(mins => %s), %s, %s) ON CONFLICT (patient_id, vital)"
        " DO UPDATE SET value = EXCLUDED.value, time = EXCLUDED.time",
        (patient.patient_id, vital, minutes_ago, value, unit),
    )


def notify(db: psycopg.Connection, event: dict[str, object]) -> None:
    db.execute("SELECT pg_notify('hemma_events', %s)", (json.dumps(event),))


def open_alert(
    db: psycopg.Connection,
    patient: EnrolledPatient,
    priority: str,
    rule: str,
    vital: str,
    message: str,
    value: float,
) -> int:
    row = db.execute(
        "INSERT INTO alerts (patient_id, ward_id, rule, vital, priority, state, message, value, observed_at)"
        " VALUES (%s, %s, %s, %s, %s, 'open', %s, %s, now()) RETURNING id",
        (patient.patient_id, patient.ward_id, rule, vital, priority, message, value),
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def ward(db: psycopg.Connection) -> dict[str, EnrolledPatient]:
    ensure_ward(db, "avd-norr", "Sjukhusvård i hemmet Norr")
    anna = enrol_patient(
        db,
        ward_id="avd-norr",
        display_name="Anna Andersson",
        gateway_id="gw-anna",
        birth_year=1948,
        care_reason="Hjärtsvikt",
    )
    bertil = enrol_patient(
        db,
        ward_id="avd-norr",
        display_name="Bertil Berg",
        gateway_id="gw-bertil",
        birth_year=1939,
        care_reason="KOL-exacerbation",
    )
    greta = enrol_patient(
        db,
        ward_id="avd-norr",
        display_name="Greta Gustafsson",
        gateway_id="gw-greta",
        birth_year=1944,
        care_reason="Pneumoni",
    )
    readings = [  # (patient, vital, value, unit, minutes ago)
        (anna, "spo2", 95, "%", 12),
        (anna, "pulse_rate", 78, "/min", 12),
        (anna, "systolic_bp", 128, "mm[Hg]", 95),
        (anna, "diastolic_bp", 76, "mm[Hg]", 95),
        (anna, "body_temperature", 37.1, "Cel", 180),
        (anna, "body_weight", 71.4, "kg", 610),
        (bertil, "spo2", 91, "%", 48),
        (bertil, "pulse_rate", 92, "/min", 48),
        (bertil, "respiratory_rate", 22, "/min", 55),
        (bertil, "body_temperature", 37.8, "Cel", 130),
        (greta, "spo2", 96, "%", 5),
        (greta, "pulse_rate", 84, "/min", 5),
        (greta, "body_temperature", 38.4, "Cel", 200),
        (greta, "body_weight", 64.0, "kg", 1600),
    ]
    for patient, vital, value, unit, ago in readings:
        set_vital(db, patient, vital, value, unit, ago)
    db.execute("UPDATE gateways SET status = 'online', status_at = now() WHERE id IN ('gw-anna', 'gw-greta')")
    db.execute(
        "UPDATE gateways SET status = 'offline', status_at = now() - interval '40 minutes'"
        " WHERE id = 'gw-bertil'"
    )
    nurse_id = create_staff_user(
        db,
        username="nurse.norr",
        display_name="Sara Sjöström",
        role="nurse",
        password=PASSWORD,
        ward_ids=["avd-norr"],
    )
    rr_alert = open_alert(
        db, bertil, "medium", "rr_high", "respiratory_rate", "Andningsfrekvens 22/min över gränsen 20/min", 22
    )
    db.execute(
        "UPDATE alerts SET state = 'acknowledged', acknowledged_at = now() - interval '20 minutes',"
        " acknowledged_by = %s WHERE id = %s",
        (nurse_id, rr_alert),
    )
    db.execute(
        "INSERT INTO alert_events (alert_id, kind, actor, priority, note)"
        " VALUES (%s, 'acknowledged', 'staff:nurse.norr', 'medium', 'Ringt, mår som vanligt')",
        (rr_alert,),
    )
    open_alert(
        db, greta, "low", "weight_missing", "body_weight", "Ingen viktmätning senaste 24 timmarna", 64.0
    )
    return {"anna": anna, "bertil": bertil, "greta": greta, "nurse_id": nurse_id}  # type: ignore[dict-item]


def test_ward_overview_is_live_and_acknowledges(
    browser,
    database_url: str,
    db: psycopg.Connection,  # type: ignore[no-untyped-def]
    ward: dict[str, EnrolledPatient],
) -> None:
    anna = ward["anna"]
    problems: list[str] = []
    with running_dashboard(Settings(database_url=database_url)) as base_url:
        context, page = watched_page(browser, problems)

        page.goto(base_url + "/wards/avd-norr")
        assert "/login" in page.url
        page.fill("#username", "nurse.norr")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/wards/avd-norr")
        page.wait_for_function("() => window.hemma && window.hemma.connected && window.hemma.snapshots === 1")
        page_id = page.evaluate("window.hemma.pageId")
        assert page.locator("#connection-banner").is_hidden()
        names = page.locator(".patient-name").all_inner_texts()
        # A medium alert sorts first; a low one does not lift Greta above Anna.
        assert names == ["Bertil Berg", "Anna Andersson", "Greta Gustafsson"]
        offline = page.locator(".patient.gw-offline .gateway").inner_text()
        assert offline.startswith("Hemenhet frånkopplad sedan")

        # Ingest stores a new reading and announces it: the value changes in place.
        anna_card = f'[data-patient-id="{anna.patient_id}"]'
        set_vital(db, anna, "spo2", 87, "%")
        notify(db, {"kind": "vitals", "ward_id": "avd-norr", "patient_ids": [str(anna.patient_id)]})
        page.wait_for_selector(f'{anna_card} [data-vital="spo2"] .vital-value:text-is("87")', timeout=5000)
        assert page.locator(f'{anna_card} [data-vital="spo2"] .vital-age').inner_text() == "nyss"

        # The alert engine opens a high alert: it appears, red, and Anna moves to the top.
        alert_id = open_alert(db, anna, "high", "spo2_low", "spo2", "SpO₂ 87 % under gränsen 88 %", 87)
        notify(db, {"kind": "alerts", "ward_id": "avd-norr", "alert_ids": [alert_id]})
        alert = page.locator(f'li.alert[data-alert-id="{alert_id}"]')
        alert.wait_for(timeout=5000)
        assert alert.get_attribute("class") == "alert alert-high state-open"
        assert alert.locator(".alert-priority").inner_text().upper() == "HÖG"
        assert page.locator(".patient-name").first.inner_text() == "Anna Andersson"
        assert (
            alert.locator(".alert-priority").evaluate("e => getComputedStyle(e).backgroundColor")
            == "rgb(200, 16, 46)"
        )
        assert page.locator("#count-high").inner_text() == "1 hög"

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

        # Acknowledge with a note.
        alert.locator("input.ack-note").fill("Ringer patienten")
        alert.locator("button.ack-button").click()
        page.wait_for_selector(f'li.alert.state-acknowledged[data-alert-id="{alert_id}"]', timeout=5000)
        assert "Kvitterat av Sara Sjöström" in alert.inner_text()
        assert alert.locator(".alert-note").inner_text() == "Ringer patienten"
        state, by = db.execute(
            "SELECT state, acknowledged_by FROM alerts WHERE id = %s", (alert_id,)
        ).fetchone()  # type: ignore[misc]
        assert (state, by) == ("acknowledged", ward["nurse_id"])
        events = db.execute(
            "SELECT kind, actor, note FROM alert_events WHERE alert_id = %s", (alert_id,)
        ).fetchall()
        assert events == [("acknowledged", "staff:nurse.norr", "Ringer patienten")]

        # Everything above happened without a reload.
        assert page.evaluate("window.hemma.pageId") == page_id
        assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
        assert page.evaluate("window.hemma.snapshots") == 1
        assert page.evaluate("window.hemma.deltas") >= 3
        assert problems == []  # no script errors, no CSP violations

        # The patient record opens from the card.
        page.click(f"{anna_card} .patient-name a")
        page.wait_for_url(f"**/patients/{anna.patient_id}")
        assert page.locator("h1").inner_text() == "Anna Andersson"
        assert "SpO₂ 87 % under gränsen 88 %" in page.locator(".alert-history").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "patient.png"), full_page=True)
        page.go_back()
        page.wait_for_function("() => window.hemma && window.hemma.connected")
    # The server is gone: the page says so instead of showing stale values as if live.
    page.locator("#connection-banner").wait_for(state="visible", timeout=5000)
    assert "Ej ansluten" in page.locator("#connection-banner").inner_text()
    context.close()
