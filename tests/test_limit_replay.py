"""Try a limit before saving it (care.limit_replay, alerts.replay), against the real engine.

The strongest proof that replay uses the engine's own kernels: a day of streaming SpO2 and spot-check
pulse goes through ingest's real write path with the engine judging every batch (persistence,
hysteresis, re-fire on a worse priority), staff acknowledging each alert as it opens; then replay with
the limits in force must give exactly the alerts the engine stored: same opening times, priorities
and endings. Then a widened limit gives fewer alerts and names those that would still have fired, and
SpO2 scale 2 changes what NEWS2 would have raised.
"""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from alerts import replay
from alerts.lifecycle import Acknowledged, AlertState, Staff
from alerts.model import Priority
from alerts.news2 import NEWS2_RULE
from alerts.store import act
from care.access_log import CLI
from care.acting import Origin, execute
from care.enrolment import enrol_patient, ensure_ward
from care.limit_replay import Proposal, check_proposal, key_summary_sv, replay_limit
from care.limits import set_personal_threshold
from care.observations import record_manual_observation
from care.refusals import RefusalCode, Refused
from care.staff import create_staff_user
from core import contract
from core.vitals import VITALS, Vital
from ingest.directory import Enrolment
from ingest.engine import AlertEngine
from ingest.writer import AcceptedBatch, BatchWriter
from storage.steps import run

STREAM, CUFF = "2A5F", "2A35"
ZONE = __import__("zoneinfo").ZoneInfo("Europe/Stockholm")


class Ward:
    """One patient whose readings go through ingest's writer and engine with an injected clock."""

    def __init__(self, database_url: str) -> None:
        self.conn = psycopg.connect(database_url, autocommit=True)
        ensure_ward(self.conn, "avd-norr", "Norr")
        enrolled = enrol_patient(self.conn, ward_id="avd-norr", display_name="Oskar", gateway_id="gw-oskar")
        self.patient_id = enrolled.patient_id
        self.enrolment = Enrolment(enrolled.gateway_id, enrolled.patient_id, "avd-norr")
        self.writer = BatchWriter(self.conn, AlertEngine())
        self.nurse_id = create_staff_user(self.conn, username="sara", display_name="Sara", role="nurse",
                                          password="ett långt lösenord", ward_ids=["avd-norr"])  # fmt: skip
        create_staff_user(self.conn, username="dr.lund", display_name="Erik Lund", role="physician",
                          password="ett långt lösenord", ward_ids=["avd-norr"])  # fmt: skip

    def send(
        self, at: datetime, vital: Vital, value: float, characteristic: str, quality: tuple[str, ...] = ()
    ) -> None:
        m = contract.Measurement(
            id=uuid.uuid4(), device_id="AA:BB:CC:DD:EE:01", characteristic=characteristic, raw="00",
            effective_time=at, received_time=at,
            observations=(
                contract.Observation(vital=vital, value=value, unit=VITALS[vital].ucum, quality=quality),
            ),
        )  # fmt: skip
        decoded = contract.DecodedBatch(uuid.uuid4(), self.enrolment.gateway_id, at, [m], [])
        changes = self.writer.commit([AcceptedBatch(decoded, self.enrolment)], [], [], now=at).alert_changes
        # In service stored_at is the batch's commit time, which is the engine's `now`; here the clock is
        # injected, so the row says so too.
        self.conn.execute("UPDATE observations SET stored_at = %s WHERE measurement_id = %s", (at, m.id))
        # Staff acknowledge every alert as it opens (what replay assumes: counts depend on the limits only).
        for change in changes:
            if change.state is AlertState.OPEN:
                run(self.conn, act(change.alert_id, Acknowledged(Staff(self.nurse_id, "sara")), now=at))

    def stored(self, rule: str) -> list[tuple[datetime, str, datetime | None]]:
        return self.conn.execute(
            "SELECT opened_at, priority, resolved_at FROM alerts WHERE patient_id = %s AND rule = %s"
            " ORDER BY id",
            (self.patient_id, rule),
        ).fetchall()


