"""From decoded device values to clinical observations in Hemma's canonical units.

`normalise(measurement, device_tz=...)` is pure: the device's zone is a parameter, the
wall clock is never read. What it decides, in one place:

* Units: to the UCUM unit of `hemma.vitals.VITALS` (mm[Hg], Cel, kg, %, /min). Converted
  values are rounded (half up) to 0.1 mm[Hg], 0.01 Cel and 0.01 kg: finer than any of these
  devices resolve (0.1 kPa = 0.75 mmHg, 0.1 degF = 0.056 Cel, 0.01 lb = 0.0045 kg), coarse
  enough not to invent digits. Values already in the canonical unit are kept exactly.
  1 kPa = 7.50062 mmHg; 1 lb = 0.45359237 kg (exact by definition).
* Time: the device's naive Date Time read in `device_tz`, converted to UTC. None when the
  device sent none, its year/month/day was "not known", or a PLX spot-check says its clock
  is not set; those add the quality flag "device_clock_not_set". Local times that a DST
  change makes ambiguous resolve to the first occurrence (fold=0), as zoneinfo does.
* Rejection, never silent loss: a special value (NaN, NRes, +/-INF, weight "measurement
  unsuccessful"), a value `hemma.vitals.plausibility_problem` refuses, or a PLX reading the
  device itself marks "measurement unavailable" / "invalid measurement detected" goes to
  `rejected` with the reason.
* Quality: status bits become short flags (see QUALITY_FLAGS) carried by every
  observation of the measurement, in QUALITY_FLAGS order.
* Which values: PLX -> spo2 + pulse_rate (the "normal" averaging of continuous PLX; fast and
  slow are alternative filters of the same signal), blood pressure -> systolic_bp,
  diastolic_bp, mean_arterial_pressure, pulse_rate; temperature and intermediate temperature
  (flagged measurement_ongoing) -> body_temperature; weight -> body_weight; heart rate ->
  heart_rate. Battery level and intermediate cuff pressure are not clinical observations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Any, Final

from hemma.vitals import VITALS, Vital, plausibility_problem

from .battery import BatteryLevel
from .blood_pressure import BloodPressureMeasurement, IntermediateCuffPressure, PulseRateRange
from .date_time import Timestamp, UnknownDateTime
from .heart_rate import HeartRateMeasurement
from .ieee11073 import Medfloat, NoValue
from .plx import (
    PlxContinuousMeasurement,
    PlxDeviceAndSensorStatus,
    PlxMeasurementStatus,
    PlxSpotCheckMeasurement,
)
from .temperature import IntermediateTemperature, TemperatureMeasurement
from .weight import WeightMeasurement

__all__ = ["QUALITY_FLAGS", "ClinicalObservation", "Normalised", "RejectedValue", "normalise"]

# Every flag normalise() emits, in the order they appear on an observation.
QUALITY_FLAGS: Final = (
    "measurement_ongoing",  # PLX measurement ongoing / signal analysis ongoing, intermediate temperature
    "early_estimate",  # PLX early estimated data
    "device_clock_not_set",  # timestamp unusable: PLX flag or a "not known" Date Time
    "from_storage",  # PLX data from measurement storage (sent late, not live)
    "demonstration_data",  # PLX data for demonstration: not this patient's
    "test_data",  # PLX data for testing
    "calibration_ongoing",
    "signal_questionable",  # PLX questionable measurement, poor/inadequate/erratic/nonpulsatile signal...
    "low_perfusion",
    "equipment_malfunction",
    "sensor_interference",
    "sensor_off_patient",  # PLX sensor unconnected to user
    "unknown_sensor",
    "sensor_displaced",
    "sensor_malfunction",
    "sensor_disconnected",
    "body_movement",  # BP measurement status bit 0
    "cuff_loose",  # bit 1
    "irregular_pulse",  # bit 2
    "pulse_rate_above_range",  # bits 3-4 = 1
    "pulse_rate_below_range",  # bits 3-4 = 2
    "improper_position",  # bit 5
    "no_sensor_contact",  # heart rate sensor supports contact detection and reports none
)
_FLAG_ORDER: Final = {flag: i for i, flag in enumerate(QUALITY_FLAGS)}


@dataclass(frozen=True, slots=True)
class ClinicalObservation:
    vital: Vital
    value: float  # in `unit`
    unit: str  # UCUM, = VITALS[vital].ucum
    quality: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RejectedValue:
    vital: Vital
    value: float | None  # in `unit` after conversion; None when the device sent no number
    unit: str
    reason: str


@dataclass(frozen=True, slots=True)
class Normalised:
    effective_time: datetime | None  # aware, UTC
    observations: tuple[ClinicalObservation, ...] = ()
    rejected: tuple[RejectedValue, ...] = ()


# --- conversions ---------------------------------------------------------------------------

_KPA_TO_MMHG: Final = Decimal("7.50062")
_LB_TO_KG: Final = Decimal("0.45359237")
# Enough digits for any FLOAT (8-digit mantissa, exponent up to +/-128) to convert and round.
_WIDE: Final = Context(prec=300)

Convert = Callable[[Decimal], Decimal]


def _kpa_to_mmhg(kpa: Decimal) -> Decimal:
    return (kpa * _KPA_TO_MMHG).quantize(Decimal("0.1"), ROUND_HALF_UP)


def _fahrenheit_to_celsius(fahrenheit: Decimal) -> Decimal:
    return ((fahrenheit - 32) * 5 / 9).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _lb_to_kg(lb: Decimal) -> Decimal:
    return (lb * _LB_TO_KG).quantize(Decimal("0.01"), ROUND_HALF_UP)


class _Collector:
    """Observations and rejections of one measurement, sharing its quality flags."""

    def __init__(self, quality: Iterable[str], device_rejection: str | None = None) -> None:
        self.quality = tuple(sorted(set(quality), key=_FLAG_ORDER.__getitem__))
        self.device_rejection = device_rejection
        self.observations: list[ClinicalObservation] = []
        self.rejected: list[RejectedValue] = []

    def add(
        self, vital: Vital, value: Medfloat | NoValue | Decimal | int, convert: Convert | None = None
    ) -> None:
        unit = VITALS[vital].ucum
        if isinstance(value, NoValue):
            self.rejected.append(
                RejectedValue(vital, None, unit, f"{vital.value}: device sent no value ({value.reason})")
            )
            return
        number = value.to_decimal() if isinstance(value, Medfloat) else Decimal(value)
        with localcontext(_WIDE):
            if convert is not None:
                number = convert(number)
            as_float = float(number)
        if self.device_rejection:
            self.rejected.append(
                RejectedValue(
                    vital, as_float, unit, f"{vital.value} {as_float:g} {unit}: {self.device_rejection}"
                )
            )
            return
        problem = plausibility_problem(vital, as_float)
        if problem:
            self.rejected.append(RejectedValue(vital, as_float, unit, problem))
            return
        self.observations.append(ClinicalObservation(vital, as_float, unit, self.quality))

    def result(self, effective_time: datetime | None) -> Normalised:
        return Normalised(effective_time, tuple(self.observations), tuple(self.rejected))


def _time(timestamp: Timestamp | None, device_tz: tzinfo) -> tuple[datetime | None, tuple[str, ...]]:
    if timestamp is None:
        return None, ()
    if isinstance(timestamp, UnknownDateTime):
        return None, ("device_clock_not_set",)
    return timestamp.replace(tzinfo=device_tz).astimezone(UTC), ()


# --- per characteristic ----------------------------------------------------------------------

_PLX_MEASUREMENT_QUALITY: Final = (
    (PlxMeasurementStatus.MEASUREMENT_ONGOING, "measurement_ongoing"),
    (PlxMeasurementStatus.EARLY_ESTIMATED_DATA, "early_estimate"),
    (PlxMeasurementStatus.DATA_FROM_MEASUREMENT_STORAGE, "from_storage"),
    (PlxMeasurementStatus.DATA_FOR_DEMONSTRATION, "demonstration_data"),
    (PlxMeasurementStatus.DATA_FOR_TESTING, "test_data"),
    (PlxMeasurementStatus.CALIBRATION_ONGOING, "calibration_ongoing"),
    (PlxMeasurementStatus.QUESTIONABLE_MEASUREMENT_DETECTED, "signal_questionable"),
)
_PLX_DEVICE_QUALITY: Final = (
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


def _plx(m: PlxSpotCheckMeasurement | PlxContinuousMeasurement, device_tz: tzinfo) -> Normalised:
    quality: list[str] = []
    effective_time = None
    if isinstance(m, PlxSpotCheckMeasurement):
        effective_time, time_quality = _time(m.timestamp, device_tz)
        quality += time_quality
        if m.device_clock_not_set:
            # PLXS: the timestamp counts from an arbitrary start, not wall-clock time.
            effective_time = None
            quality.append("device_clock_not_set")
    status = m.measurement_status or PlxMeasurementStatus(0)
    device = m.device_and_sensor_status or PlxDeviceAndSensorStatus(0)
    quality += [flag for bit, flag in _PLX_MEASUREMENT_QUALITY if status & bit]
    quality += [flag for bit, flag in _PLX_DEVICE_QUALITY if device & bit]
    rejection = None
    if status & PlxMeasurementStatus.INVALID_MEASUREMENT_DETECTED:
        rejection = "device flagged the measurement invalid"
    elif status & PlxMeasurementStatus.MEASUREMENT_UNAVAILABLE:
        rejection = "device reports the measurement unavailable"
    out = _Collector(quality, rejection)
    out.add(Vital.SPO2, m.spo2)
    out.add(Vital.PULSE_RATE, m.pulse_rate)
    return out.result(effective_time)


def _blood_pressure(m: BloodPressureMeasurement, device_tz: tzinfo) -> Normalised:
    effective_time, quality = _time(m.timestamp, device_tz)
    flags = list(quality)
    s = m.measurement_status
    if s is not None:
        for on, flag in (
            (s.body_movement, "body_movement"),
            (s.cuff_fit_loose, "cuff_loose"),
            (s.irregular_pulse, "irregular_pulse"),
            (s.pulse_rate_range == PulseRateRange.EXCEEDS, "pulse_rate_above_range"),
            (s.pulse_rate_range == PulseRateRange.BELOW, "pulse_rate_below_range"),
            (s.improper_measurement_position, "improper_position"),
        ):
            if on:
                flags.append(flag)
    convert = _kpa_to_mmhg if m.unit == "kPa" else None
    out = _Collector(flags)
    out.add(Vital.SYSTOLIC_BP, m.systolic, convert)
    out.add(Vital.DIASTOLIC_BP, m.diastolic, convert)
    out.add(Vital.MEAN_ARTERIAL_PRESSURE, m.mean_arterial_pressure, convert)
    if m.pulse_rate is not None:
        out.add(Vital.PULSE_RATE, m.pulse_rate)  # beats per minute whatever the pressure unit
    return out.result(effective_time)


def _temperature(m: TemperatureMeasurement | IntermediateTemperature, device_tz: tzinfo) -> Normalised:
    effective_time, quality = _time(m.timestamp, device_tz)
    if isinstance(m, IntermediateTemperature):
        quality += ("measurement_ongoing",)
    out = _Collector(quality)
    out.add(Vital.BODY_TEMPERATURE, m.temperature, _fahrenheit_to_celsius if m.unit == "F" else None)
    return out.result(effective_time)


def _weight(m: WeightMeasurement, device_tz: tzinfo) -> Normalised:
    effective_time, quality = _time(m.timestamp, device_tz)
    out = _Collector(quality)
    out.add(Vital.BODY_WEIGHT, m.weight, _lb_to_kg if m.unit == "lb" else None)
    return out.result(effective_time)


def _heart_rate(m: HeartRateMeasurement, device_tz: tzinfo) -> Normalised:
    out = _Collector(("no_sensor_contact",) if m.sensor_contact is False else ())
    out.add(Vital.HEART_RATE, m.heart_rate)
    return out.result(None)


def _not_clinical(m: BatteryLevel | IntermediateCuffPressure, device_tz: tzinfo) -> Normalised:
    timestamp = getattr(m, "timestamp", None)
    return Normalised(_time(timestamp, device_tz)[0])


_BY_TYPE: Final[dict[type, Callable[[Any, tzinfo], Normalised]]] = {
    PlxSpotCheckMeasurement: _plx,
    PlxContinuousMeasurement: _plx,
    BloodPressureMeasurement: _blood_pressure,
    IntermediateCuffPressure: _not_clinical,
    TemperatureMeasurement: _temperature,
    IntermediateTemperature: _temperature,
    WeightMeasurement: _weight,
    HeartRateMeasurement: _heart_rate,
    BatteryLevel: _not_clinical,
}


def normalise(measurement: object, *, device_tz: tzinfo = UTC) -> Normalised:
    """Clinical observations, rejected values and the UTC time of one decoded measurement."""
    if not isinstance(device_tz, tzinfo):
        raise TypeError(
            f"device_tz must be a tzinfo (e.g. zoneinfo.ZoneInfo('Europe/Stockholm')), got {device_tz!r}"
        )
    handler = _BY_TYPE.get(type(measurement))
    if handler is None:
        raise TypeError(f"not a device_profiles measurement: {type(measurement).__name__}")
    return handler(measurement, device_tz)
