"""Hostile and malformed input to every dashboard route gets a clear Swedish 4xx, never a 500 (issue 8,
findings 5-7), over HTTP against a real PostgreSQL and uvicorn.

The reviewer's causes, each a class: a NUL character or a lone surrogate in a note, reason, username or
ward id; NaN or Infinity in JSON; a snooze of 2e12 minutes; a list where a string belongs; 10^400; a
far-future date that, once stored, broke the patient's record for good. Texts never repeat the input:
every hostile string here carries HEMLIG, and no answer or log line may.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed

from care.enrolment import EnrolledPatient
from care.limits import set_personal_threshold
from care.plans import set_monitoring_plan
from care.staff import create_staff_user
from core.settings import Settings
from tests.support.dashboard_server import csrf_token, logged_in, running_dashboard, ward_socket
from tests.support.ward_seed import PASSWORD, add_alert, seed_two_wards

SECRET = "test-session-secret-bad-input-0123456789"
MARK = "HEMLIG"  # in every hostile string; never in an answer or a log line


@dataclass
class Seed:
    anna: EnrolledPatient  # avd-norr
    bertil: EnrolledPatient  # avd-norr
    alert_id: int  # Anna's open high alert
    limit_id: int  # Anna's personal limit


@pytest.fixture
def seed(db: psycopg.Connection) -> Seed:
    anna, bertil, _cecilia, _ = seed_two_wards(
        db,
        [
            ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
            ("dr.lund", "Erik Lund", "physician", ["avd-norr"]),
            ("admin", "Ada Admin", "admin", []),
        ],
    )
    limit_id = set_personal_threshold(
        db, patient_id=anna.patient_id, rule="pulse_high", priority="high", limit=140,
        reason="Takykardi känd", set_by_username="dr.lund",
    )  # fmt: skip
    set_monitoring_plan(db, anna.patient_id, "spo2", timedelta(hours=4), "dr.lund")
    return Seed(anna, bertil, add_alert(db, anna), limit_id)


@pytest.fixture
def base_url(database_url: str, seed: Seed) -> Iterator[str]:
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield url


@contextlib.contextmanager
def staff_client(base_url: str, username: str) -> Iterator[httpx.Client]:
    """A logged-in client that sends the session's CSRF token with every request."""
    with logged_in(base_url, username, PASSWORD) as client:
        client.headers["X-CSRF-Token"] = csrf_token(client, "/wards/no-such-ward")
        yield client


