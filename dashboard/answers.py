"""The JSON the dashboard's API answers with, as pydantic models for the OpenAPI schema.

The routes send what dashboard.model's `to_json` methods and dashboard.care_orders build; these models
describe it (the schema-based fuzzer in tests/test_dashboard_openapi.py checks every answer against
them), so integrators can generate clients. Refusals are `Refusal`: the Swedish text staff see, and
for a refused field its name.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Priority = Literal["high", "medium", "low"]


class Refusal(BaseModel):
    detail: str = Field(description="what was refused, in Swedish, for staff; never repeats the input")
    field: str | None = Field(default=None, description="the refused field or parameter (422 only)")


class GatewayAnswer(BaseModel):
    id: str
    status: Literal["online", "offline", "unknown"]
    label: str
    status_at: str | None
    last_message_at: str | None


class News2Answer(BaseModel):
    text: str
    marker: str | None
    title: str
    band: Literal["low", "low-medium", "medium", "high", "unknown"]
    complete: bool
    total: int | None
    partial_total: int
    risk: str = Field(
        description="low, low-medium, medium or high: the band, or the band an incomplete set guarantees"
    )
    urgency: int
    fresh_until: str | None


class VitalAnswer(BaseModel):
    vital: str
    label: str
    name: str
    value: float
    text: str
    unit: str
    time: str | None
    quality: list[str]


class AlertAnswer(BaseModel):
    id: int
    patient_id: str
    rule: str
    vital: str | None
    priority: Priority
    priority_label: str
    state: Literal["pending", "open", "acknowledged", "resolved"]
    message: str
    value: float | None
    observed_at: str | None
    opened_at: str | None
    acknowledged_at: str | None
    acknowledged_by: str | None
    note: str | None
    condition: Literal["physiological", "technical"]
    snoozed_until: str | None
    snoozed_by: str | None
    snooze_minutes: list[int]


class ContactAnswer(BaseModel):
    """The patient's newest contact request not yet closed ("Kontakta mig": the box's button or the app)."""

    id: int
    state: Literal["open", "taken", "closed"]
    source: Literal["button", "app"]
    reason: Literal["contact_request", "feeling_worse", "treatment_question", "technical", "other"]
    message: str | None
    received_at: str | None
    taken_by: str | None
    taken_at: str | None
    call_within_minutes: int | None


class PatientAnswer(BaseModel):
    id: str
    ward_id: str
    name: str
    age: int | None
    care_reason: str | None
    rank: int
    tech_rank: int
    top_priority: Priority | None
    gateway: GatewayAnswer | None
    news2: News2Answer | None
    vitals: list[VitalAnswer]
    alerts: list[AlertAnswer]
    contact: ContactAnswer | None
    unread_messages: int  # from the patient or a relative, no clinician has read yet
    care_level: Literal["red", "yellow", "green"] | None = Field(
        description="the care level in force (care.care_levels): röd, gul, grön; null: none set yet"
    )
    review_due_at: str = Field(description="when the patient is next due for review (ISO 8601)")
    review_overdue: bool = Field(description="due for review now")


class WardAnswer(BaseModel):
    id: str
    name: str


class OverviewAnswer(BaseModel):
    type: Literal["snapshot"]
    ward: WardAnswer
    at: str
    patients: list[PatientAnswer]


class AlertChanged(BaseModel):
    alert: AlertAnswer


class ObservationAnswer(BaseModel):
    id: int
    time: str | None
    respiratory_rate: float | None
    consciousness: str | None
    on_oxygen: bool | None
    oxygen_l_min: float | None
    source: Literal["nurse", "patient"]
    entered_by: str | None
    entered_at: str | None


class ObservationRecorded(BaseModel):
    observation: ObservationAnswer


class LimitAnswer(BaseModel):
    id: int
    rule: str
    priority: Priority
    limit: float
    reason: str
    valid_until: str | None
    set_by: str


class LimitSet(BaseModel):
    limit: LimitAnswer


class RevokedAnswer(BaseModel):
    id: int
    rule: str
    priority: Priority


class LimitRevoked(BaseModel):
    revoked: RevokedAnswer


class ScaleAnswer(BaseModel):
    id: int
    scale: Literal[1, 2]
    reason: str
    ordered_by: str


class ScaleOrdered(BaseModel):
    order: ScaleAnswer


class PlanAnswer(BaseModel):
    vital: str
    every_minutes: int


class KitDeviceAnswer(BaseModel):
    gateway_id: str
    address: str
    version: int | None  # the kit's new configuration version (None: the same device again, no change)


class KitDeviceChanged(BaseModel):
    kit: KitDeviceAnswer


class ContactRequestAnswer(BaseModel):
    """Who took and who closed the request, by username (the card shows their names)."""

    id: int
    state: Literal["taken", "closed"]
    taken_by: str
    closed_by: str | None = None


class ContactRequestChanged(BaseModel):
    contact_request: ContactRequestAnswer


class PlanSet(BaseModel):
    plan: PlanAnswer


class VitalCleared(BaseModel):
    vital: str


class PlanCleared(BaseModel):
    cleared: VitalCleared


class DischargeAnswer(BaseModel):
    patient_id: uuid.UUID
    outcome: Literal["stayed_home", "transferred_to_hospital", "died", "other"]
    discharged_at: datetime
    gateway_id: str | None
    alert_ids: list[int]
    contact_request_ids: list[int]


class Discharged(BaseModel):
    discharged: DischargeAnswer


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    listening: bool


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status answered with a Refusal, described for integrators."""
    return {status: {"model": Refusal, "description": _REFUSAL_TEXTS[status]} for status in statuses}


_REFUSAL_TEXTS = {
    401: "Not logged in (no or expired session).",
    403: "Missing or wrong X-CSRF-Token, another ward's data, or a role that may not do this.",
    404: "No such alert, patient, ward, limit or plan (also an id that cannot exist).",
    409: "The alert or patient is not in a state that allows it (already handled, discharged).",
    413: "The body is larger than 16 KiB.",
    422: "The request's shape or a value is refused; `field` names the field.",
}
