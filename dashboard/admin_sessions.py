"""The admin's side of issue 12's logins on `/admin/staff`: each account's live sessions with
"Logga ut" per session and "Logga ut överallt", and "Återställ tvåstegsverifiering".

The forms run care.staff_sessions.end_sessions and care.two_factor.reset_two_factor with the admin
as `by` (AdminAction.MANAGE_STAFF, checked and logged in the command), behind `admin_for` like every
route of the page. Ending takes effect at once, websockets included (care.staff_sessions).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from care import staff_sessions, two_factor
from dashboard.admin_staff import Admin, Username
from dashboard.staff_forms import form_origin, run_form_command

router = APIRouter(include_in_schema=False)
Csrf = Annotated[str, Form(max_length=200)]
SessionId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _back(username: str) -> Response:
    return RedirectResponse(f"/admin/staff#konto-{username}", status_code=303)


@router.post("/admin/staff/{username}/sessioner/{session_id}/logga-ut")
async def end_one(
    request: Request, username: Username, session_id: SessionId, admin: Admin, csrf: Csrf = ""
) -> Response:
    origin = form_origin(request, csrf)
    await run_form_command(request, staff_sessions.end_sessions(
        username=username, by=admin.username, origin=origin, session_id=session_id
    ))  # fmt: skip
    return _back(username)


@router.post("/admin/staff/{username}/sessioner/logga-ut-overallt")
async def end_all(request: Request, username: Username, admin: Admin, csrf: Csrf = "") -> Response:
    origin = form_origin(request, csrf)
    await run_form_command(request, staff_sessions.end_sessions(username=username, by=admin.username,
                                                                origin=origin))  # fmt: skip
    return _back(username)


@router.post("/admin/staff/{username}/tvasteg/aterstall")
async def reset_two_factor(request: Request, username: Username, admin: Admin, csrf: Csrf = "") -> Response:
    origin = form_origin(request, csrf)
    await run_form_command(request, two_factor.reset_two_factor(username=username, by=admin.username,
                                                                origin=origin))  # fmt: skip
    return _back(username)
