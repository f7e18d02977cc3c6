"""Quality flags: what a device's status bits say about a reading, in short snake_case words.

Every flag `normalise()` can put on an observation is listed in QUALITY_FLAGS, in the order
observations carry them. The wire contract (`core.contract.Observation.quality`) allows at
most MAX_FLAGS flags matching ^[a-z][a-z0-9_]{0,40}$; the tests check every flag against
that pattern and that no characteristic can produce more than MAX_FLAGS at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from .plx import PlxDeviceAndSensorStatus, PlxMeasurementStatus

__all__ = [
    "GLUCOSE_STATUS_QUALITY",
    "MAX_FLAGS",
    "PLX_DEVICE_QUALITY",
    "PLX_MEASUREMENT_QUALITY",
    "QUALITY_FLAGS",
    "ordered_flags",
]

MAX_FLAGS: Final = 16  # core.contract: Observation.quality max_length

QUALITY_FLAGS: Final = (
    "measurement_ongoing",  # PLX measurement ongoing / signal analysis ongoing, intermediate temperature,
    # BCI "pulse searching"
    "early_estimate",  # PLX early estimated data
    "device_clock_not_set",  # timestamp unusable: PLX flag or a "not known" Date Time
    "from_storage",  # PLX data from measurement storage (sent late, not live)
    "demonstration_data",  # PLX data for demonstration: not this patient's
    "test_data",  # PLX data for testing
    "calibration_ongoing",
    "signal_questionable",  # PLX questionable measurement, poor/inadequate/erratic/nonpulsatile signal...,
    # BCI "no signal"
    "low_perfusion",
    "equipment_malfunction",
    "sensor_interference",
    "sensor_off_patient",  # PLX sensor unconnected to user
    "unknown_sensor",
    "sensor_displaced",
    "sensor_malfunction",  # PLX sensor malfunctioning, glucose sensor malfunction or faulting
    "sensor_disconnected",
    "body_movement",  # BP measurement status bit 0
    "cuff_loose",  # bit 1
    "irregular_pulse",  # bit 2
    "pulse_rate_above_range",  # bits 3-4 = 1
    "pulse_rate_below_range",  # bits 3-4 = 2
    "improper_position",  # bit 5
    "no_sensor_contact",  # heart rate sensor supports contact detection and reports none
    # Glucose Sensor Status Annunciation (GLS), bits 0 and 2-11 (bit 1 is sensor_malfunction):
    "device_battery_low",
    "sample_size_insufficient",
    "strip_insertion_error",
    "strip_type_incorrect",
    "result_above_range",  # the meter's "HI": the true value is higher than the one sent
    "result_below_range",  # "LO"
    "sensor_temperature_high",
    "sensor_temperature_low",
    "strip_pulled_too_soon",
    "device_fault",
    "device_time_fault",  # the meter's time may be inaccurate; the time is kept, flagged
)
_FLAG_ORDER: Final = {flag: i for i, flag in enumerate(QUALITY_FLAGS)}

PLX_MEASUREMENT_QUALITY: Final = (
    (PlxMeasurementStatus.MEASUREMENT_ONGOING, "measurement_ongoing"),
    (PlxMeasurementStatus.EARLY_ESTIMATED_DATA, "early_estimate"),
    (PlxMeasurementStatus.DATA_FROM_MEASUREMENT_STORAGE, "from_storage"),
    (PlxMeasurementStatus.DATA_FOR_DEMONSTRATION, "demonstration_data"),
    (PlxMeasurementStatus.DATA_FOR_TESTING, "test_data"),
    (PlxMeasurementStatus.CALIBRATION_ONGOING, "calibration_ongoing"),
    (PlxMeasurementStatus.QUESTIONABLE_MEASUREMENT_DETECTED, "signal_questionable"),
)
PLX_DEVICE_QUALITY: Final = (
    # EXTENDED_DISPLAY_UPDATE_ONGOING says nothing about the reading.
    (PlxDeviceAndSensorStatus.EQUIPMENT_MALFUNCTION_DETECTED, "equipment_malfunction"),
    (PlxDeviceAndSensorStatus.SIGNAL_PROCESSING_IRREGULARITY_DETECTED, "signal_questionable"),
    (PlxDeviceAndSensorStatus.INADEQUATE_SIGNAL_DETECTED, "signal_questionable"),
    (PlxDeviceAndSensorStatus.POOR_SIGNAL_DETECTED, "signal_questionable"),
    (PlxDeviceAndSensorStatus.LOW_PERFUSION_DETECTED, "low_perfusion"),
    (PlxDeviceAndSensorStatus.ERRATIC_SIGNAL_DETECTED, "signal_questionable"),
    (PlxDeviceAndSensorStatus.NONPULSATILE_SIGNAL_DETECTED, "signal_questionable"),
    (PlxDeviceAndSensorStatus.QUESTIONABLE_PULSE_DETECTED, "signal_questionable"),
    (PlxDeviceAndSensorStatus.SIGNAL_ANALYSIS_ONGOING, "measurement_ongoing"),
    (PlxDeviceAndSensorStatus.SENSOR_INTERFERENCE_DETECTED, "sensor_interference"),
    (PlxDeviceAndSensorStatus.SENSOR_UNCONNECTED_TO_USER, "sensor_off_patient"),
    (PlxDeviceAndSensorStatus.UNKNOWN_SENSOR_CONNECTED, "unknown_sensor"),
    (PlxDeviceAndSensorStatus.SENSOR_DISPLACED, "sensor_displaced"),
    (PlxDeviceAndSensorStatus.SENSOR_MALFUNCTIONING, "sensor_malfunction"),
    (PlxDeviceAndSensorStatus.SENSOR_DISCONNECTED, "sensor_disconnected"),
)
# GlucoseSensorStatus field -> flag. Status bits flag a glucose value, they never reject it:
# a "HI" reading is the most urgent one there is.
GLUCOSE_STATUS_QUALITY: Final[dict[str, str]] = {
    "device_battery_low": "device_battery_low",
    "sensor_malfunction": "sensor_malfunction",
    "sample_size_insufficient": "sample_size_insufficient",
    "strip_insertion_error": "strip_insertion_error",
    "strip_type_incorrect": "strip_type_incorrect",
    "result_too_high": "result_above_range",
    "result_too_low": "result_below_range",
    "sensor_temperature_too_high": "sensor_temperature_high",
    "sensor_temperature_too_low": "sensor_temperature_low",
    "strip_pulled_too_soon": "strip_pulled_too_soon",
    "general_device_fault": "device_fault",
    "time_fault": "device_time_fault",
}


def ordered_flags(flags: Iterable[str]) -> tuple[str, ...]:
    """Distinct flags in QUALITY_FLAGS order, at most MAX_FLAGS of them.

    No characteristic can raise more than MAX_FLAGS distinct flags (a test enumerates every
    status bit); should one ever do, the first MAX_FLAGS in QUALITY_FLAGS order are kept
    rather than the whole observation failing the wire contract.
    """
    return tuple(sorted(set(flags), key=_FLAG_ORDER.__getitem__))[:MAX_FLAGS]
