"""The alert engine end to end on simulated patients, with the clock injected.

Readings go through ingest's real write path (`BatchWriter.commit`: COPY, ON CONFLICT, the engine in
the same transaction) into a real PostgreSQL; the timer rules run through `BatchWriter.tick`. Expected
moments come from independent oracles (the scalar NEWS2 and weight twins run over the same readings),
never from the engine itself.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from alerts import news2
from alerts.news2 import Risk
from alerts.store import AlertChange
from alerts.weight import WEIGHT_GAIN_KG, WEIGHT_WINDOW, WEIGHT_WINDOW_SLACK, weight_gain_one
from care.enrolment import enrol_patient, ensure_ward
from care.observations import record_manual_observation
from care.staff import create_staff_user
from core import contract
from core.vitals import VITALS, Vital
from ingest.directory import Enrolment
from ingest.engine import AlertEngine
from ingest.writer import AcceptedBatch, BatchWriter
from simulator.scenarios import make_scenario

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
OXIMETER, CUFF, THERMOMETER, SCALE = "2A5E", "2A35", "2A1C", "2A9D"
STREAM = "2A5F"


class Home:
    """One enrolled patient's kit, writing through ingest's writer with an injected clock."""

    def __init__(self, database_url: str, unique_id: str, *, engine: AlertEngine | None = None) -> None:
        self.conn = psycopg.connect(database_url, autocommit=True)
        ward_id = f"ward-{unique_id}"
        ensure_ward(self.conn, ward_id, "Hemsjukvård")
        enrolled = enrol_patient(
            self.conn, ward_id=ward_id, display_name="Test Patient", gateway_id=f"gw-{unique_id}",
            care_reason="test",
        )  # fmt: skip
        self.conn.execute(
            "UPDATE patients SET enrolled_at = %s WHERE id = %s",
            (T0 - timedelta(days=1), enrolled.patient_id),
        )
        self.conn.execute(
            "UPDATE gateways SET status = 'online', status_at = %s, registered_at = %s WHERE id = %s",
            (T0 - timedelta(days=1), T0 - timedelta(days=1), enrolled.gateway_id),
        )
        self.enrolment = Enrolment(enrolled.gateway_id, enrolled.patient_id, ward_id)
        self.patient_id = enrolled.patient_id
        self.ward_id = ward_id
        self.writer = BatchWriter(self.conn, engine or AlertEngine())
        self.nurse = f"n{unique_id}"[:20]
        self.nurse_id = create_staff_user(
            self.conn, username=self.nurse, display_name="Sara", role="nurse",
            password="ett långt lösenord", ward_ids=[ward_id],
        )  # fmt: skip
        self.physician_id = create_staff_user(
            self.conn, username=f"d{unique_id}"[:20], display_name="Erik", role="physician",
            password="ett långt lösenord", ward_ids=[ward_id],
        )  # fmt: skip

    def close(self) -> None:
        self.conn.close()

    def restart(self) -> None:
        """A new ingest process: a new engine and connection, nothing carried over in memory."""
        self.writer = BatchWriter(self.conn, AlertEngine())

    def send(
        self,
        at: datetime,
        vitals: dict[Vital, float],
        *,
        characteristic: str = OXIMETER,
        quality: tuple[str, ...] = (),
        device: str = "AA:BB:CC:DD:EE:01",
    ) -> list[AlertChange]:
        m = contract.Measurement(
            id=uuid.uuid4(), device_id=device, characteristic=characteristic, raw="00", effective_time=at,
            received_time=at,
            observations=tuple(
                contract.Observation(vital=v, value=value, unit=VITALS[v].ucum, quality=quality)
                for v, value in vitals.items()
            ),
        )  # fmt: skip
        decoded = contract.DecodedBatch(uuid.uuid4(), self.enrolment.gateway_id, at, [m], [])
        return self.writer.commit([AcceptedBatch(decoded, self.enrolment)], [], [], now=at).alert_changes

    def tick(self, at: datetime) -> list[AlertChange]:
        return self.writer.tick(now=at)

    def observe(
        self,
        at: datetime,
        *,
        rr: float | None = None,
        consciousness: str | None = None,
        on_oxygen: bool | None = None,
    ) -> None:
        """A nurse's visit, entered as the dashboard and `hemma observe` do."""
        record_manual_observation(
            self.conn, self.patient_id, at=at, respiratory_rate=rr, consciousness=consciousness,
            on_oxygen=on_oxygen, entered_by_username=self.nurse, now=at,
        )  # fmt: skip

    def alerts(self, rule: str | None = None) -> list[tuple]:
        return self.conn.execute(
            "SELECT rule, priority, state FROM alerts"
            " WHERE patient_id = %s AND (%s::text IS NULL OR rule = %s) ORDER BY id",
            (self.patient_id, rule, rule),
        ).fetchall()

    def events(self, rule: str) -> list[tuple]:
        return self.conn.execute(
            "SELECT e.kind, e.priority, e.at FROM alert_events e JOIN alerts a ON a.id = e.alert_id"
            " WHERE a.patient_id = %s AND a.rule = %s ORDER BY e.id",
            (self.patient_id, rule),
        ).fetchall()


