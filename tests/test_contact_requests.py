""" "Kontakta mig" (issue 10): the box's button reaches the ward as a contact request with its own
lifecycle (open -> taken by a named clinician -> closed with the answer), escalates through the alert
engine when nobody takes it within the ward's time, and every action is in the access log.

Real Mosquitto, PostgreSQL and ingest service; the care commands through the CLI and the API alike.
"""

from __future__ import annotations

import json
import math
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.contact import contact_request_open_one, contact_request_open_output
from care.enrolment import enrol_patient, ensure_ward
from care.refusals import RefusalCode as C
from care.refusals import Refused
from care.staff import create_staff_user
from core import contract
from core.settings import Settings
from tests.support.dashboard_server import logged_in, running_dashboard
from tests.support.entry_points import hemma_cli, post_as, same_refusal
from tests.support.ingest import running_ingest
from tests.support.mqtt import drop_session, publish_all, subscriber
from tests.support.waiting import wait_until
from tests.support.ward_seed import PASSWORD, seed_two_wards

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
    return hemma_cli(ward.database_url, *args)


def _post(ward: Ward, username: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return post_as(ward.base_url, username, path, body)


_same_refusal = same_refusal


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
    taken = (
        "SELECT state, s.username FROM contact_requests c"
        " JOIN staff_users s ON s.id = c.taken_by ORDER BY c.id"
    )
    assert db.execute(taken).fetchall() == [("taken", "nurse.norr")] * 2
    # A colleague closes one (the nurse's shift may have ended): who took it and who closed it stay apart.
    cli = _hemma(ward, "contact", "close", str(ward.anna), str(by_cli), "--note", "Ringt upp, mår bra",
                 "--by", "dr.lund")  # fmt: skip
    assert (cli.returncode, cli.stdout.strip()) == (0, f"contact request {by_cli} closed by dr.lund"), (
        cli.stderr
    )
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
        assert (
            _hemma(ward, "contact", "take", str(ward.anna), str(request_id), "--by", "nurse.norr").returncode
            == 0
        )
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
        refusal = Refused(
            C.WARD_ACCESS, username="nurse.syd", ward_id="avd-norr", action="take_contact_request"
        )
    else:  # Cecilia's record does not hold Anna's request, whoever may see both
        patient = ward.cecilia
        db.execute(
            "INSERT INTO staff_ward_access (staff_user_id, ward_id)"
            " SELECT id, 'avd-syd' FROM staff_users WHERE username = 'nurse.norr'"
        )
        refusal = Refused(C.NO_CONTACT_REQUEST, patient_id=ward.cecilia, request_id=request_id)
    before = db.execute("SELECT state, taken_by, closed_by FROM contact_requests").fetchall()
    args = ["--note", note] if action == "close" else []
    cli = _hemma(ward, "contact", action, str(patient), str(request_id), *args, "--by", username)
    http = _post(
        ward, username, _path(patient, request_id, action), {"note": note} if action == "close" else {}
    )
    _same_refusal(cli, http, refusal)
    assert db.execute("SELECT state, taken_by, closed_by FROM contact_requests").fetchall() == before


def test_taking_ones_own_request_again_changes_nothing(ward: Ward, db) -> None:  # type: ignore[no-untyped-def]
    request_id = _request(db, ward.anna)
    first = _post(ward, "nurse.norr", _path(ward.anna, request_id, "take"), {})
    again = _post(ward, "nurse.norr", _path(ward.anna, request_id, "take"), {})
    assert first.status_code == again.status_code == 200
    assert db.execute("SELECT count(*) FROM access_log WHERE action = 'take_contact_request'").fetchone() == (
        1,
    )


# --- escalation: the ward's time, through the alert engine ------------------------------------------

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_a_request_nobody_takes_raises_an_alarm_after_the_wards_time_and_taking_it_clears_it(
    database_url: str, unique_id: str
) -> None:
    from care.acting import execute
    from care.contact import take
    from ingest.directory import Enrolment
    from ingest.engine import AlertEngine
    from ingest.writer import AcceptedEvents, BatchWriter

    conn = psycopg.connect(database_url, autocommit=True)
    ward_id = f"ward-{unique_id}"
    ensure_ward(conn, ward_id, "Hemsjukvård")
    conn.execute("UPDATE wards SET escalate_after_minutes = 10 WHERE id = %s", (ward_id,))
    enrolled = enrol_patient(conn, ward_id=ward_id, display_name="Test Patient", gateway_id=f"gw-{unique_id}")
    create_staff_user(conn, username="sara", display_name="Sara", role="nurse", password=PASSWORD,
                      ward_ids=[ward_id])  # fmt: skip
    writer = BatchWriter(conn, AlertEngine())
    batch = contract.decode_kit_events(*press(enrolled.gateway_id, uuid.uuid4(), at=T0))
    enrolment = Enrolment(enrolled.gateway_id, enrolled.patient_id, ward_id)
    writer.commit([], [], [], now=T0, kit_events=[AcceptedEvents(batch, enrolment)])

    def alarm() -> tuple[str, str, str] | None:
        return conn.execute(
            "SELECT state, priority, message FROM alerts WHERE rule = 'contact_request_open'"
        ).fetchone()

    assert writer.tick(now=T0 + timedelta(minutes=9, seconds=59)) == []
    assert alarm() is None  # within the ward's time
    (opened,) = writer.tick(now=T0 + timedelta(minutes=12))
    assert (opened.rule, opened.priority, opened.state) == ("contact_request_open", "medium", "open")
    assert alarm() == ("open", "medium", "Patienten har bett om kontakt för 12 min sedan (knappen)")
    request_id = conn.execute("SELECT id FROM contact_requests").fetchone()[0]  # type: ignore[index]
    execute(conn, take(patient_id=enrolled.patient_id, request_id=request_id, by="sara", origin=None,
                       now=T0 + timedelta(minutes=13)))  # fmt: skip
    assert alarm() is not None and alarm()[0] == "resolved"  # type: ignore[index]  # in the take's transaction
    assert writer.tick(now=T0 + timedelta(minutes=30)) == []  # taken: nothing to raise again
    conn.close()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.just(math.nan), st.floats(T0.timestamp() - 7200, T0.timestamp())),
                          st.sampled_from([60.0, 300.0, 600.0])), min_size=1))  # fmt: skip
