"""NEWS2 on the ward overview, against a real PostgreSQL and uvicorn: every card's chip (a total only
when complete, a marked lower bound otherwise), its risk band, the sort order it adds, live deltas when
vitals or observations change or a value grows too old, and the number of queries a ward of 100 costs.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from alerts.news2 import score_one
from care.enrolment import EnrolledPatient, enrol_patient
from core.settings import Settings
from dashboard.model import Ward
from dashboard.news2_summary import News2Inputs, summarise, summarise_many
from dashboard.queries import fetch_ward_overview
from tests.support.cards import cards_of
from tests.support.dashboard_server import csrf_token, logged_in, running_dashboard, ward_socket
from tests.support.ward_seed import PASSWORD, seed_two_wards, set_vital

SECRET = "test-session-secret-news2-overview-0123"


@dataclass
class Ward5:
    anna: EnrolledPatient  # complete, low (1)
    bertil: EnrolledPatient  # complete, medium (5)
    doris: EnrolledPatient  # incomplete, a red 3 (SpO2 90 %): ≥ 3, low-medium floor; BP stale
    erik: EnrolledPatient  # nothing measured
    frida: EnrolledPatient  # incomplete, present values score 0: the band is unknown, not low
    nurse_id: int


def add_manual(
    db: psycopg.Connection,
    patient: EnrolledPatient,
    *,
    minutes_ago: float = 30,
    consciousness: str | None = None,
    on_oxygen: bool | None = None,
) -> None:
    db.execute(
        "INSERT INTO manual_observations (patient_id, time, consciousness, on_oxygen, source)"
        " VALUES (%s, now() - make_interval(secs => %s), %s, %s, 'patient')",
        (patient.patient_id, minutes_ago * 60, consciousness, on_oxygen),
    )


def add_alert(
    db: psycopg.Connection, patient: EnrolledPatient, *, priority: str, condition: str = "physiological"
) -> int:
    rule, message = (
        ("pulse_high", "Puls 118/min över gränsen 110/min")
        if condition == "physiological"
        else ("gateway_offline", "Hemenheten har inte hörts av på 40 min")
    )
    row = db.execute(
        "INSERT INTO alerts (patient_id, ward_id, rule, vital, priority, state, condition, message, value,"
        " observed_at) VALUES (%s, %s, %s, NULL, %s, 'open', %s, %s, NULL, now()) RETURNING id",
        (patient.patient_id, patient.ward_id, rule, priority, condition, message),
    ).fetchone()
    assert row is not None
    return int(row[0])


def complete_set(
    db: psycopg.Connection,
    patient: EnrolledPatient,
    *,
    rr: float,
    spo2: float,
    sbp: float,
    pulse: float,
    temp: float,
    acvpu: str = "A",
    oxygen: bool = False,
) -> None:
    for vital, value, unit in (
        ("respiratory_rate", rr, "/min"),
        ("spo2", spo2, "%"),
        ("systolic_bp", sbp, "mm[Hg]"),
        ("pulse_rate", pulse, "/min"),
        ("body_temperature", temp, "Cel"),
    ):
        set_vital(db, patient, vital, value, unit, minutes_ago=20)
    add_manual(db, patient, consciousness=acvpu, on_oxygen=oxygen)


@pytest.fixture
def ward(db: psycopg.Connection) -> Ward5:
    anna, bertil, _, (nurse_id,) = seed_two_wards(
        db, [("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"])]
    )
    doris = enrol_patient(db, ward_id="avd-norr", display_name="Doris Dahl", gateway_id="gw-doris")
    erik = enrol_patient(db, ward_id="avd-norr", display_name="Erik Ek", gateway_id="gw-erik")
    frida = enrol_patient(db, ward_id="avd-norr", display_name="Frida Fors", gateway_id="gw-frida")
    complete_set(db, anna, rr=16, spo2=97, sbp=130, pulse=95, temp=36.8)  # 1: pulse
    complete_set(db, bertil, rr=22, spo2=95, sbp=105, pulse=95, temp=37.0)  # 2 + 1 + 1 + 1
    set_vital(db, doris, "spo2", 90, "%", minutes_ago=15)  # 3 on scale 1: a red score
    set_vital(db, doris, "pulse_rate", 80, "/min", minutes_ago=15)
    set_vital(db, doris, "body_temperature", 37.1, "Cel", minutes_ago=15)
    set_vital(db, doris, "systolic_bp", 125, "mm[Hg]", minutes_ago=5 * 60)  # older than 4 h
    set_vital(db, frida, "spo2", 97, "%", minutes_ago=10)
    set_vital(db, frida, "pulse_rate", 70, "/min", minutes_ago=10)
    return Ward5(anna, bertil, doris, erik, frida, nurse_id)


@pytest.fixture
def base_url(database_url: str, ward: Ward5) -> Iterator[str]:
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield url


def chips(page: str) -> dict[str, tuple[str, str, str | None, str]]:
    """name -> (class, score text, marker, title) of every card's NEWS2 chip, in page order."""
    found = {}
    for article in re.finditer(r"<article (.*?)</article>", page, re.S):
        html = article.group(1)
        name = re.search(r'class="patient-name"><a [^>]*>([^<]+)<', html)
        chip = re.search(r'<a class="(news2-chip[^"]*)" href="[^"]+" title="([^"]+)"', html)
        score = re.search(r'<span class="news2-score">([^<]+)</span>', html)
        marker = re.search(r'<span class="news2-marker">([^<]+)</span>', html)
        assert name and chip and score, html
        found[name.group(1)] = (
            chip.group(1),
            score.group(1),
            marker.group(1) if marker else None,
            chip.group(2),
        )
    return found


