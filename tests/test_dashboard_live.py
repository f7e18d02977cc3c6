"""The live hub against a real PostgreSQL (slow clients, revoked access, a cut LISTEN connection),
and the dashboard's pure helpers."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from care.enrolment import EnrolledPatient, enrol_patient, ensure_ward
from care.staff import create_staff_user
from core.events import EventRejected, parse
from dashboard.auth import safe_next
from dashboard.formatting import format_age, format_clock, format_value, swedish_sort_key
from dashboard.live import LiveHub, Subscriber
from dashboard.live_state import Changes
from dashboard.metrics import DashboardMetrics
from dashboard.model import StaffUser
from dashboard.sessions import ActiveSession
from tests.support.cards import cards_of

PASSWORD = "rätt häst batteri häftklammer"


@pytest.fixture
def ward(db: psycopg.Connection) -> tuple[ActiveSession, EnrolledPatient]:
    ensure_ward(db, "avd-norr", "Avdelning Norr")
    patient = enrol_patient(db, ward_id="avd-norr", display_name="Anna Andersson", gateway_id="gw-anna")
    staff_id = create_staff_user(
        db,
        username="nurse.norr",
        display_name="Sara Sjöström",
        role="nurse",
        password=PASSWORD,
        ward_ids=["avd-norr"],
    )
    staff = StaffUser(staff_id, "nurse.norr", "Sara Sjöström", "nurse", frozenset({"avd-norr"}))
    return login_session(db, staff), patient


def login_session(db: psycopg.Connection, staff: StaffUser) -> ActiveSession:
    """A live staff_sessions row, as a login makes it (the hub needs only its row id)."""
    row = db.execute(
        "INSERT INTO staff_sessions (token_sha256, staff_user_id, expires_at)"
        " VALUES (%s, %s, now() + interval '1 hour') RETURNING id, extract(epoch FROM expires_at)::float8",
        (os.urandom(32), staff.id),
    ).fetchone()
    assert row is not None
    return ActiveSession(row[0], staff, row[1])


async def _next(sub: Subscriber, timeout: float = 5.0) -> dict[str, object] | None:
    raw = await asyncio.wait_for(sub.queue.get(), timeout)
    return None if raw is None else json.loads(raw)


async def _reading(conn: psycopg.AsyncConnection, patient: EnrolledPatient, value: float) -> None:
    """What ingest does: upsert latest_vitals and NOTIFY in one commit."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO latest_vitals (patient_id, vital, time, value, unit)"
            " VALUES (%s, 'spo2', now(), %s, '%%') ON CONFLICT (patient_id, vital)"
            " DO UPDATE SET value = EXCLUDED.value, time = EXCLUDED.time",
            (patient.patient_id, value),
        )
        event = {"kind": "vitals", "ward_id": patient.ward_id, "patient_ids": [str(patient.patient_id)]}
        await conn.execute("SELECT pg_notify('hemma_events', %s)", (json.dumps(event),))


def test_slow_subscriber_is_dropped_others_get_every_update_and_revoked_access_closes(
    database_url: str, ward: tuple[ActiveSession, EnrolledPatient]
) -> None:
    session, patient = ward

    async def scenario() -> None:
        metrics = DashboardMetrics()
        async with AsyncConnectionPool(
            database_url, min_size=1, max_size=3, open=False, kwargs={"autocommit": True}
        ) as pool:
            hub = LiveHub(pool, metrics, coalesce_s=0.01, queue_size=3, heartbeat_s=60)
            await hub.start(database_url)
            try:
                fast = hub.subscribe("avd-norr", session, "127.0.0.1")
                slow = hub.subscribe("avd-norr", session, "127.0.0.1")
                assert (await _next(fast))["type"] == "snapshot"  # type: ignore[index]
                seen = []
                async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as writer:
                    for value in range(90, 96):
                        await _reading(writer, patient, value)
                        delta = await _next(fast)
                        seen.append(cards_of(delta)[0]["vitals"][0]["text"])  # type: ignore[arg-type]
                    assert seen == ["90", "91", "92", "93", "94", "95"]
                    # The slow one filled its queue (snapshot + 2 deltas) and was closed; what it had
                    # queued was discarded: it will reconnect and get a fresh snapshot instead.
                    assert slow.closed and slow.close_code == 1013
                    assert slow.queue.qsize() == 1 and await _next(slow) is None
                    assert metrics.websocket_clients_dropped == 1
                    assert metrics.websocket_clients == 1

                    revoke = "DELETE FROM staff_ward_access WHERE staff_user_id = %s"
                    await writer.execute(revoke, (session.staff.id,))
                    await _reading(writer, patient, 96)
                    assert await _next(fast) is None
                    assert fast.close_code == 4403
                    assert metrics.websocket_clients == 0
            finally:
                await hub.stop()

    asyncio.run(scenario())


