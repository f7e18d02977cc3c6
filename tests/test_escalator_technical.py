"""When the physician cannot be paged, the ward sees it: technical alarms from the escalator.

Real PostgreSQL and a real aiosmtpd relay that is stopped and started; time is injected.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from alerts import store
from care.enrolment import enrol_patient, ensure_ward
from care.oncall import add_oncall_shift
from care.staff import set_staff_contact
from paging.alarms import NOT_SENT_RULE
from paging.escalator import Escalation, Escalator
from paging.notify import Dispatcher, EmailChannel, RetryPolicy
from storage.db import NOTIFY_CHANNEL
from tests.support.escalation import high_alert, tick_at
from tests.support.smtp import Mailbox
from tests.support.waiting import wait_until
from tests.test_escalation import FakeClock, Relay

T0 = datetime(2025, 3, 4, 13, 7, tzinfo=UTC)
MIN = timedelta(minutes=1)
WARD = "asih-nord"
EMAIL_RULE = "notification_failing:email"
EMAIL_MESSAGE = "Larm kunde inte skickas via e-post till jourläkaren"


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
def smtp(mailbox: Mailbox) -> Iterator[Relay]:
    relay = Relay(mailbox)
    relay.start()
    yield relay
    relay.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _escalator(database_url: str, smtp: Relay, clock: FakeClock) -> Escalator:
    """A fresh escalator process: its Dispatcher starts with no memory of earlier failures."""
    channel = EmailChannel(
        "127.0.0.1", smtp.port, sender="hemma@region.example", security="none", timeout_s=2
    )
    # Two attempts per page, alarm at the third failure in a row: the second failed page trips it.
    dispatcher = Dispatcher([channel], clock=clock, policy=RetryPolicy(max_attempts=2, base_delay_s=0))
    return Escalator(
        lambda: psycopg.connect(database_url, autocommit=True),
        dispatcher,
        dashboard_url="https://hemma.example",
    )


@pytest.fixture
def escalator(database_url: str, smtp: Relay, clock: FakeClock) -> Iterator[Escalator]:
    with _escalator(database_url, smtp, clock) as e:
        yield e


@pytest.fixture
def ward(db: psycopg.Connection) -> dict[str, Any]:
    """Three patients and a jourläkare on call (e-mail only) around T0."""
    ensure_ward(db, WARD, "ASIH Nord")
    patients = [
        enrol_patient(db, ward_id=WARD, display_name=name, gateway_id=f"kit-000{i}").patient_id
        for i, name in enumerate(("Astrid Lindqvist", "Gunnar Ek", "Birgitta Holm"), start=1)
    ]
    db.execute(
        "INSERT INTO staff_users (username, display_name, role, password_hash)"
        " VALUES ('asa.berg', 'Dr. Åsa Berg', 'physician', 'x')"
    )
    set_staff_contact(db, username="asa.berg", email="asa.berg@region.example")
    add_oncall_shift(
        db, ward_id=WARD, username="asa.berg", level=1, starts_at=T0 - 60 * MIN, ends_at=T0 + 8 * 60 * MIN
    )
    return {"patients": patients}


def _alert(db: psycopg.Connection, patient_id: uuid.UUID, *, opened_at: datetime, rule: str = "news2") -> int:
    return high_alert(db, patient_id, WARD, opened_at=opened_at, rule=rule)


def _technical(db: psycopg.Connection) -> dict[uuid.UUID, tuple[Any, ...]]:
    """Paging alarms by patient: (rule, priority, condition, state, message, vital, value, observed_at)."""
    rows = db.execute(
        "SELECT patient_id, rule, priority, condition, state, message, vital, value, observed_at FROM alerts"
        " WHERE rule LIKE 'notification_failing:%' ORDER BY id"
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def _events(db: psycopg.Connection, rule: str) -> list[tuple[uuid.UUID, str, str | None]]:
    rows = db.execute(
        "SELECT a.patient_id, e.kind, e.note FROM alert_events e JOIN alerts a ON a.id = e.alert_id"
        " WHERE a.rule = %s ORDER BY e.id",
        (rule,),
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def test_a_failing_mail_relay_raises_a_technical_alarm_for_every_unpaged_patient_until_mail_works(
    db: psycopg.Connection,
    database_url: str,
    ward: dict[str, Any],
    escalator: Escalator,
    clock: FakeClock,
    smtp: Relay,
    mailbox: Mailbox,
) -> None:
    p1, p2, p3 = ward["patients"]
    smtp.stop()
    first = _alert(db, p1, opened_at=T0)
    # One failed page (two attempts) is not yet "keeps failing": no alarm.
    assert tick_at(escalator, clock, T0 + 5 * MIN) == [Escalation(first, WARD, 1, _berg(db), False, 2)]
    assert _technical(db) == {}

    second = _alert(db, p2, opened_at=T0 + MIN)
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        assert [e.alert_id for e in tick_at(escalator, clock, T0 + 6 * MIN)] == [second]
        [note] = list(listener.notifies(timeout=2, stop_after=1))
    # The third failure in a row trips the channel alarm: both patients whose pages failed get one.
    technical = _technical(db)
    assert technical == {
        p1: (EMAIL_RULE, "medium", "technical", "open", EMAIL_MESSAGE, None, 4.0, T0 + 5 * MIN),
        p2: (EMAIL_RULE, "medium", "technical", "open", EMAIL_MESSAGE, None, 4.0, T0 + 6 * MIN),
    }
    ids = [r[0] for r in db.execute("SELECT id FROM alerts WHERE rule = %s ORDER BY id", (EMAIL_RULE,))]
    assert json.loads(note.payload) == {"kind": "alerts", "ward_id": WARD, "alert_ids": [second, *ids]}
    # No hold time: the Dispatcher already waited for repeated failures, the ward is told at once.
    pending_until = db.execute("SELECT pending_until FROM alerts WHERE id = %s", (ids[1],)).fetchone()[0]  # type: ignore[index]
    assert pending_until is None

    # While the channel is failing, the next unpaged patient gets the alarm at once.
    third = _alert(db, p3, opened_at=T0 + 2 * MIN)
    assert [e.alert_id for e in tick_at(escalator, clock, T0 + 7 * MIN)] == [third]
    assert _technical(db)[p3] == (
        EMAIL_RULE,
        "medium",
        "technical",
        "open",
        EMAIL_MESSAGE,
        None,
        6.0,
        T0 + 7 * MIN,
    )
    # A second failed page for the same patient does not make a second alarm.
    again = _alert(db, p1, opened_at=T0 + 3 * MIN, rule="spo2")
    assert [e.alert_id for e in tick_at(escalator, clock, T0 + 8 * MIN)] == [again]
    assert db.execute("SELECT count(*) FROM alerts WHERE rule = %s", (EMAIL_RULE,)).fetchone() == (3,)

    with db.transaction():
        assert store.promote_due(db, now=T0 + 17 * MIN) == []  # the engine's tick: nothing was held
    assert escalator.metrics["channel_failing:email"] == 1
    assert escalator.metrics["paging_alarm_opened"] == 3

    # The relay is back: the next page goes through, and every paging alarm of the channel clears.
    smtp.start()
    fourth = _alert(db, p2, opened_at=T0 + 20 * MIN, rule="temperature")
    done = tick_at(escalator, clock, T0 + 25 * MIN)
    assert [e for e in done if e.alert_id == fourth] == [Escalation(fourth, WARD, 1, _berg(db), True, 1)]
    assert {p: t[3] for p, t in _technical(db).items()} == {p1: "resolved", p2: "resolved", p3: "resolved"}
    events = [(p, kind) for p, kind, _ in _events(db, EMAIL_RULE)]
    assert events[:3] == [(p1, "opened"), (p2, "opened"), (p3, "opened")]
    assert sorted(events[3:]) == sorted([(p1, "resolved"), (p2, "resolved"), (p3, "resolved")])
    assert len(mailbox.envelopes) == 1


def test_a_relay_back_resolves_the_alarm(
    db: psycopg.Connection, ward: dict[str, Any], escalator: Escalator, clock: FakeClock, smtp: Relay
) -> None:
    p1, p2, _ = ward["patients"]
    smtp.stop()
    _alert(db, p1, opened_at=T0)
    _alert(db, p1, opened_at=T0 + MIN, rule="spo2")
    tick_at(escalator, clock, T0 + 5 * MIN)
    tick_at(escalator, clock, T0 + 6 * MIN)
    assert [t[3] for t in _technical(db).values()] == ["open"]

    smtp.start()
    delivered = _alert(db, p2, opened_at=T0 + 3 * MIN)
    assert [e.delivered for e in tick_at(escalator, clock, T0 + 8 * MIN) if e.alert_id == delivered] == [True]
    assert _technical(db) == {
        p1: (EMAIL_RULE, "medium", "technical", "resolved", EMAIL_MESSAGE, None, 4.0, T0 + 6 * MIN)
    }
    assert [kind for _, kind, _ in _events(db, EMAIL_RULE)] == ["opened", "resolved"]


def test_after_a_restart_a_live_alarm_means_the_channel_is_still_failing(
    db: psycopg.Connection, database_url: str, ward: dict[str, Any], clock: FakeClock, smtp: Relay
) -> None:
    p1, p2, p3 = ward["patients"]
    smtp.stop()
    with _escalator(database_url, smtp, clock) as before:
        _alert(db, p1, opened_at=T0)
        _alert(db, p2, opened_at=T0 + MIN)
        tick_at(before, clock, T0 + 5 * MIN)
        tick_at(before, clock, T0 + 6 * MIN)
    assert set(_technical(db)) == {p1, p2}

    # A new process: its Dispatcher has counted two failures, below its threshold of three.
    with _escalator(database_url, smtp, clock) as after:
        _alert(db, p3, opened_at=T0 + 2 * MIN)
        tick_at(after, clock, T0 + 7 * MIN)
        assert after._dispatcher.consecutive_failures("email") == 2
    assert _technical(db)[p3][:5] == (EMAIL_RULE, "medium", "technical", "open", EMAIL_MESSAGE)


def test_with_no_channel_at_all_the_escalation_is_recorded_and_the_ward_is_told(
    db: psycopg.Connection, database_url: str, ward: dict[str, Any], clock: FakeClock, smtp: Relay
) -> None:
    p1, p2, _ = ward["patients"]
    nowhere = Dispatcher([], clock=clock)
    alert_id = _alert(db, p1, opened_at=T0)
    with Escalator(database_url, nowhere, dashboard_url="https://hemma.example") as escalator:
        assert tick_at(escalator, clock, T0 + 5 * MIN) == [Escalation(alert_id, WARD, 1, _berg(db), False, 0)]
        second = _alert(db, p1, opened_at=T0 + MIN, rule="spo2")
        assert [e.alert_id for e in tick_at(escalator, clock, T0 + 6 * MIN)] == [second]
    events = db.execute(
        "SELECT kind, note, detail->>'detail' FROM alert_events WHERE alert_id = %s ORDER BY id", (alert_id,)
    ).fetchall()
    assert [(kind, note) for kind, note, _ in events] == [
        ("escalated", "Eskalerat till jourläkare Dr. Åsa Berg"),
        ("notification_failed", "Avisering till Dr. Åsa Berg kunde inte skickas: ingen kanal"),
    ]
    assert events[1][2].startswith("NoRoute: alert")
    assert "none configured" in events[1][2]
    not_sent = "Larm kunde inte skickas till jourläkaren: ingen kanal"
    assert _technical(db) == {
        p1: (NOT_SENT_RULE, "medium", "technical", "open", not_sent, None, None, T0 + 6 * MIN)
    }

    # Paging works again (a channel is configured): the next delivery clears it.
    other = _alert(db, p2, opened_at=T0 + 2 * MIN)
    with _escalator(database_url, smtp, clock) as working:
        assert [e.delivered for e in tick_at(working, clock, T0 + 7 * MIN) if e.alert_id == other] == [True]
    assert _technical(db)[p1][3] == "resolved"
    assert [kind for _, kind, _ in _events(db, NOT_SENT_RULE)] == ["opened", "resolved"]


def _berg(db: psycopg.Connection) -> int:
    return int(db.execute("SELECT id FROM staff_users WHERE username = 'asa.berg'").fetchone()[0])  # type: ignore[index]


def _run_escalate(database_url: str, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEMMA_NOTIFY_")}
    env["HEMMA_DATABASE_URL"] = database_url
    return subprocess.Popen(
        [sys.executable, "-m", "hemma.cli", "escalate", *args], env=env, stderr=subprocess.PIPE
    )


def test_hemma_escalate_without_a_channel_refuses_unless_allowed(
    db: psycopg.Connection, database_url: str
) -> None:
    refused = _run_escalate(database_url)
    _, stderr = refused.communicate(timeout=30)
    assert refused.returncode == 2
    assert (
        stderr.decode()
        .strip()
        .startswith("hemma: no notification channel configured: set HEMMA_NOTIFY_SMTP_HOST")
    )

    now = datetime.now(UTC)
    ensure_ward(db, WARD, "ASIH Nord")
    patient = enrol_patient(
        db, ward_id=WARD, display_name="Astrid Lindqvist", gateway_id="kit-0001"
    ).patient_id
    db.execute(
        "INSERT INTO staff_users (username, display_name, role, password_hash)"
        " VALUES ('asa.berg', 'Dr. Åsa Berg', 'physician', 'x')"
    )
    set_staff_contact(db, username="asa.berg", email="asa.berg@region.example")
    add_oncall_shift(
        db, ward_id=WARD, username="asa.berg", level=1, starts_at=now - MIN, ends_at=now + 60 * MIN
    )
    alert_id = _alert(db, patient, opened_at=now - 6 * MIN)

    proc = _run_escalate(database_url, "--allow-no-channel")
    try:

        def recorded() -> bool:
            row = db.execute(
                "SELECT count(*) FROM alert_events WHERE alert_id = %s AND kind = 'notification_failed'",
                (alert_id,),
            ).fetchone()
            return row == (1,)

        wait_until(recorded, timeout=20, what="the escalation recorded as not sent")
        assert proc.poll() is None  # still running
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr.decode()
    assert "no notification channel configured (HEMMA_NOTIFY_*)" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    rule = db.execute(
        "SELECT rule, condition FROM alerts WHERE patient_id = %s AND id <> %s", (patient, alert_id)
    )
    assert rule.fetchall() == [(NOT_SENT_RULE, "technical")]
