"""JSON endpoints, the live websocket, metrics and health."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Request, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dashboard import care_orders
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
from dashboard.acknowledge import MAX_NOTE_LENGTH, acknowledge_alert
from dashboard.alert_actions import check_minutes, check_note, resolve_alert, snooze_alert
from dashboard.auth import api_staff, api_staff_with_csrf, current_session, staff_from_session
from dashboard.errors import ActionError, BodyTooLarge, InvalidInput, PatientNotFound
from dashboard.live import CLOSE_FORBIDDEN, CLOSE_TOO_SLOW, CLOSE_UNAUTHENTICATED, CLOSE_UNKNOWN_WARD, LiveHub
from dashboard.model import StaffUser
from dashboard.observations import parse_observation, record_observation
from dashboard.queries import fetch_ward, fetch_ward_overview
from dashboard.same_origin import from_this_site

log = logging.getLogger(__name__)
router = APIRouter()

_BIGINT_MAX = 2**63 - 1
MAX_BODY_BYTES = 16 * 1024  # every action body is a few short fields


class AcknowledgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=MAX_NOTE_LENGTH)

    @field_validator("note")
    @classmethod
    def _blank_is_none(cls, note: str | None) -> str | None:
        return note.strip() or None if note is not None else None


@router.get("/api/wards/{ward_id}/overview")
async def ward_overview(
    request: Request, ward_id: str, staff: Annotated[StaffUser, Depends(api_staff)]
) -> JSONResponse:
    if not staff.can_see(ward_id):
        raise HTTPException(status_code=403, detail="Behörighet saknas för avdelningen")
    async with request.app.state.pool.connection() as conn:
        ward = await fetch_ward(conn, ward_id)
        if ward is None:
            raise HTTPException(status_code=404, detail="Okänd avdelning")
        overview = await fetch_ward_overview(conn, ward)
        client = request.client.host if request.client else None
        shown = [p.id for p in overview.patients]
        request.app.state.metrics.access_log_rows += await write_access_log(
            conn, entries_for(staff, shown, WARD_OVERVIEW, f"ward:{ward_id} api", client)
        )
    return JSONResponse(overview.to_json())


@router.post("/api/alerts/{alert_id}/acknowledge")
async def acknowledge(
    request: Request,
    alert_id: Annotated[int, Path(ge=1, le=_BIGINT_MAX)],
    staff: Annotated[StaffUser, Depends(api_staff_with_csrf)],
    body: Annotated[AcknowledgeRequest | None, Body()] = None,
) -> JSONResponse:
    try:
        async with request.app.state.pool.connection() as conn:
            alert = await acknowledge_alert(
                conn,
                alert_id=alert_id,
                staff=staff,
                note=body.note if body else None,
                client_address=_client(request),
            )
    except ActionError as exc:
        return _refused(request, "acknowledge", exc)
    metrics = request.app.state.metrics
    metrics.acknowledgements += 1
    metrics.access_log_rows += 1
    return JSONResponse({"alert": alert.to_json()})


@router.post("/api/alerts/{alert_id}/snooze")
async def snooze(
    request: Request,
    alert_id: Annotated[int, Path(ge=1, le=_BIGINT_MAX)],
    staff: Annotated[StaffUser, Depends(api_staff_with_csrf)],
) -> JSONResponse:
    """Body {"minutes": int, "note": str | null}: acknowledged until now + minutes (≤ the priority's cap)."""
    try:
        body = await _json_object(request, {"minutes", "note"})
        minutes = check_minutes(body.get("minutes"))
        note = check_note(body.get("note"), required=False)
        async with request.app.state.pool.connection() as conn:
            alert = await snooze_alert(
                conn,
                alert_id=alert_id,
                staff=staff,
                minutes=minutes,
                note=note,
                client_address=_client(request),
            )
    except ActionError as exc:
        return _refused(request, "snooze", exc)
    metrics = request.app.state.metrics
    metrics.snoozes += 1
    metrics.access_log_rows += 1
    return JSONResponse({"alert": alert.to_json()})


@router.post("/api/alerts/{alert_id}/resolve")
async def resolve(
    request: Request,
    alert_id: Annotated[int, Path(ge=1, le=_BIGINT_MAX)],
    staff: Annotated[StaffUser, Depends(api_staff_with_csrf)],
) -> JSONResponse:
    """Body {"note": str (3-500 characters)}: staff end an open or acknowledged alert."""
    try:
        body = await _json_object(request, {"note"})
        note = check_note(body.get("note"), required=True)
        assert note is not None
        async with request.app.state.pool.connection() as conn:
            alert = await resolve_alert(
                conn, alert_id=alert_id, staff=staff, note=note, client_address=_client(request)
            )
    except ActionError as exc:
        return _refused(request, "resolve", exc)
    metrics = request.app.state.metrics
    metrics.resolutions += 1
    metrics.access_log_rows += 1
    return JSONResponse({"alert": alert.to_json()})


@router.post("/api/patients/{patient_id}/observations")
async def observation(
    request: Request, patient_id: str, staff: Annotated[StaffUser, Depends(api_staff_with_csrf)]
) -> JSONResponse:
    """Body {respiratory_rate, consciousness, on_oxygen, oxygen_l_min, time}: see dashboard.observations."""
    try:
        pid = _patient_id(patient_id)
        entered = parse_observation(await _json_body(request))
        async with request.app.state.pool.connection() as conn:
            stored = await record_observation(
                conn, patient_id=pid, staff=staff, observation=entered, client_address=_client(request)
            )
    except ActionError as exc:
        return _refused(request, "observation", exc)
    metrics = request.app.state.metrics
    metrics.manual_observations += 1
    metrics.access_log_rows += 1
    return JSONResponse({"observation": stored.to_json()}, status_code=201)


# --- care-team orders from the record (dashboard.care_orders) ---------------------------------------


@router.post("/api/patients/{patient_id}/limits")
async def set_limit(
    request: Request, patient_id: str, staff: Annotated[StaffUser, Depends(api_staff_with_csrf)]
) -> JSONResponse:
    """Body {"rule", "priority", "limit", "reason", "valid_until"}: a physician's personal alert limit."""
    action = SET_ALERT_LIMIT
    try:
        pid = _patient_id(patient_id)
        body = await _json_object(request, {"rule", "priority", "limit", "reason", "valid_until"})
        answer = await care_orders.set_alert_limit(
            _database_url(request),
            patient_id=pid,
            staff=staff,
            entered=care_orders.parse_limit(body),
            client_address=_client(request),
        )
    except ActionError as exc:
        return _refused(request, action, exc)
    return _ordered(request, action, answer, 201)


@router.post("/api/patients/{patient_id}/limits/{limit_id}/revoke")
async def revoke_limit(
    request: Request,
    patient_id: str,
    limit_id: Annotated[int, Path(ge=1, le=_BIGINT_MAX)],
    staff: Annotated[StaffUser, Depends(api_staff_with_csrf)],
) -> JSONResponse:
    """No body: the limit is revoked (kept as history) and the ward default applies again."""
    action = REVOKE_ALERT_LIMIT
    try:
        pid = _patient_id(patient_id)
        await _json_object(request, set())
        answer = await care_orders.revoke_alert_limit(
            _database_url(request),
            patient_id=pid,
            limit_id=limit_id,
            staff=staff,
            client_address=_client(request),
        )
    except ActionError as exc:
        return _refused(request, action, exc)
    return _ordered(request, action, answer, 200)


@router.post("/api/patients/{patient_id}/spo2-scale")
async def spo2_scale(
    request: Request, patient_id: str, staff: Annotated[StaffUser, Depends(api_staff_with_csrf)]
) -> JSONResponse:
    """Body {"scale": 1 | 2, "reason": str}: a physician's order of the NEWS2 SpO2 scale."""
    action = ORDER_SPO2_SCALE
    try:
        pid = _patient_id(patient_id)
        body = await _json_object(request, {"scale", "reason"})
        answer = await care_orders.order_spo2_scale(
            _database_url(request),
            patient_id=pid,
            staff=staff,
            entered=care_orders.parse_scale(body),
            client_address=_client(request),
        )
    except ActionError as exc:
        return _refused(request, action, exc)
    return _ordered(request, action, answer, 201)


@router.post("/api/patients/{patient_id}/plan")
async def set_plan(
    request: Request, patient_id: str, staff: Annotated[StaffUser, Depends(api_staff_with_csrf)]
) -> JSONResponse:
    """Body {"vital": str, "every_minutes": int}: measure this vital at least this often."""
    action = SET_MONITORING_PLAN
    try:
        pid = _patient_id(patient_id)
        body = await _json_object(request, {"vital", "every_minutes"})
        answer = await care_orders.set_monitoring_plan(
            _database_url(request),
            patient_id=pid,
            staff=staff,
            entered=care_orders.parse_plan(body),
            client_address=_client(request),
        )
    except ActionError as exc:
        return _refused(request, action, exc)
    return _ordered(request, action, answer, 200)


@router.post("/api/patients/{patient_id}/plan/{vital}/clear")
async def clear_plan(
    request: Request, patient_id: str, vital: str, staff: Annotated[StaffUser, Depends(api_staff_with_csrf)]
) -> JSONResponse:
    """No body: the vital leaves the monitoring plan."""
    action = CLEAR_MONITORING_PLAN
    try:
        pid = _patient_id(patient_id)
        await _json_object(request, set())
        answer = await care_orders.clear_monitoring_plan(
            _database_url(request), patient_id=pid, vital=vital, staff=staff, client_address=_client(request)
        )
    except ActionError as exc:
        return _refused(request, action, exc)
    return _ordered(request, action, answer, 200)


def _patient_id(patient_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(patient_id)
    except ValueError:
        raise PatientNotFound(patient_id[:40]) from None


def _database_url(request: Request) -> str:
    return str(request.app.state.settings.require_database_url())


def _ordered(request: Request, action: str, answer: dict[str, Any], status: int) -> JSONResponse:
    metrics = request.app.state.metrics
    metrics.care_orders[action] += 1
    metrics.access_log_rows += 1
    return JSONResponse(answer, status_code=status)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _refused(request: Request, action: str, exc: ActionError) -> JSONResponse:
    """The Swedish message for staff, with the HTTP status the error stands for; counted by action."""
    request.app.state.metrics.action_errors[(action, exc.status)] += 1
    body: dict[str, Any] = {"detail": exc.message}
    if isinstance(exc, InvalidInput) and exc.field:
        body["field"] = exc.field
    return JSONResponse(body, status_code=exc.status)


async def _json_body(request: Request) -> object:
    """The request body as JSON (None when empty); InvalidInput / BodyTooLarge otherwise."""
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise BodyTooLarge(len(raw))
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise InvalidInput("Förfrågan är inte giltig JSON") from None


async def _json_object(request: Request, allowed: set[str]) -> dict[str, Any]:
    """A JSON object with only `allowed` keys (an empty body is an empty object)."""
    body = await _json_body(request)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidInput("Förfrågan måste vara ett JSON-objekt")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(f"Okänt fält: {unknown[0][:40]}", unknown[0][:40])
    return body


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
    async with websocket.app.state.pool.connection() as conn:
        ward = await fetch_ward(conn, ward_id)
    await websocket.accept()
    if ward is None:
        await websocket.close(code=CLOSE_UNKNOWN_WARD, reason="Okänd avdelning")
        return
    if not hub.listening.is_set():
        await websocket.close(code=CLOSE_TOO_SLOW, reason="Ingen kontakt med databasen")
        return
    await hub.serve(websocket, current_session(websocket), ward_id)


def _same_origin(websocket: WebSocket) -> bool:
    """Browsers always send Origin on websockets; refusing foreign ones stops cross-site hijacking."""
    return from_this_site(websocket.headers)


@router.get("/metrics")
async def metrics(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")


@router.get("/healthz")
async def health(request: Request) -> JSONResponse:
    listening = request.app.state.hub.listening.is_set()
    return JSONResponse(
        {"status": "ok" if listening else "degraded", "listening": listening},
        status_code=200 if listening else 503,
    )
