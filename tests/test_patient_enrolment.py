"""Getting into the patient app without a password (issue 10): staff make a one-time link (QR code,
optional PIN) from the record or the CLI, the device opens it once and holds a device token, staff
revoke it at once; the patient's "Vem har läst" lists who read the record, live. Real PostgreSQL, a
real dashboard server, the CLI as a subprocess.
"""

from __future__ import annotations

import html
import logging
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from care import texts_patient_sv
from care.access_log import CLI
from care.acting import Origin, execute
from care.enrolment import discharge
from care.patient_enrolment import (
    ENROL_DEVICE,
    MAX_PIN_FAILURES,
    DeviceCreated,
    create,
    redeem,
    redeem_link,
)
from care.permissions import Action, PatientAction
from care.refusals import RefusalCode as C
from care.refusals import Refused
from care.staff import create_staff_user
from core.settings import Settings
from dashboard.patient_enrol import RedactEnrolCodes, span_sv, when_sv
from dashboard.patient_realm import DEVICE_COOKIE
from dashboard.refusals import action_error
from storage.steps import run
from tests.support.dashboard_server import csrf_token, logged_in, running_dashboard
from tests.support.entry_points import hemma_cli
from tests.support.waiting import wait_until
from tests.support.ward_seed import PASSWORD, seed_two_wards

SECRET = "test-session-secret-patient-enrolment-01"
STAFF = [
    ("sara", "Sara Sjöberg", "nurse", ["avd-norr"]),
    ("lars", "Lars Läkarsson", "physician", ["avd-norr"]),
]
# Those who may not, for the refusals' test only (each account costs an Argon2 hash).
OTHERS = [("sven", "Sven Söder", "nurse", ["avd-syd"]), ("ida", "Ida Itadmin", "admin", [])]
INVALID = texts_patient_sv.text(Refused(C.ENROLMENT_LINK_INVALID).refusal)


@pytest.fixture
def ward(db):  # type: ignore[no-untyped-def]
    anna, bertil, cecilia, _ = seed_two_wards(db, STAFF)
    return anna, bertil, cecilia


@pytest.fixture
def base_url(database_url: str) -> Iterator[str]:
    settings = Settings(database_url=database_url, session_secret=SECRET, patient_poll_seconds=1)
    with running_dashboard(settings) as url:
        yield url


def make_link(
    db: psycopg.Connection, patient_id: uuid.UUID, *, holder: str = "patient", label: str = "Surfplattan",
    consent: str | None = None, pin: bool = False, by: str = "sara",
) -> DeviceCreated:  # fmt: skip
    origin = Origin(CLI, os_user="test@host")
    return execute(db, create(patient_id=patient_id, holder=holder, label=label, consent_note=consent,
                              with_pin=pin, valid_days=14, by=by, origin=origin))  # fmt: skip


def open_link(base_url: str, code: str, pin: str | None = None) -> tuple[httpx.Client, httpx.Response]:
    """A fresh browser opening the link: (its client, the answer to the Anslut button)."""
    client = httpx.Client(base_url=base_url, timeout=10)
    data = {"kod": code} | ({"pin": pin} if pin is not None else {})
    return client, client.post("/p/anslut", data=data)


def enrolled(base_url: str, code: str, pin: str | None = None) -> httpx.Client:
    client, answer = open_link(base_url, code, pin)
    assert (answer.status_code, answer.headers.get("location")) == (303, "/p/"), answer.text
    assert client.cookies.get(DEVICE_COOKIE)
    return client


def device_row(db: psycopg.Connection, device_id: int) -> dict[str, Any]:
    cur = db.execute(
        "SELECT link_sha256 IS NOT NULL, token_sha256 IS NOT NULL, enrolled_at, pin_failures, revoked_at,"
        " revoked_reason FROM patient_devices WHERE id = %s",
        (device_id,),
    )
    row = cur.fetchone()
    assert row is not None
    keys = ("has_link", "has_token", "enrolled_at", "pin_failures", "revoked_at", "revoked_reason")
    return dict(zip(keys, row, strict=True))


