"""The kits page `/kits` and the record's lend/take-back forms (issue 11, care.kit_assignments).

`/kits` lists the kits the member of staff may see (an admin every kit; staff the kits last lent in
their wards and every kit that can be lent) with their state, since when, who holds them and their
recent history; patients are named only for the reader's wards, each shown patient one access-log
row (care.kit_assignments.list_kits writes them in the page's transaction). Forms offer exactly the
transitions care.kit_states allows from the kit's state and the role may do (care.permissions).

Every form is a plain HTML post with the session's `csrf` field running the same command as
`hemma kit ...`; a refusal is the error page with the Swedish text the API would give.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import AfterValidator

from care.access_log import DASHBOARD
from care.acting import Origin, execute_async
from care.kit_assignments import (
    KitListing,
    available_kits,
    back_in_stock,
    lend,
    list_kits,
    mark_cleaned,
    register_kit,
    take_back,
)
from care.kit_states import STATES_SV, KitEvent, events_allowed
from care.permissions import EquipmentAction
from care.refusals import Refused
from dashboard.auth import page_staff
from dashboard.errors import InvalidInput
from dashboard.inputs import MAX_ID_LENGTH, PatientId, check_text, swedish
from dashboard.model import StaffUser
from dashboard.refusals import action_error
from dashboard.staff_forms import form_origin, run_form_command
from storage.steps import run_async

if TYPE_CHECKING:
    import psycopg

router = APIRouter(include_in_schema=False)

# A kit's id in a path: care.kit_assignments checks its form and answers "no such kit" by code.
KitId = Annotated[
    str,
    Path(max_length=MAX_ID_LENGTH),
    AfterValidator(check_text),
    swedish("Hemlådan finns inte", status=404),
]
_KIT_FIELD = Annotated[str, Form(max_length=MAX_ID_LENGTH)]

END_REASONS_SV = {"taken_back": "Tillbakalämnad", "discharged": "Utskriven"}


@dataclass(frozen=True, slots=True)
class KitRow:
    kit: KitListing
    state_sv: str
    actions: tuple[KitEvent, ...]  # what this member of staff may do with it from here


def _actions(staff: StaffUser, kit: KitListing) -> tuple[KitEvent, ...]:
    allowed: list[KitEvent] = []
    for event in events_allowed(kit.state):
        if event is KitEvent.LEND:
            continue  # lent from the patient's record (or the admission), where the patient is chosen
        if event is KitEvent.TAKE_BACK:
            if staff.may(EquipmentAction.ASSIGN_KIT) and kit.holder is not None and kit.holder.patient_id:
                allowed.append(event)
        elif staff.may(EquipmentAction.MANAGE_KIT_STOCK):
            allowed.append(event)
    return tuple(allowed)


@router.get("/kits", response_class=HTMLResponse)
async def kits_page(request: Request, staff: Annotated[StaffUser, Depends(page_staff)]) -> Response:
    from dashboard.pages import render

    origin = Origin(DASHBOARD, client_address=request.client.host if request.client else None)
    async with request.app.state.pool.connection() as conn:
        try:
            kits = await execute_async(conn, list_kits(by=staff.username, origin=origin))
        except Refused as exc:  # a partner or log reviewer (issue 12): a 403 page, never a 500
            raise action_error(exc) from None
    named = {a.patient_id for k in kits for a in k.history if a.patient_id is not None}
    request.app.state.metrics.access_log_rows += len(named)
    rows = [KitRow(k, STATES_SV[k.state], _actions(staff, k)) for k in kits]
    return render(request, "kits.html", staff, rows=rows, end_reasons=END_REASONS_SV,
                  may_register=staff.may(EquipmentAction.MANAGE_KIT_STOCK))  # fmt: skip


def _to_kits() -> Response:
    return RedirectResponse("/kits", status_code=303)


@router.post("/kits/{gateway_id}/cleaned")
async def cleaned_form(
    request: Request,
    gateway_id: KitId,
    staff: Annotated[StaffUser, Depends(page_staff)],
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    form_origin(request, csrf)
    await run_form_command(request, mark_cleaned(gateway_id=gateway_id, by=staff.username))
    return _to_kits()


@router.post("/kits/{gateway_id}/stock")
async def stock_form(
    request: Request,
    gateway_id: KitId,
    staff: Annotated[StaffUser, Depends(page_staff)],
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    form_origin(request, csrf)
    await run_form_command(request, back_in_stock(gateway_id=gateway_id, by=staff.username))
    return _to_kits()


@router.post("/kits/{gateway_id}/take-back")
async def take_back_kit_form(
    request: Request,
    gateway_id: KitId,
    staff: Annotated[StaffUser, Depends(page_staff)],
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    origin = form_origin(request, csrf)
    steps = take_back(gateway_id=gateway_id, by=staff.username, origin=origin)
    await run_form_command(request, steps)
    return _to_kits()


@router.post("/kits")
async def register_form(
    request: Request,
    staff: Annotated[StaffUser, Depends(page_staff)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    gateway_id: _KIT_FIELD = "",
) -> Response:
    form_origin(request, csrf)
    await run_form_command(request, register_kit(gateway_id=gateway_id.strip(), by=staff.username))
    return _to_kits()


# --- the record's kit: take it back, or lend one to a patient who has none ------------------------


@dataclass(frozen=True, slots=True)
class KitLendingSection:
    patient_id: uuid.UUID
    holds_kit: bool
    may_take_back: bool
    may_lend: bool
    available: tuple[str, ...]


async def load(conn: psycopg.AsyncConnection[Any], staff: StaffUser, patient_id: uuid.UUID) -> Any:
    """The record's lend/take-back forms (read after the record's access-log row; kit ids only)."""
    cur = await conn.execute(
        "SELECT p.discharged_at IS NULL, EXISTS (SELECT 1 FROM kit_assignments a WHERE a.patient_id = p.id"
        " AND a.ends_at IS NULL) FROM patients p WHERE p.id = %s",
        (patient_id,),
    )
    row = await cur.fetchone()
    if row is None or not row[0] or not staff.may(EquipmentAction.ASSIGN_KIT):
        return None
    holds = bool(row[1])
    available = () if holds else await run_async(conn, available_kits())
    return KitLendingSection(patient_id, holds, may_take_back=holds, may_lend=not holds, available=available)


def _to_record(patient_id: uuid.UUID) -> Response:
    return RedirectResponse(f"/patients/{patient_id}#devices", status_code=303)


@router.post("/patients/{patient_id}/kit/take-back")
async def record_take_back_form(
    request: Request,
    patient_id: PatientId,
    staff: Annotated[StaffUser, Depends(page_staff)],
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    origin = form_origin(request, csrf)
    await run_form_command(request, take_back(patient_id=patient_id, by=staff.username, origin=origin))
    return _to_record(patient_id)


@router.post("/patients/{patient_id}/kit/lend")
async def record_lend_form(
    request: Request,
    patient_id: PatientId,
    staff: Annotated[StaffUser, Depends(page_staff)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    gateway_id: _KIT_FIELD = "",
) -> Response:
    origin = form_origin(request, csrf)
    if not gateway_id.strip():
        raise InvalidInput("Välj en hemlåda", "gateway_id")
    steps = lend(gateway_id=gateway_id.strip(), patient_id=patient_id, by=staff.username, origin=origin)
    await run_form_command(request, steps)
    return _to_record(patient_id)
