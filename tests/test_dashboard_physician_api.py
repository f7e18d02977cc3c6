"""The care team's orders from the patient record, over HTTP against a real PostgreSQL and uvicorn:
a physician's personal alert limits (set, revoke) and SpO2 scale order, and the monitoring plan a
nurse or physician sets and clears. The care commands (care.limits, care.orders, care.plans) judge every
order, who may, the access log and the live update; the dashboard adds the Swedish messages.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import psycopg
import pytest

from alerts.thresholds import threshold_keys
from care.enrolment import EnrolledPatient, discharge_patient
from care.limits import revoke_personal_threshold, set_personal_threshold
from care.observations import check_observation_time
from care.orders import order_spo2_scale
from care.plans import clear_monitoring_plan, set_monitoring_plan
from care.refusals import RefusalCode, Refused
from care.staff import create_staff_user
from core.settings import Settings
from dashboard.errors import InvalidInput, OrderRefused, WardForbidden
from dashboard.refusals import HTTP, action_error
from tests.support.dashboard_server import logged_in, running_dashboard
from tests.support.ward_seed import PASSWORD, seed_two_wards
from tests.test_dashboard_engine_api import Staff, access_rows, metric

SCALE_REASON = "Skriv en motivering, t.ex. verifierad hyperkapni (minst 3 tecken)"
SCALE_CHOICE = "SpO₂-skalan är 1 (standard) eller 2 (hyperkapni, mål 88–92 %)"
PLAN_RANGE = "Intervallet måste vara mellan 5 min och 7 d"
SECRET = "test-session-secret-physician-0123456789"


@dataclass
class Seed:
    anna: EnrolledPatient  # avd-norr
    bertil: EnrolledPatient  # avd-norr
    cecilia: EnrolledPatient  # avd-syd
    nurse_id: int  # nurse.norr (Sara Sjöström), avd-norr
    physician_id: int  # dr.lund (Erik Lund), avd-norr
    physician_syd_id: int  # dr.syd (Stina Syd), avd-syd only


@pytest.fixture
def seed(db: psycopg.Connection) -> Seed:
    anna, bertil, cecilia, staff = seed_two_wards(
        db,
        [
            ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
            ("dr.lund", "Erik Lund", "physician", ["avd-norr"]),
            ("dr.syd", "Stina Syd", "physician", ["avd-syd"]),
        ],
    )
    return Seed(anna, bertil, cecilia, *staff)


@pytest.fixture
def base_url(database_url: str, seed: Seed) -> Iterator[str]:
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield url


@pytest.fixture
def physician(base_url: str) -> Iterator[Staff]:
    with logged_in(base_url, "dr.lund", PASSWORD) as client:
        yield Staff(client)


@pytest.fixture
def nurse(base_url: str) -> Iterator[Staff]:
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        yield Staff(client)


def limits(db: psycopg.Connection, patient: EnrolledPatient) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT id, rule, priority, limit_value, reason, set_by, valid_until, revoked_at IS NOT NULL,"
        " revoked_by FROM personal_thresholds WHERE patient_id = %s ORDER BY id",
        (patient.patient_id,),
    ).fetchall()


def scale_orders(db: psycopg.Connection, patient: EnrolledPatient) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT id, scale, reason, ordered_by, revoked_at IS NOT NULL, revoked_by FROM spo2_scale_orders"
        " WHERE patient_id = %s ORDER BY id",
        (patient.patient_id,),
    ).fetchall()


def plan(db: psycopg.Connection, patient: EnrolledPatient) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT vital, every_minutes, set_by FROM monitoring_plans WHERE patient_id = %s ORDER BY vital",
        (patient.patient_id,),
    ).fetchall()


def order_rows(db: psycopg.Connection) -> list[tuple[Any, ...]]:
    """The access log without the record page's own reads."""
    return [row for row in access_rows(db) if row[3] != "patient_record"]


def section(page: str, section_id: str) -> str:
    return page.split(f'id="{section_id}"')[1].split("</section>")[0]


def notified(db: psycopg.Connection) -> list[dict[str, Any]]:
    return [json.loads(n.payload) for n in db.notifies(timeout=5, stop_after=1)]


# --- personal alert limits ---------------------------------------------------------------------------