def access_rows(db: psycopg.Connection, patient_id: uuid.UUID) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT action, username, staff_user_id, patient_device_id, entry_point, context FROM access_log"
        " WHERE patient_id = %s ORDER BY id",
        (patient_id,),
    ).fetchall()


def page_text(response: httpx.Response) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", response.text))


# --- the whole way in, from the record's form --------------------------------------------------------


def test_a_nurse_makes_a_link_on_the_record_and_the_tablet_enrols_once(db, ward, base_url) -> None:
    anna = ward[0]
    with logged_in(base_url, "sara", PASSWORD) as nurse:
        record = nurse.get(f"/patients/{anna.patient_id}")
        assert 'action="/patients/' + str(anna.patient_id) + '/app-devices"' in record.text
        token = csrf_token(nurse, f"/patients/{anna.patient_id}")
        sheet = nurse.post(
            f"/patients/{anna.patient_id}/app-devices",
            data={"holder": "patient", "label": "Surfplattan", "csrf": token},
        )
    assert sheet.status_code == 200, sheet.text
    assert sheet.headers["cache-control"] == "no-store"
    assert re.search(r'<img src="data:image/svg\+xml[^"]+"', sheet.text)
    code = re.search(r"/p/anslut\?kod=([A-Za-z0-9_-]{43})", sheet.text)
    assert code is not None and "PIN-kod</h2>" not in sheet.text
    device_id = int(db.execute("SELECT id FROM patient_devices").fetchone()[0])

    # Previewers and the patient's own second look fetch the page: nothing is used up.
    tablet = httpx.Client(base_url=base_url, timeout=10)
    for _ in range(2):
        page = tablet.get(f"/p/anslut?kod={code[1]}")
        assert page.status_code == 200
        assert "Anslut den här surfplattan eller telefonen till Hemma" in page.text
        assert 'name="pin"' not in page.text
    assert device_row(db, device_id)["has_link"] and not device_row(db, device_id)["has_token"]

    answer = tablet.post("/p/anslut", data={"kod": code[1]})
    assert (answer.status_code, answer.headers["location"]) == (303, "/p/")
    cookie = answer.headers["set-cookie"]
    assert "path=/p" in cookie.lower() and "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert tablet.get("/p/vem-har-last").status_code == 200
    row = device_row(db, device_id)
    assert (row["has_link"], row["has_token"], row["enrolled_at"] is not None) == (False, True, True)

    # One time: a second browser with the same link reads what an unknown link reads.
    for code_given in (code[1], "x" * 43, ""):
        _, again = open_link(base_url, code_given)
        assert again.status_code == 404 and INVALID in page_text(again)
        assert httpx.get(f"{base_url}/p/anslut?kod={code_given}").status_code == 404
    # The first device still works.
    assert tablet.get("/p/vem-har-last").status_code == 200

    rows = access_rows(db, anna.patient_id)
    actions = [(r[0], r[1], r[3], r[4]) for r in rows]
    assert ("patient_record", "sara", None, "dashboard") in actions
    assert (Action.MANAGE_PATIENT_APP.value, "sara", None, "dashboard") in actions
    assert (ENROL_DEVICE, "(patient app)", device_id, "patient_app") in actions
    reads = [a for a in actions if a[0] == PatientAction.VIEW_ACCESS_LOG.value]
    assert reads == [(PatientAction.VIEW_ACCESS_LOG.value, "(patient app)", device_id, "patient_app")] * 2
    made = next(r for r in rows if r[0] == Action.MANAGE_PATIENT_APP.value)
    assert made[5] == f"patient_device:{device_id} create patient"
    assert not any(code[1] in str(r) for r in rows)  # the code is never in the log


def test_an_expired_link_is_refused_like_an_unknown_one(db, ward, base_url) -> None:
    link = make_link(db, ward[0].patient_id)
    db.execute("UPDATE patient_devices SET link_expires_at = now() - interval '1 second'")
    assert httpx.get(f"{base_url}/p/anslut?kod={link.link_code}").status_code == 404
    _, answer = open_link(base_url, link.link_code)
    assert answer.status_code == 404 and INVALID in page_text(answer)
    assert device_row(db, link.device_id)["has_token"] is False