@pytest.fixture
def home(database_url: str, unique_id: str):  # type: ignore[no-untyped-def]
    h = Home(database_url, unique_id)
    yield h
    h.close()


def _notified(changes: list[AlertChange], rule: str) -> list[AlertChange]:
    return [c for c in changes if c.rule == rule and c.notify]


# --- scenarios -------------------------------------------------------------------------------------


def test_infection_raises_news2_medium_then_high_at_the_reading_the_chart_says(home: Home) -> None:
    """A sepsis-like course, spot checks every 30 min, a nurse's ACVPU and air at the start and at 10 h."""
    scenario = make_scenario("infection", seed=7)
    rr = 18.0
    home.observe(T0 - timedelta(minutes=5), rr=rr, consciousness="A", on_oxygen=False)
    home.tick(T0 - timedelta(minutes=4))
    expected: dict[str, datetime] = {}
    seen: dict[str, datetime] = {}
    latest: dict[Vital, float] = {}
    for step in range(0, 14 * 2 + 1):
        at = T0 + timedelta(minutes=30 * step)
        if step == 20:  # the nurse's next visit keeps respiration, consciousness and air fresh
            home.observe(at - timedelta(minutes=1), rr=rr, consciousness="A", on_oxygen=False)
            home.tick(at - timedelta(seconds=30))
        v = scenario.vitals_at(at - T0)
        changes = home.send(at, {Vital.SPO2: v[Vital.SPO2], Vital.PULSE_RATE: v[Vital.PULSE_RATE]})
        changes += home.send(
            at, {Vital.SYSTOLIC_BP: v[Vital.SYSTOLIC_BP], Vital.DIASTOLIC_BP: v[Vital.DIASTOLIC_BP]},
            characteristic=CUFF,
        )  # fmt: skip
        changes += home.send(
            at, {Vital.BODY_TEMPERATURE: v[Vital.BODY_TEMPERATURE]}, characteristic=THERMOMETER
        )
        changes += home.tick(at + timedelta(seconds=1))
        latest.update(
            {k: v[k] for k in (Vital.SPO2, Vital.PULSE_RATE, Vital.SYSTOLIC_BP, Vital.BODY_TEMPERATURE)}
        )
        # The oracle: the chart transcribed with if-chains, on the values the patient has now.
        one = news2.score_one(
            rr, latest[Vital.SPO2], latest[Vital.SYSTOLIC_BP], latest[Vital.PULSE_RATE],
            latest[Vital.BODY_TEMPERATURE], "A", False,
        )  # fmt: skip
        assert one.risk is not None
        if one.risk >= Risk.LOW_MEDIUM:
            expected.setdefault("medium", at)
        if one.risk >= Risk.HIGH:
            expected.setdefault("high", at)
        for change in _notified(changes, "news2"):
            seen.setdefault(change.priority, at)
    assert set(expected) == {"medium", "high"}, "the scenario must reach both"
    assert seen == expected
    assert expected["medium"] < expected["high"]
    kinds = [(k, p) for k, p, _ in home.events("news2")]
    assert kinds[:2] == [("opened", "medium"), ("reprioritised", "high")]


def test_heart_failure_weight_gain_fires_on_the_day_the_rule_is_met_and_not_before(home: Home) -> None:
    scenario = make_scenario("heart_failure", seed=3)
    weights: list[float] = []
    times: list[float] = []
    expected_day = seen_day = None
    for day in range(10):
        at = T0 + timedelta(days=day, minutes=(day * 7) % 25)  # mornings, not to the minute
        w = scenario.vitals_at(at - T0)[Vital.BODY_WEIGHT]
        weights.append(w)
        times.append(at.timestamp())
        changes = home.send(at, {Vital.BODY_WEIGHT: w}, characteristic=SCALE)
        gain = weight_gain_one(
            weights, times, at.timestamp(), (WEIGHT_WINDOW + WEIGHT_WINDOW_SLACK).total_seconds()
        )
        if expected_day is None and gain is not None and gain > WEIGHT_GAIN_KG + 1e-6:
            expected_day = day
        if seen_day is None and _notified(changes, "weight_gain_3d"):
            seen_day = day
    assert expected_day is not None
    assert seen_day == expected_day
    assert home.alerts("weight_gain_3d") == [("weight_gain_3d", "medium", "open")]


