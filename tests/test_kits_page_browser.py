"""The kits page and the record's lend / take-back (issue 11), in a real Chromium and over HTTP: a nurse
takes Anna's kit back from her record, marks it cleaned on /kits and lends it to Bertil; an admin
sees every kit and handles stock but is offered no lend; hostile input is answered 4xx in Swedish."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import psycopg

from care.acting import execute
from care.enrolment import enrol_patient, ensure_ward
from care.kit_assignments import take_back
from care.staff import create_staff_user
from core.settings import Settings
from tests.support.dashboard_server import log_in_page, logged_in, running_dashboard, watched_page
from tests.support.ward_seed import PASSWORD

SHOTS = Path("/tmp/shots-kits")


def _seed(db: psycopg.Connection) -> tuple[object, object]:
    ensure_ward(db, "avd-norr", "Sjukhusvård i hemmet Norr")
    ensure_ward(db, "avd-syd", "Sjukhusvård i hemmet Syd")
    anna = enrol_patient(db, ward_id="avd-norr", display_name="Anna Andersson", gateway_id="kit-0001")
    bertil = enrol_patient(db, ward_id="avd-norr", display_name="Bertil Berg", gateway_id="kit-0002")
    enrol_patient(db, ward_id="avd-syd", display_name="Sven Syd", gateway_id="kit-0009")
    create_staff_user(db, username="nurse.norr", display_name="Sara Sjöström", role="nurse",
                      password=PASSWORD, ward_ids=["avd-norr"])  # fmt: skip
    create_staff_user(db, username="it.admin", display_name="Ida IT", role="admin", password=PASSWORD,
                      ward_ids=[])  # fmt: skip
    execute(db, take_back(by="nurse.norr", origin=None, patient_id=bertil.patient_id))  # Bertil: no kit
    db.execute("INSERT INTO gateways (id) VALUES ('kit-0003')")  # a new kit, in stock
    return anna.patient_id, bertil.patient_id


def test_a_nurse_takes_a_kit_back_cleans_it_and_lends_it_on(browser, database_url: str, db) -> None:  # type: ignore[no-untyped-def]
    anna, bertil = _seed(db)
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with running_dashboard(Settings(database_url=database_url)) as base_url:
        context, page = watched_page(browser, problems, timezone_id="Europe/Stockholm")
        log_in_page(page, base_url, f"/patients/{anna}", "nurse.norr", PASSWORD)
        page.get_by_role("button", name="Lämna tillbaka hemlådan").click()
        page.wait_for_url(f"**/patients/{anna}#devices")
        assert db.execute("SELECT kit_state FROM gateways WHERE id = 'kit-0001'").fetchone() == ("returned",)

        page.goto(base_url + "/kits")
        rows = {r.get_attribute("data-kit"): r for r in page.locator("tr.kit-row").all()}
        assert set(rows) == {"kit-0001", "kit-0002", "kit-0003"}  # not the other ward's lent kit-0009
        assert rows["kit-0001"].locator(".kit-state").inner_text() == "Återlämnad, ej rengjord"
        assert "Anna Andersson" in rows["kit-0001"].locator(".kit-history").inner_text()
        page.screenshot(path=str(SHOTS / "kits-nurse.png"), full_page=True)
        rows["kit-0001"].get_by_role("button", name="Markera kit-0001 rengjord").click()
        page.wait_for_url("**/kits")
        assert page.locator('tr[data-kit="kit-0001"] .kit-state').inner_text() == "Rengjord"

        page.goto(base_url + f"/patients/{bertil}")
        form = page.locator("form.kit-lend-form")
        # Cleaned or in stock; kit-0002 came back from Bertil and is not cleaned yet.
        assert form.locator("option").all_inner_texts() == ["kit-0001", "kit-0003"]
        form.locator("select").select_option("kit-0001")
        page.locator("#devices").screenshot(path=str(SHOTS / "record-lend.png"))
        form.get_by_role("button", name="Låna ut hemlådan").click()
        page.wait_for_url(f"**/patients/{bertil}#devices")
        assert page.get_by_role("button", name="Lämna tillbaka hemlådan").is_visible()
        context.close()

        # The admin: every kit (the other ward's too, named), stock forms, no lend on a record.
        context, page = watched_page(browser, problems, timezone_id="Europe/Stockholm")
        log_in_page(page, base_url, "/kits", "it.admin", PASSWORD)
        assert page.locator('tr[data-kit="kit-0009"] .kit-holder').inner_text() == "Sven Syd"
        assert page.locator('tr[data-kit="kit-0001"] .kit-holder').inner_text() == "Bertil Berg"
        assert page.get_by_role("button", name=re.compile("Ta tillbaka")).count() == 0
        page.screenshot(path=str(SHOTS / "kits-admin.png"), full_page=True)
        page.goto(base_url + f"/patients/{anna}")
        assert page.locator("#kit-lending").count() == 0
        context.close()
    assert problems == []
    state = db.execute("SELECT kit_state, patient_id FROM gateways WHERE id = 'kit-0001'").fetchone()
    assert state == ("assigned", bertil)
    shown = db.execute(
        "SELECT username, count(DISTINCT patient_id) FROM access_log WHERE action = 'list_kits'"
        " GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert shown == [("it.admin", 3), ("nurse.norr", 2)]


def test_hostile_input_on_the_kit_routes_is_refused_in_swedish_never_500(database_url: str, db) -> None:  # type: ignore[no-untyped-def]
    _anna, bertil = _seed(db)
    with (
        running_dashboard(Settings(database_url=database_url)) as base_url,
        logged_in(base_url, "nurse.norr", PASSWORD) as client,
    ):
        page = client.get("/kits")
        assert page.status_code == 200
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        csrf = token.group(1)
        hostile = [
            "<script>alert(1)</script>",
            "kit-0001\x00",
            "x" * 5000,
            "../../etc/passwd",
            "kit-ÅÄÖ",
            "%00",
            "\u202ekit",
        ]
        for bad in hostile:
            named = quote(bad, safe="")
            for path in (f"/kits/{named}/cleaned", f"/kits/{named}/stock", f"/kits/{named}/take-back"):
                r = client.post(path, data={"csrf": csrf})
                assert 400 <= r.status_code < 500, (path[:40], r.status_code)
                assert "<script>" not in r.text
            r = client.post("/kits", data={"csrf": csrf, "gateway_id": bad})
            assert 400 <= r.status_code < 500 and "<script>alert" not in r.text, r.status_code
            r = client.post(f"/patients/{bertil}/kit/lend", data={"csrf": csrf, "gateway_id": bad})
            assert 400 <= r.status_code < 500 and "<script>alert" not in r.text, r.status_code
        # Without the session's token: refused, nothing changed.
        r = client.post("/kits/kit-0002/cleaned", data={"csrf": "förfalskad"})
        assert r.status_code == 403
        assert db.execute("SELECT kit_state FROM gateways WHERE id = 'kit-0002'").fetchone() == ("returned",)
        # A kit of another ward is not this nurse's to take back; a lent kit is not lent twice.
        r = client.post("/kits/kit-0009/take-back", data={"csrf": csrf})
        assert r.status_code == 403
        r = client.post(f"/patients/{bertil}/kit/lend", data={"csrf": csrf, "gateway_id": "kit-0001"})
        assert r.status_code == 409 and "Hemlådan kan inte lånas ut: den är utlånad" in r.text
        r = client.post(f"/patients/{bertil}/kit/lend", data={"csrf": csrf, "gateway_id": ""})
        assert r.status_code == 422 and "Välj en hemlåda" in r.text
        r = client.post("/patients/not-a-uuid/kit/take-back", data={"csrf": csrf})
        assert r.status_code == 404
    assert db.execute("SELECT count(*) FROM gateways").fetchone() == (4,)
