"""The engine's alarms in a real Chromium: technical alarms apart from physiological ones, snooze,
ending an alarm with a note, and a nurse entering an observation on the patient record."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from care.enrolment import EnrolledPatient, enrol_patient, ensure_ward
from care.staff import create_staff_user
from core.settings import Settings
from dashboard.formatting import format_clock
from tests.support import ward_seed
from tests.support.dashboard_server import log_in_page, running_dashboard, watched_page
from tests.support.ward_seed import PASSWORD, set_vital

SCREENSHOTS = Path(__file__).resolve().parent.parent / ".hemma-test" / "screenshots"
# IEC 60601-1-8 alarm colours, which technical alarms must never wear.
ALARM_COLOURS = {"rgb(200, 16, 46)", "rgb(255, 210, 0)", "rgb(0, 183, 212)"}


def add_alert(db: psycopg.Connection, patient: EnrolledPatient, **kw: str) -> int:
    """An alert with no value (the overview shows its message); technical ones have no vital."""
    return ward_seed.add_alert(db, patient, value=None, **({"vital": None} | kw))  # type: ignore[arg-type]


@pytest.fixture
def ward(db: psycopg.Connection) -> dict[str, object]:
    ensure_ward(db, "avd-norr", "Sjukhusvård i hemmet Norr")
    anna = enrol_patient(
        db, ward_id="avd-norr", display_name="Anna Andersson", gateway_id="gw-anna", birth_year=1948,
        care_reason="Pneumoni",
    )  # fmt: skip
    bertil = enrol_patient(
        db, ward_id="avd-norr", display_name="Bertil Berg", gateway_id="gw-bertil", birth_year=1939,
        care_reason="KOL-exacerbation",
    )  # fmt: skip
    greta = enrol_patient(
        db, ward_id="avd-norr", display_name="Greta Gustafsson", gateway_id="gw-greta", birth_year=1944,
        care_reason="Hjärtsvikt",
    )  # fmt: skip
    for patient, vital, value, unit, ago in (
        (anna, "spo2", 89, "%", 8),
        (anna, "pulse_rate", 112, "/min", 8),
        (anna, "systolic_bp", 104, "mm[Hg]", 40),
        (anna, "body_temperature", 38.6, "Cel", 60),
        (bertil, "spo2", 90, "%", 50),
        (bertil, "pulse_rate", 88, "/min", 50),
        (bertil, "body_temperature", 37.2, "Cel", 150),
        (greta, "spo2", 96, "%", 20),
        (greta, "pulse_rate", 72, "/min", 20),
        (greta, "body_weight", 71.5, "kg", 300),
    ):
        set_vital(db, patient, vital, value, unit, ago)
    db.execute("UPDATE gateways SET status = 'online', status_at = now() WHERE id IN ('gw-anna', 'gw-greta')")
    db.execute(
        "UPDATE gateways SET status = 'offline', status_at = now() - interval '35 minutes'"
        " WHERE id = 'gw-bertil'"
    )
    db.execute(
        "INSERT INTO devices (gateway_id, device_id, battery_percent, battery_at, clock_not_set)"
        " VALUES ('gw-anna', 'C4:7F:51:0A:22:10', 12, now(), true)"
    )
    nurse_id = create_staff_user(
        db, username="nurse.norr", display_name="Sara Sjöström", role="nurse", password=PASSWORD,
        ward_ids=["avd-norr"],
    )  # fmt: skip
    spo2 = add_alert(
        db, anna, priority="high", rule="spo2_low", vital="spo2", message="SpO₂ 89 % under gränsen 90 %"
    )
    tech = add_alert(
        db, bertil, priority="medium", rule="gateway_offline", condition="technical",
        message="Hemenheten har varit frånkopplad i 35 min",
    )  # fmt: skip
    battery = add_alert(
        db, anna, priority="low", rule="battery_low:C4:7F:51:0A:22:10", condition="technical",
        message="Oximeterns batteri 12 %",
    )  # fmt: skip
    add_alert(
        db, greta, priority="high", rule="pulse_high", state="pending", vital="pulse_rate",
        message="Väntande pulslarm",
    )  # fmt: skip
    return {"anna": anna, "bertil": bertil, "greta": greta, "nurse_id": nurse_id, "spo2": spo2, "tech": tech,
            "battery": battery}  # fmt: skip


def test_technical_alarms_apart_snooze_end_and_a_manual_observation(
    browser,  # type: ignore[no-untyped-def]
    database_url: str,
    db: psycopg.Connection,
    ward: dict[str, object],
) -> None:
    anna: EnrolledPatient = ward["anna"]  # type: ignore[assignment]
    bertil: EnrolledPatient = ward["bertil"]  # type: ignore[assignment]
    spo2_id, tech_id = ward["spo2"], ward["tech"]
    problems: list[str] = []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with running_dashboard(Settings(database_url=database_url)) as base_url:
        context, page = watched_page(browser, problems)
        log_in_page(page, base_url, "/wards/avd-norr", "nurse.norr", PASSWORD)
        page.wait_for_function("() => window.hemma && window.hemma.connected && window.hemma.snapshots === 1")

        # Anna's physiological high alarm sorts her first; Bertil's technical alarm puts him before Greta,
        # whose pending alarm is not shown at all.
        assert page.locator(".patient-name").all_inner_texts() == [
            "Anna Andersson",
            "Bertil Berg",
            "Greta Gustafsson",
        ]
        assert "Väntande" not in page.locator("#patients").inner_text()
        assert page.locator("#count-high").inner_text() == "1 hög"
        assert page.locator("#count-technical").inner_text() == "2 tekniska"
        assert page.locator("#count-medium").is_hidden()

        # The technical alarm: its own list, a wrench and "Teknik", never an alarm colour.
        tech = page.locator(f'li.alert[data-alert-id="{tech_id}"]')
        assert tech.locator("xpath=..").get_attribute("class") == "alerts tech-alerts"
        badge = tech.locator(".tech-badge")
        assert badge.inner_text().strip() == "Teknik"
        assert badge.locator(".tech-icon").is_visible()
        colours = {
            badge.evaluate("e => getComputedStyle(e).backgroundColor"),
            badge.evaluate("e => getComputedStyle(e).color"),
            tech.evaluate("e => getComputedStyle(e).backgroundColor"),
        }
        assert not colours & ALARM_COLOURS, colours
        assert "Medel prioritet" in tech.locator(".alert-meta").inner_text()
        physiological = page.locator(f'li.alert[data-alert-id="{spo2_id}"]')
        assert physiological.locator(".alert-priority").evaluate(
            "e => getComputedStyle(e).backgroundColor"
        ) == ("rgb(200, 16, 46)")
        anna_card = page.locator(f'[data-patient-id="{anna.patient_id}"]')
        # Anna's battery alarm sits below her physiological alarm, in the technical list.
        lists = anna_card.locator(".patient-alerts > ul")
        assert [lists.nth(i).get_attribute("class") for i in range(lists.count())] == [
            "alerts",
            "alerts tech-alerts",
        ]

        # Snooze the high alarm for 15 minutes: acknowledged, "Snoozad till HH:MM", muted; the chip goes.
        assert physiological.locator(".snooze-button").all_inner_texts() == ["15 min", "30 min"]
        physiological.locator('.snooze-button[data-minutes="15"]').click()
        page.wait_for_selector(
            f'li.alert.state-acknowledged.snoozed[data-alert-id="{spo2_id}"]', timeout=5000
        )
        snoozed = physiological.locator(".alert-snoozed").inner_text()
        assert snoozed.startswith("Snoozad till ") and snoozed.endswith("av Sara Sjöström")
        until = db.execute("SELECT snoozed_until FROM alerts WHERE id = %s", (spo2_id,)).fetchone()[0]  # type: ignore[index]
        clock = page.evaluate(
            "iso => new Intl.DateTimeFormat('sv-SE', {timeZone: 'Europe/Stockholm', hour: '2-digit',"
            " minute: '2-digit', hourCycle: 'h23'}).format(new Date(iso))",
            until.isoformat(),
        )
        # The browser's own clock agrees with the page's; near midnight the page adds the day ("7 dec 00:06").
        assert clock in snoozed
        assert f"Snoozad till {format_clock(until, datetime.now(UTC))}" in snoozed
        assert (
            physiological.locator(".alert-snoozed").evaluate("e => getComputedStyle(e).color")
            == "rgb(91, 104, 118)"
        )
        page.wait_for_selector("#count-high", state="hidden", timeout=5000)
        assert page.locator(".patient-name").first.inner_text() == "Anna Andersson"  # still high, only quiet

        page.screenshot(path=str(SCREENSHOTS / "engine-ward.png"), full_page=True)

        # End the technical alarm: the note is required; then it leaves the card and the count.
        tech.locator(".resolve summary").click()
        tech.locator(".resolve-note").fill("ok")
        tech.locator(".resolve-button").click()
        assert tech.locator(".action-error").inner_text() == "Skriv varför larmet avslutas (minst 3 tecken)."
        tech.locator(".resolve-note").fill("Hemenheten omstartad vid hembesök")
        tech.locator(".resolve-button").click()
        page.wait_for_selector(f'li.alert[data-alert-id="{tech_id}"]', state="detached", timeout=5000)
        assert page.locator("#count-technical").inner_text() == "1 teknisk"
        state, by = db.execute("SELECT state, resolved_by FROM alerts WHERE id = %s", (tech_id,)).fetchone()  # type: ignore[misc]
        assert (state, by) == ("resolved", ward["nurse_id"])
        bertil_card = page.locator(f'[data-patient-id="{bertil.patient_id}"]')
        assert bertil_card.locator(".no-alerts").inner_text() == "Inga aktiva larm"

        # The patient record: live alarms apart, then a manual observation.
        page.click(f'[data-patient-id="{anna.patient_id}"] .patient-name a')
        page.wait_for_url(f"**/patients/{anna.patient_id}")
        assert "Snoozad till" in page.locator("#live-alerts").inner_text()
        assert "Oximeterns batteri 12 %" in page.locator("#technical-alerts").inner_text()
        assert "Oximeterns batteri" not in page.locator("#live-alerts").inner_text()
        devices = page.locator("#devices").inner_text()
        assert "Batteri 12 %" in devices and "klocka ej ställd" in devices
        headline = page.locator("#news2-headline").inner_text()
        assert (
            headline.startswith("NEWS2 ≥ ")
            and "ofullständig: saknar AF, luft/syrgas, medvetandegrad" in headline
        )

        form = page.locator("form.observation-form")
        page.locator("#live-alerts .resolve summary").click()  # the inline note form, open in the picture
        page.screenshot(path=str(SCREENSHOTS / "engine-patient-before.png"), full_page=True)
        assert form.locator(".oxygen-flow").is_hidden()
        assert form.locator("#obs-time").input_value() != ""  # defaults to now
        form.locator("#obs-rr").fill("90")
        form.locator(".observation-submit").click()
        error = form.locator(".observation-error")
        error.wait_for(timeout=5000)
        assert error.inner_text() == "Andningsfrekvensen måste vara ett heltal mellan 2 och 80 /min"
        form.locator("#obs-rr").fill("26")
        form.locator("#obs-acvpu").select_option("V")
        form.locator('input[name="oxygen"][value="oxygen"]').check()
        assert form.locator(".oxygen-flow").is_visible()
        form.locator("#obs-flow").fill("3")
        with page.expect_navigation():
            form.locator(".observation-submit").click()
        row = page.locator("#manual-observations tbody tr").first
        assert row.locator("td").all_inner_texts()[1:] == [
            "26 /min", "V – Reagerar på tilltal", "Syrgas 3 l/min", "Sara Sjöström",
        ]  # fmt: skip
        # AF, consciousness and oxygen now count: a complete NEWS2 (Anna's is high).
        headline = page.locator("#news2-headline").inner_text()
        assert headline.startswith("NEWS2 ") and "ofullständig" not in headline and headline.endswith("risk)")
        stored = db.execute(
            "SELECT respiratory_rate, consciousness, on_oxygen, oxygen_l_min, source, entered_by"
            " FROM manual_observations WHERE patient_id = %s",
            (anna.patient_id,),
        ).fetchall()
        assert stored == [(26.0, "V", True, 3.0, "nurse", ward["nurse_id"])]
        assert "26" in page.locator('.vitals [data-vital="respiratory_rate"]').inner_text()
        page.screenshot(path=str(SCREENSHOTS / "engine-patient.png"), full_page=True)

        # Back on the ward the new respiration rate is on Anna's card.
        page.go_back()
        page.wait_for_function("() => window.hemma && window.hemma.connected")
        rr = f'[data-patient-id="{anna.patient_id}"] [data-vital="respiratory_rate"]'
        page.wait_for_selector(rr + ' .vital-value:text-is("26")', timeout=5000)
        # No script errors, no CSP violations; the one refused request is the RR of 90 above.
        assert [p for p in problems if "status of 422" not in p] == []
        assert len(problems) <= 1
    context.close()
