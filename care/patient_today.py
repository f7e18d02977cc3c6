"""What the patient app's Idag and Mina värden say (issue 10): what to measure and when, and the plain
word beside each latest value. The one home of these decisions; the screens only render them.

*When to measure* is the monitoring plan's own interval, counted as the ward's missing-data alarm
counts it (alerts.missing): from the newest trustworthy reading, or from when the plan was (re)set if
that is later. A measurement is *due* ("Dags nu") from the moment the interval has passed; the ward's
alarm `missing:<vital>` comes `MISSING_GRACE` later. So the app always asks first, gently, and the
two never disagree about which reading counts or from when.

*The word* beside a value is the alert engine's own decision, not a second copy of its numbers: the
limits in force for this patient are `alerts.judge.KeyLimits` (ward defaults, a physician's personal
limits, NEWS2 SpO2 scale 2) and the verdict is `alerts.judge.judge` over the same window of readings
the engine reads, with the live alerts' hysteresis. A value the engine alarms on reads "the ward has
seen it" (they got the alert at the same time); a value inside reads "som vanligt". Either way the
patient is told where to turn if they feel worse: never a diagnosis, never an alarm.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import numpy as np

from alerts.judge import WINDOW_READINGS, KeyLimits, judge
from alerts.model import Priority
from alerts.persistence import sign_of
from alerts.thresholds import DOUBTFUL_QUALITY, WARD_DEFAULT_RULES, PersonalLimits, ThresholdRule
from care.limits import LIMITS_IN_FORCE
from care.orders import ON_SCALE_2
from care.patient_receipts import Receipt, last_staff_review, receipt
from core.contract import MAX_CLOCK_SKEW
from core.vitals import VITALS, Vital
from storage.steps import Sql, Steps

DOUBTFUL = sorted(DOUBTFUL_QUALITY)
_VITAL_NAMES = frozenset(v.value for v in Vital)
# The readings a patient sees: what they or their kit measure. Mean arterial pressure is the cuff's
# by-product and respiratory rate is counted by staff; neither is the patient's task.
SHOWN_VITALS: tuple[Vital, ...] = (
    Vital.BODY_WEIGHT,
    Vital.SYSTOLIC_BP,
    Vital.DIASTOLIC_BP,
    Vital.PULSE_RATE,
    Vital.HEART_RATE,
    Vital.SPO2,
    Vital.BODY_TEMPERATURE,
    Vital.GLUCOSE,
)
# What the patient does for a planned vital. Systolic and diastolic are one task (one cuff).
TASK_SV: dict[Vital, str] = {
    Vital.BODY_WEIGHT: "Väg dig",
    Vital.SYSTOLIC_BP: "Mät blodtrycket",
    Vital.DIASTOLIC_BP: "Mät blodtrycket",
    Vital.MEAN_ARTERIAL_PRESSURE: "Mät blodtrycket",
    Vital.SPO2: "Mät syret i blodet",
    Vital.BODY_TEMPERATURE: "Mät temperaturen",
    Vital.GLUCOSE: "Mät blodsockret",
    Vital.PULSE_RATE: "Pulsbandet",
    Vital.HEART_RATE: "Pulsbandet",
}
# A value's name as the patient says it.
NAME_SV: dict[Vital, str] = {
    Vital.BODY_WEIGHT: "Vikt",
    Vital.SYSTOLIC_BP: "Blodtryck, övre värdet",
    Vital.DIASTOLIC_BP: "Blodtryck, nedre värdet",
    Vital.PULSE_RATE: "Puls",
    Vital.HEART_RATE: "Puls från pulsbandet",
    Vital.SPO2: "Syret i blodet",
    Vital.BODY_TEMPERATURE: "Temperatur",
    Vital.GLUCOSE: "Blodsocker",
}
# A plan this frequent is a sensor worn all day, not a measurement the patient takes.
WORN_EVERY = timedelta(hours=1)
HISTORY_DAYS = 14

WEEKDAYS_SV = ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag")
MONTHS_SV = ("januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti", "september",
             "oktober", "november", "december")  # fmt: skip


# --- what to measure, and when -------------------------------------------------------------------


class TaskState(StrEnum):
    DONE = "done"  # measured today, the next one is not due yet
    DUE = "due"  # the plan's interval has passed
    LATER = "later"  # not due yet, and not measured today


@dataclass(frozen=True, slots=True)
class PlannedMeasurement:
    """One planned vital: its interval, when the plan's clock started, the newest trustworthy reading."""

    vital: Vital
    every: timedelta
    plan_started_at: datetime
    last_trusted_at: datetime | None

    @property
    def since(self) -> datetime:
        """alerts.missing's reference: the newer of the last trustworthy reading and the plan's start."""
        if self.last_trusted_at is None:
            return self.plan_started_at
        return max(self.last_trusted_at, self.plan_started_at)

    @property
    def next_at(self) -> datetime:
        return self.since + self.every


