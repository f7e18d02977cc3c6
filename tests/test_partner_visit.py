"""The escalation ladder's screens (issue 12): the municipal nurse's visit page, the ward's ladder settings.

A real dashboard, a real escalator tick and a real SMTP server: the nurse follows the link in her mail,
sees the alert and the values, and taps "Jag åker på hembesök"; the ladder stops. Who may not see the
page gets the 404 of a missing alert. One Chromium test takes the screenshots (390x844 for the nurse's
phone) with an axe audit of each.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from aiosmtpd.controller import Controller
from psycopg.conninfo import make_conninfo

from care.acting import execute
from care.escalation_ladder import set_ladder
from care.staff import create_staff_user
from core.settings import Settings
from devservices.services import free_port
from paging.escalator import Escalator
from paging.notify import Dispatcher, EmailChannel, RetryPolicy, SystemClock
from tests.support.axe import assert_no_serious, overflows_sideways
from tests.support.dashboard_server import csrf_token, logged_in, running_dashboard
from tests.support.escalation import high_alert
from tests.support.ladder_seed import LADDER, NURSE, PHYSICIAN, WARD, WARD_PHONE, add_grant, seed_ladder_ward
from tests.support.smtp import Mailbox
from tests.support.ward_seed import PASSWORD, set_vital

SHOTS = Path("/tmp/shots-ladder")
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}


@pytest.fixture(scope="module")
def shared(postgres_admin_url: str, template_database: str) -> Iterator[dict[str, Any]]:
    """One database, seeded once, one dashboard, one SMTP server and one escalator for the module."""
    name = f"hemma_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    database_url = make_conninfo(postgres_admin_url, dbname=name)
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with psycopg.connect(database_url, autocommit=True) as db:
            now = datetime.now(UTC)
            ward = seed_ladder_ward(db, now)
            set_vital(db, ward.enrolled, "spo2", 88, "%", 3)
            set_vital(db, ward.enrolled, "pulse_rate", 112, "/min", 3)
            # A second partner of the municipality, with a grant to read only; and a ward nurse.
            reader = create_staff_user(db, username="per.kommun", display_name="Per Holm", role="partner",
                                       password=PASSWORD, ward_ids=[])  # fmt: skip
            add_grant(db, ward.patient_id, reader, ward.physician, now, purpose="read")
            create_staff_user(db, username="nina.sjuk", display_name="Nina Sjö", role="nurse",
                              password=PASSWORD, ward_ids=[WARD])  # fmt: skip
            with running_dashboard(Settings(database_url=database_url)) as base_url:
                channel = EmailChannel("127.0.0.1", port, sender="hemma@region.example", security="none")
                dispatcher = Dispatcher([channel], clock=SystemClock(), policy=RetryPolicy(max_attempts=1))
                with Escalator(lambda: psycopg.connect(database_url, autocommit=True), dispatcher,
                               dashboard_url=base_url) as escalator:  # fmt: skip
                    yield {
                        "db": db,
                        "base_url": base_url,
                        "ward": ward,
                        "escalator": escalator,
                        "mailbox": box,
                    }
    finally:
        controller.stop()
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def handed(shared: dict[str, Any]) -> dict[str, Any]:
    """A new alert the real escalator handed to the municipal nurse (the module's others resolved); her
    mail's link."""
    db, ward, box = shared["db"], shared["ward"], shared["mailbox"]
    now = datetime.now(UTC)
    db.execute("UPDATE alerts SET state = 'resolved', resolved_at = now() WHERE state <> 'resolved'")
    box.envelopes.clear()
    alert_id = high_alert(db, ward.patient_id, WARD, opened_at=now - timedelta(minutes=6))
    assert [(e.level, e.staff_user_id) for e in shared["escalator"].tick(now)] == [(1, ward.nurse)]
    [mail] = box.messages()
    link = re.search(r"https?://\S+/partner/besok/\d+", mail.get_content())
    assert link is not None
    return {**shared, "link": link.group(0), "alert_id": alert_id, "now": now}


def test_the_nurse_sees_the_alert_takes_the_visit_and_the_ladder_stops(handed: dict[str, Any]) -> None:
    alert_id, ward, base_url, db = handed["alert_id"], handed["ward"], handed["base_url"], handed["db"]
    path = f"/partner/besok/{alert_id}"
    assert handed["link"] == base_url + path
    with httpx.Client(base_url=base_url) as stranger:
        answer = stranger.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == f"/login?next={path}"

    with logged_in(base_url, NURSE, PASSWORD) as nurse:
        page = nurse.get(path)
        assert page.status_code == 200
        html = page.text
        assert "Hembesök behövs inom 10 minuter" in html
        assert "NEWS2 7: hög risk" in html and "Oskar Nilsson" in html
        assert f"Ring avdelningen {WARD_PHONE}" in html and 'href="tel:040331000"' in html
        assert 'data-vital="spo2"' in html and "Jag åker på hembesök" in html
        for missing in ("/partner/besok/999999", "/partner/besok/abc", "/partner/besok/99999999999999999999"):
            assert nurse.get(missing).status_code == 404
        assert nurse.get(f"/alerts/{alert_id}").status_code == 404  # the ward's own view is not hers
        assert nurse.post(f"{path}/ta", data={"csrf": "forged"}).status_code == 403
        taken = nurse.post(f"{path}/ta", data={"csrf": csrf_token(nurse, path)})
        assert taken.status_code == 303 and taken.headers["location"] == f"{path}?tagen=1#besok"
        after = nurse.get(f"{path}?tagen=1").text
        assert "Du har tagit hembesöket" in after and "larmet går inte vidare till läkare" in after
        assert "Jag åker på hembesök</button>" not in after
        # A second tap changes nothing more.
        assert nurse.post(f"{path}/ta", data={"csrf": csrf_token(nurse, path)}).status_code == 303

    # The reader's grant is not for home visits; the ward's own staff have no hand-off: both a missing alert.
    for username in ("per.kommun", PHYSICIAN, "nina.sjuk"):
        with logged_in(base_url, username, PASSWORD) as other:
            assert other.get(path).status_code == 404, username
            assert other.post(f"{path}/ta", data={"csrf": csrf_token(other, "/password")}).status_code == 404

    rows = db.execute(
        "SELECT action, entry_point, staff_user_id, care_provider_id, partner_grant_id FROM access_log"
        " WHERE patient_id = %s AND entry_point = 'partner' ORDER BY id",
        (ward.patient_id,),
    ).fetchall()
    assert {r[0] for r in rows} == {"partner_view_patient", "partner_acknowledge_visit"}
    assert [r[0] for r in rows].count("partner_acknowledge_visit") == 1
    assert {r[1:] for r in rows} == {("partner", ward.nurse, "malmo-stad", ward.grant)}
    kinds = [
        r[0] for r in db.execute("SELECT kind FROM alert_events WHERE alert_id = %s ORDER BY id", (alert_id,))
    ]
    assert kinds == ["handed_off", "notified", "handoff_taken"]
    # The ladder stops: at the physician's and the on-call's times nothing more is sent.
    escalator, now = handed["escalator"], handed["now"]
    assert escalator.tick(now + timedelta(minutes=11)) == []
    assert escalator.tick(now + timedelta(minutes=30)) == []
    assert len(handed["mailbox"].envelopes) == 1


def test_the_ladder_settings_are_the_physicians_to_change(handed: dict[str, Any]) -> None:
    base_url, page, db = handed["base_url"], f"/wards/{WARD}/eskalering", handed["db"]
    with logged_in(base_url, "nina.sjuk", PASSWORD) as nurse:
        html = nurse.get(page).text
        assert "Hembesök av kommunens sjuksköterska" in html and "Läkare: Dr. Karin Ek" in html
        assert "Spara trappan" not in html and "Trappan ändras av avdelningens läkare" in html
        assert nurse.post(page, data={"csrf": csrf_token(nurse, page), "target_1": "on_call",
                                      "minutes_1": "5"}).status_code == 403  # fmt: skip
    with logged_in(base_url, NURSE, PASSWORD) as partner:
        assert partner.get(page).status_code == 403
    with logged_in(base_url, PHYSICIAN, PASSWORD) as physician:
        token = csrf_token(physician, page)
        for bad in ({"target_1": "tandläkare", "minutes_1": "5"}, {"target_1": "on_call", "minutes_1": "0"},
                    {"target_1": "on_call", "minutes_1": "x" * 300}, {"target_1": "on_call", "minutes_1": "5",
                    "phone": "ring\x00mig"}):  # fmt: skip
            assert physician.post(page, data={"csrf": token, **bad}).status_code == 422, bad
        saved = physician.post(page, data={
            "csrf": token, "target_1": "ward_physician", "physician_1": "asa.berg", "minutes_1": "15",
            "target_2": "on_call", "minutes_2": "10", "phone": "040-33 10 01",
        })  # fmt: skip
        assert saved.status_code == 303
        html = physician.get(page).text
        assert "Läkare: Dr. Åsa Berg" in html and "040-33 10 01" in html and "Hembesök av" not in html.split(
            "Ändra trappan")[0]  # fmt: skip
        cleared = physician.post(page, data={"csrf": token})
        assert cleared.status_code == 303
        assert "Ingen trappa. Larmen eskaleras till jouren" in physician.get(page).text
        # The physician's phone view of the alert says how far along the ladder it is.
        phone = physician.get(f"/alerts/{handed['alert_id']}").text
        assert "Överlämnat till Hemsjukvården Malmö (kommun): Sara Lind (hembesök, steg 1)</dd>" in phone
        # The record's alert history says who the alert was handed to.
        record = physician.get(f"/patients/{handed['ward'].patient_id}").text
        assert "Eskaleringstrappa" in record
        assert "Överlämnat till Hemsjukvården Malmö (kommun): Sara Lind (hembesök, steg 1)" in record
    log = db.execute("SELECT count(*) FROM access_log WHERE action = 'set_escalation_ladder'").fetchone()
    assert log == (2,)
    # The module's ladder again, for the tests after this one.
    execute(db, set_ladder(ward_id=WARD, steps=LADDER, phone=WARD_PHONE, by=PHYSICIAN, origin=None))


def test_screens_at_phone_size_and_on_the_settings_page(  # type: ignore[no-untyped-def]
    browser, handed: dict[str, Any]
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    base_url, link = handed["base_url"], handed["link"]
    problems: list[str] = []
    context = browser.new_context(locale="sv-SE", timezone_id="Europe/Stockholm", **PHONE)
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(link)
    page.fill("#username", NURSE)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(link)
    assert page.locator("h1").inner_text() == "Hembesök behövs inom 10 minuter"
    button = page.locator(".visit-button")
    assert button.bounding_box()["height"] >= 48  # type: ignore[index]
    assert overflows_sideways(page) == []
    page.screenshot(path=str(SHOTS / "partner-visit-390.png"), full_page=True)
    assert_no_serious(page, "partner visit")
    button.click()
    page.wait_for_url(link + "?tagen=1#besok")
    assert page.locator("h1").inner_text() == "Du har tagit hembesöket"
    page.screenshot(path=str(SHOTS / "partner-visit-taken-390.png"), full_page=True)
    assert_no_serious(page, "partner visit taken")
    context.close()

    context = browser.new_context(locale="sv-SE", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(f"{base_url}/login?next=/wards/{WARD}/eskalering")
    page.fill("#username", PHYSICIAN)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/wards/{WARD}/eskalering")
    assert page.locator(".ladder-steps li").count() == 3
    page.screenshot(path=str(SHOTS / "ward-ladder.png"), full_page=True)
    assert_no_serious(page, "ward ladder settings")
    page.set_viewport_size({"width": 390, "height": 844})
    assert overflows_sideways(page) == []
    page.screenshot(path=str(SHOTS / "ward-ladder-390.png"), full_page=True)
    context.close()
    assert problems == []
