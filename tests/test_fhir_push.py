"""FHIR push (issue 12): a system client subscribes with a SMART token and receives signed notification
Bundles at a real local HTTP receiver; the pusher's tick is driven with an explicit clock.

One seeded region (tests.support.fhir_seed) and one dashboard for the module. Alerts open, are
acknowledged and resolved through the alert store (alerts.store, the lifecycle's one writer), as the
engine and staff do. Every notification is verified with the webhook scheme (verify_signature) and
validated with fhir.resources' R4B models and fhirclient's R4 models.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psycopg
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhirclient.models.bundle import Bundle as ClientBundle
from fhirpy import SyncFHIRClient

from alerts import store
from alerts.lifecycle import Acknowledged, Staff, StaffResolved
from alerts.model import AlertRequest, Priority
from care.acting import execute
from care.enrolment import EnrolledPatient
from core.settings import site_zone
from fhir_api import smart, subscriptions
from fhir_api.assertion import sign_assertion
from fhir_api.clients import jwks_from_pem, register_client
from fhir_api.smart import ASSERTION_TYPE
from paging.fhir_push import FhirPusher, PushPolicy
from paging.notify.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, verify_signature
from storage.steps import run
from tests.support.fhir_seed import ALL_READ, Region, ec_key, fhir_dashboard, seed_region
from tests.support.waiting import wait_until

SECRET = "a-receivers-shared-secret-0123456789abcdef"
LOINC_WEIGHT = "http://loinc.org|29463-7"
PUSH_SCOPES = [*ALL_READ, "system/Subscription.cruds"]
POLICY = PushPolicy(max_failures=3, base_delay_s=30, max_delay_s=300, timeout_s=0.5, settle_s=1.0)


# --- a receiver ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def bundle(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


class Receiver:
    """A journal system's webhook endpoint on 127.0.0.1: records POSTs per path and answers from a
    per-path script (a status, or STALL: accept, then answer only when released)."""

    STALL = -1

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: dict[str, list[int]] = {}
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                planned = receiver.script.get(self.path, [])
                status = planned.pop(0) if planned else 200
                if status == Receiver.STALL:
                    receiver.release.wait(10)
                    status = 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


# --- the module's region -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def conn(module_db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(module_db_url, autocommit=True) as c:
        yield c


@dataclass
class Clients:
    journal_key: bytes
    kommun_key: bytes


@pytest.fixture(scope="module")
def region(conn: psycopg.Connection[Any]) -> Region:
    region = seed_region(conn, days=1)
    return region


@pytest.fixture(scope="module")
def clients(conn: psycopg.Connection[Any], region: Region) -> Clients:
    kommun_key, kommun_public = ec_key()
    for client_id, provider, public, wards in (
        ("journal", "region", region.journal_public, ["avd-norr"]),
        ("kommun", "kommunen", kommun_public, []),
    ):
        execute(conn, register_client(client_id=client_id, name=client_id, provider_id=provider,
                                      jwks=jwks_from_pem(public), scopes=PUSH_SCOPES, wards=wards,
                                      origin=None))  # fmt: skip
    return Clients(region.journal_key, kommun_key)


@pytest.fixture(scope="module")
def base(module_db_url: str, clients: Clients) -> Iterator[str]:
    with fhir_dashboard(module_db_url) as url:
        yield url + "/fhir"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def pusher(module_db_url: str, base: str, conn: psycopg.Connection[Any]) -> Iterator[FhirPusher]:
    with FhirPusher(module_db_url, base_url=base, zone=site_zone("Europe/Stockholm"), policy=POLICY) as p:
        yield p
    # Each test's subscriptions end with it: the next test's ticks push only its own.
    conn.execute("UPDATE fhir_subscriptions SET status = 'off'")


def token(base: str, client: str, key: bytes, scope: str | None = None) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": sign_assertion(client, key, f"{base}/auth/token"),
    }
    if scope:
        form["scope"] = scope
    answer = httpx.post(f"{base}/auth/token", data=form, timeout=10)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def subscribe(base: str, bearer: str, criteria: str, endpoint: str) -> str:
    """POST /fhir/Subscription with fhirpy, as a journal system would; the new id."""
    client = SyncFHIRClient(base, authorization=f"Bearer {bearer}")
    body = subscriptions.request_body(criteria, endpoint, SECRET, "Larm till journalen")
    resource = client.resource("Subscription", **{k: v for k, v in body.items() if k != "resourceType"})
    resource.save()
    assert resource["status"] == "active" and resource["channel"]["endpoint"] == endpoint
    assert "extension" not in resource["channel"]  # the secret is never shown back
    return str(resource.id)


def later(seconds: float = 2.0) -> datetime:
    """The tick's clock: past the settle time of what the test just wrote."""
    return datetime.now(UTC) + timedelta(seconds=seconds)


