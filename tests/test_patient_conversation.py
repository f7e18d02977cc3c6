"""The patient's voice to the team (issue 10): "Kontakta mig" from the app with its state in words,
two-way messages with receipts, and the agreed self-care instruction shown by the same alert that
reaches the nurse.

Real PostgreSQL and a real dashboard; the patient's and the relative's devices hold a token whose
digest is in `patient_devices`, as enrolment leaves it, and browse as the app's browser does (forms
with the device's CSRF field, the device cookie).
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import httpx
import psycopg
import pytest

from care.patient_access import PatientViewer, digest, new_secret
from care.permissions import Holder
from core.settings import Settings
from dashboard.patient_realm import DEVICE_COOKIE
from tests.support.dashboard_server import logged_in, running_dashboard
from tests.support.entry_points import post_as
from tests.support.ward_seed import PASSWORD, seed_two_wards

SECRET = "test-session-secret-patient-conversation"
STAFF = [
    ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
    ("dr.lund", "Erik Lund", "physician", ["avd-norr"]),
    ("it.admin", "Ada Admin", "admin", ["avd-norr"]),
]
OPEN_WORDS = "Ditt meddelande har kommit fram. En sjuksköterska tittar på det så snart hon eller han kan."


def enrol_device(db: psycopg.Connection, patient_id: uuid.UUID, holder: str, label: str, by: int) -> int:
    """A device as enrolment leaves it: the token's digest stored, the token held by the test."""
    token = new_secret()
    consent = None if holder == "patient" else "Patienten samtyckte muntligt vid hembesök"
    row = db.execute(
        "INSERT INTO patient_devices (patient_id, holder, label, consent_note, token_sha256, enrolled_at,"
        " created_by) VALUES (%s, %s, %s, %s, %s, now(), %s) RETURNING id",
        (patient_id, holder, label, consent, digest(token), by),
    ).fetchone()
    assert row is not None
    TOKENS[int(row[0])] = token
    return int(row[0])


TOKENS: dict[int, str] = {}