def test_every_card_carries_its_news2_chip_coloured_by_risk_and_never_complete_when_it_is_not(
    base_url: str, db: psycopg.Connection, ward: Ward5
) -> None:
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        overview = client.get("/api/wards/avd-norr/overview").json()
        page = client.get("/wards/avd-norr").text
        doris_record = client.get(f"/patients/{ward.doris.patient_id}").text
    cards = {p["name"]: p["news2"] for p in overview["patients"]}
    assert score_one(16, 97, 130, 95, 36.8, "A", False).total == 1
    assert score_one(22, 95, 105, 95, 37.0, "A", False).total == 5
    doris_present = score_one(None, 90, None, 80, 37.1, None, None)
    assert (doris_present.partial_total, doris_present.risk_floor.label) == (3, "low-medium")
    nothing = "NEWS2 kan inte beräknas (inga aktuella värden)"
    doris_title = "NEWS2 ≥ 3 (ofullständig: saknar AF, luft/syrgas, medvetandegrad; inaktuellt systoliskt BT)"
    expected = {
        # name: (text, marker, band, complete, total, partial, title)
        "Anna Andersson": ("NEWS2 1", None, "low", True, 1, 1, "NEWS2 1 (låg risk)"),
        "Bertil Berg": ("NEWS2 5", None, "medium", True, 5, 5, "NEWS2 5 (medel risk)"),
        "Doris Dahl": ("NEWS2 ≥ 3", "ofullständig", "low-medium", False, None, 3, doris_title),
        "Erik Ek": ("NEWS2 –", "inga värden", "unknown", False, None, 0, nothing),
        "Frida Fors": (
            "NEWS2 ≥ 0", "ofullständig", "unknown", False, None, 0,
            "NEWS2 ≥ 0 (ofullständig: saknar AF, luft/syrgas, systoliskt BT, medvetandegrad, temp)",
        ),
    }  # fmt: skip
    got = {
        name: (n["text"], n["marker"], n["band"], n["complete"], n["total"], n["partial_total"], n["title"])
        for name, n in cards.items()
    }
    assert got == expected
    # No alerts anywhere: the higher risk band first, then the higher (partial) total, then the name.
    order = ["Bertil Berg", "Doris Dahl", "Anna Andersson", "Erik Ek", "Frida Fors"]
    assert [p["name"] for p in overview["patients"]] == order
    assert (
        cards["Bertil Berg"]["urgency"] > cards["Doris Dahl"]["urgency"] > cards["Anna Andersson"]["urgency"]
    )

    # The server-rendered page shows the same chips in the same order.
    html_chips = chips(page)
    assert list(html_chips) == order
    for name, (text, marker, band, complete, *_rest, title) in expected.items():
        classes, score, shown_marker, shown_title = html_chips[name]
        assert classes == f"news2-chip news2-{band}" + ("" if complete else " news2-incomplete")
        assert (score, shown_marker, shown_title) == (text, marker, title)
    # The record says what the chip's title says: one computation for both.
    assert f'id="news2-headline">{doris_title}<' in doris_record
    doris_chip = (
        f'<a class="news2-chip news2-low-medium news2-incomplete" href="/patients/{ward.doris.patient_id}'
    )
    assert doris_chip + '#news2"' in page


