"""The admin's on-call rota page, `/admin/rota` (issue 11): the dashboard's face of `hemma oncall`.

Per ward (`?avdelning=`), the shifts of the next `ROTA_DAYS` days per level (jourläkare, bakjour,
medicinskt ansvarig: care.oncall.LEVEL_WORDS_SV), the stretches nobody covers at a level as
"Ingen jour 2026-12-08 02:00-07:00" (care.oncall.coverage_gaps, the one decision), and forms to add
a shift (only physicians with a paging address: care.oncall.add_shift refuses anyone else) and to
remove one. Every form runs care.oncall's command with the admin as `by` (AdminAction.MANAGE_ROTA,
logged); the times a form gives are the site's local time, as on the paper rota.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import AfterValidator

from care import oncall
from care.permissions import AdminAction
from dashboard.admin_staff import admin_for, all_wards
from dashboard.errors import InvalidInput
from dashboard.inputs import BIGINT_MAX, check_text, swedish
from dashboard.model import StaffUser
from dashboard.pages import error_page, render
from dashboard.staff_forms import form_origin, run_form_command
from storage.steps import run_async

router = APIRouter(include_in_schema=False)

ROTA_DAYS = 14
Admin = Annotated[StaffUser, Depends(admin_for(AdminAction.MANAGE_ROTA))]
Field = Annotated[str, Form(max_length=200), AfterValidator(check_text)]
WardParam = Annotated[
    str, Query(max_length=64), AfterValidator(check_text), swedish("Okänd avdelning", status=404)
]
ShiftId = Annotated[int, Path(ge=1, le=BIGINT_MAX), swedish("Jourpasset finns inte", status=404)]
_BAD_TIME = "Ange tiden som datum och klockslag, t.ex. 2026-12-08 07:00"
_BAD_LEVEL = "Journivån är 1, 2 eller 3"


def _local_time(request: Request, text: str, field: str) -> datetime:
    """A form's `datetime-local` value in the site's zone."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(_BAD_TIME, field) from None
    return value if value.tzinfo else value.replace(tzinfo=request.app.state.renderer.zone)


@router.get("/admin/rota", response_class=HTMLResponse)
async def rota_page(request: Request, admin: Admin, avdelning: WardParam = "") -> Response:
    wards = await all_wards(request)
    if not wards:
        return render(request, "admin_rota.html", admin, wards=wards, ward=None)
    ward_id = avdelning or wards[0][0]
    if ward_id not in dict(wards):
        return error_page(request, admin, 404, "Avdelningen finns inte.")
    async with request.app.state.pool.connection() as conn:
        row = await (await conn.execute("SELECT date_trunc('minute', now())")).fetchone()
        since: datetime = row[0] if row else datetime.now(UTC)
        until = since + timedelta(days=ROTA_DAYS)
        shifts = await run_async(conn, oncall.rota(ward_id, since, until))
        cur = await conn.execute(
            "SELECT u.username, u.display_name FROM staff_users u WHERE u.role = 'physician'"
            " AND NOT u.disabled ORDER BY lower(u.display_name), u.username"
        )
        physicians = [(r[0], r[1]) for r in await cur.fetchall()]
    zone = request.app.state.renderer.zone
    levels = []
    for level, word in oncall.LEVEL_WORDS_SV.items():
        gaps = oncall.coverage_gaps(shifts, level, since, until)
        levels.append((
            level, word, [(s, span_text(s.starts_at, s.ends_at, zone)) for s in shifts if s.level == level],
            [f"Ingen jour {span_text(a, b, zone)}" for a, b in gaps],
        ))  # fmt: skip
    return render(
        request, "admin_rota.html", admin, wards=wards, ward=(ward_id, dict(wards)[ward_id]), levels=levels,
        physicians=physicians, span=span_text(since, until, zone), days=ROTA_DAYS,
    )  # fmt: skip


def span_text(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    """ "2026-12-08 02:00-07:00" (an en dash; both dates past midnight), in the site's zone."""
    a, b = start.astimezone(zone), end.astimezone(zone)
    return (
        f"{a:%Y-%m-%d %H:%M}–{b:%H:%M}" if a.date() == b.date() else f"{a:%Y-%m-%d %H:%M}–{b:%Y-%m-%d %H:%M}"
    )


def _back(ward_id: str) -> Response:
    return RedirectResponse(f"/admin/rota?avdelning={ward_id}", status_code=303)


@router.post("/admin/rota")
async def add_shift(
    request: Request, admin: Admin, csrf: Field = "", ward: Field = "", username: Field = "",
    level: Field = "", starts_at: Field = "", ends_at: Field = "",
) -> Response:  # fmt: skip
    origin = form_origin(request, csrf)
    if level.strip() not in {str(n) for n in oncall.LEVELS}:
        raise InvalidInput(_BAD_LEVEL, "level")
    start, end = _local_time(request, starts_at, "starts_at"), _local_time(request, ends_at, "ends_at")
    await run_form_command(request, oncall.add_shift(
        ward_id=ward, username=username, level=int(level), starts_at=start, ends_at=end,
        now=datetime.now(UTC), by=admin.username, origin=origin,
    ))  # fmt: skip
    return _back(ward)


@router.post("/admin/rota/{shift_id}/remove")
async def remove_shift(request: Request, shift_id: ShiftId, admin: Admin, csrf: Field = "") -> Response:
    origin = form_origin(request, csrf)
    ward_id = await run_form_command(request, oncall.remove_shift(shift_id=shift_id, by=admin.username,
                                                                  origin=origin))  # fmt: skip
    return _back(ward_id)
