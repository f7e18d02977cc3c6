"""From decoded device values to clinical observations in Hemma's canonical units.

`normalise(measurement, device_tz=...)` is pure: the device's zone is a parameter, the
wall clock is never read. What it decides, in one place:

* Units: to the UCUM unit of `core.vitals.VITALS` (mm[Hg], Cel, kg, %, /min, mmol/L).
  Converted values are rounded (half up) to 0.1 mm[Hg], 0.01 Cel, 0.01 kg and 0.01 mmol/L:
  finer than any of these devices resolve (0.1 kPa = 0.75 mmHg, 0.1 degF = 0.056 Cel,
  0.01 lb = 0.0045 kg, 1 mg/dL = 0.056 mmol/L), coarse enough not to invent digits. Values
  already in the canonical unit, or a decimal shift away from it, are kept exactly.
  1 kPa = 7.50062 mmHg; 1 lb = 0.45359237 kg (exact by definition). Glucose (GLS sends
  kg/L or mol/L): mmol/L = mol/L x 1000 (exact); from kg/L, mg/dL = kg/L x 100 000 and
  mmol/L = mg/dL / 18.016 (glucose 180.16 g/mol, the factor clinical chemistry uses).
* Time: the device's naive Date Time read in `device_tz`, converted to UTC. None when the
  device sent none, its year/month/day was "not known", or a PLX spot-check says its clock
  is not set; those add the quality flag "device_clock_not_set". Local times that a DST
  change makes ambiguous resolve to the first occurrence (fold=0), as zoneinfo does. A
  glucose reading's time is its user facing time, Base Time + Time Offset.
* Rejection, never silent loss: a special value (NaN, NRes, +/-INF, weight "measurement
  unsuccessful", BCI "invalid"), a value `core.vitals.plausibility_problem` refuses, a
  PLX reading the device itself marks "measurement unavailable" / "invalid measurement
  detected", a BCI reading with the probe unplugged or no finger in it, a glucose
  control-solution test, or a glucose record without a concentration goes to `rejected`
  with the reason.
* Quality: status bits become short flags (see `quality.QUALITY_FLAGS`) carried by every
  observation of the measurement, in QUALITY_FLAGS order, at most 16 (the contract's cap).
* Which values: PLX -> spo2 + pulse_rate (the "normal" averaging of continuous PLX; fast and
  slow are alternative filters of the same signal), blood pressure -> systolic_bp,
  diastolic_bp, mean_arterial_pressure, pulse_rate; temperature and intermediate temperature
  (flagged measurement_ongoing) -> body_temperature; weight -> body_weight; body
  composition -> body_weight only (fat, muscle, water are not vitals in `core.vitals`);
  glucose -> glucose; heart rate -> heart_rate; BCI oximeter -> spo2 + pulse_rate of the
  newest packet of the notification. Battery level, intermediate cuff pressure, glucose
  context, clocks, RACP responses and feature characteristics are not clinical observations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Any, Final

from core.vitals import VITALS, Vital, plausibility_problem

from .battery import BatteryLevel
from .bci import BciOximeterNotification
from .blood_pressure import BloodPressureMeasurement, IntermediateCuffPressure, PulseRateRange
from .body_composition import BodyCompositionMeasurement
from .current_time import CurrentTime, DateTimeCharacteristic
from .date_time import Timestamp, UnknownDateTime
from .features import (
    BloodPressureFeature,
    BodyCompositionFeature,
    GlucoseFeature,
    PlxFeatures,
    WeightScaleFeature,
)
from .glucose import GlucoseMeasurement, GlucoseSampleLocation, GlucoseType
from .glucose_context import GlucoseMeasurementContext
from .heart_rate import HeartRateMeasurement
from .ieee11073 import Medfloat, NoValue
from .plx import (
    PlxContinuousMeasurement,
    PlxDeviceAndSensorStatus,
    PlxMeasurementStatus,
    PlxSpotCheckMeasurement,
)
from .quality import (
    GLUCOSE_STATUS_QUALITY,
    PLX_DEVICE_QUALITY,
    PLX_MEASUREMENT_QUALITY,
    QUALITY_FLAGS,
    ordered_flags,
)
from .racp import RacpResponse
from .temperature import IntermediateTemperature, TemperatureMeasurement
from .weight import WeightMeasurement

__all__ = ["QUALITY_FLAGS", "ClinicalObservation", "Normalised", "RejectedValue", "normalise"]


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
_MG_PER_DL_PER_MMOL: Final = Decimal("18.016")  # glucose: 180.16 g/mol = 18.016 mg/dL per mmol/L
# Enough digits for any FLOAT (8-digit mantissa, exponent up to +/-128) to convert and round.
_WIDE: Final = Context(prec=300)

Convert = Callable[[Decimal], Decimal]


def _kpa_to_mmhg(kpa: Decimal) -> Decimal:
    return (kpa * _KPA_TO_MMHG).quantize(Decimal("0.1"), ROUND_HALF_UP)


def _fahrenheit_to_celsius(fahrenheit: Decimal) -> Decimal:
    return ((fahrenheit - 32) * 5 / 9).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _lb_to_kg(lb: Decimal) -> Decimal:
    return (lb * _LB_TO_KG).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _mol_per_litre_to_mmol(mol_per_litre: Decimal) -> Decimal:
    return mol_per_litre.scaleb(3)  # exact: a decimal shift


def _kg_per_litre_to_mmol(kg_per_litre: Decimal) -> Decimal:
    mg_per_dl = kg_per_litre.scaleb(5)  # 1 kg/L = 10^6 mg / 10 dL
    return (mg_per_dl / _MG_PER_DL_PER_MMOL).quantize(Decimal("0.01"), ROUND_HALF_UP)


class _Collector:
    """Observations and rejections of one measurement, sharing its quality flags."""

    def __init__(self, quality: Iterable[str], device_rejection: str | None = None) -> None:
        self.quality = ordered_flags(quality)
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
    try:
        return timestamp.replace(tzinfo=device_tz).astimezone(UTC), ()
    except OverflowError:  # 9999-12-31 local is past year 9999 in UTC west of Greenwich
        return None, ("device_clock_not_set",)


# --- per characteristic ----------------------------------------------------------------------


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
    quality += [flag for bit, flag in PLX_MEASUREMENT_QUALITY if status & bit]
    quality += [flag for bit, flag in PLX_DEVICE_QUALITY if device & bit]
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


def _body_composition(m: BodyCompositionMeasurement, device_tz: tzinfo) -> Normalised:
    effective_time, quality = _time(m.timestamp, device_tz)
    out = _Collector(quality)
    if m.weight is not None:
        out.add(Vital.BODY_WEIGHT, m.weight, _lb_to_kg if m.unit == "lb" else None)
    return out.result(effective_time)


def _glucose(m: GlucoseMeasurement, device_tz: tzinfo) -> Normalised:
    try:
        when = m.user_facing_time
    except OverflowError:  # Base Time + Time Offset past year 9999
        when = UnknownDateTime(0, 0, 0, 0, 0, 0)
    effective_time, quality = _time(when, device_tz)
    status = m.sensor_status
    flags = list(quality)
    if status is not None:
        flags += [GLUCOSE_STATUS_QUALITY[name] for name in status.set_names()]
    rejection = None
    if (
        m.sample_type == GlucoseType.CONTROL_SOLUTION
        or m.sample_location == GlucoseSampleLocation.CONTROL_SOLUTION
    ):
        # A meter check with control solution: a known liquid, not the patient's blood.
        rejection = "control solution test, not a patient sample"
    out = _Collector(flags, rejection)
    if m.concentration is None:
        reason = "glucose: the meter sent a record without a concentration"
        if flags:
            reason += f" ({', '.join(ordered_flags(flags))})"
        out.rejected.append(RejectedValue(Vital.GLUCOSE, None, VITALS[Vital.GLUCOSE].ucum, reason))
    else:
        convert = _mol_per_litre_to_mmol if m.unit == "mol/L" else _kg_per_litre_to_mmol
        out.add(Vital.GLUCOSE, m.concentration, convert)
    return out.result(effective_time)


def _bci_oximeter(m: BciOximeterNotification, device_tz: tzinfo) -> Normalised:
    # SpO2 and pulse rate change once a second or so; the packets of one notification are
    # a fraction of a second apart, so the newest one speaks for the notification.
    p = m.latest
    flags = []
    if p.pulse_searching:
        flags.append("measurement_ongoing")
    if p.no_signal:
        flags.append("signal_questionable")
    rejection = None
    if p.probe_unplugged:
        rejection = "oximeter reports the probe unplugged"
    elif p.no_finger:
        rejection = "oximeter reports no finger in the probe"
    out = _Collector(flags, rejection)
    out.add(Vital.SPO2, p.spo2)
    out.add(Vital.PULSE_RATE, p.pulse_rate)
    return out.result(None)


def _cuff_pressure(m: IntermediateCuffPressure, device_tz: tzinfo) -> Normalised:
    # Not clinical (the cuff is still inflating), but its time places it in a session.
    return Normalised(_time(m.timestamp, device_tz)[0])


def _not_clinical(m: Any, device_tz: tzinfo) -> Normalised:
    return Normalised(None)


_BY_TYPE: Final[dict[type, Callable[[Any, tzinfo], Normalised]]] = {
    PlxSpotCheckMeasurement: _plx,
    PlxContinuousMeasurement: _plx,
    BloodPressureMeasurement: _blood_pressure,
    IntermediateCuffPressure: _cuff_pressure,
    TemperatureMeasurement: _temperature,
    IntermediateTemperature: _temperature,
    WeightMeasurement: _weight,
    BodyCompositionMeasurement: _body_composition,
    GlucoseMeasurement: _glucose,
    HeartRateMeasurement: _heart_rate,
    BciOximeterNotification: _bci_oximeter,
    **dict.fromkeys(
        (
            BatteryLevel,
            GlucoseMeasurementContext,
            DateTimeCharacteristic,
            CurrentTime,
            RacpResponse,
            BloodPressureFeature,
            PlxFeatures,
            WeightScaleFeature,
            GlucoseFeature,
            BodyCompositionFeature,
        ),
        _not_clinical,
    ),
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