def test_alerts_still_sort_first_and_news2_breaks_their_ties(
    base_url: str, db: psycopg.Connection, ward: Ward5
) -> None:
    add_alert(db, ward.erik, priority="medium")  # no NEWS2 at all, but a physiological alert
    add_alert(db, ward.anna, priority="medium")  # the same rank; NEWS2 1 puts her before Erik
    add_alert(db, ward.frida, priority="high", condition="technical")  # an open technical alarm
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        overview = client.get("/api/wards/avd-norr/overview").json()
        page = client.get("/wards/avd-norr").text
    order = ["Anna Andersson", "Erik Ek", "Frida Fors", "Bertil Berg", "Doris Dahl"]
    assert [p["name"] for p in overview["patients"]] == order
    assert [(p["rank"], p["tech_rank"]) for p in overview["patients"]] == [
        (1, 1),
        (1, 1),
        (2, 0),
        (2, 1),
        (2, 1),
    ]
    assert list(chips(page)) == order


def test_a_new_vital_and_a_nurses_observation_change_the_chip_in_a_delta(
    base_url: str, db: psycopg.Connection, ward: Ward5
) -> None:
    doris = ward.doris
    with (
        logged_in(base_url, "nurse.norr", PASSWORD) as client,
        ward_socket(client, base_url, "avd-norr") as ws,
    ):
        snapshot = recv(ws, "snapshot")
        chip = {p["name"]: p["news2"] for p in cards_of(snapshot)}["Doris Dahl"]
        assert (chip["text"], chip["marker"], chip["band"]) == ("NEWS2 ≥ 3", "ofullständig", "low-medium")

        # A respiration rate of 26 (3 points) arrives from a device, as ingest stores and announces it.
        set_vital(db, doris, "respiratory_rate", 26, "/min")
        set_vital(db, doris, "systolic_bp", 118, "mm[Hg]")
        db.execute(
            "SELECT pg_notify('hemma_events', %s)",
            (json.dumps({"kind": "vitals", "ward_id": "avd-norr", "patient_ids": [str(doris.patient_id)]}),),
        )
        delta = recv(ws, "delta")
        (card,) = cards_of(delta)
        assert card["name"] == "Doris Dahl"
        # The delta is rendered HTML; the numbers behind the chip are the API's (the same News2Summary).
        assert shows_data(card, news2_data(client, "Doris Dahl"))
        assert (card["news2"]["text"], news2_data(client, "Doris Dahl")["partial_total"]) == ("NEWS2 ≥ 6", 6)
        assert card["news2"]["title"] == "NEWS2 ≥ 6 (ofullständig: saknar luft/syrgas, medvetandegrad)"
        assert card["news2"]["band"] == "medium"

        # The nurse's visit: alert, on air. Now complete (the record's endpoint announces 'vitals').
        token = csrf_token(client, f"/patients/{doris.patient_id}")
        response = client.post(
            f"/api/patients/{doris.patient_id}/observations",
            json={"consciousness": "A", "on_oxygen": False},
            headers={"X-CSRF-Token": token},
        )
        assert response.status_code == 201
        delta = recv(ws, "delta")
        (card,) = cards_of(delta)
        expected = score_one(26, 90, 118, 80, 37.1, "A", False)
        assert expected.total == 6
        data = news2_data(client, "Doris Dahl")
        assert shows_data(card, data)
        assert data | {"fresh_until": None} == {
            "text": "NEWS2 6",
            "marker": None,
            "title": "NEWS2 6 (medel risk)",
            "band": "medium",
            "complete": True,
            "total": 6,
            "partial_total": 6,
            "risk": "medium",
            "urgency": data["urgency"],
            "fresh_until": None,
        }


def test_a_value_growing_too_old_updates_the_chip_without_any_event(
    base_url: str, db: psycopg.Connection, ward: Ward5
) -> None:
    # Anna's only SpO2 leaves its 4 h window a few seconds from now; nothing else will happen.
    db.execute("DELETE FROM observations WHERE patient_id = %s AND vital = 'spo2'", (ward.anna.patient_id,))
    set_vital(db, ward.anna, "spo2", 97, "%", minutes_ago=4 * 60 - 8 / 60)
    with (
        logged_in(base_url, "nurse.norr", PASSWORD) as client,
        ward_socket(client, base_url, "avd-norr") as ws,
    ):
        snapshot = recv(ws, "snapshot")
        anna = {p["name"]: p["news2"] for p in cards_of(snapshot)}["Anna Andersson"]
        assert (anna["text"], anna["complete"]) == ("NEWS2 1", True)
        delta = recv(ws, "delta", timeout=20)
        (card,) = cards_of(delta)
        assert card["name"] == "Anna Andersson"
        assert card["news2"]["text"] == "NEWS2 ≥ 1" and card["news2"]["marker"] == "ofullständig"
        assert card["news2"]["title"] == "NEWS2 ≥ 1 (ofullständig: inaktuellt SpO₂)"
        assert card["news2"]["band"] == "unknown"