def test_a_physician_sets_a_limit_and_it_is_on_the_record(
    base_url: str, db: psycopg.Connection, seed: Seed, physician: Staff
) -> None:
    pid = seed.anna.patient_id
    db.execute("LISTEN hemma_events")
    until = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    response = physician.post(
        f"/api/patients/{pid}/limits",
        {
            "rule": "spo2_low",
            "priority": "high",
            "limit": 86,
            "reason": "  KOL, mål 88–92 % enligt lungjour  ",
            "valid_until": until.isoformat(),
        },
    )
    assert response.status_code == 201, response.text
    answer = response.json()["limit"]
    ((limit_id, *row),) = limits(db, seed.anna)
    assert answer == {
        "id": limit_id,
        "rule": "spo2_low",
        "priority": "high",
        "limit": 86.0,
        "reason": "KOL, mål 88–92 % enligt lungjour",
        "valid_until": until.isoformat(),
        "set_by": "Erik Lund",
    }
    assert row == [
        "spo2_low",
        "high",
        86.0,
        "KOL, mål 88–92 % enligt lungjour",
        seed.physician_id,
        until,
        False,
        None,
    ]
    assert access_rows(db) == [
        (seed.physician_id, "dr.lund", pid, "set_alert_limit", f"limit:{limit_id}"),
    ]
    assert notified(db) == [{"kind": "vitals", "ward_id": "avd-norr", "patient_ids": [str(pid)]}]

    record = physician.client.get(f"/patients/{pid}").text
    table = section(record, "personal-limits")
    assert re.search(
        r"<tr><td>Syremättnad, låg</td><td>Hög</td><td class=\"num\">86 %</td>"
        r"<td>KOL, mål 88–92 % enligt lungjour</td><td>Erik Lund, ",
        table,
    )
    assert f'data-limit-id="{limit_id}">Återkalla gränsen</button>' in table

    # A new limit for the same rule and priority replaces the one in force; both stay as history.
    again = physician.post(
        f"/api/patients/{pid}/limits",
        {"rule": "spo2_low", "priority": "high", "limit": 85, "reason": "Sänkt efter rond"},
    )
    assert again.status_code == 201
    first, second = limits(db, seed.anna)
    assert first[0] == limit_id and first[7:] == (True, seed.physician_id)
    assert second[1:8] == ("spo2_low", "high", 85.0, "Sänkt efter rond", seed.physician_id, None, False)
    table = section(physician.client.get(f"/patients/{pid}").text, "personal-limits")
    assert "85 %" in table and "86 %" not in table and "tills vidare" in table
    assert metric(base_url, 'care_orders_total{action="set_alert_limit"}') == 2


def test_nurses_may_not_change_limits_or_the_scale_and_do_not_see_those_forms(
    base_url: str, db: psycopg.Connection, seed: Seed, nurse: Staff, physician: Staff
) -> None:
    pid = seed.anna.patient_id
    limit_id = set_personal_threshold(
        db,
        patient_id=pid,
        rule="pulse_high",
        priority="medium",
        limit=120,
        reason="Känd förmaksflimmer",
        set_by_username="dr.lund",
    )
    body = {"rule": "spo2_low", "priority": "high", "limit": 86, "reason": "KOL"}
    refused = nurse.post(f"/api/patients/{pid}/limits", body)
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Endast läkare får ändra larmgränser"}
    revoke = nurse.post(f"/api/patients/{pid}/limits/{limit_id}/revoke", {})
    assert revoke.status_code == 403 and revoke.json() == {"detail": "Endast läkare får ändra larmgränser"}
    scale = nurse.post(f"/api/patients/{pid}/spo2-scale", {"scale": 2, "reason": "Hyperkapni"})
    assert scale.status_code == 403 and scale.json() == {"detail": "Endast läkare får ordinera SpO₂-skala"}
    assert [row[7] for row in limits(db, seed.anna)] == [False]
    assert scale_orders(db, seed.anna) == []
    assert access_rows(db) == []
    assert metric(base_url, 'action_errors_total{action="set_alert_limit",status="403"}') == 1
    assert metric(base_url, 'action_errors_total{action="revoke_alert_limit",status="403"}') == 1
    assert metric(base_url, 'action_errors_total{action="order_spo2_scale",status="403"}') == 1

    # The nurse's record: the limits and the scale, no forms to change them; the plan form is hers.
    as_nurse = nurse.client.get(f"/patients/{pid}").text
    for absent in ("limit-form", "limit-editor", "limit-revoke", "scale-form", "Ordinera skala 2"):
        assert absent not in as_nurse, absent
    assert "Larmgränser ändras av läkare." in as_nurse
    assert 'class="order-form plan-form"' in as_nurse
    as_physician = physician.client.get(f"/patients/{pid}").text
    assert as_physician.count('class="order-form limit-form"') == len(threshold_keys())  # one per key
    assert 'data-rule="spo2_low"' in as_physician and 'data-rule="temperature_high"' in as_physician
    assert "Avdelningen: hög under 92 %, medel under 94 %" in as_physician
    assert f'data-limit-id="{limit_id}"' in as_physician
    assert ">Ordinera skala 2</button>" in as_physician
    assert 'class="order-form plan-form"' in as_physician


