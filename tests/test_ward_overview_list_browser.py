"""The compact list in a real Chromium with a 500-patient ward (issue 11, "Scan the ward"): list mode,
a filter and a search applied at once without reloading, a column sort, a live change entering the
filtered list; screenshots at desktop and phone widths (/tmp/shots-compact/)."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import psycopg

from benchmarks.dashboard import seed_ward
from care import care_levels
from care.acting import Origin
from care.enrolment import ensure_ward
from care.staff import create_staff_user
from core.settings import Settings
from storage.steps import run as run_steps
from tests.support.axe import assert_no_serious
from tests.support.dashboard_server import running_dashboard, watched_page

PASSWORD = "rätt häst batteri häftklammer"
SHOTS = Path("/tmp/shots-compact")


def test_list_of_500_with_filter_search_and_live_update(  # type: ignore[no-untyped-def]
    browser, database_url: str, db: psycopg.Connection
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    ensure_ward(db, "bench", "Sjukhusvård i hemmet Norr")
    create_staff_user(db, username="nurse.norr", display_name="Sara Sjöström", role="nurse",
                      password=PASSWORD, ward_ids=["bench"])  # fmt: skip
    physician = create_staff_user(db, username="doc.norr", display_name="Lars Lund", role="physician",
                                  password=PASSWORD, ward_ids=["bench"])  # fmt: skip
    ids = seed_ward(db, "bench", patients=500, alerts=50, physician_id=physician)
    problems: list[str] = []
    with running_dashboard(Settings(database_url=database_url)) as base_url:
        context, page = watched_page(browser, problems)
        page.goto(base_url + "/wards/bench?vy=lista")
        page.fill("#username", "nurse.norr")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/wards/bench?vy=lista")
        page.wait_for_function("() => window.hemma && window.hemma.connected && window.hemma.snapshots === 1")
        rows = page.locator("#patients > tr")
        assert rows.count() == 500
        assert (
            page.locator("#shown-n").inner_text() == "500" and page.locator("#total-n").inner_text() == "500"
        )
        # Acuity first: the rows with a high alert lead the list.
        assert "row-high" in (rows.first.get_attribute("class") or "")
        assert page.locator("th[data-sort] button.sort-button").count() == 5
        page.screenshot(path=str(SHOTS / "list-desktop.png"))
        assert_no_serious(page, "ward list of 500")  # axe-core: labels, headers, contrast

        # A filter: applied over the websocket, no reload, the URL says so.
        page.check("input[name=visa][value=larm]")
        page.wait_for_function("() => window.hemma.snapshots === 2")
        with_alerts = rows.count()
        assert 0 < with_alerts <= 50 and page.locator("#shown-n").inner_text() == str(with_alerts)
        assert all("row-" in (c or "") for c in rows.evaluate_all("rs => rs.map(r => r.className)"))
        assert "visa=larm" in page.url and page.evaluate("window.hemma.pageId") is not None
        page.screenshot(path=str(SHOTS / "list-filter-larm.png"))

        # A search by personnummer in another form than stored (stored with century and dash).
        query = "SELECT personal_number, display_name FROM patients WHERE id = %s"
        number = db.execute(query, (ids[7],)).fetchone()
        assert number is not None
        page.uncheck("input[name=visa][value=larm]")
        page.fill("input[name=sok]", number[0][2:].replace("-", ""))
        page.wait_for_function("() => document.querySelectorAll('#patients > tr').length === 1")
        assert rows.first.locator("th").inner_text() == number[1]
        assert "sok=" in page.url

        # By name, then sort by NEWS2 (highest first), then a live change enters the search.
        page.fill("input[name=sok]", "anna")
        page.wait_for_function("() => document.querySelectorAll('#patients > tr').length > 1")
        names = rows.locator("th").all_inner_texts()
        assert names and all("anna" in n.lower() for n in names)
        page.click("th[data-sort=news2] button")
        scores = [int(t.strip("≥") or -1) if t.strip("≥").isdigit() else -1
                  for t in rows.locator("td:nth-child(3)").all_inner_texts()]  # fmt: skip
        assert scores == sorted(scores, reverse=True)
        assert page.locator("th[data-sort=news2]").get_attribute("aria-sort") == "descending"
        page.screenshot(path=str(SHOTS / "list-search-anna-news2.png"), full_page=True)

        newcomer = ids[1]  # not an Anna: a rename makes her match the search, live
        db.execute("UPDATE patients SET display_name = 'Anna Nyinskriven' WHERE id = %s", (newcomer,))
        event = {"kind": "vitals", "ward_id": "bench", "patient_ids": [str(newcomer)]}
        db.execute("SELECT pg_notify('hemma_events', %s)", (json.dumps(event),))
        page.wait_for_selector(f'#patients > tr[data-patient-id="{newcomer}"]')
        assert page.evaluate("window.hemma.deltas") >= 1
        assert rows.locator("th").all_inner_texts().count("Anna Nyinskriven") == 1

        # Back to the whole ward in acuity order; a physician lifts the last patient to röd: the delta
        # carries only that row, which finds its own place (data-order), and the page's order is the
        # server's again, row for row.
        page.fill("input[name=sok]", "")
        page.click("th[data-sort=acuity] button")
        page.wait_for_function("() => document.querySelectorAll('#patients > tr').length === 500")
        last = rows.last.get_attribute("data-patient-id")
        assert last is not None
        deltas = page.evaluate("window.hemma.deltas")
        command = care_levels.set_level(patient_id=uuid.UUID(last), level="red", reason="Sämre i dag",
                                        by="doc.norr", origin=Origin("cli"))  # fmt: skip
        run_steps(db, command)
        page.wait_for_function(f"() => window.hemma.deltas > {deltas}")
        # Another card may move by time alone meanwhile (a NEWS2 value ageing out): compare again
        # until the page has had the delta for that too.
        deadline = time.monotonic() + 10
        while True:
            served = re.findall(r'<tr[^>]* data-patient-id="([^"]+)"', page.request.get(
                base_url + "/wards/bench?vy=lista").text())  # fmt: skip
            shown_ids = rows.evaluate_all("rs => rs.map(r => r.dataset.patientId)")
            if shown_ids == served or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert len(served) == 500 and shown_ids == served
        assert shown_ids.index(last) < 250

        # A phone: the list scrolls sideways inside its box, the tools wrap.
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(SHOTS / "list-phone.png"))
        page.goto(base_url + "/wards/bench?vy=kort&visa=teknik")
        page.wait_for_function("() => window.hemma && window.hemma.snapshots === 1")
        shown = int(page.locator("#shown-n").inner_text())
        assert 0 < shown == page.locator("#patients > article.patient").count() < 500
        page.screenshot(path=str(SHOTS / "cards-teknik-phone.png"))
        context.close()
    assert problems == []
