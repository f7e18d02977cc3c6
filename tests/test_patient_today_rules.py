"""The decisions behind Idag and Mina värden without a database (care.patient_today, care.patient_values,
dashboard.patient_chart): what is due, done or later; that the app asks before the ward's missing-data
alarm, never after; the words of time; the engine's verdict and the patient's band."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from alerts.missing import MISSING_GRACE, missing_vital_one
from alerts.model import Priority
from care.patient_receipts import Receipt
from care.patient_today import (
    Band,
    Limits,
    PlannedMeasurement,
    Reading,
    TaskState,
    Verdict,
    Window,
    Word,
    around,
    band_of,
    date_sv,
    is_due,
    latest_values,
    next_time_sv,
    since_sv,
    tasks_of,
    verdict,
    word_for,
)
from care.patient_values import History, Point, change_over
from core.vitals import Vital
from dashboard.patient_chart import chart_of, y_range

ZONE = ZoneInfo("Europe/Stockholm")
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=ZONE)  # a Sunday
PID = uuid.uuid4()
H = timedelta(hours=1)


def at(hour: int, minute: int = 0, days_ago: int = 0) -> datetime:
    return NOW.replace(hour=hour, minute=minute) - timedelta(days=days_ago)


def plan(
    vital: Vital, every: timedelta, last: datetime | None, start: datetime | None = None
) -> PlannedMeasurement:
    return PlannedMeasurement(vital, every, start or NOW - timedelta(days=5), last)


# --- due, done, later ------------------------------------------------------------------------------


def test_tasks_are_due_done_or_later_from_the_plan_and_the_newest_reading() -> None:
    tasks = tasks_of(
        [
            plan(Vital.BODY_WEIGHT, 24 * H, at(7, 42)),  # weighed this morning: done, next tomorrow
            plan(Vital.SYSTOLIC_BP, 4 * H, at(7, 42)),  # 4 h passed at 11:42: due
            plan(Vital.DIASTOLIC_BP, 4 * H, at(7, 42)),  # the same cuff: one task
            plan(Vital.BODY_TEMPERATURE, 4 * H, at(10, 0)),  # done, again at 14:00 today
            plan(Vital.GLUCOSE, 24 * H, at(18, 10, days_ago=1)),  # yesterday evening: later today
            plan(Vital.SPO2, timedelta(minutes=15), at(11, 58)),  # worn: sending
            plan(Vital.HEART_RATE, 4 * H, None, start=at(11, 0)),  # plan new, nothing yet: later
        ],
        NOW,
        ZONE,
    )
    got = [(t.phrase, t.state, t.text, t.next_text) for t in tasks]
    assert got == [
        ("Mät blodtrycket", TaskState.DUE, "Dags nu", ""),
        ("Pulsbandet", TaskState.LATER, "Nästa gång omkring 15:00", ""),
        ("Mät blodsockret", TaskState.LATER, "Nästa gång omkring 18:15", ""),
        ("Mät syret i blodet", TaskState.DONE, "Senast 11:58", ""),
        ("Mät temperaturen", TaskState.DONE, "Gjort 10:00", "Nästa gång omkring 14:00"),
        ("Väg dig", TaskState.DONE, "Gjort 07:42", ""),
    ]
    assert tasks[0].vitals == (Vital.SYSTOLIC_BP, Vital.DIASTOLIC_BP)
    assert not any("försen" in t.text.lower() for t in tasks)


def test_a_plan_set_again_restarts_the_clock_as_the_missing_data_alarm_does() -> None:
    reset = plan(Vital.BODY_WEIGHT, 24 * H, at(7, 0, days_ago=3), start=at(9, 0))
    assert not is_due(reset, NOW)
    assert reset.next_at == at(9, 0) + 24 * H


@given(
    last=st.one_of(st.none(), st.floats(0, 1e6)),
    start=st.floats(0, 1e6),
    every_min=st.integers(5, 7 * 24 * 60),
    now=st.floats(0, 2e6),
)
def test_the_app_says_due_no_later_than_the_ward_is_alarmed(
    last: float | None, start: float, every_min: int, now: float
) -> None:
    """Whenever alerts.missing raises missing:<vital>, Idag says "Dags nu"; while Idag does not, the
    alarm is clear. The same reference time (newest trustworthy reading or plan start) and interval."""
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    p = PlannedMeasurement(
        Vital.BODY_WEIGHT,
        timedelta(minutes=every_min),
        epoch + timedelta(seconds=start),
        None if last is None else epoch + timedelta(seconds=last),
    )
    alarm = missing_vital_one(
        math.nan if last is None else last + epoch.timestamp(), every_min * 60.0, start + epoch.timestamp(),
        now + epoch.timestamp(), MISSING_GRACE.total_seconds(),
    )  # fmt: skip
    due = is_due(p, epoch + timedelta(seconds=now))
    if isinstance(alarm, Priority):
        assert due
    if not due:
        assert alarm == "clear"


# --- words of time ---------------------------------------------------------------------------------


def test_the_words_of_time_are_swedish_and_gentle() -> None:
    assert date_sv(NOW.date()) == "söndag 6 december"
    assert around(at(17, 53)) == at(18, 0) and around(at(7, 37)) == at(7, 30)
    assert next_time_sv(at(7, 42) + 24 * H, NOW, ZONE) == "Nästa gång i morgon omkring 07:45"
    assert next_time_sv(NOW + timedelta(days=3), NOW, ZONE) == "Nästa gång på onsdag omkring 12:00"
    assert next_time_sv(NOW + timedelta(days=9), NOW, ZONE) == "Nästa gång 15 december omkring 12:00"
    assert since_sv(at(7, 0), NOW, ZONE) == "klockan 07:00"
    assert since_sv(at(7, 0, days_ago=1), NOW, ZONE) == "igår"
    assert since_sv(at(7, 0, days_ago=6), NOW, ZONE) == "i måndags"
    assert since_sv(at(7, 0, days_ago=10), NOW, ZONE) == "26 november"


# --- the engine's verdict and the band -------------------------------------------------------------


def window(values: list[float], *, continuous: bool = False, step_s: float = 60.0) -> Window:
    k = len(values)
    times = np.array([[NOW.timestamp() - step_s * (k - 1 - i) for i in range(k)]])
    return Window(np.array([values], float), times, np.zeros((1, k), bool), continuous)


def own_spo2(medium: float, high: float) -> dict[tuple[uuid.UUID, str, Priority], float]:
    return {(PID, "spo2_low", Priority.MEDIUM): medium, (PID, "spo2_low", Priority.HIGH): high}


def test_the_verdict_is_the_engines_and_a_personal_limit_moves_it() -> None:
    def judged(w: Window, personal: dict | None = None, scale_2: bool = False) -> Verdict:  # type: ignore[type-arg]
        return verdict(PID, Vital.SPO2, w, personal=personal or {}, scale_2=scale_2, live={}, now=NOW)

    assert judged(window([93])) == Verdict(alarmed=True, beyond=True)  # a spot check under the ward's 94 %
    assert judged(window([93]), own_spo2(90, 88)) == Verdict(False, False)
    assert judged(window([87]), scale_2=True) == Verdict(False, False)  # scale 2: 86 % is the limit
    # A stream: one reading below is noise to the engine (persistence), the patient is not told "as usual".
    stream = window([96] * 10 + [91], continuous=True, step_s=5)
    assert judged(stream) == Verdict(alarmed=False, beyond=True)
    assert word_for(judged(stream), alert_live=False, stale=False) is Word.FOLLOWING


def test_the_word_puts_the_wards_alert_first_then_staleness() -> None:
    inside, outside = Verdict(False, False), Verdict(True, True)
    assert word_for(inside, alert_live=False, stale=False) is Word.USUAL
    assert word_for(outside, alert_live=False, stale=True) is Word.WARD_SEES
    assert word_for(inside, alert_live=True, stale=False) is Word.WARD_SEES  # the weight rules' alerts
    assert word_for(inside, alert_live=False, stale=True) is Word.NOTHING_NEW


def test_latest_values_read_blood_pressure_together_and_say_nothing_new_after_the_plan() -> None:
    cuff = at(6, 0)
    latest = {Vital.SYSTOLIC_BP: Reading(128, cuff, cuff), Vital.DIASTOLIC_BP: Reading(82, cuff, cuff),
              Vital.BODY_WEIGHT: Reading(74.25, at(7, 42), at(7, 43))}  # fmt: skip
    limits = Limits({}, False, {}, frozenset())
    values = latest_values(
        PID, latest, [plan(Vital.SYSTOLIC_BP, 4 * H, cuff)],
        {Vital.SYSTOLIC_BP: window([128])}, limits, last_review=at(7, 0), now=NOW, zone=ZONE,
    )  # fmt: skip
    assert [(v.name, v.text, v.word_text, v.receipt, v.when) for v in values] == [
        ("Vikt", "74,2 kg", "Som vanligt", Receipt.RECEIVED, "idag 07:42"),
        ("Blodtryck", "128/82 mmHg", "Inget nytt värde sedan klockan 06:00", Receipt.REVIEWED, "idag 06:00"),
    ]


def test_the_band_is_this_patients_limits_in_force() -> None:
    assert band_of(PID, Vital.SPO2, {}, False) == Band(94.0, None)
    assert band_of(PID, Vital.SPO2, own_spo2(90, 88), False) == Band(90.0, None)
    assert band_of(PID, Vital.SPO2, {}, True) == Band(86.0, None)
    assert band_of(PID, Vital.PULSE_RATE, {}, False) == Band(41.0, 110.0)
    assert band_of(PID, Vital.BODY_WEIGHT, {}, False) is None


# --- Mina värden -----------------------------------------------------------------------------------


def points(values: list[float], every: timedelta = 24 * H) -> tuple[Point, ...]:
    n = len(values)
    return tuple(Point(NOW - every * (n - 1 - i), v, v, v) for i, v in enumerate(values))


def test_the_weight_change_is_against_the_weight_three_days_before() -> None:
    got = change_over(points([72.0, 72.0, 72.1, 72.8, 73.5, 74.2]), 3 * 24 * H, 6 * H)
    assert got is not None and math.isclose(got, 2.1)
    assert change_over(points([72.0, 72.5]), 3 * 24 * H, 6 * H) is None


def test_the_chart_shows_a_near_band_edge_labels_with_a_comma_and_dots_only_when_few() -> None:
    lo, hi, step = y_range([92, 95], 0, [90.0])
    assert (lo, hi) == (90, 96) and step == 2
    assert y_range([132, 140], 0, [101.0, 219.0])[:2] == (132, 140)  # far edges do not squash the line
    temperature = History(Vital.BODY_TEMPERATURE, "Temperatur", "°C", 1, points([36.6, 37.2, 36.9]),
                          Band(35.05, 39.05), (), "Senaste värdet 36,9 °C.")  # fmt: skip
    chart = chart_of(temperature, now=NOW, zone=ZONE, days=14)
    assert chart.label.startswith("Temperatur de senaste 14 dagarna.")
    assert [g.text for g in chart.grid] == ["36,6", "36,8", "37,0", "37,2"]
    assert len(chart.dots) == 3 and len(chart.line.split()) == 3
    assert chart.band == (14, 170) and [d.text for d in chart.days] == ["22 nov", "29 nov", "idag"]
    stream = History(Vital.SPO2, "Syret i blodet", "%", 0, points([95, 96] * 100, H), Band(94, None), (), "")
    assert chart_of(stream, now=NOW, zone=ZONE, days=14).dots == ()
