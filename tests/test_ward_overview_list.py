"""The ward overview's compact list, filters, search and sort (issue 11, "Scan the ward"): over HTTP and
websockets against a real PostgreSQL and a real uvicorn server, asserting on which patients are shown."""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from care import care_levels
from care.acting import Origin
from care.enrolment import EnrolledPatient, enrol_patient, ensure_ward
from care.kit_assignments import take_back
from care.staff import create_staff_user
from core.settings import Settings
from dashboard.model import PatientCard, order_string
from dashboard.ward_view import ViewRefused, WardView, personal_number_forms
from storage.steps import run as run_steps
from tests.support.dashboard_server import logged_in, running_dashboard, ward_socket
from tests.support.ward_seed import add_alert, set_vital

PASSWORD = "rätt häst batteri häftklammer"
SECRET = "test-session-secret-0123456789abcdef"
ROW_NAME = re.compile(r'<th scope="row"><a href="/patients/[0-9a-f-]+">([^<]*)</a></th>')


@dataclass
class Ward:
    anna: EnrolledPatient  # high alert open; 19480101-1234
    bertil: EnrolledPatient  # NEWS2 ≥ 6 (incomplete); stored as 3901021234
    asa: EnrolledPatient  # kit offline; overdue for review
    david: EnrolledPatient  # no kit
    elsa: EnrolledPatient  # reviewed by the nurse this shift; red
    nurse_id: int
    physician_id: int


@pytest.fixture
def ward(db: psycopg.Connection) -> Ward:
    ensure_ward(db, "avd-norr", "Avdelning Norr")
    ensure_ward(db, "avd-syd", "Avdelning Syd")

    def enrol(name: str, gateway: str, number: str | None, year: int) -> EnrolledPatient:
        return enrol_patient(db, ward_id="avd-norr", display_name=name, gateway_id=gateway,
                             personal_number=number, birth_year=year)  # fmt: skip

    anna = enrol("Anna Andersson", "gw-anna", "19480101-1234", 1948)
    bertil = enrol("Bertil Berg", "gw-bertil", "3901021234", 1939)
    asa = enrol("Åsa Öberg", "gw-asa", None, 1951)
    david = enrol("David Dahl", "gw-david", "195505055555", 1955)
    elsa = enrol("Elsa Ek", "gw-elsa", None, 1944)
    enrol_patient(db, ward_id="avd-syd", display_name="Cecilia Ceder", gateway_id="gw-cecilia",
                  personal_number="19500505-5050", birth_year=1950)  # fmt: skip
    nurse = create_staff_user(db, username="nurse.norr", display_name="Sara Sjöström", role="nurse",
                              password=PASSWORD, ward_ids=["avd-norr"])  # fmt: skip
    create_staff_user(db, username="nurse.two", display_name="Nils Nord", role="nurse",
                      password=PASSWORD, ward_ids=["avd-norr"])  # fmt: skip
    physician = create_staff_user(db, username="doc.norr", display_name="Lars Lund", role="physician",
                                  password=PASSWORD, ward_ids=["avd-norr"])  # fmt: skip
    add_alert(db, anna, priority="high")
    set_vital(db, bertil, "spo2", 85, "%")  # 3 points (scale 1)
    set_vital(db, bertil, "pulse_rate", 135, "/min")  # 3 points
    db.execute("UPDATE gateways SET status = 'offline', status_at = now() WHERE id = 'gw-asa'")
    db.execute("UPDATE patients SET enrolled_at = now() - interval '2 days' WHERE id = %s", (asa.patient_id,))
    run_steps(db, take_back(by="nurse.norr", origin=None, gateway_id="gw-david"))  # David has no kit now
    origin = Origin("cli")
    run_steps(db, care_levels.set_level(patient_id=elsa.patient_id, level="red", reason="Sviktar",
                                        by="doc.norr", origin=origin))  # fmt: skip
    run_steps(db, care_levels.review(patient_id=elsa.patient_id, note=None, by="nurse.norr", origin=origin))
    return Ward(anna, bertil, asa, david, elsa, nurse, physician)


@pytest.fixture
def base_url(database_url: str, ward: Ward) -> Iterator[str]:
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield url


def shown(client: httpx.Client, query: str) -> list[str]:
    response = client.get(f"/wards/avd-norr?vy=lista&{query}")
    assert response.status_code == 200, response.status_code
    return [html.unescape(name) for name in ROW_NAME.findall(response.text)]


def overview_rows(db: psycopg.Connection) -> list[uuid.UUID]:
    query = "SELECT patient_id FROM access_log WHERE action = 'ward_overview' ORDER BY id"
    return [r[0] for r in db.execute(query).fetchall()]


