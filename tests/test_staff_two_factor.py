"""TOTP two-factor for local accounts (issue 12, care.two_factor) through a running dashboard: enrol on
/account (QR code and text, confirmed by a code), the login's second step, the half-logged-in browser
that reaches nothing, wrong codes braked, a used code refused, the ±1 step window, an admin's reset
(page and CLI), and HEMMA_TOTP_REQUIRED enrolling at login."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pyotp
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from care.two_factor import matching_step, time_step
from core.settings import Settings
from tests.support.dashboard_server import (
    csrf_token,
    logged_in,
    login_token,
    post_login,
    running_dashboard,
    ward_socket,
)
from tests.support.ward_seed import PASSWORD, seed_two_wards

SECRET = "test-session-secret-two-factor-0123456"


@dataclass
class Site:
    url: str
    db_url: str
    settings: Settings


@pytest.fixture(scope="module")
def site(postgres_admin_url: str, template_database: str) -> Iterator[Site]:
    from tests.conftest import _with_dbname

    name = f"hemma_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    db_url = _with_dbname(postgres_admin_url, name)
    try:
        with psycopg.connect(db_url, autocommit=True) as db:
            seed_two_wards(db, [(u, n, r, w) for u, n, r, w in (
                ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
                ("nurse.brake", "Britt Broms", "nurse", ["avd-norr"]),
                ("nurse.new", "Nils Ny", "nurse", ["avd-norr"]),
                ("admin", "Ada Admin", "admin", []),
            )])  # fmt: skip
        settings = Settings(database_url=db_url, session_secret=SECRET)
        with running_dashboard(settings) as url:
            yield Site(url, db_url, settings)
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(site: Site) -> Iterator[psycopg.Connection]:
    with psycopg.connect(site.db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM login_brakes")
        yield conn


def enrol(site: Site, username: str) -> str:
    """Turn two-factor on from /account as the person does; returns the secret the page showed."""
    with logged_in(site.url, username, PASSWORD) as client:
        token = csrf_token(client, "/account")
        assert client.post("/account/tvasteg", data={"csrf": token}).status_code == 303
        page = client.get("/account").text
        assert "<svg" in page and 'class="totp-qr"' in page and "style=" not in page.split("<main")[1]
        secret = re.search(r'<code class="totp-secret">([A-Z2-7 ]+)</code>', page)
        assert secret is not None
        key = secret[1].replace(" ", "")
        wrong = client.post("/account/tvasteg/bekrafta", data={"csrf": token, "code": "000000"})
        if pyotp.TOTP(key).now() != "000000":
            assert wrong.status_code == 422 and "Koden stämmer inte" in wrong.text
        # The previous step's code (within the window): the logins that follow use now's and later ones.
        done = client.post("/account/tvasteg/bekrafta", data={"csrf": token, "code": code_at(key, -1)})
        assert done.status_code == 303
        assert "Påslagen" in client.get("/account").text
    return key


def socket_refused(client: httpx.Client, url: str) -> bool:
    """The ward's websocket is refused this client: not upgraded, or closed with 4401 at once."""
    try:
        ws = ward_socket(client, url, "avd-norr")
    except InvalidStatus:
        return True
    with ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=5)
    return closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def code_at(secret: str, steps_from_now: int) -> str:
    return pyotp.TOTP(secret).generate_otp(time_step(datetime.now(UTC)) + steps_from_now)


def password_step(
    site: Site, client: httpx.Client, username: str, next_path: str = "/wards/avd-norr"
) -> None:
    answer = post_login(client, username, PASSWORD, next=next_path)
    assert answer.status_code == 303 and answer.headers["location"] == "/login/kod"


def send_code(client: httpx.Client, code: str) -> httpx.Response:
    page = client.get("/login/kod")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None, page.text[:300]
    return client.post("/login/kod", data={"csrf": token[1], "code": code})