def test_the_kernel_agrees_with_its_scalar_twin(rows: list[tuple[float, float]]) -> None:
    patients = tuple(uuid.UUID(int=i + 1) for i in range(len(rows)))
    oldest = np.array([r[0] for r in rows], float)
    after = np.array([r[1] for r in rows], float)
    requests, clears = contact_request_open_output(
        patients, oldest_open_at=oldest, source=("button",) * len(rows), after_s=after, now=T0
    )
    raised = {r.patient_id: r.priority for r in requests}
    cleared = {c.patient_id for c in clears}
    got = [raised.get(p, "clear" if p in cleared else None) for p in patients]
    assert got == [contact_request_open_one(o, a, T0.timestamp()) for o, a in rows]


# --- what staff see: the card, the record, and staff free text as text -----------------------------


def test_the_card_shows_the_request_first_and_the_record_lists_it_with_the_note_as_text(
    ward: Ward,
    db,  # type: ignore[no-untyped-def]
) -> None:
    waiting = _request(db, ward.anna, minutes_ago=3)
    answered = _request(db, ward.anna, minutes_ago=60)
    note = '<script>alert("x")</script> Ringt & lugnat'
    assert _post(ward, "nurse.norr", _path(ward.anna, answered, "close"), {"note": note}).status_code == 200
    with logged_in(ward.base_url, "nurse.norr", PASSWORD) as client:
        page = client.get("/wards/avd-norr").text
        record = client.get(f"/patients/{ward.anna}").text
    cards = page.split('<article class="patient ')[1:]
    assert "contact-waiting" in cards[0] and f'data-patient-id="{ward.anna}"' in cards[0]  # sorted first
    assert f'data-contact-id="{waiting}"' in cards[0] and "Kontakta mig" in cards[0]
    assert "Patienten bad om kontakt" in cards[0] and "(knappen)" in cards[0]
    assert 'class="contact-take-button"' in cards[0]
    assert all("contact-request" not in card for card in cards[1:])
    assert "<script>alert" not in record  # escaped by Jinja's autoescape
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Ringt &amp; lugnat" in record
    assert record.count('class="contact-row contact-') == 2
    assert "Avslutad" in record and "Väntar" in record and "Sara Sjöström" in record
    # Reading the ward and the record is in the access log, as every read of patient data.
    reads = db.execute(
        "SELECT action FROM access_log WHERE action IN ('ward_overview', 'patient_record') ORDER BY id"
    ).fetchall()
    assert ("patient_record",) in reads and ("ward_overview",) in reads


