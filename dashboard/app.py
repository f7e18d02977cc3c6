"""The dashboard application: factory, lifespan (pool, migrations, LISTEN hub), security headers, the
answers to refused and failed requests, serve()."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from psycopg_pool import AsyncConnectionPool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from care import texts_patient_sv
from core.redact import where
from core.settings import Settings
from dashboard import (
    account,
    account_security,
    admin_organisations,
    admin_rota,
    admin_sessions,
    admin_staff,
    admin_system_clients,
    admission,
    alert_phone,
    api,
    handover,
    kits,
    log_extract_document,
    log_review,
    oidc_login,
    pages,
    partner_realm,
    partner_visit,
    patient_contact,
    patient_enrol,
    patient_questionnaires,
    patient_today,
    record_care_level,
    record_charts,
    record_discharge,
    record_limit_replay,
    record_sharing,
    two_factor_login,
    vendor_assets,
    ward_ladder,
)
from dashboard.auth import LoginRequired, PasswordChecker
from dashboard.errors import ActionError, BodyTooLarge, InvalidInput
from dashboard.inputs import RequestTooLarge, refusal_for
from dashboard.live import LiveHub
from dashboard.login_brake import LoginBrake
from dashboard.metrics import DashboardMetrics
from dashboard.patient_realm import NotEnrolled, PatientRefused, find_viewer, render_patient
from dashboard.rendering import Renderer
from dashboard.same_origin import SameOriginWrites
from dashboard.stored_times import read_any_timestamp
from fhir_api.api import router as fhir_router
from fhir_api.subscription_api import router as fhir_subscription_router
from storage.db import migrate

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "hemma_session"
_SAFE_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


API_DESCRIPTION = """The ward dashboard's JSON API (and its pages), for staff and integrators.