def open_alert(conn: psycopg.Connection[Any], patient: EnrolledPatient, rule: str = "spo2_low") -> int:
    """An alert as the engine opens it (alerts.store.apply, no hold)."""
    request = AlertRequest(patient.patient_id, rule, "spo2", Priority.HIGH, "SpO₂ 84 % under gränsen 88 %",
                           84.0, 88.0, datetime.now(UTC), hold=timedelta(0))  # fmt: skip
    with conn.transaction():
        changes = store.apply(
            conn, [request], [], {patient.patient_id: patient.ward_id}, now=datetime.now(UTC)
        )
    return int(changes[0].alert_id)


def staff(conn: psycopg.Connection[Any]) -> Staff:
    row = conn.execute("SELECT id FROM staff_users WHERE username = 'sara'").fetchone()
    assert row is not None
    return Staff(int(row[0]), "sara")


def verified(request: Received, now: datetime) -> dict[str, Any]:
    """The notification checked as a receiver must: signature, R4B and fhirclient models."""
    verify_signature(SECRET, request.headers[SIGNATURE_HEADER], request.body, now=now)
    assert request.headers["Content-Type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate_json(request.body)
    assert bundle.type == "history" and bundle.id == request.headers[DELIVERY_HEADER]
    ClientBundle(json.loads(request.body))  # fhirclient's R4 models, strict
    return request.bundle()


def resources_of(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    status, *rest = bundle["entry"]
    assert status["resource"]["resourceType"] == "Parameters"
    return [e["resource"] for e in rest]


def notify_rows(
    conn: psycopg.Connection[Any], client: str, patient: EnrolledPatient
) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT entry_point, partner_grant_id, context FROM access_log WHERE action = 'fhir_notify'"
        " AND system_client_id = %s AND patient_id = %s ORDER BY id",
        (client, patient.patient_id),
    ).fetchall()


# --- the tests -----------------------------------------------------------------------------------


def test_a_journal_receives_an_alert_its_acknowledgement_and_its_end(
    conn: psycopg.Connection[Any], region: Region, clients: Clients, base: str, receiver: Receiver,
    pusher: FhirPusher,
) -> None:  # fmt: skip
    bearer = token(base, "journal", clients.journal_key)
    sub = subscribe(base, bearer, "Flag?status=active", receiver.url + "/journal/flags")
    assert pusher.tick(later()) == []  # the seeded alerts are older than the subscription

    alert = open_alert(conn, region.bertil)
    now = later()
    [pushed] = pusher.tick(now)
    assert pushed.ok and pushed.events == 1
    [first] = receiver.at("/journal/flags")
    bundle = verified(first, now)
    [flag] = resources_of(bundle)
    assert (flag["resourceType"], flag["id"], flag["status"]) == ("Flag", str(alert), "active")
    assert flag["subject"]["reference"] == f"Patient/{region.bertil.patient_id}"
    params = {p["name"]: p for p in bundle["entry"][0]["resource"]["parameter"]}
    assert params["subscription"]["valueReference"]["reference"] == f"{base}/Subscription/{sub}"
    assert params["events-since-subscription-start"]["valueString"] == "1"
    assert bundle["entry"][1]["fullUrl"] == f"{base}/Flag/{alert}"

    with conn.transaction():
        run(conn, store.act(alert, Acknowledged(staff(conn)), now=datetime.now(UTC)))
    now = later()
    assert [p.events for p in pusher.tick(now)] == [1]
    [acknowledged] = resources_of(verified(receiver.at("/journal/flags")[1], now))
    assert acknowledged["id"] == str(alert) and acknowledged["status"] == "active"
    assert acknowledged["meta"]["lastUpdated"] > flag["meta"]["lastUpdated"]

    with conn.transaction():
        run(conn, store.act(alert, StaffResolved(staff(conn), "Mätfel"), now=datetime.now(UTC)))
    now = later()
    pusher.tick(now)
    ended = verified(receiver.at("/journal/flags")[2], now)
    [resolved] = resources_of(ended)
    # `status=active` follows the alert to its end (fhir_api.subscriptions): the journal learns of it.
    assert resolved["status"] == "inactive" and "end" in resolved["period"]
    assert ended["entry"][0]["resource"]["parameter"][3]["valueString"] == "3"

    assert pusher.tick(later()) == []  # nothing new, nothing doubled
    assert len(receiver.at("/journal/flags")) == 3
    assert len({r.headers[DELIVERY_HEADER] for r in receiver.at("/journal/flags")}) == 3
    rows = notify_rows(conn, "journal", region.bertil)
    assert len(rows) == 3 and {(r[0], r[1]) for r in rows} == {("fhir", None)}


def test_a_receiver_that_is_down_gets_the_same_delivery_later_once(
    conn: psycopg.Connection[Any], region: Region, clients: Clients, base: str, receiver: Receiver,
    pusher: FhirPusher,
) -> None:  # fmt: skip
    bearer = token(base, "journal", clients.journal_key)
    sub = subscribe(base, bearer, "Flag", receiver.url + "/journal/down")
    receiver.script["/journal/down"] = [500, 503]
    alert = open_alert(conn, region.anna, rule="down")
    now = later()

    [failed] = pusher.tick(now)
    assert not failed.ok and failed.detail.startswith("HTTP 500")
    state = conn.execute(
        "SELECT status, failures, last_error, next_attempt_at FROM fhir_subscriptions WHERE id = %s", (sub,)
    ).fetchone()
    assert state is not None and state[:3] == ("active", 1, "HTTP 500 Internal Server Error")
    assert state[3] == now + timedelta(seconds=30)
    client = httpx.get(
        f"{base}/Subscription/{sub}", headers={"Authorization": f"Bearer {bearer}"}, timeout=10
    )
    assert client.json()["error"] == "HTTP 500 Internal Server Error"  # the client sees why

    assert pusher.tick(now + timedelta(seconds=10)) == []  # backing off
    assert not pusher.tick(now + timedelta(seconds=31))[0].ok  # 503: the second back-off is 60 s
    [retried] = pusher.tick(now + timedelta(seconds=92))
    assert (retried.ok, retried.attempt, retried.events) == (True, 3, 1)
    down = receiver.at("/journal/down")
    assert len(down) == 3 and len({r.headers[DELIVERY_HEADER] for r in down}) == 1  # one delivery
    assert len({json.loads(r.body)["id"] for r in down}) == 1
    [flag] = resources_of(verified(down[2], now + timedelta(seconds=92)))
    assert flag["id"] == str(alert)

    # A change while a delivery waits for its retry: the waiting one no longer holds the alert (it
    # changed again), so the next delivery carries the alert as it is now; nothing is sent twice.
    receiver.script["/journal/down"] = [500]
    later_now = later(200)
    with conn.transaction():
        run(conn, store.act(alert, Acknowledged(staff(conn)), now=datetime.now(UTC)))
    assert not pusher.tick(later_now)[0].ok
    with conn.transaction():
        run(conn, store.act(alert, StaffResolved(staff(conn), "Klart"), now=datetime.now(UTC)))
    [after] = pusher.tick(later(300))
    assert after.ok and after.attempt == 1
    down = receiver.at("/journal/down")
    assert len(down) == 5 and down[3].headers[DELIVERY_HEADER] != down[4].headers[DELIVERY_HEADER]
    assert [f["status"] for f in resources_of(down[4].bundle())] == ["inactive"]
    attempts = conn.execute(
        "SELECT attempt, ok FROM fhir_notification_attempts WHERE subscription_id = %s ORDER BY id", (sub,)
    ).fetchall()
    assert attempts == [(1, False), (2, False), (3, True), (1, False), (1, True)]
    # One access-log row per delivery, not per attempt: three deliveries showed Anna.
    assert len(notify_rows(conn, "journal", region.anna)) == 3


def test_a_slow_receiver_times_out_and_too_many_failures_wait_for_the_operator(
    conn: psycopg.Connection[Any], region: Region, clients: Clients, base: str, receiver: Receiver,
    pusher: FhirPusher, module_db_url: str,
) -> None:  # fmt: skip
    bearer = token(base, "journal", clients.journal_key)
    sub = subscribe(base, bearer, "Flag", receiver.url + "/journal/slow")
    receiver.script["/journal/slow"] = [Receiver.STALL, 500, 500]
    open_alert(conn, region.anna, rule="slow")
    now = later()
    [slow] = pusher.tick(now)
    receiver.release.set()
    assert not slow.ok and slow.detail == "no answer within 0.5 s"
    assert not pusher.tick(now + timedelta(seconds=30))[0].ok
    assert not pusher.tick(now + timedelta(seconds=90))[0].ok  # the third failure in a row
    status = conn.execute("SELECT status FROM fhir_subscriptions WHERE id = %s", (sub,)).fetchone()
    assert status == ("error",)
    assert pusher.tick(now + timedelta(hours=1)) == []  # in error: nothing is sent

    resumed = hemma(module_db_url, "fhir", "subscription", "on", sub)
    assert resumed.returncode == 0, resumed.stderr
    [delivered] = pusher.tick(now + timedelta(hours=1))
    assert delivered.ok and len(receiver.at("/journal/slow")) == 4
    listed = hemma(module_db_url, "fhir", "subscription", "list", "--client", "journal")
    assert f"{sub}\tjournal\tactive\tFlag\t" in listed.stdout


def test_a_patient_out_of_reach_is_never_pushed(
    conn: psycopg.Connection[Any], region: Region, clients: Clients, base: str, receiver: Receiver,
    pusher: FhirPusher,
) -> None:  # fmt: skip
    journal = subscribe(base, token(base, "journal", clients.journal_key), "Flag", receiver.url + "/j/reach")
    kommun = subscribe(base, token(base, "kommun", clients.kommun_key), "Flag", receiver.url + "/k/reach")
    ours = open_alert(conn, region.agnes, rule="reach")  # avd-norr: the journal's
    open_alert(conn, region.cecilia, rule="reach")  # avd-syd: nobody's
    granted = open_alert(conn, region.dora, rule="reach")  # the municipality's grant in force
    open_alert(conn, region.frida, rule="reach")  # a grant that ended yesterday
    open_alert(conn, region.gustav, rule="reach")  # a revoked grant
    now = later()
    assert {(p.subscription_id, p.events) for p in pusher.tick(now)} == {
        (uuid.UUID(journal), 1), (uuid.UUID(kommun), 1),
    }  # fmt: skip
    assert [f["id"] for f in resources_of(verified(receiver.at("/j/reach")[0], now))] == [str(ours)]
    assert [f["id"] for f in resources_of(verified(receiver.at("/k/reach")[0], now))] == [str(granted)]
    assert [r[1] for r in notify_rows(conn, "kommun", region.dora)] == [region.dora_grant]
    for patient in (region.cecilia, region.frida, region.gustav):
        assert notify_rows(conn, "kommun", patient) == notify_rows(conn, "journal", patient) == []

    # The grant ends: Dora's next change is not pushed to the municipality.
    conn.execute("UPDATE partner_grants SET valid_until = now() WHERE id = %s", (region.dora_grant,))
    with conn.transaction():
        run(conn, store.act(granted, Acknowledged(staff(conn)), now=datetime.now(UTC)))
    assert pusher.tick(later()) == []
    assert len(receiver.at("/k/reach")) == 1


def test_an_observation_subscription_by_loinc_code(
    conn: psycopg.Connection[Any], region: Region, clients: Clients, base: str, receiver: Receiver,
    pusher: FhirPusher,
) -> None:  # fmt: skip
    bearer = token(base, "journal", clients.journal_key)
    subscribe(base, bearer, f"Observation?code={LOINC_WEIGHT}", receiver.url + "/journal/weight")
    for vital, value, unit in (("body_weight", 82.4, "kg"), ("spo2", 95.0, "%")):
        conn.execute(
            "INSERT INTO observations (time, patient_id, vital, value, unit, quality, measurement_id,"
            " gateway_id, device_id, characteristic, received_at) VALUES (now(), %s, %s, %s, %s, '{}',"
            " gen_random_uuid(), %s, 'AA:BB:CC:00:00:01', '2A9D', now())",
            (region.bertil.patient_id, vital, value, unit, region.bertil.gateway_id),
        )
    now = later()
    [pushed] = pusher.tick(now)
    [weight] = resources_of(verified(receiver.at("/journal/weight")[0], now))
    assert weight["resourceType"] == "Observation"
    loinc = weight["code"]["coding"][0]
    assert (loinc["system"], loinc["code"]) == ("http://loinc.org", "29463-7")
    assert weight["valueQuantity"]["value"] == 82.4 and weight["valueQuantity"]["code"] == "kg"
    assert pushed.events == 1


def test_subscriptions_are_checked_and_each_client_sees_its_own(
    conn: psycopg.Connection[Any], region: Region, clients: Clients, base: str, receiver: Receiver,
    pusher: FhirPusher,
) -> None:  # fmt: skip
    journal = token(base, "journal", clients.journal_key)
    headers = {"Authorization": f"Bearer {journal}", "Content-Type": "application/fhir+json"}

    def post(criteria: str = "Flag", endpoint: str = receiver.url + "/x", **change: Any) -> httpx.Response:
        body = subscriptions.request_body(criteria, endpoint, SECRET, "Test") | change
        return httpx.post(f"{base}/Subscription", headers=headers, content=json.dumps(body), timeout=10)

    for refused in (
        post("Patient?identifier=194803151234"),  # not a type Hemma pushes
        post("Flag?status=whatever"),  # the search parser's own refusal
        post("Flag?_count=5"),
        post("Observation?colour=red"),
        post(endpoint="http://journal.example/hook"),  # http leaves the machine
        post(endpoint="ftp://127.0.0.1/x"),
        post(channel={"type": "rest-hook", "endpoint": receiver.url, "payload": "application/fhir+json"}),
        post(channel={"type": "email", "endpoint": "mailto:a@b.se", "payload": "application/fhir+json"}),
        post(status="off"),
        post(resourceType="Flag"),
        httpx.post(f"{base}/Subscription", headers=headers, content=b"{not json", timeout=10),
    ):
        assert refused.status_code == 400, refused.text
        assert refused.json()["resourceType"] == "OperationOutcome"
    no_scope = token(base, "journal", clients.journal_key, scope="system/Flag.rs system/Subscription.rs")
    forbidden = httpx.post(
        f"{base}/Subscription", headers={**headers, "Authorization": f"Bearer {no_scope}"},
        content=json.dumps(subscriptions.request_body("Flag", receiver.url, SECRET, "x")), timeout=10,
    )  # fmt: skip
    assert forbidden.status_code == 403

    created = post()
    assert created.status_code == 201 and created.headers["Location"].startswith(f"{base}/Subscription/")
    sub = created.json()["id"]
    kommun = {"Authorization": f"Bearer {token(base, 'kommun', clients.kommun_key)}"}
    assert httpx.get(f"{base}/Subscription/{sub}", headers=kommun, timeout=10).status_code == 404
    assert httpx.delete(f"{base}/Subscription/{sub}", headers=kommun, timeout=10).status_code == 404
    listed = httpx.get(f"{base}/Subscription?status=active", headers=headers, timeout=10).json()
    assert [e["resource"]["id"] for e in listed["entry"]] == [sub]
    assert httpx.get(f"{base}/Subscription?criteria=Flag", headers=headers, timeout=10).status_code == 400
    assert "entry" not in httpx.get(f"{base}/Subscription?status=active", headers=kommun, timeout=10).json()

    assert httpx.delete(f"{base}/Subscription/{sub}", headers=headers, timeout=10).status_code == 204
    assert httpx.get(f"{base}/Subscription/{sub}", headers=headers, timeout=10).json()["status"] == "off"
    open_alert(conn, region.bertil, rule="after_off")
    assert pusher.tick(later()) == []
    assert receiver.at("/x") == []


def test_subscription_scopes_are_the_only_writable_ones() -> None:
    assert smart.parse_scope("system/Subscription.write").permissions == frozenset("cud")
    assert smart.scope_text(smart.parse_scope("system/Subscription.cruds")) == "system/Subscription.cruds"
    for refused in ("system/Patient.write", "system/*.write", "system/*.*", "system/Flag.c"):
        with pytest.raises(smart.OAuthError):
            smart.parse_scope(refused)


def test_the_operator_adds_lists_and_ends_a_subscription(
    module_db_url: str, clients: Clients, receiver: Receiver, pusher: FhirPusher
) -> None:
    added = hemma(module_db_url, "fhir", "subscription", "add", "--client", "kommun", "--criteria",
                  "Encounter?status=in-progress", "--endpoint", receiver.url + "/k/stays")  # fmt: skip
    assert added.returncode == 0, added.stderr
    sub = added.stdout.split()[1]
    assert "signing secret (shown once): " in added.stdout
    refused = hemma(module_db_url, "fhir", "subscription", "add", "--client", "kommun", "--criteria",
                    "CarePlan", "--endpoint", receiver.url)  # fmt: skip
    assert refused.returncode == 2 and "Flag, Observation och Encounter" in refused.stderr
    assert hemma(module_db_url, "fhir", "subscription", "off", sub).returncode == 0
    listed = hemma(module_db_url, "fhir", "subscription", "list")
    assert f"{sub}\tkommun\toff\tEncounter?status=in-progress" in listed.stdout
    assert hemma(module_db_url, "fhir", "subscription", "off", str(uuid.uuid4())).returncode == 2


def hemma(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HEMMA_DATABASE_URL=db_url)
    return subprocess.run([sys.executable, "-m", "hemma.cli", *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


def test_hemma_escalate_pushes_on_its_own_thread(
    conn: psycopg.Connection[Any], region: Region, clients: Clients, base: str, receiver: Receiver,
    module_db_url: str, pusher: FhirPusher,
) -> None:  # fmt: skip
    """The loop where the demo and deploy run it: `hemma escalate` (no paging channel needed)."""
    request = AlertRequest(region.bertil.patient_id, "service", None, Priority.MEDIUM, "Testlarm", None,
                           None, datetime.now(UTC), hold=timedelta(0))  # fmt: skip
    with conn.transaction():
        [opened] = store.apply(conn, [request], [], {region.bertil.patient_id: "avd-norr"}, now=later(-30))
    criteria = f"Flag?_id={opened.alert_id}"
    sub = subscribe(base, token(base, "journal", clients.journal_key), criteria, receiver.url + "/j/service")
    # The service's clock is the wall clock, with its settle time: the subscription is set a minute
    # back (and the alert half a minute) so that its first tick already sends.
    conn.execute(
        "UPDATE fhir_subscriptions SET cursor_at = now() - interval '1 minute' WHERE id = %s", (sub,)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEMMA_")}
    env |= {"HEMMA_DATABASE_URL": module_db_url, "HEMMA_DASHBOARD_URL": base.removesuffix("/fhir"),
            "HEMMA_FHIR_PUSH_INTERVAL_S": "0.2"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "hemma.cli", "escalate", "--allow-no-channel"], env=env, stderr=subprocess.PIPE
    )
    try:
        wait_until(lambda: receiver.at("/j/service") or proc.poll() is not None, what="a notification")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr.decode()
    [notified] = receiver.at("/j/service")
    bundle = verified(notified, datetime.now(UTC))
    assert [(f["resourceType"], f["code"]["text"]) for f in resources_of(bundle)] == [("Flag", "Testlarm")]
    assert b"Bertil" not in stderr  # no patient in the service's log
