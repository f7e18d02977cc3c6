"""Forged logins, cross-site requests and probing for other wards' alerts (issue 8, findings 11 and 12)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from care.enrolment import EnrolledPatient
from core.settings import Settings
from dashboard.same_origin import REFUSED_MESSAGE
from tests.support.dashboard_server import csrf_token, logged_in, login_token, running_dashboard
from tests.support.ward_seed import PASSWORD, add_alert, seed_two_wards

SECRET = "test-session-secret-cross-site-0123456789"
REFUSED = "Förfrågan kom inte från Hemmas egna sidor och nekades."
assert REFUSED_MESSAGE.startswith(REFUSED)


@dataclass
class Seed:
    anna: EnrolledPatient  # avd-norr
    cecilia: EnrolledPatient  # avd-syd


@pytest.fixture
def seed(db: psycopg.Connection) -> Seed:
    anna, _, cecilia, _ = seed_two_wards(db, [("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"])])
    return Seed(anna, cecilia)


@pytest.fixture
def base_url(database_url: str, seed: Seed) -> Iterator[str]:
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield url


def state(db: psycopg.Connection, alert_id: int) -> str:
    return str(db.execute("SELECT state FROM alerts WHERE id = %s", (alert_id,)).fetchone()[0])  # type: ignore[index]


# --- finding 12: login CSRF and Origin ---------------------------------------------------------------


def test_a_login_without_this_browsers_form_token_is_refused(base_url: str) -> None:
    credentials = {"username": "nurse.norr", "password": PASSWORD}
    with httpx.Client(base_url=base_url) as attacker, httpx.Client(base_url=base_url) as victim:
        # A form on another site posts straight to /login (login CSRF): no token at all ...
        bare = victim.post("/login", data=credentials)
        # ... or a token the attacker fetched with a cookie of their own.
        foreign = victim.post("/login", data=credentials | {"csrf": login_token(attacker)})
        for refused in (bare, foreign):
            assert refused.status_code == 403
            assert "Inloggningen kunde inte kontrolleras. Försök igen" in refused.text
            assert PASSWORD not in refused.text
        # The page it answers with carries a fresh token, so the nurse's next try works.
        assert victim.get("/api/wards/avd-norr/overview").status_code == 401
        assert victim.post("/login", data=credentials | {"csrf": login_token(victim)}).status_code == 303


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/login-trap"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://sub.evil.example"},
    ],
)
def test_a_login_posted_from_another_origin_is_refused(base_url: str, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=base_url) as client:
        data = {"username": "nurse.norr", "password": PASSWORD, "csrf": login_token(client)}
        refused = client.post("/login", data=data, headers=headers)
        assert refused.status_code == 403 and REFUSED in refused.text
        assert client.get("/api/wards/avd-norr/overview").status_code == 401


def test_our_own_origin_passes(base_url: str) -> None:
    own = {"Origin": base_url, "Referer": base_url + "/login", "Sec-Fetch-Site": "same-origin"}
    with httpx.Client(base_url=base_url) as client:
        data = {"username": "nurse.norr", "password": PASSWORD, "csrf": login_token(client)}
        assert client.post("/login", data=data, headers=own).status_code == 303


def test_every_state_changing_request_from_another_origin_is_refused(
    base_url: str, db: psycopg.Connection, seed: Seed
) -> None:
    alert_id = add_alert(db, seed.anna)
    evil = {"Origin": "http://evil.example"}
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        token = csrf_token(client, "/wards/avd-norr")
        ack = client.post(
            f"/api/alerts/{alert_id}/acknowledge", json={}, headers=evil | {"X-CSRF-Token": token}
        )
        assert ack.status_code == 403 and ack.json() == {
            "detail": REFUSED + " Öppna sidan igen och försök på nytt."
        }
        logout = client.post("/logout", data={"csrf": token}, headers=evil)
        assert logout.status_code == 403 and REFUSED in logout.text
        password = client.post(
            "/password", data={"csrf": token, "current": PASSWORD, "new": "x", "repeat": "x"}, headers=evil
        )
        assert password.status_code == 403
        assert client.get("/api/wards/avd-norr/overview").status_code == 200  # still logged in
        own = client.post(
            f"/api/alerts/{alert_id}/acknowledge",
            json={},
            headers={"Origin": base_url, "X-CSRF-Token": token},
        )
        assert own.status_code == 200
    assert state(db, alert_id) == "acknowledged"


# --- finding 11: another ward's alerts answer as if they did not exist ----------------------------


def test_an_alert_of_another_ward_answers_exactly_like_a_missing_one(
    base_url: str, db: psycopg.Connection, seed: Seed
) -> None:
    foreign = add_alert(db, seed.cecilia, message="SpO₂ 84 %")
    own = add_alert(db, seed.anna)
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        token = csrf_token(client, "/wards/avd-norr")
        link, missing = client.get(f"/alerts/{foreign}"), client.get("/alerts/999999")
        assert link.status_code == missing.status_code == 404
        assert link.text == missing.text and "Larmet finns inte." in link.text
        for path, body in (("acknowledge", {}), ("snooze", {"minutes": 15}), ("resolve", {"note": "Klart"})):
            tried = client.post(f"/api/alerts/{foreign}/{path}", json=body, headers={"X-CSRF-Token": token})
            never = client.post(f"/api/alerts/999999/{path}", json=body, headers={"X-CSRF-Token": token})
            assert (
                (tried.status_code, tried.json()) == (never.status_code, never.json()) == (404, never.json())
            )
        # Odd numbers are the same "no such alert", never a 500 or a validation list.
        for odd in ("abc", "0", "-1", "99999999999999999999", "9" * 5000):
            assert client.get(f"/alerts/{odd}").text == missing.text
        # The phone view's Kvittera form: another ward's alert is as missing as a number never used.
        tried = client.post(f"/alerts/{foreign}/kvittera", data={"csrf": token, "note": "x"})
        never = client.post("/alerts/999999/kvittera", data={"csrf": token, "note": "x"})
        assert (tried.status_code, tried.text) == (never.status_code, never.text)
        assert tried.status_code == 404 and "Larmet finns inte." in tried.text
        hop = client.get(f"/alerts/{own}")
        assert hop.status_code == 200 and f'href="/patients/{seed.anna.patient_id}"' in hop.text
    assert state(db, foreign) == "open"
    assert db.execute(
        "SELECT count(*) FROM access_log WHERE patient_id = %s", (seed.cecilia.patient_id,)
    ).fetchone() == (0,)
