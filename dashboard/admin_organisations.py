"""The admin's organisations page, `/admin/organisations` (issue 12): the care providers and their care
units that staff accounts belong to (care.organisations), the dashboard's face of `hemma org`.

Only an admin (AdminAction.MANAGE_ORGANISATIONS), on every route and method, refused first with the
Swedish text; each form runs care.organisations' command with the admin as `by`, which writes the log
row (care.acting.admin_audited).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import AfterValidator

from care import organisations
from care.permissions import AdminAction
from dashboard.admin_staff import admin_for
from dashboard.inputs import WardId, check_text
from dashboard.model import StaffUser
from dashboard.pages import render
from dashboard.staff_forms import form_origin, run_form_command
from storage.steps import run_async

router = APIRouter(include_in_schema=False)

Admin = Annotated[StaffUser, Depends(admin_for(AdminAction.MANAGE_ORGANISATIONS))]
Field = Annotated[str, Form(max_length=200), AfterValidator(check_text)]


@router.get("/admin/organisations", response_class=HTMLResponse)
async def organisations_page(request: Request, admin: Admin) -> Response:
    async with request.app.state.pool.connection() as conn:
        providers = await run_async(conn, organisations.providers())
        units = await run_async(conn, organisations.units())
        wards = await run_async(conn, organisations.ward_units())
    return render(
        request, "admin_organisations.html", admin, providers=providers, units=units, wards=wards,
        kinds=tuple(organisations.KINDS_SV.items()),
    )  # fmt: skip


@router.post("/admin/organisations/providers")
async def add_provider(
    request: Request, admin: Admin, csrf: Field = "", provider_id: Field = "", name: Field = "",
    kind: Field = "", hsa_id: Field = "",
) -> Response:  # fmt: skip
    origin = form_origin(request, csrf)
    await run_form_command(request, organisations.add_provider(
        provider_id=provider_id.strip().lower(), name=name, kind=kind, hsa_id=hsa_id or None,
        by=admin.username, origin=origin,
    ))  # fmt: skip
    return RedirectResponse(f"/admin/organisations#vardgivare-{provider_id.strip().lower()}", status_code=303)


@router.post("/admin/organisations/units")
async def add_unit(
    request: Request, admin: Admin, csrf: Field = "", unit_id: Field = "", provider_id: Field = "",
    name: Field = "", hsa_id: Field = "",
) -> Response:  # fmt: skip
    origin = form_origin(request, csrf)
    await run_form_command(request, organisations.add_unit(
        unit_id=unit_id.strip().lower(), provider_id=provider_id, name=name, hsa_id=hsa_id or None,
        by=admin.username, origin=origin,
    ))  # fmt: skip
    return RedirectResponse(f"/admin/organisations#enhet-{unit_id.strip().lower()}", status_code=303)


@router.post("/admin/organisations/wards/{ward_id}")
async def set_ward_unit(
    request: Request, admin: Admin, ward_id: WardId, csrf: Field = "", unit_id: Field = ""
) -> Response:
    """Move a ward to another care unit (care.organisations.set_ward_unit)."""
    origin = form_origin(request, csrf)
    await run_form_command(request, organisations.set_ward_unit(
        ward_id=ward_id, unit_id=unit_id, by=admin.username, origin=origin,
    ))  # fmt: skip
    return RedirectResponse(f"/admin/organisations#avdelning-{ward_id}", status_code=303)
