"""`/patients/{id}/loggutdrag`: the patient's log extract as a document the region hands out
(Patientdatalagen 8 kap. 5 §; issue 12). Print-ready HTML (A4 print CSS, no script): the region's
header (the care provider and unit of the patient's ward), the patient, the period, and who read what
when and from which care provider, in the same words as the patient app's "Vem har läst"
(care.log_extract.document, the same function). Printed by the clinicians of the patient's ward and by
the log reviewer (care.log_extract.may_print); one LOG_EXTRACT_DOCUMENT access-log row per print.

The period is two dates in the query (`fran`, `till`, the site's days, inclusive); the URL names the
patient by id only, never by personnummer.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from care import access_log, log_extract
from dashboard.access_log import entries_for, write_access_log
from dashboard.auth import page_staff
from dashboard.formatting import format_date_time
from dashboard.inputs import PatientId, Text
from dashboard.model import StaffUser
from dashboard.pages import client_address, error_page, render
from storage.steps import run_async

router = APIRouter(include_in_schema=False)
DEFAULT_DAYS = 90
Day = Annotated[Text, Query(max_length=10)]

_HEAD = (
    "SELECT p.display_name, p.personal_number, p.ward_id, w.name, cu.name, cp.name FROM patients p"
    " JOIN wards w ON w.id = p.ward_id JOIN care_units cu ON cu.id = w.care_unit_id"
    " JOIN care_providers cp ON cp.id = cu.provider_id WHERE p.id = %s"
)


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _span(first: datetime, last: datetime, zone: ZoneInfo) -> str:
    start, end = format_date_time(first, zone), format_date_time(last, zone)
    if start == end:
        return end
    same_day = first.astimezone(zone).date() == last.astimezone(zone).date()
    return f"{start}–{end.rsplit(' ', 1)[1]}" if same_day else f"{start} – {end}"


@router.get("/patients/{patient_id}/loggutdrag", response_class=HTMLResponse)
async def log_extract_document(
    request: Request,
    patient_id: PatientId,
    staff: Annotated[StaffUser, Depends(page_staff)],
    fran: Day = "",
    till: Day = "",
) -> Response:
    zone: ZoneInfo = request.app.state.renderer.zone
    today = datetime.now(zone).date()
    start_day, end_day = _day(fran), _day(till)
    if (fran and start_day is None) or (till and end_day is None):
        return error_page(request, staff, 422, "Skriv datumen som ÅÅÅÅ-MM-DD.")
    end_day = end_day or today
    start_day = start_day or end_day - timedelta(days=DEFAULT_DAYS)
    if start_day > end_day:
        return error_page(request, staff, 422, "Till-datumet ligger före från-datumet.")
    async with request.app.state.pool.connection() as conn:
        head = await (await conn.execute(_HEAD, (patient_id,))).fetchone()
        if head is None:
            return error_page(request, staff, 404, "Patienten finns inte.")
        name, number, ward_id, ward, unit, provider = head
        if not log_extract.may_print(staff.role, staff.ward_ids, ward_id):
            return error_page(
                request, staff, 403, "Loggutdraget skrivs ut av patientens vårdpersonal eller loggranskaren."
            )
        start = datetime.combine(start_day, time(), tzinfo=zone)
        end = datetime.combine(end_day + timedelta(days=1), time(), tzinfo=zone)
        extract = await run_async(conn, log_extract.document(patient_id, start, end))
        context = f"ward:{ward_id} log_extract {start_day.isoformat()}..{end_day.isoformat()}"
        request.app.state.metrics.access_log_rows += await write_access_log(
            conn,
            entries_for(
                staff, [patient_id], access_log.LOG_EXTRACT_DOCUMENT, context, client_address(request)
            ),
        )
    return render(
        request,
        "log_extract_document.html",
        staff,
        patient_id=patient_id,
        patient_name=name,
        personal_number=number,
        ward=ward,
        unit=unit,
        provider=provider,
        start_day=start_day,
        end_day=end_day,
        extract=extract,
        spans=[_span(e.first_at, e.last_at, zone) for e in extract.entries],
        printed=format_date_time(datetime.now(zone), zone),
        cut=extract.pages > 1,
        max_entries=log_extract.DOCUMENT_MAX,
    )
