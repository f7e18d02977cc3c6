"""The ward's escalation ladder on the dashboard (issue 12): `/wards/{id}/eskalering`.

Everyone with access to the ward reads the ladder in force (care.escalation_ladder.ladder): its steps,
the minutes each has, the ward's phone number that receivers call back on, and who set it when.
Physicians of the ward (Action.SET_ESCALATION_LADDER) get a form of MAX_STEPS rows (who, which
physician, minutes) that replaces it through care.escalation_ladder.set_ladder, the same command as
`hemma ward ladder set`; empty rows are left out, and no rows at all means no ladder (the ward's alerts
go to the on-call rota as before). The form's values are matched against the known targets and the
ward's physicians, so nothing typed reaches the database but the minutes and the phone number, which
the command checks. Not patient data: no access-log row for the read; the change writes its own.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from care.escalation_ladder import (
    MAX_MINUTES,
    MAX_STEPS,
    TARGETS_SV,
    StepInput,
    Target,
    ladder,
    set_ladder,
    ward_physicians,
)
from care.permissions import Action
from care.refusals import RefusalCode, Refused
from dashboard.auth import page_staff
from dashboard.inputs import WardId
from dashboard.model import StaffUser
from dashboard.pages import error_page, render
from dashboard.queries import fetch_ward
from dashboard.refusals import action_error
from dashboard.staff_forms import form_origin, run_form_command
from storage.steps import run_async

router = APIRouter(include_in_schema=False)

_NO_WARD = "Avdelningen finns inte."
_NO_ACCESS = "Du har inte behörighet till den här avdelningen."
_MAX_FIELD = 200  # longer than any username, target or phone number: a forged form


@router.get("/wards/{ward_id}/eskalering", response_class=HTMLResponse)
async def ladder_page(
    request: Request, ward_id: WardId, staff: Annotated[StaffUser, Depends(page_staff)], sparat: str = ""
) -> Response:
    if not staff.can_see(ward_id):
        return error_page(request, staff, 403, _NO_ACCESS)
    async with request.app.state.pool.connection() as conn:
        ward = await fetch_ward(conn, ward_id)
        if ward is None:
            return error_page(request, staff, 404, _NO_WARD)
        current = await run_async(conn, ladder(ward_id))
        physicians = await run_async(conn, ward_physicians(ward_id))
    steps = current.steps if current else ()
    rows = [steps[i] if i < len(steps) else None for i in range(MAX_STEPS)]
    return render(
        request, "ward_ladder.html", staff, ward=ward, ladder=current, steps=steps, rows=rows,
        physicians=physicians, targets=TARGETS_SV, may_edit=staff.may(Action.SET_ESCALATION_LADDER),
        max_minutes=MAX_MINUTES, saved=sparat == "1",
    )  # fmt: skip


def _steps_from_form(form: dict[str, str]) -> list[StepInput]:
    steps = []
    for n in range(1, MAX_STEPS + 1):
        target = form.get(f"target_{n}", "").strip()
        if not target:
            continue
        if target not in Target._value2member_map_:
            raise Refused(RefusalCode.LADDER_TARGET, target="?")
        minutes = form.get(f"minutes_{n}", "").strip()
        if not (minutes.isascii() and minutes.isdigit()) or len(minutes) > 4:
            raise Refused(RefusalCode.LADDER_STEPS, maximum=MAX_STEPS, max_minutes=MAX_MINUTES)
        physician = form.get(f"physician_{n}", "").strip() if target == Target.WARD_PHYSICIAN else ""
        steps.append(StepInput(target, int(minutes), physician or None))
    return steps


@router.post("/wards/{ward_id}/eskalering")
async def ladder_post(
    request: Request, ward_id: WardId, staff: Annotated[StaffUser, Depends(page_staff)]
) -> Response:
    raw = await request.form()
    form = {k: v for k, v in raw.items() if isinstance(v, str) and len(v) <= _MAX_FIELD}
    origin = form_origin(request, form.get("csrf", ""))
    try:
        steps = _steps_from_form(form)
    except Refused as exc:
        raise action_error(exc) from None
    command = set_ladder(
        ward_id=ward_id, steps=steps, phone=form.get("phone"), by=staff.username, origin=origin
    )
    await run_form_command(request, command)
    return RedirectResponse(f"/wards/{ward_id}/eskalering?sparat=1#trappa", status_code=303)
