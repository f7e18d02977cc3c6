"""The partner realm (issue 12): a municipal home-care nurse or a GP, logged in at the same /login,
reads the patients granted to them and nothing else.

`/partner` lists the patients with a grant in force for them now; `/partner/patients/{id}` is the
focused, phone-sized view of one (dashboard.partner_view); `POST /partner/patients/{id}/kontakt` writes
to the ward when the grant's purpose allows contact (care.sharing.write_to_ward). Whether the partner
may read is care.sharing's one decision (grant_in_force): before the grant starts, after it ends,
revoked, blocked (spärr), another patient, a forged id: the same 404 with the same words, and no row
read. Every read writes one access-log row per patient shown (entry point PARTNER, action
PARTNER_VIEW, the partner's account and the grant; the database adds their care provider).

Staff roles get 403 here; a partner gets 403 on the ward's pages (care.permissions.may_see_ward).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from care.access_log import PARTNER, PARTNER_VIEW, AccessRecord, write_async
from care.acting import Origin
from care.permissions import Role
from care.sharing import MAX_PARTNER_NOTE, grant_in_force
from dashboard.auth import csrf_ok, page_staff
from dashboard.errors import OrderRefused
from dashboard.formatting import format_clock
from dashboard.inputs import PatientId
from dashboard.model import StaffUser
from dashboard.pages import client_address, error_page, render
from dashboard.partner_view import granted_patients, patient_view
from dashboard.staff_forms import StaleForm, run_form_command
from storage.steps import run_async

router = APIRouter(include_in_schema=False)

NOT_FOUND = "Patienten finns inte"  # dashboard.inputs.PatientId's words for an id that is no uuid


async def partner_staff(staff: Annotated[StaffUser, Depends(page_staff)]) -> StaffUser:
    """The logged-in partner; any other role is refused before anything is read."""
    if staff.role != Role.PARTNER:
        raise OrderRefused(403, "refused: partner realm", "Sidorna är för samverkanspartner.")
    return staff


Partner = Annotated[StaffUser, Depends(partner_staff)]


def until_text(at: datetime, now: datetime, zone: object) -> str:
    """ "20 dec 16:00" (today: "i dag 16:00"), the end of a grant as a partner reads it."""
    text = format_clock(at, now, zone)  # type: ignore[arg-type]
    return f"i dag {text}" if len(text) == 5 else text


def _log(
    request: Request, partner: StaffUser, patient_id: object, grant_id: int, context: str
) -> AccessRecord:
    return AccessRecord(
        staff_user_id=partner.id, username=partner.username, patient_id=patient_id,  # type: ignore[arg-type]
        action=PARTNER_VIEW, context=context, entry_point=PARTNER, client_address=client_address(request),
        partner_grant_id=grant_id,
    )  # fmt: skip


@router.get("/partner", response_class=HTMLResponse)
async def partner_list(request: Request, partner: Partner) -> Response:
    now = datetime.now(UTC)
    async with request.app.state.pool.connection() as conn, conn.transaction():
        patients = await granted_patients(conn, partner.id, now)
        request.app.state.metrics.access_log_rows += await write_async(
            conn, [_log(request, partner, p.patient_id, p.grant_id, "partner list") for p in patients]
        )
    zone = request.app.state.settings.site_zone()
    return render(
        request, "partner_list.html", partner, patients=patients,
        until={p.grant_id: until_text(p.valid_until, now, zone) for p in patients},
    )  # fmt: skip


@router.get("/partner/patients/{patient_id}", response_class=HTMLResponse)
async def partner_patient(
    request: Request, patient_id: PatientId, partner: Partner, skickat: int = 0
) -> Response:
    now = datetime.now(UTC)
    async with request.app.state.pool.connection() as conn, conn.transaction():
        grant = await run_async(conn, grant_in_force(staff_user_id=partner.id, patient_id=patient_id, at=now))
        view = None
        if grant is not None:
            view = await patient_view(conn, grant, partner.id, partner.care_provider_id)
        if grant is None or view is None:
            return error_page(request, partner, 404, NOT_FOUND)
        request.app.state.metrics.access_log_rows += await write_async(
            conn, [_log(request, partner, patient_id, grant.id, "partner view")]
        )
    zone = request.app.state.settings.site_zone()
    return render(
        request, "partner_patient.html", partner, view=view, until=until_text(grant.valid_until, now, zone),
        max_note=MAX_PARTNER_NOTE, sent=skickat == 1,
    )  # fmt: skip


@router.post("/partner/patients/{patient_id}/kontakt")
async def contact_ward(
    request: Request,
    patient_id: PatientId,
    partner: Partner,
    csrf: Annotated[str, Form(max_length=200)] = "",
    body: Annotated[str, Form(max_length=MAX_PARTNER_NOTE * 2)] = "",
) -> Response:
    """The partner writes to the ward (care.sharing.write_to_ward decides: grant in force, purpose)."""
    from care.sharing import write_to_ward

    if not csrf_ok(request, csrf):
        request.app.state.metrics.csrf_rejections += 1
        raise StaleForm()
    origin = Origin(PARTNER, client_address=client_address(request))
    await run_form_command(
        request, write_to_ward(staff_user_id=partner.id, patient_id=patient_id, body=body, origin=origin)
    )
    return RedirectResponse(f"/partner/patients/{patient_id}?skickat=1#kontakt", status_code=303)