INVALID_LIMITS: list[tuple[dict[str, Any], str | None, str]] = [
    (
        {"rule": "spo2_low", "priority": "high", "limit": 86},
        "reason",
        "Skriv en motivering: vem som bad om gränsen och varför (minst 3 tecken)",
    ),
    (
        {"rule": "spo2_low", "priority": "high", "limit": 86, "reason": "  ok "},
        "reason",
        "Skriv en motivering: vem som bad om gränsen och varför (minst 3 tecken)",
    ),
    (
        {"rule": "glukos_hög", "priority": "high", "limit": 20, "reason": "Diabetes"},
        "rule",
        "Okänd larmgräns",
    ),
    (
        {"rule": "pulse_low", "priority": "medium", "limit": 45, "reason": "Betablockad"},
        "priority",
        "Puls, låg har gräns bara för prioritet hög",
    ),
    (
        {"rule": "spo2_low", "priority": "low", "limit": 80, "reason": "KOL"},
        "priority",
        "Syremättnad, låg har gräns bara för prioritet hög och medel",
    ),
    (
        {"rule": "spo2_low", "priority": "high", "limit": 150, "reason": "KOL"},
        "limit",
        "Gränsen 150 % är inte ett möjligt värde för syremättnad (40–100 %)",
    ),
    (
        {"rule": "temperature_high", "priority": "medium", "limit": 47.5, "reason": "Feber"},
        "limit",
        "Gränsen 47,5 °C är inte ett möjligt värde för kroppstemperatur (25–45 °C)",
    ),
    (
        {
            "rule": "spo2_low",
            "priority": "high",
            "limit": 86,
            "reason": "KOL",
            "valid_until": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        },
        "valid_until",
        "Gäller till måste ligga efter nu",
    ),
    (
        {"rule": "spo2_low", "priority": "high", "limit": 86, "reason": "KOL", "valid_until": "i morgon"},
        "valid_until",
        "Ogiltig tidpunkt för Gäller till",
    ),
    (
        {"rule": "spo2_low", "priority": "high", "limit": "86", "reason": "KOL"},
        "limit",
        "Ange gränsen som ett tal",
    ),
    (
        {"rule": "spo2_low", "priority": "high", "limit": None, "reason": "KOL"},
        "limit",
        "Ange gränsen som ett tal",
    ),
    (
        {"rule": "spo2_low", "priority": "high", "limit": True, "reason": "KOL"},
        "limit",
        "Ange gränsen som ett tal",
    ),
    (
        {"rule": "spo2_low", "priority": "HIGH", "limit": 86, "reason": "KOL"},
        "priority",
        "Välj prioritet: hög, medel eller låg",
    ),
    (
        {"rule": "spo2_low", "priority": ["high"], "limit": 86, "reason": "KOL"},
        "priority",
        "Välj prioritet: hög, medel eller låg",
    ),
    ({"priority": "high", "limit": 86, "reason": "KOL"}, "rule", "Välj vilken larmgräns som ska ändras"),
    (
        {"rule": "spo2_low", "priority": "high", "limit": 86, "reason": "x" * 501},
        "reason",
        "Motiveringen får vara högst 500 tecken",
    ),
    (
        {"rule": "spo2_low", "priority": "high", "limit": 86, "reason": "KOL", "by": "dr.lund"},
        "by",
        "Okänt fält: by",
    ),
]


