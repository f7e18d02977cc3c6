"""Ingest against a real Mosquitto and a real PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from care.enrolment import enrol_patient, ensure_ward
from core import contract
from core.settings import Settings
from core.vitals import Vital
from tests.support.ingest import batch, measurement, running_ingest
from tests.support.mqtt import drop_session, publish_all, subscriber
from tests.support.waiting import wait_until


@pytest.fixture
def settings(database_url: str, mqtt_url: str, unique_id: str):  # type: ignore[no-untyped-def]
    s = Settings(database_url=database_url, mqtt_url=mqtt_url, ingest_client_id=f"ingest-test-{unique_id}")
    yield s
    drop_session(mqtt_url, s.ingest_client_id)


@pytest.fixture
def patient(db, unique_id: str):  # type: ignore[no-untyped-def]
    ensure_ward(db, f"ward-{unique_id}", "Testavdelning")
    return enrol_patient(
        db, ward_id=f"ward-{unique_id}", display_name="Oskar Test", gateway_id=f"gw-{unique_id}"
    )


def _count(db, sql: str, *params: object) -> int:  # type: ignore[no-untyped-def]
    return int(db.execute(sql, params).fetchone()[0])


def test_observations_are_stored_exactly_and_latest_values_follow(settings, db, patient) -> None:
    first = measurement({Vital.SPO2: 97, Vital.PULSE_RATE: 72}, at=datetime.now(UTC) - timedelta(minutes=2))
    second = measurement({Vital.SPO2: 96, Vital.PULSE_RATE: 75}, at=datetime.now(UTC) - timedelta(minutes=1))
    with running_ingest(settings) as service:
        publish_all(settings.mqtt_url, [batch(patient.gateway_id, [first, second])])
        wait_until(lambda: service.metrics["observations_stored"] >= 4, what="4 observations")
    rows = db.execute(
        "SELECT measurement_id, vital, value, unit, time FROM observations WHERE patient_id = %s"
        " ORDER BY time, vital",
        (patient.patient_id,),
    ).fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (first.id, "pulse_rate", 72.0, "/min"),
        (first.id, "spo2", 97.0, "%"),
        (second.id, "pulse_rate", 75.0, "/min"),
        (second.id, "spo2", 96.0, "%"),
    ]
    assert rows[0][4] == first.effective_time
    latest = dict(
        db.execute(
            "SELECT vital, value FROM latest_vitals WHERE patient_id = %s", (patient.patient_id,)
        ).fetchall()
    )
    assert latest == {"spo2": 96.0, "pulse_rate": 75.0}
    device = db.execute(
        "SELECT device_id, characteristics FROM devices WHERE gateway_id = %s", (patient.gateway_id,)
    ).fetchone()
    assert device == ("AA:BB:CC:DD:EE:01", ["2A5E"])


def test_redelivered_message_is_stored_once(settings, db, patient) -> None:
    message = batch(patient.gateway_id, [measurement({Vital.BODY_TEMPERATURE: 37.2})])
    with running_ingest(settings) as service:
        publish_all(settings.mqtt_url, [message, message])
        wait_until(lambda: service.metrics["duplicates"] == 1, what="the second delivery seen as a duplicate")
        assert service.metrics["duplicates"] == 1
    assert _count(db, "SELECT count(*) FROM observations WHERE patient_id = %s", patient.patient_id) == 1


def test_threshold_alert_is_stored_published_and_not_duplicated(settings, db, patient) -> None:
    low = measurement({Vital.SPO2: 87, Vital.PULSE_RATE: 118})
    lower = measurement({Vital.SPO2: 86, Vital.PULSE_RATE: 119})
    with subscriber(settings.mqtt_url, contract.alerts_topic(patient.ward_id)) as alerts_seen:
        with running_ingest(settings) as service:
            publish_all(settings.mqtt_url, [batch(patient.gateway_id, [low])])
            wait_until(lambda: service.metrics["observations_stored"] >= 2, what="first batch")
            publish_all(settings.mqtt_url, [batch(patient.gateway_id, [lower])])
            wait_until(lambda: service.metrics["observations_stored"] >= 4, what="second batch")
        published = [contract.AlertMessage.model_validate_json(m.payload) for m in alerts_seen.take(3)]
    # SpO2 86 % scores 3 and pulse 119/min 2: NEWS2 is at least 5 (medium) even with the rest unknown.
    assert {(a.rule, a.priority) for a in published} == {
        ("spo2_low", "high"),
        ("pulse_high", "medium"),
        ("news2", "medium"),
    }
    assert all(a.patient_id == patient.patient_id for a in published)
    rows = db.execute(
        "SELECT rule, priority, state, value FROM alerts WHERE patient_id = %s ORDER BY rule",
        (patient.patient_id,),
    ).fetchall()
    # One live alert per rule; the second, similar reading only updated the value.
    assert rows == [
        ("news2", "medium", "open", 5.0),
        ("pulse_high", "medium", "open", 119.0),
        ("spo2_low", "high", "open", 86.0),
    ]
    assert _count(db, "SELECT count(*) FROM alert_events WHERE kind = 'opened'") == 3


def test_worsening_reopens_an_acknowledged_alert_and_normal_resolves_it(settings, db, patient) -> None:
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    with running_ingest(settings) as service:
        publish_all(settings.mqtt_url, [batch(patient.gateway_id, [measurement({Vital.SPO2: 93}, at=t0)])])
        wait_until(lambda: service.metrics["observations_stored"] >= 1, what="medium alert")
        db.execute(
            "UPDATE alerts SET state = 'acknowledged', acknowledged_at = now() WHERE patient_id = %s",
            (patient.patient_id,),
        )
        publish_all(
            settings.mqtt_url,
            [batch(patient.gateway_id, [measurement({Vital.SPO2: 90}, at=t0 + timedelta(minutes=1))])],
        )
        wait_until(lambda: service.metrics["observations_stored"] >= 2, what="worsening")
        state = db.execute(
            "SELECT priority, state FROM alerts WHERE patient_id = %s AND rule = 'spo2_low'",
            (patient.patient_id,),
        ).fetchone()
        assert state == ("high", "open")
        # A normal reading does not clear an unacknowledged high alert: it latches.
        publish_all(
            settings.mqtt_url,
            [batch(patient.gateway_id, [measurement({Vital.SPO2: 97}, at=t0 + timedelta(minutes=2))])],
        )
        wait_until(lambda: service.metrics["observations_stored"] >= 3, what="normal reading")
        assert (
            db.execute(
                "SELECT state FROM alerts WHERE patient_id = %s AND rule = 'spo2_low'", (patient.patient_id,)
            ).fetchone()[0]
            == "open"
        )
        db.execute("UPDATE alerts SET state = 'acknowledged' WHERE patient_id = %s", (patient.patient_id,))
        publish_all(
            settings.mqtt_url,
            [batch(patient.gateway_id, [measurement({Vital.SPO2: 97}, at=t0 + timedelta(minutes=3))])],
        )
        wait_until(lambda: service.metrics["observations_stored"] >= 4, what="second normal reading")
    assert (
        db.execute(
            "SELECT state FROM alerts WHERE patient_id = %s AND rule = 'spo2_low'", (patient.patient_id,)
        ).fetchone()[0]
        == "resolved"
    )
    kinds = [
        r[0]
        for r in db.execute(
            "SELECT e.kind FROM alert_events e JOIN alerts a ON a.id = e.alert_id"
            " WHERE a.rule = 'spo2_low' ORDER BY e.id"
        ).fetchall()
    ]
    assert kinds == ["opened", "reprioritised", "resolved"]


def test_doubtful_readings_raise_no_alert(settings, db, patient) -> None:
    with running_ingest(settings) as service:
        publish_all(
            settings.mqtt_url,
            [
                batch(
                    patient.gateway_id,
                    [measurement({Vital.SYSTOLIC_BP: 82}, characteristic="2A35", quality=("cuff_loose",))],
                )
            ],
        )
        wait_until(lambda: service.metrics["observations_stored"] >= 1, what="stored")
    assert _count(db, "SELECT count(*) FROM alerts") == 0
    assert db.execute("SELECT quality FROM observations").fetchone()[0] == ["cuff_loose"]


def test_bad_messages_go_to_dead_letters_and_ingest_keeps_going(
    settings, db, patient, unique_id: str
) -> None:
    limit = settings.ingest_max_payload_bytes
    good = measurement({Vital.SPO2: 98})
    impossible = measurement({Vital.SPO2: 98}).model_dump(mode="json")
    impossible["observations"][0]["value"] = 140
    mixed = json.loads(batch(patient.gateway_id, [good])[1])
    mixed["measurements"].append(impossible)
    topic = contract.measurements_topic(patient.gateway_id)
    stranger = f"gw-stranger-{unique_id}"
    messages = [
        (topic, b"{not json"),
        batch(stranger, [measurement({Vital.SPO2: 97})]),
        (topic, b"x" * (settings.ingest_max_payload_bytes + 1)),
        (topic, json.dumps(mixed).encode()),
        (contract.measurements_topic(patient.gateway_id), batch(f"gw-other-{unique_id}", [good])[1]),
    ]
    with running_ingest(settings) as service:
        publish_all(settings.mqtt_url, messages)
        wait_until(lambda: service.metrics["dead_letters"] >= 5, what="5 dead letters")
        after = measurement({Vital.SPO2: 96})
        publish_all(settings.mqtt_url, [batch(patient.gateway_id, [after])])
        wait_until(
            lambda: service.metrics["observations_stored"] >= 2, what=f"good data after bad {service.metrics}"
        )
    reasons = [r[0] for r in db.execute("SELECT reason FROM dead_letters ORDER BY id").fetchall()]
    assert reasons[0].startswith("schema: ") and "JSON" in reasons[0]
    assert reasons[1] == "unknown gateway or no enrolled patient"
    assert reasons[2] == f"oversized: {limit + 1} bytes > limit {limit}"
    assert (
        reasons[3].startswith("measurement 1: schema: observations.0")
        and "outside plausible range" in reasons[3]
    )
    assert reasons[4] == "gateway_id in body does not match topic"
    sizes = [r[0] for r in db.execute("SELECT payload_size FROM dead_letters ORDER BY id").fetchall()]
    assert sizes[2] == settings.ingest_max_payload_bytes + 1
    stored = {r[0] for r in db.execute("SELECT measurement_id FROM observations").fetchall()}
    assert stored == {good.id, after.id}


def test_gateway_status_updates_the_kit(settings, db, patient) -> None:
    status = contract.GatewayStatus(v=1, gateway_id=patient.gateway_id, state="offline")
    topic = contract.status_topic(patient.gateway_id)
    with running_ingest(settings) as service:
        publish_all(settings.mqtt_url, [(topic, contract.encode(status))])
        wait_until(
            lambda: (
                db.execute("SELECT status FROM gateways WHERE id = %s", (patient.gateway_id,)).fetchone()[0]
                == "offline"
            ),
            what="offline status",
        )
        assert service.metrics["dead_letters"] == 0


def test_database_outage_keeps_messages_unacknowledged_until_it_is_back(settings, db, patient) -> None:
    from tests.support.proxy import PostgresProxy

    proxy = PostgresProxy(settings.database_url)
    proxied = settings.model_copy(update={"database_url": proxy.conninfo})
    before, during = measurement({Vital.SPO2: 97}), measurement({Vital.SPO2: 95})
    try:
        with running_ingest(proxied) as service:
            publish_all(settings.mqtt_url, [batch(patient.gateway_id, [before])])
            wait_until(lambda: service.metrics["observations_stored"] == 1, what="first reading")
            proxy.cut()
            publish_all(settings.mqtt_url, [batch(patient.gateway_id, [during])])
            wait_until(lambda: service.metrics["db_retries"] >= 2, what="ingest retrying")
            # Nothing was written while the database was away (and so nothing was acknowledged).
            assert _count(db, "SELECT count(*) FROM observations") == 1
            proxy.restore()
            wait_until(
                lambda: service.metrics["observations_stored"] == 2, timeout=30, what="reading after outage"
            )
    finally:
        proxy.close()
    stored = {r[0] for r in db.execute("SELECT measurement_id FROM observations").fetchall()}
    assert stored == {before.id, during.id}
    assert _count(db, "SELECT count(*) FROM dead_letters") == 0


def test_heart_failure_weight_gain_alerts_on_the_morning_the_rule_is_met(settings, db, patient) -> None:
    """ESC/HFA: more than 2 kg within 3 days. Oskar weighs every morning; his gain crosses 2 kg on day 3."""
    day0 = datetime.now(UTC).replace(hour=7, minute=30, second=0, microsecond=0) - timedelta(days=4)
    mornings = [80.0, 80.6, 81.3, 82.1]  # +2.1 kg over 3 days on the last morning
    # Oskar has had his kit since before the first morning (a reading belongs to the patient whose
    # kit assignment covers its time, issue 11).
    db.execute(
        "UPDATE kit_assignments SET starts_at = %s WHERE patient_id = %s",
        (day0 - timedelta(hours=1), patient.patient_id),
    )
    with running_ingest(settings) as service:
        for day, kg in enumerate(mornings[:3]):
            weighing = measurement(
                {Vital.BODY_WEIGHT: kg}, at=day0 + timedelta(days=day), characteristic="2A9D"
            )
            publish_all(settings.mqtt_url, [batch(patient.gateway_id, [weighing])])
            wait_until(lambda n=day: service.metrics["observations_stored"] >= n + 1, what=f"day {day}")
        assert _count(db, "SELECT count(*) FROM alerts") == 0  # +1.3 kg by day 2: not yet
        last = measurement(
            {Vital.BODY_WEIGHT: mornings[3]}, at=day0 + timedelta(days=3), characteristic="2A9D"
        )
        publish_all(settings.mqtt_url, [batch(patient.gateway_id, [last])])
        wait_until(lambda: _count(db, "SELECT count(*) FROM alerts") == 1, what="weight gain alert")
    rule, priority, message, value = db.execute(
        "SELECT rule, priority, message, value FROM alerts"
    ).fetchone()
    assert (rule, priority) == ("weight_gain_3d", "medium")
    assert message == "Viktökning 2,1 kg på 3 dygn (gräns 2 kg)"
    assert value == pytest.approx(2.1)


def test_the_running_service_scores_a_nurses_observation_on_its_timer(settings, db, patient) -> None:
    """The engine's timer runs inside the real ingest service: a nurse's entry made on the dashboard
    (here through care.observations, the command `hemma observe` runs too) reaches NEWS2 with no
    reading arriving."""
    from care.observations import record_manual_observation
    from care.staff import create_staff_user

    create_staff_user(
        db, username="sara", display_name="Sara Sjöström", role="nurse", password="ett långt lösenord",
        ward_ids=[patient.ward_id],
    )  # fmt: skip
    fast = settings.model_copy(update={"engine_tick_seconds": 1.0})
    with running_ingest(fast) as service:
        publish_all(settings.mqtt_url, [batch(patient.gateway_id, [measurement({Vital.SPO2: 97})])])
        wait_until(lambda: service.metrics["observations_stored"] >= 1, what="SpO2 stored")
        assert _count(db, "SELECT count(*) FROM alerts WHERE rule = 'news2'") == 0
        record_manual_observation(
            db, patient.patient_id, at=datetime.now(UTC), consciousness="C", entered_by_username="sara"
        )
        wait_until(
            lambda: _count(db, "SELECT count(*) FROM alerts WHERE rule = 'news2' AND state = 'open'") == 1,
            what="NEWS2 alert from the timer",
        )
        assert service.metrics["engine_ticks"] >= 1
    assert _count(db, "SELECT count(*) FROM manual_observations WHERE evaluated_at IS NOT NULL") == 1
    assert service.metrics["engine_manual_evaluated"] == 1  # in the counters line logged on stop
