"""Blood pressure: Blood Pressure Measurement (0x2A35) and Intermediate Cuff Pressure (0x2A36).

Layouts from the GSS entries of the same names; meanings from the Blood Pressure Service
(BLS) v1.1. Both share one layout: Flags, a compound value of three SFLOATs (systolic,
diastolic, mean arterial pressure), then Time Stamp, Pulse Rate, User ID and Measurement
Status as the flags say. Pressures stay in the unit Flags bit 0 chooses (mmHg or kPa).

In Intermediate Cuff Pressure only the first SFLOAT means something (the current cuff
pressure while the cuff inflates); BLS says the other two are unused and set to NaN. Some
monitors send 0x0000 there instead, so the decoder ignores them and the encoder sends NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from .date_time import Timestamp
from .ieee11073 import NAN, MedValue
from .layout import DATE_TIME, SFLOAT, U8, U16, Field, Layout
from .uuids import BLOOD_PRESSURE_MEASUREMENT, INTERMEDIATE_CUFF_PRESSURE, name_of

__all__ = [
    "BloodPressureMeasurement",
    "BloodPressureMeasurementStatus",
    "IntermediateCuffPressure",
    "PulseRateRange",
    "decode_blood_pressure",
    "decode_intermediate_cuff_pressure",
    "encode_blood_pressure",
    "encode_intermediate_cuff_pressure",
]

PressureUnit = Literal["mmHg", "kPa"]


class PulseRateRange(StrEnum):
    """Measurement Status bits 3-4 (Pulse Rate Range Detection)."""

    WITHIN = "within"  # 0: within the range
    EXCEEDS = "exceeds"  # 1: exceeds the upper limit
    BELOW = "below"  # 2: less than the lower limit
    RESERVED = "reserved"  # 3: RFU; kept so a reading is not lost over a status code


_RANGE_CODES = {
    PulseRateRange.WITHIN: 0,
    PulseRateRange.EXCEEDS: 1,
    PulseRateRange.BELOW: 2,
    PulseRateRange.RESERVED: 3,
}
_RANGE_BY_CODE = {code: value for value, code in _RANGE_CODES.items()}


@dataclass(frozen=True, slots=True)
class BloodPressureMeasurementStatus:
    """BLS "Measurement Status" (16 bits; bits 6-15 are RFU and ignored on receipt)."""

    body_movement: bool = False  # bit 0: body movement during measurement
    cuff_fit_loose: bool = False  # bit 1: cuff too loose
    irregular_pulse: bool = False  # bit 2
    pulse_rate_range: PulseRateRange = PulseRateRange.WITHIN  # bits 3-4
    improper_measurement_position: bool = False  # bit 5

    @classmethod
    def from_bits(cls, bits: int) -> BloodPressureMeasurementStatus:
        return cls(
            body_movement=bool(bits & 0x01),
            cuff_fit_loose=bool(bits & 0x02),
            irregular_pulse=bool(bits & 0x04),
            pulse_rate_range=_RANGE_BY_CODE[(bits >> 3) & 0x03],
            improper_measurement_position=bool(bits & 0x20),
        )

    def to_bits(self) -> int:
        return (
            self.body_movement
            | self.cuff_fit_loose << 1
            | self.irregular_pulse << 2
            | _RANGE_CODES[PulseRateRange(self.pulse_rate_range)] << 3
            | self.improper_measurement_position << 5
        )


@dataclass(frozen=True, slots=True)
class BloodPressureMeasurement:
    systolic: MedValue
    diastolic: MedValue
    mean_arterial_pressure: MedValue
    unit: PressureUnit  # Flags bit 0: "mmHg" (0) or "kPa" (1); applies to the three pressures
    timestamp: Timestamp | None = None
    pulse_rate: MedValue | None = None  # beats per minute
    user_id: int | None = None  # 0xFF = unknown user
    measurement_status: BloodPressureMeasurementStatus | None = None


@dataclass(frozen=True, slots=True)
class IntermediateCuffPressure:
    current_cuff_pressure: MedValue
    unit: PressureUnit
    timestamp: Timestamp | None = None
    pulse_rate: MedValue | None = None
    user_id: int | None = None
    measurement_status: BloodPressureMeasurementStatus | None = None


_UNIT_KPA = 0x01
_TIMESTAMP = 0x02
_PULSE_RATE = 0x04
_USER_ID = 0x08
_MEASUREMENT_STATUS = 0x10

_OPTIONAL = (
    Field("timestamp", DATE_TIME, _TIMESTAMP),
    Field("pulse_rate", SFLOAT, _PULSE_RATE),
    Field("user_id", U8, _USER_ID),
    Field("measurement_status", U16, _MEASUREMENT_STATUS),
)
_BPM = Layout(
    name_of(BLOOD_PRESSURE_MEASUREMENT),
    (
        Field("systolic", SFLOAT),
        Field("diastolic", SFLOAT),
        Field("mean_arterial_pressure", SFLOAT),
        *_OPTIONAL,
    ),
)
_ICP = Layout(
    name_of(INTERMEDIATE_CUFF_PRESSURE),
    (
        Field("current_cuff_pressure", SFLOAT),
        Field("unused_diastolic", SFLOAT),
        Field("unused_map", SFLOAT),
        *_OPTIONAL,
    ),
)


# All 64 combinations of the defined status bits, built once: decoding is a table lookup.
_STATUS_DEFINED = 0x3F
_STATUSES = tuple(BloodPressureMeasurementStatus.from_bits(bits) for bits in range(_STATUS_DEFINED + 1))


def _common(flags: int, values: dict[str, Any]) -> dict[str, Any]:
    values["unit"] = "kPa" if flags & _UNIT_KPA else "mmHg"
    status = values.get("measurement_status")
    if status is not None:
        values["measurement_status"] = _STATUSES[status & _STATUS_DEFINED]
    return values


def decode_blood_pressure(payload: bytes) -> BloodPressureMeasurement:
    flags, values = _BPM.unpack(payload)
    return BloodPressureMeasurement(**_common(flags, values))


def decode_intermediate_cuff_pressure(payload: bytes) -> IntermediateCuffPressure:
    flags, values = _ICP.unpack(payload)
    del values["unused_diastolic"], values["unused_map"]
    return IntermediateCuffPressure(**_common(flags, values))


def _pack(layout: Layout, values: dict[str, Any], unit: str) -> bytes:
    if unit not in ("mmHg", "kPa"):
        raise ValueError(f"blood pressure unit must be 'mmHg' or 'kPa', got {unit!r}")
    flags = _UNIT_KPA if unit == "kPa" else 0
    for f in _OPTIONAL:
        if values[f.name] is not None:
            flags |= f.flag
    status = values["measurement_status"]
    if status is not None:
        if not isinstance(status, BloodPressureMeasurementStatus):
            raise TypeError(f"measurement_status must be a BloodPressureMeasurementStatus, got {status!r}")
        values["measurement_status"] = status.to_bits()
    return layout.pack(flags, values)


def encode_blood_pressure(
    systolic: object,
    diastolic: object,
    mean_arterial_pressure: object,
    *,
    unit: PressureUnit = "mmHg",
    timestamp: Timestamp | None = None,
    pulse_rate: object | None = None,
    user_id: int | None = None,
    measurement_status: BloodPressureMeasurementStatus | None = None,
) -> bytes:
    """A Blood Pressure Measurement payload; optional fields are sent when not None."""
    return _pack(
        _BPM,
        {
            "systolic": systolic,
            "diastolic": diastolic,
            "mean_arterial_pressure": mean_arterial_pressure,
            "timestamp": timestamp,
            "pulse_rate": pulse_rate,
            "user_id": user_id,
            "measurement_status": measurement_status,
        },
        unit,
    )


def encode_intermediate_cuff_pressure(
    current_cuff_pressure: object,
    *,
    unit: PressureUnit = "mmHg",
    timestamp: Timestamp | None = None,
    pulse_rate: object | None = None,
    user_id: int | None = None,
    measurement_status: BloodPressureMeasurementStatus | None = None,
) -> bytes:
    """An Intermediate Cuff Pressure payload; the two unused SFLOATs are sent as NaN (BLS)."""
    return _pack(
        _ICP,
        {
            "current_cuff_pressure": current_cuff_pressure,
            "unused_diastolic": NAN,
            "unused_map": NAN,
            "timestamp": timestamp,
            "pulse_rate": pulse_rate,
            "user_id": user_id,
            "measurement_status": measurement_status,
        },
        unit,
    )
