"""Personal alert limits: a physician's limit replaces the ward default for one patient."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from alerts import judge
from alerts.model import Priority
from alerts.thresholds import WARD_DEFAULT_RULES
from care.enrolment import enrol_patient, ensure_ward
from care.limits import set_personal_threshold
from care.refusals import Refused
from care.staff import create_staff_user
from core.settings import Settings
from core.vitals import Vital
from tests.support.ingest import batch, measurement, running_ingest
from tests.support.mqtt import drop_session, publish_all
from tests.support.waiting import wait_until

COPD, OTHER = uuid.uuid4(), uuid.uuid4()
COPD_TARGET = {(COPD, "spo2_low", Priority.HIGH): 86.0, (COPD, "spo2_low", Priority.MEDIUM): 88.0}


def _judge(spo2: float, personal: dict) -> dict[uuid.UUID, tuple[str, str]]:
    """Both patients read the same spot-check SpO2; the engine's threshold judgement for each."""
    now = datetime.now(UTC)
    ids = [COPD, OTHER]
    rules = [r for r in WARD_DEFAULT_RULES if r.rule == "spo2_low"]
    limits = judge.KeyLimits.for_rows(rules, ids, personal=personal, spo2_scale_2=set())
    values = np.full((2, 1), float(spo2))
    times = np.full((2, 1), now.timestamp() - 1)
    none = np.zeros(2, np.int8)
    spot_check = np.zeros(2, bool)
    verdict = judge.judge(
        limits, values, times, np.zeros((2, 1), bool), live_priority=none, now=now, continuous=spot_check
    )
    requests, _ = judge.judgement_output(limits, verdict, ids, live_priority=none)
    return {r.patient_id: (r.priority.label, r.message) for r in requests}


@pytest.mark.parametrize(
    ("spo2", "copd", "other"),
    [
        (95, None, None),
        (89, None, ("high", "Syremättnad ≤ 91 %: 89 %")),
        (
            87,
            ("medium", "Syremättnad under personlig gräns 88 %: 87 %"),
            ("high", "Syremättnad ≤ 91 %: 87 %"),
        ),
        (85, ("high", "Syremättnad under personlig gräns 86 %: 85 %"), ("high", "Syremättnad ≤ 91 %: 85 %")),
    ],
)
def test_personal_limit_replaces_the_ward_default_for_that_patient_only(spo2, copd, other) -> None:
    got = _judge(spo2, COPD_TARGET)
    assert got.get(COPD) == copd
    assert got.get(OTHER) == other


def test_without_personal_limits_nothing_changes() -> None:
    assert _judge(87, {}) == {
        COPD: ("high", "Syremättnad ≤ 91 %: 87 %"),
        OTHER: ("high", "Syremättnad ≤ 91 %: 87 %"),
    }


@pytest.fixture
def ward(db, unique_id: str):  # type: ignore[no-untyped-def]
    ensure_ward(db, f"ward-{unique_id}", "Hemsjukvård")
    patient = enrol_patient(
        db,
        ward_id=f"ward-{unique_id}",
        display_name="Gunnar Ek",
        gateway_id=f"gw-{unique_id}",
        care_reason="KOL-exacerbation",
    )
    create_staff_user(
        db,
        username="dr.lund",
        display_name="Erik Lund",
        role="physician",
        password="ett långt lösenord",
        ward_ids=[f"ward-{unique_id}"],
    )
    create_staff_user(
        db,
        username="sara",
        display_name="Sara Sjöström",
        role="nurse",
        password="ett långt lösenord",
        ward_ids=[f"ward-{unique_id}"],
    )
    return patient


