"""The patient app's Kontakta oss and Meddelanden screens, the Idag page's self-care card, and the staff
API of the conversation (issue 10).

Patient screens (dashboard.patient_realm: the device cookie, CSRF on every form, each read logged):

* `/p/kontakt`: "Kontakta mig" in one calm page: four reasons, an optional line, one big button; above
  it the state of the patient's latest requests in words (care.contact.contact_state_sv), a live
  region refreshed from `/p/fragment/kontakt`, so the nurse taking it changes the screen by itself.
* `/p/meddelanden`: the thread with the team, newest at the bottom, live from
  `/p/fragment/meddelanden`; showing it marks the team's messages read (care.messages).
* `today_self_care`: the loader the Idag page calls for the agreed self-care instruction of a live
  alert (care.self_care.live_instructions), rendered by `patient_app/_today_self_care.html`.

A refused form comes back as the same page with the patient's text and what they wrote kept, never
as an error page that loses their words. Staff routes (JSON, the session and its CSRF header) write to
the patient and set or clear self-care instructions; the record's section (dashboard
.record_conversation) uses them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from pydantic import AfterValidator, BaseModel, Field

from care import messages, self_care
from care.access_log import DASHBOARD
from care.acting import Origin
from care.contact import REASONS_SV, contact_state_sv, request_from_app, requests_for_patient
from care.patient_access import PatientViewer
from care.patient_today import when_sv
from care.permissions import Action, PatientAction
from dashboard.answers import refusals
from dashboard.auth import api_staff_with_csrf
from dashboard.bodies import RequestBody
from dashboard.care_orders import Order, carry_out
from dashboard.formatting import display_zone
from dashboard.inputs import BoundedJSONRoute, PatientId, check_text, swedish
from dashboard.model import StaffUser
from dashboard.patient_realm import (
    PatientRefused,
    client_address,
    page_viewer,
    patient_read,
    render_patient,
    require_form_csrf,
    run_patient_command,
)
from storage.steps import run_async

if TYPE_CHECKING:
    import psycopg

# A form of the patient's: a 1000-character message, URL-encoded, with its hidden fields, and room to
# spare. Anything larger is refused while it is read (413, the patient's "för mycket text"), before
# the device is even looked up: the form is parsed first.
MAX_FORM_BYTES = 64 * 1024


class _BoundedFormRequest(Request):
    async def stream(self) -> AsyncGenerator[bytes, None]:
        declared = self.headers.get("content-length", "")
        if declared.isdigit() and (len(declared) > 9 or int(declared) > MAX_FORM_BYTES):
            raise HTTPException(status_code=413)
        size = 0
        async for chunk in super().stream():
            size += len(chunk)
            if size > MAX_FORM_BYTES:
                raise HTTPException(status_code=413)
            yield chunk


class BoundedFormRoute(APIRoute):
    """A route whose form is read up to MAX_FORM_BYTES."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            return await handler(_BoundedFormRequest(request.scope, request.receive))

        return bounded


# The patient's pages are not in the staff API's schema; the staff routes are (BoundedJSONRoute bodies).
router = APIRouter(route_class=BoundedFormRoute)
staff_api = APIRouter(route_class=BoundedJSONRoute)

Viewer = Annotated[PatientViewer, Depends(page_viewer)]
Acting = Annotated[StaffUser, Depends(api_staff_with_csrf)]
# A form field as it comes: the care command judges it (and answers in the patient's words).
Field_ = Annotated[str | None, Form()]
STALE_FORM = "Sidan är för gammal. Ladda om den och försök igen."


# --- times as the patient reads them ---------------------------------------------------------------


def patient_time(at: datetime | None, now: datetime) -> str:
    """ "idag 14:05", "igår 09:10", "3 mars 14:05" in the site's time (care.patient_today.when_sv)."""
    return "" if at is None else when_sv(at, now, display_zone())


# --- Kontakta mig ------------------------------------------------------------------------------------


async def _contact_page(
    request: Request, viewer: PatientViewer, template: str, status: int = 200, **context: Any
) -> Response:
    async with patient_read(request, viewer, PatientAction.REQUEST_CONTACT, "kontakt") as conn:
        requests = await run_async(conn, requests_for_patient(viewer.patient_id))
    return render_patient(
        request, template, viewer, status, requests=requests, state_sv=contact_state_sv,
        when=patient_time, reasons=REASONS_SV, event_id=uuid.uuid4(), **context,
    )  # fmt: skip


