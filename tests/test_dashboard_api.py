"""The dashboard over HTTP and websockets, against a real PostgreSQL and a real uvicorn server."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed

from care.enrolment import EnrolledPatient, enrol_patient, ensure_ward
from care.staff import create_staff_user
from core.settings import Settings
from dashboard.app import SESSION_COOKIE
from tests.support.cards import cards_of
from tests.support.dashboard_server import csrf_token, logged_in, post_login, running_dashboard, ward_socket
from tests.support.ward_seed import add_alert

PASSWORD = "rätt häst batteri häftklammer"
SECRET = "test-session-secret-0123456789abcdef"


@dataclass
class Seed:
    anna: EnrolledPatient  # avd-norr
    bertil: EnrolledPatient  # avd-norr
    cecilia: EnrolledPatient  # avd-syd
    nurse_id: int  # nurse.norr, avd-norr only
    other_id: int  # nurse.syd, avd-syd only


@pytest.fixture
def seed(db: psycopg.Connection) -> Seed:
    ensure_ward(db, "avd-norr", "Avdelning Norr")
    ensure_ward(db, "avd-syd", "Avdelning Syd")
    anna = enrol_patient(
        db,
        ward_id="avd-norr",
        display_name="Anna Andersson",
        gateway_id="gw-anna",
        personal_number="194801011234",
        birth_year=1948,
        care_reason="Hjärtsvikt",
    )
    bertil = enrol_patient(
        db,
        ward_id="avd-norr",
        display_name="Bertil Berg",
        gateway_id="gw-bertil",
        birth_year=1939,
        care_reason="KOL",
    )
    cecilia = enrol_patient(
        db, ward_id="avd-syd", display_name="Cecilia Ceder", gateway_id="gw-cecilia", birth_year=1950
    )
    nurse = create_staff_user(
        db,
        username="nurse.norr",
        display_name="Sara Sjöström",
        role="nurse",
        password=PASSWORD,
        ward_ids=["avd-norr"],
    )
    other = create_staff_user(
        db,
        username="nurse.syd",
        display_name="Olle Öst",
        role="nurse",
        password=PASSWORD,
        ward_ids=["avd-syd"],
    )
    return Seed(anna, bertil, cecilia, nurse, other)


@pytest.fixture
def base_url(database_url: str, seed: Seed) -> Iterator[str]:
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield url


def set_vital(db: psycopg.Connection, patient: EnrolledPatient, vital: str, value: float, unit: str) -> None:
    """What ingest does for a new reading: upsert latest_vitals, then announce it."""
    db.execute(
        "INSERT INTO latest_vitals (patient_id, vital, time, value, unit) VALUES (%s, %s, now(), %s, %s)"
        " ON CONFLICT (patient_id, vital) DO UPDATE SET value = EXCLUDED.value, time = EXCLUDED.time",
        (patient.patient_id, vital, value, unit),
    )


def notify(db: psycopg.Connection, event: dict[str, object]) -> None:
    db.execute("SELECT pg_notify('hemma_events', %s)", (json.dumps(event),))


def vitals_event(*patients: EnrolledPatient) -> dict[str, object]:
    ids = [str(p.patient_id) for p in patients]
    return {"kind": "vitals", "ward_id": patients[0].ward_id, "patient_ids": ids}


def metric(base_url: str, name: str) -> float:
    text = httpx.get(base_url + "/metrics").text
    match = re.search(rf"^hemma_dashboard_{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"metric {name} missing"
    return float(match.group(1))


def access_rows(db: psycopg.Connection) -> list[tuple[object, ...]]:
    return db.execute(
        "SELECT staff_user_id, username, patient_id, action, context, client_address"
        " FROM access_log ORDER BY id"
    ).fetchall()


def recv_json(ws: object, kind: str, timeout: float = 5.0) -> dict[str, object]:
    """The next message of `kind`, skipping heartbeats."""
    while True:
        message = json.loads(ws.recv(timeout=timeout))  # type: ignore[attr-defined]
        if message["type"] == kind:
            return message  # type: ignore[no-any-return]
        assert message["type"] == "heartbeat", message


def close_code(ws: object) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=5)  # type: ignore[attr-defined]
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


# --- login ------------------------------------------------------------------------------------


def test_login_redirects_to_the_page_asked_for_and_counts(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client:
        first = client.get("/wards/avd-norr")
        assert first.status_code == 303
        assert first.headers["location"] == "/login?next=/wards/avd-norr"
        form = client.get("/login?next=/wards/avd-norr")
        assert form.status_code == 200 and 'name="password"' in form.text
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        credentials = {
            "username": "Nurse.Norr",
            "password": PASSWORD,
            "next": "/wards/avd-norr",
            "csrf": token,
        }
        done = client.post("/login", data=credentials)
        assert done.status_code == 303 and done.headers["location"] == "/wards/avd-norr"
        page = client.get("/wards/avd-norr")
        assert page.status_code == 200
        assert "Anna Andersson" in page.text and "Bertil Berg" in page.text
        assert "Cecilia Ceder" not in page.text
    # An offsite `next` is ignored.
    with httpx.Client(base_url=base_url) as client:
        offsite = post_login(client, "nurse.norr", PASSWORD, next="//evil.example/")
        assert offsite.headers["location"] == "/"
    assert metric(base_url, "logins_total") == 2
    assert metric(base_url, "failed_logins_total") == 0


def test_wrong_password_or_unknown_user_gets_the_form_again_with_401(base_url: str) -> None:
    for username in ("nurse.norr", "nobody"):
        with httpx.Client(base_url=base_url) as client:
            response = post_login(client, username, "fel lösenord!")
        assert response.status_code == 401
        assert "Fel användarnamn eller lösenord." in response.text
        assert 'name="password"' in response.text
        assert "fel lösenord!" not in response.text
    assert metric(base_url, "failed_logins_total") == 2


def test_disabled_account_is_refused_and_its_session_stops_working(
    base_url: str, db: psycopg.Connection, seed: Seed
) -> None:
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        db.execute("UPDATE staff_users SET disabled = true WHERE id = %s", (seed.nurse_id,))
        assert client.get("/api/wards/avd-norr/overview").status_code == 401
        refused = post_login(client, "nurse.norr", PASSWORD)
        assert refused.status_code == 403
        assert "inaktiverat" in refused.text
        assert SESSION_COOKIE not in refused.cookies


def test_five_failures_lock_the_username_even_for_the_right_password(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client:
        statuses = [post_login(client, "nurse.norr", f"fel-{i}").status_code for i in range(5)]
        assert statuses == [401, 401, 401, 401, 429]
        locked = post_login(client, "nurse.norr", PASSWORD)
        assert locked.status_code == 429
        assert "För många misslyckade inloggningar" in locked.text
        assert int(locked.headers["retry-after"]) > 60
        # Another username is not affected.
        other = post_login(client, "nurse.syd", PASSWORD)
        assert other.status_code == 303
    assert metric(base_url, "login_lockouts_total") == 1
    assert metric(base_url, "failed_logins_total") == 6


def test_logout_needs_the_csrf_token_and_ends_the_session(base_url: str) -> None:
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        token = csrf_token(client, "/wards/avd-norr")
        assert client.post("/logout", data={"csrf": "wrong"}).status_code == 403
        assert client.get("/api/wards/avd-norr/overview").status_code == 200
        out = client.post("/logout", data={"csrf": token})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert client.get("/api/wards/avd-norr/overview").status_code == 401


# --- authorization ----------------------------------------------------------------------------


def test_unauthenticated_requests(base_url: str, db: psycopg.Connection, seed: Seed) -> None:
    alert_id = add_alert(db, seed.anna)
    assert httpx.get(base_url + "/api/wards/avd-norr/overview").status_code == 401
    ack = httpx.post(base_url + f"/api/alerts/{alert_id}/acknowledge", json={}, headers={"X-CSRF-Token": "x"})
    assert ack.status_code == 401
    page = httpx.get(base_url + f"/patients/{seed.anna.patient_id}")
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=/patients/")
    with ward_socket(None, base_url, "avd-norr") as ws:
        assert close_code(ws) == 4401
    assert access_rows(db) == []


def test_other_wards_are_forbidden(base_url: str, db: psycopg.Connection, seed: Seed) -> None:
    alert_id = add_alert(db, seed.cecilia)
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        token = csrf_token(client, "/wards/avd-norr")
        assert client.get("/wards/avd-syd").status_code == 403
        assert client.get("/wards/no-such-ward").status_code == 403  # no hint whether it exists
        assert client.get("/api/wards/avd-syd/overview").status_code == 403
        record = client.get(f"/patients/{seed.cecilia.patient_id}")
        assert record.status_code == 403 and "Cecilia" not in record.text
        assert client.get(f"/patients/{uuid.uuid4()}").status_code == 404
        assert client.get("/patients/not-a-uuid").status_code == 404
        ack = client.post(f"/api/alerts/{alert_id}/acknowledge", json={}, headers={"X-CSRF-Token": token})
        assert ack.status_code == 404  # as if it did not exist: alert ids count up (issue 8, finding 11)
        with ward_socket(client, base_url, "avd-syd") as ws:
            assert close_code(ws) == 4403
        with ward_socket(client, base_url, "avd-norr", origin="http://evil.example") as ws:
            assert close_code(ws) == 4403
    assert db.execute("SELECT state FROM alerts WHERE id = %s", (alert_id,)).fetchone() == ("open",)
    assert not any(row[2] == seed.cecilia.patient_id for row in access_rows(db))


def test_admin_sees_every_ward(base_url: str, db: psycopg.Connection) -> None:
    create_staff_user(
        db, username="admin", display_name="Ada Admin", role="admin", password=PASSWORD, ward_ids=[]
    )
    with logged_in(base_url, "admin", PASSWORD) as client:
        wards = client.get("/")
        assert wards.status_code == 200
        assert "Avdelning Norr" in wards.text and "Avdelning Syd" in wards.text
        assert client.get("/api/wards/avd-syd/overview").json()["patients"][0]["name"] == "Cecilia Ceder"
        assert client.get("/wards/no-such-ward").status_code == 404
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        only = client.get("/")
        assert only.status_code == 303 and only.headers["location"] == "/wards/avd-norr"


# --- acknowledge ------------------------------------------------------------------------------


def test_acknowledge_status_codes(base_url: str, db: psycopg.Connection, seed: Seed) -> None:
    open_id = add_alert(db, seed.anna)
    resolved_id = add_alert(db, seed.bertil, state="resolved")
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        token = csrf_token(client, "/wards/avd-norr")
        headers = {"X-CSRF-Token": token}

        def ack(alert_id: int | str, body: object = None, headers: dict[str, str] = headers) -> int:
            return client.post(f"/api/alerts/{alert_id}/acknowledge", json=body, headers=headers).status_code

        assert ack(open_id, {}, headers={}) == 403
        assert ack(open_id, {}, headers={"X-CSRF-Token": "forged"}) == 403
        assert ack(999_999) == 404
        assert ack("abc") == 422
        assert ack(open_id, {"note": "x" * 501}) == 422
        assert ack(open_id, {"note": 12}) == 422
        assert ack(open_id, {"note": "ok", "extra": 1}) == 422
        assert ack(resolved_id, {}) == 409
        assert db.execute("SELECT state FROM alerts WHERE id = %s", (open_id,)).fetchone() == ("open",)
        assert ack(open_id, {"note": "x" * 500}) == 200
        assert ack(open_id, {}) == 409
        assert ack(open_id) == 409  # no body at all is allowed; the alert is simply not open any more
    assert metric(base_url, "acknowledgements_total") == 1


def test_acknowledge_is_audited_and_announced(base_url: str, db: psycopg.Connection, seed: Seed) -> None:
    alert_id = add_alert(db, seed.anna, priority="medium")
    db.execute("LISTEN hemma_events")
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        token = csrf_token(client, "/wards/avd-norr")
        before = len(access_rows(db))
        response = client.post(
            f"/api/alerts/{alert_id}/acknowledge",
            json={"note": "  Ringt patienten  "},
            headers={"X-CSRF-Token": token},
        )
    assert response.status_code == 200
    body = response.json()["alert"]
    assert body["state"] == "acknowledged" and body["acknowledged_by"] == "Sara Sjöström"
    assert body["note"] == "Ringt patienten"

    state, by, at = db.execute(
        "SELECT state, acknowledged_by, acknowledged_at FROM alerts WHERE id = %s", (alert_id,)
    ).fetchone()  # type: ignore[misc]
    assert (state, by) == ("acknowledged", seed.nurse_id) and at is not None
    events = db.execute(
        "SELECT kind, actor, priority, note, detail FROM alert_events WHERE alert_id = %s", (alert_id,)
    ).fetchall()
    assert events == [
        ("acknowledged", "staff:nurse.norr", "medium", "Ringt patienten", {"staff_user_id": seed.nurse_id})
    ]
    rows = access_rows(db)[before:]
    assert rows == [
        (
            seed.nurse_id,
            "nurse.norr",
            seed.anna.patient_id,
            "acknowledge_alert",
            f"alert:{alert_id}",
            "127.0.0.1",
        ),
    ]
    notifies = list(db.notifies(timeout=5, stop_after=1))
    assert [n.channel for n in notifies] == ["hemma_events"]
    expected = {"kind": "alerts", "ward_id": "avd-norr", "alert_ids": [alert_id]}
    assert json.loads(notifies[0].payload) == expected


# --- reading patient data -----------------------------------------------------------------------


def test_reads_write_access_log_rows(base_url: str, db: psycopg.Connection, seed: Seed) -> None:
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        assert client.get("/wards/avd-norr").status_code == 200
        overview = client.get("/api/wards/avd-norr/overview").json()
        assert client.get(f"/patients/{seed.anna.patient_id}").status_code == 200
    assert overview["type"] == "snapshot" and overview["ward"] == {"id": "avd-norr", "name": "Avdelning Norr"}
    shown = {uuid.UUID(p["id"]) for p in overview["patients"]}
    assert shown == {seed.anna.patient_id, seed.bertil.patient_id}
    rows = access_rows(db)
    assert {(r[2], r[3], r[4]) for r in rows} == {
        (seed.anna.patient_id, "ward_overview", "ward:avd-norr html"),
        (seed.bertil.patient_id, "ward_overview", "ward:avd-norr html"),
        (seed.anna.patient_id, "ward_overview", "ward:avd-norr api"),
        (seed.bertil.patient_id, "ward_overview", "ward:avd-norr api"),
        (seed.anna.patient_id, "patient_record", "ward:avd-norr html"),
    }
    assert len(rows) == 5
    assert {(r[0], r[1], r[5]) for r in rows} == {(seed.nurse_id, "nurse.norr", "127.0.0.1")}
    assert metric(base_url, "access_log_rows_total") == 5


def test_overview_orders_by_alert_priority_then_swedish_name(
    base_url: str, db: psycopg.Connection, seed: Seed
) -> None:
    asa = enrol_patient(db, ward_id="avd-norr", display_name="Åsa Åberg", gateway_id="gw-asa")
    orjan = enrol_patient(db, ward_id="avd-norr", display_name="Örjan Öberg", gateway_id="gw-orjan")
    zack = enrol_patient(db, ward_id="avd-norr", display_name="Zack Zetterlund", gateway_id="gw-zack")
    add_alert(db, orjan, priority="high", state="acknowledged")
    add_alert(db, zack, priority="medium")
    add_alert(db, asa, priority="low")
    db.execute(
        "INSERT INTO latest_vitals (patient_id, vital, time, value, unit) VALUES"
        " (%s, 'body_temperature', now(), 37.25, 'Cel'), (%s, 'spo2', now(), 96, '%%')",
        (seed.anna.patient_id, seed.anna.patient_id),
    )
    db.execute("UPDATE gateways SET status = 'offline', status_at = now() WHERE id = 'gw-bertil'")
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        overview = client.get("/api/wards/avd-norr/overview").json()
        page = client.get("/wards/avd-norr").text
    names = [p["name"] for p in overview["patients"]]
    assert names == ["Örjan Öberg", "Zack Zetterlund", "Anna Andersson", "Bertil Berg", "Åsa Åberg"]
    assert [m.group(1) for m in re.finditer(r'class="patient-name"><a [^>]*>([^<]+)<', page)] == names
    anna = overview["patients"][2]
    # VITALS display order (SpO2 before temperature), core.vitals decimals, Swedish decimal comma.
    assert [(v["label"], v["text"], v["unit"]) for v in anna["vitals"]] == [
        ("SpO₂", "96", "%"),
        ("Temp", "37,2", "°C"),
    ]
    assert anna["age"] is not None and anna["age"] >= 76
    assert overview["patients"][3]["gateway"]["status"] == "offline"
    assert 'class="gateway gw-offline"' in page


def test_patient_record_shows_72_hours_newest_first_and_alert_history(
    base_url: str, db: psycopg.Connection, seed: Seed
) -> None:
    pid = seed.anna.patient_id
    for hours_ago, value in ((1, 91), (5, 93), (80, 99)):
        db.execute(
            "INSERT INTO observations (time, patient_id, vital, value, unit, measurement_id, gateway_id,"
            " device_id, characteristic, received_at) VALUES (now() - make_interval(hours => %s), %s, 'spo2',"
            " %s, '%%', gen_random_uuid(), 'gw-anna', 'AA:BB', '2A5F', now())",
            (hours_ago, pid, value),
        )
    alert_id = add_alert(db, seed.anna, message="SpO₂ låg")
    db.execute(
        "INSERT INTO alert_events (alert_id, kind, actor, priority) VALUES (%s, 'opened', 'engine', 'high')",
        (alert_id,),
    )
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        page = client.get(f"/patients/{pid}")
    assert page.status_code == 200
    text = page.text
    assert "194801011234" in text and "Hjärtsvikt" in text
    history = text.split("Mätvärden senaste 72 timmarna")[1].split("</section>")[0]
    cells = re.findall(r'<td class="num">([^<]+)</td>', history)
    assert cells == ["91", "93"]  # newest first, the 80 h old value is outside the window
    assert "SpO₂ låg" in text and "Öppnat" in text and "(engine)" in text


def test_patient_record_shows_the_personal_limits_in_force(
    base_url: str, db: psycopg.Connection, seed: Seed
) -> None:
    from care.limits import set_personal_threshold
    from care.staff import create_staff_user

    create_staff_user(db, username="dr.lund", display_name="Erik Lund", role="physician",
                      password=PASSWORD, ward_ids=["avd-norr"])  # fmt: skip
    set_personal_threshold(db, patient_id=seed.anna.patient_id, rule="spo2_low", priority="high", limit=86,
                           reason="KOL, mål 88–92 %", set_by_username="dr.lund")  # fmt: skip
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        with_limit = client.get(f"/patients/{seed.anna.patient_id}").text
        without = client.get(f"/patients/{seed.bertil.patient_id}").text
    assert "Personliga larmgränser" in with_limit
    row = re.search(r"<tr><td>Syremättnad, låg</td><td>Hög</td><td class=\"num\">86 %</td>"
                    r"<td>KOL, mål 88–92 %</td><td>Erik Lund, ", with_limit)  # fmt: skip
    assert row is not None
    assert "tills vidare" in with_limit
    assert "Avdelningens standardgränser gäller." in without


def test_alert_link_from_a_notification_opens_the_phone_view_after_login(
    base_url: str, db: psycopg.Connection, seed: Seed
) -> None:
    alert_id = add_alert(db, seed.anna, message="SpO₂ låg")
    with httpx.Client(base_url=base_url, timeout=10) as anonymous:
        first = anonymous.get(f"/alerts/{alert_id}")
    assert first.status_code == 303 and first.headers["location"] == f"/login?next=/alerts/{alert_id}"
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        hop = client.get(f"/alerts/{alert_id}")
        missing = client.get("/alerts/999999")
    # The phone view of that alert and that patient (dashboard.alert_phone), with the way to the record.
    assert hop.status_code == 200
    assert "SpO₂ låg" in hop.text and "Anna Andersson" in hop.text
    assert f'href="/patients/{seed.anna.patient_id}"' in hop.text
    assert f'action="/alerts/{alert_id}/kvittera"' in hop.text
    assert missing.status_code == 404


# --- live updates -------------------------------------------------------------------------------


def test_websocket_snapshot_then_deltas_log_only_new_patients(
    base_url: str, db: psycopg.Connection, seed: Seed
) -> None:
    with (
        logged_in(base_url, "nurse.norr", PASSWORD) as client,
        ward_socket(client, base_url, "avd-norr") as ws,
    ):
        snapshot = recv_json(ws, "snapshot")
        names = {p["name"] for p in cards_of(snapshot)}
        assert names == {"Anna Andersson", "Bertil Berg"}
        assert metric(base_url, "websocket_clients") == 1
        logged = [(r[2], r[4]) for r in access_rows(db)]
        assert sorted(logged) == sorted(
            [
                (seed.anna.patient_id, "ward:avd-norr websocket"),
                (seed.bertil.patient_id, "ward:avd-norr websocket"),
            ]
        )

        set_vital(db, seed.anna, "spo2", 89, "%")
        notify(db, vitals_event(seed.anna))
        delta = recv_json(ws, "delta")
        assert [p["name"] for p in cards_of(delta)] == ["Anna Andersson"]
        assert cards_of(delta)[0]["vitals"][0]["text"] == "89"
        assert len(access_rows(db)) == 2  # Anna was already logged in this websocket session

        # A malformed event is counted and ignored; the listener keeps going.
        db.execute("SELECT pg_notify('hemma_events', 'not json')")
        # An enrolment announces itself (care.enrolment: a vitals event); here the kit is offline
        # before anyone sees the patient.
        with db.transaction():
            david = enrol_patient(db, ward_id="avd-norr", display_name="David Dahl", gateway_id="gw-david")
            db.execute("UPDATE gateways SET status = 'offline' WHERE id = 'gw-david'")
        notify(db, {"kind": "gateway", "ward_id": None, "gateway_id": "gw-david", "status": "offline"})
        delta = recv_json(ws, "delta")
        cards = [(p["name"], p["gateway"]["status"]) for p in cards_of(delta)]
        assert cards == [("David Dahl", "offline")]
        new_rows = access_rows(db)[2:]
        assert [(r[2], r[3]) for r in new_rows] == [(david.patient_id, "ward_overview")]

        # Discharge: the patient is removed from the page.
        db.execute("UPDATE patients SET discharged_at = now() WHERE id = %s", (david.patient_id,))
        notify(db, vitals_event(david))
        delta = recv_json(ws, "delta")
        assert delta["cards"] == [] and delta["removed"] == [str(david.patient_id)]
    # Anna's reading, David's enrolment and his discharge
    assert metric(base_url, 'events_received_total{kind="vitals"}') == 3
    assert metric(base_url, 'events_received_total{kind="gateway"}') == 1
    assert metric(base_url, "events_rejected_total") == 1
    assert metric(base_url, "pushes_total") >= 4
    assert metric(base_url, "websocket_clients") == 0


def test_acknowledge_reaches_other_websockets_and_bursts_are_coalesced(
    base_url: str, db: psycopg.Connection, seed: Seed
) -> None:
    alert_id = add_alert(db, seed.bertil)
    with (
        logged_in(base_url, "nurse.norr", PASSWORD) as client,
        ward_socket(client, base_url, "avd-norr") as ws,
    ):
        recv_json(ws, "snapshot")
        flushes_before = metric(base_url, "flushes_total")
        started = time.monotonic()
        for value in range(60, 100):  # 40 separate commits, each with its own NOTIFY
            set_vital(db, seed.anna, "pulse_rate", value, "/min")
            notify(db, vitals_event(seed.anna))
        elapsed = time.monotonic() - started
        last = None
        while last is None or cards_of(last)[0]["vitals"][0]["text"] != "99":
            last = recv_json(ws, "delta")
        assert metric(base_url, 'events_received_total{kind="vitals"}') == 40
        # At most one re-query per 100 ms coalescing window, not one per event.
        flushes = metric(base_url, "flushes_total") - flushes_before
        assert flushes < 40 and flushes <= elapsed / 0.1 + 2, (flushes, elapsed)

        token = csrf_token(client, "/wards/avd-norr")
        assert (
            client.post(
                f"/api/alerts/{alert_id}/acknowledge", json={}, headers={"X-CSRF-Token": token}
            ).status_code
            == 200
        )
        delta = recv_json(ws, "delta")
        (bertil,) = cards_of(delta)
        assert bertil["alerts"][0]["state"] == "acknowledged"
        assert bertil["alerts"][0]["acknowledged_by"] == "Sara Sjöström"


def test_security_headers_and_escaping(base_url: str, db: psycopg.Connection) -> None:
    enrol_patient(db, ward_id="avd-norr", display_name="<script>alert(1)</script>", gateway_id="gw-xss")
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        page = client.get("/wards/avd-norr")
        static = client.get("/static/dashboard.js")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert f"ws://{base_url.removeprefix('http://')}" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["cache-control"] == "no-store"
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert re.findall(r"<script[^>]*>", page.text) == ['<script src="/static/dashboard.js" defer>']
    assert " style=" not in page.text and "onclick" not in page.text
    assert static.status_code == 200 and "innerHTML" not in static.text.replace("never innerHTML", "")
