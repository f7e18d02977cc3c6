"""The admin's staff accounts page, `/admin/staff` (issue 11): the dashboard's face of `hemma staff`.

List the accounts (username, name, role, wards, disabled, where they are paged; never a password or
its hash), create one with a temporary password (care.passwords' policy), change role and wards,
disable or enable (disabling ends the account's sessions at once: migration 0006's trigger, so a
live page and its websocket stop), set a temporary password, and the paging addresses. Every form
runs care.staff's command with the admin as `by`: the command checks AdminAction.MANAGE_STAFF and
writes the log row (care.acting.admin_audited). `admin_for` refuses anyone else first, on every route
and method, with the same Swedish text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import AfterValidator

from care import organisations, staff_sessions, two_factor
from care import staff as staff_commands
from care.passwords import PasswordProblem, PasswordRejected
from care.permissions import AdminAction, Role
from care.refusals import RefusalCode, Refused
from dashboard.account import POLICY_TEXTS
from dashboard.auth import page_staff
from dashboard.errors import InvalidInput
from dashboard.inputs import check_text, swedish
from dashboard.model import ROLE_LABELS, StaffUser
from dashboard.pages import render
from dashboard.refusals import action_error
from dashboard.staff_forms import form_origin, run_form_command, run_form_command_in_thread
from storage.steps import run_async

router = APIRouter(include_in_schema=False)

Username = Annotated[
    str, Path(max_length=64), AfterValidator(check_text), swedish("Kontot finns inte", status=404)
]
Field = Annotated[str, Form(max_length=200), AfterValidator(check_text)]
Password = Annotated[str, Form(max_length=1000), AfterValidator(check_text)]
Wards = Annotated[list[Annotated[str, AfterValidator(check_text)]], Form(max_length=200)]


def admin_for(action: AdminAction) -> Callable[[StaffUser], Awaitable[StaffUser]]:
    """A dependency: the logged-in staff member if their role may do `action` (care.permissions),
    else the role refusal (403) before anything of the request is read."""

    async def check(staff: Annotated[StaffUser, Depends(page_staff)]) -> StaffUser:
        if not staff.may(action):
            raise action_error(
                Refused(RefusalCode.ROLE, username=staff.username, role=staff.role, action=action)
            )
        return staff

    return check


Admin = Annotated[StaffUser, Depends(admin_for(AdminAction.MANAGE_STAFF))]


async def all_wards(request: Request) -> list[tuple[str, str]]:
    """(id, name) of every ward, for the forms' checkboxes and choosers (no patient data)."""
    async with request.app.state.pool.connection() as conn:
        cur = await conn.execute("SELECT id, name FROM wards ORDER BY name, id")
        return [(r[0], r[1]) for r in await cur.fetchall()]


@router.get("/admin/staff", response_class=HTMLResponse)
async def staff_page(request: Request, admin: Admin) -> Response:
    async with request.app.state.pool.connection() as conn:
        accounts = await run_async(conn, staff_commands.staff_accounts(admin.username))
        # Issue 12: live sessions and two-factor per account (forms in dashboard.admin_sessions).
        sessions = await run_async(conn, staff_sessions.live_sessions_by_account(by=admin.username))
        two_factor_on = await run_async(conn, two_factor.enrolled_usernames(by=admin.username))
        units = await run_async(conn, organisations.units())  # issue 12: the account's care unit
    wards = await all_wards(request)
    return render(
        request, "admin_staff.html", admin, accounts=accounts, wards=wards, ward_names=dict(wards),
        roles=[(r.value, ROLE_LABELS.get(r.value, r.value)) for r in Role], sessions=sessions,
        two_factor_on=two_factor_on,
        units=[(u.id, u.name if u.name == u.provider_name else f"{u.name} ({u.provider_name})")
               for u in units],
    )  # fmt: skip


def _back(username: str | None = None) -> Response:
    return RedirectResponse(f"/admin/staff#konto-{username}" if username else "/admin/staff", status_code=303)


