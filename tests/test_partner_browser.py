"""The partner realm in a real Chromium at phone size (issue 12): the municipal nurse logs in at the same
/login, lands on her list, opens the granted patient and writes to the ward without JavaScript; axe-core
finds no serious or critical violation on either screen. The ward's nurse then sees the message in the
record's "Delad vård", grants a GP through the form and screenshots the section."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import psycopg

from care.acting import execute
from care.enrolment import enrol_patient, ensure_ward
from care.organisations import add_provider, add_unit
from care.plans import set_monitoring_plan
from care.self_care import set_instruction
from care.sharing import grant_partner_access
from care.staff import create_staff_user
from core.settings import Settings
from tests.support.axe import assert_no_serious, overflows_sideways
from tests.support.dashboard_server import running_dashboard
from tests.support.ward_seed import PASSWORD, add_alert, set_vital

SHOTS = Path(os.environ.get("HEMMA_SCREENSHOTS") or "/tmp/shots-partners")
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}


def _seed(db: psycopg.Connection) -> str:
    ensure_ward(db, "asih-nord", "ASIH Nord")
    oskar = enrol_patient(
        db,
        ward_id="asih-nord",
        display_name="Oskar Nilsson",
        gateway_id="gw-oskar",
        birth_year=1944,
        care_reason="Hjärtsvikt, diuretikajustering",
    )
    create_staff_user(
        db,
        username="sara",
        display_name="Sara Sjöström",
        role="nurse",
        password=PASSWORD,
        ward_ids=["asih-nord"],
    )
    for provider, kind, unit, unit_name in (
        ("malmo-stad", "municipality", "malmo-hemsjukvard", "Hemsjukvården Malmö"),
        ("vc-limhamn", "primary_care", "vc-limhamn", "Vårdcentralen Limhamn"),
    ):
        execute(
            db,
            add_provider(
                provider_id=provider, name=unit_name if kind != "municipality" else "Malmö stad", kind=kind
            ),
        )
        execute(db, add_unit(unit_id=unit, provider_id=provider, name=unit_name))
    create_staff_user(
        db,
        username="kommunsjukskoterska",
        display_name="Maria Lindqvist",
        role="partner",
        password=PASSWORD,
        ward_ids=[],
        care_unit_id="malmo-hemsjukvard",
        title="Distriktssköterska, kommunen",
    )
    create_staff_user(db, username="ida", display_name="Ida Ek", role="admin", password=PASSWORD, ward_ids=[])
    create_staff_user(
        db,
        username="dr.palm",
        display_name="Gustav Palm",
        role="partner",
        password=PASSWORD,
        ward_ids=[],
        care_unit_id="vc-limhamn",
        title="Distriktsläkare",
    )
    for vital, value, unit in (("body_weight", 82.4, "kg"), ("spo2", 95, "%"), ("heart_rate", 88, "/min")):
        set_vital(db, oskar, vital, value, unit, minutes_ago=20)
    add_alert(
        db,
        oskar,
        priority="medium",
        rule="weight_gain_3d",
        vital="body_weight",
        value=82.4,
        message="Vikt +2,1 kg på 3 dygn",
    )
    set_monitoring_plan(db, oskar.patient_id, "body_weight", timedelta(days=1), "sara")
    set_monitoring_plan(db, oskar.patient_id, "spo2", timedelta(hours=8), "sara")
    execute(
        db,
        set_instruction(
            patient_id=oskar.patient_id,
            rule="weight_gain_3d",
            by="sara",
            origin=None,
            text="Ta en extra furosemid 40 mg på morgonen och ring avdelningen.",
        ),
    )
    execute(
        db,
        grant_partner_access(
            patient_id=oskar.patient_id,
            partner="kommunsjukskoterska",
            purpose="read_contact",
            days=14,
            consent_by="patient",
            consent_note="Muntligt vid inskrivningen",
            by="sara",
            origin=None,
        ),
    )
    return str(oskar.patient_id)


def _login(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def test_partner_screens_on_a_phone_and_the_records_delad_vard(
    browser, database_url: str, db: psycopg.Connection
) -> None:  # type: ignore[no-untyped-def]
    patient_id = _seed(db)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with running_dashboard(
        Settings(database_url=database_url, session_secret="partner-browser-secret-0123456789")
    ) as base:
        problems: list[str] = []
        phone = browser.new_context(locale="sv-SE", java_script_enabled=False, **PHONE)
        page = phone.new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        _login(page, base, "kommunsjukskoterska")
        page.wait_for_url("**/partner")
        assert page.locator(".partner-patient").count() == 1
        page.screenshot(path=str(SHOTS / "partner-list-phone.png"), full_page=True)
        assert not overflows_sideways(page)
        page.click(".partner-patient a")
        page.wait_for_url(f"**/partner/patients/{patient_id}")
        assert "Din åtkomst gäller till" in page.inner_text("#atkomst")
        assert "Vikt +2,1 kg på 3 dygn" in page.inner_text("#larm")
        assert "furosemid" in page.inner_text("#egenvard")
        page.fill("#kontakt-text", "Hembesök kl 10: benen mer svullna än i går. Ring mig på 040-123 45.")
        page.click(".partner-send")
        page.wait_for_url("**?skickat=1*")
        assert "Skickat." in page.inner_text("#kontakt")
        page.screenshot(path=str(SHOTS / "partner-patient-phone.png"), full_page=True)
        assert not overflows_sideways(page)
        phone.close()
        # axe needs scripts in the page: the same screens again with JavaScript on.
        audited = browser.new_context(locale="sv-SE", **PHONE)
        page = audited.new_page()
        _login(page, base, "kommunsjukskoterska")
        page.wait_for_url("**/partner")
        assert_no_serious(page, "partner list (phone)")
        page.goto(f"{base}/partner/patients/{patient_id}")
        assert_no_serious(page, "partner patient view (phone)")
        audited.close()

        desk = browser.new_context(locale="sv-SE", viewport={"width": 1440, "height": 900})
        page = desk.new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        _login(page, base, "sara")
        page.goto(f"{base}/patients/{patient_id}#delad-vard")
        section = page.locator("#delad-vard")
        assert "Hembesök kl 10" in section.inner_text()
        section.locator("summary", has_text="Ge åtkomst").click()
        section.locator("#share-partner").select_option("dr.palm")
        section.locator("input[name=purpose][value=read]").check()
        section.locator("#share-days").fill("30")
        section.locator("input[name=consent]").check()
        section.screenshot(path=str(SHOTS / "record-delad-vard-form.png"))
        section.locator("button", has_text="Ge åtkomst").click()
        page.wait_for_url("**#delad-vard")
        section = page.locator("#delad-vard")
        assert section.locator(".grant-in_force").count() == 2
        section.screenshot(path=str(SHOTS / "record-delad-vard.png"))
        page.goto(f"{base}/logout")
        page.context.clear_cookies()
        _login(page, base, "ida")
        page.goto(f"{base}/admin/organisations")
        page.locator("summary", has_text="Ny vårdgivare").click()
        page.screenshot(path=str(SHOTS / "admin-organisations.png"), full_page=True)
        page.goto(f"{base}/admin/staff")
        page.locator("#konto-kommunsjukskoterska + tr summary").click()
        page.screenshot(path=str(SHOTS / "admin-staff-partner.png"), full_page=True)
        desk.close()
        assert problems == []
    grants = db.execute(
        "SELECT s.username, g.purpose, g.valid_until - g.valid_from FROM partner_grants g"
        " JOIN staff_users s ON s.id = g.staff_user_id ORDER BY g.id"
    ).fetchall()
    assert grants == [
        ("kommunsjukskoterska", "read_contact", timedelta(days=14)),
        ("dr.palm", "read", timedelta(days=30)),
    ]
