"""A patient's care level and reviews (issue 11, "Plan by level of need"; migrations 0013, 0017).

A physician sets the level (röd/gul/grön) with a reason; a nurse or physician marks the patient
"granskad", with an optional note. `LEVELS` is the one table of what a level sets:
* how often the patient must be reviewed (`review_state`, the one decision of when the next review is
  due, read by the record, the ward card, the CLI and, as `review_due_at_sql`, by SQL);
* how often the patient measures by default (`level_plan_minutes`): the plan rows an admission's pathway
  laid down (monitoring_plans.source 'level') follow the level when it changes; rows a clinician set by
  hand keep their interval;
* how soon an unacknowledged high alert goes to the on-call physician (`escalate_after`, read by
  paging.escalator).
`hemma patient level|review` and the record's forms run the commands below.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from care.acting import Origin, audited, staff_for_patient
from care.kit import config_changed
from care.messages import clean_text
from care.permissions import Action
from care.refusals import RefusalCode, Refused
from core.events import VitalsChanged
from core.vitals import Vital
from storage.steps import Notify, Sql, Steps

# The reason a physician gives for a level (migration 0013's CHECK), and a review's optional note.
MIN_REASON_LENGTH, MAX_REASON_LENGTH = 3, 300
MAX_NOTE_LENGTH = 500


class CareLevel(StrEnum):
    RED = "red"
    YELLOW = "yellow"
    GREEN = "green"


@dataclass(frozen=True, slots=True)
class LevelMeaning:
    """What a care level sets on the ward: its Swedish word, how long a patient on it may go without
    being reviewed, how often its vitals are measured by default, and within how many minutes an
    unacknowledged high alert goes to the on-call physician (None: the ward's time alone). `level`
    None is a patient no physician has given a level yet."""

    level: CareLevel | None
    word_sv: str
    review_every: timedelta
    measure_every: timedelta
    escalate_after_minutes: int | None


# Review intervals, after the virtual wards' red/amber/green rounds: red once per shift (three shifts a
# day), yellow once a day (the daily ward round), green every third day (stable, near discharge).
#
# Measuring: at least the minimum frequencies of the RCP NEWS2 chart (2017, chart 3) for a patient at
# home: red every 4 h (NEWS2 1-4's "4-6 hourly", the sickest patients a home ward keeps), yellow every
# 8 h (three times a day: morning, afternoon, evening), green every 12 h (NEWS2 0's "12 hourly": morning
# and evening). Weight is daily at every level (`DAILY_VITALS`).
#
# Escalation: red 5 min, yellow 10, green 15, but never later than the ward's own time
# (wards.escalate_after_minutes): the level may only make the page come sooner. A level is a plan for
# how closely to follow the patient; it must not delay the physician for a high alert below what the
# ward decided. A patient without a level escalates on the ward's time.
#
# A patient without a level is reviewed daily until a physician decides, as if yellow, and measures as
# yellow (a nurse's admission measures as its pathway suggests, care.admission).
LEVELS: MappingProxyType[CareLevel, LevelMeaning] = MappingProxyType(
    {
        CareLevel.RED: LevelMeaning(CareLevel.RED, "Röd", timedelta(hours=8), timedelta(hours=4), 5),
        CareLevel.YELLOW: LevelMeaning(CareLevel.YELLOW, "Gul", timedelta(hours=24), timedelta(hours=8), 10),
        CareLevel.GREEN: LevelMeaning(CareLevel.GREEN, "Grön", timedelta(hours=72), timedelta(hours=12), 15),
    }
)
NO_LEVEL = LevelMeaning(None, "Ingen vårdnivå", timedelta(hours=24), timedelta(hours=8), None)

# Vitals measured once a day whatever the level: weight is compared day to day (the 3-day weight rule,
# alerts.weight) and varies through the day, so weighing more often adds noise, not safety (ESC heart
# failure guideline 2021: daily weight, mornings).
DAILY_VITALS = frozenset({Vital.BODY_WEIGHT})
DAILY = timedelta(hours=24)


def meaning(level: str | None) -> LevelMeaning:
    """The meaning of a stored level (None or unknown: NO_LEVEL)."""
    try:
        return LEVELS[CareLevel(level)] if level is not None else NO_LEVEL
    except ValueError:
        return NO_LEVEL


def level_plan_minutes(meant: LevelMeaning, vital: Vital) -> int:
    """The interval in minutes a plan row that follows the level gets for `vital`."""
    every = DAILY if vital in DAILY_VITALS else meant.measure_every
    return every // timedelta(minutes=1)


def escalate_after(level: str | None, ward_minutes: int) -> int:
    """The one decision of how many minutes an unacknowledged high alert of a patient on `level` waits
    before the on-call physician is paged: the shorter of the level's and the ward's."""
    own = meaning(level).escalate_after_minutes
    return ward_minutes if own is None else min(own, ward_minutes)


# --- when the next review is due -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReviewState:
    level: LevelMeaning
    last_reviewed_at: datetime | None  # None: never reviewed; the clock runs from enrolment
    due_at: datetime
    overdue: bool

    def due_text_sv(self, now: datetime) -> str:
        """ "Granskning: om 3 h", or "Granska nu" when due. Minutes under an hour, whole days beyond
        two; always rounded up, so the text never says "om 0" and changes at `text_changes_at`."""
        left = self.due_at - now
        if left <= timedelta(0):
            return "Granska nu"
        count, unit = _left(left)
        return f"Granskning: om {count} {unit}"

    def text_changes_at(self, now: datetime) -> datetime | None:
        """When `due_text_sv` next reads differently (None: "Granska nu" stays until a review)."""
        left = self.due_at - now
        if left <= timedelta(0):
            return None
        count, unit = _left(left)
        return self.due_at - (count - 1) * _UNITS[unit]


_UNITS = {"min": timedelta(minutes=1), "h": timedelta(hours=1), "dygn": timedelta(days=1)}


def _left(left: timedelta) -> tuple[int, str]:
    unit = "min" if left <= timedelta(hours=1) else "h" if left <= timedelta(hours=48) else "dygn"
    return math.ceil(left / _UNITS[unit]), unit


def review_state(
    level: str | None, last_reviewed_at: datetime | None, enrolled_at: datetime, now: datetime
) -> ReviewState:
    """The one decision of "due for review": the level's interval after the last review (or after
    enrolment, never reviewed). A change of level moves the due time at once: a patient moved to red
    is due 8 h after the last review, which may be now."""
    meant = meaning(level)
    due_at = (last_reviewed_at or enrolled_at) + meant.review_every
    return ReviewState(meant, last_reviewed_at, due_at, overdue=due_at <= now)


def review_due_at_sql(level: str, last_reviewed_at: str, enrolled_at: str) -> str:
    """`review_state`'s due time as an SQL expression of three column expressions (for filters and
    sorting in SQL, e.g. "due for review"); built from LEVELS, so the two cannot drift apart."""
    cases = " ".join(
        f"WHEN '{m.level}' THEN interval '{int(m.review_every.total_seconds())} seconds'"
        for m in LEVELS.values()
    )
    fallback = f"interval '{int(NO_LEVEL.review_every.total_seconds())} seconds'"
    return f"(coalesce({last_reviewed_at}, {enrolled_at}) + CASE {level} {cases} ELSE {fallback} END)"


# The level in force and the newest review of patient `p`, joined laterally (the card's query and the
# record's): columns care_level, care_level_reason, care_level_set_by (display name), care_level_set_at,
# last_reviewed_at.
LEVEL_AND_REVIEW_LATERAL = (
    "LEFT JOIN LATERAL (SELECT l.level AS care_level, l.reason AS care_level_reason,"
    " ls.display_name AS care_level_set_by, l.set_at AS care_level_set_at FROM care_levels l"
    " JOIN staff_users ls ON ls.id = l.set_by WHERE l.patient_id = p.id"
    " ORDER BY l.set_at DESC, l.id DESC LIMIT 1) clv ON true"
    " LEFT JOIN LATERAL (SELECT max(r.reviewed_at) AS last_reviewed_at FROM patient_reviews r"
    " WHERE r.patient_id = p.id) crv ON true"
)


# --- the commands ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LevelSet:
    id: int
    patient_id: uuid.UUID
    ward_id: str
    level: CareLevel
    reason: str
    set_at: datetime


@dataclass(frozen=True, slots=True)
class Reviewed:
    id: int
    patient_id: uuid.UUID
    ward_id: str
    reviewed_at: datetime
    note: str | None


def check_level(level: object) -> CareLevel:
    try:
        return CareLevel(str(level))
    except ValueError:
        raise Refused(RefusalCode.CARE_LEVEL_CHOICE, level=str(level)[:20], known=tuple(CareLevel)) from None


def check_reason(reason: str) -> str:
    """The reason as stored (care.messages.clean_text: NFC, stripped, no control characters)."""
    # clean_text refuses control characters only here: the length is this refusal's, with its bounds.
    text = clean_text(reason, maximum=len(reason), empty=None, too_long=RefusalCode.CARE_LEVEL_REASON)
    if text is None or not MIN_REASON_LENGTH <= len(text) <= MAX_REASON_LENGTH:
        raise Refused(RefusalCode.CARE_LEVEL_REASON, minimum=MIN_REASON_LENGTH, maximum=MAX_REASON_LENGTH)
    return text


def check_note(note: str | None) -> str | None:
    """A review's optional note as stored; empty is none."""
    if note is None:
        return None
    return clean_text(note, maximum=MAX_NOTE_LENGTH, empty=None, too_long=RefusalCode.CONTACT_NOTE_TOO_LONG)


