"""Staff login with OpenID Connect (issue 12) against a real local provider (oidc-provider-mock, in a
thread) through a running dashboard, with an HTTP client following the browser's redirects: the
HSA-id claim chooses the account and lands in the access log; unknown, disabled and missing HSA-ids
are refused in Swedish; a tampered state, a replayed code, another nonce and a code issued to
another client log nobody in; the brake; and no OIDC settings, no button and 404."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from core.settings import Settings
from devservices.services import free_port
from tests.support.dashboard_server import running_dashboard
from tests.support.oidc_provider import authorize, running_oidc_provider, set_user
from tests.support.ward_seed import seed_two_wards

# The provider (in a thread of this process, so under these tests' warning filters) runs on
# Authlib APIs that Authlib now calls deprecated; Hemma's own use of Authlib raises none of them.
pytestmark = [
    pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::authlib.deprecate.AuthlibDeprecationWarning"),
]

SECRET = "test-session-secret-oidc-login-012345678"
SARA_HSA = "SE2321000016-1003"
DISABLED_HSA = "SE2321000016-1004"


@dataclass
class Site:
    url: str  # the dashboard
    issuer: str  # the OIDC provider
    db_url: str
    sara_id: int
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
            *_, ids = seed_two_wards(db, [("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
                                          ("nurse.gone", "Gun Gammal", "nurse", ["avd-norr"])])  # fmt: skip
            db.execute("UPDATE staff_users SET hsa_id = %s WHERE username = 'nurse.norr'", (SARA_HSA,))
            db.execute("UPDATE staff_users SET hsa_id = %s, disabled = true WHERE username = 'nurse.gone'",
                       (DISABLED_HSA,))  # fmt: skip
        with running_oidc_provider() as issuer:
            settings = Settings(
                database_url=db_url, session_secret=SECRET, oidc_issuer=issuer, oidc_client_id="hemma",
                oidc_client_secret="hemma-client-secret",
            )  # fmt: skip
            set_user(issuer, "sara", {"employeeHsaId": SARA_HSA, "name": "Sara Sjöström"})
            set_user(issuer, "okand", {"employeeHsaId": "SE2321000016-9999"})
            set_user(issuer, "gun", {"employeeHsaId": DISABLED_HSA})
            set_user(issuer, "utan-hsa", {"name": "Ingen HSA"})
            with running_dashboard(settings) as url:
                yield Site(url, issuer, db_url, ids[0], settings)
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(site: Site) -> Iterator[psycopg.Connection]:
    with psycopg.connect(site.db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM login_brakes")  # each test meets the brake afresh
        yield conn


def browser(site: Site) -> httpx.Client:
    return httpx.Client(base_url=site.url, timeout=15)


def to_provider(client: httpx.Client, next_path: str = "/") -> str:
    """Click the SITHS button: Hemma's redirect to the provider's authorization endpoint."""
    start = client.get("/login/oidc", params={"next": next_path})
    assert start.status_code == 302, start.text
    return start.headers["location"]


def with_param(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def oidc_login(site: Site, client: httpx.Client, sub: str, next_path: str = "/") -> httpx.Response:
    """The whole dance: Hemma → provider → (the person logs in) → Hemma's callback; its answer."""
    back = authorize(client, to_provider(client, next_path), sub)
    assert back.status_code == 302, back.text
    return client.get(back.headers["location"])


def live_sessions(db: psycopg.Connection) -> list[tuple[int, str]]:
    return db.execute(
        "SELECT staff_user_id, method FROM staff_sessions WHERE revoked_at IS NULL ORDER BY id"
    ).fetchall()


def test_the_login_page_offers_the_siths_button(site: Site, db: psycopg.Connection) -> None:
    page = browser(site).get("/login?next=/wards/avd-norr").text
    assert 'href="/login/oidc?next=/wards/avd-norr"' in page or "/login/oidc?next=%2Fwards%2Favd-norr" in page
    assert "Logga in med SITHS-kort" in page


def test_a_nurse_logs_in_with_her_hsa_id_and_her_reads_carry_it_in_the_log(
    site: Site, db: psycopg.Connection
) -> None:
    before = db.execute("SELECT coalesce(max(id), 0) FROM access_log").fetchone()[0]
    with browser(site) as client:
        authorization_url = to_provider(client, "/wards/avd-norr")
        asked = dict(parse_qsl(urlsplit(authorization_url).query))
        assert asked["response_type"] == "code" and asked["client_id"] == "hemma"
        assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) >= 43
        assert asked["state"] and asked["nonce"] and "employeeHsaId" in asked["claims"]
        back = authorize(client, authorization_url, "sara")
        landed = client.get(back.headers["location"])
        assert landed.status_code == 303 and landed.headers["location"] == "/wards/avd-norr"
        ward = client.get("/wards/avd-norr")
        assert ward.status_code == 200 and "Anna Andersson" in ward.text and "Sara Sjöström" in ward.text
    assert (site.sara_id, "oidc") in live_sessions(db)
    rows = db.execute(
        "SELECT username, staff_user_id, hsa_id, care_provider_id FROM access_log WHERE id > %s", (before,)
    ).fetchall()
    assert len(rows) == 2  # Anna and Bertil on the ward overview, one row each
    assert set(rows) == {("nurse.norr", site.sara_id, SARA_HSA, "region")}


