"""The heart-failure check in Chromium at tablet and phone sizes: answered by tapping the large choices,
refused and corrected, thanked; each screen audited with axe-core (no serious or critical violation)
and every control at least 56 px tall."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from axe_playwright_python.sync_playwright import Axe

from core.settings import Settings
from dashboard.patient_realm import DEVICE_COOKIE
from tests.support.dashboard_server import running_dashboard
from tests.support.questionnaires import HF, enrol_device, responses
from tests.support.ward_seed import seed_two_wards

SIZES = {"tablet": {"width": 800, "height": 1280}, "phone": {"width": 360, "height": 740}}
# Where screenshots go when HEMMA_TEST_SCREENSHOTS is set (for a person to look at).
SHOTS = os.environ.get("HEMMA_TEST_SCREENSHOTS")


@pytest.fixture
def patient(db: psycopg.Connection) -> tuple[Any, str]:
    anna, _, _, (nurse_id,) = seed_two_wards(db, [("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"])])
    token, _ = enrol_device(db, anna.patient_id, nurse_id)
    return anna, token


@pytest.fixture
def base_url(database_url: str, patient: Any) -> Iterator[str]:
    settings = Settings(database_url=database_url, session_secret="test-session-secret-questionnaire-browser")
    with running_dashboard(settings) as url:
        yield url


def audit(page: Any, name: str) -> None:
    """No serious or critical axe-core violation, and every control at least 56 px tall."""
    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert bad == [], f"{name}: " + "; ".join(f"{v['id']}: {v['help']}" for v in bad)
    small = page.evaluate(
        "() => [...document.querySelectorAll(`main a, main button, main label.p-choice, main textarea,"
        " main input[type=text]`)]"
        ".map(e => [e.textContent.trim().slice(0, 30), e.getBoundingClientRect().height])"
        ".filter(([, h]) => h < 56)"
    )
    assert small == [], f"{name}: controls under 56 px: {small}"
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("size", SIZES)
def test_the_heart_failure_check_on_a_tablet_and_a_phone(
    size: str, browser: Any, base_url: str, patient: Any, db: psycopg.Connection
) -> None:
    anna, token = patient
    context = browser.new_context(viewport=SIZES[size], locale="sv-SE", bypass_csp=True)
    problems: list[str] = []
    try:
        context.add_cookies([{"name": DEVICE_COOKIE, "value": token, "url": f"{base_url}/p/"}])
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(f"{base_url}/p/fragor/{HF}")
        assert page.get_by_role("heading", level=1).inner_text() == "Frågor om hjärtat"
        audit(page, f"questionnaire-form-{size}")

        page.get_by_role("group", name="Hur är din andning idag").get_by_label("Mycket mer andfådd").check()
        page.get_by_label("Ja, mycket mer").check()
        page.get_by_label("Ditt svar").fill("Svårt att gå i trappan")
        page.get_by_role("button", name="Skicka svaren").click()  # two questions left unanswered
        page.wait_for_selector("#fel-pillows")
        assert "Något svar saknas" in page.get_by_role("alert").first.inner_text()
        assert page.get_by_label("Mycket mer andfådd").is_checked()  # kept
        assert page.get_by_label("Ditt svar").input_value() == "Svårt att gå i trappan"
        audit(page, f"questionnaire-refused-{size}")

        page.get_by_role("group", name="Har du i natt behövt fler kuddar").get_by_label("Nej").check()
        page.get_by_role("group", name="Har du känt dig yr").get_by_label("Nej").check()
        page.get_by_role("button", name="Skicka svaren").click()
        page.wait_for_url("**/tack/**")
        assert page.get_by_role("heading", level=1).inner_text() == "Tack!"
        assert "Avdelningen ser dina svar" in page.inner_text("main")
        audit(page, f"questionnaire-thanks-{size}")
    finally:
        context.close()
    assert problems == []
    assert responses(db, anna.patient_id) == 1
