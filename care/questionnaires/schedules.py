"""Which questionnaires a patient answers, at which local times of day, and what is due today.

A nurse or physician sets a schedule (`set_schedule`: 1 to 6 times "HH:MM" per questionnaire,
care.permissions.Action.SET_QUESTIONNAIRE_SCHEDULE) or clears it; `hemma questionnaire schedule` and
the record's form run the same commands. The times are also the kit's reminder times (the box's light
at those times, care.kit.kit_config), so a change issues the kit a new configuration.

Today (`due_today`, for the patient's Idag screen): each scheduled time is a slot, answered by a
response of that questionnaire from `GRACE` (2 h) before it (an early answer in the same morning
routine counts) until the next slot's window opens; before its window it is *later*, in it *due*,
after it, unanswered, *missed*. The patient app never hurries anyone: "missed" is only shown as
"inte besvarad".
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from care.acting import ActingStaff, CareSteps, Origin, audited, staff_for_patient
from care.kit import config_changed
from care.permissions import Action
from care.questionnaires.answers import find
from care.questionnaires.definitions import catalogue
from care.refusals import RefusalCode, Refused
from core.events import VitalsChanged
from storage.steps import Notify, Sql, Steps

GRACE = timedelta(hours=2)
MAX_TIMES = 6  # questionnaire_schedules' CHECK
_TIME = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")


class SlotState(StrEnum):
    ANSWERED = "answered"
    DUE = "due"
    LATER = "later"
    MISSED = "missed"


@dataclass(frozen=True, slots=True)
class Slot:
    questionnaire: str
    title: str
    at: datetime  # the scheduled time today, in the site's zone
    state: SlotState
    answered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    questionnaire: str
    title: str
    times: tuple[str, ...]  # "HH:MM", in order
    set_by: str | None
    set_at: datetime


@dataclass(frozen=True, slots=True)
class ScheduleSet:
    patient_id: uuid.UUID
    ward_id: str
    questionnaire: str
    times: tuple[str, ...]
    kit_version: int | None  # the kit configuration issued with it (None: the kit has none)


@dataclass(frozen=True, slots=True)
class ScheduleCleared:
    patient_id: uuid.UUID
    ward_id: str
    questionnaire: str
    kit_version: int | None


def check_times(times: Sequence[str]) -> tuple[time, ...]:
    """1 to MAX_TIMES local times of day ("09:00", "9:00"), distinct, in order; SCHEDULE_TIMES else."""
    parsed: set[time] = set()
    for text in times:
        match = _TIME.fullmatch(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise Refused(RefusalCode.SCHEDULE_TIMES)
        parsed.add(time(int(match[1]), int(match[2])))
    if not 1 <= len(parsed) <= MAX_TIMES:
        raise Refused(RefusalCode.SCHEDULE_TIMES)
    return tuple(sorted(parsed))


def hh_mm(at: time) -> str:
    return f"{at.hour:02d}:{at.minute:02d}"


def set_schedule(
    *, patient_id: uuid.UUID, questionnaire: str, times: Sequence[str], by: str, origin: Origin | None
) -> CareSteps[ScheduleSet]:
    """The patient answers `questionnaire` at these local times each day (replaces its schedule)."""
    q = find(questionnaire)
    checked = check_times(times)
    staff, ward_id = yield from staff_for_patient(by, Action.SET_QUESTIONNAIRE_SCHEDULE, patient_id)
    yield Sql(
        "INSERT INTO questionnaire_schedules (patient_id, questionnaire, times, set_by, set_at)"
        " VALUES (%s, %s, %s, %s, now()) ON CONFLICT (patient_id, questionnaire) DO UPDATE SET"
        " times = EXCLUDED.times, set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at",
        (patient_id, q.id, list(checked), staff.id),
    )
    yield from _audited(origin, staff, by, patient_id, f"questionnaire_schedule:{q.id}")
    version = yield from config_changed(patient_id=patient_id)  # the times are the box's reminders
    yield Notify(VitalsChanged(ward_id, (patient_id,)))
    return ScheduleSet(patient_id, ward_id, q.id, tuple(hh_mm(t) for t in checked), version)


def clear_schedule(
    *, patient_id: uuid.UUID, questionnaire: str, by: str, origin: Origin | None
) -> CareSteps[ScheduleCleared]:
    """The patient no longer answers `questionnaire` on a schedule (answers already given stay)."""
    q = find(questionnaire)
    staff, ward_id = yield from staff_for_patient(by, Action.SET_QUESTIONNAIRE_SCHEDULE, patient_id)
    deleted = yield Sql(
        "DELETE FROM questionnaire_schedules WHERE patient_id = %s AND questionnaire = %s RETURNING 1",
        (patient_id, q.id),
        fetch="one",
    )
    if deleted is None:
        raise Refused(RefusalCode.NO_SCHEDULE, patient_id=patient_id, questionnaire=q.id)
    yield from _audited(origin, staff, by, patient_id, f"questionnaire_schedule:{q.id} cleared")
    version = yield from config_changed(patient_id=patient_id)
    yield Notify(VitalsChanged(ward_id, (patient_id,)))
    return ScheduleCleared(patient_id, ward_id, q.id, version)


def _audited(
    origin: Origin | None, staff: ActingStaff, by: str, patient_id: uuid.UUID, context: str
) -> Steps[None]:
    yield from audited(origin, staff=staff, username=by, patient_id=patient_id,
                       action=Action.SET_QUESTIONNAIRE_SCHEDULE, context=context)  # fmt: skip


def schedules(patient_id: uuid.UUID) -> Steps[list[Schedule]]:
    """The patient's schedules, by questionnaire id (a read: the caller logs it)."""
    rows = yield Sql(
        "SELECT q.questionnaire, q.times, s.username, q.set_at FROM questionnaire_schedules q"
        " LEFT JOIN staff_users s ON s.id = q.set_by WHERE q.patient_id = %s ORDER BY q.questionnaire",
        (patient_id,),
        fetch="all",
    )
    titles = {q.id: q.title for q in catalogue().values()}
    return [
        Schedule(qid, titles.get(qid, qid), tuple(hh_mm(t) for t in sorted(times)), username, set_at)
        for qid, times, username, set_at in rows
    ]


