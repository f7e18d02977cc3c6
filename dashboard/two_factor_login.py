"""The password login's second step: a TOTP code (issue 12; care.two_factor).

After a right password for an account with two-factor (or any local account when
HEMMA_TOTP_REQUIRED is set), `begin_second_step` puts a *pending login* into the signed cookie, not a
session: the account's id, the page to go to afterwards, and a deadline five minutes on. No row of
`staff_sessions` exists, and every page and the websocket look for the cookie's session id only,
so the half-logged-in browser reaches nothing but `/login/kod`. There it types the code from its
app (or, when the account must enrol at login, scans the QR code first); a right code starts the
session, method 'password_totp'.

Wrong codes go through the login brake under their own account key (`totp:` + username): a right
password clears the account's password failures, and must not also clear the code's, or a thief who
knows the password could guess codes five at a time forever. The source address counts both.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from care import two_factor
from care.acting import execute_async
from dashboard.auth import login_csrf_ok, login_csrf_token, start_session
from dashboard.login_steps import PENDING, code_brake_key
from dashboard.pages import client_address, locked_message, login_page, render
from dashboard.queries import fetch_login
from storage.steps import run_async

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

_WRONG_CODE = "Koden stämmer inte. Skriv de sex siffrorna som appen visar just nu."
_STALE = "Inloggningen hade gått ut. Logga in med lösenordet igen."
_STALE_FORM = "Formuläret hade gått ut. Försök igen."


def _pending(request: Request) -> dict[str, Any] | None:
    """This browser's login waiting for its code, until its deadline."""
    pending = request.session.get(PENDING)
    if not isinstance(pending, dict) or not isinstance(pending.get("until"), int | float):
        return None
    if pending["until"] < time.time():
        request.session.pop(PENDING, None)
        return None
    return pending


@router.get("/login/kod", response_class=HTMLResponse)
async def code_form(request: Request) -> Response:
    pending = _pending(request)
    if pending is None:
        return RedirectResponse("/login", status_code=303)
    return await _page(request, pending, 200)


@router.post("/login/kod", response_class=HTMLResponse)
async def check_code(
    request: Request,
    code: Annotated[str, Form(max_length=20)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    state = request.app.state
    pending = _pending(request)
    if pending is None:
        return _login_again(request)
    if not login_csrf_ok(request, csrf):
        state.metrics.csrf_rejections += 1
        return await _page(request, pending, 403, error=_STALE_FORM)
    username, source = str(pending["user"]), client_address(request)
    brake = state.login_brake
    async with state.pool.connection() as conn:
        wait = await brake.admit(conn, code_brake_key(username), source)
        if wait > 0:
            state.metrics.failed_logins += 1
            response = await _page(request, pending, 429, error=locked_message(wait))
            response.headers["Retry-After"] = str(math.ceil(wait))
            return response
        found = await fetch_login(conn, username)
        staff = found[0] if found and not found[2] and found[0].id == pending["staff"] else None
        enrolled = (await run_async(conn, two_factor.two_factor_state(int(pending["staff"])))).enrolled
        now = datetime.now(UTC)
        if staff is None:
            right = False
        elif enrolled:
            right = await execute_async(conn, two_factor.accept_code(staff.id, code, now))
        else:  # enrolling at login (HEMMA_TOTP_REQUIRED): the code confirms the secret just shown
            right = await execute_async(conn, two_factor.confirm_enrolment(staff.id, code, now))
        if not right:
            failure = await brake.failed(conn, code_brake_key(username), source)
    if staff is None:
        return _login_again(request)
    if not right:
        state.metrics.failed_logins += 1
        if failure.newly_locked:
            state.metrics.login_lockouts += 1
            response = await _page(request, pending, 429, error=locked_message(failure.retry_after_s))
            response.headers["Retry-After"] = str(math.ceil(failure.retry_after_s))
            return response
        return await _page(request, pending, 401, error=_WRONG_CODE)
    async with state.pool.connection() as conn:
        await brake.succeeded(conn, code_brake_key(username), source)
    await start_session(request, staff, "password_totp")
    state.metrics.logins += 1
    log.info("staff %s logged in with a TOTP code from %s", staff.id, source)
    return RedirectResponse(str(pending["next"]), status_code=303)


def _login_again(request: Request) -> Response:
    request.session.pop(PENDING, None)
    return login_page(request, 401, "/", error=_STALE)


def qr_svg(uri: str) -> Markup:
    """The otpauth URI as an inline SVG (segno; attributes only, nothing the strict CSP refuses)."""
    code = segno.make(uri, error="m")
    svg = code.svg_inline(scale=5, border=4, title="QR-kod för autentiseringsappen", svgclass="totp-qr")
    return Markup(svg)  # noqa: S704 (segno's own markup of a URI we built; nothing typed by anyone)


async def _page(request: Request, pending: dict[str, Any], status: int, **context: Any) -> Response:
    """The code form; when the account is enrolling at login, the QR code and secret above it."""
    staff_id, username = int(pending["staff"]), str(pending["user"])
    async with request.app.state.pool.connection() as conn:
        state = await run_async(conn, two_factor.two_factor_state(staff_id))
        secret = None
        if not state.enrolled:
            secret = state.pending_secret
            if secret is None:
                async with conn.transaction():
                    secret = await run_async(conn, two_factor.begin_enrolment(staff_id))
    enrol = None
    if secret is not None:
        enrol = {"qr": qr_svg(two_factor.provisioning_uri(secret, username)), "secret": _grouped(secret)}
    return render(
        request, "login_code.html", None, status, login_csrf=login_csrf_token(request), enrol=enrol,
        username=username, **context,
    )  # fmt: skip


def _grouped(secret: str) -> str:
    """The secret in groups of four, as people type it into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
