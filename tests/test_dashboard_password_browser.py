"""Login and the password form in headless Chromium, at desktop and phone width (issue 8).

A real browser sends its own Origin, Referer and Sec-Fetch-Site headers: this proves the login's
CSRF token and the same-origin check let our own pages through. Screenshots:
.hemma-test/screenshots/login-phone.png, password-error.png, password-error-phone.png,
password-changed.png, login-cross-site.png.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import psycopg
from playwright.sync_api import expect

from care.passwords import password_hasher
from core.settings import Settings
from tests.support.dashboard_server import running_dashboard, watched_page
from tests.support.ward_seed import PASSWORD, seed_two_wards

SCREENSHOTS = Path(__file__).resolve().parent.parent / ".hemma-test" / "screenshots"
NEW = "blå cykel under bron"


def test_a_nurse_logs_in_and_changes_her_password_on_a_phone_and_a_pc(
    browser,  # type: ignore[no-untyped-def]
    database_url: str,
    db: psycopg.Connection,
) -> None:
    seed_two_wards(db, [("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"])])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with running_dashboard(Settings(database_url=database_url)) as base_url:
        phone, phone_page = watched_page(browser, problems)
        phone_page.set_viewport_size({"width": 390, "height": 844})
        phone_page.goto(base_url + "/password")
        assert "/login" in phone_page.url
        phone_page.screenshot(path=str(SCREENSHOTS / "login-phone.png"), full_page=True)
        phone_page.get_by_label("Användarnamn").fill("nurse.norr")
        phone_page.get_by_label("Lösenord").fill(PASSWORD)
        phone_page.get_by_role("button", name="Logga in").click()
        phone_page.wait_for_url("**/password")

        pc, page = watched_page(browser, problems)
        page.goto(base_url + "/wards/avd-norr")
        page.get_by_label("Användarnamn").fill("nurse.norr")
        page.get_by_label("Lösenord").fill(PASSWORD)
        page.get_by_role("button", name="Logga in").click()
        page.wait_for_url("**/wards/avd-norr")
        page.get_by_role("link", name="Byt lösenord").click()
        page.wait_for_url("**/password")
        expect(page.locator("#current")).to_be_focused()  # the first field has the focus (autofocus)

        # Two different new passwords: the message is announced and the field to fix has the focus.
        page.get_by_label("Nuvarande lösenord").fill(PASSWORD)
        page.get_by_label("Nytt lösenord", exact=True).fill(NEW)
        page.get_by_label("Nytt lösenord igen").fill(NEW + " x")
        page.get_by_role("button", name="Byt lösenord").click()
        alert = page.get_by_role("alert")
        assert alert.inner_text() == "De två nya lösenorden är inte lika. Skriv samma lösenord i båda fälten."
        # autofocus moves the focus at the browser's next rendering step: waited for, not raced.
        expect(page.locator("#repeat")).to_be_focused()
        assert page.locator("#repeat").get_attribute("aria-invalid") == "true"
        page.screenshot(path=str(SCREENSHOTS / "password-error.png"), full_page=True)
        phone_page.get_by_label("Nuvarande lösenord").fill(PASSWORD)
        phone_page.get_by_label("Nytt lösenord", exact=True).fill("Sommar2024!!")
        phone_page.get_by_label("Nytt lösenord igen").fill("Sommar2024!!")
        phone_page.get_by_role("button", name="Byt lösenord").click()
        assert "för lätt att gissa" in phone_page.get_by_role("alert").inner_text()
        assert phone_page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
        phone_page.screenshot(path=str(SCREENSHOTS / "password-error-phone.png"), full_page=True)

        page.get_by_label("Nuvarande lösenord").fill(PASSWORD)
        page.get_by_label("Nytt lösenord", exact=True).fill(NEW)
        page.get_by_label("Nytt lösenord igen").fill(NEW)
        page.get_by_role("button", name="Byt lösenord").click()
        page.wait_for_url("**/password?bytt=1")
        assert page.get_by_role("status").inner_text().startswith("Lösenordet är bytt.")
        page.screenshot(path=str(SCREENSHOTS / "password-changed.png"), full_page=True)

        # The phone's session ended with the change: its next page is the login form.
        phone_page.goto(base_url + "/wards/avd-norr")
        assert "/login" in phone_page.url
        # Logging out on the PC works through the header's form, and the ward page is then closed.
        page.get_by_role("button", name="Logga ut").click()
        page.wait_for_url("**/login")
        page.goto(base_url + "/wards/avd-norr")
        assert "/login" in page.url
        phone.close()
        pc.close()
    assert password_hasher().verify(NEW, db.execute("SELECT password_hash FROM staff_users").fetchone()[0])  # type: ignore[index]
    # The two refusals above answer 422 on purpose; Chromium reports each such page load.
    provoked = "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    assert [p for p in problems if p != provoked] == [] and len(problems) == 2


def test_a_login_form_on_another_page_cannot_log_the_browser_in(
    browser,  # type: ignore[no-untyped-def]
    database_url: str,
    db: psycopg.Connection,
) -> None:
    """Login CSRF as a browser meets it: a page elsewhere posts the attacker's credentials to /login."""
    seed_two_wards(db, [("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"])])
    problems: list[str] = []
    with running_dashboard(Settings(database_url=database_url)) as base_url:
        context, page = watched_page(browser, problems)
        page.goto(base_url + "/login")  # the victim's browser has a pre-login cookie and token
        trap = (
            f'<form method="post" action="{base_url}/login"><input name="username" value="nurse.norr">'
            f'<input name="password" value="{PASSWORD}"><button>Vinn en resa</button></form>'
        )
        page.goto("data:text/html;charset=utf-8," + quote(trap))  # a page of another (opaque) origin
        page.get_by_role("button", name="Vinn en resa").click()
        page.wait_for_load_state()
        assert page.url.startswith(base_url)
        assert "Förfrågan kom inte från Hemmas egna sidor och nekades." in page.content()
        page.screenshot(path=str(SCREENSHOTS / "login-cross-site.png"), full_page=True)
        page.goto(base_url + "/wards/avd-norr")
        assert "/login" in page.url  # not logged in
        context.close()
    assert problems == ["Failed to load resource: the server responded with a status of 403 (Forbidden)"]
