"""The JSON the dashboard's API takes, as pydantic models: what the OpenAPI schema shows and what every
request body is validated by. Each field carries the Swedish text staff see when it is refused
(dashboard.inputs.swedish). Shape only: whether an order or an observation may be made is
care's commands' to judge (care.limits, care.plans, care.orders, care.observations), and the alert's
state and cap the action's own. Where a field's range is the command's, the bound and its Swedish
text are taken from care (care.observations, care.texts_sv), so the two never disagree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from care import observations, texts_sv
from care.refusals import Refusal, RefusalCode
from dashboard.alert_actions import MAX_NOTE_LENGTH, MIN_RESOLVE_NOTE_LENGTH
from dashboard.formatting import display_zone
from dashboard.inputs import MAX_ID_LENGTH, REFUSED, check_text, swedish

MAX_REASON_LENGTH = 500
# Breaths per minute and l/min: care.observations' ranges, the same for `hemma observe`.
RR_MIN, RR_MAX = int(observations.RESPIRATION_MIN), int(observations.RESPIRATION_MAX)
OXYGEN_MAX_L_MIN = observations.OXYGEN_MAX_L_MIN
MAX_TIME_LENGTH = 40  # "2026-11-23T14:03:00.000000+01:00" and then some


def _sv(code: RefusalCode, **params: Any) -> str:
    """The Swedish text the care command refuses with, for the same fault caught here by shape."""
    return texts_sv.text(Refusal(code, params))


# Also the text for a reason left out.
LIMIT_REASON_MESSAGE = _sv(RefusalCode.LIMIT_REASON_MISSING)
SCALE_REASON_MESSAGE = _sv(RefusalCode.SCALE_REASON_MISSING)
RESOLVE_NOTE_MESSAGE = "Skriv en anteckning om varför larmet avslutas (minst 3 tecken)"
OXYGEN_FLOW_MESSAGE = _sv(RefusalCode.OXYGEN_FLOW_RANGE, maximum=OXYGEN_MAX_L_MIN)
RESPIRATION_MESSAGE = _sv(RefusalCode.RESPIRATION_IMPOSSIBLE, minimum=RR_MIN, maximum=RR_MAX)


def _blank_is_null(value: Any) -> Any:
    """An empty form field ("") means not given."""
    return None if value == "" else value


def _local_time(value: Any) -> Any:
    """An ISO 8601 time; without a zone it is Swedish local time, as staff read the clock."""
    if not isinstance(value, str) or len(value) > MAX_TIME_LENGTH:
        raise ValueError("not an ISO time")
    at = datetime.fromisoformat(value)
    return at if at.tzinfo is not None else at.replace(tzinfo=display_zone())


def _text(max_length: int, min_length: int | None = None) -> tuple[Any, ...]:
    """A stripped string of at most `max_length` characters that passes the one text check."""
    return (StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
            AfterValidator(check_text))  # fmt: skip


NOTE_TOO_LONG = f"Anteckningen får vara högst {MAX_NOTE_LENGTH} tecken"
Note = Annotated[
    str, *_text(MAX_NOTE_LENGTH), swedish("Anteckningen måste vara text", string_too_long=NOTE_TOO_LONG)
]
ResolveNote = Annotated[
    str,
    *_text(MAX_NOTE_LENGTH, MIN_RESOLVE_NOTE_LENGTH),
    swedish("Anteckningen måste vara text", null=RESOLVE_NOTE_MESSAGE, string_too_short=RESOLVE_NOTE_MESSAGE,
            string_too_long=NOTE_TOO_LONG),
]  # fmt: skip
Minutes = Annotated[
    int,
    Strict(),
    Field(ge=1),
    swedish("Ange snoozetiden i hela minuter", greater_than_equal="Snoozetiden måste vara minst 1 min"),
]
LocalTime = Annotated[
    datetime, BeforeValidator(_local_time), Field(description="ISO 8601; utan zon: svensk tid")
]


def _reason(null: str) -> Any:
    return Annotated[
        str,
        *_text(MAX_REASON_LENGTH),
        swedish("Motiveringen måste vara text", null=null,
                string_too_long=f"Motiveringen får vara högst {MAX_REASON_LENGTH} tecken"),
    ]  # fmt: skip


class RequestBody(BaseModel):
    """A JSON object with only the declared keys. A required key left out is refused like a null one,
    with the field's own Swedish text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _absent_is_null(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {name: None for name, f in cls.model_fields.items() if f.is_required()} | data
        return data


def refuse(message: str, field: str | None = None) -> PydanticCustomError:
    """A refusal of the body as a whole (several fields together), for model validators."""
    return PydanticCustomError(REFUSED, message, {"status": 422, "field": field})


# --- alerts --------------------------------------------------------------------------------------


class AcknowledgeRequest(RequestBody):
    note: Note | None = None

    @field_validator("note")
    @classmethod
    def _blank_is_none(cls, note: str | None) -> str | None:
        return note or None


class SnoozeRequest(RequestBody):
    """Acknowledged until now + minutes; at most the cap of the alert's priority (high 30 min,
    medium 4 h, low 24 h), which the alert decides."""

    minutes: Minutes
    note: Note | None = None

    @field_validator("note")
    @classmethod
    def _blank_is_none(cls, note: str | None) -> str | None:
        return note or None