def test_a_noisy_but_stable_patient_raises_nothing_in_a_week(home: Home) -> None:
    """Oximetry every 30 min, blood pressure and temperature every 4 h, weight every morning, a nurse
    twice a day, a monitoring plan for all of it, and the timer every 30 min: no alert of any kind."""
    scenario = make_scenario("stable", seed=11)
    for vital, minutes in ((Vital.SPO2, 60), (Vital.SYSTOLIC_BP, 6 * 60), (Vital.BODY_WEIGHT, 26 * 60)):
        home.conn.execute(
            "INSERT INTO monitoring_plans (patient_id, vital, every_minutes, set_at) VALUES (%s, %s, %s, %s)",
            (home.patient_id, vital.value, minutes, T0 - timedelta(hours=1)),
        )
    for step in range(7 * 48):
        at = T0 + timedelta(minutes=30 * step)
        v = scenario.vitals_at(at - T0)
        if step % 24 == 0:
            home.observe(at - timedelta(minutes=2), rr=16, consciousness="A", on_oxygen=False)
        home.send(at, {Vital.SPO2: v[Vital.SPO2], Vital.PULSE_RATE: v[Vital.PULSE_RATE]})
        if step % 8 == 0:
            home.send(
                at, {Vital.SYSTOLIC_BP: v[Vital.SYSTOLIC_BP], Vital.DIASTOLIC_BP: v[Vital.DIASTOLIC_BP]},
                characteristic=CUFF, device="AA:BB:CC:DD:EE:02",
            )  # fmt: skip
            home.send(at, {Vital.BODY_TEMPERATURE: v[Vital.BODY_TEMPERATURE]}, characteristic=THERMOMETER,
                      device="AA:BB:CC:DD:EE:03")  # fmt: skip
        if step % 48 == 0:
            home.send(
                at,
                {Vital.BODY_WEIGHT: v[Vital.BODY_WEIGHT]},
                characteristic=SCALE,
                device="AA:BB:CC:DD:EE:04",
            )
        home.tick(at + timedelta(minutes=1))
    stored = home.conn.execute("SELECT count(*) FROM observations WHERE patient_id = %s", (home.patient_id,))
    assert stored.fetchone()[0] > 7 * 48 * 2  # the week really was sent
    assert home.alerts() == []
    # And the engine did judge: a complete NEWS2 was available (a nurse's A/air/RR within 12 h).
    latest = home.conn.execute(
        "SELECT count(*) FROM manual_observations WHERE patient_id = %s AND evaluated_at IS NOT NULL",
        (home.patient_id,),
    ).fetchone()[0]
    assert latest == 14


def test_an_acknowledged_alert_stays_quiet_until_it_worsens(home: Home) -> None:
    at = T0
    assert _notified(home.send(at, {Vital.SPO2: 93}), "spo2_low")[0].priority == "medium"
    home.conn.execute(
        "UPDATE alerts SET state = 'acknowledged', acknowledged_at = %s"
        " WHERE patient_id = %s AND rule = 'spo2_low'",
        (at, home.patient_id),
    )
    for minute in range(1, 6):
        changes = home.send(at + timedelta(minutes=minute), {Vital.SPO2: 92.5 + (minute % 2)})
        changes += home.tick(at + timedelta(minutes=minute, seconds=30))
        assert _notified(changes, "spo2_low") == []
    worse = _notified(home.send(at + timedelta(minutes=7), {Vital.SPO2: 90}), "spo2_low")
    assert [(c.kind, c.priority, c.state) for c in worse] == [("reprioritised", "high", "open")]


