"""JSON endpoints, the live websocket, metrics and health.

The routes are thin and typed: path parameters and bodies are declared with dashboard.inputs and
dashboard.bodies (the OpenAPI schema at /openapi.json is generated from them), a refusal is raised as
an ActionError and answered, in Swedish and counted by route name, by dashboard.app's handlers.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse

from care.access_log import DASHBOARD
from care.acting import Origin
from dashboard import alert_actions, answers, care_orders
from dashboard.access_log import (
    CLEAR_MONITORING_PLAN,
    ORDER_SPO2_SCALE,
    REVOKE_ALERT_LIMIT,
    SET_ALERT_LIMIT,
    SET_MONITORING_PLAN,
    WARD_OVERVIEW,
    entries_for,
    write_access_log,
)
from dashboard.answers import refusals
from dashboard.auth import api_staff, api_staff_with_csrf, current_session, staff_from_session
from dashboard.bodies import (
    AcknowledgeRequest,
    ContactCloseRequest,
    ContactTakeRequest,
    DischargeRequest,
    EmptyRequest,
    KitDeviceRequest,
    LimitRequest,
    ObservationRequest,
    PlanRequest,
    ResolveRequest,
    ScaleRequest,
    SnoozeRequest,
)
from dashboard.inputs import (
    MAX_ID_LENGTH,
    AlertId,
    BoundedJSONRoute,
    ContactRequestId,
    DeviceAddress,
    LimitId,
    PatientId,
    VitalName,
    WardId,
    is_clean_text,
)
from dashboard.live import (
    CLOSE_BAD_VIEW,
    CLOSE_FORBIDDEN,
    CLOSE_TOO_SLOW,
    CLOSE_UNAUTHENTICATED,
    CLOSE_UNKNOWN_WARD,
    LiveHub,
)
from dashboard.model import StaffUser
from dashboard.observations import record_observation
from dashboard.queries import fetch_alert, fetch_ward, fetch_ward_overview
from dashboard.same_origin import from_this_site
from dashboard.ward_view import ViewRefused, WardView
from storage.steps import Steps, run_async

if TYPE_CHECKING:
    from alerts.store import AlertChange

log = logging.getLogger(__name__)
# Every JSON body is read by dashboard.inputs' bounded, strict parser.
router = APIRouter(route_class=BoundedJSONRoute)

Staff = Annotated[StaffUser, Depends(api_staff)]
# State-changing routes: a session and its CSRF token in X-CSRF-Token.
Acting = Annotated[StaffUser, Depends(api_staff_with_csrf)]
_ACTION_REFUSALS = refusals(401, 403, 404, 409, 413, 422)


@router.get(
    "/api/wards/{ward_id}/overview",
    name=WARD_OVERVIEW,
    response_model=answers.OverviewAnswer,
    responses=refusals(401, 403, 404, 422),
)
async def ward_overview(request: Request, ward_id: WardId, staff: Staff) -> JSONResponse:
    """The ward's patients as the live overview shows them (the websocket's snapshot)."""
    if not staff.can_see(ward_id):
        raise HTTPException(status_code=403, detail="Behörighet saknas för avdelningen")
    async with request.app.state.pool.connection() as conn:
        ward = await fetch_ward(conn, ward_id)
        if ward is None:
            raise HTTPException(status_code=404, detail="Okänd avdelning")
        overview = await fetch_ward_overview(conn, ward)
        shown = [p.id for p in overview.patients]
        request.app.state.metrics.access_log_rows += await write_access_log(
            conn, entries_for(staff, shown, WARD_OVERVIEW, f"ward:{ward_id} api", _client(request))
        )
    return JSONResponse(overview.to_json())


@router.post(
    "/api/alerts/{alert_id}/acknowledge",
    name="acknowledge",
    response_model=answers.AlertChanged,
    responses=_ACTION_REFUSALS,
)
async def acknowledge(
    request: Request,
    alert_id: AlertId,
    staff: Acting,
    body: Annotated[AcknowledgeRequest, Body()] = AcknowledgeRequest(),  # noqa: B008 (frozen: shared safely)
) -> JSONResponse:
    """Acknowledge an open alert, with an optional note (no body at all is allowed)."""
    steps = alert_actions.acknowledge(alert_id, staff, body.note, _client(request))
    return await _alert_action(request, alert_id, staff, steps)


@router.post(
    "/api/alerts/{alert_id}/snooze",
    name="snooze",
    response_model=answers.AlertChanged,
    responses=_ACTION_REFUSALS,
)
async def snooze(request: Request, alert_id: AlertId, staff: Acting, body: SnoozeRequest) -> JSONResponse:
    """Acknowledged until now + minutes (at most the priority's cap); open or acknowledged alerts only."""
    steps = alert_actions.snooze(alert_id, staff, body.minutes, body.note, _client(request))
    return await _alert_action(request, alert_id, staff, steps)


@router.post(
    "/api/alerts/{alert_id}/resolve",
    name="resolve",
    response_model=answers.AlertChanged,
    responses=_ACTION_REFUSALS,
)
async def resolve(request: Request, alert_id: AlertId, staff: Acting, body: ResolveRequest) -> JSONResponse:
    """Staff end an open or acknowledged alert, with a note saying why."""
    steps = alert_actions.resolve(alert_id, staff, body.note, _client(request))
    return await _alert_action(request, alert_id, staff, steps)


@router.post(
    "/api/patients/{patient_id}/observations",
    name="observation",
    status_code=201,
    response_model=answers.ObservationRecorded,
    responses=_ACTION_REFUSALS,
)
async def observation(
    request: Request, patient_id: PatientId, staff: Acting, body: ObservationRequest
) -> JSONResponse:
    """A manual observation (respiration rate, ACVPU, air or oxygen): see dashboard.observations."""
    async with request.app.state.pool.connection() as conn:
        stored = await record_observation(
            conn, patient_id=patient_id, staff=staff, observation=body, origin=_origin(request)
        )
    metrics = request.app.state.metrics
    metrics.manual_observations += 1
    metrics.access_log_rows += 1
    return JSONResponse({"observation": stored.to_json()}, status_code=201)


# --- care-team orders from the record (dashboard.care_orders) ---------------------------------------
# Each route builds its care command; `_order` runs it on the pool's connection, counts it and
# answers (a refusal is raised as an ActionError and answered by dashboard.app's handlers).


@router.post(
    "/api/patients/{patient_id}/limits",
    name=SET_ALERT_LIMIT,
    status_code=201,
    response_model=answers.LimitSet,
    responses=_ACTION_REFUSALS,
)
async def set_limit(
    request: Request, patient_id: PatientId, staff: Acting, body: LimitRequest
) -> JSONResponse:
    """A physician's personal alert limit (the one in force for that rule and priority is revoked)."""
    return await _order(
        request, care_orders.set_alert_limit_order(patient_id, staff, body, _origin(request)), 201
    )


@router.post(
    "/api/patients/{patient_id}/limits/{limit_id}/revoke",
    name=REVOKE_ALERT_LIMIT,
    response_model=answers.LimitRevoked,
    responses=_ACTION_REFUSALS,
)
async def revoke_limit(
    request: Request,
    patient_id: PatientId,
    limit_id: LimitId,
    staff: Acting,
    body: Annotated[EmptyRequest, Body()] = EmptyRequest(),  # noqa: B008 (frozen: shared safely)
) -> JSONResponse:
    """The limit is revoked (kept as history) and the ward default applies again."""
    order = care_orders.revoke_alert_limit_order(patient_id, limit_id, staff, _origin(request))
    return await _order(request, order, 200)


@router.post(
    "/api/patients/{patient_id}/spo2-scale",
    name=ORDER_SPO2_SCALE,
    status_code=201,
    response_model=answers.ScaleOrdered,
    responses=_ACTION_REFUSALS,
)
async def spo2_scale(
    request: Request, patient_id: PatientId, staff: Acting, body: ScaleRequest
) -> JSONResponse:
    """A physician's order of the NEWS2 SpO2 scale (back to scale 1 is an order with its own reason)."""
    return await _order(request, care_orders.spo2_scale_order(patient_id, staff, body, _origin(request)), 201)


@router.post(
    "/api/patients/{patient_id}/plan",
    name=SET_MONITORING_PLAN,
    response_model=answers.PlanSet,
    responses=_ACTION_REFUSALS,
)
async def set_plan(request: Request, patient_id: PatientId, staff: Acting, body: PlanRequest) -> JSONResponse:
    """Measure this vital at least this often (replaces the vital's plan and restarts its clock)."""
    return await _order(request, care_orders.set_plan_order(patient_id, staff, body, _origin(request)), 200)


@router.post(
    "/api/patients/{patient_id}/plan/{vital}/clear",
    name=CLEAR_MONITORING_PLAN,
    response_model=answers.PlanCleared,
    responses=_ACTION_REFUSALS,
)
async def clear_plan(
    request: Request,
    patient_id: PatientId,
    vital: VitalName,
    staff: Acting,
    body: Annotated[EmptyRequest, Body()] = EmptyRequest(),  # noqa: B008 (frozen: shared safely)
) -> JSONResponse:
    """The vital leaves the monitoring plan (a live missing-data alarm for it ends with it)."""
    return await _order(
        request, care_orders.clear_plan_order(patient_id, vital, staff, _origin(request)), 200
    )


@router.post(
    "/api/patients/{patient_id}/kit/devices",
    name="add_kit_device",
    response_model=answers.KitDeviceChanged,
    responses=_ACTION_REFUSALS,
)
async def add_kit_device(
    request: Request, patient_id: PatientId, staff: Acting, body: KitDeviceRequest
) -> JSONResponse:
    """A device for the patient's kit (or in place of `replaces`): the kit gets a new configuration."""
    return await _order(
        request, care_orders.add_kit_device_order(patient_id, staff, body, _origin(request)), 200
    )


@router.post(
    "/api/patients/{patient_id}/kit/devices/{address}/remove",
    name="remove_kit_device",
    response_model=answers.KitDeviceChanged,
    responses=_ACTION_REFUSALS,
)
async def remove_kit_device(
    request: Request,
    patient_id: PatientId,
    address: DeviceAddress,
    staff: Acting,
    body: Annotated[EmptyRequest, Body()] = EmptyRequest(),  # noqa: B008 (frozen: shared safely)
) -> JSONResponse:
    """Take a device out of the patient's kit (kept as history): the kit gets a new configuration."""
    return await _order(
        request, care_orders.remove_kit_device_order(patient_id, address, staff, _origin(request)), 200
    )


@router.post(
    "/api/patients/{patient_id}/contact-requests/{request_id}/take",
    name="take_contact_request",
    response_model=answers.ContactRequestChanged,
    responses=_ACTION_REFUSALS,
)
async def take_contact_request(
    request: Request,
    patient_id: PatientId,
    request_id: ContactRequestId,
    staff: Acting,
    body: Annotated[ContactTakeRequest, Body()] = ContactTakeRequest(),  # noqa: B008 (frozen: shared safely)
) -> JSONResponse:
    """Take the patient's "Kontakta mig" request: the ward sees who is calling the patient, and the
    patient's app says within how long (`call_within_minutes`, by default the ward's escalation time)."""
    order = care_orders.take_contact_request_order(
        patient_id, request_id, staff, _origin(request), call_within_minutes=body.call_within_minutes
    )
    return await _order(request, order, 200)


@router.post(
    "/api/patients/{patient_id}/contact-requests/{request_id}/close",
    name="close_contact_request",
    response_model=answers.ContactRequestChanged,
    responses=_ACTION_REFUSALS,
)
async def close_contact_request(
    request: Request, patient_id: PatientId, request_id: ContactRequestId, staff: Acting,
    body: ContactCloseRequest,
) -> JSONResponse:  # fmt: skip
    """Close the patient's request with the answer given (a short note)."""
    order = care_orders.close_contact_request_order(patient_id, request_id, staff, body, _origin(request))
    return await _order(request, order, 200)


@router.post(
    "/api/patients/{patient_id}/discharge",
    name="discharge_patient",
    response_model=answers.Discharged,
    responses=_ACTION_REFUSALS,
)
async def discharge(
    request: Request, patient_id: PatientId, staff: Acting, body: DischargeRequest
) -> JSONResponse:
    """End the home care episode with its outcome: alerts, plans and reminders stop, open contact
    requests close, the patient app's devices are revoked and the kit is freed; the record stays."""
    return await _order(request, care_orders.discharge_order(patient_id, staff, body, _origin(request)), 200)


async def _order(request: Request, order: care_orders.Order[Any], status: int) -> JSONResponse:
    """Run one care-team order on the pool's connection (one transaction: the order, its access_log
    row and its NOTIFY), count it, answer with its JSON."""
    async with request.app.state.pool.connection() as conn:
        answer = await care_orders.carry_out(conn, order)
    metrics = request.app.state.metrics
    metrics.care_orders[order.action.value] += 1
    metrics.access_log_rows += 1
    return JSONResponse(answer, status_code=status)


def _origin(request: Request) -> Origin:
    """Where a care command came from, for its access_log row."""
    return Origin(DASHBOARD, client_address=_client(request))


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _alert_action(
    request: Request, alert_id: int, staff: StaffUser, steps: Steps[AlertChange]
) -> JSONResponse:
    """A staff action on an alert (dashboard.alert_actions) and the alert as staff now see it, in one
    transaction: if the access log or the alert cannot be written, neither is. Counted by its kind."""
    async with request.app.state.pool.connection() as conn, conn.transaction():
        change = await run_async(conn, steps)
        view = await fetch_alert(conn, alert_id)
    log.info("alert %s %s by staff %s", alert_id, change.kind, staff.id)
    assert view is not None  # locked and written above, so it still exists
    request.app.state.metrics.staff_action(change.kind)
    return JSONResponse({"alert": view.to_json()})


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request, staff: Staff) -> JSONResponse:
    """The API's OpenAPI schema, for logged-in staff and integrators (no docs page: it would load a CDN)."""
    return JSONResponse(request.app.openapi())