def _day_of_readings(ward: Ward, start: datetime, seed: int) -> None:
    """A day: SpO2 streamed every 2 min with desaturations of every depth and length, motion artefacts,
    and a pulse spot check every 20 min drifting through the limits."""
    rng = random.Random(seed)
    dips = sorted(
        (rng.randrange(30, 700), rng.choice((2, 3, 5, 9)), rng.choice((3, 4, 6, 8, 11))) for _ in range(14)
    )
    for step in range(720):
        at = start + timedelta(minutes=2 * step)
        spo2 = 96 + rng.choice((-1, 0, 0, 1))
        for begin, length, depth in dips:
            if begin <= step < begin + length:
                spo2 = 96 - depth + rng.choice((-1, 0, 1))
        doubtful = ("body_movement",) if rng.random() < 0.04 else ()
        ward.send(at, Vital.SPO2, min(100, spo2), STREAM, doubtful)
        if step % 10 == 5:
            pulse = 95 + 30 * math.sin(step / 60) + rng.choice((-6, 0, 6))
            ward.send(at + timedelta(seconds=30), Vital.PULSE_RATE, round(pulse), CUFF)


@pytest.fixture
def ward(database_url: str) -> Ward:
    w = Ward(database_url)
    yield w  # type: ignore[misc]
    w.conn.close()


def _replayed(outcome_key: replay.ReplayedAlert) -> tuple[datetime, str, datetime | None]:
    return (outcome_key.opened_at, outcome_key.priority.label, outcome_key.resolved_at)


def test_replay_with_the_limits_in_force_gives_exactly_the_alerts_the_engine_raised(ward: Ward) -> None:
    set_personal_threshold(ward.conn, patient_id=ward.patient_id, rule="spo2_low", priority="medium",
                           limit=93, reason="KOL, mål 88–92 %", set_by_username="dr.lund")  # fmt: skip
    start = (datetime.now(UTC) - timedelta(hours=25)).replace(microsecond=0)
    _day_of_readings(ward, start, seed=11)

    outcome = execute(ward.conn, replay_limit(
        patient_id=ward.patient_id, by="dr.lund", proposal=Proposal("spo2_low", {"high": 85, "medium": 89}),
        period="7d", origin=Origin(CLI, os_user="test"),
    ))  # fmt: skip
    [spo2] = outcome.keys
    engine = ward.stored("spo2_low")
    assert len(engine) >= 6  # the day is rich enough to mean something
    assert {p for _, p, _ in engine} == {"high", "medium"}
    assert [_replayed(a) for a in spo2.current] == engine

    pulse = execute(ward.conn, replay_limit(
        patient_id=ward.patient_id, by="sara", proposal=Proposal("pulse_high", {"medium": 120}), period="7d",
        origin=Origin(CLI, os_user="test"),
    ))  # fmt: skip
    assert len(ward.stored("pulse_high")) >= 2
    assert [_replayed(a) for a in pulse.keys[0].current] == ward.stored("pulse_high")

    # Widened (medium below 89 %, high below 85 %): fewer alerts; each one it keeps was one already,
    # and the deep desaturations are still high.
    assert 0 < len(spo2.proposed) < len(spo2.current)
    assert all(any(p.overlaps(c, spo2.until) for c in spo2.current) for p in spo2.proposed)
    kept = [a for a in spo2.current if spo2.still_fires(a) is not None]
    assert kept and all(
        a.priority is Priority.HIGH for a in spo2.proposed if a.value is not None and a.value < 85
    )
    summary = key_summary_sv(spo2, "7d", ZONE)
    assert summary.startswith(
        f"Syremättnad, låg: {len(spo2.proposed)} larm senaste 7 dygnen i stället för {len(spo2.current)}; "
    )
    assert "hade fortfarande larmat (" in summary

    # A read, in the access log once per replay, in the patient's words in the log extract.
    rows = ward.conn.execute(
        "SELECT username, action, context FROM access_log WHERE patient_id = %s AND action = 'replay_limit'"
        " ORDER BY id", (ward.patient_id,),
    ).fetchall()  # fmt: skip
    assert rows == [
        ("dr.lund", "replay_limit", "replay:spo2_low 7d"),
        ("sara", "replay_limit", "replay:pulse_high 7d"),
    ]
    # Nothing was saved: the limits in force are as before.
    assert ward.conn.execute(
        "SELECT rule, priority, limit_value FROM personal_thresholds WHERE revoked_at IS NULL"
    ).fetchall() == [("spo2_low", "medium", 93.0)]