Log in with `POST /login` (form fields `username`, `password`); the session is the `hemma_session`
cookie. State-changing requests also send the session's CSRF token, found in the `csrf-token` meta
element of every page, in the `X-CSRF-Token` header. A refusal is `{"detail": "<Swedish text>"}`,
with `"field"` naming the refused field on a 422; texts never repeat the input.
"""


def create_app(settings: Settings) -> FastAPI:
    """Build the app. Nothing connects here; the lifespan opens the pool and the LISTEN connection."""
    # The schema is served to logged-in staff by api.openapi; no docs pages (they load scripts from a CDN).
    app = FastAPI(
        title="Hemma avdelningsöversikt",
        version=_version(),
        description=API_DESCRIPTION,
        lifespan=_lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.metrics = DashboardMetrics()
    app.state.login_brake = LoginBrake.from_settings(settings)
    app.state.passwords = PasswordChecker()
    app.state.renderer = Renderer(settings.site_zone())
    app.state.templates = app.state.renderer.templates()
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret or secrets.token_urlsafe(48),
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_max_age_s,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(SameOriginWrites)
    app.add_middleware(BodyLimit)
    app.add_middleware(LastResort)  # inside SecurityHeaders: a 500 carries the headers too
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(alert_phone.router)  # /alerts/{id}: the on-call physician's phone (issue 11)
    app.include_router(record_limit_replay.router)  # "Pröva gränsen" on the record (issue 11)
    app.include_router(account.router)
    app.include_router(api.router)
    app.include_router(record_care_level.router)  # the record's care level and review forms (issue 11)
    app.include_router(record_discharge.router)
    app.include_router(handover.router)  # the shift's handover summary (issue 11)
    app.include_router(admin_staff.router)  # the admin's staff accounts and on-call rota (issue 11)
    app.include_router(admin_rota.router)
    app.include_router(admission.router)  # admission and the ward's inclusion checklist (issue 11)
    app.include_router(record_charts.router)  # the record's charts (issue 11)
    app.include_router(vendor_assets.router)  # charting library from its installed package
    app.include_router(kits.router)  # /kits and the record's lend / take-back forms (issue 11)
    # Issue 12: the end-of-stay summary, for the ward's staff and for a partner with a grant in force.
    from dashboard import partner_summary, stay_summary

    app.include_router(stay_summary.router)
    app.include_router(partner_summary.router)
    app.include_router(ward_ladder.router)  # /wards/{id}/eskalering: the escalation ladder (issue 12)
    app.include_router(partner_visit.router)  # /partner/besok/{id}: the ladder's home visit (issue 12)
    # Issue 12, staff login: OIDC (SITHS), the TOTP step, /account, the admin's sessions and resets.
    for login_router in (oidc_login.router, two_factor_login.router, account_security.router,
                         admin_sessions.router):  # fmt: skip
        app.include_router(login_router)
    app.include_router(log_review.router)  # /logg, the log reviewer's screen (issue 12)
    app.include_router(log_extract_document.router)  # the printed log extract (issue 12)
    # Issue 12, shared care: organisations, the record's "Delad vård", the partner realm (/partner).
    app.include_router(admin_organisations.router)
    app.include_router(admin_system_clients.router)  # /admin/system-clients: FHIR clients (issue 12)
    app.include_router(record_sharing.router)
    app.include_router(partner_realm.router)
    app.include_router(fhir_subscription_router)  # /fhir/Subscription, before the catch-all (issue 12)
    app.include_router(fhir_router)  # /fhir: FHIR R4 read/search, SMART Backend Services (issue 12)
    # The patient realm (dashboard.patient_realm): /p/ pages and /p/api/, the device cookie only.
    for patient_router in (
        patient_today.router,
        patient_enrol.router,
        patient_questionnaires.router,
        patient_contact.router,
    ):
        app.include_router(patient_router)

    @app.exception_handler(NotEnrolled)
    async def _not_enrolled(request: Request, exc: NotEnrolled) -> Response:
        return render_patient(request, "patient_app/not_enrolled.html", None, 401)

    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", status_code=303)

    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(ActionError, _refused)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(RequestTooLarge, _too_large)  # type: ignore[arg-type]
    return app


def _version() -> str:
    try:
        return version("hemma")
    except PackageNotFoundError:
        return "0"


# --- refused requests: Swedish for staff, counted by route -----------------------------------------


def _patient_path(path: str) -> bool:
    return path == "/p" or path.startswith("/p/")


def _api_path(path: str) -> bool:
    return path.startswith(("/api/", "/p/api/"))


async def _patient_refused(request: Request, status: int, message: str, field: str | None) -> Response:
    """A refusal in the patient realm: the patient's own calm page, or JSON under /p/api/."""
    if _api_path(request.url.path):
        body: dict[str, Any] = {"detail": message}
        if field:
            body["field"] = field
        return JSONResponse(body, status_code=status)
    viewer = await find_viewer(request)
    return render_patient(request, "patient_app/error.html", viewer, status, message=message)


async def _refused(request: Request, exc: ActionError) -> Response:
    """A refused request: `{"detail": <Swedish>, "field"?}` for the API (counted by the route's name,
    e.g. action_errors_total{action="snooze",status="422"}), the error page for a page."""
    if _patient_path(request.url.path):
        if not isinstance(exc, PatientRefused):  # a staff text must never reach a patient
            exc = PatientRefused(exc.status, "refused", texts_patient_sv.GENERIC)
        return await _patient_refused(request, exc.status, exc.message, exc.field)
    if not request.url.path.startswith("/api/"):
        return pages.render(
            request, "error.html", None, exc.status, message=exc.message, status_code=exc.status
        )
    route = request.scope.get("route")
    request.app.state.metrics.action_errors[(getattr(route, "name", "-"), exc.status)] += 1
    body: dict[str, Any] = {"detail": exc.message}
    if isinstance(exc, InvalidInput) and exc.field:
        body["field"] = exc.field
    return JSONResponse(body, status_code=exc.status)


