"""What follows a right password: a session at once, or first the TOTP step (issue 12).

The login form (dashboard.pages) asks `needs_second_step`; when a code is due it answers with
`begin_second_step`'s redirect, and dashboard.two_factor_login takes over. Kept apart from both so
that neither imports the other.
"""

from __future__ import annotations

import time

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from care import two_factor
from dashboard.auth import safe_next
from dashboard.model import StaffUser
from storage.steps import run_async

# The signed cookie's key for a login waiting for its code (never a session: see two_factor_login).
PENDING = "pending_login"
PENDING_S = 300  # the code's page is open this long after the password


def code_brake_key(username: str) -> str:
    """The login brake's account key for codes, apart from the password's (see two_factor_login)."""
    return f"totp:{username}"


async def needs_second_step(request: Request, staff: StaffUser) -> bool:
    """A code is asked for when the account has confirmed two-factor, or every local account must."""
    if request.app.state.settings.totp_required:
        return True
    async with request.app.state.pool.connection() as conn:
        state = await run_async(conn, two_factor.two_factor_state(staff.id))
    return state.enrolled


def begin_second_step(request: Request, staff: StaffUser, next_path: str) -> Response:
    """The password was right: a pending login in this browser's cookie (no session), then the code."""
    request.session.clear()
    request.session[PENDING] = {
        "staff": staff.id, "user": staff.username, "until": time.time() + PENDING_S,
        "next": safe_next(next_path),
    }  # fmt: skip
    return RedirectResponse("/login/kod", status_code=303)