def test_a_discharged_patients_link_and_device_stop_working(db, ward, base_url) -> None:
    anna = ward[0]
    device = enrolled(base_url, make_link(db, anna.patient_id).link_code)
    waiting = make_link(db, anna.patient_id, label="Telefonen")
    execute(db, discharge(gateway_id=anna.gateway_id, outcome="stayed_home", by=None, origin=None))
    assert device.get("/p/vem-har-last").status_code == 401
    _, answer = open_link(base_url, waiting.link_code)
    assert answer.status_code == 404 and INVALID in page_text(answer)


# --- the PIN -------------------------------------------------------------------------------------------


def test_five_wrong_pins_lock_the_link_and_the_right_one_opens_it(db, ward, base_url) -> None:
    anna = ward[0]
    locked = make_link(db, anna.patient_id, pin=True)
    assert locked.pin is not None and re.fullmatch(r"[0-9]{4}", locked.pin)
    wrong = f"{(int(locked.pin) + 1) % 10000:04d}"

    page = httpx.get(f"{base_url}/p/anslut?kod={locked.link_code}")
    field = re.search(r"<input id=\"pin\"[^>]*>", page.text, re.S)
    assert field is not None
    assert 'inputmode="numeric"' in field[0] and 'autocomplete="one-time-code"' in field[0]
    assert '<label for="pin">' in page.text

    # An empty PIN is a reminder, not an attempt.
    _, empty = open_link(base_url, locked.link_code, "")
    assert empty.status_code == 422 and "fyra siffror" in page_text(empty)
    assert device_row(db, locked.device_id)["pin_failures"] == 0

    for left in range(MAX_PIN_FAILURES - 1, 0, -1):
        _, answer = open_link(base_url, locked.link_code, wrong)
        assert answer.status_code == 422
        assert f"Du har {left} försök kvar" in page_text(answer)
        assert 'name="kod" value="' + locked.link_code in answer.text  # the form comes back, to try again
    _, last = open_link(base_url, locked.link_code, wrong)
    assert last.status_code == 409 and "för många gånger" in page_text(last)
    row = device_row(db, locked.device_id)
    assert (row["pin_failures"], row["revoked_reason"], row["has_token"]) == (5, "pin_failures", False)
    # Locked: even the right PIN now reads as a dead link.
    _, right = open_link(base_url, locked.link_code, locked.pin)
    assert right.status_code == 404 and INVALID in page_text(right)

    opened = make_link(db, anna.patient_id, pin=True, label="Telefonen")
    assert opened.pin is not None
    _, miss = open_link(base_url, opened.link_code, f"{(int(opened.pin) + 1) % 10000:04d}")
    assert miss.status_code == 422
    device = enrolled(base_url, opened.link_code, opened.pin)
    assert device.get("/p/vem-har-last").status_code == 200
    assert device_row(db, opened.device_id)["pin_failures"] == 1


def test_two_devices_opening_one_link_at_once_enrol_one(db, ward, database_url) -> None:
    link = make_link(db, ward[0].patient_id)
    second: list[Any] = []
    with psycopg.connect(database_url) as first_conn, psycopg.connect(database_url, autocommit=True) as other:
        with first_conn.transaction():
            first = run(first_conn, redeem(link.link_code, None, client_address=None))
            racer = threading.Thread(target=lambda: second.append(
                execute(other, redeem(link.link_code, None, client_address=None))))  # fmt: skip
            racer.start()
            wait_until(
                lambda: db.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                ).fetchone()[0],
                what="the second redemption waiting for the row",
            )
        racer.join(10)
    assert first.enrolled().viewer.device_id == link.device_id
    refused = second[0].outcome
    assert isinstance(refused, Refused) and refused.code is C.ENROLMENT_LINK_INVALID


# --- revoking ------------------------------------------------------------------------------------------


