"""The patient app's realm in the dashboard process: the device cookie, who is asking, CSRF, logging
every read, and the patient's own pages and refusals.

Separate from staff by construction:

* the patient app lives under `/p/` (pages) and `/p/api/` (JSON); staff pages, `/api/` and the ward
  websocket know only the staff session (`dashboard.auth`), so a device token opens none of them;
* the device token travels in its own cookie, `hemma_device`, scoped to `/p` (HttpOnly, SameSite=Lax,
  Secure behind TLS), never in the staff session's signed cookie: a staff session opens no `/p/` page;
* the token identifies one device of one patient (care.patient_access); every query of the realm is
  keyed by `viewer.patient_id`, never by a patient id from the request.

Every page and JSON read runs in `patient_read`, which writes the access-log row (care.patient_access
.patient_acts) in the transaction of the read; state-changing requests also present the device's
CSRF token (an HMAC of its token: a form field `csrf` or the `X-CSRF-Token` header).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request
from fastapi.responses import Response

from care import texts_patient_sv
from care.patient_access import PatientViewer, patient_acts, viewer_by_token
from care.permissions import PatientAction
from care.refusals import Refused
from dashboard.errors import ActionError
from dashboard.refusals import HTTP
from storage.steps import run_async

if TYPE_CHECKING:
    import psycopg

DEVICE_COOKIE = "hemma_device"
COOKIE_PATH = "/p"
# Browsers cap a cookie's life at 400 days; the device keeps its token until staff revoke it or the
# patient is discharged, and each visit renews the cookie (`keep_device_cookie`).
COOKIE_MAX_AGE_S = 400 * 86400
CSRF_HEADER = "X-CSRF-Token"

# The patient app's navigation: (path, label, the action the screen needs). A screen the holder may
# not open is not offered (a relative sees fewer: care.permissions.PATIENT_ALLOWED).
NAVIGATION: tuple[tuple[str, str, PatientAction], ...] = (
    ("/p/", "Idag", PatientAction.VIEW_TODAY),
    ("/p/varden", "Mina värden", PatientAction.VIEW_VALUES),
    ("/p/kontakt", "Kontakta oss", PatientAction.REQUEST_CONTACT),
    ("/p/meddelanden", "Meddelanden", PatientAction.READ_MESSAGES),
    ("/p/vem-har-last", "Vem har läst", PatientAction.VIEW_ACCESS_LOG),
)


class NotEnrolled(Exception):
    """A patient page without a live device token: answered with the calm 'not connected' page."""


class PatientRefused(ActionError):
    """A refusal in the patient realm: the patient's Swedish text (care.texts_patient_sv)."""

    def __init__(self, status: int, reason: str, message: str, field: str | None = None) -> None:
        super().__init__(reason, message)
        self.status = status
        self.field = field


def patient_error(exc: Refused) -> PatientRefused:
    """A care command's refusal as the patient app answers it: the status by code (dashboard.refusals,
    the one map), the text from care.texts_patient_sv (never a staff text, never the input)."""
    status, field = HTTP.get(exc.code, (400, None))
    return PatientRefused(status, f"refused: {exc.code}", texts_patient_sv.text(exc.refusal), field)


# --- the device token --------------------------------------------------------------------------------


def device_token(request: Request) -> str | None:
    token = request.cookies.get(DEVICE_COOKIE)
    return token if token and len(token) <= 200 else None


def set_device_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        DEVICE_COOKIE,
        token,
        max_age=COOKIE_MAX_AGE_S,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=request.app.state.settings.secure_cookies,
    )


def clear_device_cookie(response: Response) -> None:
    response.delete_cookie(DEVICE_COOKIE, path=COOKIE_PATH)


