"""Discharge with an outcome (issue 11): one command (care.enrolment.discharge) from the CLI, the JSON API
and the record's form; the same refusals; and what a discharge ends (alerts and their escalation, the
plan, reminders, open requests, the app's devices, the kit) and keeps (the record, with its outcome)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from care.access_log import DASHBOARD
from care.acting import Origin, execute_async
from care.enrolment import OUTCOMES_SV, EnrolledPatient, discharge
from care.permissions import Action
from care.plans import set_monitoring_plan
from care.refusals import RefusalCode as C
from care.refusals import Refused
from care.staff import create_staff_user
from core.settings import Settings
from dashboard.live import LiveHub
from dashboard.metrics import DashboardMetrics
from dashboard.model import StaffUser
from ingest.directory import GatewayDirectory
from paging.escalator import Escalator
from paging.notify import Dispatcher
from paging.notify.base import SystemClock
from tests.support.dashboard_server import csrf_token, logged_in, running_dashboard
from tests.support.entry_points import hemma_cli, post_as, same_refusal
from tests.support.ward_seed import PASSWORD, add_alert, seed_two_wards
from tests.test_dashboard_live import login_session

SECRET = "discharge-test-secret-" + "x" * 24


@dataclass
class Ward:
    base_url: str
    database_url: str
    anna: EnrolledPatient
    bertil: EnrolledPatient
    nurse_id: int


@pytest.fixture
def ward(database_url: str, db: psycopg.Connection) -> Iterator[Ward]:
    anna, bertil, _cecilia, ids = seed_two_wards(
        db,
        [
            ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
            ("dr.lund", "Erik Lund", "physician", ["avd-norr"]),
        ],
    )
    create_staff_user(db, username="it.admin", display_name="Ada Admin", role="admin", password=PASSWORD,
                      ward_ids=["avd-norr"])  # fmt: skip
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield Ward(url, database_url, anna, bertil, ids[0])


def _in_care(db: psycopg.Connection, patient_id: uuid.UUID) -> bool:
    row = db.execute("SELECT discharged_at IS NULL FROM patients WHERE id = %s", (patient_id,)).fetchone()
    return bool(row and row[0])


def test_the_outcome_and_the_role_are_one_decision_from_the_cli_and_the_dashboard(
    ward: Ward, db: psycopg.Connection
) -> None:
    pid = str(ward.anna.patient_id)
    path = f"/api/patients/{pid}/discharge"
    cli = hemma_cli(
        ward.database_url, "patient", "discharge", pid, "--outcome", "sent_home", "--by", "nurse.norr"
    )
    http = post_as(ward.base_url, "nurse.norr", path, {"outcome": "sent_home"})
    same_refusal(cli, http, Refused(C.DISCHARGE_OUTCOME, outcome="sent_home", known=tuple(OUTCOMES_SV)))
    # The gateway form of the command asks the same question.
    cli = hemma_cli(ward.database_url, "patient", "discharge", "--gateway", "gw-anna", "--outcome", "",
                    "--by", "nurse.norr")  # fmt: skip
    http = post_as(ward.base_url, "nurse.norr", path, {"outcome": ""})
    same_refusal(cli, http, Refused(C.DISCHARGE_OUTCOME, outcome="", known=tuple(OUTCOMES_SV)))

    long_note = "x" * 501
    cli = hemma_cli(ward.database_url, "patient", "discharge", pid, "--outcome", "died", "--note", long_note,
                    "--by", "dr.lund")  # fmt: skip
    http = post_as(ward.base_url, "dr.lund", path, {"outcome": "died", "note": long_note})
    same_refusal(cli, http, Refused(C.DISCHARGE_NOTE_TOO_LONG, maximum=500))

    # An administrator runs the system, never a patient's care.
    cli = hemma_cli(ward.database_url, "patient", "discharge", pid, "--outcome", "other", "--by", "it.admin")
    http = post_as(ward.base_url, "it.admin", path, {"outcome": "other"})
    same_refusal(
        cli, http, Refused(C.ROLE, username="it.admin", role="admin", action=Action.DISCHARGE_PATIENT)
    )
    assert _in_care(db, ward.anna.patient_id)
    assert db.execute("SELECT count(*) FROM access_log WHERE action = 'discharge_patient'").fetchone() == (0,)

    # The CLI by kit: Bertil leaves, the kit is free, and a second discharge is refused as such.
    done = hemma_cli(ward.database_url, "patient", "discharge", "--gateway", "gw-bertil", "--outcome",
                     "stayed_home", "--by", "nurse.norr")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.strip()
        == f"patient {ward.bertil.patient_id} discharged (stayed_home); kit gw-bertil is free"
    )
    again = hemma_cli(ward.database_url, "patient", "discharge", str(ward.bertil.patient_id), "--outcome",
                      "stayed_home", "--by", "nurse.norr")  # fmt: skip
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert again.returncode == 2
    refused = Refused(C.PATIENT_DISCHARGED, patient_id=ward.bertil.patient_id, discharged_on=today)
    assert again.stderr.strip() == f"hemma: {refused}"
    assert db.execute(
        "SELECT p.discharge_outcome, s.username FROM patients p JOIN staff_users s ON s.id = p.discharged_by"
        " WHERE p.id = %s",
        (ward.bertil.patient_id,),
    ).fetchone() == ("stayed_home", "nurse.norr")


def _seed_open_items(db: psycopg.Connection, ward: Ward) -> tuple[int, int]:
    """Anna's high alert (open, unacknowledged: the escalator would page), her plan, a questionnaire
    schedule, an open contact request and an enrolled app device. Returns (alert id, request id)."""
    anna = ward.anna
    alert_id = add_alert(db, anna, priority="high", state="open")
    db.execute("UPDATE alerts SET opened_at = now() - interval '30 minutes' WHERE id = %s", (alert_id,))
    set_monitoring_plan(db, anna.patient_id, "spo2", timedelta(hours=4), "nurse.norr")
    db.execute(
        "INSERT INTO questionnaire_schedules (patient_id, questionnaire, times, set_by)"
        " VALUES (%s, 'hemma-hf-daily', ARRAY['09:00'::time], %s)",
        (anna.patient_id, ward.nurse_id),
    )
    request = db.execute(
        "INSERT INTO contact_requests (patient_id, gateway_id, event_id, source, reason, requested_at,"
        " received_at) VALUES (%s, %s, gen_random_uuid(), 'button', 'contact_request', now(), now())"
        " RETURNING id",
        (anna.patient_id, anna.gateway_id),
    ).fetchone()
    db.execute(
        "INSERT INTO patient_devices (patient_id, holder, label, token_sha256, enrolled_at, created_by)"
        " VALUES (%s, 'patient', 'Surfplatta', %s, now(), %s)",
        (anna.patient_id, uuid.uuid4().bytes, ward.nurse_id),
    )
    assert request is not None
    return alert_id, int(request[0])


def test_a_discharge_from_the_record_ends_the_episode_and_keeps_the_record(
    ward: Ward, db: psycopg.Connection
) -> None:
    anna = ward.anna
    alert_id, request_id = _seed_open_items(db, ward)
    record = f"/patients/{anna.patient_id}"
    with logged_in(ward.base_url, "it.admin", PASSWORD) as admin:
        assert "discharge-form" not in admin.get(record).text
    with logged_in(ward.base_url, "nurse.norr", PASSWORD) as nurse:
        page = nurse.get(record).text
        assert 'class="order-form discharge-form"' in page
        for label in OUTCOMES_SV.values():
            assert f">{label}</label>" in page
        # Without the session's token the form does nothing.
        stale = nurse.post(f"{record}/discharge", data={"csrf": "old", "outcome": "died"})
        assert stale.status_code == 403 and _in_care(db, anna.patient_id)
        posted = nurse.post(
            f"{record}/discharge",
            data={"csrf": csrf_token(nurse, record), "outcome": "transferred_to_hospital",
                  "note": "Ambulans till <SÖS>"},
        )  # fmt: skip
        # Back to the record, at its offer of the end-of-stay summary (issue 12).
        assert posted.status_code == 303 and posted.headers["location"] == f"{record}#vardtid"
        after = nurse.get(record)
    assert after.status_code == 200
    assert f'id="vardtid"><a class="button-primary stay-summary-link" href="{record}/vardtid">' in after.text
    shown = re.search(r'<div class="discharge-summary">(.*?)</div>', after.text, re.S)
    assert shown is not None
    text = re.sub(r"<[^>]+>", "", shown.group(1))
    assert re.fullmatch(
        r"Utskriven\d{1,2} \w+ \d{4} \d{2}:\d{2} av Sara Sjöström: Överflyttad till sjukhus"
        r" — Ambulans till &lt;SÖS&gt;",
        text,
    ), text
    for form in ("discharge-form", "observation-form", "plan-form", "kit-form", "schedule-form"):
        assert form not in after.text, form

    # Ended: the alert (resolved through the store, with its event), the plan, the reminders, the
    # request (closed by the nurse, "Utskriven"), the app device, the kit.
    assert db.execute("SELECT state FROM alerts WHERE id = %s", (alert_id,)).fetchone() == ("resolved",)
    assert db.execute("SELECT count(*) FROM alerts WHERE patient_id = %s AND state <> 'resolved'",
                      (anna.patient_id,)).fetchone() == (0,)  # fmt: skip
    assert db.execute("SELECT kind FROM alert_events WHERE alert_id = %s ORDER BY id DESC LIMIT 1",
                      (alert_id,)).fetchone() == ("resolved",)  # fmt: skip
    assert db.execute("SELECT count(*) FROM monitoring_plans WHERE patient_id = %s",
                      (anna.patient_id,)).fetchone() == (0,)  # fmt: skip
    assert db.execute("SELECT count(*) FROM questionnaire_schedules WHERE patient_id = %s",
                      (anna.patient_id,)).fetchone() == (0,)  # fmt: skip
    assert db.execute(
        "SELECT c.state, c.close_note, s.username, t.username FROM contact_requests c"
        " JOIN staff_users s ON s.id = c.closed_by JOIN staff_users t ON t.id = c.taken_by WHERE c.id = %s",
        (request_id,),
    ).fetchone() == ("closed", "Utskriven", "nurse.norr", "nurse.norr")
    assert db.execute("SELECT revoked_reason FROM patient_devices WHERE patient_id = %s",
                      (anna.patient_id,)).fetchall() == [("discharged",)]  # fmt: skip
    assert db.execute("SELECT patient_id FROM gateways WHERE id = 'gw-anna'").fetchone() == (None,)
    assert db.execute(
        "SELECT username, action, context, entry_point FROM access_log WHERE patient_id = %s"
        " AND action = 'discharge_patient'",
        (anna.patient_id,),
    ).fetchall() == [("nurse.norr", "discharge_patient", "outcome:transferred_to_hospital gateway:gw-anna",
                      DASHBOARD)]  # fmt: skip
    # Kept: the readings' and the alert's history, the request, the record.
    assert db.execute("SELECT count(*) FROM alert_events WHERE alert_id = %s", (alert_id,)).fetchone()[0] >= 1  # type: ignore[index]

    # The escalator finds nothing to page: it looks at open high alerts only. (Before the discharge this
    # alert, 30 minutes unacknowledged with nobody on call, would have been escalated.)
    with Escalator(
        ward.database_url, Dispatcher([], clock=SystemClock()), dashboard_url="https://hemma.example"
    ) as escalator:
        assert escalator.tick(datetime.now(UTC) + timedelta(hours=1)) == []
    # Readings from the kit now have no patient: ingest dead-letters them.
    with psycopg.connect(ward.database_url, autocommit=True) as conn:
        assert GatewayDirectory().lookup(conn, {"gw-anna"}) == {"gw-anna": None}


def test_the_ward_overview_drops_the_discharged_patient_live(
    database_url: str, db: psycopg.Connection
) -> None:
    anna, bertil, _cecilia, ids = seed_two_wards(db, [("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"])])
    staff = StaffUser(ids[0], "nurse.norr", "Sara Sjöström", "nurse", frozenset({"avd-norr"}))
    session = login_session(db, staff)

    async def scenario() -> None:
        async with AsyncConnectionPool(
            database_url, min_size=1, max_size=3, open=False, kwargs={"autocommit": True}
        ) as pool:
            hub = LiveHub(pool, DashboardMetrics(), coalesce_s=0.01, queue_size=10, heartbeat_s=60)
            await hub.start(database_url)
            try:
                sub = hub.subscribe("avd-norr", session, "127.0.0.1")
                snapshot = json.loads(await asyncio.wait_for(sub.queue.get(), 5))
                assert snapshot["type"] == "snapshot"
                assert str(anna.patient_id) in json.dumps(snapshot)
                async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as writer:
                    steps = discharge(patient_id=anna.patient_id, outcome="died", by="nurse.norr",
                                      origin=Origin(DASHBOARD))  # fmt: skip
                    await execute_async(writer, steps)
                delta = json.loads(await asyncio.wait_for(sub.queue.get(), 5))
                assert delta["type"] == "delta"
                assert delta["removed"] == [str(anna.patient_id)]
                assert str(bertil.patient_id) not in delta["removed"]
            finally:
                await hub.stop()

    asyncio.run(scenario())