# Each table of cases runs in one test against one seeded ward and dashboard: the ward is read, not
# changed, by these requests, and a dashboard per case cost a second each.
FILTER_CASES = [
    ("", ["Anna Andersson", "Elsa Ek", "Bertil Berg", "David Dahl", "Åsa Öberg"]),
    ("visa=larm", ["Anna Andersson"]),
    ("visa=news2", ["Bertil Berg"]),
    ("visa=teknik", ["David Dahl", "Åsa Öberg"]),
    ("visa=granska", ["Åsa Öberg"]),
    ("visa=mina", ["Elsa Ek"]),
    ("visa=teknik&visa=granska", ["Åsa Öberg"]),
    ("visa=larm&visa=news2", []),
]


def test_filters_show_the_matching_patients_and_log_only_those(
    base_url: str, db: psycopg.Connection, ward: Ward
) -> None:
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        for query, names in FILTER_CASES:
            before = len(overview_rows(db))
            assert shown(client, query) == names, query
            logged = overview_rows(db)[before:]
            assert len(logged) == len(names) and len(set(logged)) == len(names), query


def test_mine_is_each_nurses_own(base_url: str, db: psycopg.Connection, ward: Ward) -> None:
    alert_id = add_alert(db, ward.bertil, priority="medium", rule="pulse_high", message="Puls 135")
    db.execute(
        "UPDATE alerts SET state = 'acknowledged', acknowledged_at = now(), acknowledged_by ="
        " (SELECT id FROM staff_users WHERE username = 'nurse.two') WHERE id = %s",
        (alert_id,),
    )
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        assert shown(client, "visa=mina") == ["Elsa Ek"]
    with logged_in(base_url, "nurse.two", PASSWORD) as client:
        assert shown(client, "visa=mina") == ["Bertil Berg"]


SEARCH_CASES = [
    ("anna", ["Anna Andersson"]),
    ("BERG bertil", ["Bertil Berg"]),
    ("öberg", ["Åsa Öberg"]),
    ("ＡＮＮＡ", ["Anna Andersson"]),  # full-width letters fold (NFKC)
    ("𝔄𝔫𝔫𝔞", ["Anna Andersson"]),  # mathematical letters too
    ("194801011234", ["Anna Andersson"]),
    ("19480101-1234", ["Anna Andersson"]),
    ("480101-1234", ["Anna Andersson"]),
    ("4801011234", ["Anna Andersson"]),
    ("3901021234", ["Bertil Berg"]),  # stored without century
    ("193901021234", ["Bertil Berg"]),  # the century from the birth year
    ("19390102-1234", ["Bertil Berg"]),
    ("550505-5555", ["David Dahl"]),
    ("19500505-5050", []),  # Cecilia is on another ward
    ("390102", ["Bertil Berg"]),
    ("x", []),
]


def test_search_by_name_and_personal_number(base_url: str) -> None:
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        for search, names in SEARCH_CASES:
            assert shown(client, httpx.QueryParams({"sok": search}).__str__()) == names, search


HOSTILE_SEARCHES = (
    ["<script>alert(1)</script>", "' OR 1=1 --", "\"><img src=x onerror=alert(1)>", "%00", "🙂🙂", "‮evil",
     "a\x00b", "\x1b[31m", "a" * 101, "ﷺ" * 30, "   "]
)  # fmt: skip


def test_hostile_searches_never_fail_nor_echo(base_url: str) -> None:
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        for search in HOSTILE_SEARCHES:
            response = client.get("/wards/avd-norr", params={"vy": "lista", "sok": search})
            assert response.status_code in (200, 422), (search, response.status_code)
            if response.status_code == 422:
                assert search not in response.text, search
            assert "<script>alert(1)" not in response.text and "<img src=x" not in response.text, search


def test_unknown_views_are_refused_in_swedish(base_url: str) -> None:
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        for query in ("visa=alla", "vy=tabell", "visa=" + "m" * 200):
            response = client.get(f"/wards/avd-norr?{query}")
            assert response.status_code == 422, query
            text = response.text
            assert "alla" not in text and "tabell" not in text and "m" * 200 not in text, query


def test_list_mode_is_remembered_by_the_browser(base_url: str) -> None:
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        assert 'class="ward-table"' not in client.get("/wards/avd-norr").text
        assert 'class="ward-table"' in client.get("/wards/avd-norr?vy=lista").text
        assert 'class="ward-table"' in client.get("/wards/avd-norr").text
        assert 'class="ward-table"' not in client.get("/wards/avd-norr?vy=kort").text
        assert 'class="ward-table"' not in client.get("/wards/avd-norr").text


