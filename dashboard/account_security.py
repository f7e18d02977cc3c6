"""`/account`, "Mitt konto" (issue 12): staff's own two-factor and their own live sessions.

Two-factor: "Slå på tvåstegsverifiering" makes an unconfirmed secret (care.two_factor), shown as a
QR code (segno, inline SVG: no script, no style attribute, so the strict CSP holds) and as text;
it is kept only when a code from it is typed back. Turning it off again is an admin's reset (a lost
phone is the usual reason, and a thief holding a session must not be able to remove it).

Sessions: every live session of the account (started, last seen, address, how it logged in), this
browser's marked, each with "Logga ut", and "Logga ut överallt". Ending one is care.staff_sessions'
UPDATE: its cookie finds nothing on the next request and its websockets close at once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from care import staff_sessions, two_factor
from care.acting import execute_async
from dashboard.auth import current_session, end_session, page_staff
from dashboard.model import StaffUser
from dashboard.pages import render
from dashboard.staff_forms import form_origin
from dashboard.two_factor_login import qr_svg
from storage.steps import run_async

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

Staff = Annotated[StaffUser, Depends(page_staff)]
Csrf = Annotated[str, Form(max_length=200)]
SessionId = Annotated[int, Path(ge=1, le=2**63 - 1)]
_WRONG_CODE = "Koden stämmer inte. Skriv de sex siffrorna som appen visar just nu (inte en äldre kod)."
_DONE = {
    "pa": "Tvåstegsverifiering är påslagen. Nästa gång du loggar in med lösenord frågar Hemma efter en kod.",
}


@router.get("/account", response_class=HTMLResponse)
async def account_page(request: Request, staff: Staff) -> Response:
    return await _page(request, staff, 200, done=_DONE.get(request.query_params.get("klart", "")))


@router.post("/account/tvasteg")
async def begin_two_factor(request: Request, staff: Staff, csrf: Csrf = "") -> Response:
    form_origin(request, csrf)
    async with request.app.state.pool.connection() as conn:
        await execute_async(conn, two_factor.begin_enrolment(staff.id))
    return RedirectResponse("/account#tvasteg", status_code=303)


@router.post("/account/tvasteg/bekrafta", response_class=HTMLResponse)
async def confirm_two_factor(
    request: Request, staff: Staff, csrf: Csrf = "", code: Annotated[str, Form(max_length=20)] = ""
) -> Response:
    form_origin(request, csrf)
    async with request.app.state.pool.connection() as conn:
        confirmed = await execute_async(conn, two_factor.confirm_enrolment(staff.id, code, datetime.now(UTC)))
    if not confirmed:
        return await _page(request, staff, 422, code_error=_WRONG_CODE)
    log.info("staff %s turned on two-factor", staff.id)
    return RedirectResponse("/account?klart=pa#tvasteg", status_code=303)


@router.post("/account/sessioner/{session_id}/logga-ut")
async def end_one(request: Request, staff: Staff, session_id: SessionId, csrf: Csrf = "") -> Response:
    origin = form_origin(request, csrf)
    own = current_session(request).id
    async with request.app.state.pool.connection() as conn:
        await execute_async(conn, staff_sessions.end_sessions(
            username=staff.username, by=staff.username, origin=origin, session_id=session_id,
        ))  # fmt: skip
    if session_id == own:
        await end_session(request)
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse("/account#sessioner", status_code=303)


@router.post("/account/sessioner/logga-ut-overallt")
async def end_all(request: Request, staff: Staff, csrf: Csrf = "") -> Response:
    origin = form_origin(request, csrf)
    async with request.app.state.pool.connection() as conn:
        await execute_async(conn, staff_sessions.end_sessions(username=staff.username, by=staff.username,
                                                              origin=origin))  # fmt: skip
    await end_session(request)
    return RedirectResponse("/login", status_code=303)


async def _page(request: Request, staff: StaffUser, status: int, **context: Any) -> Response:
    async with request.app.state.pool.connection() as conn:
        state = await run_async(conn, two_factor.two_factor_state(staff.id))
        sessions = await run_async(conn, staff_sessions.live_sessions_of(staff.username, by=staff.username))
    enrol = None
    if state.pending_secret is not None:
        secret = state.pending_secret
        grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
        enrol = {"qr": qr_svg(two_factor.provisioning_uri(secret, staff.username)), "secret": grouped}
    return render(
        request, "account.html", staff, status, two_factor=state, enrol=enrol, sessions=sessions,
        this_session=current_session(request).id, required=request.app.state.settings.totp_required,
        **context,
    )  # fmt: skip