def test_the_code_is_one_step_either_side_of_now_and_never_an_older_one() -> None:
    secret = pyotp.random_base32(32)
    now = datetime(2026, 3, 1, 12, 0, 10, tzinfo=UTC)
    step = time_step(now)
    hotp = pyotp.TOTP(secret)
    assert matching_step(secret, hotp.generate_otp(step), now, None) == step
    assert matching_step(secret, hotp.generate_otp(step - 1), now, None) == step - 1
    assert matching_step(secret, hotp.generate_otp(step + 1), now, None) == step + 1
    assert matching_step(secret, hotp.generate_otp(step - 2), now, None) is None
    assert matching_step(secret, hotp.generate_otp(step + 2), now, None) is None
    assert matching_step(secret, hotp.generate_otp(step), now, step) is None  # used already
    assert matching_step(secret, hotp.generate_otp(step - 1), now, step) is None  # older than the last
    code = hotp.generate_otp(step)
    assert matching_step(secret, f"{code[:3]} {code[3:]}", now, None) == step  # as apps show it
    for junk in ("", "12345", "1234567", "12a456", "١٢٣٤٥٦", code + "\x00"):
        assert matching_step(secret, junk, now + timedelta(0), None) is None


def test_enrolled_login_asks_for_a_code_and_the_half_logged_in_browser_reaches_nothing(
    site: Site, db: psycopg.Connection
) -> None:
    secret = enrol(site, "nurse.norr")
    assert db.execute(
        "SELECT confirmed_at IS NOT NULL FROM staff_totp t JOIN staff_users u ON u.id = t.staff_user_id"
        " WHERE u.username = 'nurse.norr'"
    ).fetchone() == (True,)
    sessions = db.execute("SELECT count(*) FROM staff_sessions").fetchone()[0]
    with httpx.Client(base_url=site.url, timeout=10) as client:
        password_step(site, client, "nurse.norr")
        assert db.execute("SELECT count(*) FROM staff_sessions").fetchone()[0] == sessions  # no session yet
        page = client.get("/login/kod")
        assert page.status_code == 200 and "sexsiffriga koden" in page.text and "<svg" not in page.text
        for path in ("/wards/avd-norr", "/account", "/"):
            assert client.get(path).headers["location"].startswith("/login?next=")
        assert client.get("/api/wards/avd-norr/overview").status_code == 401
        assert socket_refused(client, site.url)
        landed = send_code(client, code_at(secret, 0))
        assert landed.status_code == 303 and landed.headers["location"] == "/wards/avd-norr"
        assert client.get("/wards/avd-norr").status_code == 200
    assert db.execute("SELECT method FROM staff_sessions ORDER BY id DESC LIMIT 1").fetchone() == (
        "password_totp",
    )


def test_a_used_code_is_refused_the_second_time(site: Site, db: psycopg.Connection) -> None:
    secret = enrol(site, "nurse.new")
    code = code_at(secret, 1)  # a step ahead: not the one the enrolment used
    with httpx.Client(base_url=site.url, timeout=10) as first:
        password_step(site, first, "nurse.new")
        assert send_code(first, code).status_code == 303
    with httpx.Client(base_url=site.url, timeout=10) as second:
        password_step(site, second, "nurse.new")
        again = send_code(second, code)
        assert again.status_code == 401 and "Koden stämmer inte" in again.text
        older = send_code(second, code_at(secret, 0))  # an older step than the one used
        assert older.status_code == 401
        assert second.get("/wards/avd-norr").headers["location"].startswith("/login")


def test_wrong_codes_are_braked_even_after_a_right_password(site: Site, db: psycopg.Connection) -> None:
    secret = enrol(site, "nurse.brake")
    limit = site.settings.login_account_max_failures
    wrong = f"{(int(code_at(secret, 0)) + 500_000) % 1_000_000:06d}"
    with httpx.Client(base_url=site.url, timeout=10) as client:
        password_step(site, client, "nurse.brake")
        statuses = [send_code(client, wrong).status_code for _ in range(limit - 1)]
        password_step(site, client, "nurse.brake")  # a right password does not wipe the code's count
        statuses.append(send_code(client, wrong).status_code)
        assert statuses == [401] * (limit - 1) + [429]
        locked = send_code(client, code_at(secret, 1))  # the right code waits too
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
        assert "För många misslyckade inloggningar" in locked.text
    assert db.execute("SELECT count(*) FROM login_brakes WHERE locked_until > now()").fetchone()[0] >= 1


