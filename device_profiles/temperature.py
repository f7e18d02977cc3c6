"""Body temperature: Temperature Measurement (0x2A1C) and Intermediate Temperature (0x2A1E).

Layouts from the GSS entries of the same names, meanings from the Health Thermometer
Service (HTS) v1.0: Flags, a FLOAT (32-bit medfloat) in the unit Flags bit 0 chooses
(Celsius or Fahrenheit), then Time Stamp and Temperature Type as the flags say.
Intermediate Temperature has the same layout and carries readings taken while the
thermometer is still settling.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal

from .bits import code_table
from .date_time import Timestamp
from .ieee11073 import MedValue
from .layout import DATE_TIME, FLOAT, U8, Field, Layout
from .uuids import INTERMEDIATE_TEMPERATURE, TEMPERATURE_MEASUREMENT, name_of

__all__ = [
    "IntermediateTemperature",
    "TemperatureMeasurement",
    "TemperatureType",
    "decode_intermediate_temperature",
    "decode_temperature",
    "encode_intermediate_temperature",
    "encode_temperature",
]

TemperatureUnit = Literal["C", "F"]


class TemperatureType(IntEnum):
    """Where on the body the temperature was taken (GSS "Temperature Type")."""

    ARMPIT = 1
    BODY = 2  # "Body (general)"
    EAR = 3  # "Ear (usually earlobe)"
    FINGER = 4
    GASTROINTESTINAL_TRACT = 5
    MOUTH = 6
    RECTUM = 7
    TOE = 8
    TYMPANUM = 9  # "Tympanum (ear drum)"


@dataclass(frozen=True, slots=True)
class TemperatureMeasurement:
    temperature: MedValue  # "Temperature Measurement Value", in `unit`
    unit: TemperatureUnit  # Flags bit 0: "C" (0) or "F" (1)
    timestamp: Timestamp | None = None
    # A reserved code (0, 10-255) stays a plain int: the site is context, not the reading,
    # so an unknown code must not cost the measurement.
    temperature_type: TemperatureType | int | None = None


@dataclass(frozen=True, slots=True)
class IntermediateTemperature:
    temperature: MedValue
    unit: TemperatureUnit
    timestamp: Timestamp | None = None
    temperature_type: TemperatureType | int | None = None


_FAHRENHEIT = 0x01
_TIMESTAMP = 0x02
_TEMPERATURE_TYPE = 0x04

_FIELDS = (
    Field("temperature", FLOAT),
    Field("timestamp", DATE_TIME, _TIMESTAMP),
    Field("temperature_type", U8, _TEMPERATURE_TYPE),
)
_TM = Layout(name_of(TEMPERATURE_MEASUREMENT), _FIELDS)
_IT = Layout(name_of(INTERMEDIATE_TEMPERATURE), _FIELDS)
_TYPES = code_table(TemperatureType)


def _values(layout: Layout, payload: bytes) -> dict[str, Any]:
    flags, values = layout.unpack(payload)
    values["unit"] = "F" if flags & _FAHRENHEIT else "C"
    code = values.get("temperature_type")
    if code is not None:
        values["temperature_type"] = _TYPES.get(code, code)
    return values


def decode_temperature(payload: bytes) -> TemperatureMeasurement:
    return TemperatureMeasurement(**_values(_TM, payload))


def decode_intermediate_temperature(payload: bytes) -> IntermediateTemperature:
    return IntermediateTemperature(**_values(_IT, payload))


def _pack(
    layout: Layout,
    value: object,
    unit: str,
    timestamp: Timestamp | None,
    temperature_type: TemperatureType | int | None,
) -> bytes:
    if unit not in ("C", "F"):
        raise ValueError(f"temperature unit must be 'C' or 'F', got {unit!r}")
    flags = _FAHRENHEIT if unit == "F" else 0
    if timestamp is not None:
        flags |= _TIMESTAMP
    if temperature_type is not None:
        flags |= _TEMPERATURE_TYPE
    return layout.pack(
        flags, {"temperature": value, "timestamp": timestamp, "temperature_type": temperature_type}
    )


def encode_temperature(
    value: object,
    *,
    unit: TemperatureUnit = "C",
    timestamp: Timestamp | None = None,
    temperature_type: TemperatureType | int | None = None,
) -> bytes:
    """A Temperature Measurement payload; `value` is encoded as an exact FLOAT."""
    return _pack(_TM, value, unit, timestamp, temperature_type)


def encode_intermediate_temperature(
    value: object,
    *,
    unit: TemperatureUnit = "C",
    timestamp: Timestamp | None = None,
    temperature_type: TemperatureType | int | None = None,
) -> bytes:
    """An Intermediate Temperature payload (same layout as Temperature Measurement)."""
    return _pack(_IT, value, unit, timestamp, temperature_type)
