"""Revocable sessions, visible (issue 12, care.staff_sessions): the admin's staff page and staff's own
/account list each live session (started, last seen, address, method) with "Logga ut" and "Logga ut
överallt"; `hemma staff sessions` / `logout`. Ending takes effect at once: the cookie is dead on its
next request and the session's live websocket closes within a few seconds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from core.settings import Settings
from tests.support.dashboard_server import csrf_token, logged_in, running_dashboard, ward_socket
from tests.support.ward_seed import PASSWORD, seed_two_wards

SECRET = "test-session-secret-session-lists-01234"


@dataclass
class Site:
    url: str
    db_url: str


@pytest.fixture(scope="module")
def site(postgres_admin_url: str, template_database: str) -> Iterator[Site]:
    from tests.conftest import _with_dbname

    name = f"hemma_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    db_url = _with_dbname(postgres_admin_url, name)
    try:
        with psycopg.connect(db_url, autocommit=True) as db:
            seed_two_wards(db, [("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
                                ("dr.lund", "Erik Lund", "physician", ["avd-norr"]),
                                ("admin", "Ada Admin", "admin", [])])  # fmt: skip
        with running_dashboard(Settings(database_url=db_url, session_secret=SECRET)) as url:
            yield Site(url, db_url)
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(site: Site) -> Iterator[psycopg.Connection]:
    with psycopg.connect(site.db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM login_brakes")
        # Each test starts with nobody logged in.
        conn.execute("UPDATE staff_sessions SET revoked_at = now(), revoked_reason = 'operator'"
                     " WHERE revoked_at IS NULL")  # fmt: skip
        yield conn


def session_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-session-id="(\d+)"', html)]


def live_ids(db: psycopg.Connection, username: str) -> list[int]:
    rows = db.execute(
        "SELECT s.id FROM staff_sessions s JOIN staff_users u ON u.id = s.staff_user_id"
        " WHERE u.username = %s AND s.revoked_at IS NULL ORDER BY s.id",
        (username,),
    ).fetchall()
    return [r[0] for r in rows]


def closes_soon(ws: ClientConnection) -> float:
    """Seconds until the server closes the websocket with 4401 (anything queued before is skipped)."""
    started = time.monotonic()
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    return time.monotonic() - started


def test_the_admin_sees_each_session_and_ends_one_at_once_websocket_included(
    site: Site, db: psycopg.Connection
) -> None:
    with (
        logged_in(site.url, "nurse.norr", PASSWORD) as phone,
        logged_in(site.url, "nurse.norr", PASSWORD) as pc,
        logged_in(site.url, "admin", PASSWORD) as admin,
        ward_socket(phone, site.url, "avd-norr") as phone_ws,
    ):
        assert json.loads(phone_ws.recv(timeout=5))["type"] == "snapshot"
        phone_id, pc_id = live_ids(db, "nurse.norr")
        page = admin.get("/admin/staff").text
        assert {phone_id, pc_id} <= set(session_ids(page))
        row = page[page.index(f'data-session-id="{phone_id}"') :].split("</tr>")[0]
        assert "127.0.0.1" in row and "Lösenord" in row and "Logga ut" in row
        assert "(2 aktiva)" in page
        token = csrf_token(admin, "/admin/staff")
        ended = admin.post(f"/admin/staff/nurse.norr/sessioner/{phone_id}/logga-ut", data={"csrf": token})
        assert ended.status_code == 303
        assert phone.get("/api/wards/avd-norr/overview").status_code == 401  # dead at once
        assert closes_soon(phone_ws) < 5
        assert pc.get("/api/wards/avd-norr/overview").status_code == 200  # the other one lives on
        # A session id of another account ends nothing.
        admin.post(f"/admin/staff/dr.lund/sessioner/{pc_id}/logga-ut", data={"csrf": token})
        assert pc.get("/api/wards/avd-norr/overview").status_code == 200
    assert db.execute("SELECT revoked_reason FROM staff_sessions WHERE id = %s", (phone_id,)).fetchone() == (
        "admin",
    )
    logged = db.execute(
        "SELECT username, context FROM access_log WHERE context LIKE 'staff:nurse.norr logout%%'"
    ).fetchall()
    assert logged == [("admin", f"staff:nurse.norr logout session:{phone_id} ended:1")]


def test_logga_ut_overallt_by_the_admin_ends_every_session_of_the_account(
    site: Site, db: psycopg.Connection
) -> None:
    with (
        logged_in(site.url, "dr.lund", PASSWORD) as one,
        logged_in(site.url, "dr.lund", PASSWORD) as two,
        logged_in(site.url, "nurse.norr", PASSWORD) as other,
        logged_in(site.url, "admin", PASSWORD) as admin,
        ward_socket(two, site.url, "avd-norr") as ws,
    ):
        assert json.loads(ws.recv(timeout=5))["type"] == "snapshot"
        token = csrf_token(admin, "/admin/staff")
        assert (
            admin.post("/admin/staff/dr.lund/sessioner/logga-ut-overallt", data={"csrf": token}).status_code
            == 303
        )
        assert one.get("/api/wards/avd-norr/overview").status_code == 401
        assert two.get("/api/wards/avd-norr/overview").status_code == 401
        assert closes_soon(ws) < 5
        assert other.get("/api/wards/avd-norr/overview").status_code == 200
    assert live_ids(db, "dr.lund") == []


def test_only_an_admin_may_end_someone_elses_sessions(site: Site, db: psycopg.Connection) -> None:
    with (
        logged_in(site.url, "nurse.norr", PASSWORD) as nurse,
        logged_in(site.url, "dr.lund", PASSWORD) as doctor,
    ):
        token = csrf_token(nurse, "/account")
        doctor_id = live_ids(db, "dr.lund")[0]
        admin_forms = (
            f"/admin/staff/dr.lund/sessioner/{doctor_id}/logga-ut",
            "/admin/staff/dr.lund/sessioner/logga-ut-overallt",
            "/admin/staff/dr.lund/tvasteg/aterstall",
        )
        for path in admin_forms:
            assert nurse.post(path, data={"csrf": token}).status_code == 403
        # /account ends only the holder's own: another account's session id there ends nothing.
        nurse.post(f"/account/sessioner/{doctor_id}/logga-ut", data={"csrf": token})
        assert doctor.get("/api/wards/avd-norr/overview").status_code == 200
        assert nurse.post("/account/sessioner/logga-ut-overallt", data={"csrf": "wrong"}).status_code == 403
        assert nurse.get("/api/wards/avd-norr/overview").status_code == 200


def test_staff_see_and_end_their_own_sessions_on_account(site: Site, db: psycopg.Connection) -> None:
    with (
        logged_in(site.url, "nurse.norr", PASSWORD) as pc,
        logged_in(site.url, "nurse.norr", PASSWORD) as phone,
        logged_in(site.url, "nurse.norr", PASSWORD) as tablet,
    ):
        pc_id, phone_id, tablet_id = live_ids(db, "nurse.norr")
        page = pc.get("/account").text
        assert set(session_ids(page)) == {pc_id, phone_id, tablet_id}
        mine = page[page.index(f'data-session-id="{pc_id}"') :].split("</tr>")[0]
        assert "den här webbläsaren" in mine
        token = csrf_token(pc, "/account")
        assert pc.post(f"/account/sessioner/{phone_id}/logga-ut", data={"csrf": token}).status_code == 303
        assert phone.get("/api/wards/avd-norr/overview").status_code == 401
        assert pc.get("/api/wards/avd-norr/overview").status_code == 200
        everywhere = pc.post("/account/sessioner/logga-ut-overallt", data={"csrf": token})
        assert everywhere.status_code == 303 and everywhere.headers["location"] == "/login"
        assert pc.get("/api/wards/avd-norr/overview").status_code == 401
        assert tablet.get("/api/wards/avd-norr/overview").status_code == 401
    reasons = db.execute(
        "SELECT DISTINCT revoked_reason FROM staff_sessions WHERE id = ANY(%s)",
        ([pc_id, phone_id, tablet_id],),
    ).fetchall()
    assert reasons == [("own",)]
    # Ending one's own sessions is no act on anyone's data: no row in the log.
    own_rows = "SELECT count(*) FROM access_log WHERE username = 'nurse.norr' AND context LIKE '%%logout%%'"
    assert db.execute(own_rows).fetchone() == (0,)


def hemma(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HEMMA_DATABASE_URL=site.db_url)
    return subprocess.run([sys.executable, "-m", "hemma.cli", "staff", *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


def test_hemma_staff_sessions_and_logout(site: Site, db: psycopg.Connection) -> None:
    with logged_in(site.url, "nurse.norr", PASSWORD) as a, logged_in(site.url, "nurse.norr", PASSWORD) as b:
        a_id, b_id = live_ids(db, "nurse.norr")
        listed = hemma(site, "sessions", "nurse.norr")
        assert listed.returncode == 0
        assert {str(a_id), str(b_id)} <= set(listed.stdout.split()) and "password" in listed.stdout
        one = hemma(site, "logout", "nurse.norr", "--session", str(a_id))
        assert one.returncode == 0 and one.stdout.startswith("1 session(s)")
        assert a.get("/api/wards/avd-norr/overview").status_code == 401
        assert b.get("/api/wards/avd-norr/overview").status_code == 200
        with ward_socket(b, site.url, "avd-norr") as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "snapshot"
            assert hemma(site, "logout", "nurse.norr").returncode == 0
            assert closes_soon(ws) < 5
        assert b.get("/api/wards/avd-norr/overview").status_code == 401
    assert "no live session" in hemma(site, "sessions", "nurse.norr").stdout
    unknown = hemma(site, "sessions", "nobody")
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr
    assert db.execute(
        "SELECT count(*) FROM access_log WHERE context LIKE 'staff:nurse.norr logout%%'"
        " AND os_user IS NOT NULL"
    ).fetchone() == (2,)
