""" "Kontakta mig" (issue 10): the box's button reaches the ward as a contact request with its own
lifecycle (open -> taken by a named clinician -> closed with the answer), escalates through the alert
engine when nobody takes it within the ward's time, and every action is in the access log.

Real Mosquitto, PostgreSQL and ingest service; the care commands through the CLI and the API alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from care import texts_sv
from care.enrolment import enrol_patient, ensure_ward
from care.refusals import RefusalCode as C
from care.refusals import Refused
from care.staff import create_staff_user
from core import contract
from core.settings import Settings
from dashboard.refusals import HTTP
from tests.support.dashboard_server import logged_in, running_dashboard
from tests.support.ward_seed import PASSWORD, seed_two_wards
from tests.test_dashboard_engine_api import Staff
from tests.support.ingest import running_ingest
from tests.support.mqtt import drop_session, publish_all, subscriber
from tests.support.waiting import wait_until


SECRET = "test-session-secret-contact-requests-01"


def press(gateway_id: str, *event_ids: uuid.UUID, at: datetime | None = None) -> tuple[str, bytes]:
    """A KitEventBatch as the gateway sends it: one contact_request per event id."""
    message = contract.KitEventBatch(
        v=1,
        message_id=uuid.uuid4(),
        gateway_id=gateway_id,
        sent_at=datetime.now(UTC),
        events=tuple(
            contract.KitEvent(event_id=e, kind="contact_request", at=at or datetime.now(UTC), source="button")
            for e in event_ids
        ),
    )
    return contract.events_topic(gateway_id), contract.encode(message)


def _receipts(messages: list) -> list[contract.MessageReceipt]:  # type: ignore[type-arg]
    out: list[contract.MessageReceipt] = []
    for m in messages:
        gateway_id = m.topic.split("/")[3]
        out += contract.decode_receipt(m.topic, bytes(m.payload), gateway_id=gateway_id).messages
    return out


@pytest.fixture
def kit(db, unique_id: str) -> tuple[str, uuid.UUID]:  # type: ignore[no-untyped-def]
    ensure_ward(db, f"ward-{unique_id}", "Testavdelning")
    gateway_id = f"gw-cr-{unique_id}"
    ward = f"ward-{unique_id}"
    enrolled = enrol_patient(db, ward_id=ward, display_name="Oskar Test", gateway_id=gateway_id)
    patient_id = enrolled.patient_id
    return gateway_id, patient_id


@pytest.fixture
def ingest_settings(mqtt_url: str, database_url: str, unique_id: str) -> Iterator[Settings]:
    s = Settings(mqtt_url=mqtt_url, database_url=database_url, ingest_client_id=f"ingest-cr-{unique_id}")
    yield s
    drop_session(mqtt_url, s.ingest_client_id)


# --- ingest: stored once, confirmed by a receipt ---------------------------------------------------


def test_a_press_is_stored_once_and_confirmed_and_an_unenrolled_kit_is_dead_lettered(
    ingest_settings, db, kit, unique_id
) -> None:
    gateway_id, patient_id = kit
    event_id = uuid.uuid4()
    pressed_at = datetime(2020, 1, 1, 12, 0, tzinfo=UTC)  # a Pi whose clock is not set: kept, not judged
    first = press(gateway_id, event_id, at=pressed_at)
    again = press(gateway_id, event_id, at=pressed_at)  # re-sent in a new message: the same press
    stranger = f"gw-nobody-{unique_id}"
    unknown = press(stranger, uuid.uuid4())
    before = datetime.now(UTC)
    with (
        subscriber(ingest_settings.mqtt_url, contract.receipts_topic(gateway_id)) as mine,
        subscriber(ingest_settings.mqtt_url, contract.receipts_topic(stranger)) as theirs,
        running_ingest(ingest_settings) as service,
    ):
        publish_all(ingest_settings.mqtt_url, [first, again, unknown, first])
        got = _receipts(mine.take(1, timeout=15))
        while len(got) < 3:
            got += _receipts(mine.take(1, timeout=15))
        foreign = _receipts(theirs.take(1, timeout=15))
        assert service.metrics["contact_requests_stored"] == 1
    ids = [r.message_id for r in got]
    first_id, again_id = (json.loads(m[1])["message_id"] for m in (first, again))
    assert [str(i) for i in ids] == [first_id, again_id, first_id]
    assert [r.outcome for r in got] == ["stored", "stored", "stored"]
    assert foreign == [
        contract.MessageReceipt(
            message_id=json.loads(unknown[1])["message_id"], outcome="dead_lettered",
            reason="unknown gateway or no enrolled patient",
        )
    ]  # fmt: skip
    rows = db.execute(
        "SELECT patient_id, gateway_id, event_id, source, reason, requested_at, received_at, state, taken_by"
        " FROM contact_requests"
    ).fetchall()
    assert len(rows) == 1
    (patient, gateway, stored_event, source, reason, requested_at, received_at, state, taken_by) = rows[0]
    assert (patient, gateway, stored_event, source, reason) == (
        patient_id,
        gateway_id,
        event_id,
        "button",
        "contact_request",
    )
    assert requested_at == pressed_at and before <= received_at <= datetime.now(UTC)
    assert (state, taken_by) == ("open", None)
    dead = db.execute("SELECT gateway_id, reason, topic FROM dead_letters").fetchall()
    assert dead == [(stranger, "unknown gateway or no enrolled patient", contract.events_topic(stranger))]


def test_an_events_message_that_breaks_the_contract_is_dead_lettered_with_a_receipt(
    ingest_settings, db, kit
) -> None:
    gateway_id, _ = kit
    topic, payload = press(gateway_id, uuid.uuid4())
    bad = json.loads(payload)
    bad["events"][0]["kind"] = "fall_detected"  # not a kind of the contract
    with (
        subscriber(ingest_settings.mqtt_url, contract.receipts_topic(gateway_id)) as mine,
        running_ingest(ingest_settings),
    ):
        publish_all(ingest_settings.mqtt_url, [(topic, json.dumps(bad).encode())])
        (receipt,) = _receipts(mine.take(1, timeout=15))
    assert receipt.outcome == "dead_lettered" and str(receipt.message_id) == bad["message_id"]
    assert (receipt.reason or "").startswith("schema: events.0.kind")
    assert db.execute("SELECT count(*) FROM contact_requests").fetchone() == (0,)
    wait_until(lambda: db.execute("SELECT count(*) FROM dead_letters").fetchone() == (1,))


# --- the care commands: the CLI and the dashboard give the same outcome -----------------------------


def _request(db, patient_id: uuid.UUID, *, minutes_ago: float = 0) -> int:  # type: ignore[no-untyped-def]
    """A contact request as ingest stores it (received `minutes_ago` by the database's clock)."""
    row = db.execute(
        "INSERT INTO contact_requests (patient_id, gateway_id, event_id, source, reason, requested_at,"
        " received_at) SELECT %s, g.id, gen_random_uuid(), 'button', 'contact_request',"
        " now() - make_interval(secs => %s), now() - make_interval(secs => %s)"
        " FROM gateways g WHERE g.patient_id = %s RETURNING id",
        (patient_id, minutes_ago * 60, minutes_ago * 60, patient_id),
    ).fetchone()
    return int(row[0])


@dataclass
class Ward:
    base_url: str
    database_url: str
    anna: uuid.UUID
    cecilia: uuid.UUID  # avd-syd


@pytest.fixture
def ward(database_url: str, db) -> Iterator[Ward]:  # type: ignore[no-untyped-def]
    anna, _bertil, cecilia, _ = seed_two_wards(
        db,
        [
            ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
            ("dr.lund", "Erik Lund", "physician", ["avd-norr"]),
            ("nurse.syd", "Sven Syd", "nurse", ["avd-syd"]),
        ],
    )
    create_staff_user(db, username="it.admin", display_name="Ada Admin", role="admin", password=PASSWORD,
                      ward_ids=["avd-norr"])  # fmt: skip
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield Ward(url, database_url, anna.patient_id, cecilia.patient_id)


def _hemma(ward: Ward, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HEMMA_DATABASE_URL=ward.database_url)
    return subprocess.run(
        [sys.executable, "-m", "hemma.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


def _post(ward: Ward, username: str, path: str, body: dict[str, Any]) -> httpx.Response:
    with logged_in(ward.base_url, username, PASSWORD) as client:
        return Staff(client).post(path, body)


def _same_refusal(cli: subprocess.CompletedProcess[str], http: httpx.Response, refusal: Refused) -> None:
    status, field = HTTP[refusal.code]
    assert (cli.returncode, cli.stderr.strip()) == (2, f"hemma: {refusal}"), cli.stderr
    expected = {"detail": texts_sv.text(refusal.refusal)} | ({"field": field} if status == 422 else {})
    assert (http.status_code, http.json()) == (status, expected), http.text


def _path(patient: uuid.UUID, request_id: int, action: str) -> str:
    return f"/api/patients/{patient}/contact-requests/{request_id}/{action}"


def test_take_and_close_through_the_cli_and_the_api_alike(ward: Ward, db) -> None:  # type: ignore[no-untyped-def]
    by_cli, by_api = _request(db, ward.anna), _request(db, ward.anna)
    cli = _hemma(ward, "contact", "take", str(ward.anna), str(by_cli), "--by", "nurse.norr")
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.startswith(f"contact request {by_cli} taken by nurse.norr at ")
    http = _post(ward, "nurse.norr", _path(ward.anna, by_api, "take"), {})
    assert (http.status_code, http.json()) == (
        200, {"contact_request": {"id": by_api, "state": "taken", "taken_by": "nurse.norr"}}
    )  # fmt: skip
    taken = "SELECT state, s.username FROM contact_requests c JOIN staff_users s ON s.id = c.taken_by ORDER BY c.id"
    assert db.execute(taken).fetchall() == [("taken", "nurse.norr")] * 2
    # A colleague closes one (the nurse's shift may have ended): who took it and who closed it stay apart.
    cli = _hemma(ward, "contact", "close", str(ward.anna), str(by_cli), "--note", "Ringt upp, mår bra",
                 "--by", "dr.lund")  # fmt: skip
    assert (cli.returncode, cli.stdout.strip()) == (0, f"contact request {by_cli} closed by dr.lund"), cli.stderr
    http = _post(ward, "dr.lund", _path(ward.anna, by_api, "close"), {"note": "  Ringt upp, mår bra "})
    assert http.status_code == 200, http.text
    assert http.json()["contact_request"] == {
        "id": by_api, "state": "closed", "taken_by": "nurse.norr", "closed_by": "dr.lund"
    }  # fmt: skip
    rows = db.execute(
        "SELECT c.state, t.username, s.username, c.close_note FROM contact_requests c"
        " JOIN staff_users t ON t.id = c.taken_by JOIN staff_users s ON s.id = c.closed_by ORDER BY c.id"
    ).fetchall()
    assert rows == [("closed", "nurse.norr", "dr.lund", "Ringt upp, mår bra")] * 2
    log = db.execute(
        "SELECT username, action, context, entry_point FROM access_log"
        " WHERE action LIKE %s ORDER BY id", ("%contact_request",)
    ).fetchall()  # fmt: skip
    assert log == [
        ("nurse.norr", "take_contact_request", f"contact_request:{by_cli}", "cli"),
        ("nurse.norr", "take_contact_request", f"contact_request:{by_api}", "dashboard"),
        ("dr.lund", "close_contact_request", f"contact_request:{by_cli}", "cli"),
        ("dr.lund", "close_contact_request", f"contact_request:{by_api}", "dashboard"),
    ]


@pytest.mark.parametrize(
    ("case", "username"),
    [
        ("taken_by_another", "dr.lund"),
        ("closed", "nurse.norr"),
        ("no_note", "nurse.norr"),
        ("admin", "it.admin"),
        ("other_ward", "nurse.syd"),
        ("other_patient", "nurse.norr"),
    ],
)
def test_refusals_are_the_same_from_either_entry_point(ward: Ward, db, case: str, username: str) -> None:  # type: ignore[no-untyped-def]
    request_id = _request(db, ward.anna)
    patient, action, note = ward.anna, "take", ""
    if case == "taken_by_another":
        assert _hemma(ward, "contact", "take", str(ward.anna), str(request_id), "--by", "nurse.norr").returncode == 0
        refusal = Refused(C.CONTACT_REQUEST_TAKEN, request_id=request_id, taken_by="nurse.norr")
    elif case == "closed":
        db.execute("UPDATE contact_requests SET state = 'closed', closed_by = (SELECT id FROM staff_users"
                   " WHERE username = 'dr.lund'), closed_at = now(), close_note = 'x'")  # fmt: skip
        refusal = Refused(C.CONTACT_REQUEST_CLOSED, request_id=request_id)
    elif case == "no_note":
        action, note = "close", "   "
        refusal = Refused(C.CONTACT_NOTE_MISSING)
    elif case == "admin":
        refusal = Refused(C.ROLE, username="it.admin", role="admin", action="take_contact_request")
    elif case == "other_ward":
        refusal = Refused(C.WARD_ACCESS, username="nurse.syd", ward_id="avd-norr", action="take_contact_request")
    else:  # Cecilia's record does not hold Anna's request, whoever may see both
        patient = ward.cecilia
        db.execute("INSERT INTO staff_ward_access (staff_user_id, ward_id) SELECT id, 'avd-syd' FROM staff_users"
                   " WHERE username = 'nurse.norr'")  # fmt: skip
        refusal = Refused(C.NO_CONTACT_REQUEST, patient_id=ward.cecilia, request_id=request_id)
    before = db.execute("SELECT state, taken_by, closed_by FROM contact_requests").fetchall()
    args = ["--note", note] if action == "close" else []
    cli = _hemma(ward, "contact", action, str(patient), str(request_id), *args, "--by", username)
    http = _post(ward, username, _path(patient, request_id, action), {"note": note} if action == "close" else {})
    _same_refusal(cli, http, refusal)
    assert db.execute("SELECT state, taken_by, closed_by FROM contact_requests").fetchall() == before


def test_taking_ones_own_request_again_changes_nothing(ward: Ward, db) -> None:  # type: ignore[no-untyped-def]
    request_id = _request(db, ward.anna)
    first = _post(ward, "nurse.norr", _path(ward.anna, request_id, "take"), {})
    again = _post(ward, "nurse.norr", _path(ward.anna, request_id, "take"), {})
    assert first.status_code == again.status_code == 200
    assert db.execute("SELECT count(*) FROM access_log WHERE action = 'take_contact_request'").fetchone() == (1,)
