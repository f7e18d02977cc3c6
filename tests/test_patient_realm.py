"""The patient realm is separate from the staff realm (issue 10, "Boundaries"), tested as an attacker
would: with a patient's device token every staff endpoint (every route of the app outside /p/, the
JSON API, the schema, the ward websocket) is shut; a staff session opens no /p/ page; a relative's
device gets only what care.permissions gives relatives; forged and revoked tokens read as "not
connected" and never as a 500; a device sees its own patient's data only, whatever the request names.

The tables of routes come from the app itself, so every route added later is covered too.
"""

from __future__ import annotations

import html
import re
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import psycopg
import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from care import texts_patient_sv
from care.acting import execute
from care.enrolment import EnrolledPatient
from care.patient_enrolment import create, redeem_link, revoke
from care.permissions import Holder, PatientAction, patient_may
from care.refusals import RefusalCode as C
from care.refusals import Refused
from core.settings import Settings
from dashboard.app import create_app
from dashboard.live import CLOSE_UNAUTHENTICATED
from dashboard.patient_realm import CSRF_HEADER, DEVICE_COOKIE, NAVIGATION
from tests.support.dashboard_server import logged_in, running_dashboard
from tests.support.ward_seed import PASSWORD, add_alert, seed_two_wards

SECRET = "test-session-secret-patient-realm-000001"
NOT_ENROLLED = "Den här enheten är inte ansluten"
RELATIVE_REFUSED = texts_patient_sv.text(Refused(C.PATIENT_REALM_ACTION, action="x").refusal)
# Open to anyone by design, patient data in none: the login form, logging out, health and metrics.
PUBLIC = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    # The charting library's file, served like /static (dashboard.vendor_assets): no patient data.
    ("GET", "/vendor/plotly-{version}.min.js"),
    # Issue 12's ways in: OIDC (404 without an issuer configured) and the TOTP step (no session yet).
    ("GET", "/login/oidc"),
    ("GET", "/login/oidc/callback"),
    ("GET", "/login/kod"),
    ("POST", "/login/kod"),
    # FHIR's public documents (issue 12): what the server can do and how a system client gets a token.
    ("GET", "/fhir/metadata"),
    ("GET", "/fhir/.well-known/smart-configuration"),
    # The token endpoint authenticates by the client's signed assertion, not a session: RFC 6749's 400.
    ("POST", "/fhir/auth/token"),
}
# The patient realm's own way in: needs a link code, not a device.
ENROLMENT = {("GET", "/p/anslut"), ("POST", "/p/anslut")}


@dataclass(frozen=True)
class Realm:
    anna: EnrolledPatient
    bertil: EnrolledPatient
    anna_device: int
    anna_token: str
    relative_token: str
    bertil_token: str
    alert_id: int
    secrets: tuple[str, ...]  # what must never reach a foreign reader: names, ids, labels

    def device(self, base_url: str, token: str) -> httpx.Client:
        """A client that sends the device cookie on every path, as an attacker would (a browser sends
        it under /p only)."""
        return httpx.Client(base_url=base_url, timeout=10, headers={"Cookie": f"{DEVICE_COOKIE}={token}"})


def _enrol(db: psycopg.Connection, patient: EnrolledPatient, holder: str, label: str) -> tuple[int, str]:
    made = execute(db, create(patient_id=patient.patient_id, holder=holder, label=label,
                              consent_note="Muntligt 3/12" if holder == "relative" else None, with_pin=False,
                              valid_days=14, by="sara", origin=None))  # fmt: skip
    return made.device_id, redeem_link(db, made.link_code).token


@pytest.fixture
def realm(db) -> Realm:  # type: ignore[no-untyped-def]
    anna, bertil, _, _ = seed_two_wards(db, [("sara", "Sara Sjöberg", "nurse", ["avd-norr"])])
    anna_device, anna_token = _enrol(db, anna, "patient", "Annas surfplatta")
    _, relative_token = _enrol(db, anna, "relative", "Lisa dotter")
    _, bertil_token = _enrol(db, bertil, "patient", "Bertils telefon")
    alert_id = add_alert(db, anna)
    hidden = ("Anna Andersson", "Bertil Berg", str(anna.patient_id), str(bertil.patient_id),
              "Annas surfplatta", "Bertils telefon", "Lisa dotter", "SpO₂ 85")  # fmt: skip
    return Realm(anna, bertil, anna_device, anna_token, relative_token, bertil_token, alert_id, hidden)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, session_secret=SECRET, patient_poll_seconds=1)


