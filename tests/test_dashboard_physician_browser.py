"""The care team's orders on the patient record in a real Chromium: a physician sets a personal SpO2
limit and orders SpO2 scale 2, then revokes the limit; a nurse, who sees neither form, sets and clears
the monitoring plan."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from care.enrolment import EnrolledPatient, enrol_patient, ensure_ward
from care.staff import create_staff_user
from core.settings import Settings
from tests.support.dashboard_server import log_in_page, running_dashboard, watched_page
from tests.support.ward_seed import PASSWORD, set_vital

SCREENSHOTS = Path(__file__).resolve().parent.parent / ".hemma-test" / "screenshots"


@pytest.fixture
def ward(db: psycopg.Connection) -> dict[str, object]:
    ensure_ward(db, "avd-norr", "Sjukhusvård i hemmet Norr")
    bertil = enrol_patient(
        db, ward_id="avd-norr", display_name="Bertil Berg", gateway_id="gw-bertil", birth_year=1939,
        care_reason="KOL-exacerbation",
    )  # fmt: skip
    for vital, value, unit, ago in (
        ("spo2", 88, "%", 12),
        ("pulse_rate", 96, "/min", 12),
        ("systolic_bp", 132, "mm[Hg]", 45),
        ("body_temperature", 37.4, "Cel", 90),
    ):
        set_vital(db, bertil, vital, value, unit, ago)
    db.execute("UPDATE gateways SET status = 'online', status_at = now() WHERE id = 'gw-bertil'")
    physician_id = create_staff_user(
        db, username="dr.lund", display_name="Erik Lund", role="physician", password=PASSWORD,
        ward_ids=["avd-norr"],
    )  # fmt: skip
    nurse_id = create_staff_user(
        db, username="nurse.norr", display_name="Sara Sjöström", role="nurse", password=PASSWORD,
        ward_ids=["avd-norr"],
    )  # fmt: skip
    return {"bertil": bertil, "physician_id": physician_id, "nurse_id": nurse_id}


def _reloaded(page, before: str) -> None:  # type: ignore[no-untyped-def]
    """Wait until an order's page reload has happened (window.hemma.pageId changes per load)."""
    page.wait_for_function("id => window.hemma && window.hemma.pageId !== id", arg=before, timeout=10_000)


