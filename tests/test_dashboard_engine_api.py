"""The dashboard's side of the full alert engine, over HTTP against a real PostgreSQL and uvicorn:
snooze and end alerts, pending alerts kept from staff, technical alarms apart, manual observations,
and the patient record's NEWS2, SpO2 scale, monitoring plan and devices.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from alerts.news2 import score_one
from care.enrolment import EnrolledPatient, enrol_patient
from care.staff import create_staff_user
from core.settings import Settings
from dashboard.formatting import format_clock
from tests.support.cards import cards_of
from tests.support.dashboard_server import csrf_token, logged_in, running_dashboard, ward_socket
from tests.support.ward_seed import PASSWORD, add_alert, seed_two_wards, set_vital

SECRET = "test-session-secret-engine-0123456789"


@dataclass
class Seed:
    anna: EnrolledPatient  # avd-norr
    bertil: EnrolledPatient  # avd-norr
    cecilia: EnrolledPatient  # avd-syd
    nurse_id: int  # nurse.norr (Sara Sjöström), avd-norr
    nurse2_id: int  # nurse2.norr (Nils Nord), avd-norr
    physician_id: int  # dr.lund (Erik Lund), avd-norr
    other_id: int  # nurse.syd, avd-syd


@pytest.fixture
def seed(db: psycopg.Connection) -> Seed:
    anna, bertil, cecilia, staff = seed_two_wards(
        db,
        [
            ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
            ("nurse2.norr", "Nils Nord", "nurse", ["avd-norr"]),
            ("dr.lund", "Erik Lund", "physician", ["avd-norr"]),
            ("nurse.syd", "Olle Öst", "nurse", ["avd-syd"]),
        ],
    )
    return Seed(anna, bertil, cecilia, *staff)


@pytest.fixture
def base_url(database_url: str, seed: Seed) -> Iterator[str]:
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield url


def add_technical(db: psycopg.Connection, patient: EnrolledPatient, **kwargs: Any) -> int:
    defaults: dict[str, Any] = {
        "priority": "medium",
        "rule": "gateway_offline",
        "condition": "technical",
        "message": "Hemenheten har inte hörts av på 40 min",
        "vital": None,
    }
    return add_alert(db, patient, **(defaults | kwargs))


def add_manual(
    db: psycopg.Connection,
    patient: EnrolledPatient,
    *,
    minutes_ago: float = 0,
    consciousness: str | None = None,
    on_oxygen: bool | None = None,
    respiratory_rate: float | None = None,
    source: str = "patient",
    entered_by: int | None = None,
) -> None:
    db.execute(
        "INSERT INTO manual_observations (patient_id, time, respiratory_rate, consciousness, on_oxygen,"
        " source, entered_by) VALUES (%s, now() - make_interval(secs => %s), %s, %s, %s, %s, %s)",
        (
            patient.patient_id,
            minutes_ago * 60,
            respiratory_rate,
            consciousness,
            on_oxygen,
            source,
            entered_by,
        ),
    )


def metric(base_url: str, name: str) -> float:
    text = httpx.get(base_url + "/metrics").text
    match = re.search(rf"^hemma_dashboard_{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def alert_row(db: psycopg.Connection, alert_id: int) -> dict[str, Any]:
    cur = db.cursor(row_factory=psycopg.rows.dict_row)
    row = cur.execute(
        "SELECT state, acknowledged_at, acknowledged_by, snoozed_until, snoozed_by, resolved_at, resolved_by,"
        " now() AS now FROM alerts WHERE id = %s",
        (alert_id,),
    ).fetchone()
    assert row is not None
    return row


def events(db: psycopg.Connection, alert_id: int) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT kind, actor, priority, note, detail FROM alert_events WHERE alert_id = %s ORDER BY id",
        (alert_id,),
    ).fetchall()


def access_rows(db: psycopg.Connection) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT staff_user_id, username, patient_id, action, context FROM access_log ORDER BY id"
    ).fetchall()


class Staff:
    """A logged-in client with its CSRF token."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        # An error page carries the token too and reads no patient data (no access_log rows).
        self.token = csrf_token(client, "/wards/no-such-ward")

    def post(
        self, path: str, body: Any = None, *, token: str | None = "session", raw: bytes | None = None
    ) -> httpx.Response:
        headers = {} if token is None else {"X-CSRF-Token": self.token if token == "session" else token}
        if raw is not None:
            headers["Content-Type"] = "application/json"
            return self.client.post(path, content=raw, headers=headers)
        return self.client.post(path, json=body, headers=headers)


@pytest.fixture
def nurse(base_url: str) -> Iterator[Staff]:
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        yield Staff(client)


