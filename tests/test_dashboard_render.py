"""One renderer for the dashboard (issue 9): a live card is the page's card, byte for byte; the page's
script formats nothing and carries no Swedish; a card is re-rendered when time alone changes its text;
one fragment serves every websocket of a role variant."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from care.permissions import Action
from care.staff import create_staff_user
from core.settings import Settings
from core.vitals import Vital
from dashboard.card_times import TEXT_REFRESH_S, next_change
from dashboard.client_texts import CLIENT_TEXTS
from dashboard.model import AlertView, ContactRequestView, PatientCard, StaffUser, VitalReading
from dashboard.rendering import CardViewer, Renderer
from tests.support.dashboard_server import logged_in, running_dashboard, ward_socket
from tests.support.ward_seed import PASSWORD, add_alert, seed_two_wards, set_vital

SCRIPT = Path(__file__).resolve().parent.parent / "dashboard" / "static" / "dashboard.js"
SECRET = "test-session-secret-render-0123456789"
STOCKHOLM = ZoneInfo("Europe/Stockholm")


@pytest.fixture
def seeded(db: psycopg.Connection) -> dict[str, Any]:
    anna, bertil, _, _ = seed_two_wards(db, [("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"])])
    create_staff_user(db, username="it.admin", display_name="Ada Admin", role="admin", password=PASSWORD,
                      ward_ids=["avd-norr"])  # fmt: skip
    # Ages far from a minute's turn, so the page and the websocket read the same text.
    set_vital(db, anna, "spo2", 93, "%", minutes_ago=12.5)
    set_vital(db, anna, "pulse_rate", 88, "/min", minutes_ago=95.5)
    set_vital(db, bertil, "body_temperature", 37.8, "Cel", minutes_ago=30.5)
    add_alert(db, anna, priority="high", rule="spo2_low", message="SpO₂ 85 % under gränsen 88 %")
    return {"anna": anna, "bertil": bertil}


@pytest.fixture
def base_url(database_url: str) -> Iterator[str]:
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield url


def page_card(page: str, patient_id: uuid.UUID) -> str:
    match = re.search(
        r'<article class="patient[^"]*" data-order="[^"]+" data-v="[0-9a-f]+" '
        rf'data-patient-id="{patient_id}">.*?</article>',
        page,
        re.S,
    )
    assert match is not None, f"no card for {patient_id}"
    return match.group(0)


def data_order(fragment: str) -> str:
    found = re.search(r' data-order="([^"]+)"', fragment)
    assert found is not None, fragment[:200]
    return found[1]


def recv(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        message = json.loads(ws.recv(timeout=5))
        if message["type"] == kind:
            return message  # type: ignore[no-any-return]
        assert message["type"] == "heartbeat", message


@pytest.mark.parametrize("username", ["nurse.norr", "it.admin"])
def test_a_live_card_is_the_page_card_for_the_same_patient(
    base_url: str, db: psycopg.Connection, seeded: dict[str, Any], username: str
) -> None:
    anna = seeded["anna"]
    with logged_in(base_url, username, PASSWORD) as client, ward_socket(client, base_url, "avd-norr") as ws:
        snapshot = recv(ws, "snapshot")
        page = client.get("/wards/avd-norr").text
        assert snapshot["cards"] == [page_card(page, p.patient_id) for p in (anna, seeded["bertil"])]
        assert 'id="count-high">1 hög<' in snapshot["parts"]["ward-summary"]

        set_vital(db, anna, "spo2", 86, "%")
        event = {"kind": "vitals", "ward_id": "avd-norr", "patient_ids": [str(anna.patient_id)]}
        db.execute("SELECT pg_notify('hemma_events', %s)", (json.dumps(event),))
        first = delta = recv(ws, "delta")
        # A card whose clock text turns (at the site's midnight "23:59" becomes "6 dec 23:59") is
        # pushed on its own: wait for the delta that carries Anna's change.
        mine = f'data-patient-id="{anna.patient_id}"'
        while not any(mine in c for c in delta["cards"]):
            delta = recv(ws, "delta")
        page = client.get("/wards/avd-norr").text
    (card,) = [c for c in delta["cards"] if mine in c]
    assert card == page_card(page, anna.patient_id)
    assert '<span class="vital-value">86</span>' in card and ">nyss</time>" in card
    assert ("ack-form" in card) is (username == "nurse.norr")  # the role's variant, as on the page
    # No delta carries the ward's order: each card carries its place (data-order), Anna's first.
    assert "order" not in first and "order" not in delta
    bertil_card = page_card(page, seeded["bertil"].patient_id)
    assert data_order(card) < data_order(bertil_card)
    assert delta["removed"] == []


def test_an_unchanged_card_is_not_pushed_again(
    base_url: str, db: psycopg.Connection, seeded: dict[str, Any]
) -> None:
    anna, bertil = seeded["anna"], seeded["bertil"]
    event = {"kind": "vitals", "ward_id": "avd-norr", "patient_ids": [str(anna.patient_id)]}
    with (
        logged_in(base_url, "nurse.norr", PASSWORD) as client,
        ward_socket(client, base_url, "avd-norr") as ws,
    ):
        recv(ws, "snapshot")
        set_vital(db, anna, "spo2", 90, "%")
        db.execute("SELECT pg_notify('hemma_events', %s)", (json.dumps(event),))
        (sent,) = recv(ws, "delta")["cards"]
        # The same event again, nothing changed: no message. Then Bertil's change arrives alone.
        db.execute("SELECT pg_notify('hemma_events', %s)", (json.dumps(event),))
        time.sleep(0.5)
        set_vital(db, bertil, "body_temperature", 38.9, "Cel")
        db.execute(
            "SELECT pg_notify('hemma_events', %s)",
            (json.dumps(event | {"patient_ids": [str(bertil.patient_id)]}),),
        )
        mine, his = f'data-patient-id="{anna.patient_id}"', f'data-patient-id="{bertil.patient_id}"'
        while True:
            delta = recv(ws, "delta")
            # Anna's card comes again only if it changed: its age text may turn meanwhile ("1 min sedan").
            for card in (c for c in delta["cards"] if mine in c):
                assert card != sent, "an unchanged card was pushed again"
                sent = card
            if any(his in c for c in delta["cards"]):
                break
    (card,) = [c for c in delta["cards"] if his in c]
    assert ">38,9<" in card
    assert "order" not in delta  # Bertil's temperature moved nobody


def test_the_page_script_formats_no_time_and_carries_no_swedish() -> None:
    script = SCRIPT.read_text(encoding="utf-8")
    banned = (
        *("Intl.DateTimeFormat", "RelativeTimeFormat", "toLocale", "Europe/", "TIME_ZONE", "MONTHS"),
        *("PRIORITY_RANK", "sedan", "nyss", "createElement", "innerHTML"),
    )
    for text in banned:
        assert text not in script.replace("(never innerHTML)", ""), text
    assert not re.search(r"[åäöÅÄÖ]", script)
    literals = re.findall(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`[^`]*`', script)
    months = {"jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec"}
    words = months | {"kvittera", "kvitterat", "snoozat", "avsluta", "avslutat", "ansluten", "ansluter"}
    words |= {"patienter", "medel", "tekniska", "misslyckades", "nekades", "larmet", "sparad", "tim"}
    for literal in literals:
        found = set(re.findall(r"[a-z]+", literal.lower())) & words
        assert not found, (literal, found)
    assert len(literals) > 50  # the pattern finds the script's strings


def test_the_scripts_texts_come_from_the_server() -> None:
    script = SCRIPT.read_text(encoding="utf-8")
    used = set(re.findall(r'text\("(\w+)", "(\w+)"\)', script))
    assert used and all(key in CLIENT_TEXTS[group] for group, key in used), used
    assert all("failed" in texts and "offline" in texts for texts in CLIENT_TEXTS.values())


def _card(readings: tuple[VitalReading, ...] = (), alerts: tuple[AlertView, ...] = ()) -> PatientCard:
    return PatientCard(uuid.uuid4(), "avd-norr", "Anna Andersson", 1948, None, None, readings, alerts)


def test_a_card_is_due_when_its_text_would_change_by_time_alone() -> None:
    now = datetime(2026, 1, 15, 13, 0, 10, tzinfo=UTC)  # 14:00:10 in Stockholm
    fresh = VitalReading(Vital.SPO2, 95, "%", now - timedelta(seconds=20))  # "nyss" until 13:00:50
    # Rounded up to the next half minute, so that a ward's cards falling due together are read together.
    assert next_change(_card((fresh,)), now, STOCKHOLM) == datetime(2026, 1, 15, 13, 1, 0, tzinfo=UTC)
    minutes = VitalReading(Vital.SPO2, 95, "%", now - timedelta(minutes=12, seconds=5))  # "12 min" until 13
    due = next_change(_card((minutes,)), now, STOCKHOLM)
    assert now + timedelta(seconds=55) <= due < now + timedelta(seconds=55 + TEXT_REFRESH_S)
    day_old = VitalReading(Vital.SPO2, 95, "%", now - timedelta(hours=23, minutes=59, seconds=50))
    assert next_change(_card((day_old,)), now, STOCKHOLM) <= now + timedelta(seconds=TEXT_REFRESH_S)  # stale
    # Nothing else: the clocks' "today" ends at local midnight (23:00 UTC in January); a green patient
    # reviewed now reads "Granskning: om 3 dygn" until two days before the review is due.
    calm = replace(_card(), care_level="green", last_reviewed_at=now)
    assert next_change(calm, now, STOCKHOLM) == datetime(2026, 1, 15, 23, 0, tzinfo=UTC)
    # The review's countdown (care.care_levels): red, reviewed 5 h 10 s ago, reads "om 3 h" until 2 h
    # are left, at 13:00:00 UTC + 1 h; and "Granska nu" when due.
    red = replace(_card(), care_level="red", last_reviewed_at=now - timedelta(hours=5, seconds=10))
    assert next_change(red, now, STOCKHOLM) == datetime(2026, 1, 15, 14, 0, 0, tzinfo=UTC)
    snoozed = AlertView(1, uuid.uuid4(), "avd-norr", "spo2_low", "spo2", "high", "acknowledged", "SpO₂ låg",
                        85, now, now, snoozed_until=now + timedelta(minutes=15))  # fmt: skip
    assert next_change(_card(alerts=(snoozed,)), now, STOCKHOLM) == now + timedelta(minutes=15, seconds=20)
    # A contact request's "· nyss" ages like a reading: its card is re-read when that text changes.
    asked = ContactRequestView(1, "open", "button", now, now - timedelta(seconds=20))
    card = replace(calm, contact=asked)
    assert next_change(card, now, STOCKHOLM) == datetime(2026, 1, 15, 13, 1, 0, tzinfo=UTC)


def test_one_fragment_per_role_variant_and_the_site_zone_decides_the_clock() -> None:
    nurse = StaffUser(1, "n", "N", "nurse", frozenset({"avd-norr"}))
    physician = replace(nurse, role="physician")
    admin = replace(nurse, role="admin")
    assert CardViewer.of(nurse) == CardViewer.of(physician) != CardViewer.of(admin)
    with pytest.raises(LookupError):
        CardViewer.of(nurse).may(Action.SET_ALERT_LIMIT)  # a card asking this would vary by more
    now = datetime(2026, 1, 15, 13, 0, tzinfo=UTC)
    alert = AlertView(1, uuid.uuid4(), "avd-norr", "spo2_low", "spo2", "high", "open", "SpO₂ låg", 85,
                      now, now - timedelta(minutes=3))  # fmt: skip
    card = _card(alerts=(alert,))
    stockholm = Renderer(STOCKHOLM).card(card, now, CardViewer.of(nurse))
    assert ">13:57</time>" in stockholm and "ack-form" in stockholm
    assert ">12:57</time>" in Renderer(ZoneInfo("Europe/London")).card(card, now, CardViewer.of(admin))
    assert "ack-form" not in Renderer(STOCKHOLM).card(card, now, CardViewer.of(admin))


def _metric(base_url: str, name: str) -> float:
    import httpx

    text = httpx.get(base_url + "/metrics").text
    found = re.search(rf"^hemma_dashboard_{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found, f"metric {name} missing"
    return float(found[1])


def _wait_for_metric(base_url: str, name: str, above: float) -> None:
    deadline = time.monotonic() + 5
    while _metric(base_url, name) <= above:
        assert time.monotonic() < deadline, f"{name} stayed at {above}"
        time.sleep(0.05)


def test_the_websocket_after_its_page_is_sent_the_pages_own_read(
    base_url: str, db: psycopg.Connection, seeded: dict[str, Any]
) -> None:
    """The page's read and fragments stand in for the websocket's first snapshot (live.PagePrimer):
    byte for byte the page's cards, with no second read."""
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        before = _metric(base_url, "snapshots_from_page_total")
        page = client.get("/wards/avd-norr").text
        with ward_socket(client, base_url, "avd-norr") as ws:
            snapshot = recv(ws, "snapshot")
        assert _metric(base_url, "snapshots_from_page_total") == before + 1
    expected = [page_card(page, p.patient_id) for p in (seeded["anna"], seeded["bertil"])]
    assert snapshot["cards"] == expected