@pytest.fixture
def base_url(settings: Settings) -> Iterator[str]:
    with running_dashboard(settings) as url:
        yield url


def routes(settings: Settings) -> list[APIRoute | APIWebSocketRoute]:
    """Every route of the app, as registered (no server needed to list them)."""
    return [r for r in _flat(create_app(settings).routes) if isinstance(r, APIRoute | APIWebSocketRoute)]


def _flat(routes: list[Any]) -> Iterator[Any]:
    """Routes of included routers too (newer FastAPI keeps an included router as one entry; Hemma
    includes its routers without a prefix, so their paths are the app's)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        yield from _flat(included.routes) if included is not None else (route,)


def patient_path(path: str) -> bool:
    return path == "/p" or path.startswith("/p/")


def fill(path: str, realm: Realm) -> str:
    """A route's path with real values: the attacker aims at a real patient, alert and device."""
    values = {
        "patient_id": str(realm.anna.patient_id),
        "ward_id": realm.anna.ward_id,
        "alert_id": str(realm.alert_id),
        "device_id": str(realm.anna_device),
        "gateway_id": realm.anna.gateway_id,
        "vital": "spo2",
        # FHIR (issue 12): the patient's own resource, so a refusal cannot be an unknown type's 404.
        "resource_type": "Patient",
        "resource_id": str(realm.anna.patient_id),
    }
    return re.sub(r"\{([a-z_]+)(?::[a-z]+)?\}", lambda m: values.get(m[1], "1"), path)


def leaks(response: httpx.Response, realm: Realm) -> list[str]:
    return [s for s in realm.secrets if s in response.text or s in html.unescape(response.text)]


def shut(response: httpx.Response) -> bool:
    """Refused: not logged in (401), forbidden (403) or sent to the login form."""
    if response.status_code == 303:
        return urlsplit(response.headers["location"]).path == "/login"
    return response.status_code in (401, 403)


def test_a_patients_device_token_opens_no_staff_endpoint(
    realm: Realm, settings: Settings, base_url: str
) -> None:
    checked = 0
    with realm.device(base_url, realm.anna_token) as attacker:
        for route in routes(settings):
            if patient_path(route.path) or isinstance(route, APIWebSocketRoute):
                continue
            for method in sorted(route.methods - {"HEAD"}):
                path = fill(route.path, realm)
                body: dict[str, Any] = (
                    {"json": {}} if path.startswith("/api/") else {"data": {"csrf": "x"}}
                ) if method != "GET" else {}  # fmt: skip
                answer = attacker.request(method, path, **body)
                assert answer.status_code != 500, (method, route.path)
                assert leaks(answer, realm) == [], (method, route.path)
                if route.path in ("/fhir", "/fhir/{rest:path}"):  # FHIR's catch-all: no endpoint there
                    assert answer.status_code in (404, 405), (method, route.path, answer.status_code)
                elif (method, route.path) not in PUBLIC:
                    assert shut(answer), (method, route.path, answer.status_code)
                checked += 1
    assert checked >= 25  # the whole staff surface, not a handful
    assert {"/openapi.json", "/api/wards/{ward_id}/overview", "/patients/{patient_id}"} <= {
        r.path for r in routes(settings)
    }


def test_a_patients_device_token_opens_no_ward_websocket(
    realm: Realm, settings: Settings, base_url: str
) -> None:
    sockets = [r for r in routes(settings) if isinstance(r, APIWebSocketRoute)]
    assert sockets
    for route in sockets:
        url = base_url.replace("http://", "ws://", 1) + fill(route.path, realm)
        headers = {"Cookie": f"{DEVICE_COOKIE}={realm.anna_token}"}
        with (
            connect(url, additional_headers=headers, origin=base_url, open_timeout=10) as ws,  # type: ignore[arg-type]
            pytest.raises(ConnectionClosed) as closed,
        ):
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_UNAUTHENTICATED


