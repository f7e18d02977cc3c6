"""The admin's staff and rota pages (/admin/staff, /admin/rota, issue 11) through a running dashboard
and the real database: only admins, on every route and method; an account created on the page can
log in; disabling ends a live session at once; only physicians go on call; coverage gaps; the log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx
import psycopg
import pytest

from care.oncall import RotaShift, coverage_gaps
from care.staff import set_staff_contact
from core.settings import Settings
from tests.support.dashboard_server import csrf_token, logged_in, post_login, running_dashboard
from tests.support.ward_seed import PASSWORD, seed_two_wards

SECRET = "test-session-secret-admin-pages-0123456"
NEW_PASSWORD = "blå cykel under gamla bron"

ROUTES = [
    ("GET", "/admin/staff"),
    ("POST", "/admin/staff"),
    ("POST", "/admin/staff/nurse.norr/access"),
    ("POST", "/admin/staff/nurse.norr/disable"),
    ("POST", "/admin/staff/nurse.norr/enable"),
    ("POST", "/admin/staff/nurse.norr/password"),
    ("POST", "/admin/staff/nurse.norr/contact"),
    ("GET", "/admin/rota"),
    ("POST", "/admin/rota"),
    ("POST", "/admin/rota/1/remove"),
]


def words(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


@pytest.fixture
def site(database_url: str, db: psycopg.Connection) -> Iterator[str]:
    seed_two_wards(
        db,
        [
            ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
            ("dr.lund", "Erik Lund", "physician", ["avd-norr"]),
            ("admin", "Ada Admin", "admin", []),
        ],
    )
    set_staff_contact(db, username="dr.lund", email="erik.lund@example.se")
    set_staff_contact(db, username="nurse.norr", email="sara@example.se")
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield url


def _admin_log(db: psycopg.Connection) -> list[tuple[object, ...]]:
    return db.execute(
        "SELECT username, action, context, patient_id FROM access_log WHERE action LIKE 'manage_%'"
        " ORDER BY id"
    ).fetchall()


def test_nurses_and_physicians_are_refused_on_every_admin_route(site: str, db: psycopg.Connection) -> None:
    for username in ("nurse.norr", "dr.lund"):
        with logged_in(site, username, PASSWORD) as client:
            page = client.get("/wards/avd-norr")
            assert 'href="/admin/staff"' not in page.text  # no link in the header
            token = csrf_token(client, "/wards/avd-norr")
            for method, path in ROUTES:
                data = {"csrf": token, "username": "evil", "display_name": "Evil", "role": "admin",
                        "password": NEW_PASSWORD, "ward": "avd-norr", "level": "1"}  # fmt: skip
                response = client.request(method, path, data=data if method == "POST" else None)
                assert response.status_code == 403, (username, method, path, response.status_code)
                assert "Endast IT-administratörer" in words(response.text)
    assert db.execute("SELECT count(*) FROM staff_users WHERE username = 'evil'").fetchone() == (0,)
    assert _admin_log(db) == []


def test_an_admin_creates_a_nurse_who_logs_in_and_disabling_ends_her_session(
    site: str, db: psycopg.Connection
) -> None:
    with logged_in(site, "admin", PASSWORD) as admin:
        page = admin.get("/admin/staff")
        assert page.status_code == 200 and 'href="/admin/staff"' in page.text
        assert "argon2" not in page.text.lower() and "password_hash" not in page.text
        assert "Sara Sjöström nurse.norr Sjuksköterska Avdelning Norr Aktivt sara@example.se" in words(
            page.text
        )
        token = csrf_token(admin, "/admin/staff")
        created = admin.post("/admin/staff", data={
            "csrf": token, "username": "nina", "display_name": "Nina Nilsson", "role": "nurse",
            "password": NEW_PASSWORD, "wards": ["avd-norr", "avd-syd"],
        })  # fmt: skip
        assert created.status_code == 303, words(created.text)
        listed = words(admin.get("/admin/staff").text)
        assert "Nina Nilsson nina Sjuksköterska Avdelning Norr, Avdelning Syd Aktivt" in listed
        # The same username again is refused, the first account untouched.
        again = admin.post("/admin/staff", data={
            "csrf": token, "username": "nina", "display_name": "Någon Annan", "role": "admin",
            "password": NEW_PASSWORD,
        })  # fmt: skip
        assert again.status_code == 409 and "Användarnamnet är upptaget" in words(again.text)
        # A password under the policy is refused in Swedish.
        weak = admin.post("/admin/staff", data={
            "csrf": token, "username": "olle", "display_name": "Olle", "role": "nurse", "password": "kort",
        })  # fmt: skip
        assert weak.status_code == 422 and "minst 12 tecken" in words(weak.text)
        with logged_in(site, "nina", NEW_PASSWORD) as nina:
            assert nina.get("/wards/avd-syd").status_code == 200
            # Role and wards changed: avd-syd is gone on her next request.
            moved = admin.post("/admin/staff/nina/access", data={"csrf": token, "role": "nurse",
                                                               "wards": ["avd-norr"]})  # fmt: skip
            assert moved.status_code == 303
            assert nina.get("/wards/avd-syd").status_code == 403
            assert nina.get("/wards/avd-norr").status_code == 200
            disabled = admin.post("/admin/staff/nina/disable", data={"csrf": token})
            assert disabled.status_code == 303
            after = nina.get("/wards/avd-norr", follow_redirects=False)
            assert after.status_code == 303 and after.headers["location"].startswith("/login")
        assert db.execute(
            "SELECT revoked_reason FROM staff_sessions s JOIN staff_users u ON u.id = s.staff_user_id"
            " WHERE u.username = 'nina'"
        ).fetchall() == [("disabled",)]
        with httpx.Client(base_url=site) as fresh:
            assert post_login(fresh, "nina", NEW_PASSWORD).status_code == 403
        # Enabled, with a temporary password: she logs in with the new one.
        assert admin.post("/admin/staff/nina/enable", data={"csrf": token}).status_code == 303
        temporary = "röd traktor över isen igen"
        assert (
            admin.post("/admin/staff/nina/password", data={"csrf": token, "password": temporary}).status_code
            == 303
        )
        with logged_in(site, "nina", temporary):
            pass
        # The admin may not disable or demote herself.
        own = admin.post("/admin/staff/admin/disable", data={"csrf": token})
        assert own.status_code == 409 and "ditt eget konto" in words(own.text)
        assert (
            admin.post("/admin/staff/admin/access", data={"csrf": token, "role": "nurse"}).status_code == 409
        )
        # Hostile input: 4xx in Swedish, never a 500, never echoed.
        for path, data in (
            ("/admin/staff", {"csrf": token, "username": "x\x00y", "display_name": "A", "role": "nurse",
                              "password": NEW_PASSWORD}),
            ("/admin/staff", {"csrf": token, "username": "kalle", "display_name": "Kalle", "role": "king",
                              "password": NEW_PASSWORD}),
            ("/admin/staff", {"csrf": token, "username": "kalle", "display_name": " ", "role": "nurse",
                              "password": NEW_PASSWORD}),
            ("/admin/staff", {"csrf": token, "username": "kalle", "display_name": "Kalle", "role": "nurse",
                              "password": NEW_PASSWORD, "wards": ["<script>x</script>"]}),
            ("/admin/staff/nina/contact", {"csrf": token, "email": "inte en adress"}),
            ("/admin/staff/nina/contact", {"csrf": token}),
            ("/admin/staff/ingen-alls/disable", {"csrf": token}),
            ("/admin/staff/%00/disable", {"csrf": token}),
            ("/admin/staff/nina/disable", {"csrf": "forged"}),
        ):  # fmt: skip
            response = admin.post(path, data=data)
            assert 400 <= response.status_code < 500, (path, data, response.status_code)
            assert "<script>x" not in response.text
    assert db.execute("SELECT count(*) FROM staff_users WHERE username = 'kalle'").fetchone() == (0,)
    log = _admin_log(db)
    assert [(r[0], r[2]) for r in log] == [
        ("admin", "staff:nina save role:nurse"),
        ("admin", "staff:nina access role:nurse wards:avd-norr"),
        ("admin", "staff:nina disable"),
        ("admin", "staff:nina enable"),
        ("admin", "staff:nina password"),
    ]
    assert {r[1] for r in log} == {"manage_staff"} and {r[3] for r in log} == {None}


def test_the_rota_page_adds_and_removes_shifts_for_physicians_only_and_shows_gaps(
    site: str, db: psycopg.Connection
) -> None:
    with logged_in(site, "admin", PASSWORD) as admin:
        page = admin.get("/admin/rota", params={"avdelning": "avd-norr"})
        assert page.status_code == 200
        text = words(page.text)
        assert (
            "Jourläkare Ingen jour" in text and "Bakjour Ingen jour" in text and "Medicinskt ansvarig" in text
        )
        token = csrf_token(admin, "/admin/rota")
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).astimezone(admin_zone()).date()
        shift = {"csrf": token, "ward": "avd-norr", "level": "1", "username": "dr.lund",
                 "starts_at": f"{tomorrow}T07:00", "ends_at": f"{tomorrow}T15:00"}  # fmt: skip
        assert admin.post("/admin/rota", data=shift).status_code == 303
        row = db.execute("SELECT id, starts_at, ends_at FROM oncall_shifts").fetchone()
        assert row is not None
        assert row[1].astimezone(admin_zone()).hour == 7 and row[2] - row[1] == timedelta(hours=8)
        text = words(admin.get("/admin/rota", params={"avdelning": "avd-norr"}).text)
        assert f"Erik Lund {tomorrow} 07:00–15:00 Ta bort" in text
        # The jourläkare's gaps: until tomorrow 07:00, and from 15:00 on.
        assert f"–{tomorrow} 07:00" in text and f"Ingen jour {tomorrow} 15:00–" in text
        # A nurse cannot go on call, even by a crafted form; an unknown level or a bad time is refused.
        refused = admin.post("/admin/rota", data={**shift, "username": "nurse.norr"})
        assert refused.status_code == 403 and "Endast läkare kan ha jour" in words(refused.text)
        hostile = (
            {"level": "7"}, {"starts_at": "imorgon"}, {"ends_at": f"{tomorrow}T06:00"}, {"ward": "no-such"},
            {"starts_at": "0001-01-01T00:00"}, {"username": "\x00"},
        )  # fmt: skip
        for bad in hostile:
            response = admin.post("/admin/rota", data={**shift, **bad})
            assert 400 <= response.status_code < 500, (bad, response.status_code)
        assert db.execute("SELECT count(*) FROM oncall_shifts").fetchone() == (1,)
        assert admin.post(f"/admin/rota/{row[0]}/remove", data={"csrf": token}).status_code == 303
        assert admin.post(f"/admin/rota/{row[0]}/remove", data={"csrf": token}).status_code == 404
        assert admin.post("/admin/rota/99999999999999999999/remove", data={"csrf": token}).status_code == 404
        assert admin.get("/admin/rota", params={"avdelning": "x\x00"}).status_code == 404
    assert db.execute("SELECT count(*) FROM oncall_shifts").fetchone() == (0,)
    assert [r[2].split(" ")[1] for r in _admin_log(db)] == ["add", "remove"]


def admin_zone():  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo(Settings().site_timezone)


def _shift(level: int, start: str, end: str) -> RotaShift:
    return RotaShift(1, level, "dr", "Dr", datetime.fromisoformat(start), datetime.fromisoformat(end))


def test_coverage_gaps() -> None:
    since, until = (
        datetime.fromisoformat("2026-12-08T00:00+00:00"),
        datetime.fromisoformat("2026-12-09T00:00+00:00"),
    )
    shifts = [
        _shift(1, "2026-12-07T20:00+00:00", "2026-12-08T02:00+00:00"),  # began before the window
        _shift(1, "2026-12-08T07:00+00:00", "2026-12-08T12:00+00:00"),
        _shift(1, "2026-12-08T11:00+00:00", "2026-12-08T16:00+00:00"),  # overlaps the one before
        _shift(1, "2026-12-08T16:00+00:00", "2026-12-08T20:00+00:00"),  # adjoins
        _shift(2, "2026-12-08T00:00+00:00", "2026-12-09T00:00+00:00"),  # another level covers nothing
        _shift(1, "2026-12-09T06:00+00:00", "2026-12-09T08:00+00:00"),  # after the window
    ]
    at = datetime.fromisoformat
    assert coverage_gaps(shifts, 1, since, until) == [
        (at("2026-12-08T02:00+00:00"), at("2026-12-08T07:00+00:00")),
        (at("2026-12-08T20:00+00:00"), at("2026-12-09T00:00+00:00")),
    ]
    assert coverage_gaps(shifts, 2, since, until) == []
    assert coverage_gaps(shifts, 3, since, until) == [(since, until)]
