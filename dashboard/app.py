"""The dashboard application: factory, lifespan (pool, migrations, LISTEN hub), security headers, serve()."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import psycopg
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from psycopg_pool import AsyncConnectionPool
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dashboard import account, api, pages
from dashboard.auth import LoginRequired, PasswordChecker
from dashboard.live import LiveHub
from dashboard.login_brake import LoginBrake
from dashboard.metrics import DashboardMetrics
from dashboard.model import format_age, format_clock, format_date_time, format_minutes
from dashboard.same_origin import SameOriginWrites
from hemma.db import migrate
from hemma.settings import Settings

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "hemma_session"
_SAFE_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def create_app(settings: Settings) -> FastAPI:
    """Build the app. Nothing connects here; the lifespan opens the pool and the LISTEN connection."""
    app = FastAPI(
        title="Hemma avdelningsöversikt", lifespan=_lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.settings = settings
    app.state.metrics = DashboardMetrics()
    app.state.login_brake = LoginBrake.from_settings(settings)
    app.state.passwords = PasswordChecker()
    app.state.templates = _templates()
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret or secrets.token_urlsafe(48),
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_max_age_s,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(SameOriginWrites)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(account.router)
    app.include_router(api.router)

    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", status_code=303)

    return app


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
        name="hemma-dashboard",
    )
    await pool.open(wait=True, timeout=15)
    hub = LiveHub(pool, app.state.metrics)
    app.state.pool, app.state.hub = pool, hub
    try:
        await hub.start(url)
        log.info("dashboard ready")
        yield
    finally:
        await hub.stop()
        await pool.close()


def _migrate(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        applied = migrate(conn)
    if applied:
        log.info("applied migrations %s", ", ".join(applied))


def _templates() -> Jinja2Templates:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )

    def now() -> datetime:
        return datetime.now(UTC)

    env.globals["clock"] = lambda at, ref=None: format_clock(at, ref or now())
    env.globals["age_text"] = lambda at, ref=None: format_age(at, ref or now())
    env.globals["date_time"] = format_date_time
    env.globals["minutes_text"] = format_minutes
    return Jinja2Templates(env=env)


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
                    (b"cache-control", b"no-cache" if static else b"no-store"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


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
    )
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run()
