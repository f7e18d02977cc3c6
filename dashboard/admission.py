"""Admission on the dashboard (issue 11): `/wards/{id}/admit` and the ward's settings page.

The admission page offers the ward's pathways (each with the plan it lays down at its suggested level,
care.admission.template_plan), the free kits and the ward's inclusion checklist
(care.admission.admission_choices), and posts to the same command as `hemma patient admit`
(care.admission.admit). On success the browser goes to the new patient's record; a refusal shows the
form again with the Swedish text and the field it names (dashboard.refusals), the fields as typed,
except the personal number, which is never sent back.

`/wards/{id}/settings` shows the ward's inclusion criteria to everyone with access to the ward, and to
physicians a form that replaces them (care.inclusion.set_criteria, one item per line).

Neither page shows patient data before the admission, so neither writes access-log rows; the admission
writes its own (`admit_patient`, in the command's transaction), and the record it leads to its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from care.acting import execute_async
from care.admission import (
    MAX_CARE_REASON,
    MAX_NAME_LENGTH,
    AdmissionChoices,
    admission_choices,
    admit,
    template_plan,
)
from care.care_levels import LEVELS, MAX_REASON_LENGTH, CareLevel, LevelMeaning
from care.inclusion import MAX_CRITERIA, MAX_ITEM_LENGTH, MAX_OVERRIDE_REASON, criteria, set_criteria
from care.pathways import Pathway
from care.permissions import Action, refusal_sv
from care.questionnaires import catalogue
from care.refusals import Refused
from core.vitals import VITALS
from dashboard.auth import page_staff
from dashboard.errors import InvalidInput
from dashboard.inputs import TEXT_MESSAGE, WardId, is_clean_text
from dashboard.model import StaffUser
from dashboard.pages import error_page, render
from dashboard.queries import fetch_ward
from dashboard.refusals import action_error
from dashboard.staff_forms import form_origin, run_form_command
from storage.steps import run_async

router = APIRouter(include_in_schema=False)

_NO_WARD = "Avdelningen finns inte."
_NO_ACCESS = "Du har inte behörighet till den här avdelningen."
# A form's text field, as far as the framework goes: care.admission refuses what is too long for the field
# in its own words, and the form is shown again (a framework refusal would lose what was typed).
_FIELD_MAX = 20_000
# The most checklist ticks a form may carry (more is a forged form, refused as a changed list).
_MAX_TICKS = 2 * MAX_CRITERIA


@dataclass(frozen=True, slots=True)
class PathwayOffer:
    """A pathway as the form shows it: what it lays down at its suggested level."""

    pathway: Pathway
    suggested: LevelMeaning
    plan: tuple[tuple[str, int], ...]  # (vital's Swedish name, every minutes)
    questionnaires: tuple[tuple[str, tuple[str, ...]], ...]  # (title, times)


def _offer(chosen: Pathway) -> PathwayOffer:
    suggested = LEVELS[CareLevel(chosen.suggested_level)]
    titles = {q.id: q.title for q in catalogue().values()}
    return PathwayOffer(
        chosen,
        suggested,
        tuple((VITALS[v].display, m) for v, m in template_plan(chosen, suggested)),
        tuple((titles.get(q.questionnaire, q.questionnaire), q.times) for q in chosen.questionnaires),
    )


async def _ward_or_error(request: Request, staff: StaffUser, ward_id: str) -> tuple[Any, Response | None]:
    if not staff.can_see(ward_id):
        return None, error_page(request, staff, 403, _NO_ACCESS)
    async with request.app.state.pool.connection() as conn:
        ward = await fetch_ward(conn, ward_id)
    if ward is None:
        return None, error_page(request, staff, 404, _NO_WARD)
    return ward, None


async def _admission_page(
    request: Request, staff: StaffUser, ward: Any, *, status: int = 200, **context: Any
) -> Response:
    async with request.app.state.pool.connection() as conn:
        choices: AdmissionChoices = await run_async(conn, admission_choices(ward.id))
    return render(
        request, "admission.html", staff, status, ward=ward, choices=choices,
        offers=tuple(_offer(p) for p in choices.pathways), levels=tuple(LEVELS.values()),
        may_set_level=staff.may(Action.SET_CARE_LEVEL),
        limits={"name": MAX_NAME_LENGTH, "care_reason": MAX_CARE_REASON, "override": MAX_OVERRIDE_REASON,
                "level_reason": MAX_REASON_LENGTH},
        form=context.pop("form", {}), **context,
    )  # fmt: skip


@router.get("/wards/{ward_id}/admit", response_class=HTMLResponse)
async def admission_form(
    request: Request, ward_id: WardId, staff: Annotated[StaffUser, Depends(page_staff)]
) -> Response:
    ward, refused = await _ward_or_error(request, staff, ward_id)
    if refused is not None:
        return refused
    if not staff.may(Action.ADMIT_PATIENT):
        return error_page(request, staff, 403, refusal_sv(Action.ADMIT_PATIENT))
    return await _admission_page(request, staff, ward)


@router.post("/wards/{ward_id}/admit", response_class=HTMLResponse)
async def admission_post(
    request: Request,
    ward_id: WardId,
    staff: Annotated[StaffUser, Depends(page_staff)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    display_name: Annotated[str, Form(max_length=_FIELD_MAX)] = "",
    personal_number: Annotated[str, Form(max_length=_FIELD_MAX)] = "",
    care_reason: Annotated[str, Form(max_length=_FIELD_MAX)] = "",
    pathway: Annotated[str, Form(max_length=_FIELD_MAX)] = "",
    gateway_id: Annotated[str, Form(max_length=_FIELD_MAX)] = "",
    confirmed: Annotated[list[str] | None, Form()] = None,
    override_reason: Annotated[str, Form(max_length=_FIELD_MAX)] = "",
    level: Annotated[str, Form(max_length=_FIELD_MAX)] = "",
    level_reason: Annotated[str, Form(max_length=_FIELD_MAX)] = "",
) -> Response:
    origin = form_origin(request, csrf)
    ward, refused = await _ward_or_error(request, staff, ward_id)
    if refused is not None:
        return refused
    ticks = list(confirmed or [])
    if len(ticks) > _MAX_TICKS or any(len(t) > MAX_ITEM_LENGTH for t in ticks):
        ticks = ["\x00"]  # a forged list: the command refuses it as a changed checklist
    # Control or direction-override characters: refused here, so the form can name the field (the
    # command's own refusal, care.messages.clean_text's, names none).
    typed_texts = {"display_name": display_name, "personal_number": personal_number,
                   "care_reason": care_reason, "override_reason": override_reason,
                   "level_reason": level_reason}  # fmt: skip
    unclean = next((name for name, text in typed_texts.items() if not is_clean_text(text)), None)
    if unclean is not None:  # the field shown empty again; the level's reason is the form's "reason"
        typed = _typed(display_name, care_reason, pathway, gateway_id, ticks, override_reason, level,
                       level_reason) | {unclean: ""}  # fmt: skip
        named = "reason" if unclean == "level_reason" else unclean
        return await _admission_page(
            request, staff, ward, status=422, error=TEXT_MESSAGE, error_field=named, form=typed
        )
    steps = admit(
        ward_id=ward_id, display_name=display_name, personal_number=personal_number,
        care_reason=care_reason, pathway_id=pathway, gateway_id=gateway_id, confirmed=ticks,
        override_reason=override_reason or None, level=level or None, level_reason=level_reason or None,
        by=staff.username, origin=origin,
    )  # fmt: skip
    try:
        async with request.app.state.pool.connection() as conn:
            done = await execute_async(conn, steps)
    except Refused as exc:
        error = action_error(exc)
        if error.status == 403:
            return error_page(request, staff, 403, error.message)
        typed = _typed(display_name, care_reason, pathway, gateway_id, ticks, override_reason, level,
                       level_reason)  # fmt: skip
        field = error.field if isinstance(error, InvalidInput) else _FIELD_OF.get(exc.code.value)
        return await _admission_page(
            request, staff, ward, status=error.status, error=error.message, error_field=field, form=typed
        )
    return RedirectResponse(f"/patients/{done.patient_id}", status_code=303)


def _typed(
    display_name: str, care_reason: str, pathway: str, gateway_id: str, ticks: list[str],
    override_reason: str, level: str, level_reason: str,
) -> dict[str, Any]:  # fmt: skip
    """The form again, as typed: never the personal number (patient data; it is typed again)."""
    return {"display_name": display_name, "care_reason": care_reason, "pathway": pathway,
            "gateway_id": gateway_id, "confirmed": set(ticks), "override_reason": override_reason,
            "level": level, "level_reason": level_reason}  # fmt: skip


# Refusals whose HTTP mapping names no field (409s) still point at one on this form.
_FIELD_OF = {
    "kit_lent": "gateway_id",
    "kit_not_offered": "gateway_id",
    "personal_number_enrolled": "personal_number",
    "personal_number_discharged": "personal_number",
    "inclusion_changed": "confirmed",
}


# --- the ward's settings: the inclusion checklist ----------------------------------------------------------


@router.get("/wards/{ward_id}/settings", response_class=HTMLResponse)
async def ward_settings(
    request: Request, ward_id: WardId, staff: Annotated[StaffUser, Depends(page_staff)]
) -> Response:
    ward, refused = await _ward_or_error(request, staff, ward_id)
    if refused is not None:
        return refused
    async with request.app.state.pool.connection() as conn:
        items = await run_async(conn, criteria(ward_id))
    return render(
        request, "ward_settings.html", staff, ward=ward, items=items,
        may_edit=staff.may(Action.SET_INCLUSION_CRITERIA), max_items=MAX_CRITERIA, max_item=MAX_ITEM_LENGTH,
    )  # fmt: skip


@router.post("/wards/{ward_id}/settings/criteria")
async def ward_criteria_post(
    request: Request,
    ward_id: WardId,
    staff: Annotated[StaffUser, Depends(page_staff)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    items: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    form_origin(request, csrf)
    steps = set_criteria(ward_id=ward_id, items=items.splitlines(), by=staff.username)
    await run_form_command(request, steps)
    return RedirectResponse(f"/wards/{ward_id}/settings#kriterier", status_code=303)