def test_limit_refusals_are_in_swedish_and_change_nothing(
    base_url: str, db: psycopg.Connection, seed: Seed, physician: Staff
) -> None:
    pid = seed.anna.patient_id
    for body, field, message in INVALID_LIMITS:
        response = physician.post(f"/api/patients/{pid}/limits", body)
        assert response.status_code == 422, body
        assert response.json() == {"detail": message} | ({"field": field} if field else {}), body
    good = {"rule": "spo2_low", "priority": "high", "limit": 86, "reason": "KOL"}
    other_ward = physician.post(f"/api/patients/{seed.cecilia.patient_id}/limits", good)
    assert other_ward.status_code == 403 and other_ward.json() == {
        "detail": "Behörighet saknas för avdelningen"
    }
    unknown = physician.post(f"/api/patients/{uuid.uuid4()}/limits", good)
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Patienten finns inte"}
    assert physician.post("/api/patients/abc/limits", good).status_code == 404
    assert physician.post(f"/api/patients/{pid}/limits", raw=b"{").status_code == 422
    discharge_patient(db, gateway_id="gw-bertil")
    discharged = physician.post(f"/api/patients/{seed.bertil.patient_id}/limits", good)
    assert discharged.status_code == 409 and discharged.json() == {"detail": "Patienten är utskriven"}

    assert db.execute("SELECT count(*) FROM personal_thresholds").fetchone() == (0,)
    assert access_rows(db) == []
    assert (
        metric(base_url, 'action_errors_total{action="set_alert_limit",status="422"}')
        == len(INVALID_LIMITS) + 1
    )
    assert metric(base_url, 'action_errors_total{action="set_alert_limit",status="403"}') == 1
    assert metric(base_url, 'action_errors_total{action="set_alert_limit",status="404"}') == 2
    assert metric(base_url, 'action_errors_total{action="set_alert_limit",status="409"}') == 1
    # A discharged patient's record offers no orders.
    record = physician.client.get(f"/patients/{seed.bertil.patient_id}").text
    assert "limit-form" not in record and "scale-form" not in record and "plan-form" not in record


def test_a_revoked_limit_is_kept_as_history(
    base_url: str, db: psycopg.Connection, seed: Seed, physician: Staff
) -> None:
    pid = seed.anna.patient_id
    limit_id = set_personal_threshold(
        db,
        patient_id=pid,
        rule="spo2_low",
        priority="high",
        limit=86,
        reason="KOL",
        set_by_username="dr.lund",
    )
    bertils = set_personal_threshold(
        db,
        patient_id=seed.bertil.patient_id,
        rule="pulse_high",
        priority="high",
        limit=140,
        reason="Takykardi känd",
        set_by_username="dr.lund",
    )
    db.execute("LISTEN hemma_events")
    done = physician.post(f"/api/patients/{pid}/limits/{limit_id}/revoke", {})
    assert done.status_code == 200, done.text
    assert done.json() == {"revoked": {"id": limit_id, "rule": "spo2_low", "priority": "high"}}
    ((_, rule, priority, value, reason, set_by, _, revoked, revoked_by),) = limits(db, seed.anna)
    assert (rule, priority, value, reason, set_by) == ("spo2_low", "high", 86.0, "KOL", seed.physician_id)
    assert (revoked, revoked_by) == (True, seed.physician_id)
    assert access_rows(db) == [(seed.physician_id, "dr.lund", pid, "revoke_alert_limit", f"limit:{limit_id}")]
    assert notified(db) == [{"kind": "vitals", "ward_id": "avd-norr", "patient_ids": [str(pid)]}]
    record = physician.client.get(f"/patients/{pid}").text
    assert "Avdelningens standardgränser gäller." in section(record, "personal-limits")

    again = physician.post(f"/api/patients/{pid}/limits/{limit_id}/revoke", {})
    assert again.status_code == 409 and again.json() == {"detail": "Larmgränsen är redan återkallad"}
    # Bertil's limit through Anna's record, and a limit that never was: not found.
    wrong_patient = physician.post(f"/api/patients/{pid}/limits/{bertils}/revoke", {})
    assert wrong_patient.status_code == 404 and wrong_patient.json() == {"detail": "Larmgränsen finns inte"}
    assert physician.post(f"/api/patients/{pid}/limits/999999/revoke", {}).status_code == 404
    assert physician.post(f"/api/patients/{pid}/limits/{limit_id}/revoke", {"why": 1}).status_code == 422
    assert limits(db, seed.bertil)[0][7] is False
    assert metric(base_url, 'care_orders_total{action="revoke_alert_limit"}') == 1
    assert metric(base_url, 'action_errors_total{action="revoke_alert_limit",status="404"}') == 2