class App:
    """The patient app's browser: the device cookie, and each form's hidden fields as the page has them."""

    def __init__(self, base_url: str, device_id: int) -> None:
        self.device_id = device_id
        self.client = httpx.Client(base_url=base_url, cookies={DEVICE_COOKIE: TOKENS[device_id]}, timeout=10)

    def page(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        return response.text

    def form(self, path: str) -> dict[str, str]:
        html = self.page(path)
        return dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', html))

    def contact(self, reason: str | None, message: str | None = None, **extra: str) -> httpx.Response:
        data = self.form("/p/kontakt") | extra
        data |= {"reason": reason} if reason is not None else {}
        data |= {"message": message} if message is not None else {}
        return self.client.post("/p/kontakt", data=data)

    def write(self, body: str, **extra: str) -> httpx.Response:
        return self.client.post("/p/meddelanden", data=self.form("/p/meddelanden") | {"body": body} | extra)

    def state(self) -> str:
        return words(self.page("/p/fragment/kontakt"))

    def thread(self) -> str:
        return words(self.page("/p/fragment/meddelanden"))


def words(html: str) -> str:
    """The text a page reads as: tags out, entities decoded, whitespace folded."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


@dataclass
class World:
    base_url: str
    database_url: str
    anna: uuid.UUID
    ward_id: str
    nurse_id: int
    patient: App
    relative: App

    def staff_post(self, username: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return post_as(self.base_url, username, path, body)

    def staff_page(self, username: str, path: str) -> str:
        with logged_in(self.base_url, username, PASSWORD) as client:
            response = client.get(path)
        assert response.status_code == 200, response.text[:300]
        return response.text


@pytest.fixture
def world(database_url: str, db: psycopg.Connection) -> Iterator[World]:
    anna, _bertil, _cecilia, ids = seed_two_wards(db, STAFF)
    mine = enrol_device(db, anna.patient_id, "patient", "Annas surfplatta", ids[0])
    eva = enrol_device(db, anna.patient_id, "relative", "Eva, dotter", ids[0])
    settings = Settings(database_url=database_url, session_secret=SECRET, patient_poll_seconds=1)
    with running_dashboard(settings) as url:
        patient, relative = App(url, mine), App(url, eva)
        yield World(url, database_url, anna.patient_id, "avd-norr", ids[0], patient, relative)
        patient.client.close()
        relative.client.close()


def _first_card(page: str) -> str:
    return page.split('<article class="patient ')[1]


# --- Kontakta mig from the app ------------------------------------------------------------------------


def test_a_request_from_the_app_is_stored_once_per_form_validated_and_rate_limited(
    world: World, db: psycopg.Connection
) -> None:
    form = world.patient.form("/p/kontakt")
    sent = world.patient.client.post(
        "/p/kontakt", data=form | {"reason": "feeling_worse", "message": "  Ont i bröstet sedan i morse \r\n"}
    )
    assert (sent.status_code, sent.headers["location"]) == (303, "/p/kontakt?skickat=1#skickat")
    again = world.patient.client.post("/p/kontakt", data=form | {"reason": "feeling_worse"})  # a double tap
    assert again.status_code == 303
    rows = db.execute(
        "SELECT source, gateway_id, patient_device_id, reason, message, state, received_at = requested_at"
        " FROM contact_requests"
    ).fetchall()
    assert rows == [
        ("app", None, world.patient.device_id, "feeling_worse", "Ont i bröstet sedan i morse", "open", True)
    ]
    (request_id,) = db.execute("SELECT id FROM contact_requests").fetchone()  # type: ignore[misc]
    log = db.execute(
        "SELECT username, action, entry_point, patient_device_id, staff_user_id FROM access_log"
        " WHERE context = %s",
        (f"contact_request:{request_id}",),
    ).fetchall()
    assert log == [("(patient app)", "patient_request_contact", "patient_app", world.patient.device_id, None)]
    assert "Skickat. Vi har fått ditt meddelande." in world.patient.page("/p/kontakt?skickat=1")
    assert OPEN_WORDS in world.patient.state()

    # What the form must carry: a reason it offers, a line of at most 500 clean characters, its key, CSRF.
    for reason, message, extra, status, text in [
        (None, "Hjälp", {}, 422, "Välj vad det gäller."),
        ("urgent", None, {}, 422, "Välj vad det gäller."),
        ("other", "x" * 501, {}, 422, "Texten är för lång. Högst 500 tecken."),
        ("other", "Hej\x07", {}, 422, "Texten har tecken som inte går att skicka."),
        ("other", "Hej\u202e", {}, 422, "Texten har tecken som inte går att skicka."),
        ("other", None, {"event_id": "inte-ett-id"}, 422, "Sidan är för gammal."),
        ("other", None, {"csrf": "fel"}, 403, "Sidan är för gammal."),
    ]:
        refused = world.patient.contact(reason, message, **extra)
        assert refused.status_code == status, (reason, message, extra)
        assert text in unescape(refused.text), (reason, refused.text[:500])
    kept = world.patient.contact(None, "Mitt skrivna <b>ord</b>")
    assert "Mitt skrivna &lt;b&gt;ord&lt;/b&gt;</textarea>" in kept.text  # what they wrote is kept, as text

    # At most five from the app in ten minutes; the sixth is told they have arrived, and none is lost.
    for reason in ("treatment_question", "technical", "other", "other"):
        assert world.patient.contact(reason).status_code == 303
    refused = world.patient.contact("feeling_worse", "En gång till")
    assert refused.status_code == 429
    assert "Vi har fått ditt meddelande. Vänta en stund innan du skickar igen." in unescape(refused.text)
    assert db.execute("SELECT count(*) FROM contact_requests").fetchone() == (5,)

    # The ward sees why, and the line as the patient wrote it, on the card and in the header.
    page = world.staff_page("nurse.norr", "/wards/avd-norr")
    card = _first_card(page)
    assert f'data-patient-id="{world.anna}"' in card and "contact-waiting" in card
    assert "<strong>Mår sämre</strong>" in card and "Ont i bröstet sedan i morse" in card
    assert "(appen)" in card and "5 förfrågningar väntar" in card
    assert '<span class="chip chip-contact" id="count-contact">5 kontaktförfrågningar</span>' in page


def test_the_nurse_takes_it_and_the_patients_screen_says_who_calls_and_within_how_long(
    world: World, db: psycopg.Connection
) -> None:
    assert world.patient.contact("treatment_question", "Ska jag ta två tabletter?").status_code == 303
    assert world.relative.contact("technical").status_code == 303  # a relative may ask too
    first, second = (r[0] for r in db.execute("SELECT id FROM contact_requests ORDER BY id").fetchall())
    assert db.execute(
        "SELECT patient_device_id FROM contact_requests WHERE id = %s", (second,)
    ).fetchone() == (world.relative.device_id,)
    path = f"/api/patients/{world.anna}/contact-requests/{{}}/take"
    for within in (0, 1441, "30", True, 2.5):
        refused = world.staff_post("nurse.norr", path.format(first), {"call_within_minutes": within})
        assert refused.status_code == 422, within
        assert refused.json() == {"detail": "Ange mellan 1 och 1440 minuter", "field": "call_within_minutes"}
    taken = world.staff_post("nurse.norr", path.format(first), {"call_within_minutes": 30})
    assert taken.status_code == 200, taken.text
    assert "Sara Sjöström, sjuksköterska, har sett ditt meddelande och ringer dig inom 30 minuter." in (
        world.patient.state()
    )
    # Without a time the ward's own escalation time is promised (5 minutes by default).
    assert world.staff_post("dr.lund", path.format(second), {}).status_code == 200
    state = world.relative.state()
    assert "Erik Lund, läkare, har sett ditt meddelande och ringer dig inom 5 minuter." in state
    assert db.execute("SELECT call_within_minutes FROM contact_requests ORDER BY id").fetchall() == [
        (30,),
        (5,),
    ]

    # Closed: the patient reads who answered, never the team's note.
    close = f"/api/patients/{world.anna}/contact-requests/{first}/close"
    assert (
        world.staff_post("nurse.norr", close, {"note": "Intern: dosering oklar, ring läkare"}).status_code
        == 200
    )
    state = world.patient.state()
    assert "Klart. Sara Sjöström, sjuksköterska, har svarat." in state
    assert "Intern" not in state and "Intern" not in world.patient.page("/p/kontakt")

    record = world.staff_page("nurse.norr", f"/patients/{world.anna}")
    assert "Fråga om behandlingen" in record and "Ska jag ta två tabletter?" in record
    assert "ringer inom 30 min" in record


def test_an_open_app_request_escalates_after_the_wards_time_like_the_buttons(database_url: str) -> None:
    from care.acting import execute
    from care.contact import request_from_app
    from ingest.engine import AlertEngine
    from ingest.writer import BatchWriter

    with psycopg.connect(database_url, autocommit=True) as conn:
        anna, _, _, ids = seed_two_wards(conn, STAFF)
        conn.execute("UPDATE wards SET escalate_after_minutes = 10 WHERE id = 'avd-norr'")
        device = enrol_device(conn, anna.patient_id, "patient", "Annas telefon", ids[0])
        viewer = PatientViewer(device, anna.patient_id, "avd-norr", Holder.PATIENT, "Annas telefon")
        done = execute(conn, request_from_app(viewer, reason="feeling_worse", message=None,
                                              event_id=uuid.uuid4(), client_address=None))  # fmt: skip
        writer = BatchWriter(conn, AlertEngine())
        assert writer.tick(now=done.received_at + timedelta(minutes=9, seconds=59)) == []
        (opened,) = writer.tick(now=done.received_at + timedelta(minutes=12))
        assert (opened.rule, opened.priority, opened.state) == ("contact_request_open", "medium", "open")
        row = conn.execute("SELECT message FROM alerts WHERE rule = 'contact_request_open'").fetchone()
        assert row == ("Patienten har bett om kontakt för 12 min sedan (appen)",)


# --- messages --------------------------------------------------------------------------------------------


def _unread_chip(page: str) -> str | None:
    found = re.search(r'<span class="chip chip-messages" id="count-messages"( hidden)?>([^<]*)</span>', page)
    assert found is not None
    return None if found.group(1) else found.group(2)


def test_a_message_round_trip_with_receipts_on_both_sides(world: World, db: psycopg.Connection) -> None:
    form = world.patient.form("/p/meddelanden")
    sent = world.patient.client.post("/p/meddelanden", data=form | {"body": "Jag sover dåligt.\r\nHjälp?"})
    assert (sent.status_code, sent.headers["location"]) == (303, "/p/meddelanden#senaste")
    assert world.patient.client.post("/p/meddelanden", data=form | {"body": "x"}).status_code == 303  # resent
    assert db.execute("SELECT sender, body, read_at FROM patient_messages").fetchall() == [
        ("patient", "Jag sover dåligt.\nHjälp?", None)
    ]
    thread = world.patient.thread()
    assert "Du · idag" in thread and "Jag sover dåligt. Hjälp?" in thread and "Mottaget" in thread

    ward = world.staff_page("dr.lund", "/wards/avd-norr")
    assert _unread_chip(ward) == "1 oläst meddelande"
    card = _first_card(ward)
    assert "1 oläst meddelande" in card and "Jag sover dåligt. Hjälp?" in card  # on one line

    # An administrator may read the record; only a clinician who can answer makes it read by the ward.
    assert "Jag sover dåligt." in world.staff_page("it.admin", f"/patients/{world.anna}")
    assert db.execute("SELECT read_at FROM patient_messages").fetchone() == (None,)
    record = world.staff_page("nurse.norr", f"/patients/{world.anna}")
    assert "1 nytt meddelande markerade som lästa." in record
    assert db.execute(
        "SELECT s.username FROM patient_messages m JOIN staff_users s ON s.id = m.read_by"
    ).fetchall() == [("nurse.norr",)]
    assert _unread_chip(world.staff_page("dr.lund", "/wards/avd-norr")) is None
    assert "Läst av avdelningen" in world.patient.thread()

    reply = {"body": "Vi ringer dig i eftermiddag.", "message_id": str(uuid.uuid4())}
    path = f"/api/patients/{world.anna}/messages"
    first = world.staff_post("nurse.norr", path, reply)
    assert first.status_code == 200 and first.json()["message"]["created"] is True, first.text
    again = world.staff_post("nurse.norr", path, reply)
    assert again.json()["message"] == first.json()["message"] | {"created": False}
    assert "inte läst ännu" in world.staff_page("nurse.norr", f"/patients/{world.anna}")
    thread = world.patient.thread()
    assert "Sara Sjöström, sjuksköterska · idag" in thread and "Vi ringer dig i eftermiddag." in thread
    assert db.execute(
        "SELECT read_at IS NOT NULL FROM patient_messages WHERE sender = 'staff'"
    ).fetchone() == (True,)
    assert "läst av patienten" in world.staff_page("nurse.norr", f"/patients/{world.anna}")

    # A relative writes too: named so on the record and to the patient, "Du" on their own device.
    assert world.relative.write("Pappa verkar tröttare idag.").status_code == 303
    assert "Närstående: Eva, dotter" in world.staff_page("nurse.norr", f"/patients/{world.anna}")
    assert "Närstående: Eva, dotter · idag" in world.patient.thread()
    own = world.relative.thread()
    assert "Du · idag" in own and "Pappa verkar tröttare idag." in own and "Patienten · idag" in own
    log = db.execute(
        "SELECT username, action, patient_device_id FROM access_log WHERE context LIKE 'patient_message:%%'"
        " ORDER BY id"
    ).fetchall()
    assert log == [
        ("(patient app)", "patient_send_message", world.patient.device_id),
        ("nurse.norr", "send_patient_message", None),
        ("(relative app)", "patient_send_message", world.relative.device_id),
    ]


HOSTILE = '<script>alert("x")</script><img src=x onerror="alert(1)"> & co'


def test_messages_are_validated_kept_intact_and_shown_to_staff_as_text(
    world: World, db: psycopg.Connection
) -> None:
    for body, status, text in [
        ("   \r\n ", 422, "Skriv något innan du skickar."),
        ("å" * 1001, 422, "Meddelandet är för långt. Högst 1000 tecken."),
        ("Hej\x1b[2J", 422, "Texten har tecken som inte går att skicka."),
        ("Hej\u2066dold\u2069", 422, "Texten har tecken som inte går att skicka."),
        ("Hej\x00", 422, "Texten har tecken som inte går att skicka."),
    ]:
        refused = world.patient.write(body)
        assert refused.status_code == status, body[:20]
        assert text in unescape(refused.text)
    assert db.execute("SELECT count(*) FROM patient_messages").fetchone() == (0,)
    odd = "Hej 👋🏽 Cafe\u0301 مرحبا 𝔘𝔫𝔦𝔠𝔬𝔡𝔢\tslut"
    for body in ("å" * 1000, odd, HOSTILE):
        assert world.patient.write(body).status_code == 303
    stored = [r[0] for r in db.execute("SELECT body FROM patient_messages ORDER BY id").fetchall()]
    assert stored == ["å" * 1000, unicodedata.normalize("NFC", odd), HOSTILE]
    assert "Café" in stored[1] and "👋🏽" in stored[1] and "مرحبا" in stored[1]

    escaped = (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; co"
    )
    card = _first_card(world.staff_page("nurse.norr", "/wards/avd-norr"))
    assert "3 olästa meddelanden" in card and escaped in card and "<script>alert" not in card
    record = world.staff_page("nurse.norr", f"/patients/{world.anna}")
    assert escaped in record and "<script>alert" not in record and "<img src=x" not in record
    assert world.patient.thread().count("Mottaget") == 0  # read by the nurse now
    assert "<script>alert" not in world.patient.page("/p/fragment/meddelanden")

    # The staff API refuses by shape and by the same care check.
    path = f"/api/patients/{world.anna}/messages"
    for body, detail in [
        ({"body": "   ", "message_id": str(uuid.uuid4())}, "Meddelandet är tomt"),
        ({"body": "x" * 1001, "message_id": str(uuid.uuid4())}, "Meddelandet får vara högst 1000 tecken"),
        ({"body": "Hej", "message_id": "inte-ett-id"}, "Meddelandet saknar id; ladda om sidan"),
        ({"body": "Hej\x07", "message_id": str(uuid.uuid4())}, None),
    ]:
        refused = world.staff_post("nurse.norr", path, body)
        assert refused.status_code == 422, body
        if detail:
            assert refused.json()["detail"] == detail
    assert (
        world.staff_post("it.admin", path, {"body": "Hej", "message_id": str(uuid.uuid4())}).status_code
        == 403
    )

    # Twenty from the patient's side in ten minutes; the next is refused and none before it is lost.
    for n in range(17):
        assert world.relative.write(f"Meddelande {n}").status_code == 303
    refused = world.patient.write("Ett till")
    assert refused.status_code == 429 and "Vi har fått ditt meddelande." in unescape(refused.text)
    assert db.execute("SELECT count(*) FROM patient_messages WHERE sender <> 'staff'").fetchone() == (20,)


# --- the agreed self-care instruction ---------------------------------------------------------------------


def _today(database_url: str, viewer: PatientViewer) -> list[Any]:
    from dashboard.patient_contact import today_self_care

    async def load() -> list[Any]:
        conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
        async with conn, conn.transaction():
            return await today_self_care(conn, viewer, datetime.now(UTC))

    return asyncio.run(load())


def _raise_weight_alert(database_url: str, patient_id: uuid.UUID) -> int:
    """A weight_gain_3d alert as the engine raises it: through alerts.store, the alerts' one writer."""
    from alerts.model import AlertRequest, Priority
    from alerts.store import apply_steps
    from care.acting import execute

    now = datetime.now(UTC)
    request = AlertRequest(patient_id, "weight_gain_3d", "body_weight", Priority.HIGH,
                           "Viktökning 2,1 kg på 3 dygn (gräns 2 kg)", 2.1, 2.0, now)  # fmt: skip
    with psycopg.connect(database_url, autocommit=True) as conn:
        (change,) = execute(conn, apply_steps([request], [], {patient_id: "avd-norr"}, now=now))
        row = conn.execute("SELECT id, state FROM alerts WHERE rule = 'weight_gain_3d'").fetchone()
    assert row is not None and row[1] == "open", change
    return int(row[0])


def test_the_agreed_self_care_is_shown_while_the_weight_alert_is_live_and_recorded_once(
    world: World, db: psycopg.Connection
) -> None:
    from dashboard.rendering import Renderer

    path = f"/api/patients/{world.anna}/self-care"
    agreed = "Om vikten ökat mer än 2 kg på 3 dagar: ta en extra vätskedrivande tablett och ring oss."
    for body, field, detail in [
        ({"rule": "contact_request_open", "text": agreed}, "rule", "Okänd larmregel för egenvårdsråd"),
        ({"rule": "no_such_rule", "text": agreed}, "rule", "Okänd larmregel för egenvårdsråd"),
        ({"rule": "weight_gain_3d", "text": "  "}, "text", "Skriv egenvårdsrådet"),
        ({"rule": "weight_gain_3d", "text": "x" * 501}, "text", "Egenvårdsrådet får vara högst 500 tecken"),
    ]:
        refused = world.staff_post("nurse.norr", path, body)
        assert (refused.status_code, refused.json()) == (422, {"detail": detail, "field": field}), body
    assert world.staff_post("it.admin", path, {"rule": "weight_gain_3d", "text": agreed}).status_code == 403
    assert world.staff_post("nurse.norr", path, {"rule": "weight_gain_3d", "text": agreed}).status_code == 200
    assert (
        world.staff_post("nurse.norr", path, {"rule": "spo2_low", "text": "Vila och mät igen"}).status_code
        == 200
    )

    patient = PatientViewer(
        world.patient.device_id, world.anna, "avd-norr", Holder.PATIENT, "Annas surfplatta"
    )
    relative = PatientViewer(world.relative.device_id, world.anna, "avd-norr", Holder.RELATIVE, "Eva, dotter")
    assert _today(world.database_url, patient) == []  # no live alert: nothing to do
    alert_id = _raise_weight_alert(world.database_url, world.anna)
    (shown,) = _today(world.database_url, patient)
    assert (shown.alert_id, shown.rule, shown.text) == (alert_id, "weight_gain_3d", agreed)
    (again,) = _today(world.database_url, relative)  # a relative sees it too; the first showing stands
    assert again == shown
    assert db.execute("SELECT alert_id, text, patient_device_id FROM self_care_notices").fetchall() == [
        (alert_id, agreed, world.patient.device_id)
    ]
    html = (
        Renderer(Settings().site_zone())
        .env.get_template("patient_app/_today_self_care.html")
        .render(self_care=[shown])
    )
    assert "Det här har du och avdelningen kommit överens om" in html and agreed in html
    assert 'href="/p/kontakt"' in html and "p-card-note" in html

    record = world.staff_page("nurse.norr", f"/patients/{world.anna}")
    section = record.split('id="self-care"')[1]
    assert "Viktökning på 3 dygn" in section and agreed in section
    assert "Visat för patienten" in section and "Viktökning 2,1 kg på 3 dygn" in section

    # Rewritten while the alert is live: the patient keeps reading what was first shown for it.
    assert (
        world.staff_post("nurse.norr", path, {"rule": "weight_gain_3d", "text": "Ring oss."}).status_code
        == 200
    )
    assert [i.text for i in _today(world.database_url, patient)] == [agreed]
    db.execute("UPDATE alerts SET state = 'resolved', resolved_at = now() WHERE id = %s", (alert_id,))
    assert _today(world.database_url, patient) == []
    clear = f"/api/patients/{world.anna}/self-care/clear"
    assert world.staff_post("nurse.norr", clear, {"rule": "weight_gain_3d"}).status_code == 200
    missing = world.staff_post("nurse.norr", clear, {"rule": "weight_gain_3d"})
    assert missing.status_code == 404
    assert db.execute("SELECT rule FROM self_care_instructions").fetchall() == [("spo2_low",)]
    assert db.execute("SELECT count(*) FROM self_care_notices").fetchone() == (1,)  # the trail stays


# --- the ward overview, live ----------------------------------------------------------------------------


def _delta_until(ws: Any, what: str, found: Any) -> dict[str, Any]:
    """The first message of the websocket for which `found(message)` holds (heartbeats are skipped)."""
    import json

    while True:
        message = json.loads(ws.recv(timeout=10))
        if message["type"] != "heartbeat" and found(message):
            return message  # type: ignore[no-any-return]
        assert message["type"] in ("snapshot", "delta", "heartbeat"), (what, message["type"])


def test_the_card_shows_the_patients_side_live_and_a_flagged_answer_for_a_day(
    world: World, db: psycopg.Connection
) -> None:
    from care.acting import execute
    from care.messages import unread_for_staff
    from tests.support.dashboard_server import ward_socket

    # A questionnaire answer with flags (care.questionnaires writes them; here as stored), one too old.
    for hours, flags in ((30, ["swollen-legs"]), (2, ["breathless-worse", "new_code_x"]), (1, [])):
        db.execute(
            "INSERT INTO questionnaire_responses (response_id, patient_id, questionnaire,"
            " questionnaire_version, authored_at, source, patient_device_id, response, score, flags,"
            " flag_priorities) VALUES (gen_random_uuid(), %s, 'hf-daily', '1',"
            " now() - make_interval(hours => %s), 'app', %s, '{}', 1, %s, %s)",
            (world.anna, hours, world.patient.device_id, flags, ["medium"] * len(flags)),
        )
    with (
        logged_in(world.base_url, "nurse.norr", PASSWORD) as client,
        ward_socket(client, world.base_url, "avd-norr") as ws,
    ):
        snapshot = _delta_until(ws, "snapshot", lambda m: m["type"] == "snapshot")
        (anna,) = [c for c in snapshot["cards"] if str(world.anna) in c.split(">", 1)[0]]
        assert "Rapporterar" in anna and "mycket mer andfådd, new code x" in words(anna)
        assert "svullna" not in anna  # older than a day
        assert world.patient.write("Hej <b>avdelningen</b>").status_code == 303
        delta = _delta_until(ws, "unread", lambda m: any("oläst meddelande" in c for c in m.get("cards", [])))
        assert "1 oläst meddelande : Hej <b>avdelningen</b>" in words(delta["cards"][0])
        assert "&lt;b&gt;avdelningen&lt;/b&gt;" in delta["cards"][0]
        assert words(delta["parts"]["ward-summary"]).endswith("1 oläst meddelande")
        assert world.relative.contact("other", "Ring mig, Eva").status_code == 303
        delta = _delta_until(ws, "contact", lambda m: any("Kontakta mig" in c for c in m.get("cards", [])))
        assert "Annat : Ring mig, Eva" in words(delta["cards"][0])
        assert "1 kontaktförfrågan" in words(delta["parts"]["ward-summary"])
        with psycopg.connect(world.database_url, autocommit=True) as conn:
            assert execute(conn, unread_for_staff([world.anna])) == {world.anna: 1}
        world.staff_page("dr.lund", f"/patients/{world.anna}")  # a clinician reads the thread
        delta = _delta_until(ws, "read", lambda m: any("oläst" not in c for c in m.get("cards", [])))
        assert "oläst meddelande" not in delta["cards"][0]
        assert 'id="count-messages" hidden' in delta["parts"]["ward-summary"]


def test_an_oversized_form_is_refused_while_it_is_read(world: World, db: psycopg.Connection) -> None:
    form = world.patient.form("/p/meddelanden")
    for path, field in (("/p/meddelanden", "body"), ("/p/kontakt", "message")):
        refused = world.patient.client.post(path, data=form | {field: "å" * 100_000, "reason": "other"})
        assert refused.status_code == 413, path
        assert "Det blev för mycket text. Skriv kortare och försök igen." in refused.text
    assert db.execute("SELECT count(*) FROM patient_messages").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM contact_requests").fetchone() == (0,)


def test_the_cli_takes_a_request_with_the_same_promise_and_the_same_refusal(
    world: World, db: psycopg.Connection
) -> None:
    """`hemma contact take --call-within` is the same command as the card's "Ringer inom": the same
    range refused with the same code, the same words on the patient's screen."""
    from care.refusals import RefusalCode, Refused
    from tests.support.entry_points import hemma_cli, same_refusal

    assert world.patient.contact("feeling_worse", "Tung andning").status_code == 303
    (request_id,) = db.execute("SELECT id FROM contact_requests").fetchone()
    args = ("contact", "take", str(world.anna), str(request_id), "--by", "nurse.norr")
    refusal = Refused(RefusalCode.CALL_WITHIN_RANGE, minimum=1, maximum=1440)
    http = world.staff_post(
        "nurse.norr",
        f"/api/patients/{world.anna}/contact-requests/{request_id}/take",
        {"call_within_minutes": 0},
    )
    same_refusal(hemma_cli(world.database_url, *args, "--call-within", "0"), http, refusal)
    taken = hemma_cli(world.database_url, *args, "--call-within", "45")
    assert taken.returncode == 0, taken.stderr
    assert "Sara Sjöström, sjuksköterska, har sett ditt meddelande och ringer dig inom 45 minuter." in (
        world.patient.state()
    )


def test_the_overview_json_carries_the_request_and_the_unread_count(world: World) -> None:
    """Integrators read what the card shows: the waiting request with its reason and line, the unread
    count (dashboard.answers.PatientAnswer, in the OpenAPI schema)."""
    assert world.patient.contact("feeling_worse", "Tung andning <b>sedan natten</b>").status_code == 303
    assert world.relative.write("Pappa är trött").status_code == 303
    with logged_in(world.base_url, "nurse.norr", PASSWORD) as client:
        overview = client.get(f"/api/wards/{world.ward_id}/overview").json()
    (anna,) = [p for p in overview["patients"] if p["id"] == str(world.anna)]
    assert anna["unread_messages"] == 1
    contact = anna["contact"]
    assert (contact["state"], contact["source"], contact["reason"]) == ("open", "app", "feeling_worse")
    assert contact["message"] == "Tung andning <b>sedan natten</b>"  # JSON: the text as written
    assert contact["taken_by"] is None and contact["call_within_minutes"] is None
    others = [p for p in overview["patients"] if p["id"] != str(world.anna)]
    assert all(p["contact"] is None and p["unread_messages"] == 0 for p in others)
