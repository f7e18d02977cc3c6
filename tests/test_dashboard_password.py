"""Staff change their own password on the dashboard (issue 8, finding 10): GET/POST /password."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from care.passwords import password_hasher
from core.settings import Settings
from tests.support.dashboard_server import csrf_token, logged_in, post_login, running_dashboard
from tests.support.ward_seed import PASSWORD, seed_two_wards

SECRET = "test-session-secret-password-0123456789"
NEW = "blå cykel under bron"


@pytest.fixture
def base_url(database_url: str, db: psycopg.Connection) -> Iterator[str]:
    seed_two_wards(db, [("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"])])
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield url


def change(
    client: httpx.Client, current: str, new: str, repeat: str | None = None, **extra: str
) -> httpx.Response:
    form = {"csrf": csrf_token(client, "/password"), "current": current, "new": new, "repeat": repeat or new}
    return client.post("/password", data=form | extra)


def stored_hash(db: psycopg.Connection) -> str:
    return str(
        db.execute("SELECT password_hash FROM staff_users WHERE username = 'nurse.norr'").fetchone()[0]
    )  # type: ignore[index]


def test_a_nurse_changes_her_password_and_her_other_sessions_end(
    base_url: str, db: psycopg.Connection
) -> None:
    with (
        logged_in(base_url, "nurse.norr", PASSWORD) as phone,
        logged_in(base_url, "nurse.norr", PASSWORD) as pc,
    ):
        assert '<a href="/password">Byt lösenord</a>' in pc.get("/wards/avd-norr").text  # in the header
        done = change(pc, PASSWORD, NEW)
        assert done.status_code == 303 and done.headers["location"] == "/password?bytt=1"
        shown = pc.get("/password?bytt=1")
        assert shown.status_code == 200 and "Lösenordet är bytt." in shown.text
        assert pc.get("/api/wards/avd-norr/overview").status_code == 200  # this browser stays logged in
        assert phone.get("/api/wards/avd-norr/overview").status_code == 401  # the phone does not
    assert password_hasher().verify(NEW, stored_hash(db))
    with httpx.Client(base_url=base_url) as client:
        assert post_login(client, "nurse.norr", PASSWORD).status_code == 401
        assert post_login(client, "nurse.norr", NEW).status_code == 303
    reasons = db.execute("SELECT revoked_reason FROM staff_sessions ORDER BY id").fetchall()
    assert reasons == [("password_changed",), ("password_changed",), (None,), (None,)]


@pytest.mark.parametrize(
    ("current", "new", "repeat", "status", "message"),
    [
        ("fel lösenord", NEW, NEW, 401, "Det nuvarande lösenordet stämmer inte."),
        (PASSWORD, NEW, NEW + "x", 422, "De två nya lösenorden är inte lika."),
        (PASSWORD, "aaaaaaaaaaaa", None, 422, "får inte vara en upprepning"),
        (PASSWORD, "kort", None, 422, "måste vara minst 12 tecken"),
        (PASSWORD, "Sjöström 1234 abc", None, 422, "får inte innehålla ditt användarnamn eller ditt namn"),
        (PASSWORD, "Sommar2024!!", None, 422, "för lätt att gissa"),
        (PASSWORD, PASSWORD, None, 422, "måste skilja sig från det nuvarande"),
    ],
)
def test_refusals_are_swedish_and_never_repeat_what_was_typed(
    base_url: str,
    db: psycopg.Connection,
    current: str,
    new: str,
    repeat: str | None,
    status: int,
    message: str,
) -> None:
    before = stored_hash(db)
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        refused = change(client, current, new, repeat)
        assert refused.status_code == status
        assert message in refused.text and 'role="alert"' in refused.text
        for typed in {current, new, repeat or new}:
            assert typed not in refused.text
        assert client.get("/api/wards/avd-norr/overview").status_code == 200  # still logged in
    assert stored_hash(db) == before


def test_the_form_needs_its_csrf_token_and_a_session(base_url: str, db: psycopg.Connection) -> None:
    before = stored_hash(db)
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        for token in ("", "forged"):
            refused = client.post(
                "/password", data={"csrf": token, "current": PASSWORD, "new": NEW, "repeat": NEW}
            )
            assert refused.status_code == 403 and "Formuläret hade gått ut." in refused.text
    anonymous = httpx.post(base_url + "/password", data={"current": PASSWORD, "new": NEW, "repeat": NEW})
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login?next=/password"
    assert stored_hash(db) == before


def test_guessing_the_current_password_is_braked_like_a_login(base_url: str, db: psycopg.Connection) -> None:
    with logged_in(base_url, "nurse.norr", PASSWORD) as stolen_session:
        statuses = [change(stolen_session, f"gissning {i}", NEW).status_code for i in range(5)]
        assert statuses == [401, 401, 401, 401, 429]
        locked = change(stolen_session, PASSWORD, NEW)
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 60
        assert re.search(r"Försök igen om \d+ min", locked.text)
    assert password_hasher().verify(PASSWORD, stored_hash(db))
