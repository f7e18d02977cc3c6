"""Staff change their own password: GET/POST /password (issue 8, finding 10).

The current password is required and checked behind the login brake (a stolen session must not
become a way to guess the password); the new one twice; the form's CSRF token; and the policy in
`care.passwords`, applied by `care.staff.set_staff_password` exactly as for `hemma staff passwd`.
Changing the password ends every session of the account (the database's trigger), this one
included; this browser then gets a fresh session, so the person stays logged in here only.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from care.passwords import EXAMPLE_PHRASE, MAX_LENGTH, MIN_LENGTH, PasswordProblem, PasswordRejected
from care.staff import set_staff_password
from dashboard.auth import csrf_ok, current_session, page_staff, start_session, verify_credentials
from dashboard.model import StaffUser
from dashboard.pages import locked_message, render

log = logging.getLogger(__name__)
# Like dashboard.pages: a refused parameter is answered with the error page, not FastAPI's English 422.
router = APIRouter(
    responses={422: {"description": "Refused parameter (error page)", "content": {"text/html": {}}}}
)

# The policy's refusals in Swedish, by code (care.passwords). None repeats what was typed.
POLICY_TEXTS = {
    PasswordProblem.TOO_SHORT: f"Det nya lösenordet måste vara minst {MIN_LENGTH} tecken.",
    PasswordProblem.TOO_LONG: f"Det nya lösenordet får vara högst {MAX_LENGTH} tecken.",
    PasswordProblem.CONTAINS_NAME: "Det nya lösenordet får inte innehålla ditt användarnamn eller ditt namn.",
    PasswordProblem.REPEATED: (
        "Det nya lösenordet får inte vara en upprepning (som ”aaaa” eller ”abcabc”) och måste ha minst"
        " fem olika tecken."
    ),
    PasswordProblem.TOO_GUESSABLE: (
        "Det nya lösenordet är för lätt att gissa. Välj en längre fras av tre eller fyra ord"
        " som inte hör ihop."
    ),
    PasswordProblem.SAME_AS_CURRENT: "Det nya lösenordet måste skilja sig från det nuvarande.",
}
_WRONG_CURRENT = "Det nuvarande lösenordet stämmer inte."
_MISMATCH = "De två nya lösenorden är inte lika. Skriv samma lösenord i båda fälten."
_STALE_FORM = "Formuläret hade gått ut. Försök igen."
_FIELD = Annotated[str, Form(max_length=1024)]


@router.get("/password", response_class=HTMLResponse)
async def password_form(request: Request, staff: Annotated[StaffUser, Depends(page_staff)]) -> Response:
    return _page(request, staff, 200, changed=request.query_params.get("bytt") == "1")


@router.post("/password", response_class=HTMLResponse)
async def change_password(
    request: Request,
    staff: Annotated[StaffUser, Depends(page_staff)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    current: _FIELD = "",
    new: _FIELD = "",
    repeat: _FIELD = "",
) -> Response:
    state = request.app.state
    if not csrf_ok(request, csrf):
        state.metrics.csrf_rejections += 1
        return _page(request, staff, 403, error=_STALE_FORM)
    checked = await verify_credentials(request, staff.username, current)
    if checked.reason == "locked":
        response = _page(request, staff, 429, error=locked_message(checked.retry_after_s))
        response.headers["Retry-After"] = str(math.ceil(checked.retry_after_s))
        return response
    if checked.staff is None or checked.staff.id != staff.id:
        return _page(request, staff, 401, error=_WRONG_CURRENT, field="current")
    if new != repeat:
        return _page(request, staff, 422, error=_MISMATCH, field="repeat")
    try:
        await asyncio.to_thread(_store, state.settings.require_database_url(), staff.username, new, current)
    except PasswordRejected as exc:
        return _page(request, staff, 422, error=POLICY_TEXTS[exc.problem], field="new")
    await start_session(request, staff, current_session(request).method)  # logged in as before
    state.metrics.password_changes += 1
    log.info("staff %s changed their password; their other sessions ended", staff.id)
    return RedirectResponse("/password?bytt=1", status_code=303)


def _store(database_url: str, username: str, password: str, current: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        set_staff_password(conn, username=username, password=password, current=current)


def _page(request: Request, staff: StaffUser, status: int, **context: Any) -> Response:
    context.setdefault("field", None)
    return render(
        request, "password.html", staff, status, min_length=MIN_LENGTH, example=EXAMPLE_PHRASE, **context
    )