class ResolveRequest(RequestBody):
    note: ResolveNote


class ContactCloseRequest(RequestBody):
    """The answer given to the patient's contact request (care.contact refuses an empty one)."""

    note: Note


class DischargeRequest(RequestBody):
    """How the home care episode ended (care.enrolment.OUTCOMES_SV: care refuses any other) and an
    optional note."""

    outcome: Annotated[str, *_text(64), swedish("Välj hur vårdtillfället slutade")]
    note: Note | None = None


CALL_WITHIN_MESSAGE = _sv(RefusalCode.CALL_WITHIN_RANGE, minimum=1, maximum=1440)


class ContactTakeRequest(RequestBody):
    """Taking a contact request, optionally saying within how many minutes the patient will be called
    (care.contact: by default the ward's escalation time). No body at all is allowed."""

    call_within_minutes: Annotated[
        Annotated[int, Strict(), Field(ge=1, le=1440)] | None, swedish(CALL_WITHIN_MESSAGE)
    ] = None


class EmptyRequest(RequestBody):
    """No fields: an empty object or no body at all."""


# --- manual observation --------------------------------------------------------------------------


class ObservationRequest(RequestBody):
    """What a nurse or physician observed; at least one of the first three. `time` defaults to now."""

    respiratory_rate: Annotated[
        Annotated[int, Strict(), Field(ge=RR_MIN, le=RR_MAX)] | None,
        BeforeValidator(_blank_is_null),
        swedish(RESPIRATION_MESSAGE),
    ] = None
    consciousness: Annotated[
        Literal["A", "C", "V", "P", "U"] | None,
        BeforeValidator(_blank_is_null),
        swedish(_sv(RefusalCode.CONSCIOUSNESS_CHOICE)),
    ] = None
    on_oxygen: Annotated[bool | None, Strict(), swedish("Ange luft eller syrgas")] = None
    oxygen_l_min: Annotated[
        Annotated[float, Strict(), Field(gt=0, le=OXYGEN_MAX_L_MIN, allow_inf_nan=False)] | None,
        BeforeValidator(_blank_is_null),
        swedish(OXYGEN_FLOW_MESSAGE),
    ] = None
    time: Annotated[LocalTime | None, BeforeValidator(_blank_is_null), swedish("Ogiltig tidpunkt")] = None

    @model_validator(mode="after")
    def _complete(self) -> ObservationRequest:
        if self.oxygen_l_min is not None and self.on_oxygen is not True:
            raise refuse(_sv(RefusalCode.OXYGEN_FLOW_WITHOUT_OXYGEN), "oxygen_l_min")
        if self.respiratory_rate is None and self.consciousness is None and self.on_oxygen is None:
            raise refuse(_sv(RefusalCode.OBSERVATION_EMPTY))
        return self


# --- care-team orders ------------------------------------------------------------------------------


class LimitRequest(RequestBody):
    """A physician's personal alert limit; care.limits judges the rule key, the value and the end."""

    rule: Annotated[str, *_text(MAX_ID_LENGTH, 1), swedish("Välj vilken larmgräns som ska ändras")] = Field(
        description="a key of alerts.thresholds.threshold_keys(), e.g. spo2_low"
    )
    priority: Annotated[Literal["high", "medium", "low"], swedish("Välj prioritet: hög, medel eller låg")]
    limit: Annotated[float, Strict(), Field(allow_inf_nan=False), swedish("Ange gränsen som ett tal")]
    reason: _reason(LIMIT_REASON_MESSAGE)  # type: ignore[valid-type]
    valid_until: Annotated[
        LocalTime | None, BeforeValidator(_blank_is_null), swedish("Ogiltig tidpunkt för Gäller till")
    ] = None


class ScaleRequest(RequestBody):
    """NEWS2 SpO2 scale 1 or 2 (care.orders refuses any other), with the clinical reason."""

    scale: Annotated[int, Strict(), swedish("Välj SpO₂-skala 1 eller 2")]
    reason: _reason(SCALE_REASON_MESSAGE)  # type: ignore[valid-type]


class PlanRequest(RequestBody):
    """Measure `vital` at least every `every_minutes` (care.plans: 5 min to 7 days)."""

    vital: Annotated[str, *_text(MAX_ID_LENGTH, 1), swedish("Välj vad som ska mätas")]
    every_minutes: Annotated[int, Strict(), swedish("Ange intervallet i hela minuter")]


# --- the kit (care.kit) ---------------------------------------------------------------------------

_DEVICE_FIELD = 64  # an address is 17 characters, a profile id at most 64: care.kit refuses the rest


class KitDeviceRequest(RequestBody):
    """A device for the patient's kit (care.kit checks the address, the profile and the passkey), in
    place of the device `replaces` when given."""

    address: Annotated[str, *_text(_DEVICE_FIELD), swedish("Ange enhetens adress")]
    profile: Annotated[str, *_text(_DEVICE_FIELD), swedish("Välj enhetstyp")]
    passkey: Annotated[str, *_text(_DEVICE_FIELD), swedish("Koden är sex siffror")] | None = None
    replaces: Annotated[str, *_text(_DEVICE_FIELD), swedish("Ange adressen som ersätts")] | None = None
