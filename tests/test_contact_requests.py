""" "Kontakta mig" (issue 10): the box's button reaches the ward as a contact request with its own
lifecycle (open -> taken by a named clinician -> closed with the answer), escalates through the alert
engine when nobody takes it within the ward's time, and every action is in the access log.

Real Mosquitto, PostgreSQL and ingest service; the care commands through the CLI and the API alike.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from care.enrolment import enrol_patient, ensure_ward
from core import contract
from core.settings import Settings
from tests.support.ingest import running_ingest
from tests.support.mqtt import drop_session, publish_all, subscriber
from tests.support.waiting import wait_until


def press(gateway_id: str, *event_ids: uuid.UUID, at: datetime | None = None) -> tuple[str, bytes]:
    """A KitEventBatch as the gateway sends it: one contact_request per event id."""
    message = contract.KitEventBatch(
        v=1,
        message_id=uuid.uuid4(),
        gateway_id=gateway_id,
        sent_at=datetime.now(UTC),
        events=tuple(
            contract.KitEvent(event_id=e, kind="contact_request", at=at or datetime.now(UTC), source="button")
            for e in event_ids
        ),
    )
    return contract.events_topic(gateway_id), contract.encode(message)


def _receipts(messages: list) -> list[contract.MessageReceipt]:  # type: ignore[type-arg]
    out: list[contract.MessageReceipt] = []
    for m in messages:
        gateway_id = m.topic.split("/")[3]
        out += contract.decode_receipt(m.topic, bytes(m.payload), gateway_id=gateway_id).messages
    return out


@pytest.fixture
def kit(db, unique_id: str) -> tuple[str, uuid.UUID]:  # type: ignore[no-untyped-def]
    ensure_ward(db, f"ward-{unique_id}", "Testavdelning")
    gateway_id = f"gw-cr-{unique_id}"
    ward = f"ward-{unique_id}"
    enrolled = enrol_patient(db, ward_id=ward, display_name="Oskar Test", gateway_id=gateway_id)
    patient_id = enrolled.patient_id
    return gateway_id, patient_id


@pytest.fixture
def ingest_settings(mqtt_url: str, database_url: str, unique_id: str) -> Iterator[Settings]:
    s = Settings(mqtt_url=mqtt_url, database_url=database_url, ingest_client_id=f"ingest-cr-{unique_id}")
    yield s
    drop_session(mqtt_url, s.ingest_client_id)


# --- ingest: stored once, confirmed by a receipt ---------------------------------------------------


def test_a_press_is_stored_once_and_confirmed_and_an_unenrolled_kit_is_dead_lettered(
    ingest_settings, db, kit, unique_id
) -> None:
    gateway_id, patient_id = kit
    event_id = uuid.uuid4()
    pressed_at = datetime(2020, 1, 1, 12, 0, tzinfo=UTC)  # a Pi whose clock is not set: kept, not judged
    first = press(gateway_id, event_id, at=pressed_at)
    again = press(gateway_id, event_id, at=pressed_at)  # re-sent in a new message: the same press
    stranger = f"gw-nobody-{unique_id}"
    unknown = press(stranger, uuid.uuid4())
    before = datetime.now(UTC)
    with (
        subscriber(ingest_settings.mqtt_url, contract.receipts_topic(gateway_id)) as mine,
        subscriber(ingest_settings.mqtt_url, contract.receipts_topic(stranger)) as theirs,
        running_ingest(ingest_settings) as service,
    ):
        publish_all(ingest_settings.mqtt_url, [first, again, unknown, first])
        got = _receipts(mine.take(1, timeout=15))
        while len(got) < 3:
            got += _receipts(mine.take(1, timeout=15))
        foreign = _receipts(theirs.take(1, timeout=15))
        assert service.metrics["contact_requests_stored"] == 1
    ids = [r.message_id for r in got]
    first_id, again_id = (json.loads(m[1])["message_id"] for m in (first, again))
    assert [str(i) for i in ids] == [first_id, again_id, first_id]
    assert [r.outcome for r in got] == ["stored", "stored", "stored"]
    assert foreign == [
        contract.MessageReceipt(
            message_id=json.loads(unknown[1])["message_id"], outcome="dead_lettered",
            reason="unknown gateway or no enrolled patient",
        )
    ]  # fmt: skip
    rows = db.execute(
        "SELECT patient_id, gateway_id, event_id, source, reason, requested_at, received_at, state, taken_by"
        " FROM contact_requests"
    ).fetchall()
    assert len(rows) == 1
    (patient, gateway, stored_event, source, reason, requested_at, received_at, state, taken_by) = rows[0]
    assert (patient, gateway, stored_event, source, reason) == (
        patient_id,
        gateway_id,
        event_id,
        "button",
        "contact_request",
    )
    assert requested_at == pressed_at and before <= received_at <= datetime.now(UTC)
    assert (state, taken_by) == ("open", None)
    dead = db.execute("SELECT gateway_id, reason, topic FROM dead_letters").fetchall()
    assert dead == [(stranger, "unknown gateway or no enrolled patient", contract.events_topic(stranger))]


def test_an_events_message_that_breaks_the_contract_is_dead_lettered_with_a_receipt(
    ingest_settings, db, kit
) -> None:
    gateway_id, _ = kit
    topic, payload = press(gateway_id, uuid.uuid4())
    bad = json.loads(payload)
    bad["events"][0]["kind"] = "fall_detected"  # not a kind of the contract
    with (
        subscriber(ingest_settings.mqtt_url, contract.receipts_topic(gateway_id)) as mine,
        running_ingest(ingest_settings),
    ):
        publish_all(ingest_settings.mqtt_url, [(topic, json.dumps(bad).encode())])
        (receipt,) = _receipts(mine.take(1, timeout=15))
    assert receipt.outcome == "dead_lettered" and str(receipt.message_id) == bad["message_id"]
    assert (receipt.reason or "").startswith("schema: events.0.kind")
    assert db.execute("SELECT count(*) FROM contact_requests").fetchone() == (0,)
    wait_until(lambda: db.execute("SELECT count(*) FROM dead_letters").fetchone() == (1,))
