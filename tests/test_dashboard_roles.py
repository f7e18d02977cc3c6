"""Clinical actions are for clinicians (security review, issue 8): an admin sees every ward but may not
acknowledge, snooze or end an alert, and is offered no button for it, by the server's templates or by
dashboard.js. Against a real PostgreSQL, uvicorn and Chromium.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from care.enrolment import EnrolledPatient
from core.settings import Settings
from tests.support.dashboard_server import log_in_page, logged_in, running_dashboard, watched_page
from tests.support.ward_seed import PASSWORD, add_alert, seed_two_wards
from tests.test_dashboard_engine_api import Staff, metric

SCREENSHOTS = Path(__file__).resolve().parent.parent / ".hemma-test" / "screenshots"
SECRET = "test-session-secret-roles-0123456789abcdef"
ACTION_BUTTONS = ("ack-form", "ack-button", "snooze-button", "resolve-form", "alert-actions")


@pytest.fixture
def seed(db: psycopg.Connection) -> dict[str, Any]:
    anna, bertil, _cecilia, (nurse_id, _physician_id, admin_id) = seed_two_wards(
        db,
        [
            ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
            ("dr.lund", "Erik Lund", "physician", ["avd-norr"]),
            ("it.admin", "Ada Admin", "admin", []),
        ],
    )
    high = add_alert(db, anna)
    medium = add_alert(db, bertil, priority="medium", rule="pulse_high", message="Puls 118/min", vital=None)
    db.execute(
        "UPDATE alerts SET state = 'acknowledged', acknowledged_by = %s WHERE id = %s", (nurse_id, medium)
    )
    return {"anna": anna, "bertil": bertil, "high": high, "medium": medium, "nurse_id": nurse_id,
            "admin_id": admin_id}  # fmt: skip


@pytest.fixture
def base_url(database_url: str, seed: dict[str, Any]) -> Iterator[str]:
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield url


def _alert_rows(db: psycopg.Connection) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT id, state, acknowledged_by, snoozed_until, snoozed_by, resolved_by FROM alerts ORDER BY id"
    ).fetchall()


def test_an_admin_may_not_acknowledge_snooze_or_end_alerts(
    base_url: str, db: psycopg.Connection, seed: dict[str, Any]
) -> None:
    before = _alert_rows(db)
    attempts = [
        ("acknowledge", seed["high"], {}, "Endast sjuksköterskor och läkare får kvittera larm"),
        ("snooze", seed["high"], {"minutes": 15}, "Endast sjuksköterskor och läkare får snooza larm"),
        ("snooze", seed["medium"], {"minutes": 15}, "Endast sjuksköterskor och läkare får snooza larm"),
        (
            "resolve",
            seed["medium"],
            {"note": "Ser bra ut"},
            "Endast sjuksköterskor och läkare får avsluta larm",
        ),
        # Refused before the alert is read: an admin learns nothing about which alerts exist.
        ("acknowledge", 999_999, {}, "Endast sjuksköterskor och läkare får kvittera larm"),
    ]
    with logged_in(base_url, "it.admin", PASSWORD) as client:
        admin = Staff(client)
        for action, alert_id, body, message in attempts:
            refused = admin.post(f"/api/alerts/{alert_id}/{action}", body)
            assert (refused.status_code, refused.json()) == (403, {"detail": message}), action
    # Nothing changed: the high alert is still open, so escalation to the physician on call goes on.
    assert _alert_rows(db) == before
    assert db.execute("SELECT count(*) FROM alert_events").fetchone() == (0,)
    actions = db.execute("SELECT action FROM access_log WHERE username = 'it.admin'").fetchall()
    assert actions == []
    assert metric(base_url, 'action_errors_total{action="acknowledge",status="403"}') == 2
    assert metric(base_url, 'action_errors_total{action="snooze",status="403"}') == 2
    assert metric(base_url, 'action_errors_total{action="resolve",status="403"}') == 1

    # The same alert, by a nurse: the refusal above was the role's, not the alert's.
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        assert Staff(client).post(f"/api/alerts/{seed['high']}/acknowledge", {}).status_code == 200
    assert db.execute("SELECT state FROM alerts WHERE id = %s", (seed["high"],)).fetchone() == (
        "acknowledged",
    )


def test_the_pages_offer_an_admin_no_alert_actions_and_no_orders(
    base_url: str, db: psycopg.Connection, seed: dict[str, Any]
) -> None:
    anna: EnrolledPatient = seed["anna"]
    pages = {}
    for username in ("it.admin", "nurse.norr"):
        with logged_in(base_url, username, PASSWORD) as client:
            pages[username] = (
                client.get("/wards/avd-norr").text,
                client.get(f"/patients/{anna.patient_id}").text,
            )
    admin_ward, admin_record = pages["it.admin"]
    nurse_ward, nurse_record = pages["nurse.norr"]
    for page in (admin_ward, admin_record):
        assert "SpO₂ 85 % under gränsen 88 %" in page  # the alert is shown ...
        for name in ACTION_BUTTONS:  # ... with nothing to press
            assert f'class="{name}' not in page, name
        assert 'data-may=""' in page  # dashboard.js offers nothing either
    for page in (nurse_ward, nurse_record):
        for name in ("ack-form", "snooze-button", "resolve-form"):
            assert f'class="{name}' in page, name
    may = re.search(r'data-may="([^"]*)"', nurse_ward)
    assert may is not None and set(may.group(1).split()) == {
        "acknowledge_alert", "snooze_alert", "resolve_alert", "record_observation", "set_monitoring_plan",
        "clear_monitoring_plan", "take_contact_request", "close_contact_request", "manage_patient_app",
        "set_questionnaire_schedule", "set_self_care", "send_patient_message", "review_patient",
        "discharge_patient", "admit_patient", "replay_limit", "share_with_partner", "record_patient_block",
    }  # fmt: skip
    # The record's orders: none for an admin, with the reason said once per panel.
    for form in ("observation-form", "plan-form", "scale-form", "limit-form"):
        assert f'class="order-form {form}' not in admin_record and f'class="{form}' not in admin_record
    assert "Observationer registreras av sjuksköterskor och läkare." in admin_record
    assert "Larmgränser ändras av läkare." in admin_record


def test_live_cards_offer_an_admin_no_alert_actions_in_chromium(
    browser,  # type: ignore[no-untyped-def]
    base_url: str,
    db: psycopg.Connection,
    seed: dict[str, Any],
) -> None:
    problems: list[str] = []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    counts = {}
    for username in ("it.admin", "nurse.norr"):
        context, page = watched_page(browser, problems)
        log_in_page(page, base_url, "/wards/avd-norr", username, PASSWORD)
        # The snapshot replaces the server's cards with dashboard.js's own.
        page.wait_for_function("() => window.hemma && window.hemma.connected && window.hemma.snapshots === 1")
        high = page.locator(f'li.alert[data-alert-id="{seed["high"]}"]')
        assert high.locator(".alert-message").inner_text() == "SpO₂ 85 % under gränsen 88 %"
        counts[username] = {
            name: page.locator(f"#patients .{name}").count()
            for name in ("ack-button", "snooze-button", "resolve-form", "alert-actions")
        }
        page.screenshot(path=str(SCREENSHOTS / f"roles-ward-{username}.png"), full_page=True)
        if username == "it.admin":
            # A live update (a new alert) is drawn by dashboard.js too: still nothing to press.
            bertil = seed["bertil"]
            new = add_alert(db, bertil, rule="spo2_low", message="SpO₂ 84 % under gränsen 88 %")
            db.execute(
                "SELECT pg_notify('hemma_events', %s)",
                (json.dumps({"kind": "alerts", "ward_id": "avd-norr", "alert_ids": [new]}),),
            )
            page.wait_for_selector(f'li.alert[data-alert-id="{new}"]', timeout=5000)
            assert (
                page.locator("#patients .ack-button, #patients .snooze-button, #patients .resolve").count()
                == 0
            )
            page.goto(f"{base_url}/patients/{seed['anna'].patient_id}")
            assert page.locator("#live-alerts .alert-message").first.inner_text().startswith("SpO₂ 85 %")
            assert page.locator("#live-alerts button, form.observation-form, form.plan-form").count() == 0
            page.screenshot(path=str(SCREENSHOTS / "roles-patient-it.admin.png"), full_page=True)
        context.close()
    assert counts["it.admin"] == {"ack-button": 0, "snooze-button": 0, "resolve-form": 0, "alert-actions": 0}
    # The nurse's cards, drawn by the same code, have them (by now two open high alerts with two
    # snooze choices each, and the acknowledged medium one with three).
    assert counts["nurse.norr"] == {
        "ack-button": 2,
        "snooze-button": 7,
        "resolve-form": 3,
        "alert-actions": 3,
    }
    assert problems == []
