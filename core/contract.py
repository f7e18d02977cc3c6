"""The wire contract between a home gateway and ingest. Both sides import this module.

See docs/protocol.md for the prose version. In short:

* `hemma/v1/gw/{gateway_id}/measurements` (QoS 1, not retained): a `MeasurementBatch`.
  The topic carries the gateway id so a broker ACL (`pattern write hemma/v1/gw/%u/#`)
  confines each gateway to its own topics; ingest rejects a batch whose body names
  another gateway.
* `hemma/v1/gw/{gateway_id}/status` (QoS 1, retained): a `GatewayStatus`. The gateway
  publishes "online" on connect, as a heartbeat and when a device's battery changes markedly,
  with what it knows about its devices (`DeviceStatus`), and registers an "offline" last will.
* `hemma/v1/gw/{gateway_id}/receipts` (QoS 1, not retained): a `Receipt`, published by ingest
  after the database commit, read only by that gateway. A gateway keeps every message in its
  store-and-forward queue until a receipt names it (the end-to-end argument: a broker's PUBACK is
  a hop, not a delivery), and re-sends what has none.
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
from typing import Annotated, Any, Literal, TypeVar

import jiter
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from core.vitals import VITALS, Vital, plausibility_problem

PROTOCOL_VERSION = 1
TOPIC_ROOT = "hemma/v1"
MEASUREMENTS_SUBSCRIPTION = f"{TOPIC_ROOT}/gw/+/measurements"
STATUS_SUBSCRIPTION = f"{TOPIC_ROOT}/gw/+/status"
EVENTS_SUBSCRIPTION = f"{TOPIC_ROOT}/gw/+/events"
MEASUREMENTS_QOS = 1
STATUS_QOS = 1
RECEIPTS_QOS = 1
EVENTS_QOS = 1

MAX_MEASUREMENTS_PER_BATCH = 500
MAX_OBSERVATIONS_PER_MEASUREMENT = 16
MAX_DEVICES_PER_STATUS = 32
# Ingest confirms up to this many messages in one receipt (a batch of more is sent as several).
MAX_RECEIPTS_PER_MESSAGE = 500
MAX_RECEIPT_BYTES = 128 * 1024
MAX_REASON_LENGTH = 300
# Room for MAX_DEVICES_PER_STATUS devices with 64-character ids (about 5 KB) and the envelope.
MAX_STATUS_BYTES = 8192
CONFIG_QOS = 1
MAX_KIT_DEVICES = 16
MAX_UNKNOWN_DEVICES = 8
MAX_REMINDER_TIMES = 8
MAX_CONFIG_BYTES = 16 * 1024
MAX_EVENTS_PER_MESSAGE = 50
MAX_EVENTS_BYTES = 16 * 1024
# Config versions count up per kit; a JSON number stays exact up to 2**53.
MAX_CONFIG_VERSION = 2**53 - 1
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


def receipts_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/gw/{gateway_id}/receipts"


def events_topic(gateway_id: str) -> str:
    """What the patient does on the box itself (the button): store-and-forward, confirmed by receipts."""
    return f"{TOPIC_ROOT}/gw/{gateway_id}/events"


def config_topic(gateway_id: str) -> str:
    """The kit's configuration: retained, written by the server only, read by that kit only (ACL)."""
    return f"{TOPIC_ROOT}/gw/{gateway_id}/config"


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
    """One value in canonical units (see core.vitals)."""

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

    @model_validator(mode="after")
    def _each_vital_once(self) -> Measurement:
        # One GATT value says each vital once. A second copy could only be stored under the same
        # idempotency key (measurement id, vital, time) as the first and would vanish as a
        # "duplicate": refuse the measurement instead, so it is dead-lettered, never dropped.
        seen: set[Vital] = set()
        for o in self.observations:
            if o.vital in seen:
                raise ValueError(f"vital {o.vital.value} appears more than once")
            seen.add(o.vital)
        return self