def test_one_order_acuity_then_risk_with_level_and_review_in_the_json(
    base_url: str, db: psycopg.Connection, ward: Ward
) -> None:
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        page = shown(client, "")
        answer = client.get("/api/wards/avd-norr/overview").json()
    names = [p["name"] for p in answer["patients"]]
    # Anna's high alert first; then Elsa (röd); then the rest by NEWS2, then name (no level = gul).
    assert names == ["Anna Andersson", "Elsa Ek", "Bertil Berg", "David Dahl", "Åsa Öberg"] == page
    by_name = {p["name"]: p for p in answer["patients"]}
    assert by_name["Elsa Ek"]["care_level"] == "red" and by_name["Anna Andersson"]["care_level"] is None
    assert by_name["Åsa Öberg"]["review_overdue"] is True and by_name["Elsa Ek"]["review_overdue"] is False
    assert by_name["Elsa Ek"]["review_due_at"] > answer["at"]
    assert "personal_number" not in by_name["Anna Andersson"] and "attending_staff" not in by_name["Elsa Ek"]


def test_the_list_row_says_what_matters(base_url: str, ward: Ward) -> None:
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        page = client.get("/wards/avd-norr?vy=lista").text
    rows = {html.unescape(m[1]): m[0] for m in re.findall(r'(<tr[^>]*>(?:(?!</tr>).)*</tr>)', page)
            for m in [(m, (ROW_NAME.search(m) or [None, ""])[1])] if m[1]}  # fmt: skip
    anna, bertil = rows["Anna Andersson"], rows["Bertil Berg"]
    assert 'class="row-high"' in anna and "SpO₂ 85 % under gränsen 88 %" in anna and ">Hög<" in anna
    assert "SpO₂\u00a0<b>85\u00a0%</b>" in bertil and "Puls\u00a0<b>135</b>" in bertil and ">≥6<" in bertil
    assert 'class="kit-offline">Frånkopplad' in rows["Åsa Öberg"] and "Granska nu" in rows["Åsa Öberg"]
    assert 'class="kit-none">Ingen' in rows["David Dahl"]
    assert 'class="lv-red">Röd' in rows["Elsa Ek"] and "om 8 h" in rows["Elsa Ek"]
    assert "<form" not in page.split('class="ward-table"')[1]  # no action forms in the list


def recv(ws: object, kind: str) -> dict[str, object]:
    while True:
        message = json.loads(ws.recv(timeout=5))  # type: ignore[attr-defined]
        if message["type"] == kind:
            return message  # type: ignore[no-any-return]


def data_order(fragment: str) -> str:
    found = re.search(r' data-order="([^"]+)"', fragment)
    assert found is not None, fragment[:200]
    return found[1]


def row_names(fragments: object) -> list[str]:
    return [html.unescape(ROW_NAME.search(f)[1]) for f in fragments]  # type: ignore[attr-defined,index]


def test_live_list_with_a_filter_lets_patients_enter_and_leave(
    base_url: str, db: psycopg.Connection, ward: Ward
) -> None:
    before = len(overview_rows(db))
    with (
        logged_in(base_url, "nurse.norr", PASSWORD) as client,
        ward_socket(client, base_url, "avd-norr?vy=lista&visa=larm") as ws,
    ):
        snapshot = recv(ws, "snapshot")
        assert row_names(snapshot["cards"]) == ["Anna Andersson"]
        assert all(str(f).startswith("<tr") for f in snapshot["cards"])  # type: ignore[attr-defined]
        assert overview_rows(db)[before:] == [ward.anna.patient_id]
        # Bertil gets an alert: he starts matching and enters; the ward's order comes with him.
        alert_id = add_alert(db, ward.bertil, priority="medium", rule="pulse_high", message="Puls 135")
        db.execute("SELECT pg_notify('hemma_events', %s)", (json.dumps(
            {"kind": "alerts", "ward_id": "avd-norr", "alert_ids": [alert_id]}),))  # fmt: skip
        delta = recv(ws, "delta")
        assert row_names(delta["cards"]) == ["Bertil Berg"] and delta["removed"] == []
        assert overview_rows(db)[before:] == [ward.anna.patient_id, ward.bertil.patient_id]
        # Anna's alert ends: she stops matching and leaves.
        db.execute("UPDATE alerts SET state = 'resolved', resolved_at = now() WHERE patient_id = %s",
                   (ward.anna.patient_id,))  # fmt: skip
        event = {"kind": "vitals", "ward_id": "avd-norr", "patient_ids": [str(ward.anna.patient_id)]}
        db.execute("SELECT pg_notify('hemma_events', %s)", (json.dumps(event),))
        delta = recv(ws, "delta")
        assert delta["removed"] == [str(ward.anna.patient_id)] and delta["cards"] == []
        # The page changes its filter: a fresh snapshot of what it now shows, logged once each.
        ws.send(json.dumps({"type": "view", "filters": ["teknik"], "search": ""}))
        snapshot = recv(ws, "snapshot")
        assert row_names(snapshot["cards"]) == ["David Dahl", "Åsa Öberg"]
        ws.send(json.dumps({"type": "view", "filters": [], "search": "19480101-1234"}))
        assert row_names(recv(ws, "snapshot")["cards"]) == ["Anna Andersson"]
        ws.send(json.dumps({"type": "view", "filters": ["nonsense"], "search": ""}))  # ignored
        ws.send(json.dumps({"type": "view", "filters": [], "search": "berg"}))
        assert row_names(recv(ws, "snapshot")["cards"]) == ["Bertil Berg", "Åsa Öberg"]
    logged = overview_rows(db)[before:]
    # One row per patient per websocket, for exactly the patients it was shown.
    expected = [ward.anna.patient_id, ward.bertil.patient_id, ward.asa.patient_id, ward.david.patient_id]
    assert sorted(map(str, logged)) == sorted(map(str, expected))


