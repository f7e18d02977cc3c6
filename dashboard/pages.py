"""HTML pages: login, ward list, ward overview, patient record."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from care import kit, observations
from care.enrolment import OUTCOMES_SV
from care.limit_replay import PERIOD_SV
from care.permissions import Action, EquipmentAction
from dashboard import care_orders, record_charts, record_sections
from dashboard.access_log import PATIENT_RECORD, WARD_OVERVIEW, WARD_ROUND, entries_for, write_access_log
from dashboard.auth import (
    csrf_ok,
    csrf_token,
    end_session,
    has_session_cookie,
    login_csrf_ok,
    login_csrf_token,
    page_staff,
    safe_next,
    staff_from_session,
    start_session,
    verify_credentials,
)
from dashboard.inputs import PatientId, Text, WardId
from dashboard.login_steps import begin_second_step, needs_second_step
from dashboard.model import ACVPU_LABELS, StaffUser
from dashboard.queries import (
    fetch_patient_record,
    fetch_patient_ward,
    fetch_ward,
    fetch_ward_overview,
    fetch_wards,
)
from dashboard.rendering import CardViewer
from dashboard.ward_round import fetch_ward_round
from dashboard.ward_view import FILTERS, MAX_SEARCH_LENGTH, ViewRefused, WardView
from storage.steps import run_async

log = logging.getLogger(__name__)
# Pages answer a refused request with the error page (dashboard.app), not JSON.
router = APIRouter(
    responses={422: {"description": "Refused parameter (error page)", "content": {"text/html": {}}}}
)
_BIGINT_MAX = 2**63 - 1
# The browser's choice of Kort or Lista (no patient data: "kort" or "lista").
VIEW_COOKIE = "hemma_ward_view"
VIEW_COOKIE_MAX_AGE_S = 365 * 24 * 3600

# What a manual observation may be: care.observations' window and respiration range (the decision
# `hemma observe` and the API apply), for the form's bounds and hints.
_OBSERVATION_WINDOW = {
    "back_minutes": observations.MANUAL_MAX_AGE // timedelta(minutes=1),
    "ahead_minutes": observations.MANUAL_FUTURE_TOLERANCE // timedelta(minutes=1),
    "back_days": observations.MANUAL_MAX_AGE.days,
    "rr_min": int(observations.RESPIRATION_MIN),
    "rr_max": int(observations.RESPIRATION_MAX),
    "oxygen_max": f"{observations.OXYGEN_MAX_L_MIN:g}",
}

_LOGIN_MESSAGES = {
    "invalid": (401, "Fel användarnamn eller lösenord."),
    "disabled": (403, "Kontot är inaktiverat. Kontakta systemförvaltningen."),
}
_LOGIN_FORM_STALE = "Inloggningen kunde inte kontrolleras. Försök igen i formuläret nedan."


def render(
    request: Request, template: str, staff: StaffUser | None, status: int = 200, **context: Any
) -> Response:
    context.update(staff=staff, csrf=csrf_token(request) if staff else "", now=datetime.now(UTC))
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status)


def error_page(request: Request, staff: StaffUser, status: int, message: str) -> Response:
    return render(request, "error.html", staff, status, message=message, status_code=status)


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: Text = "/") -> Response:
    if await staff_from_session(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, 200, next)


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    username: Annotated[Text, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[Text, Form(max_length=2000)] = "/",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    state = request.app.state
    typed = username.strip().lower()[:64]
    if not login_csrf_ok(request, csrf):
        # Not from this browser's own login form (a forged cross-site login), or a form older
        # than the cookie: no password is checked, and the form comes back with a fresh token.
        state.metrics.csrf_rejections += 1
        return _login_page(request, 403, next, error=_LOGIN_FORM_STALE, username=typed)
    outcome = await verify_credentials(request, username, password)
    if outcome.staff is not None and await needs_second_step(request, outcome.staff):
        return begin_second_step(request, outcome.staff, next)  # a TOTP code before any session
    if outcome.staff is not None:
        await start_session(request, outcome.staff)
        state.metrics.logins += 1
        log.info("staff %s logged in from %s", outcome.staff.id, client_address(request))
        return RedirectResponse(safe_next(next), status_code=303)
    state.metrics.failed_logins += 1
    if outcome.reason == "locked":
        state.metrics.login_lockouts += int(outcome.newly_locked)
        log.warning("login refused by the brake for %s", client_address(request))
        message = locked_message(outcome.retry_after_s)
        response = _login_page(request, 429, next, error=message, username=typed)
        response.headers["Retry-After"] = str(math.ceil(outcome.retry_after_s))
        return response
    status, message = _LOGIN_MESSAGES[outcome.reason]
    return _login_page(request, status, next, error=message, username=typed)


def locked_message(retry_after_s: float) -> str:
    minutes = max(1, math.ceil(retry_after_s / 60))
    return f"För många misslyckade inloggningar. Försök igen om {minutes} min."


def _login_page(request: Request, status: int, next: str, **context: Any) -> Response:
    return login_page(request, status, next, **context)


def login_page(request: Request, status: int, next: str, **context: Any) -> Response:
    """The login form; with the OIDC button (dashboard.oidc_login) when an issuer is configured."""
    token = login_csrf_token(request)
    settings = request.app.state.settings
    context.setdefault("oidc_label", settings.oidc_button_label if settings.oidc_configured() else None)
    return render(request, "login.html", None, status, next=safe_next(next), login_csrf=token, **context)


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    if has_session_cookie(request) and not csrf_ok(request, csrf):
        request.app.state.metrics.csrf_rejections += 1
        return Response("Ogiltig CSRF-token", status_code=403, media_type="text/plain; charset=utf-8")
    await end_session(request)
    return RedirectResponse("/login", status_code=303)


@router.get("/", response_class=HTMLResponse)
async def ward_list(request: Request, staff: Annotated[StaffUser, Depends(page_staff)]) -> Response:
    if staff.role == "partner":  # a partner sees no ward, only their granted patients (issue 12)
        return RedirectResponse("/partner", status_code=303)
    if staff.role == "log_reviewer":  # nor does the log reviewer, whose work is the access log
        return RedirectResponse("/logg", status_code=303)
    async with request.app.state.pool.connection() as conn:
        wards = await fetch_wards(conn, staff)
    if len(wards) == 1:
        return RedirectResponse(f"/wards/{wards[0].id}", status_code=303)
    return render(request, "wards.html", staff, wards=wards)


@router.get("/wards/{ward_id}", response_class=HTMLResponse)
async def ward_page(
    request: Request,
    ward_id: WardId,
    staff: Annotated[StaffUser, Depends(page_staff)],
    vy: Annotated[Text | None, Query(max_length=10)] = None,
    visa: Annotated[list[Text] | None, Query(max_length=len(FILTERS))] = None,
    sok: Annotated[Text, Query(max_length=MAX_SEARCH_LENGTH)] = "",
) -> Response:
    """The ward overview as cards or the compact list, filtered and searched (dashboard.ward_view);
    the access log has one row per patient shown, not per patient of the ward."""
    if not staff.can_see(ward_id):
        return error_page(request, staff, 403, "Du har inte behörighet till den här avdelningen.")
    try:
        view = WardView.parse(vy, visa or (), sok, request.cookies.get(VIEW_COOKIE, ""))
    except ViewRefused as refused:
        return error_page(request, staff, 422, str(refused))
    hub = request.app.state.hub
    mark = hub.page_mark(ward_id)  # before the read: what may arrive while it runs
    async with request.app.state.pool.connection() as conn:
        ward = await fetch_ward(conn, ward_id)
        if ward is None:
            return error_page(request, staff, 404, "Avdelningen finns inte.")
        overview = await fetch_ward_overview(conn, ward)
        shown = [card for card in overview.patients if view.shows(card, staff.id, overview.at)]
        await log_ward_read(request, conn, staff, ward_id, [p.id for p in shown], WARD_OVERVIEW)
    # The page's cards or rows are the very fragments the live hub pushes (dashboard.rendering), and
    # are lent to the hub with the read: the websocket this page opens gets them as its snapshot
    # unless something changed meanwhile (live.PagePrimer).
    now = datetime.now(UTC)
    variant = None if view.mode == "list" else CardViewer.of(staff)
    renderer = request.app.state.renderer
    fragments = {card.id: renderer.fragment(card, now, variant) for card in shown}
    hub.prime(ward_id, mark, overview, now, variant, fragments)
    response = render(
        request, "ward.html", staff, ward=ward, overview=overview, shown=shown, view=view,
        filters=FILTERS, max_search=MAX_SEARCH_LENGTH,
        fragments=[Markup(html) for html in fragments.values()],  # noqa: S704 (the macros' own output)
    )  # fmt: skip
    if vy is not None:  # remembered by this browser: the next visit opens as cards or as the list
        response.set_cookie(
            VIEW_COOKIE, view.mode_word, max_age=VIEW_COOKIE_MAX_AGE_S, path="/wards", httponly=True,
            samesite="lax",
        )  # fmt: skip
    return response


@router.get("/wards/{ward_id}/rond", response_class=HTMLResponse)
async def ward_round_page(
    request: Request, ward_id: WardId, staff: Annotated[StaffUser, Depends(page_staff)]
) -> Response:
    """ "Dagens rond": who to review, new levels, flagged answers, contacts (dashboard.ward_round)."""
    if not staff.can_see(ward_id):
        return error_page(request, staff, 403, "Du har inte behörighet till den här avdelningen.")
    async with request.app.state.pool.connection() as conn:
        ward = await fetch_ward(conn, ward_id)
        if ward is None:
            return error_page(request, staff, 404, "Avdelningen finns inte.")
        round_ = await fetch_ward_round(conn, ward)
        await log_ward_read(request, conn, staff, ward_id, round_.patient_ids, WARD_ROUND)
    return render(request, "ward_round.html", staff, ward=ward, round=round_)


async def log_ward_read(
    request: Request, conn: Any, staff: StaffUser, ward_id: str, patient_ids: Any, action: str
) -> None:
    """A ward page's access-log rows: one per patient it shows (the overview's and the round's rule)."""
    request.app.state.metrics.access_log_rows += await write_access_log(
        conn, entries_for(staff, list(patient_ids), action, f"ward:{ward_id} html", client_address(request))
    )


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
async def patient_page(
    request: Request, patient_id: PatientId, staff: Annotated[StaffUser, Depends(page_staff)]
) -> Response:
    async with request.app.state.pool.connection() as conn:
        ward_id = await fetch_patient_ward(conn, patient_id)
        if ward_id is None:
            return error_page(request, staff, 404, "Patienten finns inte.")
        if not staff.can_see(ward_id):
            message = "Patienten tillhör en avdelning du saknar behörighet till."
            return error_page(request, staff, 403, message)
        record = await fetch_patient_record(conn, patient_id)
        if record is None:
            return error_page(request, staff, 404, "Patienten finns inte.")
        patient_kit = await run_async(conn, kit.patient_kit(patient_id))
        sections = await record_sections.load(conn, staff, patient_id)
        zone = request.app.state.settings.site_timezone
        charts = await record_charts.section(conn, patient_id, zone)  # issue 11: the record's charts
        request.app.state.metrics.access_log_rows += await write_access_log(
            conn,
            entries_for(staff, [patient_id], PATIENT_RECORD, f"ward:{ward_id} html", client_address(request)),
        )
    # The order forms staff may use (care.permissions: nurses the plan; physicians also limits and the
    # SpO2 scale; admins none).
    in_care = record.discharged_at is None
    may_limit = in_care and staff.may(Action.SET_ALERT_LIMIT)
    scale = record.spo2_scale.scale if record.spo2_scale else 1
    return render(
        request,
        "patient.html",
        staff,
        record=record,
        card=record.card,
        acvpu=ACVPU_LABELS,
        may_set_limits=may_limit,
        may_order_scale=in_care and staff.may(Action.ORDER_SPO2_SCALE),
        may_plan=in_care and staff.may(Action.SET_MONITORING_PLAN),
        limit_choices=care_orders.limit_choices(scale) if may_limit else (),
        replay_periods=tuple(PERIOD_SV.items()),
        plan_choices=care_orders.plan_choices(),
        discharge_outcomes=tuple(OUTCOMES_SV.items()),
        observation_window=_OBSERVATION_WINDOW,
        spo2_scale=scale,
        kit=patient_kit,
        may_manage_kit=in_care and staff.may(EquipmentAction.MANAGE_KIT_DEVICES),
        device_profiles=kit.profile_names(),
        pairings=kit.profile_pairings(),
        sections=sections,
        charts=charts,
    )
