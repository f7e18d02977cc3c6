"""Staff login, sessions, CSRF tokens and password checks.

Sessions live in PostgreSQL (`dashboard.sessions`); the signed cookie (Starlette's
SessionMiddleware) carries `sid`, the session's random id, after login, and `login_csrf`, the login
form's token, before it. Every request reads the session and its account in one statement, so
logging out, disabling a user, a password change or removed ward access take effect at once, in
every dashboard process. Failed password checks go through the login brake
(`dashboard.login_brake`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request
from pwdlib.exceptions import PwdlibError
from starlette.requests import HTTPConnection

from care.passwords import password_hasher
from care.staff_sessions import LoginMethod
from dashboard.model import StaffUser
from dashboard.queries import fetch_login
from dashboard.sessions import ActiveSession, create_session, csrf_for, find_session, revoke_session

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

    from dashboard.login_brake import LoginBrake

log = logging.getLogger(__name__)

CSRF_HEADER = "X-CSRF-Token"
_SID = "sid"
_LOGIN_CSRF = "login_csrf"


class LoginRequired(Exception):
    """Raised by HTML routes without a session; answered with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PasswordChecker:
    """Argon2 verification off the event loop; unknown users cost the same time as known ones."""

    def __init__(self) -> None:
        self._hasher = password_hasher()
        self._dummy_hash: str | None = None

    def _verify(self, password: str, hashed: str | None) -> bool:
        if hashed is None:
            if self._dummy_hash is None:
                self._dummy_hash = self._hasher.hash(secrets.token_hex(16))
            self._hasher.verify(password, self._dummy_hash)
            return False
        try:
            return self._hasher.verify(password, hashed)
        except PwdlibError as exc:
            log.warning("stored password hash could not be used: %s", type(exc).__name__)
            return False

    async def verify(self, password: str, hashed: str | None) -> bool:
        return await asyncio.to_thread(self._verify, password, hashed)


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    staff: StaffUser | None
    reason: str  # "ok", "invalid", "disabled", "locked"
    retry_after_s: float = 0.0
    newly_locked: bool = False  # this very attempt tripped the brake


async def verify_credentials(request: Request, username: str, password: str) -> LoginOutcome:
    """The login's password check behind the brake (`app.state.login_brake`, keyed by the username and
    the client's address); also the password form's check of the current password."""
    pool: AsyncConnectionPool = request.app.state.pool
    brake: LoginBrake = request.app.state.login_brake
    checker: PasswordChecker = request.app.state.passwords
    source = request.client.host if request.client else None
    username = username.strip().lower()
    async with pool.connection() as conn:
        wait = await brake.admit(conn, username, source)
        if wait > 0:
            return LoginOutcome(None, "locked", wait)
        found = await fetch_login(conn, username)
    staff, hashed, disabled = found if found else (None, None, False)
    right = await checker.verify(password, hashed) and staff is not None
    async with pool.connection() as conn:
        if not right:
            failure = await brake.failed(conn, username, source)
            if failure.newly_locked:
                return LoginOutcome(None, "locked", failure.retry_after_s, newly_locked=True)
            return LoginOutcome(None, "invalid")
        await brake.succeeded(conn, username, source)
    return LoginOutcome(None, "disabled") if disabled else LoginOutcome(staff, "ok")


# --- sessions ---------------------------------------------------------------------------------


async def start_session(request: Request, staff: StaffUser, method: LoginMethod = "password") -> None:
    """A new server-side session for this browser: a fresh id, never one it held before (fixation);
    `method` is how the person logged in (a password, a password and a TOTP code, OIDC)."""
    state = request.app.state
    client = request.client.host if request.client else None
    async with state.pool.connection() as conn:
        secret = await create_session(conn, staff.id, state.settings.session_max_age_s, client, method)
    request.session.clear()
    request.session[_SID] = secret


async def end_session(request: Request) -> None:
    """Logout: the session is revoked in the database, so a copy of the cookie is worthless too."""
    secret = request.session.get(_SID)
    if isinstance(secret, str):
        async with request.app.state.pool.connection() as conn:
            await revoke_session(conn, secret, "logout")
    request.session.clear()


def has_session_cookie(request: Request) -> bool:
    return isinstance(request.session.get(_SID), str)


async def staff_from_session(connection: HTTPConnection) -> StaffUser | None:
    """The logged-in, still-enabled staff member for a request or websocket, or None."""
    session = await _current(connection)
    return session.staff if session else None


async def _current(connection: HTTPConnection) -> ActiveSession | None:
    if hasattr(connection.state, "hemma_session"):
        session: ActiveSession | None = connection.state.hemma_session
        return session
    secret = connection.session.get(_SID)
    session = None
    if isinstance(secret, str):
        async with connection.app.state.pool.connection() as conn:
            session = await find_session(conn, secret)
    if session is None:
        connection.session.pop(_SID, None)
    connection.state.hemma_session = session
    return session


def current_session(connection: HTTPConnection) -> ActiveSession:
    """The session `staff_from_session` found for this connection (call that first)."""
    session: ActiveSession | None = getattr(connection.state, "hemma_session", None)
    if session is None:
        raise RuntimeError("no session looked up for this connection")
    return session


async def page_staff(request: Request) -> StaffUser:
    """Dependency for HTML pages: the staff member, or a redirect to the login form."""
    staff = await staff_from_session(request)
    if staff is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return staff


async def api_staff(request: Request) -> StaffUser:
    """Dependency for JSON endpoints: the staff member, or 401."""
    staff = await staff_from_session(request)
    if staff is None:
        raise HTTPException(status_code=401, detail="Inte inloggad")
    return staff


async def api_staff_with_csrf(request: Request) -> StaffUser:
    """Dependency for state-changing JSON endpoints: 401 without a session, then 403 unless the
    session's CSRF token comes back in the X-CSRF-Token header."""
    staff = await api_staff(request)
    if not csrf_ok(request, request.headers.get(CSRF_HEADER)):
        request.app.state.metrics.csrf_rejections += 1
        raise HTTPException(status_code=403, detail="Ogiltig eller saknad CSRF-token")
    return staff


# --- CSRF ---------------------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The logged-in session's token for forms and the X-CSRF-Token header ('' without a session)."""
    secret = request.session.get(_SID)
    return csrf_for(secret) if isinstance(secret, str) else ""


def csrf_ok(request: Request, presented: str | None) -> bool:
    return _same_token(csrf_token(request), presented)


def _same_token(expected: object, presented: str | None) -> bool:
    """Constant-time, and as bytes: compare_digest raises TypeError for a str with non-ASCII characters
    (a forged header or form field), which must be a wrong token, not a 500."""
    if not isinstance(expected, str) or not expected or not presented:
        return False
    given = str(presented).encode("utf-8", "surrogatepass")
    return secrets.compare_digest(expected.encode(), given)


def login_csrf_token(request: Request) -> str:
    """The login form's token, bound to this browser's pre-login cookie (made on first use)."""
    token = request.session.get(_LOGIN_CSRF)
    if not isinstance(token, str):
        token = request.session[_LOGIN_CSRF] = secrets.token_urlsafe(32)
    return token


def login_csrf_ok(request: Request, presented: str | None) -> bool:
    """Login CSRF: a form posted from elsewhere cannot know the token in this browser's cookie."""
    expected = request.session.get(_LOGIN_CSRF)
    # It stays until the login succeeds (start_session clears the cookie's contents), so a second
    # tab or a double click does not fail for want of a fresh token.
    return _same_token(expected, presented)


def safe_next(path: str | None) -> str:
    """Only local paths after login: never '//evil.example' or 'https://...'."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path