async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
    """FastAPI's validation error (body, path, query, form) as the refusal staff see; never the input."""
    if _patient_path(request.url.path):
        return await _patient_refused(request, 422, _PATIENT_STATUS_TEXTS[422], None)
    return await _refused(request, refusal_for(exc.errors()))


# Starlette's and FastAPI's own refusals (an unknown path, a wrong method, a form it cannot parse) carry
# English texts; staff and integrators get Swedish ones. Hemma's own HTTPExceptions are Swedish already.
_SWEDISH_STATUS_TEXTS = {
    400: "Förfrågan kunde inte läsas",
    404: "Adressen finns inte",
    405: "Metoden stöds inte för den här adressen",
    413: "Förfrågan är för stor",
    415: "Förfrågans innehållstyp stöds inte",
}


# What a patient reads for the framework's own refusals (an old link, a page that went away).
_PATIENT_STATUS_TEXTS = {
    400: texts_patient_sv.GENERIC,
    404: "Sidan finns inte. Gå till Idag.",
    405: "Sidan finns inte. Gå till Idag.",
    413: "Det blev för mycket text. Skriv kortare och försök igen.",
    415: texts_patient_sv.GENERIC,
    422: "Något i formuläret saknas eller passar inte. Titta igenom det igen.",
}


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 400 or exc.detail == HTTPStatus(exc.status_code).phrase:
        detail = _SWEDISH_STATUS_TEXTS.get(exc.status_code, "Förfrågan kunde inte utföras")
        exc = StarletteHTTPException(exc.status_code, detail, exc.headers)
    if _patient_path(request.url.path):
        message = _PATIENT_STATUS_TEXTS.get(exc.status_code, str(exc.detail))
        return await _patient_refused(request, exc.status_code, message, None)
    return await http_exception_handler(request, exc)


async def _too_large(request: Request, exc: RequestTooLarge) -> Response:
    return await _refused(request, BodyTooLarge())


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    url = settings.require_database_url()
    await asyncio.to_thread(_migrate, url)
    pool = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=10,
        open=False,
        kwargs={"autocommit": True},
        check=AsyncConnectionPool.check_connection,
        configure=_configure_connection,
        name="hemma-dashboard",
    )
    await pool.open(wait=True, timeout=15)
    hub = LiveHub(pool, app.state.metrics, renderer=app.state.renderer)
    app.state.pool, app.state.hub = pool, hub
    try:
        await hub.start(url)
        log.info("dashboard ready")
        yield
    finally:
        await hub.stop()
        await pool.close()


async def _configure_connection(conn: psycopg.AsyncConnection) -> None:
    read_any_timestamp(conn)  # a stored far-off date never breaks a page (dashboard.stored_times)