@pytest.mark.parametrize("named_ward", ["avd-norr", None, "avd-syd"])
def test_a_change_between_the_page_and_its_websocket_is_in_the_snapshot(
    base_url: str, db: psycopg.Connection, seeded: dict[str, Any], named_ward: str | None
) -> None:
    """Anything that may have touched the ward after the page began its read (an event for the ward,
    one naming no ward, or one naming another ward with one of this ward's patients, as a move would)
    makes the websocket read afresh: its snapshot has the change, never the page's older read."""
    anna = seeded["anna"]
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        before = _metric(base_url, "snapshots_from_page_total")
        page = client.get("/wards/avd-norr").text
        assert '<span class="vital-value">93</span>' in page_card(page, anna.patient_id)
        events = _metric(base_url, 'events_received_total{kind="vitals"}')
        set_vital(db, anna, "spo2", 86, "%")
        event = {"kind": "vitals", "ward_id": named_ward, "patient_ids": [str(anna.patient_id)]}
        db.execute("SELECT pg_notify('hemma_events', %s)", (json.dumps(event),))
        _wait_for_metric(base_url, 'events_received_total{kind="vitals"}', events)
        with ward_socket(client, base_url, "avd-norr") as ws:
            snapshot = recv(ws, "snapshot")
        assert _metric(base_url, "snapshots_from_page_total") == before
    mine = f'data-patient-id="{anna.patient_id}"'
    (card,) = [c for c in snapshot["cards"] if mine in c]
    assert '<span class="vital-value">86</span>' in card
