"""The patient record's plain HTML forms (care levels, reviews, questionnaire schedules, discharge, the
patient app's devices): the one check of the form's `csrf` field and the one way a form runs its care
command. A stale or forged form is refused as the error page (dashboard.app answers an ActionError on a
page that way), counted like the API's CSRF refusals; a care command's refusal is the same Swedish
text and status as the API's (dashboard.refusals).
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

import psycopg
from fastapi import Request

from care.access_log import DASHBOARD
from care.acting import Origin, execute, execute_async
from care.refusals import Refused
from dashboard.auth import csrf_ok
from dashboard.errors import ActionError
from dashboard.refusals import action_error
from storage.steps import Steps

T = TypeVar("T")


class StaleForm(ActionError):
    """The form's CSRF token is not this session's (an old page after a new login, or a forgery)."""

    status = 403

    def __init__(self) -> None:
        super().__init__("csrf", "Sidan är för gammal. Ladda om den och försök igen.")


def form_origin(request: Request, csrf: str) -> Origin:
    """The command's origin, once the form's `csrf` field is this session's token (else StaleForm)."""
    if not csrf_ok(request, csrf):
        request.app.state.metrics.csrf_rejections += 1
        raise StaleForm()
    return Origin(DASHBOARD, client_address=request.client.host if request.client else None)


async def run_form_command(request: Request, steps: Steps[T]) -> T:
    """Run a care command for a form on the pool, in a transaction; a refusal as the API answers it."""
    async with request.app.state.pool.connection() as conn:
        try:
            result: T = await execute_async(conn, steps)
        except Refused as exc:
            raise action_error(exc) from None
    return result


async def run_form_command_in_thread(request: Request, steps: Steps[T]) -> T:
    """`run_form_command` for a command that hashes a password (Argon2, tens of milliseconds of CPU):
    run on a connection of its own in a worker thread, so the event loop (every ward's live updates)
    never waits for the hash, as the login and /password do (dashboard.auth, dashboard.account)."""
    database_url = request.app.state.settings.require_database_url()

    def work() -> T:
        with psycopg.connect(database_url, autocommit=True) as conn:
            return execute(conn, steps)

    try:
        return await asyncio.to_thread(work)
    except Refused as exc:
        raise action_error(exc) from None