class MeasurementBatch(_Strict):
    v: Literal[1]
    message_id: uuid.UUID
    gateway_id: _GATEWAY_ID
    sent_at: AwareDatetime
    measurements: tuple[Measurement, ...] = Field(min_length=1, max_length=MAX_MEASUREMENTS_PER_BATCH)


class KitEvent(_Strict):
    """Something the patient did on the box. `event_id` is given when it happens and is the key
    ingest stores it under, so a message sent again never makes a second contact request."""

    event_id: uuid.UUID
    # "contact_request": the patient pressed the box's button ("kontakta mig").
    kind: Literal["contact_request"]
    at: AwareDatetime  # the gateway's clock when it happened
    source: Literal["button"]


class KitEventBatch(_Strict):
    """Events of one kit (uplink, `events_topic`, QoS 1), through the same store-and-forward queue and
    receipts as measurements: a receipt names the message, `rejected` indexes `events`."""

    v: Literal[1]
    message_id: uuid.UUID
    gateway_id: _GATEWAY_ID
    sent_at: AwareDatetime
    events: tuple[KitEvent, ...] = Field(min_length=1, max_length=MAX_EVENTS_PER_MESSAGE)

    @model_validator(mode="after")
    def _each_once(self) -> KitEventBatch:
        ids = [e.event_id for e in self.events]
        if len(set(ids)) != len(ids):
            raise ValueError("events: an event_id appears more than once")
        return self


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


