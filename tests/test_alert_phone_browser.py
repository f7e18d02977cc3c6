"""The on-call physician's phone, end to end in a real Chromium at phone size (issue 11).

A high alert goes unacknowledged; the real escalator pages the jourläkare by e-mail through a real SMTP
server; the test follows the link in that e-mail as the phone would, logs in, and taps "Kvittera" with a
note. The database then holds the acknowledgement by that physician with that note, and the taps from
the message to acknowledged are counted: the link and the button (plus the login when the session is
not live, which the test does once and then not again).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from aiosmtpd.controller import Controller

from care.enrolment import EnrolledPatient, enrol_patient, ensure_ward
from care.limits import set_personal_threshold
from care.oncall import add_oncall_shift
from care.orders import order_spo2_scale
from care.plans import set_monitoring_plan
from care.staff import create_staff_user, set_staff_contact
from core.settings import Settings
from devservices.services import free_port
from paging.escalator import Escalator
from paging.notify import Dispatcher, EmailChannel, RetryPolicy, SystemClock
from tests.support.dashboard_server import running_dashboard
from tests.support.escalation import high_alert
from tests.support.smtp import Mailbox
from tests.support.ward_seed import PASSWORD, set_vital

SHOTS = Path("/tmp/shots-oncall")
WARD = "asih-nord"
PLAN_TEXT = "Syremättnad var 4 h"
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def ward(db: psycopg.Connection) -> dict[str, object]:
    ensure_ward(db, WARD, "ASIH Nord")
    oskar = enrol_patient(
        db, ward_id=WARD, display_name="Oskar Nilsson", gateway_id="gw-oskar", birth_year=1944,
        care_reason="Hjärtsvikt",
    )  # fmt: skip
    berg = create_staff_user(db, username="asa.berg", display_name="Dr. Åsa Berg", role="physician",
                             password=PASSWORD, ward_ids=[WARD])  # fmt: skip
    set_staff_contact(db, username="asa.berg", email="asa.berg@region.example")
    now = datetime.now(UTC)
    add_oncall_shift(db, ward_id=WARD, username="asa.berg", level=1, starts_at=now - timedelta(hours=8),
                     ends_at=now + timedelta(hours=8))  # fmt: skip
    # A day of readings, SpO2 falling towards the alert; pulse rising.
    for hours_ago in range(23, -1, -1):
        set_vital(db, oskar, "spo2", 95 - (23 - hours_ago) // 4, "%", hours_ago * 60 + 7)
        set_vital(db, oskar, "pulse_rate", 78 + (23 - hours_ago), "/min", hours_ago * 60 + 7)
    set_vital(db, oskar, "spo2", 89, "%", 3)
    set_vital(db, oskar, "systolic_bp", 104, "mm[Hg]", 40)
    set_personal_threshold(db, patient_id=oskar.patient_id, rule="pulse_high", priority="medium", limit=115,
                           reason="Förmaksflimmer, känd takykardi", set_by_username="asa.berg")  # fmt: skip
    order_spo2_scale(db, oskar.patient_id, 2, "KOL med hyperkapni", "asa.berg")
    set_monitoring_plan(db, oskar.patient_id, "spo2", timedelta(hours=4), "asa.berg")
    return {"oskar": oskar, "berg": berg}


def _page_the_physician(database_url: str, base_url: str, port: int, alert_id: int) -> None:
    channel = EmailChannel("127.0.0.1", port, sender="hemma@region.example", security="none", timeout_s=5)
    dispatcher = Dispatcher(
        [channel], clock=SystemClock(), policy=RetryPolicy(max_attempts=1, base_delay_s=0)
    )
    with Escalator(lambda: psycopg.connect(database_url, autocommit=True), dispatcher,
                   dashboard_url=base_url) as escalator:  # fmt: skip
        done = escalator.tick(datetime.now(UTC))
    assert [(e.alert_id, e.level, e.delivered) for e in done] == [(alert_id, 1, True)]


def test_from_the_escalation_mail_to_acknowledged_in_two_taps(
    browser,  # type: ignore[no-untyped-def]
    database_url: str,
    db: psycopg.Connection,
    ward: dict[str, object],
    mailbox: tuple[Mailbox, int],
) -> None:
    oskar: EnrolledPatient = ward["oskar"]  # type: ignore[assignment]
    box, port = mailbox
    SHOTS.mkdir(parents=True, exist_ok=True)
    alert_id = high_alert(db, oskar.patient_id, WARD, opened_at=datetime.now(UTC) - timedelta(minutes=6))
    problems: list[str] = []
    with running_dashboard(Settings(database_url=database_url)) as base_url:
        _page_the_physician(database_url, base_url, port, alert_id)
        [mail] = box.messages()
        link = re.search(r"https?://\S+/alerts/\d+", mail.get_content())
        assert link is not None and link.group(0) == f"{base_url}/alerts/{alert_id}"

        context = browser.new_context(locale="sv-SE", timezone_id="Europe/Stockholm", **PHONE)
        page = context.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        taps: list[str] = []

        # Tap 1: the link. No session yet: the login form, which brings the physician back to the alert.
        taps.append("link")
        page.goto(link.group(0))
        assert page.url == f"{base_url}/login?next=/alerts/{alert_id}"
        page.fill("#username", "asa.berg")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base_url}/alerts/{alert_id}")

        alert = page.locator("#larm")
        assert (
            alert.locator("h1").inner_text() == "HÖG NEWS2 7: hög risk"
        )  # the priority word in capitals (CSS)
        assert alert.locator(".phone-state").inner_text() == "Aktivt"
        assert (
            alert.locator(".phone-escalation").inner_text()
            == "Eskalerat till jourläkare Dr. Åsa Berg (nivå 1)"
        )
        assert "Oskar Nilsson" in alert.locator(".phone-patient").inner_text()
        assert page.locator('#senaste .vital[data-vital="spo2"] .vital-value').inner_text() == "89"
        assert "NEWS2" in page.locator("#senaste").inner_text()
        assert page.locator("#phone-news2").count() == 1
        trends = page.locator(".phone-trend")
        assert trends.evaluate_all("els => els.map(e => e.dataset.vital)") == [
            "spo2",
            "pulse_rate",
            "systolic_bp",
        ]
        assert page.locator('.phone-trend[data-vital="pulse_rate"]').get_attribute("data-points") == "24"
        assert (
            page.locator('.phone-trend[data-vital="pulse_rate"] .trend-range').inner_text() == "78–101 /min"
        )
        assert "Skala 2 (hyperkapni)" in page.locator(".phone-scale").inner_text()
        assert "115 /min" in page.locator(".phone-limits").inner_text()
        assert page.locator(".phone-plan li").all_inner_texts() == [PLAN_TEXT]
        assert page.locator(f'a[href="/patients/{oskar.patient_id}"]').is_visible()
        # Fits the phone: no sideways scrolling, the button within the first screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        button = page.locator(".phone-ack-button")
        box_ = button.bounding_box()
        assert box_ is not None and box_["y"] + box_["height"] <= 844 and box_["height"] >= 48
        page.screenshot(path=str(SHOTS / "phone-alert-open.png"), full_page=True)

        # Tap 2: Kvittera (the note is optional; this one is typed before the tap).
        page.fill("#ack-note", "Ringer patienten nu")
        taps.append("kvittera")
        button.tap()
        page.wait_for_url(f"{base_url}/alerts/{alert_id}?kvitterat=1#larm")
        assert page.locator(".phone-done").inner_text() == "Kvitterat. Eskaleringen har stoppats."
        assert page.locator(".phone-state").inner_text() == "Kvitterat"
        assert page.locator(".phone-acknowledged-by").inner_text().startswith("Dr. Åsa Berg, ")
        assert page.locator(".phone-note").inner_text() == "Ringer patienten nu"
        assert page.locator(".phone-ack-button").count() == 0
        page.screenshot(path=str(SHOTS / "phone-alert-acknowledged.png"), full_page=True)
        assert taps == ["link", "kvittera"]

        # The session is live now: another link opens the page directly (no login between).
        second = high_alert(db, oskar.patient_id, WARD, opened_at=datetime.now(UTC), rule="spo2_low")
        page.goto(f"{base_url}/alerts/{second}")
        assert page.url == f"{base_url}/alerts/{second}"
        page.locator(".phone-ack-button").tap()
        page.wait_for_url(f"{base_url}/alerts/{second}?kvitterat=1#larm")
        context.close()

    row = db.execute("SELECT state, acknowledged_by FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert row == ("acknowledged", ward["berg"])
    events = db.execute(
        "SELECT kind, actor, note FROM alert_events WHERE alert_id = %s ORDER BY id", (alert_id,)
    ).fetchall()
    assert [e[0] for e in events] == ["escalated", "notified", "acknowledged"]
    assert events[2][1:] == ("staff:asa.berg", "Ringer patienten nu")
    assert db.execute("SELECT state, acknowledged_by FROM alerts WHERE id = %s", (second,)).fetchone() == (
        "acknowledged",
        ward["berg"],
    )
    assert db.execute(
        "SELECT note FROM alert_events WHERE alert_id = %s AND kind = 'acknowledged'", (second,)
    ).fetchone() == (None,)
    # One access-log row per page read for the patient, and one per acknowledgement.
    logged = db.execute(
        "SELECT action, context FROM access_log WHERE patient_id = %s AND username = 'asa.berg'"
        " AND action IN ('alert_view', 'acknowledge_alert') ORDER BY id",
        (oskar.patient_id,),
    ).fetchall()
    assert logged == [
        ("alert_view", f"alert:{alert_id} html"),
        ("acknowledge_alert", f"alert:{alert_id}"),
        ("alert_view", f"alert:{alert_id} html"),
        ("alert_view", f"alert:{second} html"),
        ("acknowledge_alert", f"alert:{second}"),
        ("alert_view", f"alert:{second} html"),
    ]
    assert problems == []


def test_a_nurse_acknowledges_from_the_same_page_and_a_stale_form_changes_nothing(
    browser,  # type: ignore[no-untyped-def]
    database_url: str,
    db: psycopg.Connection,
    ward: dict[str, object],
) -> None:
    oskar: EnrolledPatient = ward["oskar"]  # type: ignore[assignment]
    create_staff_user(db, username="sara.sjostrom", display_name="Sara Sjöström", role="nurse",
                      password=PASSWORD, ward_ids=[WARD])  # fmt: skip
    alert_id = high_alert(db, oskar.patient_id, WARD, opened_at=datetime.now(UTC))
    with running_dashboard(Settings(database_url=database_url)) as base_url:
        context = browser.new_context(locale="sv-SE", java_script_enabled=False, **PHONE)
        page = context.new_page()
        page.goto(f"{base_url}/alerts/{alert_id}")
        page.fill("#username", "sara.sjostrom")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base_url}/alerts/{alert_id}")
        # Without JavaScript: a forged token is refused and nothing changes; the real form works.
        forged = context.request.post(
            f"{base_url}/alerts/{alert_id}/kvittera", form={"csrf": "x", "note": ""}
        )
        assert forged.status == 403
        assert db.execute("SELECT state FROM alerts WHERE id = %s", (alert_id,)).fetchone() == ("open",)
        page.locator(".phone-ack-button").click()
        page.wait_for_url(f"{base_url}/alerts/{alert_id}?kvitterat=1#larm")
        assert page.locator(".phone-acknowledged-by").inner_text().startswith("Sara Sjöström, ")
        context.close()
    assert db.execute("SELECT state FROM alerts WHERE id = %s", (alert_id,)).fetchone() == ("acknowledged",)
