"""Escalation of unacknowledged high alerts, against real PostgreSQL and a real in-process SMTP server.

Time is injected (`tick(now)`), so minutes of ward policy pass without sleeping.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller

from care.enrolment import enrol_patient, ensure_ward
from care.oncall import add_oncall_shift
from care.staff import set_staff_contact
from core.settings import get_settings
from devservices.services import free_port
from hemma import cli
from paging.escalator import NOBODY_ON_CALL, Escalation, Escalator
from paging.notify import Dispatcher, EmailChannel, RetryPolicy
from storage.db import NOTIFY_CHANNEL
from tests.support.escalation import high_alert, tick_at
from tests.support.smtp import Mailbox

T0 = datetime(2025, 3, 4, 13, 7, tzinfo=UTC)
MIN = timedelta(minutes=1)
WARD = "asih-nord"
PATIENT_NAME = "Astrid Lindqvist"
PERSONAL_NUMBER = "19480101-1234"


class FakeClock:
    """The dispatcher's clock: attempt times follow the injected `now`, retries never wait."""

    def __init__(self) -> None:
        self.current = T0

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        pass


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


class Relay:
    """An in-process SMTP server on a fixed port that a test can take down and bring back."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox
        self.port = free_port()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp(mailbox: Mailbox) -> Iterator[Relay]:
    relay = Relay(mailbox)
    relay.start()
    yield relay
    relay.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def escalator(database_url: str, smtp: Relay, clock: FakeClock) -> Iterator[Escalator]:
    channel = EmailChannel(
        "127.0.0.1", smtp.port, sender="hemma@region.example", security="none", timeout_s=2
    )
    dispatcher = Dispatcher([channel], clock=clock, policy=RetryPolicy(max_attempts=2, base_delay_s=0))
    with Escalator(
        lambda: psycopg.connect(database_url, autocommit=True),
        dispatcher,
        dashboard_url="https://hemma.region.example",
    ) as e:
        yield e


def _staff(db: psycopg.Connection, username: str, name: str, **contact: str) -> int:
    staff_id = db.execute(
        "INSERT INTO staff_users (username, display_name, role, password_hash)"
        " VALUES (%s, %s, 'physician', 'not-a-hash') RETURNING id",
        (username, name),
    ).fetchone()[0]  # type: ignore[index]
    set_staff_contact(db, username=username, **contact)
    return int(staff_id)


@pytest.fixture
def ward(db: psycopg.Connection) -> dict[str, Any]:
    """A ward with the default policy (5 min), one patient, a jourläkare on call around T0."""
    ensure_ward(db, WARD, "ASIH Nord")
    patient = enrol_patient(
        db, ward_id=WARD, display_name=PATIENT_NAME, gateway_id="kit-0042", personal_number=PERSONAL_NUMBER
    )
    berg = _staff(db, "asa.berg", "Dr. Åsa Berg", email="asa.berg@region.example")
    add_oncall_shift(
        db, ward_id=WARD, username="asa.berg", level=1, starts_at=T0 - 8 * 60 * MIN, ends_at=T0 + 8 * 60 * MIN
    )
    return {"patient_id": patient.patient_id, "berg": berg}


def _alert(db: psycopg.Connection, patient_id: uuid.UUID, *, opened_at: datetime = T0, **kw: str) -> int:
    return high_alert(db, patient_id, WARD, opened_at=opened_at, **kw)


def _events(db: psycopg.Connection, alert_id: int) -> list[tuple[str, str | None, dict[str, Any]]]:
    rows = db.execute(
        "SELECT kind, note, detail FROM alert_events WHERE alert_id = %s ORDER BY id", (alert_id,)
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def test_escalates_to_the_jourlakare_after_five_minutes_and_not_a_second_before(
    db: psycopg.Connection,
    database_url: str,
    ward: dict[str, Any],
    escalator: Escalator,
    clock: FakeClock,
    mailbox: Mailbox,
) -> None:
    alert_id = _alert(db, ward["patient_id"])
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")

        assert tick_at(escalator, clock, T0 + 5 * MIN - timedelta(seconds=1)) == []
        assert mailbox.envelopes == []
        assert list(listener.notifies(timeout=0.2)) == []

        done = tick_at(escalator, clock, T0 + 5 * MIN)
        assert done == [Escalation(alert_id, WARD, 1, ward["berg"], delivered=True, attempts=1)]
        notes = list(listener.notifies(timeout=2, stop_after=1))
    assert [n.channel for n in notes] == [NOTIFY_CHANNEL]
    assert notes[0].payload == f'{{"kind": "alerts", "ward_id": "{WARD}", "alert_ids": [{alert_id}]}}'

    [mail] = mailbox.messages()
    assert mailbox.envelopes[0].rcpt_tos == ["asa.berg@region.example"]
    [to] = mail["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Dr. Åsa Berg", "asa.berg@region.example")
    assert mail["X-Hemma-Alert-Id"] == str(alert_id)
    body = mail.get_content()
    assert f"https://hemma.region.example/alerts/{alert_id}" in body
    assert "eskaleringsnivå 1" in body
    for identity in (
        PATIENT_NAME,
        "Astrid",
        "Lindqvist",
        PERSONAL_NUMBER,
        "19480101",
        str(ward["patient_id"]),
    ):
        assert identity not in mail["Subject"]
        assert identity not in body

    events = _events(db, alert_id)
    assert [(kind, detail.get("level"), detail.get("staff_user_id")) for kind, _, detail in events] == [
        ("escalated", 1, ward["berg"]),
        ("notified", None, None),
    ]
    assert events[0][1] == "Eskalerat till jourläkare Dr. Åsa Berg"
    assert events[1][2] | {"started_at": None} == {
        "channel": "email", "attempt": 1, "ok": True, "permanent": False,
        "detail": "SMTP accepted by 127.0.0.1", "escalation_level": 1, "recipient": "Dr. Åsa Berg",
        "started_at": None,
    }  # fmt: skip
    at = db.execute("SELECT at FROM alert_events WHERE alert_id = %s AND kind = 'escalated'", (alert_id,))
    assert at.fetchone()[0] == T0 + 5 * MIN  # type: ignore[index]

    # Still unacknowledged a minute later: level 1 was sent, level 2 is not due before 10 min.
    assert tick_at(escalator, clock, T0 + 6 * MIN) == []
    assert tick_at(escalator, clock, T0 + 10 * MIN - timedelta(seconds=1)) == []
    assert len(mailbox.envelopes) == 1
    assert len(_events(db, alert_id)) == 2
    assert escalator.metrics == {"escalated": 1, "notified": 1}


def test_unanswered_it_goes_to_the_bakjour_then_the_top_of_the_chain(
    db: psycopg.Connection, ward: dict[str, Any], escalator: Escalator, clock: FakeClock, mailbox: Mailbox
) -> None:
    lund = _staff(db, "per.lund", "Dr. Per Lund", email="per.lund@region.example")
    add_oncall_shift(
        db, ward_id=WARD, username="per.lund", level=2, starts_at=T0 - MIN, ends_at=T0 + 60 * MIN
    )
    alert_id = _alert(db, ward["patient_id"])

    assert [e.level for e in tick_at(escalator, clock, T0 + 5 * MIN)] == [1]
    assert tick_at(escalator, clock, T0 + 9 * MIN) == []
    assert tick_at(escalator, clock, T0 + 10 * MIN) == [
        Escalation(alert_id, WARD, 2, lund, delivered=True, attempts=1)
    ]
    assert [m["To"].addresses[0].addr_spec for m in mailbox.messages()] == [
        "asa.berg@region.example",
        "per.lund@region.example",
    ]
    assert "eskaleringsnivå 2" in mailbox.messages()[1].get_content()
    # Level 3: nobody is on the rota, which is recorded and counted; then the chain ends.
    assert tick_at(escalator, clock, T0 + 15 * MIN) == [Escalation(alert_id, WARD, 3, None, False, 0)]
    assert tick_at(escalator, clock, T0 + 120 * MIN) == []
    assert [(k, n, d["level"]) for k, n, d in _events(db, alert_id) if k == "escalated"] == [
        ("escalated", "Eskalerat till jourläkare Dr. Åsa Berg", 1),
        ("escalated", "Eskalerat till bakjour Dr. Per Lund", 2),
        ("escalated", NOBODY_ON_CALL, 3),
    ]
    assert len(mailbox.envelopes) == 2


def test_acknowledged_and_resolved_alerts_are_never_escalated(
    db: psycopg.Connection, ward: dict[str, Any], escalator: Escalator, clock: FakeClock, mailbox: Mailbox
) -> None:
    acknowledged = _alert(db, ward["patient_id"], state="acknowledged", rule="spo2")
    medium = _alert(db, ward["patient_id"])
    db.execute("UPDATE alerts SET priority = 'medium' WHERE id = %s", (medium,))
    for minutes in (5, 10, 15, 60):
        assert tick_at(escalator, clock, T0 + minutes * MIN) == []
    assert mailbox.envelopes == []
    assert _events(db, acknowledged) == _events(db, medium) == []

    # Acknowledged between level 1 and level 2: nothing more is sent.
    db.execute("UPDATE alerts SET state = 'resolved' WHERE id IN (%s, %s)", (acknowledged, medium))
    alert_id = _alert(db, ward["patient_id"], opened_at=T0 + 60 * MIN)
    assert len(tick_at(escalator, clock, T0 + 65 * MIN)) == 1
    db.execute("UPDATE alerts SET state = 'acknowledged', acknowledged_at = %s WHERE id = %s", (T0, alert_id))
    assert tick_at(escalator, clock, T0 + 70 * MIN) == []
    assert len(mailbox.envelopes) == 1


def test_a_red_patients_alert_escalates_sooner_than_a_green_ones(
    db: psycopg.Connection, ward: dict[str, Any], escalator: Escalator, clock: FakeClock, mailbox: Mailbox
) -> None:
    """The care level's time, never later than the ward's (care.care_levels.escalate_after): on a ward
    whose policy is 15 min, red pages after 5, yellow after 10, green (and no level) after 15."""
    ensure_ward(db, WARD, "ASIH Nord", escalate_after_minutes=15)
    patients = {"red": ward["patient_id"]}
    for level, kit, number in (("yellow", "kit-0043", "19500505-2229"), ("green", "kit-0044", None)):
        patients[level] = enrol_patient(
            db, ward_id=WARD, display_name=f"Patient {level}", gateway_id=kit, personal_number=number
        ).patient_id
    for level, patient in patients.items():
        db.execute(
            "INSERT INTO care_levels (patient_id, level, reason, set_by) VALUES (%s, %s, 'prov', %s)",
            (patient, level, ward["berg"]),
        )
    alerts = {level: _alert(db, patient) for level, patient in patients.items()}
    paged_at = {}
    for minutes in range(1, 17):
        for done in tick_at(escalator, clock, T0 + minutes * MIN):
            level = next(lv for lv, a in alerts.items() if a == done.alert_id)
            paged_at.setdefault(level, minutes)
    assert escalator.metrics["alert_errors"] == 0
    assert paged_at == {"red": 5, "yellow": 10, "green": 15}
    assert len(mailbox.envelopes) == 3  # one page per alert: only the jourläkare is on call
    # The red alert went on up the chain every 5 minutes (to nobody: no bakjour on call).
    steps = db.execute(
        "SELECT (detail->>'level')::int, at FROM alert_events WHERE alert_id = %s AND kind = 'escalated'"
        " ORDER BY id",
        (alerts["red"],),
    ).fetchall()
    assert steps == [(1, T0 + 5 * MIN), (2, T0 + 10 * MIN), (3, T0 + 15 * MIN)]


def test_nobody_on_call_is_recorded_as_an_escalation_to_nobody(
    db: psycopg.Connection, ward: dict[str, Any], escalator: Escalator, clock: FakeClock, mailbox: Mailbox
) -> None:
    db.execute("DELETE FROM oncall_shifts")
    alert_id = _alert(db, ward["patient_id"])
    assert tick_at(escalator, clock, T0 + 5 * MIN) == [Escalation(alert_id, WARD, 1, None, False, 0)]
    assert _events(db, alert_id) == [("escalated", NOBODY_ON_CALL, {"level": 1, "staff_user_id": None})]
    assert escalator.metrics["nobody_on_call"] == 1
    assert mailbox.envelopes == []


def test_a_shift_of_someone_no_longer_allowed_on_call_is_passed_over(
    db: psycopg.Connection, ward: dict[str, Any], escalator: Escalator, clock: FakeClock, mailbox: Mailbox
) -> None:
    """A shift outlives a change of role: an account made admin is not paged (care.permissions), as a
    disabled one is not, and the alert goes on to whoever may take it (here: nobody)."""
    db.execute("UPDATE staff_users SET role = 'admin' WHERE id = %s", (ward["berg"],))
    alert_id = _alert(db, ward["patient_id"])
    assert tick_at(escalator, clock, T0 + 5 * MIN) == [Escalation(alert_id, WARD, 1, None, False, 0)]
    assert mailbox.envelopes == []


def test_a_level_with_nobody_on_call_is_skipped_to_the_next(
    db: psycopg.Connection, ward: dict[str, Any], escalator: Escalator, clock: FakeClock, mailbox: Mailbox
) -> None:
    db.execute("UPDATE oncall_shifts SET level = 2")
    alert_id = _alert(db, ward["patient_id"])
    assert tick_at(escalator, clock, T0 + 5 * MIN) == [Escalation(alert_id, WARD, 2, ward["berg"], True, 1)]
    assert _events(db, alert_id)[0][2] == {"level": 2, "staff_user_id": ward["berg"], "skipped_levels": [1]}
    # Next due is level 3 (nobody there), 5 minutes after the level-2 page.
    assert tick_at(escalator, clock, T0 + 10 * MIN)[0].level == 3


def test_a_failing_channel_is_audited_and_the_escalator_keeps_running(
    db: psycopg.Connection,
    ward: dict[str, Any],
    escalator: Escalator,
    clock: FakeClock,
    smtp: Relay,
    mailbox: Mailbox,
) -> None:
    first = _alert(db, ward["patient_id"])
    smtp.stop()  # the mail relay is down: connection refused
    assert tick_at(escalator, clock, T0 + 5 * MIN) == [Escalation(first, WARD, 1, ward["berg"], False, 2)]
    events = _events(db, first)
    assert [kind for kind, _, _ in events] == ["escalated", "notification_failed", "notification_failed"]
    assert [(d["attempt"], d["ok"], d["detail"]) for _, _, d in events[1:]] == [
        (1, False, "connection refused"),
        (2, False, "connection refused"),
    ]
    assert "misslyckades" in (events[1][1] or "")

    # The relay comes back: the next alert is paged, and the first goes on to the next level as usual.
    smtp.start()
    second = _alert(db, ward["patient_id"], opened_at=T0 + 1 * MIN, rule="spo2")
    assert tick_at(escalator, clock, T0 + 6 * MIN) == [Escalation(second, WARD, 1, ward["berg"], True, 1)]
    assert [e.alert_id for e in tick_at(escalator, clock, T0 + 10 * MIN)] == [first]
    assert len(mailbox.envelopes) == 1
    assert escalator.metrics["notification_failed"] == 2


def test_an_alert_locked_by_another_escalator_is_skipped_and_never_sent_twice(
    db: psycopg.Connection,
    database_url: str,
    ward: dict[str, Any],
    escalator: Escalator,
    clock: FakeClock,
    mailbox: Mailbox,
) -> None:
    alert_id = _alert(db, ward["patient_id"])
    with psycopg.connect(database_url) as other, other.transaction():
        other.execute("SELECT 1 FROM alerts WHERE id = %s FOR UPDATE", (alert_id,))
        assert tick_at(escalator, clock, T0 + 5 * MIN) == []  # skipped, not blocked
    assert len(tick_at(escalator, clock, T0 + 5 * MIN)) == 1
    # A second escalator process sees the committed escalation and sends nothing.
    with Escalator(
        database_url, escalator._dispatcher, dashboard_url="https://hemma.region.example"
    ) as second:
        assert second.tick(T0 + 5 * MIN) == []
    assert len(mailbox.envelopes) == 1


def test_cli_adds_contacts_and_shifts(
    db: psycopg.Connection, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("HEMMA_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        ensure_ward(db, WARD, "ASIH Nord")
        db.execute(
            "INSERT INTO staff_users (username, display_name, role, password_hash)"
            " VALUES ('asa.berg', 'Dr. Åsa Berg', 'physician', 'x')"
        )
        shift = ["oncall", "add", "--ward", WARD, "--username", "asa.berg", "--level", "1"]
        times = ["--from", "2025-03-04T08:00", "--to", "2025-03-04T17:00+01:00"]
        assert cli.main([*shift, *times]) == 2  # no contact details yet: nobody could page her
        assert "hemma staff contact" in capsys.readouterr().err
        assert cli.main(["staff", "contact", "--username", "asa.berg", "--email", "utan-snabel-a"]) == 2
        assert cli.main(["staff", "contact", "--username", "asa.berg", "--email", "asa@region.example"]) == 0
        assert cli.main(["staff", "contact", "--username", "asa.berg", "--ntfy-topic", "asa-jour"]) == 0
        assert cli.main([*shift, *times]) == 0
    finally:
        get_settings.cache_clear()
    contact = db.execute("SELECT email, ntfy_topic, webhook_url FROM staff_contacts").fetchone()
    assert contact == ("asa@region.example", "asa-jour", None)
    shift_row = db.execute("SELECT level, starts_at, ends_at FROM oncall_shifts").fetchone()
    # 08:00 without an offset is Swedish local time (CET in March).
    assert shift_row == (1, datetime(2025, 3, 4, 7, 0, tzinfo=UTC), datetime(2025, 3, 4, 16, 0, tzinfo=UTC))


def test_hemma_escalate_pages_with_the_wall_clock_and_stops_on_sigterm(
    db: psycopg.Connection, database_url: str, smtp: Relay, mailbox: Mailbox
) -> None:
    now = datetime.now(UTC)
    ensure_ward(db, WARD, "ASIH Nord")
    patient = enrol_patient(db, ward_id=WARD, display_name=PATIENT_NAME, gateway_id="kit-0042")
    _staff(db, "asa.berg", "Dr. Åsa Berg", email="asa.berg@region.example")
    add_oncall_shift(
        db, ward_id=WARD, username="asa.berg", level=1, starts_at=now - MIN, ends_at=now + 60 * MIN
    )
    alert_id = _alert(db, patient.patient_id, opened_at=now - 6 * MIN)
    env = dict(
        os.environ,
        HEMMA_DATABASE_URL=database_url,
        HEMMA_NOTIFY_SMTP_HOST="127.0.0.1",
        HEMMA_NOTIFY_SMTP_PORT=str(smtp.port),
        HEMMA_NOTIFY_SMTP_SENDER="hemma@region.example",
        HEMMA_NOTIFY_SMTP_SECURITY="none",
    )
    proc = subprocess.Popen([sys.executable, "-m", "hemma.cli", "escalate"], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while not mailbox.envelopes and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr.decode()
    assert len(mailbox.envelopes) == 1
    assert [k for k, _, _ in _events(db, alert_id)] == ["escalated", "notified"]
