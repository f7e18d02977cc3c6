"""The patient record's questionnaires section (issue 10): the schedule per questionnaire, with the
form to set or clear it for those who may (care.permissions.Action.SET_QUESTIONNAIRE_SCHEDULE), and the
answers of the last 14 days: when, which questionnaire, the score, the flags in Swedish, the answers
and the patient's own words (escaped like all text; never `|safe`). Staff see scores; patients do not.

The forms are plain HTML posts with the session's `csrf` field to
`/patients/{id}/questionnaires/{questionnaire}/schedule` and `.../clear`, which run the same commands
as `hemma questionnaire schedule` (care.questionnaires.schedules) and go back to the record.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from alerts.messages_sv import SYMPTOM_SV
from care.permissions import Action
from care.questionnaires import (
    StoredResponse,
    catalogue,
    clear_schedule,
    recent_responses,
    schedules,
    set_schedule,
)
from dashboard.auth import page_staff
from dashboard.inputs import PatientId
from dashboard.model import PRIORITY_LABELS, StaffUser
from dashboard.staff_forms import form_origin, run_form_command
from storage.steps import run_async

if TYPE_CHECKING:
    import psycopg

router = APIRouter(include_in_schema=False)
DAYS = 14


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    questionnaire: str
    title: str
    times: tuple[str, ...]  # empty: not scheduled
    set_by: str | None
    set_at: datetime | None

    @property
    def times_text(self) -> str:
        return ", ".join(self.times)


@dataclass(frozen=True, slots=True)
class ResponseRow:
    response: StoredResponse

    @property
    def flags_text(self) -> str:
        return ", ".join(SYMPTOM_SV.get(code, code) for code in self.response.flags)

    @property
    def priority_label(self) -> str:
        highest = self.response.highest
        return PRIORITY_LABELS.get(highest.label, highest.label) if highest else ""

    @property
    def source_text(self) -> str:
        if self.response.source == "staff":
            return f"telefon, inmatat av {self.response.entered_by or 'personal'}"
        return {"app": "patientens app", "simulator": "simulerad patient"}.get(
            self.response.source, self.response.source
        )


@dataclass(frozen=True, slots=True)
class QuestionnairesSection:
    patient_id: uuid.UUID
    schedules: tuple[ScheduleRow, ...]  # every questionnaire, scheduled or not
    responses: tuple[ResponseRow, ...]  # the last DAYS days, newest first
    may_schedule: bool
    days: int = DAYS


async def load(conn: psycopg.AsyncConnection[Any], staff: StaffUser, patient_id: uuid.UUID) -> Any:
    """The section's data, read on the record's connection after its access-log row."""
    scheduled = {s.questionnaire: s for s in await run_async(conn, schedules(patient_id))}
    rows = tuple(
        ScheduleRow(q.id, q.title, scheduled[q.id].times, scheduled[q.id].set_by, scheduled[q.id].set_at)
        if q.id in scheduled
        else ScheduleRow(q.id, q.title, (), None, None)
        for q in catalogue().values()
    )
    cur = await conn.execute("SELECT discharged_at IS NULL FROM patients WHERE id = %s", (patient_id,))
    in_care = await cur.fetchone()
    responses = await run_async(conn, recent_responses(patient_id, days=DAYS))
    return QuestionnairesSection(
        patient_id, rows, tuple(ResponseRow(r) for r in responses),
        may_schedule=bool(in_care and in_care[0]) and staff.may(Action.SET_QUESTIONNAIRE_SCHEDULE),
    )  # fmt: skip


# --- the forms -------------------------------------------------------------------------------------------


def _times(text: str) -> list[str]:
    """ "09:00, 18:00" or "09:00 18:00" as the list care checks."""
    return [part for part in re.split(r"[,;\s]+", text.strip()) if part]


def _back(patient_id: uuid.UUID) -> Response:
    return RedirectResponse(f"/patients/{patient_id}#fragor", status_code=303)


@router.post("/patients/{patient_id}/questionnaires/{questionnaire}/schedule")
async def schedule_form(
    request: Request,
    patient_id: PatientId,
    questionnaire: str,
    staff: Annotated[StaffUser, Depends(page_staff)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    times: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    origin = form_origin(request, csrf)
    steps = set_schedule(patient_id=patient_id, questionnaire=questionnaire[:64], times=_times(times),
                         by=staff.username, origin=origin)  # fmt: skip
    await run_form_command(request, steps)
    return _back(patient_id)


@router.post("/patients/{patient_id}/questionnaires/{questionnaire}/clear")
async def clear_form(
    request: Request,
    patient_id: PatientId,
    questionnaire: str,
    staff: Annotated[StaffUser, Depends(page_staff)],
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    origin = form_origin(request, csrf)
    steps = clear_schedule(patient_id=patient_id, questionnaire=questionnaire[:64], by=staff.username,
                           origin=origin)  # fmt: skip
    await run_form_command(request, steps)
    return _back(patient_id)
