"""A patient's care level and reviews (issue 11, "Plan by level of need"; migration 0013).

A physician sets the level (röd/gul/grön) with a reason; a nurse or physician marks the patient
"granskad", with an optional note. The level decides how often the patient must be reviewed:
`LEVELS` is the one table of what a level means, and `review_state` the one decision of when the
next review is due, read by the record, the ward card, the CLI and (as `review_due_at_sql`) by SQL.
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
from care.messages import clean_text
from care.permissions import Action
from care.refusals import RefusalCode, Refused
from core.events import VitalsChanged
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
    """What a care level means on the ward: its Swedish word, and how long a patient on it may go
    without being reviewed. `level` None is a patient no physician has given a level yet."""

    level: CareLevel | None
    word_sv: str
    review_every: timedelta


# Review intervals, after the virtual wards' red/amber/green rounds: red once per shift (three shifts a
# day), yellow once a day (the daily ward round), green every third day (stable, near discharge). A
# patient without a level is reviewed daily until a physician decides, as if yellow.
LEVELS: MappingProxyType[CareLevel, LevelMeaning] = MappingProxyType(
    {
        CareLevel.RED: LevelMeaning(CareLevel.RED, "Röd", timedelta(hours=8)),
        CareLevel.YELLOW: LevelMeaning(CareLevel.YELLOW, "Gul", timedelta(hours=24)),
        CareLevel.GREEN: LevelMeaning(CareLevel.GREEN, "Grön", timedelta(hours=72)),
    }
)
NO_LEVEL = LevelMeaning(None, "Ingen vårdnivå", timedelta(hours=24))


def meaning(level: str | None) -> LevelMeaning:
    """The meaning of a stored level (None or unknown: NO_LEVEL)."""
    try:
        return LEVELS[CareLevel(level)] if level is not None else NO_LEVEL
    except ValueError:
        return NO_LEVEL


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
    yield from audited(origin, staff=staff, username=by, patient_id=patient_id,
                       action=Action.SET_CARE_LEVEL, context=f"care_level:{row[0]}")  # fmt: skip
    yield Notify(VitalsChanged(ward_id, (patient_id,)))
    return LevelSet(int(row[0]), patient_id, ward_id, chosen, why, row[1])


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
