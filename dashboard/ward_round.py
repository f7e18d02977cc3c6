""" "Dagens rond" (issue 11): the ward's daily round as one list, `/wards/{ward_id}/rond`.

Four sections, read in three queries whatever the ward's size:
1. the patients (with the database's clock): level in force, last review and, by the one decision
   of care.care_levels (`review_due_at_sql` in SQL, `review_state` for the words), who is due for
   review within `DUE_SOON`, most overdue first; and per patient the open or taken contact requests
   and the patient's unread messages;
2. care levels set in the last `RECENT` (from → to, by whom, why);
3. questionnaire answers of the last `RECENT` with flags, newest first.
The page (dashboard.pages.ward_round_page) checks access as the ward overview does and writes one
access-log row (WARD_ROUND) per patient the list shows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from care.care_levels import (
    LEVEL_AND_REVIEW_LATERAL,
    LevelMeaning,
    ReviewState,
    meaning,
    review_due_at_sql,
    review_state,
)
from care.questionnaires import catalogue
from dashboard.model import Ward, report_flag_sv

if TYPE_CHECKING:
    import psycopg

# Due "soon" enough to be on today's round: half a shift ahead. Shorter than the shortest review
# interval (red, 8 h), so a patient just reviewed always leaves the list.
DUE_SOON = timedelta(hours=4)
# What "senaste dygnet" means for level changes and answers.
RECENT = timedelta(hours=24)
QUERIES = 3

_DUE_AT = review_due_at_sql("clv.care_level", "crv.last_reviewed_at", "p.enrolled_at")


@dataclass(frozen=True, slots=True)
class RoundPatient:
    id: uuid.UUID
    name: str
    review: ReviewState
    open_requests: int
    unread_messages: int


@dataclass(frozen=True, slots=True)
class LevelChange:
    patient_id: uuid.UUID
    name: str
    before: LevelMeaning | None  # None: the patient's first level
    after: LevelMeaning
    by: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class FlaggedAnswer:
    patient_id: uuid.UUID
    name: str
    questionnaire: str  # its Swedish title (the id when the catalogue no longer has it)
    flags: tuple[str, ...]  # in words
    score: int
    at: datetime


@dataclass(frozen=True, slots=True)
class WardRound:
    ward: Ward
    now: datetime
    to_review: tuple[RoundPatient, ...]  # due within DUE_SOON, most overdue first
    level_changes: tuple[LevelChange, ...]  # newest first
    flagged_answers: tuple[FlaggedAnswer, ...]  # newest first
    contacts: tuple[RoundPatient, ...]  # with an open/taken request or an unread message

    def due_text(self, patient: RoundPatient) -> str:
        """ "Granska nu" or "om 3 h" (care.care_levels' words without their "Granskning: ")."""
        return patient.review.due_text_sv(self.now).removeprefix("Granskning: ")

    @property
    def patient_ids(self) -> list[uuid.UUID]:
        """Every patient the list shows, once each, in order of first appearance (for the access log)."""
        ids = [p.id for p in self.to_review] + [c.patient_id for c in self.level_changes]
        ids += [a.patient_id for a in self.flagged_answers] + [p.id for p in self.contacts]
        return list(dict.fromkeys(ids))


async def fetch_ward_round(conn: psycopg.AsyncConnection[Any], ward: Ward) -> WardRound:
    cur = await conn.execute(
        "SELECT p.id, p.display_name, clv.care_level, crv.last_reviewed_at, p.enrolled_at, clock.at,"
        f" {_DUE_AT} AS due_at,"
        " (SELECT count(*) FROM contact_requests c WHERE c.patient_id = p.id AND c.state <> 'closed'),"
        " (SELECT count(*) FROM patient_messages m WHERE m.patient_id = p.id AND m.sender <> 'staff'"
        "   AND m.read_at IS NULL)"
        " FROM (SELECT now() AS at) clock"
        " LEFT JOIN patients p ON p.ward_id = %s AND p.discharged_at IS NULL " + LEVEL_AND_REVIEW_LATERAL
        + " ORDER BY due_at, p.display_name, p.id",
        (ward.id,),
    )  # fmt: skip
    # The database's clock comes with the patients; an empty ward is one row of the clock alone.
    rows = await cur.fetchall()
    now: datetime = rows[0][5]
    rows = [r for r in rows if r[0] is not None]
    patients = [
        RoundPatient(r[0], r[1], review_state(r[2], r[3], r[4], now), int(r[7]), int(r[8])) for r in rows
    ]
    changes = await conn.execute(
        "SELECT patient_id, display_name, before, level, by, reason, set_at FROM ("
        "  SELECT l.patient_id, p.display_name, lag(l.level) OVER w AS before, l.level, s.display_name AS by,"
        "   l.reason, l.set_at, l.id FROM care_levels l JOIN patients p ON p.id = l.patient_id"
        "   JOIN staff_users s ON s.id = l.set_by WHERE p.ward_id = %(w)s AND p.discharged_at IS NULL"
        "   WINDOW w AS (PARTITION BY l.patient_id ORDER BY l.set_at, l.id)"
        " ) x WHERE set_at > %(since)s ORDER BY set_at DESC, id DESC",
        {"w": ward.id, "since": now - RECENT},
    )  # fmt: skip
    level_changes = tuple(
        LevelChange(r[0], r[1], meaning(r[2]) if r[2] else None, meaning(r[3]), r[4], r[5], r[6])
        for r in await changes.fetchall()
    )
    answers = await conn.execute(
        "SELECT q.patient_id, p.display_name, q.questionnaire, q.flags, q.score, q.authored_at"
        " FROM questionnaire_responses q JOIN patients p ON p.id = q.patient_id"
        " WHERE p.ward_id = %s AND p.discharged_at IS NULL AND q.authored_at > %s"
        " AND cardinality(q.flags) > 0 ORDER BY q.authored_at DESC, q.id DESC",
        (ward.id, now - RECENT),
    )
    titles = {q.id: q.title for q in catalogue().values()}
    flagged = tuple(
        FlaggedAnswer(r[0], r[1], titles.get(r[2], r[2]), tuple(report_flag_sv(f) for f in r[3]), r[4], r[5])
        for r in await answers.fetchall()
    )
    return WardRound(
        ward,
        now,
        to_review=tuple(p for p in patients if p.review.due_at <= now + DUE_SOON),
        level_changes=level_changes,
        flagged_answers=flagged,
        contacts=tuple(p for p in patients if p.open_requests or p.unread_messages),
    )
