"""`/partner/patients/{id}/vardtid`: the end-of-stay summary for a partner (issue 12, "available to
primary care and the municipality through the shared access").

The same document as the ward's (dashboard.stay_summary_document), for a partner account (Role.PARTNER)
with a grant in force for this patient at this moment (care.sharing.grant_in_force: valid, not revoked,
no block) whose purpose allows it (care.permissions.partner_may(purpose, VIEW_STAY_SUMMARY)). Anyone
else — before or after the grant, revoked, blocked, another patient, staff of any role — gets the same
404 as a patient that does not exist, so the route says nothing about who is in care.

One access-log row per read: entry point `partner`, action `partner_view_stay_summary`, the grant's id
(`partner_grant_id`), under the partner's own care provider (filled in by the database, migration 0018).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from care.access_log import PARTNER, PARTNER_STAY_SUMMARY, AccessRecord, write_async
from care.permissions import PartnerAction, Role, partner_may
from care.sharing import grant_in_force
from care.stay_summary import stay_summary
from dashboard.auth import page_staff
from dashboard.inputs import PatientId
from dashboard.model import StaffUser
from dashboard.pages import client_address, error_page
from dashboard.stay_summary_document import render_document
from storage.steps import run_async

router = APIRouter(include_in_schema=False)
NOT_FOUND = "Patienten finns inte."


@router.get("/partner/patients/{patient_id}/vardtid", response_class=HTMLResponse)
async def partner_stay_summary(
    request: Request, patient_id: PatientId, staff: Annotated[StaffUser, Depends(page_staff)]
) -> Response:
    if staff.role != Role.PARTNER:
        return error_page(request, staff, 404, NOT_FOUND)
    async with request.app.state.pool.connection() as conn, conn.transaction():
        cur = await conn.execute("SELECT now()")
        at = (await cur.fetchone())[0]
        grant = await run_async(conn, grant_in_force(staff_user_id=staff.id, patient_id=patient_id, at=at))
        if grant is None or not partner_may(grant.purpose, PartnerAction.VIEW_STAY_SUMMARY):
            return error_page(request, staff, 404, NOT_FOUND)
        summary = await run_async(conn, stay_summary(patient_id, now=at))
        record = AccessRecord(
            staff_user_id=staff.id,
            username=staff.username,
            patient_id=patient_id,
            action=PARTNER_STAY_SUMMARY,
            context=f"grant:{grant.id} html",
            entry_point=PARTNER,
            client_address=client_address(request),
            partner_grant_id=grant.id,
        )
        request.app.state.metrics.access_log_rows += await write_async(conn, [record])
    html = render_document(
        summary,
        zone=request.app.state.settings.site_zone(),
        printed_at=datetime.now(UTC),
        reader=f"{staff.display_name} ({staff.role_label})",
        back_link=f"/partner/patients/{patient_id}",
    )
    return HTMLResponse(html)  # the app sends every page no-store (dashboard.app)
