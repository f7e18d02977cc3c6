"""Issue 12's login screens in Chromium: the SITHS button through a real OIDC provider, turning on
two-factor on /account (QR code), the code step of a password login, and the session lists (own
and the admin's); no script or CSP errors. Screenshots in /tmp/shots-login."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pyotp
import pytest

from care.two_factor import time_step
from core.settings import Settings
from tests.support.dashboard_server import running_dashboard, watched_page
from tests.support.oidc_provider import running_oidc_provider, set_user
from tests.support.ward_seed import PASSWORD, seed_two_wards

pytestmark = [
    pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::authlib.deprecate.AuthlibDeprecationWarning"),
]
SECRET = "test-session-secret-login-browser-01234"
SHOTS = Path("/tmp/shots-login")
SARA_HSA = "SE2321000016-1003"


@pytest.fixture(scope="module")
def site(postgres_admin_url: str, template_database: str) -> Iterator[str]:
    from tests.conftest import _with_dbname

    name = f"hemma_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    db_url = _with_dbname(postgres_admin_url, name)
    try:
        with psycopg.connect(db_url, autocommit=True) as db:
            seed_two_wards(db, [("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
                                ("admin", "Ada Admin", "admin", [])])  # fmt: skip
            db.execute("UPDATE staff_users SET hsa_id = %s WHERE username = 'nurse.norr'", (SARA_HSA,))
        with running_oidc_provider() as issuer:
            set_user(issuer, "sara", {"employeeHsaId": SARA_HSA})
            settings = Settings(database_url=db_url, session_secret=SECRET, oidc_issuer=issuer,
                                oidc_client_id="hemma", oidc_client_secret="hemma-secret")  # fmt: skip
            with running_dashboard(settings) as url:
                yield url
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_siths_login_two_factor_and_sessions_in_chromium(site: str, browser: Any) -> None:
    problems: list[str] = []
    # 1. The login page with the SITHS button, on a phone; through the provider to the ward.
    context, page = watched_page(browser, problems)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(site + "/wards/avd-norr")
    assert page.get_by_role("link", name="Logga in med SITHS-kort").is_visible()
    shot(page, "01-login-siths-phone")
    page.set_viewport_size({"width": 1280, "height": 800})
    shot(page, "02-login-siths-desktop")
    page.get_by_role("link", name="Logga in med SITHS-kort").click()
    page.get_by_placeholder("sub").fill("sara")
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url("**/wards/avd-norr")
    assert "Sara Sjöström" in page.inner_text(".user")

    # 2. /account: turn on two-factor (QR code, secret as text), confirm with a code.
    page.get_by_role("link", name="Mitt konto").click()
    page.get_by_role("button", name="Slå på tvåstegsverifiering").click()
    page.wait_for_selector("svg.totp-qr")
    shot(page, "03-account-enrol-qr")
    secret = page.inner_text("code.totp-secret").replace(" ", "")
    step = time_step(datetime.now(UTC))
    page.fill("#code", pyotp.TOTP(secret).generate_otp(step - 1))
    page.get_by_role("button", name="Bekräfta och slå på").click()
    page.wait_for_selector("text=Tvåstegsverifiering är påslagen")
    assert page.locator("text=den här webbläsaren").count() == 1
    shot(page, "04-account-two-factor-on-sessions")
    context.close()

    # 3. A password login now asks for the code; a wrong one is said in Swedish.
    context, page = watched_page(browser, problems)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(site + "/wards/avd-norr")
    page.fill("#username", "nurse.norr")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Logga in", exact=True).click()
    page.wait_for_url("**/login/kod")
    shot(page, "05-totp-step-phone")
    page.fill("#code", f"{(int(pyotp.TOTP(secret).now()) + 1) % 1_000_000:06d}")
    page.get_by_role("button", name="Logga in").click()
    assert page.get_by_role("alert").inner_text().startswith("Koden stämmer inte")
    shot(page, "06-totp-wrong-code")
    page.fill("#code", pyotp.TOTP(secret).generate_otp(time_step(datetime.now(UTC)) + 1))
    page.get_by_role("button", name="Logga in").click()
    page.wait_for_url("**/wards/avd-norr")
    context.close()

    # 4. The admin's staff page: Sara's sessions (SITHS and password + code), "Logga ut" per session.
    context, page = watched_page(browser, problems)
    page.goto(site + "/admin/staff")
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Logga in", exact=True).click()
    page.wait_for_url("**/admin/staff")
    saras = page.locator("tr.staff-edit", has=page.locator("summary", has_text="Ändra Sara Sjöström"))
    saras.locator("summary").click()
    logins = saras.locator(".admin-logins")
    text = logins.inner_text()
    assert "SITHS" in text and "Lösenord och engångskod" in text and "Återställ tvåstegsverifiering" in text
    logins.scroll_into_view_if_needed()
    shot(page, "07-admin-staff-sessions")
    count = logins.locator("tr[data-session-id]").count()
    assert count == 2
    logins.locator("tr[data-session-id] button", has_text="Logga ut").first.click()
    page.wait_for_load_state()
    saras.locator("summary").click()
    assert saras.locator("tr[data-session-id]").count() == count - 1
    context.close()
    # "Failed to load resource" lines are the wrong code's 401 and the provider's own page asking a
    # CDN this sandbox cannot reach; anything else (a script error, a CSP refusal) is Hemma's.
    assert [p for p in problems if not p.startswith("Failed to load resource")] == []