def test_streamed_oximetry_needs_three_readings_and_doubtful_ones_never_raise(home: Home) -> None:
    at = T0
    assert home.send(at, {Vital.SYSTOLIC_BP: 80}, characteristic=CUFF, quality=("cuff_loose",)) == []
    assert home.alerts() == []
    for second in (0, 5):
        home.send(at + timedelta(seconds=second), {Vital.SPO2: 85}, characteristic=STREAM)
    assert home.alerts("spo2_low") == []  # two streamed readings: maybe a slipping probe
    home.send(
        at + timedelta(seconds=7), {Vital.SPO2: 85}, characteristic=STREAM, quality=("signal_questionable",)
    )
    assert home.alerts("spo2_low") == []  # a doubtful reading neither extends nor breaks the run
    home.send(at + timedelta(seconds=10), {Vital.SPO2: 85}, characteristic=STREAM)
    assert home.alerts("spo2_low") == [("spo2_low", "high", "open")]


def test_hysteresis_keeps_a_wobbling_value_from_closing_the_alert(home: Home) -> None:
    home.send(T0, {Vital.SPO2: 93})
    home.send(T0 + timedelta(minutes=1), {Vital.SPO2: 94})  # inside the limit, but not by the 1 % margin
    assert home.alerts("spo2_low") == [("spo2_low", "medium", "open")]
    home.send(T0 + timedelta(minutes=2), {Vital.SPO2: 95})
    assert home.alerts("spo2_low") == [("spo2_low", "medium", "resolved")]


def test_new_confusion_entered_by_a_nurse_is_a_red_score(home: Home) -> None:
    home.send(T0, {Vital.SPO2: 97, Vital.PULSE_RATE: 80})
    home.send(T0, {Vital.SYSTOLIC_BP: 130, Vital.DIASTOLIC_BP: 80}, characteristic=CUFF)
    home.send(T0, {Vital.BODY_TEMPERATURE: 36.8}, characteristic=THERMOMETER)
    home.observe(T0 + timedelta(minutes=1), rr=16, consciousness="C", on_oxygen=False)
    changes = home.tick(T0 + timedelta(minutes=2))
    [change] = _notified(changes, "news2")
    assert (change.priority, change.message) == ("medium", "NEWS2 3: låg–medel risk")
    assert home.tick(T0 + timedelta(minutes=3)) == []  # evaluated once
    # The nurse's next visit finds her alert again: NEWS2 0, and the alert resolves on that entry alone,
    # with no device reading or respiration count since the confusion.
    home.conn.execute(
        "UPDATE alerts SET state = 'acknowledged' WHERE patient_id = %s AND rule = 'news2'",
        (home.patient_id,),
    )
    home.observe(T0 + timedelta(minutes=10), consciousness="A")
    [resolved] = home.tick(T0 + timedelta(minutes=11))
    assert (resolved.rule, resolved.kind) == ("news2", "resolved")


def test_scale_2_patient_on_oxygen_is_scored_and_limited_on_scale_2(home: Home) -> None:
    home.conn.execute(
        "INSERT INTO spo2_scale_orders (patient_id, scale, reason, ordered_by)"
        " VALUES (%s, 2, 'Hyperkapni', %s)",
        (home.patient_id, home.physician_id),
    )
    # 87 % is below the ward's scale-1 limits but inside scale 2's (high < 84, medium < 86).
    home.send(T0, {Vital.SPO2: 87})
    assert home.alerts("spo2_low") == []
    home.send(T0 + timedelta(minutes=1), {Vital.SPO2: 85})
    assert home.alerts("spo2_low") == [("spo2_low", "medium", "open")]
    home.send(T0 + timedelta(minutes=2), {Vital.SPO2: 97})
    home.observe(T0 + timedelta(minutes=3), on_oxygen=True)
    home.tick(T0 + timedelta(minutes=4))
    # Scale 2 on oxygen: 97 % scores 3 and oxygen 2, so NEWS2 is at least 5 (medium).
    [(message,)] = home.conn.execute(
        "SELECT message FROM alerts WHERE patient_id = %s AND rule = 'news2'", (home.patient_id,)
    ).fetchall()
    assert message == "NEWS2 ≥ 5 (ofullständig): medel risk"


# --- lifecycle over time ----------------------------------------------------------------------------


def test_gateway_offline_waits_then_holds_then_opens_and_clears_when_back(home: Home) -> None:
    home.conn.execute(
        "UPDATE gateways SET status = 'offline', status_at = %s WHERE id = %s",
        (T0, home.enrolment.gateway_id),
    )
    assert home.tick(T0 + timedelta(minutes=14)) == []
    [pending] = home.tick(T0 + timedelta(minutes=16))
    assert (pending.rule, pending.state, pending.notify) == ("gateway_offline", "pending", False)
    assert home.tick(T0 + timedelta(minutes=25)) == []
    [opened] = home.tick(T0 + timedelta(minutes=26))
    assert (opened.kind, opened.notify) == ("opened", True)
    home.conn.execute(
        "UPDATE gateways SET status = 'online', status_at = %s WHERE id = %s",
        (T0 + timedelta(minutes=30), home.enrolment.gateway_id),
    )
    [resolved] = home.tick(T0 + timedelta(minutes=31))
    assert (resolved.kind, resolved.state) == ("resolved", "resolved")


