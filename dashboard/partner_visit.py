"""The municipal nurse's phone (issue 12): `/partner/besok/{alert_id}`, the escalation ladder's link.

When the ward's escalation ladder (care.escalation_ladder) hands an unacknowledged high alert to the
municipality's home-care nurse, her message links here (paging.ladder.PARTNER_VISIT_LINK_PATH). After
login it is one phone-sized page: what the alert says in plain Swedish, how soon the ward asks for the
visit, the patient's latest values, the ward's phone number when the ladder has one, and one big
"Jag åker på hembesök". Hemma holds no address, so none is shown: the nurse knows her patient.

Who may see it: a partner whose grant in force for the alert's patient (care.sharing.grant_in_force)
has purpose `home_visit`, and to whom this alert was handed (care.escalation_handoffs.visit_access).
Everyone else, a ward's own staff too, gets the same 404 as for an alert that does not exist.

The button is a plain form POST with the session's `csrf` field (care.escalation_handoffs.take_visit:
PartnerAction.ACKNOWLEDGE_VISIT through the grant and care.permissions.partner_may, the hand-off marked
taken, an alert event, the access-log row); post/redirect/get back to this page with its confirmation.
Reading the page writes one access-log row (PARTNER_VIEW, entry point PARTNER, the grant's id).

The rest of the partner realm at /partner is another module's; this one is only the visit page.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from care import access_log
from care.acting import execute_async
from care.escalation_handoffs import take_visit, visit_access
from care.escalation_ladder import ladder
from care.permissions import PartnerAction
from care.refusals import Refused
from care.texts_sv import rule_label
from dashboard.alert_phone import alert_number
from dashboard.auth import csrf_ok, page_staff
from dashboard.model import StaffUser
from dashboard.pages import client_address, error_page, render
from dashboard.queries import fetch_alert, fetch_patient_record
from dashboard.staff_forms import StaleForm
from storage.steps import run_async

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
NOT_FOUND_SV = "Larmet finns inte."


async def _database_now(conn: psycopg.AsyncConnection[Any]) -> datetime:
    """The database's clock: the grant and the hand-off are judged by the time their rows are stamped with."""
    row = await (await conn.execute("SELECT now()")).fetchone()
    assert row is not None
    return row[0]


@router.get("/partner/besok/{alert_id}", response_class=HTMLResponse)
async def visit_page(
    request: Request, alert_id: str, staff: Annotated[StaffUser, Depends(page_staff)], tagen: str = ""
) -> Response:
    """The hand-off of one alert to the partner: the alert, the latest values, the visit button."""
    number = alert_number(alert_id)
    if number is None:
        return error_page(request, staff, 404, NOT_FOUND_SV)
    async with request.app.state.pool.connection() as conn:
        now = await _database_now(conn)
        try:
            access = await run_async(
                conn,
                visit_access(
                    alert_id=number, staff_user_id=staff.id, action=PartnerAction.VIEW_PATIENT, at=now
                ),
            )
        except Refused:
            return error_page(request, staff, 404, NOT_FOUND_SV)
        alert = await fetch_alert(conn, number)
        record = await fetch_patient_record(conn, access.patient_id)
        if alert is None or record is None:
            return error_page(request, staff, 404, NOT_FOUND_SV)
        ward_ladder = await run_async(conn, ladder(access.ward_id))
        record_row = access_log.AccessRecord(
            staff_user_id=staff.id, username=staff.username, patient_id=access.patient_id,
            action=access_log.PARTNER_VIEW, context=f"alert:{number} besok", entry_point=access_log.PARTNER,
            client_address=client_address(request), partner_grant_id=access.grant.id,
        )  # fmt: skip
        request.app.state.metrics.access_log_rows += await access_log.write_async(conn, [record_row])
    return render(
        request, "partner_visit.html", staff, access=access, alert=alert, card=record.card, record=record,
        rule=rule_label(alert.rule), ward_phone=ward_ladder.ward_phone if ward_ladder else None,
        ward_name=record.ward_name or access.ward_id,
        just_taken=tagen == "1",
    )  # fmt: skip


@router.post("/partner/besok/{alert_id}/ta")
async def take_visit_form(
    request: Request,
    alert_id: str,
    staff: Annotated[StaffUser, Depends(page_staff)],
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """ "Jag åker på hembesök": the hand-off taken, the ladder stopped; then the page, confirmed."""
    if not csrf_ok(request, csrf):
        request.app.state.metrics.csrf_rejections += 1
        raise StaleForm()
    number = alert_number(alert_id)
    if number is None:
        return error_page(request, staff, 404, NOT_FOUND_SV)
    async with request.app.state.pool.connection() as conn:
        now = await _database_now(conn)
        steps = take_visit(alert_id=number, staff_user_id=staff.id, username=staff.username, now=now,
                           client_address=client_address(request))  # fmt: skip
        try:
            await execute_async(conn, steps)
        except Refused:
            return error_page(request, staff, 404, NOT_FOUND_SV)
    log.info("alert %s: home visit taken by staff %s", number, staff.id)
    return RedirectResponse(f"/partner/besok/{number}?tagen=1#besok", status_code=303)