def test_cards_mode_websocket_filters_too(base_url: str, ward: Ward) -> None:
    with (
        logged_in(base_url, "nurse.norr", PASSWORD) as client,
        ward_socket(client, base_url, "avd-norr?visa=news2") as ws,
    ):
        snapshot = recv(ws, "snapshot")
        assert len(snapshot["cards"]) == 1 and "Bertil Berg" in snapshot["cards"][0]  # type: ignore[index]
        assert snapshot["cards"][0].startswith("<article")  # type: ignore[index,union-attr]


# --- pure ------------------------------------------------------------------------------------------


def test_personal_number_forms() -> None:
    assert personal_number_forms("19480101-1234", 1948) == ("194801011234", "4801011234")
    assert personal_number_forms("480101-1234", 1948) == ("194801011234", "4801011234")
    assert personal_number_forms("480101+1234", None) == ("4801011234",)
    assert personal_number_forms(None, 1948) == ()


def test_views_parse_or_refuse() -> None:
    assert WardView.parse("lista", ["larm"], "  anna  ").search == "anna"
    assert WardView.parse(None, [], None, "lista").mode == "list"
    assert WardView.parse("kort", [], None, "lista").mode == "cards"
    for bad in (("tabell", [], None), (None, ["alla"], None), (None, [], "a" * 101)):
        with pytest.raises(ViewRefused):
            WardView.parse(*bad)
    view = WardView.parse("lista", ["news2", "larm"], "Anna")
    assert view.query() == "vy=lista&visa=larm&visa=news2&sok=Anna"
    assert view.query("cards").startswith("vy=kort")
    assert PatientCard.sort_key.__doc__ is not None and "care level" in PatientCard.sort_key.__doc__


def test_a_patient_i_take_on_enters_mine_in_place(base_url: str, db: psycopg.Connection, ward: Ward) -> None:
    from tests.support.dashboard_server import csrf_token

    alert_id = db.execute("SELECT id FROM alerts WHERE patient_id = %s", (ward.anna.patient_id,)).fetchone()
    assert alert_id is not None
    with (
        logged_in(base_url, "nurse.norr", PASSWORD) as client,
        ward_socket(client, base_url, "avd-norr?vy=lista&visa=mina") as ws,
    ):
        (elsa_row,) = recv(ws, "snapshot")["cards"]
        assert row_names([elsa_row]) == ["Elsa Ek"]
        token = csrf_token(client, "/wards/avd-norr")
        answer = client.post(
            f"/api/alerts/{alert_id[0]}/acknowledge", json={}, headers={"X-CSRF-Token": token}
        )
        assert answer.status_code == 200
        delta = recv(ws, "delta")
        assert row_names(delta["cards"]) == ["Anna Andersson"] and "kvitterat" in delta["cards"][0]  # type: ignore[index]
        # Her place in the ward did not move, but this page has never had her: her row carries its
        # place (data-order), before Elsa's, and no message carries the ward's whole order.
        assert "order" not in delta
        assert data_order(delta["cards"][0]) < data_order(elsa_row)  # type: ignore[index]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(-200, 200), min_size=5, max_size=5),
            st.text(max_size=12),  # any code point, the astral planes included
            st.uuids().map(str),
        ),
        min_size=2,
        max_size=25,
    )
)
def test_a_cards_data_order_sorts_in_the_browser_as_the_ward_sorts(
    cards: list[tuple[list[int], str, str]],
) -> None:
    """dashboard.js compares data-order with `<`, by UTF-16 code units; Python sorts sort_key's tuple."""
    by_tuple = sorted(cards, key=lambda c: (*c[0], c[1], c[2]))
    by_string = sorted(cards, key=lambda c: order_string(c[0], c[1], c[2]).encode("utf-16-be"))
    assert [order_string(*c) for c in by_string] == [order_string(*c) for c in by_tuple]


def test_data_order_refuses_a_number_it_cannot_place() -> None:
    with pytest.raises(ValueError):
        order_string([10_000], "Anna", "x")
