"""`/partner/patients/{id}/vardtid`: the end-of-stay summary for a partner (issue 12, "available to
primary care and the municipality through the shared access"), and `.../vardtid.json`, the same summary
as a FHIR document Bundle (fhir_api.stay_document) to download.

The same document as the ward's (dashboard.stay_summary_document), for a partner account (Role.PARTNER)
with a grant in force for this patient at this moment (care.sharing.grant_in_force: valid, not revoked,
no block) whose purpose allows it (care.permissions.partner_may(purpose, VIEW_STAY_SUMMARY)): one
decision (`_read`) for both forms. Anyone else — before or after the grant, revoked, blocked, another
patient, staff of any role — gets the same 404 as a patient that does not exist, so the route says
nothing about who is in care.

One access-log row per read: entry point `partner`, action `partner_view_stay_summary`, the grant's id
(`partner_grant_id`), context `grant:<id> html` or `grant:<id> fhir-json`, under the partner's own care
provider (filled in by the database, migration 0018).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

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
from dashboard.stay_summary_document import fhir_document_response, summary_page
from fhir_api.stay_document import document_facts
from storage.steps import Steps, run_async

router = APIRouter(include_in_schema=False)
NOT_FOUND = "Patienten finns inte."
T = TypeVar("T")


async def _read(
    request: Request,
    patient_id: uuid.UUID,
    staff: StaffUser,
    form: str,
    read: Callable[[uuid.UUID, datetime], Steps[T]],
) -> T | Response:
    """`read` the stay (at the database's now) if a grant in force lets this partner, logged once."""
    if staff.role != Role.PARTNER:
        return error_page(request, staff, 404, NOT_FOUND)
    async with request.app.state.pool.connection() as conn, conn.transaction():
        cur = await conn.execute("SELECT now()")
        at = (await cur.fetchone())[0]
        grant = await run_async(conn, grant_in_force(staff_user_id=staff.id, patient_id=patient_id, at=at))
        if grant is None or not partner_may(grant.purpose, PartnerAction.VIEW_STAY_SUMMARY):
            return error_page(request, staff, 404, NOT_FOUND)
        found = await run_async(conn, read(patient_id, at))
        record = AccessRecord(
            staff_user_id=staff.id,
            username=staff.username,
            patient_id=patient_id,
            action=PARTNER_STAY_SUMMARY,
            context=f"grant:{grant.id} {form}",
            entry_point=PARTNER,
            client_address=client_address(request),
            partner_grant_id=grant.id,
        )
        request.app.state.metrics.access_log_rows += await write_async(conn, [record])
    return found


@router.get("/partner/patients/{patient_id}/vardtid", response_class=HTMLResponse)
async def partner_stay_summary(
    request: Request, patient_id: PatientId, staff: Annotated[StaffUser, Depends(page_staff)]
) -> Response:
    summary = await _read(request, patient_id, staff, "html", lambda p, at: stay_summary(p, now=at))
    if isinstance(summary, Response):
        return summary
    reader = f"{staff.display_name} ({staff.role_label})"
    return summary_page(request, summary, reader=reader, base_path=f"/partner/patients/{patient_id}")


@router.get("/partner/patients/{patient_id}/vardtid.json")
async def partner_stay_summary_fhir(
    request: Request, patient_id: PatientId, staff: Annotated[StaffUser, Depends(page_staff)]
) -> Response:
    facts = await _read(request, patient_id, staff, "fhir-json", lambda p, at: document_facts(p, now=at))
    if isinstance(facts, Response):
        return facts
    return fhir_document_response(facts, zone=request.app.state.settings.site_zone())