def test_revoking_ends_a_live_device_at_once(db, ward, base_url) -> None:
    anna = ward[0]
    link = make_link(db, anna.patient_id)
    tablet = enrolled(base_url, link.link_code)
    assert tablet.get("/p/vem-har-last").status_code == 200
    with logged_in(base_url, "lars", PASSWORD) as physician:
        token = csrf_token(physician, f"/patients/{anna.patient_id}")
        path = f"/patients/{anna.patient_id}/app-devices/{link.device_id}/revoke"
        assert physician.post(path, data={}).status_code == 403  # no CSRF token
        assert tablet.get("/p/vem-har-last").status_code == 200
        done = physician.post(path, data={"csrf": token})
        assert (done.status_code, done.headers["location"]) == (
            303,
            f"/patients/{anna.patient_id}#patient-app",
        )
        gone = tablet.get("/p/vem-har-last")
        assert gone.status_code == 401 and "inte ansluten" in gone.text
        assert tablet.get("/p/fragment/vem-har-last").status_code == 401
        again = physician.post(path, data={"csrf": token})
        assert again.status_code == 409
        record = physician.get(f"/patients/{anna.patient_id}").text
    assert "Spärrad" in record and "av lars" in record
    row = device_row(db, link.device_id)
    assert row["revoked_reason"] == "staff"
    revoked = [
        r for r in access_rows(db, anna.patient_id) if r[5] == f"patient_device:{link.device_id} revoke"
    ]
    assert [(r[0], r[1], r[4]) for r in revoked] == [(Action.MANAGE_PATIENT_APP.value, "lars", "dashboard")]


# --- who may: the CLI and the record's form refuse alike ---------------------------------------------


def same_form_refusal(cli: Any, page: httpx.Response, refusal: Refused) -> None:
    """The CLI prints the code's English text; the form's page carries the status and Swedish text the
    dashboard maps that code to (dashboard.refusals)."""
    expected = action_error(refusal)
    assert (cli.returncode, cli.stderr.strip()) == (2, f"hemma: {refusal}"), cli.stderr
    assert page.status_code == expected.status, page.text
    assert expected.message in page_text(page)


def post_form(base_url: str, username: str, path: str, record: str, data: dict[str, str]) -> httpx.Response:
    with logged_in(base_url, username, PASSWORD) as client:
        token = csrf_token(client, record) if username != "sven" else csrf_token(client, "/")
        return client.post(path, data=data | {"csrf": token})


def test_the_cli_and_the_record_form_give_the_same_refusals(db, ward, base_url, database_url) -> None:
    anna = ward[0]
    for username, name, role, wards in OTHERS:
        create_staff_user(
            db, username=username, display_name=name, role=role, password=PASSWORD, ward_ids=wards
        )
    pid = str(anna.patient_id)
    record, path = f"/patients/{pid}", f"/patients/{pid}/app-devices"
    relative = {"holder": "relative", "label": "Lisa, dotter"}
    cases = [
        # A relative's device needs the patient's consent recorded.
        ("sara", ["enrol", pid, "--label", "Lisa, dotter", "--relative", "--as", "sara"], relative,
         Refused(C.CONSENT_MISSING)),
        ("sara", ["enrol", pid, "--label", "Lisa, dotter", "--relative", "--consent", "x" * 301,
                  "--as", "sara"], relative | {"consent": "x" * 301},
         Refused(C.CONSENT_TOO_LONG, maximum=300)),
        ("sara", ["enrol", pid, "--label", " ", "--as", "sara"], {"holder": "patient", "label": " "},
         Refused(C.DEVICE_LABEL)),
        # A nurse of another ward, and an IT administrator, may not.
        ("sven", ["enrol", pid, "--label", "Surfplattan", "--as", "sven"], {"label": "Surfplattan"},
         Refused(C.WARD_ACCESS, username="sven", ward_id="avd-norr", action=Action.MANAGE_PATIENT_APP)),
        ("ida", ["enrol", pid, "--label", "Surfplattan", "--as", "ida"], {"label": "Surfplattan"},
         Refused(C.ROLE, username="ida", role="admin", action=Action.MANAGE_PATIENT_APP)),
    ]  # fmt: skip
    for username, args, form, refusal in cases:
        cli = hemma_cli(database_url, "patient-app", *args)
        page = post_form(base_url, username, path, record, form)
        same_form_refusal(cli, page, refusal)
    # The form is offered only to those who may use it.
    for username, offered in (("ida", False), ("lars", True)):
        with logged_in(base_url, username, PASSWORD) as client:
            assert (f'action="{path}"' in client.get(record).text) is offered, username
    unknown = Refused(C.NO_PATIENT_DEVICE, patient_id=anna.patient_id, device_id=999)
    cli = hemma_cli(database_url, "patient-app", "revoke", pid, "999", "--as", "sara")
    same_form_refusal(cli, post_form(base_url, "sara", f"{path}/999/revoke", record, {}), unknown)
    assert db.execute("SELECT count(*) FROM patient_devices").fetchone()[0] == 0


