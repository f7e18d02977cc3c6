"""The record's "Pröva gränsen" (issue 11): a proposed limit or SpO2 scale tried on the stored readings
before anyone saves it.

`POST /api/patients/{id}/limit-replay` takes what the limit form (one rule key, one priority, one value)
or the scale form holds, with a period, and answers care.limit_replay's outcome as JSON: the alerts the
limits in force gave and the proposal would have given, per key, and the sentence staff read
("Syremättnad, låg: 2 larm senaste 7 dygnen i stället för 14; tisdag 3/6 14:05 hade fortfarande larmat
(hög)."). The replay, its role check (nurses and physicians; a read), its access-log row and its words
are care's; this module only maps the body to the proposal. `record_limit_replay.js` shows the answer
under the form. Bad input (NaN, a huge number, a high limit nearer normal than the medium one, an
unknown rule) is a 422 with a Swedish text, never a 500.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, Strict

from care.access_log import DASHBOARD
from care.acting import Origin, execute_async
from care.limit_replay import Proposal, outcome_json, replay_limit
from care.refusals import Refused
from dashboard.answers import refusals
from dashboard.auth import api_staff_with_csrf
from dashboard.bodies import RequestBody
from dashboard.inputs import MAX_ID_LENGTH, PatientId, swedish
from dashboard.model import StaffUser
from dashboard.refusals import action_error

router = APIRouter()
Acting = Annotated[StaffUser, Depends(api_staff_with_csrf)]


class ReplayRequest(RequestBody):
    """A limit of one rule key and priority, and/or an SpO2 scale, to try over a period."""

    rule: Annotated[
        str | None, Field(max_length=MAX_ID_LENGTH), swedish("Välj vilken larmgräns som ska prövas")
    ] = None
    priority: Annotated[
        Literal["high", "medium", "low"] | None, swedish("Välj prioritet: hög, medel eller låg")
    ] = None
    limit: Annotated[
        float | None, Strict(), Field(allow_inf_nan=False), swedish("Ange gränsen som ett tal")
    ] = None
    spo2_scale: Annotated[int | None, Strict(), swedish("Välj SpO₂-skala 1 eller 2")] = None
    period: Annotated[
        Literal["24h", "7d", "14d"], swedish("Välj period: senaste dygnet, 7 dygn eller 14 dygn")
    ] = "7d"  # care.limit_replay.DEFAULT_PERIOD

    def proposal(self) -> Proposal:
        limits: dict[str, float] = (
            {self.priority: self.limit} if self.priority is not None and self.limit is not None else {}
        )
        return Proposal(self.rule, limits, self.spo2_scale)


class ReplayedAlertAnswer(BaseModel):
    opened_at: str
    priority: Literal["high", "medium", "low"]
    value: float | None
    message: str
    resolved_at: str | None = Field(description="null: still live when the period ended")


class ReplayedKeyAnswer(BaseModel):
    rule: str = Field(description="a threshold rule key, or news2")
    label: str
    current: list[ReplayedAlertAnswer] = Field(description="the alerts the limits in force gave")
    proposed: list[ReplayedAlertAnswer] = Field(description="the alerts the proposal would have given")
    still_fires: list[ReplayedAlertAnswer] = Field(description="alerts in force the proposal also raises")
    summary: str = Field(description="the comparison in Swedish, as the record shows it")


class ReplayAnswer(BaseModel):
    period: Literal["24h", "7d", "14d"]
    since: str
    until: str
    readings: int
    keys: list[ReplayedKeyAnswer]


@router.post(
    "/api/patients/{patient_id}/limit-replay",
    name="limit_replay",
    response_model=ReplayAnswer,
    responses=refusals(401, 403, 404, 409, 413, 422),
)
async def limit_replay(
    request: Request, patient_id: PatientId, staff: Acting, body: ReplayRequest
) -> JSONResponse:
    """What the proposal would have done to this patient's alerts, beside what the limits in force did."""
    origin = Origin(DASHBOARD, client_address=request.client.host if request.client else None)
    steps = replay_limit(
        patient_id=patient_id, by=staff.username, proposal=body.proposal(), period=body.period, origin=origin
    )
    async with request.app.state.pool.connection() as conn:
        try:
            outcome: Any = await execute_async(conn, steps)
        except Refused as exc:
            raise action_error(exc) from None
    return JSONResponse(outcome_json(outcome, request.app.state.renderer.zone))