@pytest.mark.parametrize(
    ("sub", "status", "words"),
    [
        ("okand", 403, "inte kopplat till något konto"),
        ("gun", 403, "inaktiverat"),
        ("utan-hsa", 401, "inget HSA-id"),
    ],
)
def test_an_hsa_id_without_an_enabled_account_is_refused_and_no_account_is_made(
    site: Site, db: psycopg.Connection, sub: str, status: int, words: str
) -> None:
    accounts = db.execute("SELECT count(*) FROM staff_users").fetchone()
    sessions = db.execute("SELECT count(*) FROM staff_sessions").fetchone()
    with browser(site) as client:
        answer = oidc_login(site, client, sub)
        assert answer.status_code == status
        assert words in answer.text and "Du kunde inte loggas in" in answer.text
        assert client.get("/wards/avd-norr").headers["location"].startswith("/login")
    assert db.execute("SELECT count(*) FROM staff_users").fetchone() == accounts
    assert db.execute("SELECT count(*) FROM staff_sessions").fetchone() == sessions


def test_a_tampered_state_exchanges_no_code(site: Site, db: psycopg.Connection) -> None:
    sessions = db.execute("SELECT count(*) FROM staff_sessions").fetchone()
    with browser(site) as client:
        back = authorize(client, to_provider(client), "sara").headers["location"]
        forged = client.get(with_param(back, state="forged-state-value"))
        assert forged.status_code == 400 and "kunde inte slutföras" in forged.text
        no_state = client.get(with_param(back, state=""))
        assert no_state.status_code == 400
    # The real callback carried to another browser (a login CSRF: the victim's browser made no state).
    with browser(site) as victim:
        assert victim.get(back).status_code == 400
    assert db.execute("SELECT count(*) FROM staff_sessions").fetchone() == sessions


def test_a_replayed_code_logs_nobody_in_a_second_time(site: Site, db: psycopg.Connection) -> None:
    with browser(site) as client:
        back = authorize(client, to_provider(client), "sara").headers["location"]
        assert client.get(back).status_code == 303
        count = db.execute("SELECT count(*) FROM staff_sessions").fetchone()
        assert client.get(back).status_code == 400  # the state was used up with the code
    with browser(site) as thief:
        assert thief.get(back).status_code == 400
    assert db.execute("SELECT count(*) FROM staff_sessions").fetchone() == count


def test_an_id_token_for_another_nonce_is_refused(site: Site, db: psycopg.Connection) -> None:
    """The provider is asked (by an attacker in the middle) with a nonce of their own: the ID token
    then carries it, and Hemma, which remembers its own, refuses the token."""
    sessions = db.execute("SELECT count(*) FROM staff_sessions").fetchone()
    with browser(site) as client:
        authorization_url = with_param(to_provider(client), nonce="the-attackers-own-nonce")
        back = authorize(client, authorization_url, "sara")
        answer = client.get(back.headers["location"])
        assert answer.status_code == 400 and "kunde inte slutföras" in answer.text
    assert db.execute("SELECT count(*) FROM staff_sessions").fetchone() == sessions


def test_a_code_issued_to_another_client_is_refused(site: Site, db: psycopg.Connection) -> None:
    """As far as the mock lets the audience be tested: a code (and its ID token) meant for another
    client id is not accepted by Hemma's token exchange. (The ID token's `aud`, `iss` and `exp` are
    checked by Authlib's CodeIDToken, which Hemma calls with its client id and the issuer.)"""
    sessions = db.execute("SELECT count(*) FROM staff_sessions").fetchone()
    with browser(site) as client:
        authorization_url = with_param(to_provider(client), client_id="another-system")
        back = authorize(client, authorization_url, "sara")
        answer = client.get(back.headers["location"])
        assert answer.status_code == 400
    assert db.execute("SELECT count(*) FROM staff_sessions").fetchone() == sessions


def test_cancelling_at_the_provider_is_a_swedish_refusal(site: Site, db: psycopg.Connection) -> None:
    with browser(site) as client:
        denied = client.post(to_provider(client), data={"action": "deny"}, follow_redirects=False)
        answer = client.get(denied.headers["location"])
        assert answer.status_code == 400 and "Börja om från inloggningssidan" in answer.text


def test_a_burst_of_failed_callbacks_is_braked(site: Site, db: psycopg.Connection) -> None:
    limit = site.settings.login_account_max_failures
    sessions = db.execute("SELECT count(*) FROM staff_sessions").fetchone()
    with browser(site) as client:
        back = authorize(client, to_provider(client), "sara").headers["location"]
        forged = with_param(back, state="nope")
        answers = [client.get(forged).status_code for _ in range(limit)]
        assert answers == [400] * limit
        braked = client.get(back)  # even the real callback now waits
        assert braked.status_code == 429 and "Försök igen om" in braked.text
        assert int(braked.headers["Retry-After"]) > 0
    assert db.execute("SELECT count(*) FROM staff_sessions").fetchone() == sessions


def test_without_oidc_settings_there_is_no_button_and_the_routes_are_404(
    site: Site, db: psycopg.Connection
) -> None:
    plain = Settings(database_url=site.db_url, session_secret=SECRET)
    with running_dashboard(plain) as url, httpx.Client(base_url=url, timeout=10) as client:
        assert "SITHS" not in client.get("/login").text
        for path in ("/login/oidc", "/login/oidc/callback?code=x&state=y"):
            answer = client.get(path)
            assert answer.status_code == 404 and "finns inte" in answer.text.lower()


def test_an_unreachable_provider_is_a_swedish_502(site: Site, db: psycopg.Connection) -> None:
    gone = f"http://localhost:{free_port()}"
    down = Settings(database_url=site.db_url, session_secret=SECRET, oidc_issuer=gone, oidc_client_id="hemma")
    with running_dashboard(down) as url, httpx.Client(base_url=url, timeout=15) as client:
        answer = client.get("/login/oidc")
        assert answer.status_code == 502 and "Inloggningstjänsten svarar inte" in answer.text