# --- SpO2 scale ---------------------------------------------------------------------------------------


def test_a_physician_orders_scale_2_and_back(
    base_url: str, db: psycopg.Connection, seed: Seed, physician: Staff
) -> None:
    pid = seed.anna.patient_id
    for body, field, message in (
        ({"scale": 2}, "reason", SCALE_REASON),
        ({"scale": 2, "reason": " "}, "reason", SCALE_REASON),
        ({"scale": 3, "reason": "Hyperkapni"}, "scale", SCALE_CHOICE),
        ({"scale": "2", "reason": "Hyperkapni"}, "scale", "Välj SpO₂-skala 1 eller 2"),
        ({"reason": "Hyperkapni"}, "scale", "Välj SpO₂-skala 1 eller 2"),
    ):  # fmt: skip
        response = physician.post(f"/api/patients/{pid}/spo2-scale", body)
        assert response.status_code == 422, body
        assert response.json() == {"detail": message, "field": field}, body
    assert scale_orders(db, seed.anna) == []

    db.execute("LISTEN hemma_events")
    two = physician.post(f"/api/patients/{pid}/spo2-scale", {"scale": 2, "reason": "KOL, pCO2 7,9 kPa"})
    assert two.status_code == 201, two.text
    order_id = two.json()["order"]["id"]
    assert two.json()["order"] == {
        "id": order_id,
        "scale": 2,
        "reason": "KOL, pCO2 7,9 kPa",
        "ordered_by": "Erik Lund",
    }
    assert notified(db) == [{"kind": "vitals", "ward_id": "avd-norr", "patient_ids": [str(pid)]}]
    record = physician.client.get(f"/patients/{pid}").text
    scale = section(record, "spo2-scale")
    assert "<strong>Skala 2 (hyperkapni)</strong>, ordinerad av Erik Lund" in scale
    assert "KOL, pCO2 7,9 kPa" in scale
    assert ">Tillbaka till skala 1</button>" in scale and 'name="scale" value="1"' in scale
    # The limit form shows the ward limits that now apply: scale 2's.
    assert "Avdelningen: hög under 84 %, medel under 86 % (skala 2)" in record
    assert "SpO₂ poängsätts på skala 2" in record

    one = physician.post(f"/api/patients/{pid}/spo2-scale", {"scale": 1, "reason": "Hyperkapni hävd"})
    assert one.status_code == 201
    first, second = scale_orders(db, seed.anna)
    assert first == (order_id, 2, "KOL, pCO2 7,9 kPa", seed.physician_id, True, seed.physician_id)
    assert second[1:] == (1, "Hyperkapni hävd", seed.physician_id, False, None)
    scale = section(physician.client.get(f"/patients/{pid}").text, "spo2-scale")
    assert "<strong>Skala 1</strong>" in scale and "Hyperkapni hävd" in scale
    assert ">Ordinera skala 2</button>" in scale
    assert order_rows(db) == [
        (seed.physician_id, "dr.lund", pid, "order_spo2_scale", f"spo2_scale_order:{order_id}"),
        (seed.physician_id, "dr.lund", pid, "order_spo2_scale", f"spo2_scale_order:{second[0]}"),
    ]
    assert metric(base_url, 'care_orders_total{action="order_spo2_scale"}') == 2


# --- monitoring plan ------------------------------------------------------------------------------------