def _migrate(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        applied = migrate(conn)
    if applied:
        log.info("applied migrations %s", ", ".join(applied))


class SecurityHeaders:
    """Headers for every HTTP response. Pure ASGI, so websockets and streaming are untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        sockets = f" ws://{host} wss://{host}" if _SAFE_HOST.match(host) else ""
        csp = (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self'{sockets}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
        static = scope["path"].startswith("/static/")
        # Versioned library URLs (dashboard.vendor_assets): never patient data, the same bytes forever.
        vendor = scope["path"].startswith(vendor_assets.VENDOR_PREFIX)
        cache = b"public, max-age=31536000, immutable" if vendor else b"no-cache" if static else b"no-store"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers += [
                    (b"content-security-policy", csp.encode()),
                    (b"x-frame-options", b"DENY"),
                    # Not no-referrer: under it browsers post forms with `Origin: null`, and the
                    # same-origin check (dashboard.same_origin) needs the real one. Other sites
                    # still get no Referer, so no URL (with its patient id) leaves.
                    (b"referrer-policy", b"same-origin"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                    # Patient data must not linger in browser or proxy caches.
                    (b"cache-control", cache),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


# No request body is read past this, whatever the route (JSON actions keep their 16 KiB, forms with a
# pasted key their 64 KiB): a form of a few fields is a few KiB, so a bigger one is refused as it is read.
MAX_REQUEST_BYTES = 256 * 1024


class BodyLimit:
    """Every request body is read at most MAX_REQUEST_BYTES: past it the route's body reading meets a
    413 (HTTPException, which FastAPI's reading lets through to the app's 413 page or JSON), by the
    declared Content-Length at once, by counting for a chunked body. Pure ASGI."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        too_big = declared.isdigit() and (len(declared) > 12 or int(declared) > MAX_REQUEST_BYTES)
        received = 0

        async def bounded() -> Message:
            nonlocal received
            if too_big:
                raise HTTPException(status_code=413)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_REQUEST_BYTES:
                    raise HTTPException(status_code=413)
            return message

        await self.app(scope, bounded, send)


GENERIC_ERROR = "Ett oväntat fel inträffade. Försök igen; kvarstår felet, kontakta systemförvaltningen."
_PATIENT_ERROR_PAGE = (
    '<!doctype html><html lang="sv"><head><meta charset="utf-8"><title>Det gick inte – Hemma</title></head>'
    f'<body><h1>Det gick inte</h1><p>{texts_patient_sv.GENERIC}</p><p><a href="/p/">Till Idag</a></p>'
    "</body></html>"
)
_ERROR_PAGE = (
    '<!doctype html><html lang="sv"><head><meta charset="utf-8"><title>Fel – Hemma</title></head>'
    f'<body><h1>Fel</h1><p>{GENERIC_ERROR}</p><p><a href="/">Till avdelningarna</a></p></body></html>'
)
# The modules whose frames say where in Hemma an error arose (the innermost frame is often a library's).


class LastResort:
    """Any exception nothing else answered: a generic Swedish 500 (JSON under /api/, else a small page)
    and one log line naming only the exception's type and where it was raised. Never its message or
    traceback: those can carry a note, a failing row or a parameter (issue 8, finding 7). Pure ASGI, so
    uvicorn never sees the exception and never logs it either."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] in ("http.response.start", "websocket.close")
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            route = getattr(scope.get("route"), "path", "-")
            log.error(
                "unexpected %s at %s (%s %s)",
                type(exc).__name__,
                where(exc),
                scope.get("method", "WS"),
                route,
            )
            scope["app"].state.metrics.unexpected_errors += 1
            if started:
                return  # the answer is under way; the server ends the connection
            if scope["type"] == "websocket":
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.close", "code": 1011})
                return
            response: Response
            if scope["path"].startswith("/p/api/"):
                response = JSONResponse({"detail": texts_patient_sv.GENERIC}, status_code=500)
            elif _patient_path(scope["path"]):
                response = HTMLResponse(_PATIENT_ERROR_PAGE, status_code=500)
            elif scope["path"].startswith("/api/"):
                response = JSONResponse({"detail": GENERIC_ERROR}, status_code=500)
            else:
                response = HTMLResponse(_ERROR_PAGE, status_code=500)
            await response(scope, receive, send)


def serve(settings: Settings) -> None:
    """Run the dashboard until SIGINT/SIGTERM; both shut down gracefully (websockets closed, pool closed).

    uvicorn re-raises the captured signal once shutdown is complete; SIGINT then surfaces
    as KeyboardInterrupt, which is the expected way to stop and not an error.
    """
    config = uvicorn.Config(
        create_app(settings),
        host=settings.dashboard_host,
        port=settings.dashboard_port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=10,
        server_header=False,
        # The live hub encodes each delta once for every websocket that shows it (dashboard.live_state);
        # per-message deflate would compress it again for each connection, which halved the fan-out to
        # 200 pages (`hemma bench dashboard`). Deltas are a few KB on the hospital's own network.
        ws_per_message_deflate=False,
    )
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run()