@router.get("/p/kontakt", include_in_schema=False)
async def contact_page(request: Request, viewer: Viewer, skickat: str | None = None) -> Response:
    return await _contact_page(request, viewer, "patient_app/contact.html", sent=skickat is not None)


@router.get("/p/fragment/kontakt", include_in_schema=False)
async def contact_fragment(request: Request, viewer: Viewer) -> Response:
    return await _contact_page(request, viewer, "patient_app/contact_state.html")


@router.post("/p/kontakt", include_in_schema=False)
async def contact_send(
    request: Request,
    viewer: Viewer,
    csrf: Field_ = None,
    reason: Field_ = None,
    message: Field_ = None,
    event_id: Field_ = None,
) -> Response:
    require_form_csrf(request, csrf)
    try:
        key = _form_key(event_id)
        async with request.app.state.pool.connection() as conn, conn.transaction():
            await run_patient_command(
                conn,
                request_from_app(viewer, reason=reason, message=message, event_id=key,
                                 client_address=client_address(request)),
            )  # fmt: skip
    except PatientRefused as refused:
        return await _contact_page(
            request, viewer, "patient_app/contact.html", refused.status, error=refused.message,
            chosen=reason, typed=message or "",
        )  # fmt: skip
    return RedirectResponse("/p/kontakt?skickat=1#skickat", status_code=303)


def _form_key(value: str | None) -> uuid.UUID:
    """The form's own key (a hidden field): a resent form is the same request or message."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise PatientRefused(422, "form key", STALE_FORM) from None


# --- Meddelanden -------------------------------------------------------------------------------------


async def _messages_page(
    request: Request, viewer: PatientViewer, template: str, status: int = 200, **context: Any
) -> Response:
    """The thread, read and logged in one transaction that also marks the team's messages read: what
    the app has shown the patient has been read."""
    async with patient_read(request, viewer, PatientAction.READ_MESSAGES, "meddelanden") as conn:
        thread = await run_async(conn, messages.thread(viewer.patient_id))
        await run_async(conn, messages.mark_read_by_patient(viewer))
    return render_patient(
        request, template, viewer, status, thread=thread, when=patient_time, message_id=uuid.uuid4(),
        maximum=messages.MAX_BODY_LENGTH, **context,
    )  # fmt: skip


@router.get("/p/meddelanden", include_in_schema=False)
async def messages_page(request: Request, viewer: Viewer) -> Response:
    return await _messages_page(request, viewer, "patient_app/messages.html")


@router.get("/p/fragment/meddelanden", include_in_schema=False)
async def messages_fragment(request: Request, viewer: Viewer) -> Response:
    return await _messages_page(request, viewer, "patient_app/messages_thread.html")


@router.post("/p/meddelanden", include_in_schema=False)
async def messages_send(
    request: Request, viewer: Viewer, csrf: Field_ = None, body: Field_ = None, message_id: Field_ = None
) -> Response:
    require_form_csrf(request, csrf)
    try:
        key = _form_key(message_id)
        async with request.app.state.pool.connection() as conn, conn.transaction():
            await run_patient_command(
                conn,
                messages.send_from_patient(viewer, body or "", key, client_address=client_address(request)),
            )
    except PatientRefused as refused:
        return await _messages_page(
            request, viewer, "patient_app/messages.html", refused.status, error=refused.message,
            typed=body or "",
        )  # fmt: skip
    return RedirectResponse("/p/meddelanden#senaste", status_code=303)


# --- the Idag page's self-care card ------------------------------------------------------------------


async def today_self_care(
    conn: psycopg.AsyncConnection[Any], viewer: PatientViewer, now: datetime
) -> list[self_care.LiveInstruction]:
    """The agreed self-care instructions of the patient's live alerts, for the Idag page: call it on the
    connection of Idag's logged read (`patient_read(..., PatientAction.VIEW_TODAY, ...)`), and include
    `patient_app/_today_self_care.html` with the result as `self_care`. Records each alert's first
    showing (care.self_care). Relatives see it too (VIEW_TODAY)."""
    return await run_async(
        conn, self_care.live_instructions(viewer.patient_id, device_id=viewer.device_id, now=now)
    )


# --- staff: write to the patient, set the agreed self-care ------------------------------------------

_REFUSALS = refusals(401, 403, 404, 409, 413, 422)
# Generous bounds on shape: the care commands judge the text (length after NFC, characters).
StaffText = Annotated[
    str, Field(max_length=4000), AfterValidator(check_text), swedish("Skriv texten", status=422)
]
RuleName = Annotated[str, Field(max_length=80), AfterValidator(check_text), swedish("Välj en larmregel")]


class StaffMessageRequest(RequestBody):
    """A message to the patient; `message_id` is the form's key (the same id twice stores one)."""

    body: StaffText
    message_id: Annotated[uuid.UUID, swedish("Meddelandet saknar id; ladda om sidan")]