def test_the_cli_makes_a_relatives_link_lists_and_revokes_it(db, ward, base_url, database_url) -> None:
    anna = ward[0]
    pid = str(anna.patient_id)
    made = hemma_cli(database_url, "patient-app", "enrol", pid, "--label", "Lisa, dotter", "--relative",
                     "--consent", "Muntligt till ssk Sara 3/12", "--pin", "--as", "sara")  # fmt: skip
    assert made.returncode == 0, made.stderr
    code = re.search(r"/p/anslut\?kod=([A-Za-z0-9_-]{43})", made.stdout)
    pin = re.search(r"PIN: ([0-9]{4})", made.stdout)
    assert code is not None and pin is not None
    relative = enrolled(base_url, code[1], pin[1])
    # A relative's device sees less: not the log of who read the record.
    refused = relative.get("/p/vem-har-last")
    assert refused.status_code == 403 and "bara för patienten själv" in page_text(refused)

    listed = hemma_cli(database_url, "patient-app", "list", pid)
    assert listed.returncode == 0, listed.stderr
    device_id = int(listed.stdout.split()[0])
    assert "relative" in listed.stdout and "Lisa, dotter" in listed.stdout and "enrolled" in listed.stdout
    assert "Muntligt till ssk Sara 3/12" in listed.stdout and code[1] not in listed.stdout
    gone = hemma_cli(database_url, "patient-app", "revoke", pid, str(device_id), "--as", "sara")
    assert gone.returncode == 0, gone.stderr
    assert relative.get("/p/").status_code in (401, 404)
    assert relative.get("/p/fragment/vem-har-last").status_code == 401
    rows = [(r[0], r[1], r[4]) for r in access_rows(db, anna.patient_id)]
    assert rows.count((Action.MANAGE_PATIENT_APP.value, "sara", "cli")) == 2
    assert ("list_patient_devices", "(operator)", "cli") in rows


# --- Vem har läst ----------------------------------------------------------------------------------------


def test_vem_har_last_lists_the_nurses_read_by_role_and_unit_never_by_name(db, ward, base_url) -> None:
    anna, bertil = ward[0], ward[1]
    tablet = enrolled(base_url, make_link(db, anna.patient_id).link_code)
    relative = enrolled(base_url, make_link(db, anna.patient_id, holder="relative", label="Lisa",
                                            consent="Muntligt 3/12").link_code)  # fmt: skip
    assert relative.get("/p/vem-har-last").status_code == 403  # the patient's own, not a relative's
    before = page_text(tablet.get("/p/fragment/vem-har-last"))
    assert "Läste din journal i Hemma" not in before
    assert "Du själv (Surfplattan)" in before
    with logged_in(base_url, "sara", PASSWORD) as nurse:
        assert nurse.get(f"/patients/{anna.patient_id}").status_code == 200
        assert nurse.get(f"/patients/{bertil.patient_id}").status_code == 200
    after = page_text(tablet.get("/p/fragment/vem-har-last"))
    assert "Sjuksköterska, Avdelning Norr" in after and "Läste din journal i Hemma" in after
    assert "Sara" not in after and "sara" not in after  # no staff names
    assert "Närstående: Lisa" in after  # the relative's enrolment, as the relative
    full = page_text(tablet.get("/p/vem-har-last"))
    assert "8 kap. 5 §" in full and "loggutdrag" in full
    assert 'data-live="/p/fragment/vem-har-last"' in tablet.get("/p/vem-har-last").text
    # Only Anna's rows: Bertil's record read is not hers.
    assert after.count("Läste din journal i Hemma") == 1


