"""Encoders: the byte-exact payloads a conforming device would send. Used by the simulator.

Each function mirrors a decoder: `parse(uuid, encode.x(...))` gives back the values passed
in. Optional fields are sent when their argument is not None. Numbers may be given as
Decimal, int, str or float (taken by its shortest repr: 36.6 means exactly 36.6), or as a
decoded `Medfloat` / `NoValue`, which are written exactly as they are. A value the field
cannot hold exactly raises ValueError; nothing is rounded silently, except RR intervals
(see `heart_rate`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final

from .battery import BatteryLevel
from .battery import encode_battery_level as battery_level
from .bci import BciOximeterNotification
from .bci import encode_bci as bci_oximeter
from .blood_pressure import BloodPressureMeasurement, IntermediateCuffPressure
from .blood_pressure import encode_blood_pressure as blood_pressure
from .blood_pressure import encode_intermediate_cuff_pressure as intermediate_cuff_pressure
from .body_composition import BodyCompositionMeasurement
from .body_composition import encode_body_composition as body_composition
from .current_time import CurrentTime, DateTimeCharacteristic
from .current_time import encode_current_time as current_time
from .current_time import encode_date_time as date_time
from .features import (
    BloodPressureFeature,
    BodyCompositionFeature,
    GlucoseFeature,
    PlxFeatures,
    WeightScaleFeature,
)
from .features import encode_feature as feature
from .glucose import GlucoseMeasurement
from .glucose import encode_glucose as glucose
from .glucose_context import GlucoseMeasurementContext
from .glucose_context import encode_glucose_context as glucose_context
from .heart_rate import HeartRateMeasurement
from .heart_rate import encode_heart_rate as heart_rate
from .ieee11073 import float32_from_value, pack_float32, pack_sfloat, sfloat_from_value
from .plx import PlxContinuousMeasurement, PlxSpotCheckMeasurement
from .plx import encode_plx_continuous as plx_continuous
from .plx import encode_plx_spot_check as plx_spot_check
from .racp import RacpOpCode, RacpOperator, RacpResponse, encode_racp_value
from .racp import encode_racp_request as racp_request
from .racp import encode_racp_response as racp_response
from .temperature import IntermediateTemperature, TemperatureMeasurement
from .temperature import encode_intermediate_temperature as intermediate_temperature
from .temperature import encode_temperature as temperature
from .weight import WeightMeasurement
from .weight import encode_weight as weight

__all__ = [
    "battery_level",
    "bci_oximeter",
    "blood_pressure",
    "body_composition",
    "current_time",
    "date_time",
    "feature",
    "float32",
    "glucose",
    "glucose_context",
    "heart_rate",
    "intermediate_cuff_pressure",
    "intermediate_temperature",
    "measurement",
    "plx_continuous",
    "plx_spot_check",
    "racp_report_all_records",
    "racp_request",
    "racp_response",
    "sfloat",
    "temperature",
    "weight",
]

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


def sfloat(value: object) -> bytes:
    """2 bytes: `value` as an SFLOAT, choosing the exponent that keeps it exact."""
    return _U16.pack(pack_sfloat(sfloat_from_value(value)))


def float32(value: object) -> bytes:
    """4 bytes: `value` as a FLOAT, choosing the exponent that keeps it exact."""
    return _U32.pack(pack_float32(float32_from_value(value)))


def racp_report_all_records() -> bytes:
    """The RACP write that asks a meter for every stored record (GLS: op 1, operator 1)."""
    return racp_request(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.ALL_RECORDS)


def _same_fields(encoder: Callable[..., bytes], *positional: str) -> Callable[[Any], bytes]:
    """An encoder fed from a decoded dataclass whose field names are the encoder's parameters."""

    def encode(m: Any) -> bytes:
        values = {name: getattr(m, name) for name in m.__slots__}
        args = [values.pop(name) for name in positional]
        return encoder(*args, **values)

    return encode


def _heart_rate(m: HeartRateMeasurement) -> bytes:
    return heart_rate(
        m.heart_rate,
        sensor_contact=m.sensor_contact,
        energy_expended=m.energy_expended,
        rr_intervals=m.rr_intervals,
    )


def _temperature(m: TemperatureMeasurement | IntermediateTemperature) -> bytes:
    encoder = temperature if isinstance(m, TemperatureMeasurement) else intermediate_temperature
    return encoder(m.temperature, unit=m.unit, timestamp=m.timestamp, temperature_type=m.temperature_type)


def _current_time(m: CurrentTime) -> bytes:
    return current_time(
        m.date_time, adjust_reason=m.adjust_reason, day_of_week=m.day_of_week, fractions256=m.fractions256
    )


_BY_TYPE: Final[dict[type, Callable[[Any], bytes]]] = {
    PlxSpotCheckMeasurement: _same_fields(plx_spot_check, "spo2", "pulse_rate"),
    PlxContinuousMeasurement: _same_fields(plx_continuous, "spo2", "pulse_rate"),
    BloodPressureMeasurement: _same_fields(blood_pressure, "systolic", "diastolic", "mean_arterial_pressure"),
    IntermediateCuffPressure: _same_fields(intermediate_cuff_pressure, "current_cuff_pressure"),
    TemperatureMeasurement: _temperature,
    IntermediateTemperature: _temperature,
    WeightMeasurement: _same_fields(weight, "weight"),
    BodyCompositionMeasurement: _same_fields(body_composition, "body_fat_percentage"),
    GlucoseMeasurement: _same_fields(glucose, "sequence_number", "base_time"),
    GlucoseMeasurementContext: _same_fields(glucose_context, "sequence_number"),
    HeartRateMeasurement: _heart_rate,
    BatteryLevel: lambda m: battery_level(m.battery_level),
    DateTimeCharacteristic: lambda m: date_time(m.date_time),
    CurrentTime: _current_time,
    RacpResponse: encode_racp_value,
    BloodPressureFeature: feature,
    PlxFeatures: feature,
    WeightScaleFeature: feature,
    GlucoseFeature: feature,
    BodyCompositionFeature: feature,
    BciOximeterNotification: lambda m: bci_oximeter(m.packets),
}


def measurement(m: Any) -> bytes:
    """The payload for any decoded value `parse` returns (canonical form: a decoded payload
    that used an unneeded uint16 heart rate or sensor-contact code 0b01 comes back as
    uint8 / 0b00, and RFU bits come back as 0)."""
    encoder = _BY_TYPE.get(type(m))
    if encoder is None:
        raise TypeError(f"not a device_profiles measurement: {type(m).__name__}")
    return encoder(m)