# --- today ----------------------------------------------------------------------------------------------


def slots_today(
    times: Mapping[str, Sequence[time]],
    answered: Mapping[str, Sequence[datetime]],
    *,
    now: datetime,
    zone: tzinfo,
    titles: Mapping[str, str] | None = None,
) -> list[Slot]:
    """Pure: every scheduled slot of today (local), in time order, with its state at `now`."""
    today = now.astimezone(zone).date()
    end_of_day = _local(today + timedelta(days=1), time(0), zone)
    slots: list[Slot] = []
    for qid, scheduled in times.items():
        ats = [_local(today, t, zone) for t in sorted(set(scheduled))]
        # A slot's window opens GRACE before it, but not before the previous slot's time, and closes
        # when the next one opens (the last at midnight).
        starts = [max(at - GRACE, ats[i - 1]) if i else at - GRACE for i, at in enumerate(ats)]
        ends = [*starts[1:], end_of_day]
        responses = sorted(answered.get(qid, ()))
        for at, start, end in zip(ats, starts, ends, strict=True):
            done = next((r for r in responses if start <= r < end), None)
            if done is not None:
                state = SlotState.ANSWERED
            elif now < start:
                state = SlotState.LATER
            elif now < end:
                state = SlotState.DUE
            else:
                state = SlotState.MISSED
            slots.append(Slot(qid, (titles or {}).get(qid, qid), at, state, done))
    return sorted(slots, key=lambda s: (s.at, s.questionnaire))


def due_today(patient_id: uuid.UUID, now: datetime, zone: tzinfo) -> Steps[list[Slot]]:
    """Today's slots of the patient's scheduled questionnaires (a read: the caller logs it)."""
    rows = yield Sql(
        "SELECT questionnaire, times FROM questionnaire_schedules WHERE patient_id = %s",
        (patient_id,),
        fetch="all",
    )
    if not rows:
        return []
    today = now.astimezone(zone).date()
    since = _local(today, time(0), zone) - GRACE
    answers = yield Sql(
        "SELECT questionnaire, authored_at FROM questionnaire_responses WHERE patient_id = %s"
        " AND authored_at >= %s AND authored_at < %s + interval '1 day' + %s ORDER BY authored_at",
        (patient_id, since, since, GRACE),
        fetch="all",
    )
    answered: dict[str, list[datetime]] = {}
    for qid, at in answers:
        answered.setdefault(qid, []).append(at)
    known = catalogue()
    return slots_today(
        {qid: times for qid, times in rows if qid in known}, answered, now=now, zone=zone,
        titles={qid: q.title for qid, q in known.items()},
    )  # fmt: skip


def _local(day: date, at: time, zone: tzinfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone)