def metric(base_url: str, name: str) -> float:
    text = httpx.get(base_url + "/metrics").text
    match = re.search(rf"^hemma_dashboard_{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"metric {name} missing"
    return float(match.group(1))


def assert_refused_in_swedish(response: httpx.Response, what: object) -> None:
    assert 400 <= response.status_code < 500, (what, response.status_code, response.text[:300])
    assert MARK not in response.text, what
    if response.headers["content-type"].startswith("application/json"):
        detail = response.json()["detail"]
        assert isinstance(detail, str) and detail[0].isupper(), (what, detail)


# --- JSON bodies ---------------------------------------------------------------------------------

# Raw JSON values no field of any route may accept.
HOSTILE_VALUES = [
    f'"{MARK}\\u0000 anteckning"',  # PostgreSQL text cannot hold NUL
    f'"{MARK}\\ud800"',  # a lone high surrogate
    f'"{MARK}\\udc00x"',  # a lone low surrogate
    f'"{MARK}\\u202e"',  # a bidi override (the note would read otherwise than stored)
    f'"{MARK}\\u0007"',  # a control character
    f'"{MARK * 200}"',  # longer than any field
    f'["{MARK}"]',  # a list where a value belongs
    f'{{"{MARK}": 1}}',
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "1" + "0" * 400,
    "-9223372036854775809",
    "2000000000000",
]
FAR_TIMES = ['"9999-12-31T23:59:59-14:00"', '"0001-01-01T00:00:00+14:00"', '"+275760-09-13T00:00:00Z"']
# Whole bodies no route may accept.
HOSTILE_BODIES = [
    b"[" * 15_000,  # deeper than any parser should recurse, and under the size limit
    b'{"note": "' + b"x" * 20_000 + b'"}',  # over 16 KiB
    b'{"note": "\xff\xfe HEMLIG"}',  # not UTF-8
    b'{"note": "\xed\xa0\x80 HEMLIG"}',  # a surrogate encoded in UTF-8
    b'{"HEMLIG\\u0000": 1}',  # a hostile key
    b'{"HEMLIG_okant_falt": 1}',  # an unknown key (named back only because it is plain)
    b"NaN",
    b'"HEMLIG"',
    b"{",
]


def action_routes(seed: Seed) -> list[tuple[str, dict[str, object]]]:
    """Every state-changing route with a body it would accept."""
    pid, now = seed.anna.patient_id, datetime.now(UTC).isoformat()
    observation = {
        "respiratory_rate": 18,
        "consciousness": "A",
        "on_oxygen": True,
        "oxygen_l_min": 2,
        "time": now,
    }
    limit = {"rule": "spo2_low", "priority": "high", "limit": 86, "reason": "KOL", "valid_until": now}
    return [
        (f"/api/alerts/{seed.alert_id}/acknowledge", {"note": "Ringt"}),
        (f"/api/alerts/{seed.alert_id}/snooze", {"minutes": 15, "note": "Ringt"}),
        (f"/api/alerts/{seed.alert_id}/resolve", {"note": "Klart"}),
        (f"/api/patients/{pid}/observations", observation),
        (f"/api/patients/{pid}/limits", limit),
        (f"/api/patients/{pid}/limits/{seed.limit_id}/revoke", {}),
        (f"/api/patients/{pid}/spo2-scale", {"scale": 2, "reason": "Hyperkapni"}),
        (f"/api/patients/{pid}/plan", {"vital": "spo2", "every_minutes": 60}),
        (f"/api/patients/{pid}/plan/spo2/clear", {}),
    ]  # fmt: skip


def with_value(body: dict[str, object], field: str, raw: str) -> bytes:
    """`body` as JSON text with one field's value replaced by a raw JSON fragment."""
    parts = [f"{json.dumps(k)}: {raw if k == field else json.dumps(v)}" for k, v in body.items()]
    return ("{" + ", ".join(parts) + "}").encode()


def test_hostile_json_is_refused_in_swedish_on_every_route(
    base_url: str, db: psycopg.Connection, seed: Seed
) -> None:
    sent = 0
    with staff_client(base_url, "dr.lund") as client:
        for path, body in action_routes(seed):
            variants = [with_value(body, field, raw) for field in body for raw in HOSTILE_VALUES]
            variants += [
                with_value(body, f, raw) for f in ("time", "valid_until") if f in body for raw in FAR_TIMES
            ]
            variants += [with_value({**body, "x": 0}, "x", raw) for raw in HOSTILE_VALUES[:3]]  # extra key
            for raw in variants + HOSTILE_BODIES:
                response = client.post(path, content=raw, headers={"Content-Type": "application/json"})
                assert_refused_in_swedish(response, (path, raw[:120]))
                sent += 1
    assert sent > 300
    # Nothing was done, and nothing failed on the way.
    assert db.execute("SELECT state FROM alerts WHERE id = %s", (seed.alert_id,)).fetchone() == ("open",)
    for table in ("alert_events", "manual_observations", "spo2_scale_orders", "access_log"):
        assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
    assert db.execute("SELECT count(*) FROM personal_thresholds WHERE revoked_at IS NULL").fetchone() == (1,)
    assert db.execute("SELECT vital, every_minutes FROM monitoring_plans").fetchall() == [("spo2", 240)]
    assert metric(base_url, "unexpected_errors_total") == 0


def test_the_reviewers_requests_get_their_own_swedish_answers(base_url: str, seed: Seed) -> None:
    pid = seed.anna.patient_id
    expected = [
        (f"/api/alerts/{seed.alert_id}/acknowledge", b'{"note": "HEMLIG\\u0000"}', "note",
         "Texten innehåller tecken som inte är tillåtna (till exempel styrtecken)"),
        (f"/api/alerts/{seed.alert_id}/snooze", b'{"minutes": 2000000000000}', "minutes",
         "Högsta snooze för hög prioritet är 30 min"),
        (f"/api/alerts/{seed.alert_id}/snooze", b'{"minutes": NaN}', None, "Förfrågan är inte giltig JSON"),
        (f"/api/patients/{pid}/limits", b'{"rule": "spo2_low", "priority": "high", "limit": 1' + b"0" * 400
         + b', "reason": "KOL"}', None, "Förfrågan innehåller ett tal som är för stort"),
        (f"/api/patients/{pid}/plan", b'{"vital": ["spo2"], "every_minutes": 60}', "vital",
         "Välj vad som ska mätas"),
        (f"/api/patients/{pid}/limits", b'{"rule": "spo2_low", "priority": "high", "limit": 86,'
         b' "reason": "KOL", "valid_until": "9999-12-31T23:59:59-14:00"}', "valid_until",
         "Gäller till får ligga högst 366 dagar fram (lämna fältet tomt för tills vidare)"),
        (f"/api/patients/{pid}/limits", b'{"HEMLIG\\u0000": 1}', None, "Okänt fält i förfrågan"),
        (f"/api/patients/{pid}/limits", b'{"by": "dr.lund"}', "by", "Okänt fält: by"),
    ]  # fmt: skip
    with staff_client(base_url, "dr.lund") as client:
        for path, raw, field, message in expected:
            response = client.post(path, content=raw, headers={"Content-Type": "application/json"})
            assert response.status_code == 422, (path, raw[:80])
            assert response.json() == {"detail": message} | ({"field": field} if field else {}), raw[:80]


# --- path, query and form parameters, headers ------------------------------------------------------


def test_hostile_parameters_are_refused_on_every_route(base_url: str, seed: Seed) -> None:
    pid = seed.anna.patient_id
    with staff_client(base_url, "admin") as operator:  # sees every ward: its lookups reach the database
        for path in (
            "/api/wards/avd%00norr/overview",
            f"/api/wards/{'a' * 65}/overview",
            "/api/wards/%1b/overview",
        ):
            refused = operator.get(path)
            assert refused.status_code == 404 and refused.json() == {"detail": "Okänd avdelning"}, path
        page = operator.get("/wards/avd%00norr")
        assert page.status_code == 404 and "Okänd avdelning" in page.text
        with ward_socket(operator, base_url, "avd%00norr") as ws, pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
    with staff_client(base_url, "dr.lund") as client:
        for method, path, status, field in (
            ("get", "/patients/%00", 404, None),
            ("post", "/api/patients/%00HEMLIG/limits", 404, None),
            ("post", "/api/patients/HEMLIG/spo2-scale", 404, None),
            ("post", "/api/alerts/99999999999999999999/acknowledge", 422, "alert_id"),
            ("post", "/api/alerts/-1/snooze", 422, "alert_id"),
            ("post", f"/api/patients/{pid}/limits/0/revoke", 422, "limit_id"),
            ("post", f"/api/patients/{pid}/plan/sp%00HEMLIG/clear", 422, "vital"),
            ("post", f"/api/patients/{pid}/plan/{'x' * 65}/clear", 422, "vital"),
        ):
            response = client.request(method, path, json={} if method == "post" else None)
            assert response.status_code == status, path
            assert_refused_in_swedish(response, path)
            if path.startswith("/api/"):
                assert response.json().get("field") == field, path
        # A CSRF token that is not ASCII (a forged header or form field) is a wrong token, not a crash.
        forged = client.post(f"/api/alerts/{seed.alert_id}/acknowledge", json={},
                             headers={"X-CSRF-Token": "förfalskad".encode("latin-1")})  # fmt: skip
        assert forged.status_code == 403 and forged.json() == {"detail": "Ogiltig eller saknad CSRF-token"}
        assert client.post("/logout", data={"csrf": "förfalskad"}).status_code == 403
    with httpx.Client(base_url=base_url, timeout=10) as anonymous:
        assert_refused_in_swedish(anonymous.get("/login", params={"next": f"/{MARK}\x00"}), "next")
        for username in (f"{MARK}\x00", f"{MARK}\x1b[2J"):
            login = anonymous.post("/login", data={"username": username, "password": "fel", "next": "/"})
            assert_refused_in_swedish(login, "username")
        login = anonymous.post(
            "/login", data={"username": "nurse.norr", "password": "x", "next": f"/{MARK}\x00"}
        )
        assert_refused_in_swedish(login, "next")
    assert metric(base_url, "unexpected_errors_total") == 0


# --- stored values that Python cannot hold -----------------------------------------------------------


def test_stored_far_off_times_do_not_break_any_page(
    base_url: str, db: psycopg.Connection, seed: Seed
) -> None:
    """Rows written before the bounds (or by hand) still read: year 10000, infinity and BC."""
    pid = seed.anna.patient_id
    db.execute(
        "INSERT INTO personal_thresholds (patient_id, rule, priority, limit_value, reason, set_by,"
        " valid_until) SELECT %s, 'spo2_low', 'high', 86, 'KOL', id, '9999-12-31T23:59:59-14:00'"
        " FROM staff_users WHERE username = 'dr.lund'",
        (pid,),
    )
    db.execute("UPDATE personal_thresholds SET valid_until = 'infinity' WHERE id = %s", (seed.limit_id,))
    db.execute(
        "INSERT INTO manual_observations (patient_id, time, consciousness, source)"
        " VALUES (%s, '10000-01-01 00:00+00', 'A', 'patient'), (%s, '0001-01-01 BC', 'V', 'patient')",
        (pid, pid),
    )
    db.execute("INSERT INTO latest_vitals (patient_id, vital, time, value, unit)"
               " VALUES (%s, 'spo2', 'infinity', 95, '%%')", (pid,))  # fmt: skip
    db.execute(
        "UPDATE alerts SET state = 'acknowledged', snoozed_until = 'infinity' WHERE id = %s", (seed.alert_id,)
    )
    db.execute("UPDATE gateways SET status = 'offline', status_at = '-infinity' WHERE id = 'gw-anna'")
    with staff_client(base_url, "dr.lund") as client:
        record = client.get(f"/patients/{pid}")
        assert record.status_code == 200
        assert "Syremättnad, låg" in record.text and "9999" in record.text  # the limit, still far off
        assert client.get("/wards/avd-norr").status_code == 200
        overview = client.get("/api/wards/avd-norr/overview")
        assert overview.status_code == 200
        anna = next(p for p in overview.json()["patients"] if p["id"] == str(pid))
        assert anna["vitals"][0]["time"] == "9999-12-30T00:00:00+00:00"
        with ward_socket(client, base_url, "avd-norr") as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "snapshot"
    assert metric(base_url, "unexpected_errors_total") == 0


# --- the last resort ---------------------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter("%(name)s %(message)s").format(record))  # with any traceback


@contextlib.contextmanager
def every_log_line() -> Iterator[list[str]]:
    """Every line logged meanwhile, uvicorn's own (which do not propagate) included, with tracebacks."""
    handler, loggers = _Records(), [logging.getLogger(), logging.getLogger("uvicorn")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def test_an_unexpected_error_is_a_generic_swedish_500_that_logs_no_patient_data(
    base_url: str, db: psycopg.Connection, seed: Seed
) -> None:
    # A fault the code does not expect, whose message carries the note: PostgreSQL's "Failing row contains".
    db.execute("ALTER TABLE alert_events ADD CONSTRAINT trap CHECK (note NOT LIKE '%HEMLIG%')")
    note = f"{MARK}: Anna Andersson 19480101-1234 andas tungt"
    with every_log_line() as lines, staff_client(base_url, "nurse.norr") as client:
        failed = client.post(f"/api/alerts/{seed.alert_id}/acknowledge", json={"note": note})
        db.execute("DROP TABLE personal_thresholds CASCADE")  # and a page whose query fails
        page = client.get(f"/patients/{seed.anna.patient_id}")
    assert failed.status_code == 500
    assert failed.json() == {
        "detail": "Ett oväntat fel inträffade. Försök igen; kvarstår felet, kontakta systemförvaltningen."
    }
    assert page.status_code == 500 and "Ett oväntat fel inträffade" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert db.execute("SELECT state FROM alerts WHERE id = %s", (seed.alert_id,)).fetchone() == ("open",)
    logged = "\n".join(lines)
    assert MARK not in logged and "19480101" not in logged and "Failing row" not in logged, logged
    # The alert_events row is written by the alert store (alerts/store.py), the one writer of alerts.
    assert re.search(r"unexpected CheckViolation at \S+ via alerts\.store:\d+ \(POST /api/alerts/", logged)
    assert re.search(r"unexpected UndefinedTable at \S+ via dashboard\.\w+:\d+ \(GET /patients/", logged)
    assert metric(base_url, "unexpected_errors_total") == 2


def test_staff_may_still_act_after_refusals(base_url: str, db: psycopg.Connection, seed: Seed) -> None:
    """The refusals above are not a lock-out: the same session's good request still works."""
    create_staff_user(db, username="nurse2.norr", display_name="Nils Nord", role="nurse", password=PASSWORD,
                      ward_ids=["avd-norr"])  # fmt: skip
    with staff_client(base_url, "nurse2.norr") as client:
        bad = client.post(f"/api/alerts/{seed.alert_id}/snooze", content=b'{"minutes": Infinity}',
                          headers={"Content-Type": "application/json"})  # fmt: skip
        assert bad.status_code == 422
        good = client.post(f"/api/alerts/{seed.alert_id}/snooze", json={"minutes": 15, "note": " Ringer "})
        assert good.status_code == 200 and good.json()["alert"]["note"] == "Ringer"
    assert metric(base_url, 'action_errors_total{action="snooze",status="422"}') == 1


def test_a_huge_form_body_is_refused_as_it_is_read(base_url: str, db: psycopg.Connection) -> None:
    """No route reads more than app.MAX_REQUEST_BYTES, a form route with no limit of its own included:
    413 by the declared length, and for a chunked body with no length, by counting."""
    patients = db.execute("SELECT count(*) FROM patients").fetchone()
    huge = {"csrf": "x", "display_name": "A" * (300 * 1024)}
    with staff_client(base_url, "nurse.norr") as client:
        token = csrf_token(client, "/wards/avd-norr/admit")
        declared = client.post("/wards/avd-norr/admit", data=huge | {"csrf": token})
        assert declared.status_code == 413 and "Traceback" not in declared.text

        def chunks() -> Iterator[bytes]:
            yield f"csrf={token}&display_name=".encode()
            for _ in range(40):
                yield b"B" * 8192

        chunked = client.post(
            "/wards/avd-norr/admit", content=chunks(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        assert chunked.status_code == 413
        assert client.get("/wards/avd-norr").status_code == 200  # the session goes on
    assert db.execute("SELECT count(*) FROM patients").fetchone() == patients
    with httpx.Client(base_url=base_url) as anonymous:
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert anonymous.post("/login", content=b"u=" + b"x" * (300 * 1024), headers=form).status_code == 413