# --- snooze -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "cap", "message"),
    [
        ("high", 30, "Högsta snooze för hög prioritet är 30 min"),
        ("medium", 240, "Högsta snooze för medelprioritet är 4 h"),
        ("low", 1440, "Högsta snooze för låg prioritet är 24 h"),
    ],
)
def test_snooze_is_capped_by_the_alerts_priority(
    base_url: str, db: psycopg.Connection, seed: Seed, nurse: Staff, priority: str, cap: int, message: str
) -> None:
    alert_id = add_alert(db, seed.anna, priority=priority)
    too_long = nurse.post(f"/api/alerts/{alert_id}/snooze", {"minutes": cap + 1})
    assert too_long.status_code == 422
    assert too_long.json() == {"detail": message, "field": "minutes"}
    assert alert_row(db, alert_id)["state"] == "open"
    assert events(db, alert_id) == []

    done = nurse.post(f"/api/alerts/{alert_id}/snooze", {"minutes": cap, "note": "  Ringer tillbaka  "})
    assert done.status_code == 200
    body = done.json()["alert"]
    assert body["state"] == "acknowledged" and body["snoozed_by"] == "Sara Sjöström"
    assert body["note"] == "Ringer tillbaka"
    row = alert_row(db, alert_id)
    assert row["state"] == "acknowledged"
    assert row["acknowledged_by"] == seed.nurse_id and row["snoozed_by"] == seed.nurse_id
    assert abs(row["snoozed_until"] - (row["now"] + timedelta(minutes=cap))) < timedelta(seconds=30)
    assert datetime.fromisoformat(body["snoozed_until"]) == row["snoozed_until"]
    ((kind, actor, event_priority, note, detail),) = events(db, alert_id)
    assert (kind, actor, event_priority, note) == ("snoozed", "staff:nurse.norr", priority, "Ringer tillbaka")
    assert detail["minutes"] == cap and datetime.fromisoformat(detail["until"]) == row["snoozed_until"]
    assert access_rows(db)[-1] == (seed.nurse_id, "nurse.norr", seed.anna.patient_id, "snooze_alert",
                                   f"alert:{alert_id}")  # fmt: skip
    assert metric(base_url, "snoozes_total") == 1
    assert metric(base_url, 'action_errors_total{action="snooze",status="422"}') == 1


def test_snooze_offers_choices_within_the_cap(
    base_url: str, db: psycopg.Connection, seed: Seed, nurse: Staff
) -> None:
    for priority in ("high", "medium", "low"):
        add_alert(db, seed.anna, priority=priority, rule=f"rule_{priority}")
    overview = nurse.client.get("/api/wards/avd-norr/overview").json()
    anna = next(p for p in overview["patients"] if p["name"] == "Anna Andersson")
    choices = {a["priority"]: a["snooze_minutes"] for a in anna["alerts"]}
    assert choices == {"high": [15, 30], "medium": [30, 60, 240], "low": [60, 240, 1440]}
    page = nurse.client.get("/wards/avd-norr").text
    assert re.findall(r'data-minutes="(\d+)">([^<]+)<', page)[:2] == [("15", "15 min"), ("30", "30 min")]


def test_snooze_keeps_the_first_acknowledgement_and_can_be_renewed(
    base_url: str, db: psycopg.Connection, seed: Seed
) -> None:
    alert_id = add_alert(db, seed.anna, priority="medium")
    with logged_in(base_url, "nurse2.norr", PASSWORD) as client:
        other = Staff(client)
        assert other.post(f"/api/alerts/{alert_id}/acknowledge", {"note": "Sett"}).status_code == 200
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        staff = Staff(client)
        assert staff.post(f"/api/alerts/{alert_id}/snooze", {"minutes": 60}).status_code == 200
        first = alert_row(db, alert_id)
        assert staff.post(f"/api/alerts/{alert_id}/snooze", {"minutes": 30, "note": None}).status_code == 200
        page = client.get("/wards/avd-norr").text
        record = client.get(f"/patients/{seed.anna.patient_id}").text
    row = alert_row(db, alert_id)
    assert row["acknowledged_by"] == seed.nurse2_id and row["acknowledged_at"] == first["acknowledged_at"]
    assert row["snoozed_by"] == seed.nurse_id and row["snoozed_until"] < first["snoozed_until"]
    assert [e[0] for e in events(db, alert_id)] == ["acknowledged", "snoozed", "snoozed"]
    # The card says until when, muted, and keeps the acknowledgement's note.
    clock = format_clock(row["snoozed_until"], datetime.now(UTC))
    snoozed = re.search(
        r'<span class="alert-snoozed">Snoozad till <time [^>]*>([^<]+)</time> av ([^<]+)</span>', page
    )
    assert snoozed is not None and snoozed.groups() == (clock, "Sara Sjöström")
    assert '<span class="alert-note">Sett</span>' in page
    assert "Snoozad till" in record and "Snoozat" in record  # live list and history


