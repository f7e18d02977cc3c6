"""What a device supports: the Feature characteristics a gateway reads once after connecting.

Bit layouts from the GSS entries of the same names (and the service specifications they
come from: BLS 1.0, PLXS 1.0.1, WSS 1.0, GLS 1.0, BCS 1.0). Every defined bit is a named
boolean; RFU bits are ignored on receipt. The resolution codes of the Weight Scale and
Body Composition Feature stay enums (reserved codes as plain ints) with the resolutions
they stand for as exact Decimals.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum
from typing import Any, ClassVar

from .bits import NamedBits, code_table, flag_value
from .errors import DecodeError
from .layout import U16, U24, Field, Layout
from .plx import PlxDeviceAndSensorStatus, PlxMeasurementStatus
from .uuids import (
    BLOOD_PRESSURE_FEATURE,
    BODY_COMPOSITION_FEATURE,
    GLUCOSE_FEATURE,
    PLX_FEATURES,
    WEIGHT_SCALE_FEATURE,
    name_of,
)

__all__ = [
    "BloodPressureFeature",
    "BodyCompositionFeature",
    "GlucoseFeature",
    "HeightResolution",
    "PlxFeatures",
    "WeightResolution",
    "WeightScaleFeature",
    "decode_blood_pressure_feature",
    "decode_body_composition_feature",
    "decode_glucose_feature",
    "decode_plx_features",
    "decode_weight_scale_feature",
    "encode_feature",
    "encode_plx_features",
]


class WeightResolution(IntEnum):
    """GSS "Weight Measurement Resolution" (4 bits); 8-15 are reserved."""

    NOT_SPECIFIED = 0
    KG_0_5_OR_LB_1 = 1
    KG_0_2_OR_LB_0_5 = 2
    KG_0_1_OR_LB_0_2 = 3
    KG_0_05_OR_LB_0_1 = 4
    KG_0_02_OR_LB_0_05 = 5
    KG_0_01_OR_LB_0_02 = 6
    KG_0_005_OR_LB_0_01 = 7

    @property
    def kg(self) -> Decimal | None:
        return _WEIGHT_STEPS[self][0]

    @property
    def lb(self) -> Decimal | None:
        return _WEIGHT_STEPS[self][1]


class HeightResolution(IntEnum):
    """GSS "Height Measurement Resolution" (3 bits); 4-7 are reserved."""

    NOT_SPECIFIED = 0
    M_0_01_OR_IN_1 = 1
    M_0_005_OR_IN_0_5 = 2
    M_0_001_OR_IN_0_1 = 3

    @property
    def m(self) -> Decimal | None:
        return _HEIGHT_STEPS[self][0]

    @property
    def inch(self) -> Decimal | None:
        return _HEIGHT_STEPS[self][1]


def _steps(*pairs: str) -> list[tuple[Decimal | None, Decimal | None]]:
    out: list[tuple[Decimal | None, Decimal | None]] = [(None, None)]
    out += [(Decimal(a), Decimal(b)) for a, b in (p.split("/") for p in pairs)]
    return out


_WEIGHT_STEPS = _steps("0.5/1", "0.2/0.5", "0.1/0.2", "0.05/0.1", "0.02/0.05", "0.01/0.02", "0.005/0.01")
_HEIGHT_STEPS = _steps("0.01/1", "0.005/0.5", "0.001/0.1")


_WEIGHT_CODES = code_table(WeightResolution)
_HEIGHT_CODES = code_table(HeightResolution)


def _code_bits(value: object, bits: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise ValueError(f"{what} must be a {bits}-bit code, got {value!r}")
    return int(value)


@dataclass(frozen=True, slots=True)
class BloodPressureFeature(NamedBits):
    body_movement_detection: bool = False  # bit 0
    cuff_fit_detection: bool = False  # bit 1
    irregular_pulse_detection: bool = False  # bit 2
    pulse_rate_range_detection: bool = False  # bit 3
    measurement_position_detection: bool = False  # bit 4
    multiple_bonds: bool = False  # bit 5

    _BITS: ClassVar = (
        ("body_movement_detection", 0),
        ("cuff_fit_detection", 1),
        ("irregular_pulse_detection", 2),
        ("pulse_rate_range_detection", 3),
        ("measurement_position_detection", 4),
        ("multiple_bonds", 5),
    )


@dataclass(frozen=True, slots=True)
class GlucoseFeature(NamedBits):
    low_battery_detection: bool = False  # bit 0: during measurement
    sensor_malfunction_detection: bool = False  # bit 1
    sensor_sample_size: bool = False  # bit 2
    sensor_strip_insertion_error_detection: bool = False  # bit 3
    sensor_strip_type_error_detection: bool = False  # bit 4
    sensor_result_high_low_detection: bool = False  # bit 5
    sensor_temperature_high_low_detection: bool = False  # bit 6
    sensor_read_interrupt_detection: bool = False  # bit 7
    general_device_fault: bool = False  # bit 8
    time_fault: bool = False  # bit 9
    multiple_bonds: bool = False  # bit 10

    _BITS: ClassVar = (
        ("low_battery_detection", 0),
        ("sensor_malfunction_detection", 1),
        ("sensor_sample_size", 2),
        ("sensor_strip_insertion_error_detection", 3),
        ("sensor_strip_type_error_detection", 4),
        ("sensor_result_high_low_detection", 5),
        ("sensor_temperature_high_low_detection", 6),
        ("sensor_read_interrupt_detection", 7),
        ("general_device_fault", 8),
        ("time_fault", 9),
        ("multiple_bonds", 10),
    )


@dataclass(frozen=True, slots=True)
class WeightScaleFeature:
    timestamp: bool = False  # bit 0
    multiple_users: bool = False  # bit 1
    bmi: bool = False  # bit 2
    weight_resolution: WeightResolution | int = WeightResolution.NOT_SPECIFIED  # bits 3-6
    height_resolution: HeightResolution | int = HeightResolution.NOT_SPECIFIED  # bits 7-9

    def to_bits(self) -> int:
        return (
            self.timestamp
            | self.multiple_users << 1
            | self.bmi << 2
            | _code_bits(self.weight_resolution, 4, "weight_resolution") << 3
            | _code_bits(self.height_resolution, 3, "height_resolution") << 7
        )


@dataclass(frozen=True, slots=True)
class BodyCompositionFeature:
    timestamp: bool = False  # bit 0
    multiple_users: bool = False  # bit 1
    basal_metabolism: bool = False  # bit 2
    muscle_percentage: bool = False  # bit 3
    muscle_mass: bool = False  # bit 4
    fat_free_mass: bool = False  # bit 5
    soft_lean_mass: bool = False  # bit 6
    body_water_mass: bool = False  # bit 7
    impedance: bool = False  # bit 8
    weight: bool = False  # bit 9
    height: bool = False  # bit 10
    mass_resolution: WeightResolution | int = WeightResolution.NOT_SPECIFIED  # bits 11-14
    height_resolution: HeightResolution | int = HeightResolution.NOT_SPECIFIED  # bits 15-17

    _FLAGS: ClassVar = (
        "timestamp",
        "multiple_users",
        "basal_metabolism",
        "muscle_percentage",
        "muscle_mass",
        "fat_free_mass",
        "soft_lean_mass",
        "body_water_mass",
        "impedance",
        "weight",
        "height",
    )

    def to_bits(self) -> int:
        bits = sum(1 << i for i, name in enumerate(self._FLAGS) if getattr(self, name))
        return (
            bits
            | _code_bits(self.mass_resolution, 4, "mass_resolution") << 11
            | _code_bits(self.height_resolution, 3, "height_resolution") << 15
        )


@dataclass(frozen=True, slots=True)
class PlxFeatures:
    """PLX Features. The two support fields are present only when the device has them
    (Supported Features bits 0 and 1); None means the device sends no such status at all."""

    measurement_status_support: PlxMeasurementStatus | None = None
    device_and_sensor_status_support: PlxDeviceAndSensorStatus | None = None
    spot_check_measurement_storage: bool = False  # bit 2
    spot_check_timestamp: bool = False  # bit 3
    spo2pr_fast: bool = False  # bit 4
    spo2pr_slow: bool = False  # bit 5
    pulse_amplitude_index: bool = False  # bit 6
    multiple_bonds: bool = False  # bit 7


_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


def _fixed(payload: bytes, fmt: struct.Struct, uuid: str) -> int:
    if len(payload) != fmt.size:
        raise DecodeError(f"{name_of(uuid)}: expected {fmt.size} bytes, got {len(payload)}")
    value: int = fmt.unpack(payload)[0]
    return value


def decode_blood_pressure_feature(payload: bytes) -> BloodPressureFeature:
    return BloodPressureFeature.from_bits(_fixed(payload, _U16, BLOOD_PRESSURE_FEATURE))


def decode_glucose_feature(payload: bytes) -> GlucoseFeature:
    return GlucoseFeature.from_bits(_fixed(payload, _U16, GLUCOSE_FEATURE))


def decode_weight_scale_feature(payload: bytes) -> WeightScaleFeature:
    bits = _fixed(payload, _U32, WEIGHT_SCALE_FEATURE)
    return WeightScaleFeature(
        bool(bits & 1),
        bool(bits & 2),
        bool(bits & 4),
        _WEIGHT_CODES.get(bits >> 3 & 0x0F, bits >> 3 & 0x0F),
        _HEIGHT_CODES.get(bits >> 7 & 0x07, bits >> 7 & 0x07),
    )


def decode_body_composition_feature(payload: bytes) -> BodyCompositionFeature:
    bits = _fixed(payload, _U32, BODY_COMPOSITION_FEATURE)
    flags = {name: bool(bits >> i & 1) for i, name in enumerate(BodyCompositionFeature._FLAGS)}
    return BodyCompositionFeature(
        **flags,
        mass_resolution=_WEIGHT_CODES.get(bits >> 11 & 0x0F, bits >> 11 & 0x0F),
        height_resolution=_HEIGHT_CODES.get(bits >> 15 & 0x07, bits >> 15 & 0x07),
    )


_MEASUREMENT_STATUS_SUPPORT = 0x0001
_DEVICE_STATUS_SUPPORT = 0x0002
_PLX_FLAGS = (
    ("spot_check_measurement_storage", 0x0004),
    ("spot_check_timestamp", 0x0008),
    ("spo2pr_fast", 0x0010),
    ("spo2pr_slow", 0x0020),
    ("pulse_amplitude_index", 0x0040),
    ("multiple_bonds", 0x0080),
)
_PLXF = Layout(
    name_of(PLX_FEATURES),
    (
        Field("measurement_status_support", U16, _MEASUREMENT_STATUS_SUPPORT),
        Field("device_and_sensor_status_support", U24, _DEVICE_STATUS_SUPPORT),
    ),
    flags_size=2,
)
_MEASUREMENT_STATUS_DEFINED = sum(PlxMeasurementStatus)
_DEVICE_STATUS_DEFINED = sum(PlxDeviceAndSensorStatus)


def decode_plx_features(payload: bytes) -> PlxFeatures:
    flags, values = _PLXF.unpack(payload)
    status = values.get("measurement_status_support")
    device = values.get("device_and_sensor_status_support")
    return PlxFeatures(
        None if status is None else flag_value(PlxMeasurementStatus, status & _MEASUREMENT_STATUS_DEFINED),
        None if device is None else flag_value(PlxDeviceAndSensorStatus, device & _DEVICE_STATUS_DEFINED),
        **{name: bool(flags & bit) for name, bit in _PLX_FLAGS},
    )


def encode_plx_features(features: PlxFeatures) -> bytes:
    if not isinstance(features, PlxFeatures):
        raise TypeError(f"expected PlxFeatures, got {features!r}")
    flags = sum(bit for name, bit in _PLX_FLAGS if getattr(features, name))
    values: dict[str, Any] = {}
    if features.measurement_status_support is not None:
        flags |= _MEASUREMENT_STATUS_SUPPORT
        values["measurement_status_support"] = int(features.measurement_status_support)
    if features.device_and_sensor_status_support is not None:
        flags |= _DEVICE_STATUS_SUPPORT
        values["device_and_sensor_status_support"] = int(features.device_and_sensor_status_support)
    return _PLXF.pack(flags, values)


def encode_feature(
    features: BloodPressureFeature
    | GlucoseFeature
    | WeightScaleFeature
    | BodyCompositionFeature
    | PlxFeatures,
) -> bytes:
    """The characteristic value a device with `features` returns when read."""
    if isinstance(features, PlxFeatures):
        return encode_plx_features(features)
    if isinstance(features, BloodPressureFeature | GlucoseFeature):
        return _U16.pack(features.to_bits())
    if isinstance(features, WeightScaleFeature | BodyCompositionFeature):
        return _U32.pack(features.to_bits())
    raise TypeError(f"not a feature characteristic value: {features!r}")