@dataclass(frozen=True, slots=True)
class Task:
    phrase: str  # "Väg dig"
    vitals: tuple[Vital, ...]
    state: TaskState
    done_at: datetime | None  # the newest trustworthy reading, when measured today
    next_at: datetime
    text: str  # the state: "Gjort 07:42", "Dags nu", "Nästa gång omkring 18:00"
    worn: bool  # a sensor worn all day ("Pulsbandet"), not a measurement taken
    next_text: str = ""  # after a done one, when the next is due later today


def is_due(plan: PlannedMeasurement, now: datetime) -> bool:
    """Due once the plan's interval has passed; the ward's missing-data alarm waits MISSING_GRACE more."""
    return now >= plan.next_at


def task_of(plans: Sequence[PlannedMeasurement], now: datetime, zone: ZoneInfo) -> Task:
    """One task from the plans it covers (blood pressure: systolic and diastolic): due when any is."""
    first = min(plans, key=lambda p: p.next_at)
    phrase = TASK_SV.get(first.vital, NAME_SV.get(first.vital, VITALS[first.vital].display))
    worn = all(p.every <= WORN_EVERY for p in plans)
    vitals = tuple(p.vital for p in plans)
    done = [p.last_trusted_at for p in plans if p.last_trusted_at is not None]
    done_at = max(done) if done else None
    today = now.astimezone(zone).date()
    if is_due(first, now):
        return Task(phrase, vitals, TaskState.DUE, None, first.next_at, "Dags nu", worn)
    if done_at is not None and done_at.astimezone(zone).date() == today:
        # A worn sensor is "done" while it sends: its newest reading, not a task ticked off.
        text = f"{'Senast' if worn else 'Gjort'} {clock_sv(done_at, zone)}"
        later = first.next_at.astimezone(zone).date() == today and not worn
        next_text = next_time_sv(first.next_at, now, zone) if later else ""
        return Task(phrase, vitals, TaskState.DONE, done_at, first.next_at, text, worn, next_text)
    text = next_time_sv(first.next_at, now, zone)
    return Task(phrase, vitals, TaskState.LATER, None, first.next_at, text, worn)


def tasks_of(plans: Iterable[PlannedMeasurement], now: datetime, zone: ZoneInfo) -> list[Task]:
    """The day's tasks, one per phrase, due ones first, then in the order of the next time."""
    grouped: dict[str, list[PlannedMeasurement]] = {}
    for plan in plans:
        grouped.setdefault(TASK_SV.get(plan.vital, plan.vital.value), []).append(plan)
    tasks = [task_of(group, now, zone) for group in grouped.values()]
    order = {TaskState.DUE: 0, TaskState.LATER: 1, TaskState.DONE: 2}
    return sorted(tasks, key=lambda t: (order[t.state], t.next_at, t.phrase))


# --- the words of time ---------------------------------------------------------------------------


def clock_sv(at: datetime, zone: ZoneInfo) -> str:
    local = at.astimezone(zone)
    return f"{local.hour:02d}:{local.minute:02d}"


def around(at: datetime) -> datetime:
    """To the nearest quarter of an hour: "omkring 18:00", not "17:53"."""
    quarter = timedelta(minutes=15)
    epoch = datetime(2000, 1, 1, tzinfo=at.tzinfo)
    return epoch + round((at - epoch) / quarter) * quarter