async def find_viewer(request: Request) -> PatientViewer | None:
    """The live device behind this request's cookie, or None (looked up once per request)."""
    if hasattr(request.state, "patient_viewer"):
        found: PatientViewer | None = request.state.patient_viewer
        return found
    token = device_token(request)
    viewer = None
    if token is not None:
        async with request.app.state.pool.connection() as conn:
            viewer = await run_async(conn, viewer_by_token(token))
    request.state.patient_viewer = viewer
    return viewer


async def page_viewer(request: Request) -> PatientViewer:
    """Dependency of the patient pages: the device, or the 'not connected' page (NotEnrolled)."""
    viewer = await find_viewer(request)
    if viewer is None:
        raise NotEnrolled()
    return viewer


async def api_viewer(request: Request) -> PatientViewer:
    """Dependency of the patient app's JSON reads: the device, or 401."""
    viewer = await find_viewer(request)
    if viewer is None:
        raise HTTPException(status_code=401, detail="Enheten är inte ansluten")
    return viewer


async def api_viewer_with_csrf(request: Request) -> PatientViewer:
    """Dependency of the patient app's JSON writes: 401 without a device, 403 without its CSRF token."""
    viewer = await api_viewer(request)
    if not csrf_ok(request, request.headers.get(CSRF_HEADER)):
        raise HTTPException(status_code=403, detail="Sidan är för gammal. Ladda om den och försök igen.")
    return viewer


def csrf_for_token(token: str) -> str:
    mac = hmac.new(token.encode("utf-8", "surrogatepass"), b"hemma patient csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def patient_csrf(request: Request) -> str:
    token = device_token(request)
    return csrf_for_token(token) if token else ""


def csrf_ok(request: Request, presented: str | None) -> bool:
    """Constant time, as bytes (odd unicode in a forged field is a wrong token, not a 500)."""
    expected = patient_csrf(request)
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode(), str(presented).encode("utf-8", "surrogatepass"))


def require_form_csrf(request: Request, presented: str | None) -> None:
    """A form post's `csrf` field, or 403 (the patient's page text, not a staff one)."""
    if not csrf_ok(request, presented):
        raise PatientRefused(403, "csrf", "Sidan är för gammal. Gå tillbaka, ladda om och försök igen.")


# --- reads and actions, logged -------------------------------------------------------------------------


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


@asynccontextmanager
async def patient_read(
    request: Request, viewer: PatientViewer, action: PatientAction, context: str
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A transaction on the pool that starts with the access-log row of this read or action (refused
    with the patient's text when the holder may not do it); the caller reads and writes in it."""
    async with request.app.state.pool.connection() as conn, conn.transaction():
        try:
            await run_async(
                conn, patient_acts(viewer, action, context=context, client_address=client_address(request))
            )
        except Refused as exc:
            raise patient_error(exc) from None
        yield conn


async def run_patient_command(conn: psycopg.AsyncConnection[Any], steps: Any) -> Any:
    """Run a care command's steps for the patient realm; a refusal becomes the patient's text."""
    try:
        return await run_async(conn, steps)
    except Refused as exc:
        raise patient_error(exc) from None


# --- pages ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NavItem:
    path: str
    label: str
    current: bool


def navigation(viewer: PatientViewer, path: str) -> list[NavItem]:
    return [NavItem(p, label, p == path) for p, label, action in NAVIGATION if viewer.may(action)]


def render_patient(
    request: Request, template: str, viewer: PatientViewer | None, status: int = 200, **context: Any
) -> Response:
    """A patient app page (templates under `patient_app/`, on `patient_app/base.html`)."""
    settings = request.app.state.settings
    context.update(
        viewer=viewer,
        nav=navigation(viewer, request.url.path) if viewer else [],
        csrf=patient_csrf(request) if viewer else "",
        poll_ms=int(settings.patient_poll_seconds * 1000),
        now=datetime.now(UTC),
    )
    response: Response = request.app.state.templates.TemplateResponse(
        request, template, context, status_code=status
    )
    token = device_token(request)
    if viewer is not None and token is not None:
        set_device_cookie(response, request, token)  # renewed on each visit: 400 days from the last
    return response