def test_a_forged_or_expired_second_step_starts_nothing(site: Site, db: psycopg.Connection) -> None:
    with httpx.Client(base_url=site.url, timeout=10) as client:
        assert client.get("/login/kod").headers["location"] == "/login"
        token = login_token(client)
        answer = client.post("/login/kod", data={"csrf": token, "code": "123456"})
        assert answer.status_code == 401 and "Logga in med lösenordet igen" in answer.text


def test_an_admin_resets_two_factor_and_the_account_logs_out(site: Site, db: psycopg.Connection) -> None:
    secret = enrol(site, "nurse.norr") if not _enrolled(db, "nurse.norr") else None
    with httpx.Client(base_url=site.url, timeout=10) as nurse:
        if secret is None:
            secret = db.execute("SELECT secret FROM staff_totp t JOIN staff_users u ON u.id = t.staff_user_id"
                                " WHERE u.username = 'nurse.norr'").fetchone()[0]  # fmt: skip
        password_step(site, nurse, "nurse.norr")
        assert send_code(nurse, code_at(secret, 1)).status_code == 303
        with logged_in(site.url, "admin", PASSWORD) as admin:
            page = admin.get("/admin/staff").text
            assert "Återställ tvåstegsverifiering" in page and "tvåstegsverifiering påslagen" in page
            token = csrf_token(admin, "/admin/staff")
            reset = admin.post("/admin/staff/nurse.norr/tvasteg/aterstall", data={"csrf": token})
            assert reset.status_code == 303
        assert nurse.get("/api/wards/avd-norr/overview").status_code == 401
    assert not _enrolled(db, "nurse.norr")
    assert db.execute(
        "SELECT username, context FROM access_log WHERE context LIKE 'staff:nurse.norr totp_reset'"
    ).fetchall() == [("admin", "staff:nurse.norr totp_reset")]
    with httpx.Client(base_url=site.url, timeout=10) as client:  # a plain password login again
        assert post_login(client, "nurse.norr", PASSWORD).status_code == 303
        assert client.get("/wards/avd-norr").status_code == 200


def test_hemma_staff_totp_reset(site: Site, db: psycopg.Connection) -> None:
    enrol(site, "nurse.new") if not _enrolled(db, "nurse.new") else None
    env = dict(os.environ, HEMMA_DATABASE_URL=site.db_url)
    done = subprocess.run([sys.executable, "-m", "hemma.cli", "staff", "totp-reset", "nurse.new"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0 and "two-factor removed" in done.stdout
    assert not _enrolled(db, "nurse.new")
    unknown = subprocess.run([sys.executable, "-m", "hemma.cli", "staff", "totp-reset", "nobody"], env=env,
                             capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr


def test_required_two_factor_enrols_at_login(site: Site, db: psycopg.Connection) -> None:
    required = site.settings.model_copy(update={"totp_required": True})
    db.execute(
        "DELETE FROM staff_totp WHERE staff_user_id = (SELECT id FROM staff_users WHERE username = 'admin')"
    )
    with running_dashboard(required) as url, httpx.Client(base_url=url, timeout=10) as client:
        answer = post_login(client, "admin", PASSWORD, next="/admin/staff")
        assert answer.headers["location"] == "/login/kod"
        page = client.get("/login/kod").text
        assert "Tvåstegsverifiering krävs" in page and 'class="totp-qr"' in page
        assert client.get("/admin/staff").headers["location"].startswith("/login")
        key = re.search(r'<code class="totp-secret">([A-Z2-7 ]+)</code>', page)
        assert key is not None
        landed = send_code(client, pyotp.TOTP(key[1].replace(" ", "")).now())
        assert landed.status_code == 303 and landed.headers["location"] == "/admin/staff"
        assert client.get("/admin/staff").status_code == 200
    assert _enrolled(db, "admin")


def _enrolled(db: psycopg.Connection, username: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM staff_totp t JOIN staff_users u ON u.id = t.staff_user_id"
        " WHERE u.username = %s AND t.confirmed_at IS NOT NULL",
        (username,),
    ).fetchone()
    return row is not None