def test_an_admin_sees_the_request_but_is_offered_no_action(ward: Ward, db) -> None:  # type: ignore[no-untyped-def]
    _request(db, ward.anna)
    with logged_in(ward.base_url, "it.admin", PASSWORD) as client:
        page = client.get("/wards/avd-norr").text
    assert "Kontakta mig" in page
    assert "contact-take-button" not in page and "contact-close-form" not in page


# --- in a real Chromium: the request appears live, the nurse takes it and closes it -----------------


def test_the_nurse_sees_the_request_arrive_live_takes_it_and_closes_it(
    browser,
    ward: Ward,
    db,
    database_url: str,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    from ingest.directory import GatewayDirectory
    from ingest.writer import AcceptedEvents, BatchWriter
    from tests.support.dashboard_server import watched_page

    problems: list[str] = []
    context, page = watched_page(browser, problems)
    page.goto(ward.base_url + "/wards/avd-norr")
    page.fill("#username", "nurse.norr")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/wards/avd-norr")
    page.wait_for_function("() => window.hemma && window.hemma.connected && window.hemma.snapshots === 1")
    assert page.locator(".contact-request").count() == 0
    # Ingest's own write path (the transaction, the NOTIFY): the card is pushed, no reload.
    with psycopg.connect(database_url, autocommit=True) as conn:
        enrolment = GatewayDirectory().lookup(conn, {"gw-anna"})["gw-anna"]
        assert enrolment is not None
        batch = contract.decode_kit_events(*press("gw-anna", uuid.uuid4()))
        BatchWriter(conn).commit(
            [], [], [], now=datetime.now(UTC), kit_events=[AcceptedEvents(batch, enrolment)]
        )
    card = page.locator(f'article.patient[data-patient-id="{ward.anna}"]')
    card.locator(".contact-request.contact-open").wait_for(timeout=5000)
    assert page.locator(".patient-name").first.inner_text() == "Anna Andersson"  # sorted to the top
    page.screenshot(path=str(tmp_path / "ward-desktop.png"), full_page=True)
    size = page.viewport_size
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.screenshot(path=str(tmp_path / "ward-phone.png"), full_page=True)
    page.set_viewport_size(size)  # type: ignore[arg-type]
    card.locator("button.contact-take-button").click()
    card.locator(".contact-request.contact-taken").wait_for(timeout=5000)
    assert "Tagen av Sara Sjöström" in card.locator(".contact-taker").inner_text()
    card.locator(".contact-close summary").click()
    card.locator(".contact-note").fill("<b>Ringt upp</b>, mår bra")
    card.locator("button.contact-close-button").click()
    card.locator(".contact-request").wait_for(state="detached", timeout=5000)
    row = db.execute("SELECT state, close_note FROM contact_requests").fetchone()
    assert row == ("closed", "<b>Ringt upp</b>, mår bra")
    assert problems == []
    context.close()