def date_sv(day: date) -> str:
    """'söndag 6 december'."""
    return f"{WEEKDAYS_SV[day.weekday()]} {day.day} {MONTHS_SV[day.month - 1]}"


def next_time_sv(at: datetime, now: datetime, zone: ZoneInfo) -> str:
    """'Nästa gång omkring 18:00', '... i morgon omkring 07:45', '... på tisdag omkring 08:00'."""
    day, today = at.astimezone(zone).date(), now.astimezone(zone).date()
    clock = clock_sv(around(at), zone)
    if day == today:
        return f"Nästa gång omkring {clock}"
    if day == today + timedelta(days=1):
        return f"Nästa gång i morgon omkring {clock}"
    if day < today + timedelta(days=7):
        return f"Nästa gång på {WEEKDAYS_SV[day.weekday()]} omkring {clock}"
    return f"Nästa gång {day.day} {MONTHS_SV[day.month - 1]} omkring {clock}"


def when_sv(at: datetime, now: datetime, zone: ZoneInfo) -> str:
    """When something happened, as every patient screen says it (readings, answers, requests, messages,
    the log extract): 'idag 07:42', 'igår 07:40', '3 december 07:40', '3 december 2025 07:40'."""
    day, today_ = at.astimezone(zone).date(), now.astimezone(zone).date()
    clock = clock_sv(at, zone)
    if day == today_:
        return f"idag {clock}"
    if day == today_ - timedelta(days=1):
        return f"igår {clock}"
    year = f" {day.year}" if day.year != today_.year else ""
    return f"{day.day} {MONTHS_SV[day.month - 1]}{year} {clock}"


def since_sv(at: datetime, now: datetime, zone: ZoneInfo) -> str:
    """'klockan 07:00' today, 'igår', 'i måndags' this week, else '26 november'."""
    day, today = at.astimezone(zone).date(), now.astimezone(zone).date()
    if day == today:
        return f"klockan {clock_sv(at, zone)}"
    if day == today - timedelta(days=1):
        return "igår"
    if day > today - timedelta(days=7):
        return f"i {WEEKDAYS_SV[day.weekday()]}s"
    return f"{day.day} {MONTHS_SV[day.month - 1]}"


# --- the word beside a value ---------------------------------------------------------------------


class Word(StrEnum):
    USUAL = "usual"  # inside the limits that apply to this patient
    WARD_SEES = "ward_sees"  # the engine alarms on it: the ward got the alert
    FOLLOWING = "following"  # beyond a limit, not yet long enough for the engine to alarm (streams)
    NOTHING_NEW = "nothing_new"  # older than the plan's interval


WORD_SV: dict[Word, str] = {
    Word.USUAL: "Som vanligt",
    Word.WARD_SEES: "Avdelningen har sett värdet och hör av sig om något behöver göras",
    Word.FOLLOWING: "Avdelningen följer värdet",
    Word.NOTHING_NEW: "Inget nytt värde sedan",  # + since_sv(...)
}
FEELING_WORSE_SV = "Mår du sämre? Tryck på Kontakta oss."


@dataclass(frozen=True, slots=True)
class Window:
    """One vital's last `WINDOW_READINGS` readings, oldest first, as the engine reads them."""

    values: np.ndarray  # [1, k], NaN-padded on the left
    times: np.ndarray  # epoch s
    doubtful: np.ndarray  # bool
    continuous: bool  # the newest came from a streaming characteristic


@dataclass(frozen=True, slots=True)
class Verdict:
    alarmed: bool  # the engine's level for some key of the vital is above none
    beyond: bool  # the newest trustworthy reading is past a limit in force


def rules_of(vital: Vital) -> dict[str, list[ThresholdRule]]:
    """The threshold keys of a vital (alerts.judge.ThresholdsRule.keys_of, on the ward defaults)."""
    keys: dict[str, list[ThresholdRule]] = {}
    for rule in WARD_DEFAULT_RULES:
        if rule.vital is vital:
            keys.setdefault(rule.rule, []).append(rule)
    return keys


