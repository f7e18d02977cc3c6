"""Pulse oximetry: PLX Spot-Check Measurement (0x2A5E) and PLX Continuous Measurement (0x2A5F).

Field layouts from the GATT Specification Supplement (GSS) entries of the same names; the
status bit meanings from the Pulse Oximeter Service v1.0.1 (PLXS), tables "Measurement
Status" and "Device and Sensor Status". Values stay in the units transmitted: SpO2 in
percent, pulse rate in beats per minute, pulse amplitude index in percent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag
from typing import Any

from .bits import flag_value
from .date_time import Timestamp
from .ieee11073 import MedValue
from .layout import DATE_TIME, SFLOAT, U16, U24, Field, Layout
from .uuids import PLX_CONTINUOUS_MEASUREMENT, PLX_SPOT_CHECK_MEASUREMENT, name_of

__all__ = [
    "PlxContinuousMeasurement",
    "PlxDeviceAndSensorStatus",
    "PlxMeasurementStatus",
    "PlxSpotCheckMeasurement",
    "decode_plx_continuous",
    "decode_plx_spot_check",
    "encode_plx_continuous",
    "encode_plx_spot_check",
]


class PlxMeasurementStatus(IntFlag):
    """PLXS "Measurement Status" (16 bits; bits 0-4 are RFU and dropped on receipt)."""

    MEASUREMENT_ONGOING = 1 << 5
    EARLY_ESTIMATED_DATA = 1 << 6
    VALIDATED_DATA = 1 << 7
    FULLY_QUALIFIED_DATA = 1 << 8
    DATA_FROM_MEASUREMENT_STORAGE = 1 << 9
    DATA_FOR_DEMONSTRATION = 1 << 10
    DATA_FOR_TESTING = 1 << 11
    CALIBRATION_ONGOING = 1 << 12
    MEASUREMENT_UNAVAILABLE = 1 << 13
    QUESTIONABLE_MEASUREMENT_DETECTED = 1 << 14
    INVALID_MEASUREMENT_DETECTED = 1 << 15


class PlxDeviceAndSensorStatus(IntFlag):
    """PLXS "Device and Sensor Status" (24 bits; bits 16-23 are RFU and dropped on receipt)."""

    EXTENDED_DISPLAY_UPDATE_ONGOING = 1 << 0
    EQUIPMENT_MALFUNCTION_DETECTED = 1 << 1
    SIGNAL_PROCESSING_IRREGULARITY_DETECTED = 1 << 2
    INADEQUATE_SIGNAL_DETECTED = 1 << 3
    POOR_SIGNAL_DETECTED = 1 << 4
    LOW_PERFUSION_DETECTED = 1 << 5
    ERRATIC_SIGNAL_DETECTED = 1 << 6
    NONPULSATILE_SIGNAL_DETECTED = 1 << 7
    QUESTIONABLE_PULSE_DETECTED = 1 << 8
    SIGNAL_ANALYSIS_ONGOING = 1 << 9
    SENSOR_INTERFERENCE_DETECTED = 1 << 10
    SENSOR_UNCONNECTED_TO_USER = 1 << 11
    UNKNOWN_SENSOR_CONNECTED = 1 << 12
    SENSOR_DISPLACED = 1 << 13
    SENSOR_MALFUNCTIONING = 1 << 14
    SENSOR_DISCONNECTED = 1 << 15


# Masks of the defined bits: the SIG convention for RFU bits is "set to 0 on transmission,
# ignored on receipt", so undefined bits are dropped rather than rejected.
_MEASUREMENT_STATUS_DEFINED = sum(PlxMeasurementStatus)
_DEVICE_STATUS_DEFINED = sum(PlxDeviceAndSensorStatus)


@dataclass(frozen=True, slots=True)
class PlxSpotCheckMeasurement:
    spo2: MedValue  # SpO2PR-Spot-Check - SpO2, percent
    pulse_rate: MedValue  # SpO2PR-Spot-Check - PR, beats per minute
    timestamp: Timestamp | None = None  # device local time, no zone
    measurement_status: PlxMeasurementStatus | None = None
    device_and_sensor_status: PlxDeviceAndSensorStatus | None = None
    pulse_amplitude_index: MedValue | None = None  # percent
    device_clock_not_set: bool = False  # Flags bit 4: the timestamp is not wall-clock time


@dataclass(frozen=True, slots=True)
class PlxContinuousMeasurement:
    spo2: MedValue  # SpO2PR-Normal - SpO2, percent
    pulse_rate: MedValue  # SpO2PR-Normal - PR, beats per minute
    spo2_fast: MedValue | None = None  # SpO2PR-Fast: shorter averaging, for trends
    pulse_rate_fast: MedValue | None = None
    spo2_slow: MedValue | None = None  # SpO2PR-Slow: longer averaging
    pulse_rate_slow: MedValue | None = None
    measurement_status: PlxMeasurementStatus | None = None
    device_and_sensor_status: PlxDeviceAndSensorStatus | None = None
    pulse_amplitude_index: MedValue | None = None


# --- PLX Spot-Check Measurement (GSS "PLX Spot-Check Measurement") -------------------------

_SPOT_TIMESTAMP = 0x01
_SPOT_MEASUREMENT_STATUS = 0x02
_SPOT_DEVICE_STATUS = 0x04
_SPOT_PULSE_AMPLITUDE_INDEX = 0x08
_SPOT_DEVICE_CLOCK_NOT_SET = 0x10  # a flag only: it adds no field

_SPOT_CHECK = Layout(
    name_of(PLX_SPOT_CHECK_MEASUREMENT),
    (
        Field("spo2", SFLOAT),
        Field("pulse_rate", SFLOAT),
        Field("timestamp", DATE_TIME, _SPOT_TIMESTAMP),
        Field("measurement_status", U16, _SPOT_MEASUREMENT_STATUS),
        Field("device_and_sensor_status", U24, _SPOT_DEVICE_STATUS),
        Field("pulse_amplitude_index", SFLOAT, _SPOT_PULSE_AMPLITUDE_INDEX),
    ),
)


def _statuses(values: dict[str, Any]) -> None:
    raw = values.get("measurement_status")
    if raw is not None:
        values["measurement_status"] = flag_value(PlxMeasurementStatus, raw & _MEASUREMENT_STATUS_DEFINED)
    raw = values.get("device_and_sensor_status")
    if raw is not None:
        values["device_and_sensor_status"] = flag_value(
            PlxDeviceAndSensorStatus, raw & _DEVICE_STATUS_DEFINED
        )


def decode_plx_spot_check(payload: bytes) -> PlxSpotCheckMeasurement:
    flags, values = _SPOT_CHECK.unpack(payload)
    _statuses(values)
    return PlxSpotCheckMeasurement(**values, device_clock_not_set=bool(flags & _SPOT_DEVICE_CLOCK_NOT_SET))


def encode_plx_spot_check(
    spo2: object,
    pulse_rate: object,
    *,
    timestamp: Timestamp | None = None,
    measurement_status: PlxMeasurementStatus | int | None = None,
    device_and_sensor_status: PlxDeviceAndSensorStatus | int | None = None,
    pulse_amplitude_index: object | None = None,
    device_clock_not_set: bool = False,
) -> bytes:
    """A PLX Spot-Check Measurement payload; optional fields are sent when not None."""
    values = {
        "spo2": spo2,
        "pulse_rate": pulse_rate,
        "timestamp": timestamp,
        "measurement_status": measurement_status,
        "device_and_sensor_status": device_and_sensor_status,
        "pulse_amplitude_index": pulse_amplitude_index,
    }
    flags = _SPOT_DEVICE_CLOCK_NOT_SET if device_clock_not_set else 0
    flags |= _flags_for(
        values,
        {
            "timestamp": _SPOT_TIMESTAMP,
            "measurement_status": _SPOT_MEASUREMENT_STATUS,
            "device_and_sensor_status": _SPOT_DEVICE_STATUS,
            "pulse_amplitude_index": _SPOT_PULSE_AMPLITUDE_INDEX,
        },
    )
    return _SPOT_CHECK.pack(flags, _int_statuses(values))


# --- PLX Continuous Measurement (GSS "PLX Continuous Measurement") -------------------------

_CONT_FAST = 0x01
_CONT_SLOW = 0x02
_CONT_MEASUREMENT_STATUS = 0x04
_CONT_DEVICE_STATUS = 0x08
_CONT_PULSE_AMPLITUDE_INDEX = 0x10

_CONTINUOUS = Layout(
    name_of(PLX_CONTINUOUS_MEASUREMENT),
    (
        Field("spo2", SFLOAT),
        Field("pulse_rate", SFLOAT),
        Field("spo2_fast", SFLOAT, _CONT_FAST),
        Field("pulse_rate_fast", SFLOAT, _CONT_FAST),
        Field("spo2_slow", SFLOAT, _CONT_SLOW),
        Field("pulse_rate_slow", SFLOAT, _CONT_SLOW),
        Field("measurement_status", U16, _CONT_MEASUREMENT_STATUS),
        Field("device_and_sensor_status", U24, _CONT_DEVICE_STATUS),
        Field("pulse_amplitude_index", SFLOAT, _CONT_PULSE_AMPLITUDE_INDEX),
    ),
)


def decode_plx_continuous(payload: bytes) -> PlxContinuousMeasurement:
    _, values = _CONTINUOUS.unpack(payload)
    _statuses(values)
    return PlxContinuousMeasurement(**values)


def encode_plx_continuous(
    spo2: object,
    pulse_rate: object,
    *,
    spo2_fast: object | None = None,
    pulse_rate_fast: object | None = None,
    spo2_slow: object | None = None,
    pulse_rate_slow: object | None = None,
    measurement_status: PlxMeasurementStatus | int | None = None,
    device_and_sensor_status: PlxDeviceAndSensorStatus | int | None = None,
    pulse_amplitude_index: object | None = None,
) -> bytes:
    """A PLX Continuous Measurement payload. Fast and slow values come in SpO2/PR pairs."""
    for label, pair in (("fast", (spo2_fast, pulse_rate_fast)), ("slow", (spo2_slow, pulse_rate_slow))):
        if (pair[0] is None) != (pair[1] is None):
            raise ValueError(
                f"SpO2PR-{label.capitalize()} is one field: give both spo2_{label} and "
                f"pulse_rate_{label}, or neither"
            )
    values = {
        "spo2": spo2,
        "pulse_rate": pulse_rate,
        "spo2_fast": spo2_fast,
        "pulse_rate_fast": pulse_rate_fast,
        "spo2_slow": spo2_slow,
        "pulse_rate_slow": pulse_rate_slow,
        "measurement_status": measurement_status,
        "device_and_sensor_status": device_and_sensor_status,
        "pulse_amplitude_index": pulse_amplitude_index,
    }
    flags = _flags_for(
        values,
        {
            "spo2_fast": _CONT_FAST,
            "spo2_slow": _CONT_SLOW,
            "measurement_status": _CONT_MEASUREMENT_STATUS,
            "device_and_sensor_status": _CONT_DEVICE_STATUS,
            "pulse_amplitude_index": _CONT_PULSE_AMPLITUDE_INDEX,
        },
    )
    return _CONTINUOUS.pack(flags, _int_statuses(values))


def _flags_for(values: dict[str, Any], bits: dict[str, int]) -> int:
    flags = 0
    for name, bit in bits.items():
        if values[name] is not None:
            flags |= bit
    return flags


def _int_statuses(values: dict[str, Any]) -> dict[str, Any]:
    # IntFlag members are ints already; plain ints pass through the uint codecs' range checks.
    for name in ("measurement_status", "device_and_sensor_status"):
        if isinstance(values[name], IntFlag):
            values[name] = int(values[name])
    return values
