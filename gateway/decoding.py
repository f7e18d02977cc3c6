"""One GATT value in, one contract `Measurement` (or a counted reason why not) out.

The bytes are decoded by `device_profiles.parse` and turned into clinical observations by
`device_profiles.normalise`; this module adds what only the gateway knows: the device's
address, the receive time, a measurement id, the rule for an unusable device clock, and
what each device said it supports (its Feature characteristics, read once per connection).

Characteristics are named in canonical form (`uuids.canonical_uuid`): "2A5E" for SIG
characteristics, the lower-case 128-bit UUID for vendor ones (BerryMed's BCI stream), which
is also what the wire contract carries in `Measurement.characteristic`.

Measurement ids are random (UUID4), except for records a device numbers itself (a glucose
meter's sequence number): meters answer "report all stored records" with every record they
hold on every connection, so those ids are derived from the device and the bytes (UUID5)
and a re-sent record carries the id ingest already deduplicates on.

Logs never carry payload bytes or values (they are patient data): a decode failure is
logged with the device, characteristic, payload length and error type only, and counted.
A device streaming bad values (an oximeter with its probe unplugged, twenty times a second)
is logged at most once a minute per device and characteristic; every value is counted.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from pydantic import ValidationError

import device_profiles
from core.contract import CLOCK_NOT_SET_FLAG, MAX_CLOCK_SKEW, MAX_READING_AGE, Measurement, Observation
from device_profiles import uuids
from device_profiles.features import (
    BloodPressureFeature,
    BodyCompositionFeature,
    GlucoseFeature,
    PlxFeatures,
    WeightScaleFeature,
)

log = logging.getLogger(__name__)

# The flag device_profiles.normalise uses for "the timestamp is unusable"; ingest keeps
# devices.clock_not_set from it (core.contract.CLOCK_NOT_SET_FLAG).
CLOCK_FLAG = CLOCK_NOT_SET_FLAG
LOG_EVERY = timedelta(minutes=1)  # per device, characteristic and kind of problem
_FEATURES = (BloodPressureFeature, BodyCompositionFeature, GlucoseFeature, PlxFeatures, WeightScaleFeature)
# Namespace of the deterministic ids of device-numbered records (uuid5 of "hemma gateway records").
_RECORD_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:hemma:gateway:device-record")


@dataclass
class DecodeCounters:
    """Per `"<device address>/<characteristic>"` counts, for stats() and the status page."""

    # Became a contract Measurement (a stream's may then be superseded, see gateway.rate_limit).
    measurements: Counter[str] = field(default_factory=Counter)
    decode_errors: Counter[str] = field(default_factory=Counter)  # bytes that are not the GATT layout
    rejected_values: Counter[str] = field(default_factory=Counter)  # implausible / device-flagged values
    not_clinical: Counter[str] = field(default_factory=Counter)  # battery, features, cuff pressure
    clock_replaced: Counter[str] = field(default_factory=Counter)  # device time unusable; receive time used
    battery_percent: dict[str, int] = field(default_factory=dict)  # latest battery level per device
    # What each device supports, from its Feature characteristic: the decoded value, for later use.
    device_features: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "measurements": dict(self.measurements),
            "decode_errors": dict(self.decode_errors),
            "rejected_values": dict(self.rejected_values),
            "not_clinical": dict(self.not_clinical),
            "clock_replaced": dict(self.clock_replaced),
            "battery_percent": dict(self.battery_percent),
            "device_features": {k: list(supported(v)) for k, v in self.device_features.items()},
        }


def supported(features: object) -> tuple[str, ...]:
    """What a decoded Feature value says the device supports, as short names (no patient data).

    Booleans by name when set, status-support fields by name when present, resolution codes
    as "name:code" when specified.
    """
    names: list[str] = []
    for f in dataclasses.fields(features):  # type: ignore[arg-type]
        value = getattr(features, f.name)
        if value is None or value is False:
            continue
        if value is True or isinstance(value, enum.Flag):
            names.append(f.name)
        elif value:  # a resolution code; 0 is "not specified"
            code = value.name.lower() if isinstance(value, enum.Enum) else str(value)
            names.append(f"{f.name}:{code}")
    return tuple(names)


class NotificationDecoder:
    """Turns GATT values into contract measurements; never raises for bad bytes or UUIDs.

    `on_battery(device_id, percent, received)` is called for every Battery Level value.
    """

    def __init__(
        self,
        *,
        device_tz: tzinfo = UTC,
        on_battery: Callable[[str, int, datetime], None] | None = None,
    ) -> None:
        self.device_tz = device_tz
        self.on_battery = on_battery
        self.counters = DecodeCounters()
        self._logged: dict[tuple[str, str], datetime] = {}

    def decode(
        self, device_id: str, char_uuid: str, payload: bytes, received: datetime
    ) -> Measurement | None:
        """The measurement to publish, or None (counted and logged) when there is nothing to publish."""
        characteristic = _canonical_or_as_given(char_uuid)
        key = f"{device_id}/{characteristic}"
        try:
            decoded = device_profiles.parse(characteristic, payload)
        except device_profiles.DecodeError as exc:  # malformed bytes, or a UUID we have no decoder for
            self.counters.decode_errors[key] += 1
            if self._may_log("decode", key, received):
                log.warning(
                    "device %s sent a malformed %s value (%d bytes, %s); dropped, %d so far",
                    device_id,
                    uuids.name_of(characteristic),
                    len(payload),
                    type(exc).__name__,
                    self.counters.decode_errors[key],
                )
            return None
        if isinstance(decoded, device_profiles.BatteryLevel):
            self.counters.battery_percent[device_id] = decoded.battery_level
            if self.on_battery is not None:
                self.on_battery(device_id, decoded.battery_level, received)
        elif isinstance(decoded, _FEATURES):
            self._remember_features(device_id, characteristic, decoded)
        normalised = device_profiles.normalise(decoded, device_tz=self.device_tz)
        if normalised.rejected:
            self.counters.rejected_values[key] += len(normalised.rejected)
            if self._may_log("rejected", key, received):
                log.warning(
                    "device %s: %d value(s) of %s rejected as implausible or flagged by the device (%s); "
                    "%d so far",
                    device_id,
                    len(normalised.rejected),
                    uuids.name_of(characteristic),
                    ", ".join(r.vital.value for r in normalised.rejected),
                    self.counters.rejected_values[key],
                )
        if not normalised.observations:
            if not normalised.rejected:
                self.counters.not_clinical[key] += 1
            return None
        effective, clock_ok = self._effective_time(normalised.effective_time, received)
        if not clock_ok:
            self.counters.clock_replaced[key] += 1
        observations = self._observations(normalised.observations, clock_ok, device_id, key)
        if not observations:
            return None
        self.counters.measurements[key] += 1
        return Measurement(
            id=self._measurement_id(decoded, device_id, characteristic, payload),
            device_id=device_id,
            characteristic=characteristic,
            raw=bytes(payload).hex(),
            effective_time=effective,
            received_time=received,
            observations=observations,
        )

    def _observations(
        self,
        normalised: tuple[device_profiles.ClinicalObservation, ...],
        clock_ok: bool,
        device_id: str,
        key: str,
    ) -> tuple[Observation, ...]:
        observations = []
        for obs in normalised:
            quality = obs.quality if clock_ok or CLOCK_FLAG in obs.quality else (*obs.quality, CLOCK_FLAG)
            try:
                observations.append(
                    Observation(vital=obs.vital, value=obs.value, unit=obs.unit, quality=quality)
                )
            except ValidationError:
                self.counters.rejected_values[key] += 1
                log.warning(
                    "device %s: a %s observation does not fit the wire contract; dropped",
                    device_id,
                    obs.vital.value,
                )
        return tuple(observations)

    def _remember_features(self, device_id: str, characteristic: str, features: object) -> None:
        key = f"{device_id}/{characteristic}"
        if self.counters.device_features.get(key) != features:
            log.info(
                "device %s %s: supports %s",
                device_id,
                uuids.name_of(characteristic),
                ", ".join(supported(features)) or "none of the optional features",
            )
        self.counters.device_features[key] = features

    def _may_log(self, kind: str, key: str, received: datetime) -> bool:
        """At most one log line per LOG_EVERY for one kind of problem on one characteristic."""
        last = self._logged.get((kind, key))
        if last is not None and abs(received - last) < LOG_EVERY:
            return False
        if len(self._logged) > 4096:  # addresses rotate; the counters keep the totals
            self._logged.clear()
        self._logged[(kind, key)] = received
        return True

    @staticmethod
    def _measurement_id(decoded: object, device_id: str, characteristic: str, payload: bytes) -> uuid.UUID:
        # Assigned here, once: a re-sent batch carries the same id and ingest deduplicates on it.
        if getattr(decoded, "sequence_number", None) is not None:
            # A stored record the device numbered: the same record re-reported over RACP gets
            # the same id (the bytes include the sequence number and the record's time).
            return uuid.uuid5(_RECORD_IDS, f"{device_id}/{characteristic}/{bytes(payload).hex()}")
        return uuid.uuid4()

    @staticmethod
    def _effective_time(device_time: datetime | None, received: datetime) -> tuple[datetime, bool]:
        """The device's time when it is usable, else the receive time and False.

        Ingest refuses readings over MAX_CLOCK_SKEW in the future or MAX_READING_AGE old; a
        device whose clock reset to 2000-01-01 after a battery change would otherwise lose
        every reading. No device time at all is normal (contract: use receive time).
        """
        if device_time is None:
            return received, True
        if received - MAX_READING_AGE <= device_time <= received + MAX_CLOCK_SKEW:
            return device_time, True
        return received, False


def _canonical_or_as_given(char_uuid: str) -> str:
    """The canonical form; a string that is no UUID stays as given (parse then refuses it, counted)."""
    try:
        return uuids.canonical_uuid(char_uuid)
    except device_profiles.DecodeError:
        return str(char_uuid)
