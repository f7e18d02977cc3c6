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
from typing import Any

from .battery import BatteryLevel
from .battery import encode_battery_level as battery_level
from .blood_pressure import BloodPressureMeasurement, IntermediateCuffPressure
from .blood_pressure import encode_blood_pressure as blood_pressure
from .blood_pressure import encode_intermediate_cuff_pressure as intermediate_cuff_pressure
from .heart_rate import HeartRateMeasurement
from .heart_rate import encode_heart_rate as heart_rate
from .ieee11073 import float32_from_value, pack_float32, pack_sfloat, sfloat_from_value
from .plx import PlxContinuousMeasurement, PlxSpotCheckMeasurement
from .plx import encode_plx_continuous as plx_continuous
from .plx import encode_plx_spot_check as plx_spot_check
from .temperature import IntermediateTemperature, TemperatureMeasurement
from .temperature import encode_intermediate_temperature as intermediate_temperature
from .temperature import encode_temperature as temperature
from .weight import WeightMeasurement
from .weight import encode_weight as weight

__all__ = [
    "battery_level",
    "blood_pressure",
    "float32",
    "heart_rate",
    "intermediate_cuff_pressure",
    "intermediate_temperature",
    "measurement",
    "plx_continuous",
    "plx_spot_check",
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


def measurement(m: Any) -> bytes:
    """The payload for a decoded measurement (canonical form: a decoded payload that used
    an unneeded uint16 heart rate or sensor-contact code 0b01 comes back as uint8 / 0b00)."""
    if isinstance(m, PlxSpotCheckMeasurement):
        return plx_spot_check(
            m.spo2,
            m.pulse_rate,
            timestamp=m.timestamp,
            measurement_status=m.measurement_status,
            device_and_sensor_status=m.device_and_sensor_status,
            pulse_amplitude_index=m.pulse_amplitude_index,
            device_clock_not_set=m.device_clock_not_set,
        )
    if isinstance(m, PlxContinuousMeasurement):
        return plx_continuous(
            m.spo2,
            m.pulse_rate,
            spo2_fast=m.spo2_fast,
            pulse_rate_fast=m.pulse_rate_fast,
            spo2_slow=m.spo2_slow,
            pulse_rate_slow=m.pulse_rate_slow,
            measurement_status=m.measurement_status,
            device_and_sensor_status=m.device_and_sensor_status,
            pulse_amplitude_index=m.pulse_amplitude_index,
        )
    if isinstance(m, BloodPressureMeasurement):
        return blood_pressure(
            m.systolic,
            m.diastolic,
            m.mean_arterial_pressure,
            unit=m.unit,
            timestamp=m.timestamp,
            pulse_rate=m.pulse_rate,
            user_id=m.user_id,
            measurement_status=m.measurement_status,
        )
    if isinstance(m, IntermediateCuffPressure):
        return intermediate_cuff_pressure(
            m.current_cuff_pressure,
            unit=m.unit,
            timestamp=m.timestamp,
            pulse_rate=m.pulse_rate,
            user_id=m.user_id,
            measurement_status=m.measurement_status,
        )
    if isinstance(m, TemperatureMeasurement | IntermediateTemperature):
        encoder = temperature if isinstance(m, TemperatureMeasurement) else intermediate_temperature
        return encoder(m.temperature, unit=m.unit, timestamp=m.timestamp, temperature_type=m.temperature_type)
    if isinstance(m, WeightMeasurement):
        return weight(
            m.weight, unit=m.unit, timestamp=m.timestamp, user_id=m.user_id, bmi=m.bmi, height=m.height
        )
    if isinstance(m, HeartRateMeasurement):
        return heart_rate(
            m.heart_rate,
            sensor_contact=m.sensor_contact,
            energy_expended=m.energy_expended,
            rr_intervals=m.rr_intervals,
        )
    if isinstance(m, BatteryLevel):
        return battery_level(m.battery_level)
    raise TypeError(f"not a device_profiles measurement: {type(m).__name__}")