def test_a_staff_session_opens_no_patient_page(realm: Realm, settings: Settings, base_url: str) -> None:
    patient_routes = [r for r in routes(settings) if isinstance(r, APIRoute) and patient_path(r.path)]
    assert patient_routes
    with logged_in(base_url, "sara", PASSWORD) as nurse:
        assert nurse.get(f"/patients/{realm.anna.patient_id}").status_code == 200  # she is a real nurse
        for route in patient_routes:
            for method in sorted(route.methods - {"HEAD"}):
                answer = nurse.request(method, fill(route.path, realm))
                assert answer.status_code in (401, 403, 404, 422), (method, route.path, answer.status_code)
                assert leaks(answer, realm) == [], (method, route.path)
                if (method, route.path) not in ENROLMENT:
                    assert answer.status_code in (401, 403), (method, route.path)
                    if answer.status_code == 401 and not route.path.startswith("/p/api/"):
                        assert NOT_ENROLLED in answer.text


def test_a_relatives_device_sees_only_what_relatives_may(
    realm: Realm, settings: Settings, base_url: str
) -> None:
    """Each screen of the navigation needs its PatientAction; the relative is refused the patient's own
    (care.permissions.PATIENT_ALLOWED) with the calm text, the patient is not."""
    existing = {r.path for r in routes(settings) if isinstance(r, APIRoute) and "GET" in r.methods}
    screens = [(path, action) for path, _, action in NAVIGATION if path in existing]
    screens.append(("/p/fragment/vem-har-last", PatientAction.VIEW_ACCESS_LOG))
    assert ("/p/vem-har-last", PatientAction.VIEW_ACCESS_LOG) in screens
    with (
        realm.device(base_url, realm.relative_token) as relative,
        realm.device(base_url, realm.anna_token) as patient,
    ):
        for path, action in screens:
            assert patient.get(path).status_code == 200, path
            answer = relative.get(path)
            if patient_may(Holder.RELATIVE, action):
                assert answer.status_code == 200, path
            else:
                assert answer.status_code == 403, path
                assert RELATIVE_REFUSED in html.unescape(answer.text), path
                assert "Anna" not in answer.text and "Sjuksköterska" not in answer.text
        nav = relative.get("/p/vem-har-last").text
        assert 'href="/p/vem-har-last"' not in nav  # not offered either


FORGED = {
    "random": uuid.uuid4().hex + uuid.uuid4().hex,
    "empty": "",
    "10 kB": "A" * 10_240,
    "odd unicode": "\u202e\U0001f600ö\u200b",
    "quoted NUL": '"a\\000b"',  # Python's cookie parser unquotes \000 to a NUL character
    "just too long": "b" * 201,
}


def test_forged_and_revoked_tokens_are_not_enrolled_never_a_500(realm: Realm, db, base_url: str) -> None:  # type: ignore[no-untyped-def]
    execute(db, revoke(patient_id=realm.anna.patient_id, device_id=realm.anna_device, by="sara", origin=None))
    tokens = FORGED | {"revoked": realm.anna_token}
    for name, token in tokens.items():
        cookie = f"{DEVICE_COOKIE}={token}".encode()
        for path in ("/p/vem-har-last", "/p/fragment/vem-har-last"):
            answer = httpx.get(base_url + path, headers={"Cookie": cookie}, timeout=10)
            assert answer.status_code == 401, (name, path, answer.status_code)
            assert NOT_ENROLLED in answer.text, name
    # A raw NUL in the header itself: the server refuses the request line, never a 500.
    host, port = urlsplit(base_url).hostname, urlsplit(base_url).port
    with socket.create_connection((host, port), timeout=10) as raw:
        raw.sendall(
            b"GET /p/vem-har-last HTTP/1.1\r\nHost: x\r\nCookie: hemma_device=a\x00b\r\n"
            b"Connection: close\r\n\r\n"
        )
        status = raw.recv(64).split(b" ")[1]
    assert status in (b"400", b"401"), status


