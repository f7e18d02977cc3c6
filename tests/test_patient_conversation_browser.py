"""The conversation in a real Chromium (issue 10): the patient presses Kontakta mig on a phone, the nurse
takes it on the ward overview in another browser context, and the patient's screen changes by itself;
a message goes to the ward and the answer comes back the same way. Free text with markup in it is
shown as text on every screen, and no script of it runs.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from core.settings import Settings
from dashboard.patient_realm import DEVICE_COOKIE
from tests.support.dashboard_server import log_in_page, running_dashboard, watched_page
from tests.support.ward_seed import PASSWORD, seed_two_wards
from tests.test_patient_conversation import STAFF, TOKENS, enrol_device

SECRET = "test-session-secret-conversation-browser"
# Markup a patient might paste: it must stay text wherever it is shown.
LINE = '<img src=x onerror="window.__pwned = 1">Ont i bröstet'
MESSAGE = "<script>window.__pwned = 2</script>Hej, hur länge ska jag vila?"
PHONE = {"width": 390, "height": 844}
TABLET = {"width": 820, "height": 1180}


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where the screenshots go (HEMMA_SCREENSHOTS to keep them, else the test's own folder)."""
    folder = Path(os.environ.get("HEMMA_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def ward(database_url: str, db: psycopg.Connection) -> Iterator[tuple[str, uuid.UUID, int]]:
    anna, _, _, ids = seed_two_wards(db, STAFF)
    device = enrol_device(db, anna.patient_id, "patient", "Annas telefon", ids[0])
    settings = Settings(database_url=database_url, session_secret=SECRET, patient_poll_seconds=1)
    with running_dashboard(settings) as url:
        yield url, anna.patient_id, device


def _patient_page(browser, base_url: str, device: int, problems: list[str], viewport: dict[str, int]):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=viewport, locale="sv-SE")
    context.add_cookies(
        [{"name": DEVICE_COOKIE, "value": TOKENS[device], "domain": "127.0.0.1", "path": "/p"}]
    )
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return context, page


def test_kontakta_mig_the_nurse_takes_it_and_the_answer_comes_back(
    browser, ward: tuple[str, uuid.UUID, int], db: psycopg.Connection, shots: Path
) -> None:  # type: ignore[no-untyped-def]
    base_url, anna, device = ward
    problems: list[str] = []
    patient_context, patient = _patient_page(browser, base_url, device, problems, PHONE)
    patient.goto(base_url + "/p/kontakt")
    patient.get_by_label("Jag mår sämre").check()
    patient.get_by_label("Vill du skriva något? (frivilligt)").fill(LINE)
    patient.screenshot(path=str(shots / "kontakt-phone.png"), full_page=True)
    patient.get_by_role("button", name="Kontakta mig").click()
    patient.wait_for_url("**/p/kontakt?skickat=1#skickat")
    state = patient.locator("[data-live='/p/fragment/kontakt']")
    assert "Ditt meddelande har kommit fram." in state.inner_text()
    assert LINE in state.inner_text()  # the patient's own line, as they wrote it

    nurse_context, nurse = watched_page(browser, problems)
    log_in_page(nurse, base_url, "/wards/avd-norr", "nurse.norr", PASSWORD)
    card = nurse.locator(f'article.patient[data-patient-id="{anna}"]')
    card.locator(".contact-request.contact-open").wait_for(timeout=5000)
    assert card.locator(".contact-line").inner_text() == LINE
    card.locator("select.contact-call-within").select_option("60")
    card.locator("button.contact-take-button").click()
    card.locator(".contact-request.contact-taken").wait_for(timeout=5000)
    assert "ringer inom 1 h" in card.locator(".contact-taker").inner_text()

    # The patient's screen changes by itself (the live region), without a reload.
    state.get_by_text(
        "Sara Sjöström, sjuksköterska, har sett ditt meddelande och ringer dig inom 1 timme."
    ).wait_for(timeout=10000)
    patient.screenshot(path=str(shots / "kontakt-taken-phone.png"), full_page=True)
    assert db.execute("SELECT call_within_minutes, state FROM contact_requests").fetchone() == (60, "taken")

    # A message with markup in it: the ward reads it as text on the card and the record, nothing runs.
    patient.set_viewport_size(TABLET)
    patient.goto(base_url + "/p/meddelanden")
    patient.get_by_label("Ditt meddelande").fill(MESSAGE)
    patient.get_by_role("button", name="Skicka").click()
    patient.wait_for_url("**/p/meddelanden#senaste")
    card.locator(".unread-excerpt").wait_for(timeout=5000)
    assert card.locator(".unread-excerpt").inner_text() == MESSAGE
    nurse.goto(base_url + f"/patients/{anna}")
    thread = nurse.locator("#patient-messages .message-thread")
    assert thread.locator(".message-patient .message-body").inner_text() == MESSAGE
    assert nurse.locator("#contact-requests .contact-line-full").inner_text() == LINE
    nurse.get_by_label("Skriv till patienten").fill("Vila till i morgon. Vi ringer dig <i>ikväll</i>.")
    nurse.locator("#patient-messages button[type=submit]").click()
    nurse.locator(".message-staff").wait_for(timeout=5000)  # the record reloaded with the reply
    reply = patient.locator(".p-message", has_text="Vila till i morgon.")
    reply.wait_for(timeout=10000)  # the patient's thread, live
    assert "Sara Sjöström, sjuksköterska" in reply.inner_text()
    assert "<i>ikväll</i>" in reply.inner_text()
    patient.get_by_text("Läst av avdelningen").wait_for(timeout=10000)
    patient.screenshot(path=str(shots / "meddelanden-tablet.png"), full_page=True)
    nurse.screenshot(path=str(shots / "record-conversation.png"), full_page=True)

    for page in (patient, nurse):
        assert page.evaluate("() => window.__pwned") is None
    assert problems == []
    patient_context.close()
    nurse_context.close()