def test_a_revoked_session_closes_at_once_and_an_expired_one_within_the_recheck(
    database_url: str, db: psycopg.Connection, ward: tuple[ActiveSession, EnrolledPatient]
) -> None:
    revoked_session, _ = ward
    expiring_session = login_session(db, revoked_session.staff)

    async def scenario() -> None:
        metrics = DashboardMetrics()
        async with AsyncConnectionPool(
            database_url, min_size=1, max_size=3, open=False, kwargs={"autocommit": True}
        ) as pool:
            hub = LiveHub(pool, metrics, coalesce_s=0.01, heartbeat_s=60, session_recheck_s=2.0)
            await hub.start(database_url)
            try:
                revoked = hub.subscribe("avd-norr", revoked_session, None)
                expiring = hub.subscribe("avd-norr", expiring_session, None)
                for sub in (revoked, expiring):
                    assert (await _next(sub))["type"] == "snapshot"  # type: ignore[index]
                started = time.monotonic()
                db.execute(
                    "UPDATE staff_sessions SET revoked_at = now(), revoked_reason = 'operator' WHERE id = %s",
                    (revoked_session.id,),
                )
                # The trigger's event, not the 2 s re-check, closes it.
                assert await _next(revoked, timeout=1.5) is None and revoked.close_code == 4401
                assert time.monotonic() - started < 1.5 and not expiring.closed
                # Running out of time announces nothing; the periodic re-check finds it all the same.
                db.execute(
                    "UPDATE staff_sessions SET expires_at = now() WHERE id = %s", (expiring_session.id,)
                )
                assert await _next(expiring, timeout=5) is None and expiring.close_code == 4401
                assert metrics.websocket_clients == 0
            finally:
                await hub.stop()

    asyncio.run(scenario())


def test_cut_listen_connection_closes_subscribers_and_listening_resumes(
    database_url: str, db: psycopg.Connection, ward: tuple[ActiveSession, EnrolledPatient]
) -> None:
    session, patient = ward

    async def scenario() -> None:
        metrics = DashboardMetrics()
        async with AsyncConnectionPool(
            database_url, min_size=1, max_size=3, open=False, kwargs={"autocommit": True}
        ) as pool:
            hub = LiveHub(pool, metrics, coalesce_s=0.01, heartbeat_s=60)
            await hub.start(database_url)
            try:
                before = hub.subscribe("avd-norr", session, None)
                assert (await _next(before))["type"] == "snapshot"  # type: ignore[index]
                killed = db.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query ILIKE 'LISTEN%%'"
                ).fetchall()
                assert killed == [(True,)]
                # Events may have been missed while cut off: the page must resnapshot.
                assert await _next(before) is None and before.close_code == 1011
                await asyncio.wait_for(hub.listening.wait(), 10)
                assert metrics.listener_reconnects == 1
                after = hub.subscribe("avd-norr", session, None)
                assert (await _next(after))["type"] == "snapshot"  # type: ignore[index]
                async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as writer:
                    await _reading(writer, patient, 88)
                delta = await _next(after)
                assert cards_of(delta)[0]["vitals"][0]["text"] == "88"  # type: ignore[arg-type]
            finally:
                await hub.stop()

    asyncio.run(scenario())


# --- pure helpers -------------------------------------------------------------------------------


def test_parse_event_collects_ids_and_rejects_malformed_payloads() -> None:
    # core.events.parse types each payload; the hub's Changes add them up between two flushes.
    changes = Changes()
    pid = uuid.uuid4()
    vitals = json.dumps({"kind": "vitals", "ward_id": "w", "patient_ids": [str(pid)]})
    assert changes.add(parse(vitals)) == "vitals"
    assert changes.add(parse('{"kind": "alerts", "ward_id": "w", "alert_ids": [3, 4]}')) == "alerts"
    assert (
        changes.add(parse('{"kind": "gateway", "ward_id": null, "gateway_id": "gw-1", "status": "offline"}'))
        == "gateway"
    )
    assert changes == Changes({pid}, {3, 4}, {"gw-1"})
    assert changes.add(parse('{"kind": "sessions"}')) == "sessions"  # migration 0006's trigger
    assert changes == Changes({pid}, {3, 4}, {"gw-1"}, sessions=True) and Changes(sessions=True)
    malformed = (
        "not json",
        "[]",
        '{"kind": "weather"}',
        '{"kind": "vitals", "patient_ids": ["x"]}',
        '{"kind": "vitals"}',
        '{"kind": "alerts", "alert_ids": ["1"]}',
        '{"kind": "alerts", "alert_ids": [true]}',
        '{"kind": "gateway", "gateway_id": 5}',
    )
    for bad in malformed:
        with pytest.raises(EventRejected):
            parse(bad)


def test_safe_next_only_allows_local_paths() -> None:
    assert safe_next("/wards/avd-1?x=1") == "/wards/avd-1?x=1"
    for bad in (None, "", "//evil.example/", "https://evil.example/", "/\\evil.example", "wards"):
        assert safe_next(bad) == "/"


def test_swedish_formatting() -> None:
    now = datetime(2026, 1, 15, 13, 0, tzinfo=UTC)  # 14:00 in Stockholm (CET)
    assert format_value(37.25, 1) == "37,2" and format_value(96.0, 0) == "96"
    assert format_clock(now - timedelta(minutes=3), now) == "13:57"
    assert format_clock(datetime(2026, 1, 3, 6, 5, tzinfo=UTC), now) == "3 jan 07:05"
    ages = (timedelta(seconds=20), timedelta(minutes=5), timedelta(hours=3), timedelta(days=4))
    assert [format_age(now - age, now) for age in ages] == ["nyss", "5 min sedan", "3 tim sedan", "4 d sedan"]
    assert sorted(["Örjan", "Åsa", "Zack", "Anna", "Ärla"], key=swedish_sort_key) == [
        "Anna",
        "Zack",
        "Åsa",
        "Ärla",
        "Örjan",
    ]
