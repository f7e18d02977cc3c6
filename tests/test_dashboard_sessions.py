"""Server-side sessions (issue 8, finding 3): logging out, disabling an account and changing a
password end sessions for good, in every dashboard process, websockets included."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest
from itsdangerous import TimestampSigner
from websockets.exceptions import ConnectionClosed

from care.enrolment import EnrolledPatient
from care.staff import set_staff_disabled
from core.settings import Settings
from dashboard.app import SESSION_COOKIE
from tests.support.dashboard_server import csrf_token, logged_in, running_dashboard, ward_socket
from tests.support.ward_seed import PASSWORD, add_alert, seed_two_wards

SECRET = "test-session-secret-sessions-0123456789"


@dataclass
class Seed:
    anna: EnrolledPatient
    nurse_id: int


@pytest.fixture
def seed(db: psycopg.Connection) -> Seed:
    anna, _, _, staff = seed_two_wards(db, [("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"])])
    return Seed(anna, staff[0])


@pytest.fixture
def base_url(database_url: str, seed: Seed) -> Iterator[str]:
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield url


def replay(base_url: str, cookie: str) -> httpx.Client:
    """A new client holding nothing but a copy of a session cookie, as a thief would."""
    return httpx.Client(base_url=base_url, timeout=10, cookies={SESSION_COOKIE: cookie})


def sessions(db: psycopg.Connection) -> list[tuple[int, str | None]]:
    return db.execute("SELECT staff_user_id, revoked_reason FROM staff_sessions ORDER BY id").fetchall()


def test_a_cookie_replayed_after_logout_reads_and_changes_nothing(
    base_url: str, db: psycopg.Connection, seed: Seed
) -> None:
    alert_id = add_alert(db, seed.anna)
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        token = csrf_token(client, "/wards/avd-norr")
        stolen = client.cookies[SESSION_COOKIE]
        assert client.post("/logout", data={"csrf": token}).status_code == 303
    with replay(base_url, stolen) as thief:
        assert thief.get("/api/wards/avd-norr/overview").status_code == 401
        page = thief.get("/wards/avd-norr")
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        ack = thief.post(f"/api/alerts/{alert_id}/acknowledge", json={}, headers={"X-CSRF-Token": token})
        assert ack.status_code == 401
    assert db.execute("SELECT state FROM alerts WHERE id = %s", (alert_id,)).fetchone() == ("open",)
    assert db.execute("SELECT count(*) FROM access_log").fetchone() == (2,)  # the overview, before logout
    assert sessions(db) == [(seed.nurse_id, "logout")]


def test_the_cookie_carries_only_a_random_id_so_a_known_secret_mints_no_session(
    base_url: str, db: psycopg.Connection, seed: Seed
) -> None:
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        cookie = client.cookies[SESSION_COOKIE]
    payload = json.loads(base64.b64decode(cookie.split(".")[0] + "=="))
    assert list(payload) == ["sid"] and len(payload["sid"]) >= 43  # 256 random bits
    stored = db.execute("SELECT token_sha256 FROM staff_sessions").fetchone()[0]  # type: ignore[index]
    assert stored == hashlib.sha256(payload["sid"].encode()).digest()  # the id itself is not stored
    # Someone who learned HEMMA_SESSION_SECRET signs what the cookie used to hold: the staff id.
    forged = {"staff_id": seed.nurse_id, "username": "nurse.norr", "login_at": int(time.time()), "csrf": "x"}
    for claims in (forged, {"sid": "guessed-session-id"}):
        data = base64.b64encode(json.dumps(claims).encode())
        signed = TimestampSigner(SECRET).sign(data).decode()
        with replay(base_url, signed) as forger:
            assert forger.get("/api/wards/avd-norr/overview").status_code == 401


def test_disabling_an_account_ends_its_sessions_and_enabling_it_does_not_revive_them(
    base_url: str, db: psycopg.Connection, seed: Seed
) -> None:
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        cookie = client.cookies[SESSION_COOKIE]
        set_staff_disabled(db, username="nurse.norr", disabled=True)
        set_staff_disabled(db, username="nurse.norr", disabled=False)
    with replay(base_url, cookie) as old:
        assert old.get("/api/wards/avd-norr/overview").status_code == 401
    assert sessions(db) == [(seed.nurse_id, "disabled")]
    with logged_in(base_url, "nurse.norr", PASSWORD) as again:  # a new login works as usual
        assert again.get("/api/wards/avd-norr/overview").status_code == 200


def test_a_new_password_from_the_command_line_ends_every_session(
    base_url: str, db: psycopg.Connection, seed: Seed
) -> None:
    from care.staff import set_staff_password

    with (
        logged_in(base_url, "nurse.norr", PASSWORD) as phone,
        logged_in(base_url, "nurse.norr", PASSWORD) as pc,
    ):
        set_staff_password(db, username="nurse.norr", password="ny vår på gamla gatan")
        assert phone.get("/api/wards/avd-norr/overview").status_code == 401
        assert pc.get("/api/wards/avd-norr/overview").status_code == 401
    assert sessions(db) == [(seed.nurse_id, "password_changed")] * 2


def test_logging_out_closes_the_live_websocket_of_that_session(base_url: str, seed: Seed) -> None:
    with (
        logged_in(base_url, "nurse.norr", PASSWORD) as client,
        ward_socket(client, base_url, "avd-norr") as ws,
    ):
        first = json.loads(ws.recv(timeout=5))
        assert first["type"] == "snapshot"
        token = csrf_token(client, "/")
        started = time.monotonic()
        assert client.post("/logout", data={"csrf": token}).status_code == 303
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # skip anything already queued; the close must come within a few seconds
                ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        assert time.monotonic() - started < 5