@router.websocket("/ws/wards/{ward_id}")
async def ward_socket(websocket: WebSocket, ward_id: str) -> None:
    # Close codes only reach the browser after accept(); before it, it sees a bare HTTP 403.
    hub: LiveHub = websocket.app.state.hub
    if not _same_origin(websocket):
        await websocket.accept()
        await websocket.close(code=CLOSE_FORBIDDEN, reason="Fel ursprung")
        return
    staff = await staff_from_session(websocket)
    if staff is None:
        await websocket.accept()
        await websocket.close(code=CLOSE_UNAUTHENTICATED, reason="Inte inloggad")
        return
    if not staff.can_see(ward_id):
        await websocket.accept()
        await websocket.close(code=CLOSE_FORBIDDEN, reason="Behörighet saknas")
        return
    ward = None
    if len(ward_id) <= MAX_ID_LENGTH and is_clean_text(ward_id):  # else no such ward can exist
        async with websocket.app.state.pool.connection() as conn:
            ward = await fetch_ward(conn, ward_id)
    await websocket.accept()
    if ward is None:
        await websocket.close(code=CLOSE_UNKNOWN_WARD, reason="Okänd avdelning")
        return
    if not hub.listening.is_set():
        await websocket.close(code=CLOSE_TOO_SLOW, reason="Ingen kontakt med databasen")
        return
    query = websocket.query_params
    try:  # the page's view (dashboard.ward_view): cards or list, filters, search, as in its own URL
        view = WardView.parse(query.get("vy"), query.getlist("visa"), query.get("sok"))
    except ViewRefused:
        await websocket.close(code=CLOSE_BAD_VIEW, reason="Okänd vy")
        return
    await hub.serve(websocket, current_session(websocket), ward_id, view)


def _same_origin(websocket: WebSocket) -> bool:
    """Browsers always send Origin on websockets; refusing foreign ones stops cross-site hijacking."""
    return from_this_site(websocket.headers)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")


@router.get("/healthz", response_model=answers.Health, responses={503: {"model": answers.Health}})
async def health(request: Request) -> JSONResponse:
    listening = request.app.state.hub.listening.is_set()
    return JSONResponse(
        {"status": "ok" if listening else "degraded", "listening": listening},
        status_code=200 if listening else 503,
    )
