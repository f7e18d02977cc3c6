"""`/patients/{id}/vardtid`: the end-of-stay summary for the ward's staff (issue 12), the printable
document of dashboard.stay_summary_document over care.stay_summary; `/patients/{id}/vardtid.json`: the
same summary as a FHIR document Bundle (fhir_api.stay_document), linked from the printed page
("Hämta som FHIR (JSON)").

Who may read it is who may read the record (`StaffUser.can_see`: the ward's nurses and physicians, an
admin): the same 404 for an unknown patient and 403 for another ward's, one decision (`_read`) for
both forms. One access-log row (`stay_summary`, context `ward:<id> html` or `ward:<id> fhir-json`),
written in the transaction that reads the summary, before the answer is sent. Linked from the record
(prominently once the patient is discharged) and offered after a discharge (dashboard.record_discharge
returns to the record's `#vardtid`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from care.access_log import STAY_SUMMARY
from care.stay_summary import stay_summary
from dashboard.access_log import entries_for, write_access_log
from dashboard.auth import page_staff
from dashboard.inputs import PatientId
from dashboard.model import StaffUser
from dashboard.pages import client_address, error_page
from dashboard.queries import fetch_patient_ward
from dashboard.stay_summary_document import fhir_document_response, summary_page
from fhir_api.stay_document import document_facts
from storage.steps import Steps, run_async

router = APIRouter(include_in_schema=False)
T = TypeVar("T")


async def _read(
    request: Request,
    patient_id: uuid.UUID,
    staff: StaffUser,
    form: str,
    read: Callable[[uuid.UUID], Steps[T]],
) -> T | Response:
    """`read` the patient's stay if `staff` may read the record, logged once; else the refusal page."""
    async with request.app.state.pool.connection() as conn:
        ward_id = await fetch_patient_ward(conn, patient_id)
        if ward_id is None:
            return error_page(request, staff, 404, "Patienten finns inte.")
        if not staff.can_see(ward_id):
            return error_page(
                request, staff, 403, "Patienten tillhör en avdelning du saknar behörighet till."
            )
        async with conn.transaction():
            found = await run_async(conn, read(patient_id))
            request.app.state.metrics.access_log_rows += await write_access_log(
                conn,
                entries_for(
                    staff, [patient_id], STAY_SUMMARY, f"ward:{ward_id} {form}", client_address(request)
                ),
            )
    return found


@router.get("/patients/{patient_id}/vardtid", response_class=HTMLResponse)
async def stay_summary_page(
    request: Request, patient_id: PatientId, staff: Annotated[StaffUser, Depends(page_staff)]
) -> Response:
    summary = await _read(request, patient_id, staff, "html", stay_summary)
    if isinstance(summary, Response):
        return summary
    reader = f"{staff.display_name} ({staff.role_label})"
    return summary_page(request, summary, reader=reader, base_path=f"/patients/{patient_id}")


@router.get("/patients/{patient_id}/vardtid.json")
async def stay_summary_fhir(
    request: Request, patient_id: PatientId, staff: Annotated[StaffUser, Depends(page_staff)]
) -> Response:
    facts = await _read(request, patient_id, staff, "fhir-json", document_facts)
    if isinstance(facts, Response):
        return facts
    return fhir_document_response(facts, zone=request.app.state.settings.site_zone())
