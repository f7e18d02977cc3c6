"""What a notification may carry, the back-off policy, and storing delivery attempts as alert_events."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from alerts.model import Priority
from core.contract import AlertMessage
from paging.notify import (
    DeliveryAttempt,
    Notification,
    Recipient,
    RetryPolicy,
    UnsafeContent,
    notification_for_alert,
)

T0 = datetime(2025, 3, 4, 13, 7, tzinfo=UTC)
BERG = Recipient("Dr. Berg", email="berg@region.example", ntfy_topic="jour-berg")


def notification(**changes: object) -> Notification:
    fields: dict[str, object] = {
        "alert_id": 7,
        "ward_id": "avd-7",
        "patient_ref": str(uuid.UUID(int=12345)),
        "priority": Priority.HIGH,
        "rule": "news2",
        "message": "NEWS2 7: hög risk",
        "link": "https://hemma.region.example/alerts/7",
        "raised_at": T0,
        "escalated_at": T0,
        "recipient": BERG,
        "escalation_level": 1,
    }
    fields.update(changes)
    return Notification(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "message",
    [
        "Patient 19480101-1234 NEWS2 7",
        "NEWS2 7 (480101-1234)",
        "NEWS2 7 194801011234",
        "480101+1234: NEWS2 7",  # over 100 years old: + separator
        "NEWS2 7 19480161 1234",  # samordningsnummer (day + 60), spaced
    ],
)
def test_a_message_holding_a_personnummer_is_refused(message: str) -> None:
    with pytest.raises(UnsafeContent, match="personnummer") as raised:
        notification(message=message)
    assert "1234" not in str(raised.value)  # the refusal does not repeat what it refused


@pytest.mark.parametrize(
    "message",
    [
        "NEWS2 7: hög risk",
        "SpO₂ 86 %: under gränsen 88 %",
        "Vikt +2,4 kg på 3 dygn",
        "Systoliskt blodtryck 182 mmHg",
        "Inga mätvärden sedan 2025-03-04 06:00",
        "Puls 134/min sedan 1 h 20 min",
    ],
)
def test_ordinary_rule_messages_pass(message: str) -> None:
    assert notification(message=message).message == message


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"escalation_level": 0}, "escalation_level"),
        ({"raised_at": datetime(2025, 3, 4, 13, 7)}, "aware"),
        ({"link": "javascript:alert(1)"}, "http"),
        ({"message": "x" * 201}, "longer than 200"),
    ],
)
def test_malformed_notifications_are_refused(changes: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        notification(**changes)


def test_recipient_addresses_are_checked() -> None:
    with pytest.raises(ValueError, match="no @"):
        Recipient("Dr. Berg", email="berg")
    with pytest.raises(ValueError, match="webhook_url"):
        Recipient("Dr. Berg", webhook_url="ftp://example.org/")


def test_the_key_is_stable_for_the_same_notification_and_differs_otherwise() -> None:
    key = notification().key
    assert notification(escalated_at=T0 + timedelta(seconds=30)).key == key
    assert key.startswith("alert-7.high.l1.")
    others = {
        notification(priority=Priority.MEDIUM).key,
        notification(escalation_level=2).key,
        notification(recipient=Recipient("Dr. Ek", email="ek@region.example")).key,
        notification(alert_id=8).key,
    }
    assert key not in others and len(others) == 4


def test_notification_from_an_alert_message() -> None:
    alert = AlertMessage(
        v=1, alert_id=99, ward_id="avd-7", patient_id=uuid.UUID(int=5), rule="news2", priority="medium",
        state="open", message="NEWS2 5: medelhög risk", at=T0 - timedelta(minutes=3),
    )  # fmt: skip
    n = notification_for_alert(
        alert, BERG, dashboard_url="https://hemma.region.example/", escalated_at=T0, escalation_level=2
    )
    assert n == Notification(
        alert_id=99,
        ward_id="avd-7",
        patient_ref=str(uuid.UUID(int=5)),
        priority=Priority.MEDIUM,
        rule="news2",
        message="NEWS2 5: medelhög risk",
        link="https://hemma.region.example/alerts/99",
        raised_at=T0 - timedelta(minutes=3),
        escalated_at=T0,
        recipient=BERG,
        escalation_level=2,
    )
    long = notification_for_alert(
        alert.model_copy(update={"message": "å" * 500}),
        BERG,
        dashboard_url="https://h.example",
        escalated_at=T0,
    )
    assert len(long.message) == 200 and long.message.endswith("…")


@pytest.mark.parametrize("seed", range(20))
def test_backoff_grows_exponentially_within_its_jitter_band_and_is_capped(seed: int) -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_s=2.0, max_delay_s=30.0)
    rng = random.Random(seed)
    for retry in range(1, 10):
        ceiling = min(30.0, 2.0 * 2 ** (retry - 1))
        assert ceiling / 2 <= policy.delay_before(retry, rng) < ceiling, f"seed {seed} retry {retry}"


def test_jitter_spreads_the_retries() -> None:
    policy = RetryPolicy()
    delays = {policy.delay_before(1, random.Random(seed)) for seed in range(50)}
    assert len(delays) == 50 and max(delays) - min(delays) > 0.5


def test_unusable_retry_policies_are_refused() -> None:
    for bad in ({"max_attempts": 0}, {"base_delay_s": -1.0}, {"base_delay_s": 10.0, "max_delay_s": 5.0}):
        with pytest.raises(ValueError, match="unusable"):
            RetryPolicy(**bad)  # type: ignore[arg-type]


def _attempt(alert_id: int, attempt: int, ok: bool, permanent: bool, detail: str) -> DeliveryAttempt:
    at = T0 + timedelta(seconds=attempt)
    return DeliveryAttempt(
        alert_id=alert_id, escalation_level=1, priority=Priority.HIGH, recipient="Dr. Berg", channel="push",
        attempt=attempt, ok=ok, permanent=permanent, detail=detail, started_at=at, finished_at=at,
    )  # fmt: skip


def test_attempts_are_stored_as_alert_events(db: object) -> None:
    """The alert_event() rows fit the real schema (kinds, columns, jsonb) and read back as written."""
    from psycopg.types.json import Jsonb

    from care.enrolment import enrol_patient, ensure_ward

    conn = db  # a psycopg connection in autocommit
    ensure_ward(conn, "avd-7", "Avdelning 7")  # type: ignore[arg-type]
    patient = enrol_patient(conn, ward_id="avd-7", display_name="Test Testsson", gateway_id="gw-notify-1")  # type: ignore[arg-type]
    alert_id = conn.execute(  # type: ignore[attr-defined]
        "INSERT INTO alerts (patient_id, ward_id, rule, priority, state, message, observed_at)"
        " VALUES (%s, 'avd-7', 'news2', 'high', 'open', 'NEWS2 7: hög risk', %s) RETURNING id",
        (patient.patient_id, T0),
    ).fetchone()[0]
    attempts = [
        _attempt(alert_id, 1, False, False, "HTTP 500 Internal Server Error"),
        _attempt(alert_id, 2, True, False, "HTTP 200 OK"),
    ]

    for a in attempts:
        row = a.alert_event()
        conn.execute(  # type: ignore[attr-defined]
            "INSERT INTO alert_events (alert_id, at, kind, actor, priority, note, detail)"
            " VALUES (%(alert_id)s, %(at)s, %(kind)s, %(actor)s, %(priority)s, %(note)s, %(detail)s)",
            {**row, "detail": Jsonb(row["detail"])},
        )

    rows = conn.execute(  # type: ignore[attr-defined]
        "SELECT at, kind, actor, priority, note, detail FROM alert_events WHERE alert_id = %s ORDER BY at",
        (alert_id,),
    ).fetchall()
    assert [r[:4] for r in rows] == [
        (T0 + timedelta(seconds=s), "notified", "engine", "high") for s in (1, 2)
    ]
    assert [r[4] for r in rows] == [
        "Avisering via push (ntfy) till Dr. Berg misslyckades (försök 1, tillfälligt fel)",
        "Aviserat via push (ntfy) till Dr. Berg (försök 2)",
    ]
    assert rows[0][5] == {
        "channel": "push", "attempt": 1, "ok": False, "permanent": False,
        "detail": "HTTP 500 Internal Server Error", "escalation_level": 1, "recipient": "Dr. Berg",
        "started_at": "2025-03-04T13:07:01+00:00",
    }  # fmt: skip
