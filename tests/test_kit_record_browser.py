"""The kit on the patient record, in a real Chromium: the nurse sees which devices the kit reads, whether
it has applied its configuration and which unknown devices it hears nearby; she adds a device with the
form (a wrong address answered in Swedish, nothing stored) and takes one out again."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from care.acting import execute
from care.enrolment import enrol_patient, ensure_ward
from care.kit import add_device
from care.staff import create_staff_user
from core.settings import Settings
from tests.support.dashboard_server import log_in_page, running_dashboard, watched_page
from tests.support.ward_seed import PASSWORD

SCREENSHOTS = Path(__file__).resolve().parent.parent / ".hemma-test" / "screenshots"
SCALE = "02:48:4D:00:01:04"


def _reloaded(page, before: str) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function("id => window.hemma && window.hemma.pageId !== id", arg=before, timeout=10_000)


def test_a_nurse_sees_and_changes_the_kit_on_the_record(
    browser,  # type: ignore[no-untyped-def]
    database_url: str,
    db: psycopg.Connection,
) -> None:
    ensure_ward(db, "avd-norr", "Sjukhusvård i hemmet Norr")
    oskar = enrol_patient(db, ward_id="avd-norr", display_name="Oskar Lindqvist", gateway_id="gw-oskar")
    create_staff_user(db, username="nurse.norr", display_name="Sara Sjöström", role="nurse",
                      password=PASSWORD, ward_ids=["avd-norr"])  # fmt: skip
    scale = add_device(gateway_id="gw-oskar", address=SCALE, profile="generic_weight_scale", by="nurse.norr",
                       origin=None)  # fmt: skip
    execute(db, scale)
    version = db.execute("SELECT version FROM kit_configs WHERE gateway_id = 'gw-oskar'").fetchone()[0]
    neighbour = {"address": "02:48:4D:00:09:04", "profile": "generic_weight_scale",
                 "seen_at": "2026-12-06T13:00:00+00:00"}  # fmt: skip
    db.execute(
        "UPDATE gateways SET status = 'online', status_at = now(), config_version = NULL,"
        " unknown_devices = %s::jsonb, unknown_devices_at = now() WHERE id = 'gw-oskar'",
        (json.dumps([neighbour]),),
    )
    record = f"/patients/{oskar.patient_id}"
    problems: list[str] = []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with running_dashboard(Settings(database_url=database_url)) as base_url:
        context, page = watched_page(browser, problems, timezone_id="Europe/Stockholm")
        log_in_page(page, base_url, record, "nurse.norr", PASSWORD)
        kit = page.locator("#kit")
        text = kit.inner_text()
        assert f"Konfiguration version {version} väntar på hemenheten" in text
        assert SCALE in kit.locator(".kit-devices").inner_text()
        assert "02:48:4D:00:09:04" in kit.locator(".kit-unknown").inner_text()
        kit.screenshot(path=str(SCREENSHOTS / "kit-record.png"))

        # A mistyped address: the server's Swedish refusal in the form, nothing stored.
        form = kit.locator("form.kit-form")
        form.locator("select[name=profile]").select_option("generic_pulse_oximeter")
        form.locator("input[name=address]").fill("02:48:4D:00:01")
        form.locator("button[type=submit]").click()
        error = form.locator(".order-error")
        error.wait_for(state="visible", timeout=5000)
        assert error.inner_text() == (
            "Enhetens adress är sex hexadecimala par med kolon, t.ex. A4:C1:38:00:00:01"
        )
        assert db.execute("SELECT count(*) FROM kit_devices WHERE removed_at IS NULL").fetchone() == (1,)

        # The right address (as staff type it, lower case): added, a new version for the kit.
        before = page.evaluate("window.hemma.pageId")
        form.locator("input[name=address]").fill("02:48:4d:00:01:01")
        form.locator("button[type=submit]").click()
        _reloaded(page, before)
        assert "02:48:4D:00:01:01" in page.locator("#kit .kit-devices").inner_text()
        active = db.execute(
            "SELECT address, profile FROM kit_devices WHERE removed_at IS NULL ORDER BY address"
        ).fetchall()
        assert active == [("02:48:4D:00:01:01", "generic_pulse_oximeter"), (SCALE, "generic_weight_scale")]
        newer = db.execute("SELECT version FROM kit_configs WHERE gateway_id = 'gw-oskar'").fetchone()[0]
        assert newer > version

        # Taken out again, behind a confirmation: kept as history.
        before = page.evaluate("window.hemma.pageId")
        item = page.locator('#kit li.kit-device[data-address="02:48:4D:00:01:01"]')
        item.locator("summary").click()
        item.locator("button.kit-remove-button").click()
        _reloaded(page, before)
        assert "02:48:4D:00:01:01" not in page.locator("#kit .kit-devices").inner_text()
        assert db.execute(
            "SELECT removed_at IS NOT NULL FROM kit_devices WHERE address = '02:48:4D:00:01:01'"
        ).fetchone() == (True,)
        logged = db.execute(
            "SELECT action FROM access_log WHERE patient_id = %s AND action = 'manage_kit_devices'",
            (oskar.patient_id,),
        ).fetchall()
        assert len(logged) == 2
        context.close()
    # The one refused request (the mistyped address) is the only thing the console reports.
    assert problems == [
        "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    ]