def test_a_nurse_sets_and_clears_the_monitoring_plan(
    base_url: str, db: psycopg.Connection, seed: Seed, nurse: Staff
) -> None:
    pid = seed.anna.patient_id
    db.execute("LISTEN hemma_events")
    done = nurse.post(f"/api/patients/{pid}/plan", {"vital": "spo2", "every_minutes": 240})
    assert done.status_code == 200, done.text
    assert done.json() == {"plan": {"vital": "spo2", "every_minutes": 240}}
    assert plan(db, seed.anna) == [("spo2", 240, seed.nurse_id)]
    assert notified(db) == [{"kind": "vitals", "ward_id": "avd-norr", "patient_ids": [str(pid)]}]
    assert (
        nurse.post(f"/api/patients/{pid}/plan", {"vital": "body_weight", "every_minutes": 1440}).status_code
        == 200
    )
    assert nurse.post(f"/api/patients/{pid}/plan", {"vital": "spo2", "every_minutes": 60}).status_code == 200
    assert plan(db, seed.anna) == [("body_weight", 1440, seed.nurse_id), ("spo2", 60, seed.nurse_id)]
    items = section(nurse.client.get(f"/patients/{pid}").text, "monitoring-plan")
    assert re.search(r"<strong>Syremättnad</strong> var 1 h", items)
    assert re.search(r"<strong>Kroppsvikt</strong> var 24 h", items)
    assert 'data-vital="spo2">Ta bort syremättnad ur mätplanen</button>' in items

    for body, field, message in (
        ({"vital": "spo2", "every_minutes": 3}, "every_minutes", PLAN_RANGE),
        ({"vital": "spo2", "every_minutes": 8 * 1440}, "every_minutes", PLAN_RANGE),
        ({"vital": "spo2", "every_minutes": 10**15}, "every_minutes", PLAN_RANGE),
        ({"vital": "spo2", "every_minutes": 90.5}, "every_minutes", "Ange intervallet i hela minuter"),
        ({"vital": "spo2", "every_minutes": "4h"}, "every_minutes", "Ange intervallet i hela minuter"),
        ({"vital": "blodsocker", "every_minutes": 60}, "vital", "Okänd mätparameter"),
        ({"every_minutes": 60}, "vital", "Välj vad som ska mätas"),
    ):  # fmt: skip
        response = nurse.post(f"/api/patients/{pid}/plan", body)
        assert response.status_code == 422, body
        assert response.json() == {"detail": message, "field": field}, body

    # A live missing-data alarm for the vital ends with its plan (care.plans, same transaction).
    alarm = db.execute(
        "INSERT INTO alerts (patient_id, ward_id, rule, vital, priority, state, condition, message,"
        " observed_at) VALUES (%s, 'avd-norr', 'missing:spo2', 'spo2', 'medium', 'open', 'technical',"
        " 'Ingen syremättnad på 4 h', now()) RETURNING id",
        (pid,),
    ).fetchone()[0]  # type: ignore[index]
    cleared = nurse.post(f"/api/patients/{pid}/plan/spo2/clear", {})
    assert cleared.status_code == 200 and cleared.json() == {"cleared": {"vital": "spo2"}}
    assert plan(db, seed.anna) == [("body_weight", 1440, seed.nurse_id)]
    assert db.execute("SELECT state FROM alerts WHERE id = %s", (alarm,)).fetchone() == ("resolved",)
    again = nurse.post(f"/api/patients/{pid}/plan/spo2/clear", {})
    assert again.status_code == 404 and again.json() == {"detail": "Det finns ingen mätplan för syremättnad"}
    unknown = nurse.post(f"/api/patients/{pid}/plan/blodsocker/clear", {})
    assert unknown.status_code == 422 and unknown.json() == {"detail": "Okänd mätparameter", "field": "vital"}
    assert nurse.post(f"/api/patients/{seed.cecilia.patient_id}/plan/spo2/clear", {}).status_code == 403
    assert [row[3:] for row in order_rows(db)] == [
        ("set_monitoring_plan", "plan:spo2"),
        ("set_monitoring_plan", "plan:body_weight"),
        ("set_monitoring_plan", "plan:spo2"),
        ("clear_monitoring_plan", "plan:spo2"),
    ]
    assert {row[:3] for row in order_rows(db)} == {(seed.nurse_id, "nurse.norr", pid)}
    items = section(nurse.client.get(f"/patients/{pid}").text, "monitoring-plan")
    assert "Syremättnad" not in items.split('<form class="order-form plan-form"')[0]
    assert metric(base_url, 'care_orders_total{action="set_monitoring_plan"}') == 3
    assert metric(base_url, 'care_orders_total{action="clear_monitoring_plan"}') == 1
    assert metric(base_url, 'action_errors_total{action="clear_monitoring_plan",status="404"}') == 1