def key_limits(
    patient_id: uuid.UUID, rules: Sequence[ThresholdRule], personal: PersonalLimits, scale_2: bool
) -> KeyLimits:
    return KeyLimits.for_rows(
        rules, [patient_id], personal=personal, spo2_scale_2={patient_id} if scale_2 else set()
    )


def verdict(
    patient_id: uuid.UUID,
    vital: Vital,
    window: Window,
    *,
    personal: PersonalLimits,
    scale_2: bool,
    live: dict[str, Priority],
    now: datetime,
) -> Verdict:
    """The engine's judgement (alerts.judge.judge) of this patient's window, key by key."""
    alarmed = beyond = False
    for key, rules in rules_of(vital).items():
        limits = key_limits(patient_id, rules, personal, scale_2)
        live_priority = np.array([int(live[key]) if key in live else 0], dtype=np.int8)
        judged = judge(limits, window.values, window.times, window.doubtful, live_priority=live_priority,
                       now=now, continuous=np.array([window.continuous]))  # fmt: skip
        alarmed |= bool(judged.level[0] > 0)
        newest = float(judged.value[0])
        sign = sign_of(limits.rules[0].direction)
        beyond |= not math.isnan(newest) and bool(((newest - limits.limit[:, 0]) * sign > 0).any())
    return Verdict(alarmed, beyond)


def word_for(verdict: Verdict, *, alert_live: bool, stale: bool) -> Word:
    """The engine's alarm first (also one that is not a threshold: the weight rules), then staleness."""
    if verdict.alarmed or alert_live:
        return Word.WARD_SEES
    if stale:
        return Word.NOTHING_NEW
    return Word.FOLLOWING if verdict.beyond else Word.USUAL


@dataclass(frozen=True, slots=True)
class Band:
    """The range inside this patient's limits (the least severe limit of each side), for a chart."""

    low: float | None
    high: float | None


def band_of(patient_id: uuid.UUID, vital: Vital, personal: PersonalLimits, scale_2: bool) -> Band | None:
    low = high = None
    for rules in rules_of(vital).values():
        limits = key_limits(patient_id, rules, personal, scale_2).limit[:, 0]
        if rules[0].direction == "below":  # the highest "below" limit is the first to alarm
            low = float(limits.max())
        else:
            high = float(limits.min())
    return None if low is None and high is None else Band(low, high)


# --- the latest values ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LatestValue:
    vitals: tuple[Vital, ...]  # blood pressure: systolic and diastolic, read together
    name: str
    text: str  # "72,4 kg", "128/82 mmHg"
    at: datetime
    received_at: datetime
    word: Word
    word_text: str  # "Som vanligt", "Inget nytt värde sedan igår"
    receipt: Receipt
    when: str  # "idag 07:42"


@dataclass(frozen=True, slots=True)
class Reading:
    value: float
    at: datetime
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Limits:
    """What decides the word and the band for one patient: the limits in force and the live alerts."""

    personal: PersonalLimits
    scale_2: bool
    live: dict[str, Priority]  # live physiological alerts by rule key
    live_vitals: frozenset[Vital]  # vitals named by a live physiological alert (threshold, weight)


@dataclass(frozen=True, slots=True)
class Today:
    tasks: list[Task]
    values: list[LatestValue]  # empty for a relative: Idag shows them no numbers


def limits_in_force(patient_id: uuid.UUID, now: datetime) -> Steps[Limits]:
    """The personal limits and scale order as ingest.rule_inputs reads them for the engine."""
    rows = yield Sql(LIMITS_IN_FORCE, ([patient_id], now), fetch="all")
    personal = {(patient_id, rule, Priority.parse(priority)): float(v) for _, rule, priority, v in rows}
    on_scale_2 = yield Sql(ON_SCALE_2, ([patient_id],), fetch="all")
    alerts = yield Sql(
        "SELECT rule, priority, vital FROM alerts WHERE patient_id = %s AND state <> 'resolved'"
        " AND condition = 'physiological'",
        (patient_id,),
        fetch="all",
    )
    live = {str(rule): Priority.parse(priority) for rule, priority, _ in alerts}
    named = frozenset(Vital(v) for _, _, v in alerts if v in _VITAL_NAMES)
    return Limits(personal, bool(on_scale_2), live, named)


