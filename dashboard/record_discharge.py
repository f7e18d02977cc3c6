"""The patient record's "Skriv ut patienten" form (issue 11): a plain HTML post with the session's
`csrf` field to `/patients/{id}/discharge`, which runs the same command as `hemma patient discharge`
and `POST /api/patients/{id}/discharge` (care.enrolment.discharge) and goes back to the record, where
the outcome is shown beside the link to the end-of-stay summary ("Sammanfattning av vårdtiden").
The confirmation is the form's own second step (a <details>), no script.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from dashboard import care_orders
from dashboard.auth import page_staff
from dashboard.bodies import DischargeRequest
from dashboard.inputs import PatientId
from dashboard.model import StaffUser
from dashboard.staff_forms import form_origin

router = APIRouter(include_in_schema=False)


@router.post("/patients/{patient_id}/discharge")
async def discharge_form(
    request: Request,
    patient_id: PatientId,
    staff: Annotated[StaffUser, Depends(page_staff)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    outcome: Annotated[str, Form(max_length=64)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    origin = form_origin(request, csrf)
    # The outcome and the note are care's to refuse (the same words as the API's and the CLI's).
    entered = DischargeRequest.model_construct(outcome=outcome, note=note or None)
    order = care_orders.discharge_order(patient_id, staff, entered, origin)
    async with request.app.state.pool.connection() as conn:
        await care_orders.carry_out(conn, order)
    request.app.state.metrics.care_orders[order.action.value] += 1
    request.app.state.metrics.access_log_rows += 1
    # Back to the record, at its offer of the end-of-stay summary (dashboard.stay_summary).
    return RedirectResponse(f"/patients/{patient_id}#vardtid", status_code=303)