class SelfCareRequest(RequestBody):
    rule: RuleName
    text: StaffText


class SelfCareClearRequest(RequestBody):
    rule: RuleName


class MessageSentAnswer(BaseModel):
    id: int
    sent_at: datetime
    created: bool


class MessageSent(BaseModel):
    message: MessageSentAnswer


class SelfCareAnswer(BaseModel):
    rule: str
    at: datetime


class SelfCareChanged(BaseModel):
    self_care: SelfCareAnswer


def _origin(request: Request) -> Origin:
    return Origin(DASHBOARD, client_address=client_address(request))


async def _carry_out(request: Request, order: Order[Any]) -> JSONResponse:
    async with request.app.state.pool.connection() as conn:
        answer = await carry_out(conn, order)
    request.app.state.metrics.care_orders[order.action.value] += 1
    return JSONResponse(answer)


@staff_api.post(
    "/api/patients/{patient_id}/messages",
    name="send_patient_message",
    response_model=MessageSent,
    responses=_REFUSALS,
)
async def send_patient_message(
    request: Request, patient_id: PatientId, staff: Acting, body: StaffMessageRequest
) -> JSONResponse:
    """Write to the patient (and the relatives the patient has let in): the app shows it in Meddelanden."""
    steps = messages.send_from_staff(patient_id=patient_id, body=body.body, message_id=body.message_id,
                                     by=staff.username, origin=_origin(request))  # fmt: skip
    return await _carry_out(request, Order(Action.SEND_PATIENT_MESSAGE, patient_id, staff.id, steps,
                                           lambda done: {"message": {
                                               "id": done.id, "sent_at": done.sent_at.isoformat(),
                                               "created": done.created}}))  # fmt: skip


@staff_api.post(
    "/api/patients/{patient_id}/self-care",
    name="set_self_care",
    response_model=SelfCareChanged,
    responses=_REFUSALS,
)
async def set_self_care(
    request: Request, patient_id: PatientId, staff: Acting, body: SelfCareRequest
) -> JSONResponse:
    """The agreed self-care action for one alert rule: the app shows it while an alert of the rule is live."""
    steps = self_care.set_instruction(patient_id=patient_id, rule=body.rule, text=body.text,
                                      by=staff.username, origin=_origin(request))  # fmt: skip
    return await _carry_out(request, Order(Action.SET_SELF_CARE, patient_id, staff.id, steps, _self_care))


@staff_api.post(
    "/api/patients/{patient_id}/self-care/clear",
    name="clear_self_care",
    response_model=SelfCareChanged,
    responses=_REFUSALS,
)
async def clear_self_care(
    request: Request, patient_id: PatientId, staff: Acting, body: SelfCareClearRequest
) -> JSONResponse:
    """Remove the instruction for a rule (what the app has shown stays on the record)."""
    steps = self_care.clear_instruction(patient_id=patient_id, rule=body.rule, by=staff.username,
                                        origin=_origin(request))  # fmt: skip
    return await _carry_out(request, Order(Action.SET_SELF_CARE, patient_id, staff.id, steps, _self_care))


def _self_care(done: self_care.InstructionSet) -> dict[str, Any]:
    return {"self_care": {"rule": done.rule, "at": done.set_at.isoformat()}}


router.include_router(staff_api)