def planned_measurements(patient_id: uuid.UUID, now: datetime) -> Steps[list[PlannedMeasurement]]:
    """The plan, with the newest trustworthy reading per vital: the same read as the engine's
    missing-data rule (ingest.rule_inputs, `_plans`)."""
    rows = yield Sql(
        "SELECT m.vital, m.every_minutes, greatest(m.set_at, p.enrolled_at),"
        " (SELECT o.time FROM observations o WHERE o.patient_id = m.patient_id AND o.vital = m.vital"
        "   AND o.time <= %(until)s AND NOT o.quality && %(d)s ORDER BY o.time DESC LIMIT 1)"
        " FROM monitoring_plans m JOIN patients p ON p.id = m.patient_id WHERE m.patient_id = %(p)s",
        {"p": patient_id, "until": now + MAX_CLOCK_SKEW, "d": DOUBTFUL},
        fetch="all",
    )
    return [
        PlannedMeasurement(Vital(v), timedelta(minutes=int(m)), start, last) for v, m, start, last in rows
    ]


def latest_readings(patient_id: uuid.UUID, now: datetime) -> Steps[dict[Vital, Reading]]:
    """The newest trustworthy reading of each shown vital in the last HISTORY_DAYS."""
    rows = yield Sql(
        "SELECT v.vital, o.value, o.time, o.received_at FROM unnest(%(v)s::text[]) AS v(vital)"
        " CROSS JOIN LATERAL (SELECT value, time, received_at FROM observations"
        "   WHERE patient_id = %(p)s AND vital = v.vital AND time <= %(until)s AND time > %(since)s"
        "   AND NOT quality && %(d)s ORDER BY time DESC LIMIT 1) o",
        {"p": patient_id, "v": [v.value for v in SHOWN_VITALS], "until": now + MAX_CLOCK_SKEW,
         "since": now - timedelta(days=HISTORY_DAYS), "d": DOUBTFUL},
        fetch="all",
    )  # fmt: skip
    return {Vital(v): Reading(float(value), at, received) for v, value, at, received in rows}


def windows(patient_id: uuid.UUID, vitals: Sequence[Vital], now: datetime) -> Steps[dict[Vital, Window]]:
    """Each vital's last WINDOW_READINGS readings, doubtful ones flagged: ingest.rule_inputs' `_recent`
    for one patient, so the verdict is the engine's on the same readings."""
    from alerts.judge import CONTINUOUS_CHARACTERISTICS

    rows = yield Sql(
        "SELECT v.vital, extract(epoch FROM o.time)::float8, o.value, o.quality && %(d)s, o.characteristic"
        " FROM unnest(%(v)s::text[]) AS v(vital) CROSS JOIN LATERAL (SELECT time, value, quality,"
        "   characteristic FROM observations WHERE patient_id = %(p)s AND vital = v.vital"
        "   AND time <= %(until)s ORDER BY time DESC LIMIT %(k)s) o",
        {"p": patient_id, "v": [v.value for v in vitals], "until": now + MAX_CLOCK_SKEW, "d": DOUBTFUL,
         "k": WINDOW_READINGS},
        fetch="all",
    )  # fmt: skip
    k = WINDOW_READINGS
    found: dict[Vital, Window] = {}
    filled: dict[Vital, int] = {}
    for name, at, value, bad, characteristic in rows:  # newest first per vital: fill from the right
        vital = Vital(name)
        if vital not in found:
            found[vital] = Window(np.full((1, k), np.nan), np.full((1, k), np.nan), np.zeros((1, k), bool),
                                  str(characteristic).upper() in CONTINUOUS_CHARACTERISTICS)  # fmt: skip
        col = k - 1 - filled.get(vital, 0)
        w = found[vital]
        w.values[0, col], w.times[0, col], w.doubtful[0, col] = value, at, bool(bad)
        filled[vital] = filled.get(vital, 0) + 1
    return found