def test_vem_har_last_collapses_runs_pages_and_keeps_to_90_days(db, ward, base_url) -> None:
    anna = ward[0]
    tablet = enrolled(base_url, make_link(db, anna.patient_id).link_code)
    sara = db.execute("SELECT id FROM staff_users WHERE username = 'sara'").fetchone()[0]

    def read(action: str, minutes_ago: float) -> None:
        db.execute(
            "INSERT INTO access_log (at, staff_user_id, username, patient_id, action, context, entry_point)"
            " VALUES (now() - make_interval(mins => %s), %s, 'sara', %s, %s, 'test', 'dashboard')",
            (minutes_ago, sara, anna.patient_id, action),
        )

    for minutes in (100_000, 200_000):  # more than 90 days ago: not in the extract
        read("resolve_alert", 131_000 + minutes)
    for i in range(3):  # three reads within minutes of each other: one entry
        read("patient_record", 60 + i)
    for i in range(60):  # alternating: sixty entries, over two pages
        read("ward_overview" if i % 2 else "acknowledge_alert", 120 + 40 * i)
    page = tablet.get("/p/vem-har-last")
    assert page.text.count('<li class="p-log-entry') == 50
    first = page_text(page)
    assert "Läste din journal i Hemma (3 gånger)" in first
    assert "Sida 1 av 2" in first and "Äldre" in first and "Nyare" not in first
    # The tablet's own run, the link's making, the three reads, 47 of the 60.
    assert first.count("Du själv (Surfplattan)") == 1 and first.count("Sjuksköterska, Avdelning Norr") == 49
    second = tablet.get("/p/vem-har-last?sida=2")
    assert second.status_code == 200 and "Nyare" in page_text(second) and "data-live" not in second.text
    assert "Avslutade ett larm" not in page_text(second)
    assert "Sida 2 av 2" in page_text(second) and second.text.count('<li class="p-log-entry') == 13
    for bad in ("0", "abc", "99999999", "1e3"):
        assert tablet.get(f"/p/vem-har-last?sida={bad}").status_code == 422, bad
    assert "Det finns inget mer att visa" in page_text(tablet.get("/p/vem-har-last?sida=9"))


def test_the_log_extract_words_and_times() -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/Stockholm")
    now = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    assert when_sv(datetime(2026, 12, 3, 13, 2, tzinfo=UTC), now, zone) == "idag 14:02"
    assert when_sv(datetime(2026, 12, 2, 8, 15, tzinfo=UTC), now, zone) == "igår 09:15"
    assert when_sv(datetime(2026, 11, 3, 8, 15, tzinfo=UTC), now, zone) == "3 november 09:15"
    assert when_sv(datetime(2025, 12, 3, 8, 15, tzinfo=UTC), now, zone) == "3 december 2025 09:15"
    first, last = datetime(2026, 12, 3, 12, 40, tzinfo=UTC), datetime(2026, 12, 3, 13, 2, tzinfo=UTC)
    assert span_sv(first, last, now, zone) == "idag 13:40–14:02"
    assert span_sv(last, last, now, zone) == "idag 14:02"


def test_one_client_failing_again_and_again_is_braked(db, ward, base_url) -> None:
    good = make_link(db, ward[0].patient_id)
    client = httpx.Client(base_url=base_url, timeout=10)
    for _ in range(20):
        assert client.post("/p/anslut", data={"kod": uuid.uuid4().hex}).status_code == 404
    braked = client.post("/p/anslut", data={"kod": good.link_code})
    assert braked.status_code == 429 and "Vänta en kvart" in page_text(braked)
    assert device_row(db, good.device_id)["has_link"]  # not used up by the refused try


