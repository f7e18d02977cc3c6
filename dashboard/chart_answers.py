"""The record chart's JSON (GET /api/patients/{id}/charts/{vital}), as pydantic models for the OpenAPI
schema, in dashboard.answers' style. Times are ISO 8601 in UTC; the page shows them in the site's zone.
The series is columnar (one list per field, one entry per bucket): a month is 720 buckets."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class SeriesAnswer(BaseModel):
    bucket_s: int = Field(description="bucket width in seconds: 300, 3600 or 86400")
    t: list[str] = Field(description="each bucket's start")
    n: list[int] = Field(description="readings in the bucket")
    min: list[float]
    max: list[float]
    mean: list[float]
    last: list[float] = Field(description="the bucket's newest reading")
    flagged: list[bool] = Field(description="some reading of the bucket carried a quality flag")


class LimitAnswer(BaseModel):
    rule: str
    direction: Literal["below", "above"]
    priority: Literal["high", "medium", "low"]
    value: float
    kind: Literal["ward", "personal", "scale_2"] = Field(
        description="the ward's default, the physician's personal limit, or NEWS2 scale 2's SpO2 limit"
    )
    label: str


class MarkerAnswer(BaseModel):
    at: str
    kind: str = Field(
        description="alert events: opened, escalated, acknowledged, resolved; manual: an observation;"
        " answer: a questionnaire answer"
    )
    text: str = Field(description="what the marker says, in Swedish")
    value: float | None = None
    priority: Literal["high", "medium", "low"] | None = None
    alert_id: int | None = None


class News2PointAnswer(BaseModel):
    t: str
    partial_total: int
    total: int | None = Field(description="null when incomplete: partial_total is then a lower bound")
    complete: bool


class WeightRuleAnswer(BaseModel):
    limit_kg: float = Field(description="the 3-day weight rule's limit (alerts.weight.WEIGHT_GAIN_KG)")
    t: list[str]
    gain_kg: list[float] = Field(description="each weight minus the lowest weight of the 3 days before it")


class ChartAnswer(BaseModel):
    patient_id: str
    vital: str
    label: str
    unit: str
    decimals: int
    range: Literal["24h", "7d", "30d", "stay"]
    start: str
    end: str
    series: SeriesAnswer | None = Field(description="null on the NEWS2 track")
    limits: list[LimitAnswer]
    markers: list[MarkerAnswer]
    news2: list[News2PointAnswer] = Field(description="the NEWS2 track (only on vital=news2)")
    weight_rule: WeightRuleAnswer | None = Field(description="only on body_weight")