def latest_values(
    patient_id: uuid.UUID,
    latest: dict[Vital, Reading],
    plans: Sequence[PlannedMeasurement],
    found: dict[Vital, Window],
    limits: Limits,
    *,
    last_review: datetime | None,
    now: datetime,
    zone: ZoneInfo,
) -> list[LatestValue]:
    """Each shown vital's newest trustworthy reading with its word and receipt (pure)."""
    every = {p.vital: p.every for p in plans}
    shown: list[LatestValue] = []
    for vital in SHOWN_VITALS:
        reading = latest.get(vital)
        if reading is None:
            continue
        window = found.get(vital)
        judged = (
            verdict(patient_id, vital, window, personal=limits.personal, scale_2=limits.scale_2,
                    live=limits.live, now=now)
            if window is not None else Verdict(False, False)
        )  # fmt: skip
        plan_every = every.get(vital) or (
            every.get(Vital.SYSTOLIC_BP) if vital is Vital.DIASTOLIC_BP else None
        )
        stale = plan_every is not None and now - reading.at > plan_every
        word = word_for(judged, alert_live=vital in limits.live_vitals, stale=stale)
        text = WORD_SV[word] + (f" {since_sv(reading.at, now, zone)}" if word is Word.NOTHING_NEW else "")
        shown.append(
            LatestValue((vital,), NAME_SV[vital], VITALS[vital].format(reading.value), reading.at,
                        reading.received_at, word, text, receipt(reading.received_at, last_review),
                        when_sv(reading.at, now, zone))
        )  # fmt: skip
    return _pressure_together(shown)


_WORD_WEIGHT = {Word.WARD_SEES: 3, Word.NOTHING_NEW: 2, Word.FOLLOWING: 1, Word.USUAL: 0}


def _pressure_together(values: list[LatestValue]) -> list[LatestValue]:
    """Systolic and diastolic of one cuff reading as the patient knows them: "128/82 mmHg"."""
    by_vital = {v.vitals[0]: v for v in values}
    sys, dia = by_vital.get(Vital.SYSTOLIC_BP), by_vital.get(Vital.DIASTOLIC_BP)
    if sys is None or dia is None or abs((sys.at - dia.at).total_seconds()) > 60:
        return values
    word = max((sys, dia), key=lambda v: _WORD_WEIGHT[v.word])
    both = LatestValue(
        (Vital.SYSTOLIC_BP, Vital.DIASTOLIC_BP), "Blodtryck",
        f"{sys.text.split()[0]}/{dia.text}", sys.at, max(sys.received_at, dia.received_at), word.word,
        word.word_text,
        Receipt.REVIEWED if sys.receipt is dia.receipt is Receipt.REVIEWED else Receipt.RECEIVED, sys.when,
    )  # fmt: skip
    return [both if v is sys else v for v in values if v is not dia]


def today(patient_id: uuid.UUID, *, now: datetime, zone: ZoneInfo, with_values: bool) -> Steps[Today]:
    """Idag: the tasks from the plan and, for the patient (not a relative), the latest values."""
    plans = yield from planned_measurements(patient_id, now)
    tasks = tasks_of(plans, now, zone)
    if not with_values:
        return Today(tasks, [])
    latest = yield from latest_readings(patient_id, now)
    limits = yield from limits_in_force(patient_id, now)
    judged = [v for v in latest if rules_of(v)]
    found = (yield from windows(patient_id, judged, now)) if judged else {}
    review = yield from last_staff_review(patient_id)
    values = latest_values(patient_id, latest, plans, found, limits, last_review=review, now=now, zone=zone)
    return Today(tasks, values)


def first_name(patient_id: uuid.UUID) -> Steps[str]:
    """The name the app greets the patient by: the first word of their display name."""
    row = yield Sql("SELECT display_name FROM patients WHERE id = %s", (patient_id,), fetch="one")
    return str(row[0]).split()[0] if row and str(row[0]).strip() else ""


def greeting_sv(now: datetime, zone: ZoneInfo) -> str:
    hour = now.astimezone(zone).hour
    return "God morgon" if 5 <= hour < 10 else "God kväll" if 18 <= hour < 24 else "Hej"