# The password policy's refusals (care.passwords) in the page's Swedish; about someone else's account.
_POLICY_TEXTS = {**POLICY_TEXTS, PasswordProblem.CONTAINS_NAME: (
    "Lösenordet får inte innehålla personens användarnamn eller namn."
)}  # fmt: skip


async def _run(request: Request, steps: Any, *, hashes_password: bool = False) -> None:
    try:
        if hashes_password:
            await run_form_command_in_thread(request, steps)
        else:
            await run_form_command(request, steps)
    except PasswordRejected as exc:
        raise InvalidInput(_POLICY_TEXTS[exc.problem].replace("Det nya lösenordet", "Lösenordet"),
                           "password") from None  # fmt: skip


@router.post("/admin/staff")
async def create_account(
    request: Request, admin: Admin, csrf: Field = "", username: Field = "", display_name: Field = "",
    role: Field = "", password: Password = "", wards: Wards = [],  # noqa: B006 (FastAPI copies it)
    care_unit: Field = "", hsa_id: Field = "", title: Field = "",
) -> Response:  # fmt: skip
    origin = form_origin(request, csrf)
    await _run(request, staff_commands.save_staff_user(
        username=username.strip().lower(), display_name=display_name, role=role, password=password,
        ward_ids=wards, by=admin.username, origin=origin, replace=False, care_unit_id=care_unit or None,
        hsa_id=hsa_id or None, title=title or None,
    ), hashes_password=True)  # fmt: skip
    return _back(username.strip().lower())


@router.post("/admin/staff/{username}/access")
async def change_access(
    request: Request, username: Username, admin: Admin, csrf: Field = "", role: Field = "",
    wards: Wards = [],  # noqa: B006
) -> Response:  # fmt: skip
    origin = form_origin(request, csrf)
    await _run(request, staff_commands.change_access(
        username=username, role=role, ward_ids=wards, by=admin.username, origin=origin
    ))  # fmt: skip
    return _back(username)


@router.post("/admin/staff/{username}/organisation")
async def change_organisation(
    request: Request, username: Username, admin: Admin, csrf: Field = "", care_unit: Field = "",
    hsa_id: Field = "", title: Field = "",
) -> Response:  # fmt: skip
    """The account's care unit, HSA-id and title (issue 12)."""
    origin = form_origin(request, csrf)
    await _run(request, staff_commands.change_organisation(
        username=username, care_unit_id=care_unit or "region-hemma", hsa_id=hsa_id or None,
        title=title or None, by=admin.username, origin=origin,
    ))  # fmt: skip
    return _back(username)


@router.post("/admin/staff/{username}/disable")
async def disable_account(request: Request, username: Username, admin: Admin, csrf: Field = "") -> Response:
    origin = form_origin(request, csrf)
    await _run(request, staff_commands.disable(username=username, disabled=True, by=admin.username,
                                               origin=origin))  # fmt: skip
    return _back(username)


@router.post("/admin/staff/{username}/enable")
async def enable_account(request: Request, username: Username, admin: Admin, csrf: Field = "") -> Response:
    origin = form_origin(request, csrf)
    await _run(request, staff_commands.disable(username=username, disabled=False, by=admin.username,
                                               origin=origin))  # fmt: skip
    return _back(username)


@router.post("/admin/staff/{username}/password")
async def temporary_password(
    request: Request, username: Username, admin: Admin, csrf: Field = "", password: Password = ""
) -> Response:
    origin = form_origin(request, csrf)
    await _run(request, staff_commands.change_password(username=username, password=password,
                                                       by=admin.username, origin=origin),
               hashes_password=True)  # fmt: skip
    return _back(username)


@router.post("/admin/staff/{username}/contact")
async def paging_contact(
    request: Request, username: Username, admin: Admin, csrf: Field = "", email: Field = "",
    ntfy_topic: Field = "", webhook_url: Field = "",
) -> Response:  # fmt: skip
    origin = form_origin(request, csrf)
    await _run(request, staff_commands.save_contact(
        username=username, email=email.strip() or None, ntfy_topic=ntfy_topic.strip() or None,
        webhook_url=webhook_url.strip() or None, by=admin.username, origin=origin,
    ))  # fmt: skip
    return _back(username)
