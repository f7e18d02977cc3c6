"""Blood glucose: Glucose Measurement (0x2A18).

Layout from the GSS "Glucose Measurement" entry, meanings from the Glucose Service (GLS)
v1.0. Flags (8 bits):

* bit 0: Time Offset present (sint16, minutes added to Base Time)
* bit 1: Glucose Concentration (SFLOAT) and Type-Sample Location (one octet) present
* bit 2: concentration unit, kg/L (0) or mol/L (1)
* bit 3: Sensor Status Annunciation present (16 bits)
* bit 4: Context Information Follows (a Glucose Measurement Context with the same
  sequence number comes next); a flag only, it adds no field

Mandatory fields: Sequence Number (uint16) and Base Time (Date Time). Type is the low
nibble of the Type-Sample Location octet, Sample Location the high nibble (GSS note on
nibble order). A meter sends stored records in answer to a Record Access Control Point
request, so the Base Time is usually hours older than the notification.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any, ClassVar, Literal

from .bits import NamedBits, checked_bits, code_table
from .date_time import Timestamp
from .ieee11073 import MedValue
from .layout import DATE_TIME, S16, SFLOAT, U8, U16, Field, Layout
from .uuids import GLUCOSE_MEASUREMENT, name_of

__all__ = [
    "GlucoseMeasurement",
    "GlucoseSampleLocation",
    "GlucoseSensorStatus",
    "GlucoseType",
    "decode_glucose",
    "encode_glucose",
]

GlucoseUnit = Literal["kg/L", "mol/L"]


class GlucoseType(IntEnum):
    """What was sampled (GSS "Type" nibble); 0 and 11-15 are reserved and stay plain ints."""

    CAPILLARY_WHOLE_BLOOD = 1
    CAPILLARY_PLASMA = 2
    VENOUS_WHOLE_BLOOD = 3
    VENOUS_PLASMA = 4
    ARTERIAL_WHOLE_BLOOD = 5
    ARTERIAL_PLASMA = 6
    UNDETERMINED_WHOLE_BLOOD = 7
    UNDETERMINED_PLASMA = 8
    INTERSTITIAL_FLUID = 9
    CONTROL_SOLUTION = 10


class GlucoseSampleLocation(IntEnum):
    """Where the sample came from (GSS "Sample Location" nibble); 0 and 5-14 are reserved."""

    FINGER = 1
    ALTERNATE_SITE_TEST = 2
    EARLOBE = 3
    CONTROL_SOLUTION = 4
    NOT_AVAILABLE = 15


@dataclass(frozen=True, slots=True)
class GlucoseSensorStatus(NamedBits):
    """GLS "Sensor Status Annunciation" (16 bits; bits 12-15 are RFU and ignored on receipt)."""

    device_battery_low: bool = False  # bit 0: at time of measurement
    sensor_malfunction: bool = False  # bit 1: sensor malfunction or faulting
    sample_size_insufficient: bool = False  # bit 2: blood or control solution
    strip_insertion_error: bool = False  # bit 3
    strip_type_incorrect: bool = False  # bit 4: strip type incorrect for device
    result_too_high: bool = False  # bit 5: higher than the device can process ("HI")
    result_too_low: bool = False  # bit 6: lower than the device can process ("LO")
    sensor_temperature_too_high: bool = False  # bit 7: too high for a valid test/result
    sensor_temperature_too_low: bool = False  # bit 8
    strip_pulled_too_soon: bool = False  # bit 9: sensor read interrupted
    general_device_fault: bool = False  # bit 10
    time_fault: bool = False  # bit 11: time fault in the sensor, time may be inaccurate

    _BITS: ClassVar = (
        ("device_battery_low", 0),
        ("sensor_malfunction", 1),
        ("sample_size_insufficient", 2),
        ("strip_insertion_error", 3),
        ("strip_type_incorrect", 4),
        ("result_too_high", 5),
        ("result_too_low", 6),
        ("sensor_temperature_too_high", 7),
        ("sensor_temperature_too_low", 8),
        ("strip_pulled_too_soon", 9),
        ("general_device_fault", 10),
        ("time_fault", 11),
    )


@dataclass(frozen=True, slots=True)
class GlucoseMeasurement:
    sequence_number: int
    base_time: Timestamp  # device local time, no zone
    time_offset: int | None = None  # minutes; the user-facing time is base_time + offset
    concentration: MedValue | None = None  # in `unit`
    unit: GlucoseUnit = "kg/L"  # Flags bit 2; kept even when no concentration is sent
    sample_type: GlucoseType | int | None = None  # sent together with the concentration
    sample_location: GlucoseSampleLocation | int | None = None
    sensor_status: GlucoseSensorStatus | None = None
    context_follows: bool = False  # Flags bit 4

    @property
    def user_facing_time(self) -> Timestamp:
        """Base Time + Time Offset, the time GLS calls "user facing" (what the meter shows and
        what RACP time filters compare); the base time as sent when it is not known or no
        offset came with it."""
        if self.time_offset is None or not isinstance(self.base_time, datetime):
            return self.base_time
        return self.base_time + timedelta(minutes=self.time_offset)


_TIME_OFFSET = 0x01
_CONCENTRATION = 0x02
_MOL_PER_LITRE = 0x04
_SENSOR_STATUS = 0x08
_CONTEXT_FOLLOWS = 0x10

_GM = Layout(
    name_of(GLUCOSE_MEASUREMENT),
    (
        Field("sequence_number", U16),
        Field("base_time", DATE_TIME),
        Field("time_offset", S16, _TIME_OFFSET),
        Field("concentration", SFLOAT, _CONCENTRATION),
        Field("type_sample_location", U8, _CONCENTRATION),
        Field("sensor_status", U16, _SENSOR_STATUS),
    ),
)
_TYPES = code_table(GlucoseType)
_LOCATIONS = code_table(GlucoseSampleLocation)


def decode_glucose(payload: bytes) -> GlucoseMeasurement:
    flags, values = _GM.unpack(payload)
    nibbles = values.pop("type_sample_location", None)
    if nibbles is not None:
        sample_type, location = nibbles & 0x0F, nibbles >> 4
        values["sample_type"] = _TYPES.get(sample_type, sample_type)
        values["sample_location"] = _LOCATIONS.get(location, location)
    status = values.get("sensor_status")
    if status is not None:
        values["sensor_status"] = GlucoseSensorStatus.from_bits(status)
    return GlucoseMeasurement(
        **values,
        unit="mol/L" if flags & _MOL_PER_LITRE else "kg/L",
        context_follows=bool(flags & _CONTEXT_FOLLOWS),
    )


def _nibble(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 15:
        raise ValueError(f"{what} must be a 4-bit code 0..15, got {value!r}")
    return int(value)


def encode_glucose(
    sequence_number: int,
    base_time: Timestamp,
    *,
    time_offset: int | None = None,
    concentration: object | None = None,
    unit: GlucoseUnit = "kg/L",
    sample_type: GlucoseType | int | None = None,
    sample_location: GlucoseSampleLocation | int | None = None,
    sensor_status: GlucoseSensorStatus | None = None,
    context_follows: bool = False,
) -> bytes:
    """A Glucose Measurement payload. Concentration, type and location share one flag bit:
    give all three or none (use GlucoseSampleLocation.NOT_AVAILABLE when the meter does not know)."""
    if unit not in ("kg/L", "mol/L"):
        raise ValueError(f"glucose unit must be 'kg/L' or 'mol/L', got {unit!r}")
    trio = (concentration, sample_type, sample_location)
    if any(v is None for v in trio) and any(v is not None for v in trio):
        raise ValueError("concentration, sample_type and sample_location share Flags bit 1: give all or none")
    flags = (_MOL_PER_LITRE if unit == "mol/L" else 0) | (_CONTEXT_FOLLOWS if context_follows else 0)
    values: dict[str, Any] = {
        "sequence_number": sequence_number,
        "base_time": base_time,
        "time_offset": time_offset,
        "concentration": concentration,
    }
    if time_offset is not None:
        flags |= _TIME_OFFSET
    if concentration is not None:
        flags |= _CONCENTRATION
        values["type_sample_location"] = _nibble(sample_type, "sample_type") | (
            _nibble(sample_location, "sample_location") << 4
        )
    if sensor_status is not None:
        flags |= _SENSOR_STATUS
        values["sensor_status"] = checked_bits(sensor_status, GlucoseSensorStatus, "sensor_status")
    return _GM.pack(flags, values)
