"""The handover page, `/wards/{ward_id}/overlamning` (issue 11): care.handover's summary of a shift.

The current shift by default; `?skift=2026-12-06-natt` for an earlier one, from a chooser of the last
`SHIFTS_OFFERED` shifts (care.shifts). Access is checked as on the ward overview, and one access-log
row (HANDOVER) is written per patient the page shows. Printable: the print stylesheet in
dashboard.css hides the header and the chooser, and keeps each patient's block on one page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from care.handover import handover
from care.refusals import Refused
from care.shifts import current_shift, parse_shift, recent_shifts
from dashboard.access_log import HANDOVER
from dashboard.auth import page_staff
from dashboard.inputs import Text, WardId, swedish
from dashboard.model import StaffUser
from dashboard.pages import error_page, log_ward_read, render
from dashboard.queries import fetch_ward
from dashboard.refusals import action_error
from storage.steps import run_async

router = APIRouter(include_in_schema=False)

SHIFTS_OFFERED = 9  # three days back: a weekend's handovers, read on Monday morning

ShiftName = Annotated[Text, Query(max_length=40), swedish("Okänt skift. Välj ett skift i listan.")]


@router.get("/wards/{ward_id}/overlamning", response_class=HTMLResponse)
async def handover_page(
    request: Request, ward_id: WardId, staff: Annotated[StaffUser, Depends(page_staff)], skift: ShiftName = ""
) -> Response:
    """What changed during the shift, per patient, by acuity (care.handover)."""
    if not staff.can_see(ward_id):
        return error_page(request, staff, 403, "Du har inte behörighet till den här avdelningen.")
    zone = request.app.state.renderer.zone
    async with request.app.state.pool.connection() as conn:
        ward = await fetch_ward(conn, ward_id)
        if ward is None:
            return error_page(request, staff, 404, "Avdelningen finns inte.")
        row = await (await conn.execute("SELECT now()")).fetchone()
        now: datetime = row[0] if row else datetime.now(UTC)  # the database's clock, as the rows' times
        try:
            shift = parse_shift(skift, now, zone) if skift else current_shift(now, zone)
        except Refused as exc:
            raise action_error(exc) from None
        summary = await run_async(conn, handover(ward_id, shift, now))
        await log_ward_read(request, conn, staff, ward_id, summary.patient_ids, HANDOVER)
    return render(
        request, "handover.html", staff, ward=ward, summary=summary, zone=zone,
        shifts=recent_shifts(now, zone, SHIFTS_OFFERED), current=current_shift(now, zone),
    )  # fmt: skip