def test_scale_2_changes_what_news2_and_the_spo2_limits_would_have_raised(ward: Ward) -> None:
    """A hypercapnic patient at 88-90 % on air, everything else normal: on scale 1 SpO2 scores 3 (a red
    score: NEWS2 medium) and the ward's SpO2 limits fire; on scale 2 neither does."""
    start = (datetime.now(UTC) - timedelta(hours=10)).replace(microsecond=0)
    record_manual_observation(ward.conn, ward.patient_id, at=start, respiratory_rate=16, consciousness="A",
                              on_oxygen=False, entered_by_username="sara", now=start)  # fmt: skip
    for step in range(0, 8 * 30):
        at = start + timedelta(minutes=2 * step + 1)
        ward.send(at, Vital.SPO2, 88 + step % 3, STREAM)
        if step % 30 == 0:
            ward.send(at, Vital.PULSE_RATE, 80, CUFF)
            ward.send(at, Vital.SYSTOLIC_BP, 130, CUFF)
            ward.send(at, Vital.BODY_TEMPERATURE, 37.0, "2A1C")
    outcome = execute(ward.conn, replay_limit(
        patient_id=ward.patient_id, by="dr.lund", proposal=Proposal(spo2_scale=2), period="24h",
        origin=Origin(CLI, os_user="test"),
    ))  # fmt: skip
    by_rule = {k.rule: k for k in outcome.keys}
    assert set(by_rule) == {"spo2_low", NEWS2_RULE}
    assert [a.priority for a in by_rule["spo2_low"].current] == [Priority.HIGH]  # ≤ 91 % all along, latched
    assert by_rule["spo2_low"].proposed == ()
    assert [a.priority for a in by_rule[NEWS2_RULE].current] == [Priority.MEDIUM]
    assert by_rule[NEWS2_RULE].proposed == ()
    assert key_summary_sv(by_rule[NEWS2_RULE], "24h", ZONE) == (
        "NEWS2: 0 larm senaste dygnet i stället för 1; 1 av dem hade inte larmat."
    )


@pytest.mark.parametrize(
    ("proposal", "period", "code"),
    [
        (Proposal("spo2_low", {"high": math.nan}), "7d", RefusalCode.IMPOSSIBLE_LIMIT),
        (Proposal("spo2_low", {"high": 1e308}), "7d", RefusalCode.IMPOSSIBLE_LIMIT),
        (Proposal("spo2_low", {"high": 95}), "7d", RefusalCode.LIMIT_ORDER),  # above the medium's 94
        (Proposal("pulse_high", {"high": 100, "medium": 120}), "7d", RefusalCode.LIMIT_ORDER),
        (Proposal("heart_rhythm", {"high": 1}), "7d", RefusalCode.UNKNOWN_RULE),
        (Proposal("pulse_low", {"medium": 45}), "7d", RefusalCode.NO_SUCH_PRIORITY),
        (Proposal("spo2_low", {"medium": 90}), "7d", RefusalCode.LIMIT_ORDER),  # below the high's 92
        (Proposal("spo2_low", {"high": 85}), "30d", RefusalCode.REPLAY_PERIOD),
        (Proposal(spo2_scale=3), "7d", RefusalCode.SCALE_CHOICE),
        (Proposal(), "7d", RefusalCode.REPLAY_NOTHING),
    ],
)
def test_bad_proposals_are_refused_by_code(proposal: Proposal, period: str, code: RefusalCode) -> None:
    with pytest.raises(Refused) as refused:
        check_proposal(proposal, period, {})
    assert refused.value.code is code


def test_an_admin_may_not_replay(ward: Ward) -> None:
    create_staff_user(ward.conn, username="it.admin", display_name="IT", role="admin",
                      password="ett långt lösenord", ward_ids=["avd-norr"])  # fmt: skip
    with pytest.raises(Refused) as refused:
        execute(ward.conn, replay_limit(patient_id=ward.patient_id, by="it.admin",
                                        proposal=Proposal("spo2_low", {"high": 85}),
                                        origin=None))  # fmt: skip
    assert refused.value.code is RefusalCode.ROLE


def test_batch_windows_see_only_what_was_stored_by_then() -> None:
    """A store-and-forward batch: readings measured early but stored late join the windows only then."""
    readings = replay.Readings(
        values=np.array([90.0, 91, 92, 80]), times=np.array([100.0, 200, 300, 150]),
        doubtful=np.zeros(4, bool), continuous=np.ones(4, bool), stored=np.array([100.0, 200, 300, 400]),
    )  # fmt: skip
    batches, values, times, _, _ = replay.batch_windows(readings)
    assert batches.tolist() == [100, 200, 300, 400]
    assert [v[~np.isnan(v)].tolist() for v in values] == [[90], [90, 91], [90, 91, 92], [90, 80, 91, 92]]
    assert times[3][~np.isnan(times[3])].tolist() == [100, 150, 200, 300]