def set_level(
    *, patient_id: uuid.UUID, level: CareLevel | str, reason: str, by: str, origin: Origin | None
) -> Steps[LevelSet]:
    """Put the patient on `level` for `reason`: a new row, the earlier ones stay as history."""
    chosen = check_level(level)
    why = check_reason(reason)
    staff, ward_id = yield from staff_for_patient(by, Action.SET_CARE_LEVEL, patient_id)
    row = yield Sql(
        "INSERT INTO care_levels (patient_id, level, reason, set_by) VALUES (%s, %s, %s, %s)"
        " RETURNING id, set_at",
        (patient_id, chosen.value, why, staff.id),
        fetch="one",
    )
    yield from follow_level(patient_id, LEVELS[chosen], staff.id)
    yield from audited(origin, staff=staff, username=by, patient_id=patient_id,
                       action=Action.SET_CARE_LEVEL, context=f"care_level:{row[0]}")  # fmt: skip
    yield Notify(VitalsChanged(ward_id, (patient_id,)))
    return LevelSet(int(row[0]), patient_id, ward_id, chosen, why, row[1])


def follow_level(patient_id: uuid.UUID, meant: LevelMeaning, staff_id: int) -> Steps[dict[Vital, int]]:
    """The patient's plan rows that follow the level (source 'level') get the level's interval; rows a
    clinician set by hand stay. A row whose interval changes restarts its missing-data clock, as a plan
    set again does (care.plans). Returns {vital: minutes} of the rows changed."""
    rows = yield Sql(
        "SELECT vital, every_minutes FROM monitoring_plans WHERE patient_id = %s AND source = 'level'"
        " ORDER BY vital FOR UPDATE",
        (patient_id,),
        fetch="all",
    )
    changed: dict[Vital, int] = {}
    for name, minutes in rows:
        vital = Vital(name)
        wanted = level_plan_minutes(meant, vital)
        if wanted != minutes:
            changed[vital] = wanted
    for vital, minutes in changed.items():
        yield Sql(
            "UPDATE monitoring_plans SET every_minutes = %s, set_by = %s, set_at = now()"
            " WHERE patient_id = %s AND vital = %s",
            (minutes, staff_id, patient_id, vital.value),
        )
    if changed:
        yield from config_changed(patient_id=patient_id)  # the plan is the kit's schedule
    return changed