def test_a_physician_may_plan_and_an_admin_account_may_not(
    base_url: str, db: psycopg.Connection, seed: Seed, physician: Staff
) -> None:
    pid = seed.anna.patient_id
    assert (
        physician.post(
            f"/api/patients/{pid}/plan", {"vital": "systolic_bp", "every_minutes": 720}
        ).status_code
        == 200
    )
    assert plan(db, seed.anna) == [("systolic_bp", 720, seed.physician_id)]
    create_staff_user(
        db, username="admin", display_name="Ada Admin", role="admin", password=PASSWORD, ward_ids=[]
    )
    with logged_in(base_url, "admin", PASSWORD) as client:
        operator = Staff(client)
        refused = operator.post(f"/api/patients/{pid}/plan", {"vital": "spo2", "every_minutes": 60})
        assert refused.status_code == 403
        assert refused.json() == {"detail": "Endast sjuksköterskor och läkare får ändra mätplanen"}
        limit = operator.post(
            f"/api/patients/{pid}/limits",
            {"rule": "spo2_low", "priority": "high", "limit": 86, "reason": "KOL"},
        )
        assert limit.status_code == 403 and limit.json() == {"detail": "Endast läkare får ändra larmgränser"}
        record = client.get(f"/patients/{pid}").text
    assert "plan-form" not in record and "limit-form" not in record and "scale-form" not in record


# --- CSRF and sessions ----------------------------------------------------------------------------------


def test_orders_need_a_session_and_the_csrf_token(
    base_url: str, db: psycopg.Connection, seed: Seed, physician: Staff
) -> None:
    pid = seed.anna.patient_id
    limit_id = set_personal_threshold(
        db,
        patient_id=pid,
        rule="spo2_low",
        priority="high",
        limit=86,
        reason="KOL",
        set_by_username="dr.lund",
    )
    set_monitoring_plan(db, pid, "spo2", timedelta(hours=4), "dr.lund")
    orders: list[tuple[str, dict[str, Any]]] = [
        (
            f"/api/patients/{pid}/limits",
            {"rule": "spo2_low", "priority": "high", "limit": 85, "reason": "KOL"},
        ),
        (f"/api/patients/{pid}/limits/{limit_id}/revoke", {}),
        (f"/api/patients/{pid}/spo2-scale", {"scale": 2, "reason": "Hyperkapni"}),
        (f"/api/patients/{pid}/plan", {"vital": "spo2", "every_minutes": 60}),
        (f"/api/patients/{pid}/plan/spo2/clear", {}),
    ]
    for path, body in orders:
        for token in (None, "forged"):
            refused = physician.post(path, body, token=token)
            assert refused.status_code == 403, (path, token)
            assert refused.json() == {"detail": "Ogiltig eller saknad CSRF-token"}
        assert httpx.post(base_url + path, json=body).status_code == 401
    assert metric(base_url, "csrf_rejections_total") == 10
    assert [row[1:] for row in limits(db, seed.anna)] == [
        ("spo2_low", "high", 86.0, "KOL", seed.physician_id, None, False, None)
    ]
    assert scale_orders(db, seed.anna) == []
    assert plan(db, seed.anna) == [("spo2", 240, seed.physician_id)]
    assert access_rows(db) == []


# --- care's refusals, each in Swedish by its code -----------------------------------------------------