# A Bluetooth device address as the gateway reports it: six upper-case hex pairs. A device that uses
# resolvable private addresses is listed by the identity address it resolves to once bonded.
_ADDRESS = Annotated[str, Field(pattern=r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")]
_PROFILE_ID = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


class KitDevice(_Strict):
    """One device of the kit: the gateway connects to these and to nothing else."""

    address: _ADDRESS
    profile: _PROFILE_ID  # device_profiles catalogue id (the profile file's name)
    # Six digits for a profile whose pairing is "passkey" (the glucose meter shows or prints it).
    passkey: str | None = Field(default=None, pattern=r"^\d{6}$")


class PlannedMeasurement(_Strict):
    """From the monitoring plan: measure this vital at least this often (for the box's reminder light)."""

    vital: Vital
    every_minutes: int = Field(ge=5, le=7 * 24 * 60, strict=True)


class KitConfig(_Strict):
    """The kit's configuration (downlink, `config_topic`, retained): a whole new version each time.

    The gateway applies a version above the one it has without a restart and reports the version it
    applied in its status (`GatewayStatus.config_version`); it ignores an older or equal one, so a
    retained message re-delivered after a reconnect changes nothing.
    """

    v: Literal[1]
    gateway_id: _GATEWAY_ID
    version: int = Field(ge=1, le=MAX_CONFIG_VERSION, strict=True)
    issued_at: AwareDatetime
    devices: tuple[KitDevice, ...] = Field(max_length=MAX_KIT_DEVICES)
    schedule: tuple[PlannedMeasurement, ...] = Field(default=(), max_length=len(Vital))
    # Local times of day ("08:00") at which the box reminds the patient of what is due.
    reminder_times: tuple[Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")], ...] = Field(
        default=(), max_length=MAX_REMINDER_TIMES
    )

    @model_validator(mode="after")
    def _check(self) -> KitConfig:
        addresses = [d.address for d in self.devices]
        if len(set(addresses)) != len(addresses):
            raise ValueError("devices: an address appears more than once")
        vitals = [s.vital for s in self.schedule]
        if len(set(vitals)) != len(vitals):
            raise ValueError("schedule: a vital appears more than once")
        if len(set(self.reminder_times)) != len(self.reminder_times):
            raise ValueError("reminder_times: a time appears more than once")
        return self


class UnknownDevice(_Strict):
    """A compatible device in range that is not the kit's: reported as a fact, never read."""

    address: _ADDRESS
    profile: _PROFILE_ID
    seen_at: AwareDatetime


class Unconfirmed(_Strict):
    """Messages the gateway has sent at least once and ingest has not yet confirmed with a receipt."""

    messages: int = Field(ge=0, le=10**9, strict=True)
    measurements: int = Field(ge=0, le=10**12, strict=True)
    # Seconds from the first sending of the oldest of them to the status's `at` (0 when there is none).
    oldest_age_s: float = Field(ge=0, le=10**9, allow_inf_nan=False)


class GatewayStatus(_Strict):
    v: Literal[1]
    gateway_id: _GATEWAY_ID
    state: Literal["online", "offline"]
    at: datetime | None = None  # absent in the last will, which is composed at connect time
    software: str | None = Field(default=None, max_length=64)
    # Optional (v1 gateways before it send none); one entry per device, each device at most once.
    devices: tuple[DeviceStatus, ...] | None = Field(default=None, max_length=MAX_DEVICES_PER_STATUS)
    # Optional (gateways before receipts send none): what awaits a receipt, for the
    # `receipts_overdue` technical alarm. In every "online" status of a current gateway.
    unconfirmed: Unconfirmed | None = None
    # Optional (gateways before kit configuration send none): the KitConfig version applied, absent
    # while the kit has none; and the compatible devices in range that are not the kit's.
    config_version: int | None = Field(default=None, ge=1, le=MAX_CONFIG_VERSION, strict=True)
    unknown_devices: tuple[UnknownDevice, ...] | None = Field(default=None, max_length=MAX_UNKNOWN_DEVICES)

    @model_validator(mode="after")
    def _check(self) -> GatewayStatus:
        if self.devices and len({d.device_id for d in self.devices}) != len(self.devices):
            raise ValueError("devices: a device_id appears more than once")
        unknown = [d.address for d in self.unknown_devices or ()]
        if len(set(unknown)) != len(unknown):
            raise ValueError("unknown_devices: an address appears more than once")
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


class MessageReceipt(_Strict):
    """Ingest's word on one measurements message, sent only after the database commit.

    Every outcome is final: the gateway deletes the message. "stored": every measurement is in the
    database (now, or already from an earlier copy). "partly_stored": the measurements at the
    indices in `rejected` were dead-lettered, the rest stored. "dead_lettered": the whole message
    was (`reason` says why); it is kept in ingest's dead-letter store, and sending it again would
    not change that.
    """

    message_id: uuid.UUID
    outcome: Literal["stored", "partly_stored", "dead_lettered"]
    rejected: tuple[Annotated[int, Field(ge=0, lt=MAX_MEASUREMENTS_PER_BATCH, strict=True)], ...] = Field(
        default=(), max_length=MAX_MEASUREMENTS_PER_BATCH
    )
    reason: str | None = Field(default=None, max_length=MAX_REASON_LENGTH)

    @model_validator(mode="after")
    def _check(self) -> MessageReceipt:
        if (self.outcome == "partly_stored") != bool(self.rejected):
            raise ValueError("rejected lists the dead-lettered measurements of a partly_stored message")
        if (self.outcome == "dead_lettered") != (self.reason is not None):
            raise ValueError("reason comes with a dead_lettered message, and only with one")
        return self


class Receipt(_Strict):
    """Topic `hemma/v1/gw/{gateway_id}/receipts`: the messages of one gateway that one ingest
    transaction committed. A kit can show its readings as "mottaget" from these."""

    v: Literal[1]
    gateway_id: _GATEWAY_ID
    at: AwareDatetime  # when ingest committed
    messages: tuple[MessageReceipt, ...] = Field(min_length=1, max_length=MAX_RECEIPTS_PER_MESSAGE)


def receipts_for(gateway_id: str, entries: list[MessageReceipt], *, at: datetime) -> list[Receipt]:
    """`entries` as few receipts as the limits allow, in order: at most MAX_RECEIPTS_PER_MESSAGE each and
    at most MAX_RECEIPT_BYTES encoded (entries listing many rejected measurements are long)."""
    out: list[Receipt] = []
    for start in range(0, len(entries), MAX_RECEIPTS_PER_MESSAGE):
        out += _fitting(gateway_id, entries[start : start + MAX_RECEIPTS_PER_MESSAGE], at)
    return out


def _fitting(gateway_id: str, entries: list[MessageReceipt], at: datetime) -> list[Receipt]:
    receipt = Receipt(v=1, gateway_id=gateway_id, at=at, messages=tuple(entries))
    if len(entries) == 1 or len(encode(receipt)) <= MAX_RECEIPT_BYTES:
        return [receipt]  # one entry always fits: 500 indices of 3 digits and a 300-character reason
    half = len(entries) // 2
    return _fitting(gateway_id, entries[:half], at) + _fitting(gateway_id, entries[half:], at)


_Addressed = TypeVar("_Addressed", GatewayStatus, Receipt, KitConfig, KitEventBatch)


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


def _refuse_duplicate_keys(payload: bytes) -> None:
    """PayloadRejected when any JSON object in `payload` repeats a key.

    pydantic (like json.loads) keeps the last of two equal keys and silently ignores the first: a
    second "measurements" array, or a second "value", would vanish without a dead letter. Other
    parse errors are left to pydantic, which reports them with the field they concern.
    """
    try:
        jiter.from_json(payload, catch_duplicate_keys=True, cache_mode="keys")
    except ValueError as exc:
        text = str(exc)
        if text.startswith("Detected duplicate key"):
            where = text.rsplit(" at ", 1)[1] if " at " in text else "?"
            raise PayloadRejected(f"schema: duplicate key in a JSON object at {where[:40]}") from None


def message_id_of(payload: bytes) -> uuid.UUID | None:
    """The `message_id` of a measurements message that failed validation, when it has a usable one, so
    that ingest can still confirm it (dead-lettered) and the gateway stops sending it again."""
    try:
        value = jiter.from_json(payload, cache_mode="keys")
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("message_id"), str):
        return None
    try:
        return uuid.UUID(value["message_id"])
    except ValueError:
        return None


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
    _refuse_duplicate_keys(payload)
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
    return _decode_for(GatewayStatus, payload, topic_gateway, "status", MAX_STATUS_BYTES)


def decode_receipt(topic: str, payload: bytes, *, gateway_id: str) -> Receipt:
    """A receipt for `gateway_id` (the gateway's side); PayloadRejected for anything else."""
    if topic != receipts_topic(gateway_id):
        raise PayloadRejected(f"unexpected topic {topic[:120]!r}")
    return _decode_for(Receipt, payload, gateway_id, "receipt", MAX_RECEIPT_BYTES)


def decode_kit_events(topic: str, payload: bytes) -> KitEventBatch:
    """A kit's events (ingest's side): the topic's kit, size, duplicate keys, schema. An event's `at`
    is not judged: a patient's call must not be lost to a Pi whose clock is not yet set, so ingest
    keeps `at` as reported and orders and escalates by its own time of receipt."""
    topic_gateway = gateway_id_from_topic(topic)
    if topic_gateway is None or not topic.endswith("/events"):
        raise PayloadRejected(f"unexpected topic {topic[:120]!r}")
    return _decode_for(KitEventBatch, payload, topic_gateway, "events", MAX_EVENTS_BYTES)


def decode_kit_config(topic: str, payload: bytes, *, gateway_id: str) -> KitConfig:
    """This kit's configuration (the gateway's side); PayloadRejected for anything else."""
    if topic != config_topic(gateway_id):
        raise PayloadRejected(f"unexpected topic {topic[:120]!r}")
    return _decode_for(KitConfig, payload, gateway_id, "config", MAX_CONFIG_BYTES)


def _decode_for(
    model: type[_Addressed], payload: bytes, gateway_id: str, what: str, max_bytes: int
) -> _Addressed:
    """A whole-message model of one gateway's topic: size, duplicate keys, schema, the body's gateway."""
    if len(payload) > max_bytes:
        raise PayloadRejected(f"oversized {what}: {len(payload)} bytes > limit {max_bytes}")
    _refuse_duplicate_keys(payload)
    try:
        message = model.model_validate_json(payload)
    except ValidationError as exc:
        raise PayloadRejected("schema: " + _first_error(exc)) from exc
    if message.gateway_id != gateway_id:
        raise PayloadRejected("gateway_id in body does not match topic")
    return message
