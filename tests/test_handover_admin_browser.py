"""The handover page and the admin's staff and rota pages in Chromium: they render under the strict CSP
without a console error, the handover prints without the header and chooser, and an admin reaches the
staff page from the header. Screenshots go to .hemma-test/screenshots/ (and $HEMMA_SHOTS if set)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from care.acting import execute
from care.care_levels import review, set_level
from care.oncall import add_oncall_shift
from care.staff import set_staff_contact
from core.settings import Settings
from tests.support.dashboard_server import log_in_page, running_dashboard, watched_page
from tests.support.ward_seed import PASSWORD, add_alert, seed_two_wards

SCREENSHOTS = Path(
    os.environ.get("HEMMA_SHOTS") or Path(__file__).resolve().parent.parent / ".hemma-test" / "screenshots"
)


def test_the_three_pages_in_chromium(browser, database_url: str, db: psycopg.Connection) -> None:  # type: ignore[no-untyped-def]
    anna, bertil, _c, _ids = seed_two_wards(
        db,
        [
            ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
            ("dr.lund", "Erik Lund", "physician", ["avd-norr"]),
            ("it.admin", "Ada Admin", "admin", []),
        ],
    )
    reason = "Tilltagande andfåddhet"
    execute(db, set_level(patient_id=anna.patient_id, level="red", reason=reason, by="dr.lund", origin=None))
    execute(db, review(patient_id=bertil.patient_id, note="Mår bra, äter och dricker", by="nurse.norr",
                       origin=None))  # fmt: skip
    add_alert(db, anna)
    set_staff_contact(db, username="dr.lund", email="erik.lund@example.se")
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    add_oncall_shift(db, ward_id="avd-norr", username="dr.lund", level=1, starts_at=start,
                     ends_at=start + timedelta(hours=10))  # fmt: skip
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with running_dashboard(Settings(database_url=database_url, session_secret="s" * 40)) as url:
        context, page = watched_page(browser, problems, timezone_id="Europe/Stockholm")
        log_in_page(page, url, "/wards/avd-norr/overlamning", "nurse.norr", PASSWORD)
        assert page.locator("h1").inner_text() == "Överlämning"
        blocks = page.locator(".handover-patient h2")
        assert blocks.all_inner_texts()[0].startswith("Anna Andersson")
        page.screenshot(path=str(SCREENSHOTS / "handover.png"), full_page=True)
        page.emulate_media(media="print")
        assert not page.locator(".topbar").is_visible() and not page.locator(".handover-chooser").is_visible()
        page.screenshot(path=str(SCREENSHOTS / "handover-print.png"), full_page=True)
        context.close()

        context, page = watched_page(browser, problems, timezone_id="Europe/Stockholm")
        log_in_page(page, url, "/", "it.admin", PASSWORD)
        page.click("text=Personal och jour")
        page.wait_for_url("**/admin/staff")
        assert "Sara Sjöström" in page.locator("#staff-accounts").inner_text()
        page.locator("details summary", has_text="Ändra Erik Lund").click()
        page.screenshot(path=str(SCREENSHOTS / "admin-staff.png"), full_page=True)
        page.goto(url + "/admin/rota?avdelning=avd-norr")
        assert page.locator(".rota-shift").count() == 1
        assert page.locator(".rota-gap").first.inner_text().startswith("Ingen jour ")
        page.screenshot(path=str(SCREENSHOTS / "admin-rota.png"), full_page=True)
        context.close()
    assert problems == []