def test_every_refusal_of_the_record_s_orders_has_a_swedish_text(db: psycopg.Connection, seed: Seed) -> None:
    """Provoke each Refused the record's orders can meet, and check the mapping knows it."""
    pid, ended = seed.anna.patient_id, seed.bertil.patient_id
    create_staff_user(
        db, username="admin", display_name="Ada Admin", role="admin", password=PASSWORD, ward_ids=[]
    )
    revoked = set_personal_threshold(
        db,
        patient_id=pid,
        rule="spo2_low",
        priority="high",
        limit=86,
        reason="KOL",
        set_by_username="dr.lund",
    )
    revoke_personal_threshold(db, revoked, "dr.lund")
    discharge_patient(db, gateway_id="gw-bertil")

    def limit(**kwargs: Any) -> None:
        given = {"patient_id": pid, "rule": "spo2_low", "priority": "high", "limit": 86.0, "reason": "KOL"}
        set_personal_threshold(db, **(given | {"set_by_username": "dr.lund"} | kwargs))

    year_10000 = datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-14)))  # in UTC

    def plan_every(every: timedelta, vital: str = "spo2", by: str = "dr.lund") -> None:
        set_monitoring_plan(db, pid, vital, every, by)

    provoked: list[tuple[Any, int, str | None]] = [
        (lambda: limit(rule="nope"), 422, "rule"),
        (lambda: limit(rule="pulse_low", priority="medium"), 422, "priority"),
        (lambda: limit(limit=20.0), 422, "limit"),
        (lambda: limit(reason=""), 422, "reason"),
        (lambda: limit(set_by_username="nurse.norr"), 403, None),
        (lambda: limit(set_by_username="dr.syd"), 403, None),  # another ward's physician
        (lambda: limit(patient_id=uuid.uuid4()), 404, None),
        (lambda: limit(patient_id=ended), 409, None),
        (lambda: limit(valid_until=datetime(2020, 1, 1, tzinfo=UTC)), 422, "valid_until"),
        (lambda: limit(valid_until=year_10000), 422, "valid_until"),
        (lambda: check_observation_time(year_10000, datetime.now(UTC)), 422, "time"),
        (lambda: check_observation_time(datetime(2020, 1, 1, tzinfo=UTC), datetime.now(UTC)), 422,
         "time"),
        (lambda: order_spo2_scale(db, pid, 3, "Hyperkapni", "dr.lund"), 422, "scale"),
        (lambda: order_spo2_scale(db, pid, 2, "", "dr.lund"), 422, "reason"),
        (lambda: order_spo2_scale(db, pid, 2, "Hyperkapni", "nurse.norr"), 403, None),
        (lambda: order_spo2_scale(db, ended, 2, "Hyperkapni", "dr.lund"), 409, None),
        (lambda: order_spo2_scale(db, uuid.uuid4(), 2, "Hyperkapni", "dr.lund"), 404, None),
        (lambda: plan_every(timedelta(hours=1), vital="nope"), 422, "vital"),
        (lambda: plan_every(timedelta(seconds=90)), 422, "every_minutes"),
        (lambda: plan_every(timedelta(minutes=1)), 422, "every_minutes"),
        (lambda: plan_every(timedelta(hours=1), by="admin"), 403, None),
        (lambda: plan_every(timedelta(hours=1), by="ingen"), 403, None),
        (lambda: clear_monitoring_plan(db, pid, "spo2", "dr.lund"), 404, None),
        (lambda: clear_monitoring_plan(db, pid, "nope", "dr.lund"), 422, "vital"),
        (lambda: revoke_personal_threshold(db, revoked, "dr.lund"), 409, None),
        (lambda: revoke_personal_threshold(db, 999_999, "dr.lund"), 404, None),
        (lambda: revoke_personal_threshold(db, revoked, "nurse.norr"), 403, None),
    ]  # fmt: skip
    codes = set()
    for provoke, status, field in provoked:
        with pytest.raises(Refused) as refused:
            provoke()
        error = action_error(refused.value)
        assert error.status == status, refused.value
        assert error.message != str(refused.value), refused.value  # translated, not passed through
        assert error.message[0].isupper(), error.message
        assert not re.search(r"\b(the|is|no|must)\b", error.message), error.message
        if isinstance(error, InvalidInput):
            assert error.field == field, refused.value
        else:
            assert isinstance(error, OrderRefused | WardForbidden)
        codes.add(refused.value.code)
    # Every refusal the record's orders can meet was provoked (the texts are looked up by code, so
    # a refusal nobody provokes here has a text nobody checked) ...
    assert codes == ORDER_REFUSALS
    # ... and every code has a status and a Swedish text (dashboard.refusals, care.texts_sv).
    assert set(HTTP) == set(RefusalCode)


C = RefusalCode
# What the record's orders can be refused with (care.limits, care.plans, care.orders, care.observations'
# window, and who acts, care.acting).
ORDER_REFUSALS = {
    C.UNKNOWN_RULE, C.NO_SUCH_PRIORITY, C.IMPOSSIBLE_LIMIT, C.LIMIT_REASON_MISSING, C.ROLE, C.WARD_ACCESS,
    C.NO_PATIENT, C.PATIENT_DISCHARGED, C.LIMIT_END_PAST, C.LIMIT_END_TOO_FAR, C.OBSERVATION_IN_FUTURE,
    C.OBSERVATION_TOO_OLD, C.SCALE_CHOICE, C.SCALE_REASON_MISSING, C.UNKNOWN_VITAL, C.PLAN_WHOLE_MINUTES,
    C.PLAN_RANGE, C.NO_ACTIVE_ACCOUNT, C.NO_PLAN, C.LIMIT_ALREADY_REVOKED, C.NO_LIMIT,
}  # fmt: skip
