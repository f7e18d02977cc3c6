"""The wire contract between a home gateway and ingest. Both sides import this module.

See docs/protocol.md for the prose version. In short:

* `hemma/v1/gw/{gateway_id}/measurements` (QoS 1, not retained): a `MeasurementBatch`.
  The topic carries the gateway id so a broker ACL (`pattern write hemma/v1/gw/%u/#`)
  confines each gateway to its own topics; ingest rejects a batch whose body names
  another gateway.
* `hemma/v1/gw/{gateway_id}/status` (QoS 1, retained): a `GatewayStatus`. The gateway
  publishes "online" on connect, as a heartbeat and when a device's battery changes markedly,
  with what it knows about its devices (`DeviceStatus`), and registers an "offline" last will.
* `hemma/v1/alerts/{ward_id}` (QoS 1): an `AlertMessage`, published by ingest after the
  alert is committed, for notification services.

No personal identity travels on the wire: a gateway knows only its own id, and
ingest maps gateway -> enrolled patient.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from hemma.vitals import VITALS, Vital, plausibility_problem

PROTOCOL_VERSION = 1
TOPIC_ROOT = "hemma/v1"
MEASUREMENTS_SUBSCRIPTION = f"{TOPIC_ROOT}/gw/+/measurements"
STATUS_SUBSCRIPTION = f"{TOPIC_ROOT}/gw/+/status"
MEASUREMENTS_QOS = 1
STATUS_QOS = 1

MAX_MEASUREMENTS_PER_BATCH = 500
MAX_OBSERVATIONS_PER_MEASUREMENT = 16
MAX_DEVICES_PER_STATUS = 32
# Room for MAX_DEVICES_PER_STATUS devices with 64-character ids (about 5 KB) and the envelope.
MAX_STATUS_BYTES = 8192
# A home device's clock may be wrong; readings more than this far in the future are refused.
MAX_CLOCK_SKEW = timedelta(minutes=10)
# A gateway may be offline for a long time (store and forward); older readings are refused.
MAX_READING_AGE = timedelta(days=90)

GATEWAY_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")
_GATEWAY_ID = Annotated[str, Field(pattern=GATEWAY_ID_PATTERN.pattern)]
_DEVICE_ID = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9:_.-]+$")]
# A Bluetooth SIG characteristic as 4 upper-case hex digits ("2A5E"); a vendor characteristic
# (e.g. BerryMed's BCI stream) as its full lower-case 128-bit UUID.
_CHARACTERISTIC = Annotated[
    str,
    Field(pattern=r"^(?:[0-9A-F]{4}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"),
]
_QUALITY_FLAG = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")]
# The quality flag of a reading whose device clock was unusable (its time is the gateway's
# receive time); device_profiles and the gateway add it, ingest keeps devices.clock_not_set from it.
CLOCK_NOT_SET_FLAG = "device_clock_not_set"


class PayloadRejected(ValueError):
    """A message that does not meet the contract. `reason` is short and safe to log (no patient data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def measurements_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/gw/{gateway_id}/measurements"


def status_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/gw/{gateway_id}/status"


def alerts_topic(ward_id: str) -> str:
    return f"{TOPIC_ROOT}/alerts/{ward_id}"


def gateway_id_from_topic(topic: str) -> str | None:
    parts = topic.split("/")
    if len(parts) == 5 and f"{parts[0]}/{parts[1]}" == TOPIC_ROOT and parts[2] == "gw":
        return parts[3] if GATEWAY_ID_PATTERN.match(parts[3]) else None
    return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Observation(_Strict):
    """One value in canonical units (see hemma.vitals)."""

    vital: Vital
    value: float = Field(allow_inf_nan=False)
    unit: str = Field(max_length=16)
    quality: tuple[_QUALITY_FLAG, ...] = Field(default=(), max_length=16)

    @model_validator(mode="after")
    def _check(self) -> Observation:
        problem = observation_problem(self.vital, self.value, self.unit)
        if problem:
            raise ValueError(problem)
        return self


_UNITS = {info.vital: info.ucum for info in VITALS.values()}
_RANGES = {info.vital: (info.plausible_min, info.plausible_max) for info in VITALS.values()}


def observation_problem(vital: Vital, value: float, unit: str) -> str | None:
    if unit != _UNITS[vital]:
        return f"{vital.value} must be in {_UNITS[vital]}, got {unit!r}"
    low, high = _RANGES[vital]
    if not low <= value <= high:
        return plausibility_problem(vital, value)
    return None


class Measurement(_Strict):
    """One decoded GATT notification or read: the raw bytes and what they mean."""

    id: uuid.UUID
    device_id: _DEVICE_ID
    characteristic: _CHARACTERISTIC
    # Raw GATT value as hex, for provenance and re-decoding after a decoder fix.
    raw: str = Field(max_length=1024, pattern=r"^([0-9a-f]{2})*$")
    # When the device says it measured; gateway receive time when the device sends none.
    effective_time: AwareDatetime
    received_time: AwareDatetime
    observations: tuple[Observation, ...] = Field(min_length=1, max_length=MAX_OBSERVATIONS_PER_MEASUREMENT)


class MeasurementBatch(_Strict):
    v: Literal[1]
    message_id: uuid.UUID
    gateway_id: _GATEWAY_ID
    sent_at: AwareDatetime
    measurements: tuple[Measurement, ...] = Field(min_length=1, max_length=MAX_MEASUREMENTS_PER_BATCH)


_ISO_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T")


class DeviceStatus(_Strict):
    """What the gateway last learnt about one of its devices (so far: its Battery Level, 0x2A19)."""

    device_id: _DEVICE_ID
    # Strict: a JSON integer 0..100, not "15", 15.5 or true.
    battery_percent: int | None = Field(default=None, ge=0, le=100, strict=True)
    # When the gateway read that level (its own clock).
    battery_at: AwareDatetime | None = None

    @field_validator("battery_at", mode="before")
    @classmethod
    def _iso_8601(cls, value: object) -> object:
        # Strict: an ISO 8601 string (or a datetime), never a number read as Unix time.
        if value is None or isinstance(value, datetime):
            return value
        if isinstance(value, str) and _ISO_DATE_TIME.match(value):
            return value
        raise ValueError("must be an ISO 8601 date-time with a UTC offset")

    @model_validator(mode="after")
    def _check(self) -> DeviceStatus:
        if (self.battery_percent is None) != (self.battery_at is None):
            raise ValueError("battery_percent and battery_at come together")
        return self


class GatewayStatus(_Strict):
    v: Literal[1]
    gateway_id: _GATEWAY_ID
    state: Literal["online", "offline"]
    at: datetime | None = None  # absent in the last will, which is composed at connect time
    software: str | None = Field(default=None, max_length=64)
    # Optional (v1 gateways before it send none); one entry per device, each device at most once.
    devices: tuple[DeviceStatus, ...] | None = Field(default=None, max_length=MAX_DEVICES_PER_STATUS)

    @model_validator(mode="after")
    def _check(self) -> GatewayStatus:
        if self.devices and len({d.device_id for d in self.devices}) != len(self.devices):
            raise ValueError("devices: a device_id appears more than once")
        return self


class AlertMessage(_Strict):
    v: Literal[1]
    alert_id: int
    ward_id: str
    patient_id: uuid.UUID
    rule: str
    priority: Literal["high", "medium", "low"]
    state: str
    message: str
    at: datetime


def encode(model: BaseModel) -> bytes:
    return model.model_dump_json(exclude_none=True).encode()


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "message"
    return f"{where}: {err['msg']}"[:300]


class _BatchEnvelope(_Strict):
    """The batch with its measurements still unvalidated, so one bad measurement cannot sink the rest."""

    v: Literal[1]
    message_id: uuid.UUID
    gateway_id: _GATEWAY_ID
    sent_at: AwareDatetime
    measurements: tuple[dict[str, Any], ...] = Field(min_length=1, max_length=MAX_MEASUREMENTS_PER_BATCH)


@dataclass(frozen=True, slots=True)
class RejectedMeasurement:
    index: int
    measurement: dict[str, Any]
    reason: str


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    message_id: uuid.UUID
    gateway_id: str
    sent_at: AwareDatetime
    measurements: list[Measurement]
    rejected: list[RejectedMeasurement]


def _check_times(m: Measurement, now: datetime) -> None:
    if m.effective_time > now + MAX_CLOCK_SKEW:
        raise ValueError("effective_time is in the future")
    if m.effective_time < now - MAX_READING_AGE:
        raise ValueError(f"effective_time older than {MAX_READING_AGE.days} days")


def decode_measurement_batch(topic: str, payload: bytes, *, now: datetime, max_bytes: int) -> DecodedBatch:
    """Validate a measurements message against the contract.

    A message that is not a batch at all raises PayloadRejected (the whole message is
    dead-lettered). A well-formed batch is split: valid measurements are returned for
    storage, invalid ones are returned in `rejected` with their reason.
    """
    if len(payload) > max_bytes:
        raise PayloadRejected(f"oversized: {len(payload)} bytes > limit {max_bytes}")
    topic_gateway = gateway_id_from_topic(topic)
    if topic_gateway is None or not topic.endswith("/measurements"):
        raise PayloadRejected(f"unexpected topic {topic[:120]!r}")
    try:
        # Fast path: the whole batch is valid (the normal case), validated in one pass.
        batch = MeasurementBatch.model_validate_json(payload)
    except ValidationError:
        batch = None
    if batch is not None and batch.gateway_id == topic_gateway:
        try:
            for m in batch.measurements:
                _check_times(m, now)
        except ValueError:
            pass
        else:
            return DecodedBatch(
                batch.message_id, batch.gateway_id, batch.sent_at, list(batch.measurements), []
            )
    try:
        envelope = _BatchEnvelope.model_validate_json(payload)
    except ValidationError as exc:
        raise PayloadRejected("schema: " + _first_error(exc)) from exc
    if envelope.gateway_id != topic_gateway:
        raise PayloadRejected("gateway_id in body does not match topic")
    good: list[Measurement] = []
    rejected: list[RejectedMeasurement] = []
    for index, raw in enumerate(envelope.measurements):
        try:
            m = Measurement.model_validate(raw)
            _check_times(m, now)
        except ValidationError as exc:
            rejected.append(RejectedMeasurement(index, raw, "schema: " + _first_error(exc)))
            continue
        except ValueError as exc:
            rejected.append(RejectedMeasurement(index, raw, str(exc)))
            continue
        good.append(m)
    return DecodedBatch(envelope.message_id, envelope.gateway_id, envelope.sent_at, good, rejected)


def decode_gateway_status(topic: str, payload: bytes) -> GatewayStatus:
    topic_gateway = gateway_id_from_topic(topic)
    if topic_gateway is None or not topic.endswith("/status"):
        raise PayloadRejected(f"unexpected topic {topic[:120]!r}")
    if len(payload) > MAX_STATUS_BYTES:
        raise PayloadRejected(f"oversized status: {len(payload)} bytes > limit {MAX_STATUS_BYTES}")
    try:
        status = GatewayStatus.model_validate_json(payload)
    except ValidationError as exc:
        raise PayloadRejected("schema: " + _first_error(exc)) from exc
    if status.gateway_id != topic_gateway:
        raise PayloadRejected("gateway_id in body does not match topic")
    return status