def review(*, patient_id: uuid.UUID, note: str | None, by: str, origin: Origin | None) -> Steps[Reviewed]:
    """`by` has reviewed the patient ("granskad"): the clock to the next review starts again."""
    text = check_note(note)
    staff, ward_id = yield from staff_for_patient(by, Action.REVIEW_PATIENT, patient_id)
    row = yield Sql(
        "INSERT INTO patient_reviews (patient_id, reviewed_by, note) VALUES (%s, %s, %s)"
        " RETURNING id, reviewed_at",
        (patient_id, staff.id, text),
        fetch="one",
    )
    yield from audited(origin, staff=staff, username=by, patient_id=patient_id,
                       action=Action.REVIEW_PATIENT, context=f"patient_review:{row[0]}")  # fmt: skip
    yield Notify(VitalsChanged(ward_id, (patient_id,)))
    return Reviewed(int(row[0]), patient_id, ward_id, row[1], text)


# --- the record's timeline -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    kind: str  # 'level' | 'review'
    by: str  # display name
    level: LevelMeaning | None  # a level change's new level
    text: str | None  # the level's reason, or the review's note


TIMELINE_SHOWN = 50


def timeline(patient_id: uuid.UUID, limit: int = TIMELINE_SHOWN) -> Steps[list[TimelineEntry]]:
    """Level changes and reviews, newest first. The caller has logged the read."""
    rows = yield Sql(
        "(SELECT l.set_at, 'level', s.display_name, l.level, l.reason FROM care_levels l"
        "  JOIN staff_users s ON s.id = l.set_by WHERE l.patient_id = %(p)s)"
        " UNION ALL (SELECT r.reviewed_at, 'review', s.display_name, NULL, r.note FROM patient_reviews r"
        "  JOIN staff_users s ON s.id = r.reviewed_by WHERE r.patient_id = %(p)s)"
        " ORDER BY 1 DESC LIMIT %(n)s",
        {"p": patient_id, "n": limit},
        fetch="all",
    )
    return [TimelineEntry(r[0], r[1], r[2], meaning(r[3]) if r[3] else None, r[4]) for r in rows]


@dataclass(frozen=True, slots=True)
class PatientLevel:
    """The level in force (None: none set), who set it when and why, and the review state."""

    level: CareLevel | None
    reason: str | None
    set_by: str | None
    set_at: datetime | None
    review: ReviewState


def patient_level(patient_id: uuid.UUID, now: datetime | None = None) -> Steps[PatientLevel]:
    """The patient's level and review state at `now` (the database's clock when None)."""
    row = yield Sql(
        "SELECT clv.*, crv.*, p.enrolled_at, now() FROM patients p " + LEVEL_AND_REVIEW_LATERAL
        + " WHERE p.id = %s",
        (patient_id,),
        fetch="one",
    )  # fmt: skip
    if row is None:
        raise Refused(RefusalCode.NO_PATIENT, patient_id=patient_id)
    level, reason, set_by, set_at, last, enrolled_at, db_now = row
    state = review_state(level, last, enrolled_at, now or db_now or datetime.now(UTC))
    return PatientLevel(CareLevel(level) if level else None, reason, set_by, set_at, state)
