"""The patient app's questionnaires (issue 10): the form, the thank-you page, and today's list.

* `GET /p/fragor/{questionnaire}`: the form, rendered from the questionnaire's data (one fieldset per
  question, its legend the question; large radio labels; a free-text field with its hint). The form
  carries a `response_id` made here: a double tap or a resent form is stored once (care.questionnaires).
* `POST /p/fragor/{questionnaire}`: the device's CSRF token, then `care.questionnaires.answer` as the
  patient's own device (which logs it and refuses a relative). A refusal shows the form again, with
  the patient's answers kept and the question at fault marked; success goes (303) to
* `GET /p/fragor/{questionnaire}/tack/{response_id}`: a calm thank-you, what happens next, and, when
  an answer raised a flag, that the ward sees the answers. Never a score: scores are for staff.
* `today_questionnaires(conn, viewer, now)`: the Idag screen's list (`_today_questionnaires.html`,
  which reads it as `questionnaires`), also served alone as `GET /p/fragment/dagens-fragor`.

The record's staff routes (`/patients/{id}/questionnaires/...`) are dashboard.record_questionnaires',
included here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from care import texts_patient_sv
from care.access_log import PATIENT_APP
from care.acting import Origin
from care.patient_access import PatientViewer
from care.patient_receipts import RECEIPT_SV, last_staff_review, receipt
from care.permissions import PatientAction
from care.questionnaires import AnswerProblem, ByPatient, Questionnaire, SlotState, answer, due_today
from care.questionnaires import questionnaire as find_questionnaire
from care.questionnaires.definitions import MAX_FREE_TEXT
from care.refusals import RefusalCode, Refused
from core.settings import get_settings
from dashboard import record_questionnaires
from dashboard.patient_realm import (
    client_address,
    page_viewer,
    patient_error,
    patient_read,
    render_patient,
    require_form_csrf,
)
from dashboard.refusals import HTTP
from storage.steps import run_async

if TYPE_CHECKING:
    import psycopg

router = APIRouter(include_in_schema=False)
router.include_router(record_questionnaires.router)

ANSWER_FIELD = "q-"  # a form field "q-<linkId>" carries that question's answer
_MAX_FIELDS = 40
# The words beside a question the app could not accept, by the problem care found (never the input).
PROBLEM_SV = {
    AnswerProblem.REQUIRED_MISSING: "Välj ett svar på den här frågan.",
    AnswerProblem.NOT_AN_OPTION: "Välj ett av svaren här.",
    AnswerProblem.NOT_YES_OR_NO: "Välj Ja eller Nej.",
    AnswerProblem.TOO_LONG: f"Texten är för lång. Skriv högst {MAX_FREE_TEXT} tecken.",
    AnswerProblem.CHARACTERS: "Texten har tecken som inte går att skicka. Skriv den med vanliga bokstäver.",
    AnswerProblem.NOT_TEXT: "Skriv svaret med bokstäver.",
}
# Refusals that are about the request, not the answers: the calm error page, not the form again.
_NOT_THE_FORM = frozenset(
    {
        RefusalCode.PATIENT_REALM_ACTION,
        RefusalCode.UNKNOWN_QUESTIONNAIRE,
        RefusalCode.PATIENT_DISCHARGED,
        RefusalCode.NO_PATIENT,
    }
)


def _questionnaire(questionnaire_id: str) -> Questionnaire:
    found = find_questionnaire(questionnaire_id) if len(questionnaire_id) <= 64 else None
    if found is None:
        raise patient_error(Refused(RefusalCode.UNKNOWN_QUESTIONNAIRE, questionnaire="?"))
    return found


# --- the form ----------------------------------------------------------------------------------------


@router.get("/p/fragor/{questionnaire_id}", response_class=HTMLResponse)
async def questionnaire_form(
    request: Request, questionnaire_id: str, viewer: Annotated[PatientViewer, Depends(page_viewer)]
) -> Response:
    q = _questionnaire(questionnaire_id)
    async with patient_read(
        request, viewer, PatientAction.ANSWER_QUESTIONNAIRE, f"questionnaire:{q.id} form"
    ):
        pass  # the form shows no patient data; the read is logged and a relative refused
    return _form(request, viewer, q, response_id=uuid.uuid4())


def _form(
    request: Request,
    viewer: PatientViewer,
    q: Questionnaire,
    *,
    response_id: uuid.UUID,
    given: dict[str, str] | None = None,
    error: str | None = None,
    wrong: tuple[str, str] | None = None,
    status: int = 200,
) -> Response:
    return render_patient(
        request, "patient_app/questionnaire.html", viewer, status, q=q, response_id=response_id,
        given=given or {}, error=error, wrong=wrong, max_text=MAX_FREE_TEXT,
    )  # fmt: skip


@router.post("/p/fragor/{questionnaire_id}", response_class=HTMLResponse)
async def questionnaire_answer(
    request: Request,
    questionnaire_id: str,
    viewer: Annotated[PatientViewer, Depends(page_viewer)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    response_id: Annotated[str, Form(max_length=64)] = "",
    version: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    require_form_csrf(request, csrf)
    q = _questionnaire(questionnaire_id)
    form = await request.form()
    if len(form) > _MAX_FIELDS:
        raise patient_error(Refused(RefusalCode.ANSWER_INVALID, link_id="?", problem=AnswerProblem.NOT_TEXT))
    given = {
        str(key).removeprefix(ANSWER_FIELD): value
        for key, value in form.multi_items()
        if str(key).startswith(ANSWER_FIELD) and isinstance(value, str)
    }
    try:
        key = uuid.UUID(response_id)
    except ValueError:  # the form's own hidden field, altered: a fresh form key, the answers kept
        refused = Refused(RefusalCode.ANSWER_INVALID, link_id="response_id", problem=AnswerProblem.NOT_TEXT)
        return _form(request, viewer, q, response_id=uuid.uuid4(), given=given, status=422,
                     error=texts_patient_sv.text(refused.refusal))  # fmt: skip
    address = client_address(request)
    command = answer(
        patient_id=viewer.patient_id, questionnaire=q.id, version=version, answers=given, response_id=key,
        source=ByPatient(viewer, address), origin=Origin(PATIENT_APP, address),
    )  # fmt: skip
    try:
        async with request.app.state.pool.connection() as conn, conn.transaction():
            await run_async(conn, command)
    except Refused as exc:
        if exc.code in _NOT_THE_FORM:
            raise patient_error(exc) from None
        status, _ = HTTP.get(exc.code, (422, None))
        wrong = None
        if exc.code is RefusalCode.ANSWER_INVALID:
            problem = exc.params.get("problem")
            wrong = (str(exc.params.get("link_id")), PROBLEM_SV.get(problem, "")) if problem else None
        fresh = exc.code is RefusalCode.QUESTIONNAIRE_VERSION or (
            wrong is not None and exc.params.get("problem") is AnswerProblem.RESPONSE_ID_USED
        )
        return _form(request, viewer, q, response_id=uuid.uuid4() if fresh else key, given=given,
                     error=texts_patient_sv.text(exc.refusal), wrong=wrong, status=status)  # fmt: skip
    return RedirectResponse(f"/p/fragor/{q.id}/tack/{key}", status_code=303)


@router.get("/p/fragor/{questionnaire_id}/tack/{response_id}", response_class=HTMLResponse)
async def questionnaire_thanks(
    request: Request,
    questionnaire_id: str,
    response_id: uuid.UUID,
    viewer: Annotated[PatientViewer, Depends(page_viewer)],
) -> Response:
    q = _questionnaire(questionnaire_id)
    context = f"questionnaire:{q.id} response:{response_id}"
    async with patient_read(request, viewer, PatientAction.ANSWER_QUESTIONNAIRE, context) as conn:
        cur = await conn.execute(
            "SELECT authored_at, cardinality(flags) > 0 FROM questionnaire_responses"
            " WHERE response_id = %s AND patient_id = %s AND questionnaire = %s",
            (response_id, viewer.patient_id, q.id),
        )
        row = await cur.fetchone()
        review = await run_async(conn, last_staff_review(viewer.patient_id)) if row else None
    if row is None:
        raise patient_error(Refused(RefusalCode.UNKNOWN_QUESTIONNAIRE, questionnaire="?"))
    return render_patient(
        request, "patient_app/questionnaire_done.html", viewer, q=q, flagged=bool(row[1]),
        receipt=RECEIPT_SV[receipt(row[0], review)],
    )  # fmt: skip


# --- today (the Idag screen) ---------------------------------------------------------------------------

# A state in words and a symbol, never colour alone (patient.css p-state-*).
STATE_SV = {
    SlotState.ANSWERED: ("done", "✓", "Klart"),
    SlotState.DUE: ("due", "●", "Dags att svara"),
    SlotState.LATER: ("later", "○", "Senare"),
    SlotState.MISSED: ("later", "–", "Inte besvarad"),
}


@dataclass(frozen=True, slots=True)
class TodaySlot:
    questionnaire: str
    title: str
    time: str  # "09:00", local
    state: SlotState
    url: str

    @property
    def css(self) -> str:
        return STATE_SV[self.state][0]

    @property
    def symbol(self) -> str:
        return STATE_SV[self.state][1]

    @property
    def word(self) -> str:
        return STATE_SV[self.state][2]


@dataclass(frozen=True, slots=True)
class TodayQuestionnaires:
    slots: tuple[TodaySlot, ...]
    may_answer: bool  # the patient's own device; a relative sees the list only

    @property
    def due(self) -> TodaySlot | None:
        """The one to answer now (the earliest due)."""
        return next((s for s in self.slots if s.state is SlotState.DUE), None)


async def today_questionnaires(
    conn: psycopg.AsyncConnection[Any], viewer: PatientViewer, now: datetime, *, zone: tzinfo | None = None
) -> TodayQuestionnaires:
    """Today's scheduled questionnaires of the viewer's patient, for the Idag screen (its `TodayPart`
    "questionnaires": the partial reads the result as `questionnaires`). Runs in the caller's logged
    read (`patient_read(..., PatientAction.VIEW_TODAY, ...)`). "Today" is the site's day
    (HEMMA_SITE_TIMEZONE) unless `zone` says otherwise, whatever zone `now` is given in."""
    local = zone or get_settings().site_zone()
    slots = await run_async(conn, due_today(viewer.patient_id, now, local))
    return TodayQuestionnaires(
        tuple(
            TodaySlot(
                s.questionnaire,
                s.title,
                f"{s.at.astimezone(local):%H:%M}",
                s.state,
                f"/p/fragor/{s.questionnaire}",
            )
            for s in slots
        ),
        may_answer=viewer.may(PatientAction.ANSWER_QUESTIONNAIRE),
    )


@router.get("/p/fragment/dagens-fragor", response_class=HTMLResponse)
async def today_fragment(
    request: Request, viewer: Annotated[PatientViewer, Depends(page_viewer)]
) -> Response:
    """The live region of `_today_questionnaires.html` (patient.js refreshes it)."""
    zone = request.app.state.renderer.zone
    async with patient_read(request, viewer, PatientAction.VIEW_TODAY, "today:questionnaires") as conn:
        today = await today_questionnaires(conn, viewer, datetime.now(zone), zone=zone)
    return render_patient(request, "patient_app/_today_questionnaires.html", viewer, questionnaires=today)