def test_physician_sets_limits_with_reason_and_the_previous_one_is_kept_as_history(db, ward) -> None:
    first = set_personal_threshold(
        db,
        patient_id=ward.patient_id,
        rule="spo2_low",
        priority="high",
        limit=87,
        reason="KOL, mål 88–92 % enligt BTS",
        set_by_username="dr.lund",
    )
    second = set_personal_threshold(
        db,
        patient_id=ward.patient_id,
        rule="spo2_low",
        priority="high",
        limit=86,
        reason="Justerat efter ronden",
        set_by_username="dr.lund",
    )
    rows = db.execute(
        "SELECT id, limit_value, revoked_at IS NOT NULL, reason FROM personal_thresholds ORDER BY id"
    ).fetchall()
    assert rows == [
        (first, 87.0, True, "KOL, mål 88–92 % enligt BTS"),
        (second, 86.0, False, "Justerat efter ronden"),
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"set_by_username": "sara"}, "sara is a nurse; only physicians set limits"),
        ({"reason": " "}, "a reason is required (who asked for it and why)"),
        ({"rule": "spo2_high"}, "unknown threshold rule 'spo2_high'"),
        (
            {"rule": "pulse_low", "priority": "medium"},
            "rule pulse_low has no medium limit to replace (it has: high)",
        ),
        ({"limit": 150}, "limit 150 % is not a possible spo2 value"),
    ],
)
def test_bad_limits_are_refused_with_a_clear_reason(db, ward, changes, message) -> None:
    args = {
        "patient_id": ward.patient_id,
        "rule": "spo2_low",
        "priority": "high",
        "limit": 86.0,
        "reason": "KOL",
        "set_by_username": "dr.lund",
    } | changes
    with pytest.raises(Refused) as caught:
        set_personal_threshold(db, **args)
    assert str(caught.value).startswith(message)
    assert db.execute("SELECT count(*) FROM personal_thresholds").fetchone()[0] == 0


def test_ingest_uses_limits_in_force_and_not_expired_ones(
    db, ward, database_url, mqtt_url, unique_id
) -> None:
    settings = Settings(
        database_url=database_url, mqtt_url=mqtt_url, ingest_client_id=f"ingest-pt-{unique_id}"
    )
    set_personal_threshold(
        db,
        patient_id=ward.patient_id,
        rule="spo2_low",
        priority="high",
        limit=86,
        reason="KOL, mål 88–92 %",
        set_by_username="dr.lund",
    )
    set_personal_threshold(
        db,
        patient_id=ward.patient_id,
        rule="spo2_low",
        priority="medium",
        limit=88,
        reason="KOL, mål 88–92 %",
        set_by_username="dr.lund",
    )
    try:
        with running_ingest(settings) as service:
            publish_all(mqtt_url, [batch(ward.gateway_id, [measurement({Vital.SPO2: 89})])])
            wait_until(lambda: service.metrics["observations_stored"] >= 1, what="SpO2 89 stored")
            assert (
                db.execute("SELECT count(*) FROM alerts WHERE rule = 'spo2_low'").fetchone()[0] == 0
            )  # within her own target (NEWS2 is another rule: scale 1 scores 89 % as 3)
            publish_all(mqtt_url, [batch(ward.gateway_id, [measurement({Vital.SPO2: 87})])])
            wait_until(
                lambda: db.execute("SELECT count(*) FROM alerts WHERE rule = 'spo2_low'").fetchone()[0] == 1,
                what="medium alert",
            )
            row = db.execute(
                "SELECT priority, message, threshold FROM alerts WHERE rule = 'spo2_low'"
            ).fetchone()
            assert row == ("medium", "Syremättnad under personlig gräns 88 %: 87 %", 88.0)
            # An expired limit no longer counts: the ward default (high below 92 %) applies again.
            db.execute(
                "UPDATE personal_thresholds SET valid_until = now() - interval '1 second',"
                " set_at = now() - interval '1 day'"
            )
            publish_all(
                mqtt_url,
                [
                    batch(
                        ward.gateway_id,
                        [measurement({Vital.SPO2: 87}, at=datetime.now(UTC) + timedelta(seconds=1))],
                    )
                ],
            )
            wait_until(
                lambda: (
                    db.execute("SELECT priority FROM alerts WHERE rule = 'spo2_low'").fetchone()[0] == "high"
                ),
                what="ward default",
            )
    finally:
        drop_session(mqtt_url, settings.ingest_client_id)