def test_a_physician_sets_a_spo2_limit_and_orders_scale_2_from_the_record(
    browser,  # type: ignore[no-untyped-def]
    database_url: str,
    db: psycopg.Connection,
    ward: dict[str, object],
) -> None:
    bertil: EnrolledPatient = ward["bertil"]  # type: ignore[assignment]
    record = f"/patients/{bertil.patient_id}"
    problems: list[str] = []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with running_dashboard(Settings(database_url=database_url)) as base_url:
        context, page = watched_page(browser, problems, timezone_id="Europe/Stockholm")
        log_in_page(page, base_url, record, "dr.lund", PASSWORD)

        # The limit editor is closed until asked for; inside, one row per rule key with the ward's limits.
        editor = page.locator("#limit-editor")
        assert editor.locator("form.limit-form").first.is_hidden()
        editor.locator("summary").click()
        spo2 = editor.locator('form.limit-form[data-rule="spo2_low"]')
        assert spo2.is_visible()
        assert "Avdelningen: hög under 92 %, medel under 94 %" in spo2.inner_text()
        assert spo2.locator("select[name=priority] option").all_inner_texts() == ["Hög", "Medel"]

        # Without a reason the server's Swedish message shows in the row and nothing is stored.
        spo2.locator("select[name=priority]").select_option("high")
        spo2.locator("input[name=limit]").fill("85")
        spo2.locator("button[type=submit]").click()
        error = spo2.locator(".order-error")
        error.wait_for(state="visible", timeout=5000)
        assert error.inner_text() == "Skriv en motivering: vem som bad om gränsen och varför (minst 3 tecken)"
        assert db.execute("SELECT count(*) FROM personal_thresholds").fetchone() == (0,)

        before = page.evaluate("window.hemma.pageId")
        spo2.locator("input[name=reason]").fill("KOL, mål 88–92 % enligt lungjour")
        spo2.locator("button[type=submit]").click()
        _reloaded(page, before)
        row = page.locator("#personal-limits tbody tr")
        assert row.count() == 1
        cells = row.locator("td").all_inner_texts()
        assert cells[:4] == ["Syremättnad, låg", "Hög", "85 %", "KOL, mål 88–92 % enligt lungjour"]
        assert cells[4].startswith("Erik Lund, ") and cells[5] == "tills vidare"
        stored = db.execute(
            "SELECT rule, priority, limit_value, set_by, revoked_at FROM personal_thresholds"
        ).fetchall()
        assert stored == [("spo2_low", "high", 85.0, ward["physician_id"], None)]

        # SpO2 scale 2, with its reason; the button then offers the way back.
        scale = page.locator("#spo2-scale")
        assert scale.locator("button[type=submit]").inner_text() == "Ordinera skala 2"
        before = page.evaluate("window.hemma.pageId")
        scale.locator("#scale-reason").fill("KOL med verifierad hyperkapni, pCO2 7,9 kPa")
        scale.locator("button[type=submit]").click()
        _reloaded(page, before)
        assert "Skala 2 (hyperkapni), ordinerad av Erik Lund" in scale.inner_text()
        assert scale.locator("button[type=submit]").inner_text() == "Tillbaka till skala 1"
        assert "SpO₂ poängsätts på skala 2" in page.locator("#news2").inner_text()
        assert db.execute(
            "SELECT scale, ordered_by FROM spo2_scale_orders WHERE revoked_at IS NULL"
        ).fetchall() == [(2, ward["physician_id"])]

        # The picture: limit in force with its revoke control open, the editor open on scale 2's limits.
        page.locator("#personal-limits .limit-revoke summary").click()
        page.locator("#limit-editor summary").click()
        assert "hög under 84 %, medel under 86 % (skala 2)" in spo2.inner_text()
        page.locator("#spo2-scale").scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "physician-controls.png"), full_page=True)
        page.locator("#personal-limits").screenshot(path=str(SCREENSHOTS / "physician-controls-limits.png"))

        # Revoke: the ward's limits apply again; the row stays in the table as history.
        before = page.evaluate("window.hemma.pageId")
        page.locator("#personal-limits .limit-revoke-button").click()
        _reloaded(page, before)
        assert "Avdelningens standardgränser gäller." in page.locator("#personal-limits").inner_text()
        assert db.execute("SELECT revoked_by FROM personal_thresholds").fetchall() == [
            (ward["physician_id"],)
        ]
        context.close()

        # A nurse sees the limits and the scale but no forms for them; the plan is hers to set.
        context, page = watched_page(browser, problems, timezone_id="Europe/Stockholm")
        log_in_page(page, base_url, record, "nurse.norr", PASSWORD)
        assert page.locator("#limit-editor, form.limit-form, form.scale-form, .limit-revoke").count() == 0
        assert "Larmgränser ändras av läkare." in page.locator("#personal-limits").inner_text()
        plan = page.locator("#monitoring-plan")
        before = page.evaluate("window.hemma.pageId")
        plan.locator("#plan-vital").select_option("body_weight")
        plan.locator("#plan-every").fill("1")
        plan.locator("select[name=unit]").select_option("1440")
        plan.locator("button[type=submit]").click()
        _reloaded(page, before)
        assert "Kroppsvikt var 24 h" in plan.locator(".plan-item").inner_text()
        assert db.execute("SELECT vital, every_minutes, set_by FROM monitoring_plans").fetchall() == [
            ("body_weight", 1440, ward["nurse_id"])
        ]
        page.screenshot(path=str(SCREENSHOTS / "physician-controls-nurse.png"), full_page=True)
        before = page.evaluate("window.hemma.pageId")
        plan.locator(".plan-clear summary").click()
        plan.locator(".plan-clear-button").click()
        _reloaded(page, before)
        assert "Ingen mätplan." in plan.inner_text()
        context.close()
    # The one refused order (no reason) is the only thing the console reports.
    assert problems == [
        "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    ]
