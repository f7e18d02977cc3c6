"""One GATT value in, one contract `Measurement` (or a counted reason why not) out.

The bytes are decoded by `device_profiles.parse` and turned into clinical observations by
`device_profiles.normalise`; this module adds what only the gateway knows: the device's
address, the receive time, a measurement id, and the rule for an unusable device clock.

Logs never carry payload bytes or values (they are patient data): a decode failure is
logged with the device, characteristic, payload length and error type only, and counted.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from pydantic import ValidationError

import device_profiles
from device_profiles import uuids
from hemma.contract import MAX_CLOCK_SKEW, MAX_READING_AGE, Measurement, Observation

log = logging.getLogger(__name__)

# Reused from device_profiles.normalise: "the timestamp is unusable".
CLOCK_FLAG = "device_clock_not_set"


@dataclass
class DecodeCounters:
    """Per `"<device address>/<characteristic>"` counts, for stats() and the status page."""

    measurements: Counter[str] = field(default_factory=Counter)  # became a contract Measurement
    decode_errors: Counter[str] = field(default_factory=Counter)  # bytes that are not the GATT layout
    rejected_values: Counter[str] = field(default_factory=Counter)  # implausible / device-flagged values
    not_clinical: Counter[str] = field(default_factory=Counter)  # battery, intermediate cuff pressure
    clock_replaced: Counter[str] = field(default_factory=Counter)  # device time unusable; receive time used
    battery_percent: dict[str, int] = field(default_factory=dict)  # latest battery level per device

    def as_dict(self) -> dict[str, object]:
        return {
            "measurements": dict(self.measurements),
            "decode_errors": dict(self.decode_errors),
            "rejected_values": dict(self.rejected_values),
            "not_clinical": dict(self.not_clinical),
            "clock_replaced": dict(self.clock_replaced),
            "battery_percent": dict(self.battery_percent),
        }


class NotificationDecoder:
    """Turns GATT values into contract measurements; never raises for bad bytes."""

    def __init__(self, *, device_tz: tzinfo = UTC) -> None:
        self.device_tz = device_tz
        self.counters = DecodeCounters()

    def decode(
        self, device_id: str, char_uuid: str, payload: bytes, received: datetime
    ) -> Measurement | None:
        """The measurement to publish, or None (counted and logged) when there is nothing to publish."""
        characteristic = uuids.short_uuid(char_uuid)
        key = f"{device_id}/{characteristic}"
        try:
            decoded = device_profiles.parse(characteristic, payload)
        except device_profiles.DecodeError as exc:
            self.counters.decode_errors[key] += 1
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
        normalised = device_profiles.normalise(decoded, device_tz=self.device_tz)
        if normalised.rejected:
            self.counters.rejected_values[key] += len(normalised.rejected)
            log.warning(
                "device %s: %d value(s) of %s rejected as implausible or flagged by the device (%s)",
                device_id,
                len(normalised.rejected),
                uuids.name_of(characteristic),
                ", ".join(r.vital.value for r in normalised.rejected),
            )
        if not normalised.observations:
            if not normalised.rejected:
                self.counters.not_clinical[key] += 1
            return None
        effective, clock_ok = self._effective_time(normalised.effective_time, received)
        if not clock_ok:
            self.counters.clock_replaced[key] += 1
        observations = []
        for obs in normalised.observations:
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
        if not observations:
            return None
        self.counters.measurements[key] += 1
        return Measurement(
            # Assigned here, once: a re-sent batch carries the same id and ingest deduplicates on it.
            id=uuid.uuid4(),
            device_id=device_id,
            characteristic=characteristic,
            raw=bytes(payload).hex(),
            effective_time=effective,
            received_time=received,
            observations=tuple(observations),
        )

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