def test_a_pending_alert_whose_condition_clears_is_withdrawn_unseen(home: Home) -> None:
    home.send(T0, {Vital.SPO2: 97})
    home.conn.execute(
        "UPDATE devices SET battery_percent = 15, battery_at = %s WHERE gateway_id = %s",
        (T0, home.enrolment.gateway_id),
    )
    [pending] = home.tick(T0 + timedelta(minutes=1))
    assert (pending.rule, pending.state) == ("battery_low:AA:BB:CC:DD:EE:01", "pending")
    home.conn.execute(
        "UPDATE devices SET battery_percent = 90, battery_at = %s", (T0 + timedelta(minutes=3),)
    )
    [withdrawn] = home.tick(T0 + timedelta(minutes=4))
    assert (withdrawn.kind, withdrawn.notify) == ("withdrawn", False)
    assert [k for k, _, _ in home.events("battery_low:AA:BB:CC:DD:EE:01")] == ["pending", "withdrawn"]


def test_a_restart_neither_forgets_a_pending_alert_nor_raises_an_open_one_again(home: Home) -> None:
    home.send(T0, {Vital.SPO2: 97})
    home.conn.execute(
        "UPDATE devices SET battery_percent = 15, battery_at = %s WHERE gateway_id = %s",
        (T0, home.enrolment.gateway_id),
    )
    home.send(T0 + timedelta(seconds=30), {Vital.SPO2: 93})
    home.tick(T0 + timedelta(minutes=1))
    home.restart()
    assert home.tick(T0 + timedelta(minutes=5)) == []
    [opened] = home.tick(T0 + timedelta(minutes=11))
    assert (opened.rule, opened.kind) == ("battery_low:AA:BB:CC:DD:EE:01", "opened")
    home.restart()
    assert home.send(T0 + timedelta(minutes=12), {Vital.SPO2: 93}) == []
    assert home.tick(T0 + timedelta(minutes=13)) == []
    opened_events = home.conn.execute("SELECT count(*) FROM alert_events WHERE kind = 'opened'").fetchone()[0]
    assert opened_events == 2  # spo2_low once, battery once


def test_trend_windows_are_rebuilt_from_the_database_after_a_restart(
    database_url: str, unique_id: str
) -> None:
    home = Home(database_url, unique_id)
    try:
        # SpO2 from 97 % falling 0.8 points an hour, streamed every 2 minutes for 8 hours.
        at = T0
        opened = []
        while at < T0 + timedelta(hours=8):
            hours = (at - T0).total_seconds() / 3600
            home.send(at, {Vital.SPO2: round(97 - 0.8 * hours, 1)}, characteristic=STREAM)
            if at.minute % 10 == 0:
                opened += _notified(home.tick(at), "trend:spo2_falling")
            at += timedelta(minutes=2)
        assert [c.priority for c in opened] == ["medium"]
        before = home.writer.engine._trends[Vital.SPO2].windows  # type: ignore[index]
        row = home.writer.engine._rows[home.patient_id]
        slope_before = before.slope(4)
        home.restart()
        assert home.tick(at) == []  # rebuilt, still falling: the open alert is kept, not raised again
        after = home.writer.engine._trends[Vital.SPO2].windows  # type: ignore[index]
        slope_after = after.slope(4)
        new_row = home.writer.engine._rows[home.patient_id]
        # The ring holds float32 slot means; the rebuild averages in float64 in SQL: equal to ~1e-3.
        assert math.isclose(slope_after.per_hour[new_row], slope_before.per_hour[row], rel_tol=1e-3)
        assert math.isclose(slope_after.per_hour[new_row], -0.8, rel_tol=0.02)
        assert int(slope_after.n[new_row]) == int(slope_before.n[row])
        assert np.isfinite(slope_after.change[new_row])
    finally:
        home.close()


def test_a_snooze_runs_out_and_the_alert_notifies_again_unless_it_cleared(home: Home) -> None:
    home.send(T0, {Vital.SPO2: 93})
    home.conn.execute(
        "UPDATE alerts SET state = 'acknowledged', acknowledged_at = %s, snoozed_until = %s, snoozed_by = %s"
        " WHERE patient_id = %s",
        (T0, T0 + timedelta(minutes=30), home.nurse_id, home.patient_id),
    )
    assert home.tick(T0 + timedelta(minutes=29)) == []
    [back] = home.tick(T0 + timedelta(minutes=30))
    assert (back.kind, back.state, back.notify) == ("snooze_expired", "open", True)


