"""The patient record's care level section (issue 11, care.care_levels): the level in force as a word on
a coloured chip, its reason, who set it when, when the next review is due, and a timeline of level
changes and reviews with their notes (text, autoescaped, never `|safe`).

Physicians are offered the form to set the level (care.permissions.Action.SET_CARE_LEVEL); nurses and
physicians "Markera som granskad" with an optional note (Action.REVIEW_PATIENT). Both are plain HTML
posts with the session's `csrf` field to `/patients/{id}/care-level` and `/patients/{id}/review`, which
run the same commands as `hemma patient level|review` and go back to the record; a refusal is the error
page with the same Swedish text the API would give (dashboard.refusals).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from care.care_levels import (
    LEVELS,
    MAX_NOTE_LENGTH,
    MAX_REASON_LENGTH,
    LevelMeaning,
    PatientLevel,
    TimelineEntry,
    patient_level,
    review,
    set_level,
    timeline,
)
from care.permissions import Action
from dashboard.auth import page_staff
from dashboard.inputs import PatientId
from dashboard.model import StaffUser
from dashboard.staff_forms import form_origin, run_form_command
from storage.steps import run_async

if TYPE_CHECKING:
    import psycopg

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class CareLevelSection:
    patient_id: uuid.UUID
    current: PatientLevel
    timeline: tuple[TimelineEntry, ...]
    may_set: bool
    may_review: bool
    choices: tuple[LevelMeaning, ...] = tuple(LEVELS.values())
    max_reason: int = MAX_REASON_LENGTH
    max_note: int = MAX_NOTE_LENGTH


async def load(conn: psycopg.AsyncConnection[Any], staff: StaffUser, patient_id: uuid.UUID) -> Any:
    """The section's data, read on the record's connection after its access-log row."""
    current = await run_async(conn, patient_level(patient_id))
    entries = await run_async(conn, timeline(patient_id))
    cur = await conn.execute("SELECT discharged_at IS NULL FROM patients WHERE id = %s", (patient_id,))
    in_care = bool((await cur.fetchone() or (False,))[0])
    return CareLevelSection(
        patient_id, current, tuple(entries),
        may_set=in_care and staff.may(Action.SET_CARE_LEVEL),
        may_review=in_care and staff.may(Action.REVIEW_PATIENT),
    )  # fmt: skip


def _back(patient_id: uuid.UUID) -> Response:
    return RedirectResponse(f"/patients/{patient_id}#vardniva", status_code=303)


@router.post("/patients/{patient_id}/care-level")
async def set_level_form(
    request: Request,
    patient_id: PatientId,
    staff: Annotated[StaffUser, Depends(page_staff)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    level: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    origin = form_origin(request, csrf)
    steps = set_level(patient_id=patient_id, level=level, reason=reason, by=staff.username, origin=origin)
    await run_form_command(request, steps)
    return _back(patient_id)


@router.post("/patients/{patient_id}/review")
async def review_form(
    request: Request,
    patient_id: PatientId,
    staff: Annotated[StaffUser, Depends(page_staff)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    origin = form_origin(request, csrf)
    await run_form_command(
        request, review(patient_id=patient_id, note=note, by=staff.username, origin=origin)
    )
    return _back(patient_id)