def test_a_patient_form_post_without_its_csrf_token_is_refused(
    realm: Realm, settings: Settings, base_url: str
) -> None:
    """Every state-changing /p/ route but the enrolment (whose link code is its secret) needs the
    device's CSRF token."""
    posts = [
        r for r in routes(settings)
        if isinstance(r, APIRoute) and patient_path(r.path) and r.methods & {"POST", "PUT", "PATCH", "DELETE"}
        and r.path != "/p/anslut"
    ]  # fmt: skip
    with realm.device(base_url, realm.anna_token) as patient:
        for route in posts:
            for method in route.methods - {"HEAD"}:
                body: dict[str, Any] = {"json": {}} if "/p/api/" in route.path else {"data": {}}
                answer = patient.request(method, fill(route.path, realm), **body)
                assert answer.status_code == 403, (method, route.path, answer.status_code)


def test_a_device_sees_its_own_patient_only_whatever_the_request_names(realm: Realm, base_url: str) -> None:
    with logged_in(base_url, "sara", PASSWORD) as nurse:
        assert nurse.get(f"/patients/{realm.bertil.patient_id}").status_code == 200
        assert nurse.get(f"/patients/{realm.anna.patient_id}").status_code == 200
        assert nurse.get(f"/patients/{realm.bertil.patient_id}").status_code == 200
    with (
        realm.device(base_url, realm.bertil_token) as bertil,
        realm.device(base_url, realm.anna_token) as anna,
    ):
        assert bertil.get("/p/vem-har-last").status_code == 200
        other = str(realm.bertil.patient_id)
        for query in ("", f"?patient_id={other}", f"?patient={other}&sida=1", f"?device_id=1&p={other}"):
            page = anna.get("/p/vem-har-last" + query)
            assert page.status_code == 200, query
            text = html.unescape(re.sub(r"<[^>]+>", " ", page.text))
            # Sara read Anna's record once (and Bertil's twice, around it): one entry, no "2 gånger".
            assert text.count("Läste din journal i Hemma") == 1 and "gånger" not in text, query
            assert "Bertils telefon" not in text and other not in page.text, query
            assert "Du själv (Annas surfplatta)" in text, query


# Hostile values for every path parameter and form field of the patient realm: empty, huge, a NUL,
# right-to-left override, a path escape, numbers no column holds, markup.
HOSTILE = ("", "x" * 5000, "\x00", "\u202eevil", "../../etc/passwd", "1e309", "-1", "9" * 40,
           "<script>alert(1)</script>", "NaN", "😀" * 300)  # fmt: skip


def test_hostile_input_on_every_patient_route_is_a_clear_refusal_never_a_500(
    realm: Realm, settings: Settings, base_url: str
) -> None:
    """With a live device and its real CSRF token, every /p/ route and method, fed hostile path values
    and form fields: a 2xx/3xx/4xx answer, never a 500, never the input echoed back as markup, and
    nothing of another patient."""
    patient_routes = [r for r in routes(settings) if isinstance(r, APIRoute) and patient_path(r.path)]
    others = ("Bertil Berg", str(realm.bertil.patient_id), "Bertils telefon")  # Anna's own data is hers
    checked = 0
    with realm.device(base_url, realm.anna_token) as device:
        token = re.search(r'name="csrf-token" content="([^"]*)"', device.get("/p/").text)
        assert token is not None and token.group(1)
        for route in patient_routes:
            names = re.findall(r"\{([a-z_]+)", route.path)
            for method in sorted(route.methods - {"HEAD"}):
                for value in HOSTILE:
                    filled = quote(value, safe="") or "x"
                    path = re.sub(r"\{[a-z_]+(?::[a-z]+)?\}", filled.replace("\\", "\\\\"), route.path)
                    form = {
                        field: value for field in ("body", "message", "reason", "kod", "pin", "sida", "text")
                    }
                    form |= {
                        "csrf": token.group(1),
                        "event_id": value,
                        "message_id": value,
                        "response_id": value,
                    }
                    headers = {CSRF_HEADER: token.group(1)}
                    answer = (
                        device.get(path, params={"sida": value, "kod": value})
                        if method == "GET"
                        else device.request(method, path, data=form, headers=headers)
                    )
                    assert answer.status_code < 500, (
                        method,
                        route.path,
                        names,
                        value[:20],
                        answer.status_code,
                    )
                    assert "<script>alert(1)</script>" not in answer.text, (method, route.path)
                    assert [s for s in others if s in answer.text] == [], (method, route.path)
                    checked += 1
    assert checked >= 100