def test_a_worsening_ends_a_snooze_at_once(home: Home) -> None:
    home.send(T0, {Vital.SPO2: 93})
    home.conn.execute(
        "UPDATE alerts SET state = 'acknowledged', snoozed_until = %s, snoozed_by = %s WHERE patient_id = %s",
        (T0 + timedelta(hours=2), home.nurse_id, home.patient_id),
    )
    [worse] = _notified(home.send(T0 + timedelta(minutes=5), {Vital.SPO2: 90}), "spo2_low")
    assert (worse.kind, worse.priority) == ("reprioritised", "high")
    row = home.conn.execute(
        "SELECT state, snoozed_until FROM alerts WHERE patient_id = %s AND rule = 'spo2_low'",
        (home.patient_id,),
    ).fetchone()
    assert row == ("open", None)


def test_a_planned_vital_not_measured_is_a_technical_alarm(home: Home) -> None:
    home.conn.execute(
        "INSERT INTO monitoring_plans (patient_id, vital, every_minutes, set_at)"
        " VALUES (%s, 'systolic_bp', 240, %s)",
        (home.patient_id, T0 - timedelta(hours=1)),
    )
    home.send(T0, {Vital.SYSTOLIC_BP: 130, Vital.DIASTOLIC_BP: 80}, characteristic=CUFF)
    assert home.tick(T0 + timedelta(hours=4, minutes=29)) == []
    [pending] = home.tick(T0 + timedelta(hours=4, minutes=31))
    assert (pending.rule, pending.state) == ("missing:systolic_bp", "pending")
    [opened] = home.tick(T0 + timedelta(hours=4, minutes=42))
    assert opened.kind == "opened"
    condition = home.conn.execute(
        "SELECT condition, message FROM alerts WHERE id = %s", (opened.alert_id,)
    ).fetchone()
    assert condition == ("technical", "Ingen ny tillförlitlig mätning av Sys på 5 h (planerad var 4 h)")
    home.send(T0 + timedelta(hours=5), {Vital.SYSTOLIC_BP: 128, Vital.DIASTOLIC_BP: 79}, characteristic=CUFF)
    [resolved] = home.tick(T0 + timedelta(hours=5, minutes=1))
    assert resolved.kind == "resolved"


# --- a fault in a rule ------------------------------------------------------------------------------


class _FaultyEngine(AlertEngine):
    """An engine with a bug: a rule that raises, or SQL the database refuses."""

    def __init__(self, fault: str) -> None:
        super().__init__()
        self.fault = fault

    def after_readings(self, conn, inserted, ward_of, *, now):  # type: ignore[no-untyped-def, override]
        if self.fault == "sql":
            conn.execute("SELECT 1 / 0")
        raise ZeroDivisionError("a rule divided by zero")


@pytest.mark.parametrize("fault", ["python", "sql"])
def test_a_fault_in_the_engine_loses_no_reading_and_dead_letters_nothing(
    database_url: str, unique_id: str, fault: str
) -> None:
    home = Home(database_url, unique_id, engine=_FaultyEngine(fault))
    try:
        result_changes = home.send(T0, {Vital.SPO2: 85})
        assert result_changes == []
        stored = home.conn.execute(
            "SELECT value FROM observations WHERE patient_id = %s", (home.patient_id,)
        ).fetchall()
        assert stored == [(85.0,)]
        assert home.conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)
        # The failure is counted on the batch's result, and the writer goes on with the next batch.
        m = contract.Measurement(
            id=uuid.uuid4(), device_id="AA:BB:CC:DD:EE:01", characteristic=OXIMETER, raw="00",
            effective_time=T0 + timedelta(minutes=1), received_time=T0 + timedelta(minutes=1),
            observations=(contract.Observation(vital=Vital.SPO2, value=84, unit="%"),),
        )  # fmt: skip
        decoded = contract.DecodedBatch(uuid.uuid4(), home.enrolment.gateway_id, T0, [m], [])
        result = home.writer.commit(
            [AcceptedBatch(decoded, home.enrolment)], [], [], now=T0 + timedelta(minutes=1)
        )
        assert (result.observations_stored, result.engine_failures) == (1, 1)
    finally:
        home.close()
