"""Staff login, sessions, CSRF tokens and the brute-force brake.

Sessions are Starlette's signed cookies holding only the staff id, username, login
time and a CSRF token. Every request re-reads the account, so disabling a user or
removing ward access takes effect at once, not at cookie expiry.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request
from pwdlib import PasswordHash
from pwdlib.exceptions import PwdlibError
from starlette.requests import HTTPConnection

from dashboard.model import StaffUser
from dashboard.queries import fetch_active_staff, fetch_login

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)

CSRF_HEADER = "X-CSRF-Token"


class LoginRequired(Exception):
    """Raised by HTML routes without a session; answered with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass
class _Failures:
    count: int
    first_at: float
    locked_until: float = 0.0


class LoginBrake:
    """Per-username failure counter: after `max_failures` within `window_s`, refuse for `lockout_s`.

    Counts unknown usernames the same way so the brake does not reveal which exist.
    Callers pass `now` (time.monotonic()); memory is bounded by `max_tracked`.
    """

    def __init__(
        self,
        max_failures: int = 5,
        window_s: float = 900.0,
        lockout_s: float = 300.0,
        max_tracked: int = 10_000,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.max_tracked = max_tracked
        self._failures: dict[str, _Failures] = {}

    def locked_for(self, username: str, now: float) -> float:
        """Seconds until `username` may try again (0 when not locked)."""
        entry = self._failures.get(username.casefold())
        return max(0.0, entry.locked_until - now) if entry else 0.0

    def failed(self, username: str, now: float) -> bool:
        """Record a failure; True when this one locks the username."""
        key = username.casefold()
        entry = self._failures.get(key)
        if entry is None or now - entry.first_at > self.window_s:
            self._make_room(now)
            entry = self._failures[key] = _Failures(0, now)
        entry.count += 1
        if entry.count >= self.max_failures and entry.locked_until <= now:
            entry.locked_until = now + self.lockout_s
            entry.count, entry.first_at = 0, now
            return True
        return False

    def succeeded(self, username: str) -> None:
        self._failures.pop(username.casefold(), None)

    def _make_room(self, now: float) -> None:
        if len(self._failures) < self.max_tracked:
            return
        expired = [
            key
            for key, e in self._failures.items()
            if now - e.first_at > self.window_s and e.locked_until <= now
        ]
        for key in expired:
            del self._failures[key]
        while len(self._failures) >= self.max_tracked:  # still full: forget the oldest
            del self._failures[next(iter(self._failures))]


class PasswordChecker:
    """Argon2 verification off the event loop; unknown users cost the same time as known ones."""

    def __init__(self) -> None:
        self._hasher = PasswordHash.recommended()
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


async def authenticate(
    pool: AsyncConnectionPool, brake: LoginBrake, checker: PasswordChecker, username: str, password: str
) -> LoginOutcome:
    username = username.strip().lower()
    wait = brake.locked_for(username, time.monotonic())
    if wait > 0:
        return LoginOutcome(None, "locked", wait)
    async with pool.connection() as conn:
        found = await fetch_login(conn, username)
    staff, hashed, disabled = found if found else (None, None, False)
    if not await checker.verify(password, hashed) or staff is None:
        if brake.failed(username, time.monotonic()):
            log.warning("a username is locked for %.0f s after repeated failed logins", brake.lockout_s)
            return LoginOutcome(None, "locked", brake.lockout_s, newly_locked=True)
        return LoginOutcome(None, "invalid")
    if disabled:
        return LoginOutcome(None, "disabled")
    brake.succeeded(username)
    return LoginOutcome(staff, "ok")


def start_session(request: Request, staff: StaffUser) -> None:
    request.session.clear()
    request.session.update(
        {
            "staff_id": staff.id,
            "username": staff.username,
            "login_at": int(time.time()),
            "csrf": secrets.token_urlsafe(32),
        }
    )


def csrf_token(request: Request) -> str:
    return str(request.session.get("csrf", ""))


def csrf_ok(request: Request, presented: str | None) -> bool:
    expected = request.session.get("csrf")
    # As bytes: compare_digest raises TypeError for str with non-ASCII characters (a forged header).
    given = str(presented).encode("utf-8", "surrogatepass")
    return bool(expected and presented) and secrets.compare_digest(str(expected).encode(), given)


def session_expires_at(connection: HTTPConnection, max_age_s: int) -> float:
    """Wall-clock time when this session ends; long-lived websockets are closed then."""
    return float(connection.session.get("login_at", 0)) + max_age_s


async def staff_from_session(connection: HTTPConnection) -> StaffUser | None:
    """The logged-in, still-enabled staff member for a request or websocket, or None."""
    staff_id = connection.session.get("staff_id")
    if not isinstance(staff_id, int):
        return None
    pool: AsyncConnectionPool = connection.app.state.pool
    async with pool.connection() as conn:
        staff = (await fetch_active_staff(conn, [staff_id])).get(staff_id)
    if staff is None or staff.username != connection.session.get("username"):
        connection.session.clear()
        return None
    return staff


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


def safe_next(path: str | None) -> str:
    """Only local paths after login: never '//evil.example' or 'https://...'."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path