def test_snooze_refusals(base_url: str, db: psycopg.Connection, seed: Seed, nurse: Staff) -> None:
    open_id = add_alert(db, seed.anna)
    pending_id = add_alert(db, seed.bertil, state="pending")
    resolved_id = add_alert(db, seed.bertil, state="resolved", rule="pulse_high")
    foreign_id = add_alert(db, seed.cecilia)

    def snooze(alert_id: int | str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return nurse.post(f"/api/alerts/{alert_id}/snooze", body, **kwargs)

    assert snooze(open_id, {"minutes": 15}, token=None).status_code == 403
    assert snooze(open_id, {"minutes": 15}, token="forged").status_code == 403
    assert httpx.post(base_url + f"/api/alerts/{open_id}/snooze", json={"minutes": 15}).status_code == 401
    assert snooze(999_999, {"minutes": 15}).json() == {"detail": "Larmet finns inte"}
    forbidden = snooze(foreign_id, {"minutes": 15})  # another ward's: as if it did not exist (issue 8)
    assert forbidden.status_code == 404 and forbidden.json() == {"detail": "Larmet finns inte"}
    pending = snooze(pending_id, {"minutes": 15})
    assert pending.status_code == 409 and pending.json() == {"detail": "Larmet är inte aktivt"}
    resolved = snooze(resolved_id, {"minutes": 15})
    assert resolved.status_code == 409 and resolved.json() == {"detail": "Larmet är redan avslutat"}
    invalid: list[Any] = [{}, {"minutes": 0}, {"minutes": "15"}, {"minutes": True}, {"minutes": 15.5}, None]
    invalid += [
        [15],
        {"minutes": 15, "extra": 1},
        {"minutes": 15, "note": "x" * 501},
        {"minutes": 15, "note": 5},
    ]
    for body in invalid:
        response = snooze(open_id, body)
        assert response.status_code == 422, body
        assert response.json()["detail"][0].isupper()  # a Swedish sentence, not pydantic's list
    assert snooze(open_id, raw=b"{not json").status_code == 422
    assert snooze(open_id, raw=b"[" * 20_000).status_code == 413
    assert snooze("abc", {"minutes": 15}).status_code == 422

    for alert_id, state in (
        (open_id, "open"),
        (pending_id, "pending"),
        (resolved_id, "resolved"),
        (foreign_id, "open"),
    ):
        row = alert_row(db, alert_id)
        assert (row["state"], row["snoozed_until"]) == (state, None)
        assert events(db, alert_id) == []
    assert access_rows(db) == []
    assert metric(base_url, 'action_errors_total{action="snooze",status="409"}') == 2
    assert metric(base_url, 'action_errors_total{action="snooze",status="404"}') == 2
    # The ten bodies, the bad JSON and the malformed alert id: every refused snooze is counted.
    assert metric(base_url, 'action_errors_total{action="snooze",status="422"}') == 12
    assert metric(base_url, "csrf_rejections_total") == 2


def test_acknowledge_refuses_a_pending_alert(
    base_url: str, db: psycopg.Connection, seed: Seed, nurse: Staff
) -> None:
    pending_id = add_alert(db, seed.anna, state="pending")
    response = nurse.post(f"/api/alerts/{pending_id}/acknowledge", {})
    assert response.status_code == 409 and response.json() == {"detail": "Larmet är inte aktivt"}
    assert alert_row(db, pending_id)["state"] == "pending"
    assert metric(base_url, 'action_errors_total{action="acknowledge",status="409"}') == 1


# --- resolve --------------------------------------------------------------------------------------


def test_staff_end_an_alert_with_a_note(
    base_url: str, db: psycopg.Connection, seed: Seed, nurse: Staff
) -> None:
    alert_id = add_technical(db, seed.bertil)
    db.execute("LISTEN hemma_events")
    for body, message in (
        ({}, "Skriv en anteckning om varför larmet avslutas (minst 3 tecken)"),
        ({"note": "  ab "}, "Skriv en anteckning om varför larmet avslutas (minst 3 tecken)"),
        ({"note": "x" * 501}, "Anteckningen får vara högst 500 tecken"),
        ({"note": ["Bytt"]}, "Anteckningen måste vara text"),
    ):
        response = nurse.post(f"/api/alerts/{alert_id}/resolve", body)
        assert response.status_code == 422 and response.json() == {"detail": message, "field": "note"}
    assert nurse.post(f"/api/alerts/{alert_id}/resolve", {"note": "Bytt"}, token=None).status_code == 403
    assert alert_row(db, alert_id)["state"] == "open"
    assert list(db.notifies(timeout=0.3)) == []

    done = nurse.post(f"/api/alerts/{alert_id}/resolve", {"note": " Hemenheten utbytt vid besök "})
    assert done.status_code == 200 and done.json()["alert"]["state"] == "resolved"
    row = alert_row(db, alert_id)
    assert (
        row["state"] == "resolved" and row["resolved_by"] == seed.nurse_id and row["resolved_at"] is not None
    )
    assert events(db, alert_id) == [
        (
            "resolved",
            "staff:nurse.norr",
            "medium",
            "Hemenheten utbytt vid besök",
            {"staff_user_id": seed.nurse_id},
        )
    ]
    assert access_rows(db) == [
        (seed.nurse_id, "nurse.norr", seed.bertil.patient_id, "resolve_alert", f"alert:{alert_id}")
    ]
    (notification,) = list(db.notifies(timeout=5, stop_after=1))
    assert json.loads(notification.payload) == {
        "kind": "alerts",
        "ward_id": "avd-norr",
        "alert_ids": [alert_id],
    }
    again = nurse.post(f"/api/alerts/{alert_id}/resolve", {"note": "Igen"})
    assert again.status_code == 409 and again.json() == {"detail": "Larmet är redan avslutat"}
    # Ended alerts leave the overview and stay in the record's history with the note.
    overview = nurse.client.get("/api/wards/avd-norr/overview").json()
    assert all(p["alerts"] == [] for p in overview["patients"])
    record = nurse.client.get(f"/patients/{seed.bertil.patient_id}").text
    assert "Hemenheten utbytt vid besök" in record and "Inga tekniska larm." in record
    assert metric(base_url, "resolutions_total") == 1


def test_resolve_refusals_and_a_snoozed_alert(
    base_url: str, db: psycopg.Connection, seed: Seed, nurse: Staff
) -> None:
    pending_id = add_alert(db, seed.anna, state="pending")
    foreign_id = add_alert(db, seed.cecilia)
    snoozed_id = add_alert(db, seed.bertil, priority="low")
    assert nurse.post(f"/api/alerts/{pending_id}/resolve", {"note": "Klart"}).status_code == 409
    assert nurse.post(f"/api/alerts/{foreign_id}/resolve", {"note": "Klart"}).status_code == 404
    assert nurse.post("/api/alerts/424242/resolve", {"note": "Klart"}).status_code == 404
    assert nurse.post(f"/api/alerts/{snoozed_id}/snooze", {"minutes": 60}).status_code == 200
    assert nurse.post(f"/api/alerts/{snoozed_id}/resolve", {"note": "Åtgärdat"}).status_code == 200
    row = alert_row(db, snoozed_id)
    assert row["state"] == "resolved" and row["snoozed_until"] is None  # no snooze left to expire
    assert alert_row(db, pending_id)["state"] == "pending"
    assert alert_row(db, foreign_id)["state"] == "open"


# --- what staff see ---------------------------------------------------------------------------------


def test_pending_alerts_are_never_shown_or_counted(base_url: str, db: psycopg.Connection, seed: Seed) -> None:
    add_alert(db, seed.anna, state="pending", message="Väntande SpO₂-larm")
    add_technical(db, seed.anna, state="pending", message="Väntande tekniskt larm")
    add_alert(db, seed.bertil, priority="medium", rule="pulse_high", message="Puls 118/min")
    withdrawn = add_alert(
        db, seed.bertil, state="resolved", rule="temp_high", message="Återkallat temperaturlarm"
    )
    db.execute(
        "INSERT INTO alert_events (alert_id, kind, actor, priority) VALUES (%s, 'pending', 'engine', 'high'),"
        " (%s, 'withdrawn', 'engine', 'high')",
        (withdrawn, withdrawn),
    )
    create_staff_user(
        db, username="admin", display_name="Ada Admin", role="admin", password=PASSWORD, ward_ids=[]
    )
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        overview = client.get("/api/wards/avd-norr/overview").json()
        page = client.get("/wards/avd-norr").text
        anna_record = client.get(f"/patients/{seed.anna.patient_id}").text
        bertil_record = client.get(f"/patients/{seed.bertil.patient_id}").text
        with ward_socket(client, base_url, "avd-norr") as ws:
            snapshot = json.loads(ws.recv(timeout=5))
    with logged_in(base_url, "admin", PASSWORD) as client:
        wards = client.get("/").text
    for patients in (overview["patients"], cards_of(snapshot)):
        alerts = {p["name"]: [a["message"] for a in p["alerts"]] for p in patients}
        assert alerts == {"Anna Andersson": [], "Bertil Berg": ["Puls 118/min"]}
        # A pending alert does not lift Anna: Bertil's medium alert sorts first.
        assert [p["name"] for p in patients] == ["Bertil Berg", "Anna Andersson"]
    assert 'id="count-high" hidden>0 hög' in page
    assert re.search(r'id="count-medium">1 medel<', page)
    assert re.search(r'id="count-technical" hidden>', page)
    for text in (page, anna_record, bertil_record, wards):
        assert "Väntande" not in text and "Återkallat temperaturlarm" not in text
    assert "Inga aktiva larm." in anna_record and "Inga tekniska larm." in anna_record
    norr = re.search(r'<span class="ward-name">Avdelning Norr</span>(.*?)</a>', wards, re.S)
    assert norr is not None and "1 medel" in norr.group(1) and "hög" not in norr.group(1)
    assert "teknisk" not in norr.group(1)


def test_technical_alarms_are_apart_counted_separately_and_sort_after_physiological(
    base_url: str, db: psycopg.Connection, seed: Seed
) -> None:
    zara = enrol_patient(db, ward_id="avd-norr", display_name="Zara Zetterlund", gateway_id="gw-zara")
    add_alert(db, seed.bertil, priority="low", rule="weight_missing", message="Ingen vikt på ett dygn")
    add_technical(db, zara, priority="high", rule="device_silent:aa-bb", message="Oximetern har tystnat")
    add_technical(db, seed.anna, rule="battery_low:aa-cc", priority="low", message="Låg batterinivå i vågen")
    add_alert(db, seed.anna, priority="medium", rule="pulse_high", message="Puls 118/min")
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        overview = client.get("/api/wards/avd-norr/overview").json()
        page = client.get("/wards/avd-norr").text
        record = client.get(f"/patients/{zara.patient_id}").text
    # Anna's physiological medium first; Zara's technical high alarm does not outrank it, but puts her
    # before Bertil (low physiological only, same rank 2).
    assert [p["name"] for p in overview["patients"]] == ["Anna Andersson", "Zara Zetterlund", "Bertil Berg"]
    anna, zara_card, _ = overview["patients"]
    assert (anna["rank"], anna["top_priority"]) == (1, "medium")
    assert (zara_card["rank"], zara_card["tech_rank"], zara_card["top_priority"]) == (2, 0, None)
    assert [a["condition"] for a in zara_card["alerts"]] == ["technical"]
    # The header counts technical alarms apart; the high chip counts physiological ones only.
    assert 'id="count-high" hidden>0 hög' in page
    assert re.search(
        r'id="count-technical"><span class="tech-icon" aria-hidden="true"></span>2 tekniska<', page
    )
    # On the card technical alarms are a list of their own with the "Teknik" badge.
    zara_html = page[page.index(f'data-patient-id="{zara.patient_id}"') :]
    zara_html = zara_html[: zara_html.index("</article>")]
    tech_list = r'<ul class="alerts tech-alerts" aria-label="Tekniska larm">\s*'
    assert re.search(tech_list + r'<li class="alert alert-high state-open cond-technical"', zara_html)
    assert "Inga aktiva larm" not in zara_html
    assert re.search(rf'class="patient rank-2 top-technical"[^>]* data-patient-id="{zara.patient_id}"', page)
    anna_html = page[page.index(f'data-patient-id="{seed.anna.patient_id}"') :]
    anna_html = anna_html[: anna_html.index("</article>")]
    assert (
        anna_html.index("Puls 118/min") < anna_html.index("tech-alerts") < anna_html.index("Låg batterinivå")
    )
    assert '<section class="panel panel-technical" id="technical-alerts">' in record
    assert "Oximetern har tystnat" in record.split('id="technical-alerts"')[1].split("</section>")[0]


# --- manual observations ----------------------------------------------------------------------------


def test_a_nurse_records_an_observation(
    base_url: str, db: psycopg.Connection, seed: Seed, nurse: Staff
) -> None:
    pid = seed.anna.patient_id
    db.execute("LISTEN hemma_events")
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    response = nurse.post(
        f"/api/patients/{pid}/observations",
        {
            "respiratory_rate": 24,
            "consciousness": "C",
            "on_oxygen": True,
            "oxygen_l_min": 2,
            "time": at.isoformat(),
        },
    )
    assert response.status_code == 201, response.text
    stored = response.json()["observation"]
    assert stored["entered_by"] == "Sara Sjöström" and stored["source"] == "nurse"
    assert datetime.fromisoformat(stored["time"]) == at
    row = db.execute(
        "SELECT time, respiratory_rate, consciousness, on_oxygen, oxygen_l_min, source, entered_by,"
        " evaluated_at FROM manual_observations WHERE patient_id = %s",
        (pid,),
    ).fetchall()
    assert row == [(at, 24.0, "C", True, 2.0, "nurse", seed.nurse_id, None)]
    observation = db.execute(
        "SELECT time, vital, value, unit, quality, gateway_id, device_id, characteristic,"
        " received_at IS NOT NULL FROM observations WHERE patient_id = %s",
        (pid,),
    ).fetchall()
    assert observation == [
        (at, "respiratory_rate", 24.0, "/min", [], "manual", "staff:nurse.norr", "manual", True)
    ]
    assert db.execute(
        "SELECT time, value, unit FROM latest_vitals WHERE patient_id = %s", (pid,)
    ).fetchall() == [(at, 24.0, "/min")]
    (log_row,) = access_rows(db)
    assert log_row[:4] == (seed.nurse_id, "nurse.norr", pid, "record_observation")
    assert log_row[4].startswith("observation:")
    (notification,) = list(db.notifies(timeout=5, stop_after=1))
    assert json.loads(notification.payload) == {
        "kind": "vitals",
        "ward_id": "avd-norr",
        "patient_ids": [str(pid)],
    }

    record = nurse.client.get(f"/patients/{pid}").text
    table = record.split('id="manual-observations"')[1].split("</section>")[0]
    assert "24 /min" in table and "C – Ny förvirring" in table and "Syrgas 2 l/min" in table
    assert "Sara Sjöström" in table
    assert metric(base_url, "manual_observations_total") == 1


def test_an_observation_without_a_time_is_now_and_an_older_one_keeps_the_newer_latest_value(
    base_url: str, db: psycopg.Connection, seed: Seed, nurse: Staff
) -> None:
    pid = seed.anna.patient_id
    assert nurse.post(f"/api/patients/{pid}/observations", {"respiratory_rate": 18}).status_code == 201
    (latest_time, now) = db.execute(
        "SELECT time, now() FROM latest_vitals WHERE patient_id = %s AND vital = 'respiratory_rate'", (pid,)
    ).fetchone()  # type: ignore[misc]
    assert abs(latest_time - now) < timedelta(seconds=30)
    earlier = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    assert (
        nurse.post(f"/api/patients/{pid}/observations", {"respiratory_rate": 30, "time": earlier}).status_code
        == 201
    )
    assert db.execute(
        "SELECT value FROM latest_vitals WHERE patient_id = %s AND vital = 'respiratory_rate'", (pid,)
    ).fetchone() == (18.0,)
    assert db.execute("SELECT count(*) FROM observations WHERE patient_id = %s", (pid,)).fetchone() == (2,)
    # Consciousness alone: no observations row, no latest value.
    assert (
        nurse.post(
            f"/api/patients/{pid}/observations", {"consciousness": "A", "on_oxygen": False}
        ).status_code
        == 201
    )
    assert db.execute("SELECT count(*) FROM observations WHERE patient_id = %s", (pid,)).fetchone() == (2,)
    assert db.execute(
        "SELECT count(*) FROM manual_observations WHERE patient_id = %s", (pid,)
    ).fetchone() == (3,)


def _in(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


INVALID_OBSERVATIONS: list[tuple[Any, str | None, str]] = [
    (
        {"respiratory_rate": 0},
        "respiratory_rate",
        "Andningsfrekvensen måste vara ett heltal mellan 2 och 80 /min",
    ),
    (
        {"respiratory_rate": 1},  # care.observations: 2-80 /min, as `hemma observe` (issue 9)
        "respiratory_rate",
        "Andningsfrekvensen måste vara ett heltal mellan 2 och 80 /min",
    ),
    (
        {"respiratory_rate": 81},
        "respiratory_rate",
        "Andningsfrekvensen måste vara ett heltal mellan 2 och 80 /min",
    ),
    (
        {"respiratory_rate": 18.5},
        "respiratory_rate",
        "Andningsfrekvensen måste vara ett heltal mellan 2 och 80 /min",
    ),
    (
        {"respiratory_rate": "18"},
        "respiratory_rate",
        "Andningsfrekvensen måste vara ett heltal mellan 2 och 80 /min",
    ),
    (
        {"respiratory_rate": True},
        "respiratory_rate",
        "Andningsfrekvensen måste vara ett heltal mellan 2 och 80 /min",
    ),
    ({"consciousness": "X"}, "consciousness", "Medvetandegrad anges med A, C, V, P eller U"),
    ({"consciousness": "a"}, "consciousness", "Medvetandegrad anges med A, C, V, P eller U"),
    ({"on_oxygen": "ja"}, "on_oxygen", "Ange luft eller syrgas"),
    (
        {"on_oxygen": False, "oxygen_l_min": 2},
        "oxygen_l_min",
        "Syrgasflöde kan bara anges när patienten får syrgas",
    ),
    (
        {"consciousness": "A", "oxygen_l_min": 2},
        "oxygen_l_min",
        "Syrgasflöde kan bara anges när patienten får syrgas",
    ),
    (
        {"on_oxygen": True, "oxygen_l_min": 0},
        "oxygen_l_min",
        "Syrgasflödet måste vara större än 0 och högst 15 l/min",
    ),
    (
        {"on_oxygen": True, "oxygen_l_min": 16},
        "oxygen_l_min",
        "Syrgasflödet måste vara större än 0 och högst 15 l/min",
    ),
    ({}, None, "Ange minst en av andningsfrekvens, medvetandegrad och luft/syrgas"),
    (
        {"respiratory_rate": None, "consciousness": ""},
        None,
        "Ange minst en av andningsfrekvens, medvetandegrad och luft/syrgas",
    ),
    ({"respiratory_rate": 18, "time": _in(24 * 60)}, "time", "Tidpunkten kan inte ligga i framtiden"),
    (
        {"respiratory_rate": 18, "time": _in(-8 * 24 * 60)},
        "time",
        "Tidpunkten får ligga högst 7 dagar bakåt",
    ),
    ({"respiratory_rate": 18, "time": "igår"}, "time", "Ogiltig tidpunkt"),
    ({"respiratory_rate": 18, "puls": 80}, "puls", "Okänt fält: puls"),
    ([18], None, "Förfrågan måste vara ett JSON-objekt"),
]


def test_observation_validation_is_in_swedish(
    base_url: str, db: psycopg.Connection, seed: Seed, nurse: Staff
) -> None:
    for body, field, message in INVALID_OBSERVATIONS:
        response = nurse.post(f"/api/patients/{seed.anna.patient_id}/observations", body)
        assert response.status_code == 422, body
        expected = {"detail": message} | ({"field": field} if field else {})
        assert response.json() == expected, body
    future = {"on_oxygen": False, "time": _in(10)}
    refused = nurse.post(f"/api/patients/{seed.anna.patient_id}/observations", future)
    assert refused.json() == {"detail": "Tidpunkten kan inte ligga i framtiden", "field": "time"}
    assert db.execute("SELECT count(*) FROM manual_observations").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM observations").fetchone() == (0,)
    assert access_rows(db) == []
    # A device clock a little ahead is no error, and a time without zone is Swedish local time.
    # The window is care.observations', the same as `hemma observe`'s: 2 min ahead, 7 days back.
    slightly_ahead = {"on_oxygen": False, "time": _in(1)}
    assert nurse.post(f"/api/patients/{seed.anna.patient_id}/observations", slightly_ahead).status_code == 201
    yesterday = {"on_oxygen": False, "time": _in(-26 * 60)}
    assert nurse.post(f"/api/patients/{seed.anna.patient_id}/observations", yesterday).status_code == 201
    local = datetime.now(ZoneInfo("Europe/Stockholm")) - timedelta(hours=1)
    naive = {"consciousness": "A", "time": local.replace(tzinfo=None, microsecond=0).isoformat()}
    assert nurse.post(f"/api/patients/{seed.anna.patient_id}/observations", naive).status_code == 201
    stored = db.execute("SELECT time FROM manual_observations WHERE consciousness = 'A'").fetchone()
    assert stored == (local.replace(microsecond=0),)


def test_observation_refusals(base_url: str, db: psycopg.Connection, seed: Seed, nurse: Staff) -> None:
    body = {"respiratory_rate": 18}
    assert (
        nurse.post(f"/api/patients/{seed.anna.patient_id}/observations", body, token=None).status_code == 403
    )
    assert nurse.post(f"/api/patients/{seed.anna.patient_id}/observations", raw=b"{").status_code == 422
    foreign = nurse.post(f"/api/patients/{seed.cecilia.patient_id}/observations", body)
    assert foreign.status_code == 403 and foreign.json() == {"detail": "Behörighet saknas för avdelningen"}
    assert nurse.post(f"/api/patients/{uuid.uuid4()}/observations", body).status_code == 404
    assert nurse.post("/api/patients/not-a-uuid/observations", body).status_code == 404
    db.execute("UPDATE patients SET discharged_at = now() WHERE id = %s", (seed.bertil.patient_id,))
    discharged = nurse.post(f"/api/patients/{seed.bertil.patient_id}/observations", body)
    assert discharged.status_code == 409 and discharged.json() == {"detail": "Patienten är utskriven"}
    create_staff_user(
        db, username="admin", display_name="Ada Admin", role="admin", password=PASSWORD, ward_ids=[]
    )
    with logged_in(base_url, "admin", PASSWORD) as client:
        admin = Staff(client)
        refused = admin.post(f"/api/patients/{seed.anna.patient_id}/observations", body)
        record = client.get(f"/patients/{seed.anna.patient_id}").text
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Endast sjuksköterskor och läkare kan registrera observationer"}
    assert (
        "observation-form" not in record
        and "Observationer registreras av sjuksköterskor och läkare." in record
    )
    with logged_in(base_url, "dr.lund", PASSWORD) as client:
        physician = Staff(client)
        assert physician.post(f"/api/patients/{seed.anna.patient_id}/observations", body).status_code == 201
    assert db.execute("SELECT count(*) FROM manual_observations").fetchone() == (1,)
    assert metric(base_url, 'action_errors_total{action="observation",status="403"}') == 2
    assert metric(base_url, 'action_errors_total{action="observation",status="404"}') == 2


# --- the patient record -------------------------------------------------------------------------------


def test_record_shows_a_complete_news2_the_scale_order_plan_and_devices(
    base_url: str, db: psycopg.Connection, seed: Seed, nurse: Staff
) -> None:
    anna = seed.anna
    for vital, value, unit, ago in (
        ("respiratory_rate", 22, "/min", 30),
        ("spo2", 90, "%", 20),
        ("systolic_bp", 105, "mm[Hg]", 60),
        ("pulse_rate", 95, "/min", 100),
        ("heart_rate", 112, "/min", 10),  # newer than pulse_rate: this one counts
        ("body_temperature", 38.3, "Cel", 90),
    ):
        set_vital(db, anna, vital, value, unit, ago)
    # A newer reading flagged as doubtful never scores: the 90 % above still counts, as in the engine.
    set_vital(db, anna, "spo2", 80, "%", 5, quality=("low_perfusion",))
    add_manual(db, anna, minutes_ago=300, consciousness="A", on_oxygen=True)
    add_manual(db, anna, minutes_ago=60, on_oxygen=False, source="nurse", entered_by=seed.nurse_id)
    db.execute(
        "INSERT INTO spo2_scale_orders (patient_id, scale, reason, ordered_by, ordered_at)"
        " VALUES (%s, 2, 'KOL med verifierad hyperkapni', %s, '2026-03-02 09:15+01')",
        (anna.patient_id, seed.physician_id),
    )
    db.execute(
        "INSERT INTO monitoring_plans (patient_id, vital, every_minutes) VALUES (%s, 'spo2', 240),"
        " (%s, 'body_weight', 1440), (%s, 'respiratory_rate', 30)",
        (anna.patient_id,) * 3,
    )
    db.execute(
        "INSERT INTO devices (gateway_id, device_id, battery_percent, battery_at, clock_not_set)"
        " VALUES ('gw-anna', 'A0:B1:C2:D3:E4:F5', 15, now(), true),"
        " ('gw-anna', '00:11:22:33:44:55', 80, now(), false)"
    )
    record = nurse.client.get(f"/patients/{anna.patient_id}").text
    # Scale 2 on air at 90 % scores 0; HR 112 scores 2 (the newer pulse source).
    expected = score_one(22, 90, 105, 112, 38.3, "A", False, spo2_scale=2)
    assert expected.total == 2 + 0 + 0 + 1 + 2 + 0 + 1
    risk = {0: "låg", 1: "låg–medel", 2: "medel", 3: "hög"}[int(expected.risk)]  # type: ignore[arg-type]
    headline = re.search(r'<p class="news2-headline" id="news2-headline">([^<]+)</p>', record)
    assert headline is not None and headline.group(1) == f"NEWS2 {expected.total} ({risk} risk)"
    assert 'class="panel news2 news2-medium"' in record
    scale = record.split('id="spo2-scale"')[1].split("</section>")[0]
    assert "<strong>Skala 2 (hyperkapni)</strong>, ordinerad av Erik Lund, 2 mar 2026 09:15" in scale
    assert "KOL med verifierad hyperkapni" in scale
    plan = record.split('id="monitoring-plan"')[1].split("</section>")[0]
    assert re.search(r"<strong>Syremättnad</strong> var 4 h", plan)
    assert re.search(
        r"<strong>Kroppsvikt</strong> var 24 h\s*<span class=\"muted\">· ingen mätning ännu – försenad", plan
    )
    assert re.search(r"<strong>Andningsfrekvens</strong> var 30 min\s*<span class=\"muted\">· senast", plan)
    assert plan.index("Syremättnad") < plan.index("Kroppsvikt")
    devices = record.split('id="devices"')[1].split("</section>")[0]
    assert '<span class="battery battery-low">Batteri 15 %</span>' in devices
    assert '<span class="battery">Batteri 80 %</span>' in devices
    assert devices.count("klocka ej ställd") == 1
    manual = record.split('id="manual-observations"')[1].split("</section>")[0]
    assert "Patienten" in manual and "Sara Sjöström" in manual and "Luft" in manual


def test_record_never_shows_an_incomplete_news2_as_complete(
    base_url: str, db: psycopg.Connection, seed: Seed, nurse: Staff
) -> None:
    bertil = seed.bertil
    set_vital(db, bertil, "spo2", 91, "%", 10)
    set_vital(db, bertil, "systolic_bp", 95, "mm[Hg]", 10)
    set_vital(db, bertil, "pulse_rate", 120, "/min", 10)
    set_vital(db, bertil, "body_temperature", 38.5, "Cel", 6 * 60)  # older than 4 h: stale
    add_manual(db, bertil, minutes_ago=30, on_oxygen=False)
    record = nurse.client.get(f"/patients/{bertil.patient_id}").text
    present = score_one(None, 91, 95, 120, None, None, False)
    assert present.total is None and present.partial_total == 3 + 0 + 2 + 2
    headline = re.search(r'id="news2-headline">([^<]+)<', record)
    assert headline is not None
    assert headline.group(1) == "NEWS2 ≥ 7 (ofullständig: saknar AF, medvetandegrad; inaktuellt temp)"
    assert "Redan minst hög risk av de värden som finns." in record
    parts = {
        key: status
        for status, key in re.findall(r'class="news2-part part-(\w+)" data-parameter="(\w+)"', record)
    }
    assert parts == {
        "resp_rate": "missing", "spo2": "ok", "air_or_oxygen": "ok", "systolic_bp": "ok", "pulse": "ok",
        "consciousness": "missing", "temperature": "stale",
    }  # fmt: skip
    # Nothing measured at all: no number is invented.
    empty = nurse.client.get(f"/patients/{seed.anna.patient_id}").text
    assert re.search(r'id="news2-headline">NEWS2 kan inte beräknas \(inga aktuella värden\)<', empty)