# --- the code stays out of the logs -------------------------------------------------------------------


def test_the_link_code_never_reaches_the_access_log_lines(db, ward, base_url) -> None:
    link = make_link(db, ward[0].patient_id)
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    access = logging.getLogger("uvicorn.access")
    assert any(isinstance(f, RedactEnrolCodes) for f in access.filters)
    handler, level = Keep(), access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        httpx.get(f"{base_url}/p/anslut?kod={link.link_code}")
        httpx.get(f"{base_url}/p/anslut?x=1&kod={link.link_code}&y=2")
        wait_until(lambda: len([m for m in lines if "/p/anslut" in m]) >= 2, what="two access log lines")
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    assert not any(link.link_code in m for m in lines)
    assert any("/p/anslut?kod=- " in m for m in lines) and any("kod=-&y=2" in m for m in lines)


def test_redeem_link_raises_after_counting(db, ward) -> None:
    link = make_link(db, ward[0].patient_id, pin=True)
    with pytest.raises(Refused) as wrong:
        redeem_link(db, link.link_code, "abc")
    assert wrong.value.code is C.ENROLMENT_PIN_WRONG and wrong.value.params["attempts_left"] == 4
    assert device_row(db, link.device_id)["pin_failures"] == 1  # committed despite the refusal
    assert link.pin is not None
    assert redeem_link(db, link.link_code, link.pin).viewer.holder == "patient"


# --- in a browser: the QR link on a phone, and the nurse's read appearing while the page is open ---------


def test_on_a_phone_the_link_enrols_and_vem_har_last_shows_the_nurses_read_live(
    db, ward, base_url, browser
) -> None:
    anna = ward[0]
    link = make_link(db, anna.patient_id, pin=True, label="Annas telefon")
    assert link.pin is not None
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="sv-SE", is_mobile=True)
    try:
        page = context.new_page()
        page.goto(link.link(base_url))
        assert page.locator("h1").inner_text() == "Anslut den här surfplattan eller telefonen till Hemma"
        assert page.get_by_label("Kod från avdelningen").is_visible()
        page.get_by_label("Kod från avdelningen").fill(link.pin)
        page.get_by_role("button", name="Anslut").click()
        page.wait_for_url("**/p/")
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(f"{base_url}/p/vem-har-last")
        entries = page.locator("#vem-har-last-lista li")
        texts = entries.all_inner_texts()
        assert "Du själv (Annas telefon)" in texts[0]
        # The run of the device's own reads: the enrolment, then the screens it opened (Idag first).
        assert texts[0].split("\n")[2].startswith("Anslöt enheten till Hemma, tittade på ")
        assert texts[0].endswith("tittade på Vem har läst")
        assert "Sjuksköterska, Avdelning Norr" in texts[1] and "Gjorde en länk för att ansluta" in texts[1]
        assert "Läste din journal i Hemma" not in page.inner_text("main")
        with logged_in(base_url, "sara", PASSWORD) as nurse:
            assert nurse.get(f"/patients/{anna.patient_id}").status_code == 200
        # static/patient.js refreshes the list every second here (patient_poll_seconds=1).
        nurse_read = entries.filter(has_text="Läste din journal i Hemma")
        nurse_read.wait_for(timeout=15_000)
        assert "Sjuksköterska, Avdelning Norr" in nurse_read.inner_text()
        assert problems == []
    finally:
        context.close()


def test_every_staff_action_on_a_patient_has_the_patients_words_in_the_log_extract() -> None:
    """A new Action must say in plain Swedish what it did to the patient (Vem har läst), not fall back
    on the generic words. Being on call is no action on a patient's record."""
    from care.log_extract import STAFF_DID_SV
    from care.permissions import Action

    missing = [a.value for a in Action if a is not Action.BE_ON_CALL and a not in STAFF_DID_SV]
    assert missing == []