def news2_data(client: Any, name: str) -> dict[str, Any]:
    """The patient's NEWS2 summary as the JSON API gives it (the data the chip is rendered from)."""
    overview = client.get("/api/wards/avd-norr/overview").json()
    return {p["name"]: p["news2"] for p in overview["patients"]}[name]  # type: ignore[no-any-return]


def shows_data(card: dict[str, Any], data: dict[str, Any]) -> bool:
    """The rendered chip shows the summary: its text, marker, title, band and completeness."""
    chip = card["news2"]
    return chip == {
        "text": data["text"],
        "marker": data["marker"],
        "title": data["title"],
        "band": data["band"],
        "complete": data["complete"],
    }


def recv(ws: Any, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next message of `kind`, skipping heartbeats."""
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message["type"] == kind:
            return message  # type: ignore[no-any-return]
        assert message["type"] == "heartbeat", message


# --- cost ------------------------------------------------------------------------------------------


class CountingCursor(psycopg.AsyncCursor):  # type: ignore[type-arg]
    """A real cursor that counts the statements sent through it."""

    statements = 0

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        type(self).statements += 1
        return await super().execute(*args, **kwargs)


def overview_statements(database_url: str) -> tuple[int, list[Any]]:
    async def run() -> tuple[int, list[Any]]:
        CountingCursor.statements = 0
        async with await psycopg.AsyncConnection.connect(
            database_url, autocommit=True, cursor_factory=CountingCursor
        ) as conn:
            overview = await fetch_ward_overview(conn, Ward("avd-norr", "Avdelning Norr"))
        return CountingCursor.statements, list(overview.patients)

    return asyncio.run(run())


def test_a_ward_of_100_costs_the_same_six_queries_as_a_ward_of_5(
    database_url: str, db: psycopg.Connection, ward: Ward5
) -> None:
    small, cards = overview_statements(database_url)
    assert len(cards) == 5 and small == 6
    for i in range(95):
        patient = enrol_patient(db, ward_id="avd-norr", display_name=f"Patient {i:03d}", gateway_id=f"gw-{i}")
        complete_set(db, patient, rr=12 + i % 14, spo2=90 + i % 10, sbp=100 + i, pulse=60 + i, temp=36.5)
    large, cards = overview_statements(database_url)
    assert len(cards) == 100 and large == small
    assert all(
        card.news2 is not None and card.news2.complete for card in cards if card.name.startswith("Patient")
    )
    urgencies = [card.news2_urgency for card in cards]
    assert urgencies == sorted(urgencies, reverse=True)  # no alerts: NEWS2 decides the order


# --- one kernel call for many patients -------------------------------------------------------------


def test_many_patients_in_one_call_say_what_one_at_a_time_says() -> None:
    now = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)

    def ago(minutes: float) -> datetime:
        return now - timedelta(minutes=minutes)

    full = News2Inputs(
        resp_rate=(16, ago(60)),
        spo2=(97, ago(10)),
        systolic_bp=(130, ago(200)),  # the first to leave its window: 4 h after 200 min ago
        pulse=(95, ago(10)),
        temperature=(36.8, ago(10)),
        consciousness=("A", ago(600)),
        on_oxygen=(False, ago(600)),
    )
    cases = [
        full,
        News2Inputs(None, (90, ago(5)), None, (80, ago(5)), None, None, None),
        News2Inputs(None, None, None, None, None, None, None),
        News2Inputs((26, ago(30)), (95, ago(5)), None, None, None, ("C", ago(5)), None, spo2_scale=2),
    ]
    batched = summarise_many(cases, now)
    assert batched == [summarise(case, now) for case in cases]
    assert summarise_many([], now) == []
    assert [s.chip_text for s in batched] == ["NEWS2 1", "NEWS2 ≥ 3", "NEWS2 –", "NEWS2 ≥ 6"]
    assert [s.band for s in batched] == ["low", "low-medium", "unknown", "medium"]
    # When the score will change by time alone: the earliest counted value's window end.
    assert batched[0].fresh_until == ago(200) + timedelta(hours=4)
    assert batched[1].fresh_until == ago(5) + timedelta(hours=4)
    assert batched[2].fresh_until is None
