"""normalise(): units, time zones, quality flags, plausibility and special-value rejection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from core.contract import Observation
from core.vitals import Vital
from device_profiles import (
    MEASUREMENT_UNSUCCESSFUL,
    QUALITY_FLAGS,
    BatteryLevel,
    BloodPressureMeasurementStatus,
    ClinicalObservation,
    Medfloat,
    Normalised,
    NoValue,
    PlxDeviceAndSensorStatus,
    PlxMeasurementStatus,
    PulseRateRange,
    RejectedValue,
    UnknownDateTime,
    encode,
    normalise,
    parse,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def observe(uuid: str, payload: bytes, **kwargs: object) -> Normalised:
    return normalise(parse(uuid, payload), **kwargs)  # type: ignore[arg-type]


def values(result: Normalised) -> dict[Vital, float]:
    return {o.vital: o.value for o in result.observations}


# --- units ---------------------------------------------------------------------------------


def test_blood_pressure_in_mmhg_passes_through() -> None:
    result = observe("2A35", encode.blood_pressure(128, 84, 99, pulse_rate=58))
    assert result == Normalised(
        None,
        (
            ClinicalObservation(Vital.SYSTOLIC_BP, 128.0, "mm[Hg]", ()),
            ClinicalObservation(Vital.DIASTOLIC_BP, 84.0, "mm[Hg]", ()),
            ClinicalObservation(Vital.MEAN_ARTERIAL_PRESSURE, 99.0, "mm[Hg]", ()),
            ClinicalObservation(Vital.PULSE_RATE, 58.0, "/min", ()),
        ),
        (),
    )


def test_blood_pressure_kpa_to_mmhg() -> None:
    # 16.0 x 7.50062 = 120.00992; 10.7 x 7.50062 = 80.256634; 12.5 x 7.50062 = 93.75775
    result = observe("2A35", encode.blood_pressure("16.0", "10.7", "12.5", unit="kPa", pulse_rate=61))
    assert values(result) == {
        Vital.SYSTOLIC_BP: 120.0,
        Vital.DIASTOLIC_BP: 80.3,
        Vital.MEAN_ARTERIAL_PRESSURE: 93.8,
        Vital.PULSE_RATE: 61.0,
    }
    assert [o.unit for o in result.observations] == ["mm[Hg]", "mm[Hg]", "mm[Hg]", "/min"]


@pytest.mark.parametrize(
    ("fahrenheit", "celsius"),
    [
        ("98.6", 37.0),
        ("100.4", 38.0),
        ("97.7", 36.5),
        ("99.1", 37.28),
        ("104", 40.0),
        ("95.0", 35.0),
    ],
)
def test_fahrenheit_to_celsius(fahrenheit: str, celsius: float) -> None:
    result = observe("2A1C", encode.temperature(fahrenheit, unit="F"))
    assert result.observations == (ClinicalObservation(Vital.BODY_TEMPERATURE, celsius, "Cel", ()),)


def test_celsius_keeps_device_precision() -> None:
    assert values(observe("2A1C", encode.temperature("36.63"))) == {Vital.BODY_TEMPERATURE: 36.63}


@pytest.mark.parametrize(
    ("pounds", "kg"), [("154.32", 70.0), ("220.46", 100.0), ("8.82", 4.0), ("181.5", 82.33)]
)
def test_pounds_to_kilograms(pounds: str, kg: float) -> None:
    result = observe("2A9D", encode.weight(pounds, unit="lb"))
    assert result.observations == (ClinicalObservation(Vital.BODY_WEIGHT, kg, "kg", ()),)


def test_kilograms_keep_the_5_gram_resolution() -> None:
    assert values(observe("2A9D", encode.weight("70.005"))) == {Vital.BODY_WEIGHT: 70.005}


def test_plx_gives_spo2_and_pulse_rate() -> None:
    result = observe("2A5E", encode.plx_spot_check("97.5", 72, pulse_amplitude_index=4))
    assert result.observations == (
        ClinicalObservation(Vital.SPO2, 97.5, "%", ()),
        ClinicalObservation(Vital.PULSE_RATE, 72.0, "/min", ()),
    )


def test_plx_continuous_uses_the_normal_values() -> None:
    result = observe(
        "2A5F",
        encode.plx_continuous(95, 80, spo2_fast=91, pulse_rate_fast=88, spo2_slow=96, pulse_rate_slow=79),
    )
    assert values(result) == {Vital.SPO2: 95.0, Vital.PULSE_RATE: 80.0}
    assert result.effective_time is None  # continuous measurements carry no timestamp


def test_heart_rate() -> None:
    assert observe("2A37", encode.heart_rate(64, rr_intervals=[0.9375])) == Normalised(
        None, (ClinicalObservation(Vital.HEART_RATE, 64.0, "/min", ()),), ()
    )


@pytest.mark.parametrize("payload", [encode.battery_level(80), encode.intermediate_cuff_pressure(150)])
def test_no_clinical_observation(payload: bytes) -> None:
    uuid = "2A19" if len(payload) == 1 else "2A36"
    assert observe(uuid, payload) == Normalised(None, (), ())


def test_intermediate_cuff_pressure_keeps_its_time() -> None:
    result = observe(
        "2A36",
        encode.intermediate_cuff_pressure(150, timestamp=datetime(2024, 1, 1, 12, 0)),
        device_tz=STOCKHOLM,
    )
    assert result == Normalised(datetime(2024, 1, 1, 11, 0, tzinfo=UTC), (), ())


# --- time ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "utc"),
    [
        (datetime(2024, 1, 15, 8, 0), datetime(2024, 1, 15, 7, 0, tzinfo=UTC)),  # CET, +01:00
        (datetime(2024, 7, 15, 8, 0), datetime(2024, 7, 15, 6, 0, tzinfo=UTC)),  # CEST, +02:00
        (
            datetime(2024, 10, 27, 2, 30),
            datetime(2024, 10, 27, 0, 30, tzinfo=UTC),
        ),  # ambiguous: first (fold=0)
    ],
)
def test_device_time_in_its_zone(local: datetime, utc: datetime) -> None:
    result = observe("2A1C", encode.temperature("36.6", timestamp=local), device_tz=STOCKHOLM)
    assert result.effective_time == utc
    assert result.effective_time.tzinfo is UTC  # type: ignore[union-attr]


def test_device_time_defaults_to_utc_and_accepts_fixed_offsets() -> None:
    payload = encode.weight(70, timestamp=datetime(2024, 5, 1, 6, 0))
    assert observe("2A9D", payload).effective_time == datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
    assert observe("2A9D", payload, device_tz=timezone(timedelta(hours=-5))).effective_time == datetime(
        2024, 5, 1, 11, 0, tzinfo=UTC
    )


def test_unknown_date_means_no_time_and_a_flag() -> None:
    result = observe("2A35", encode.blood_pressure(120, 80, 93, timestamp=UnknownDateTime(0, 0, 0, 10, 0, 0)))
    assert result.effective_time is None
    assert {o.quality for o in result.observations} == {("device_clock_not_set",)}


def test_plx_device_clock_not_set_discards_the_timestamp() -> None:
    payload = encode.plx_spot_check(97, 70, timestamp=datetime(2000, 1, 1, 0, 5), device_clock_not_set=True)
    result = observe("2A5E", payload)
    assert result.effective_time is None
    assert result.observations[0].quality == ("device_clock_not_set",)


def test_device_tz_must_be_a_tzinfo() -> None:
    with pytest.raises(TypeError, match="tzinfo"):
        normalise(parse("2A19", b"\x50"), device_tz="Europe/Stockholm")  # type: ignore[arg-type]


def test_unknown_measurement_type() -> None:
    with pytest.raises(TypeError, match="not a device_profiles measurement"):
        normalise(object())


# --- quality flags ------------------------------------------------------------------------------


def test_blood_pressure_quality_flags_travel_with_every_observation() -> None:
    status = BloodPressureMeasurementStatus(True, True, True, PulseRateRange.EXCEEDS, True)
    result = observe("2A35", encode.blood_pressure(150, 95, 113, pulse_rate=120, measurement_status=status))
    flags = ("body_movement", "cuff_loose", "irregular_pulse", "pulse_rate_above_range", "improper_position")
    assert [o.quality for o in result.observations] == [flags] * 4


@pytest.mark.parametrize(
    ("status", "flag"),
    [
        (BloodPressureMeasurementStatus(body_movement=True), "body_movement"),
        (BloodPressureMeasurementStatus(cuff_fit_loose=True), "cuff_loose"),
        (BloodPressureMeasurementStatus(irregular_pulse=True), "irregular_pulse"),
        (BloodPressureMeasurementStatus(pulse_rate_range=PulseRateRange.EXCEEDS), "pulse_rate_above_range"),
        (BloodPressureMeasurementStatus(pulse_rate_range=PulseRateRange.BELOW), "pulse_rate_below_range"),
        (BloodPressureMeasurementStatus(improper_measurement_position=True), "improper_position"),
    ],
)
def test_each_blood_pressure_flag(status: BloodPressureMeasurementStatus, flag: str) -> None:
    result = observe("2A35", encode.blood_pressure(120, 80, 93, measurement_status=status))
    assert result.observations[0].quality == (flag,)


def test_blood_pressure_clean_status_gives_no_flags() -> None:
    status = BloodPressureMeasurementStatus(pulse_rate_range=PulseRateRange.RESERVED)
    assert (
        observe("2A35", encode.blood_pressure(120, 80, 93, measurement_status=status)).observations[0].quality
        == ()
    )


@pytest.mark.parametrize(
    ("measurement", "device", "flags"),
    [
        (PlxMeasurementStatus.MEASUREMENT_ONGOING, 0, ("measurement_ongoing",)),
        (PlxMeasurementStatus.EARLY_ESTIMATED_DATA, 0, ("early_estimate",)),
        (PlxMeasurementStatus.VALIDATED_DATA | PlxMeasurementStatus.FULLY_QUALIFIED_DATA, 0, ()),
        (PlxMeasurementStatus.DATA_FROM_MEASUREMENT_STORAGE, 0, ("from_storage",)),
        (PlxMeasurementStatus.DATA_FOR_DEMONSTRATION, 0, ("demonstration_data",)),
        (PlxMeasurementStatus.DATA_FOR_TESTING, 0, ("test_data",)),
        (PlxMeasurementStatus.CALIBRATION_ONGOING, 0, ("calibration_ongoing",)),
        (PlxMeasurementStatus.QUESTIONABLE_MEASUREMENT_DETECTED, 0, ("signal_questionable",)),
        (0, PlxDeviceAndSensorStatus.EXTENDED_DISPLAY_UPDATE_ONGOING, ()),
        (0, PlxDeviceAndSensorStatus.EQUIPMENT_MALFUNCTION_DETECTED, ("equipment_malfunction",)),
        (
            0,
            PlxDeviceAndSensorStatus.POOR_SIGNAL_DETECTED | PlxDeviceAndSensorStatus.ERRATIC_SIGNAL_DETECTED,
            ("signal_questionable",),
        ),
        (0, PlxDeviceAndSensorStatus.LOW_PERFUSION_DETECTED, ("low_perfusion",)),
        (0, PlxDeviceAndSensorStatus.SIGNAL_ANALYSIS_ONGOING, ("measurement_ongoing",)),
        (0, PlxDeviceAndSensorStatus.SENSOR_INTERFERENCE_DETECTED, ("sensor_interference",)),
        (0, PlxDeviceAndSensorStatus.SENSOR_UNCONNECTED_TO_USER, ("sensor_off_patient",)),
        (0, PlxDeviceAndSensorStatus.UNKNOWN_SENSOR_CONNECTED, ("unknown_sensor",)),
        (0, PlxDeviceAndSensorStatus.SENSOR_DISPLACED, ("sensor_displaced",)),
        (0, PlxDeviceAndSensorStatus.SENSOR_MALFUNCTIONING, ("sensor_malfunction",)),
        (0, PlxDeviceAndSensorStatus.SENSOR_DISCONNECTED, ("sensor_disconnected",)),
        (
            PlxMeasurementStatus.EARLY_ESTIMATED_DATA,
            PlxDeviceAndSensorStatus.LOW_PERFUSION_DETECTED | PlxDeviceAndSensorStatus.SENSOR_DISPLACED,
            ("early_estimate", "low_perfusion", "sensor_displaced"),
        ),
    ],
)
def test_plx_quality_flags(measurement: int, device: int, flags: tuple[str, ...]) -> None:
    result = observe(
        "2A5F", encode.plx_continuous(96, 70, measurement_status=measurement, device_and_sensor_status=device)
    )
    assert [o.quality for o in result.observations] == [flags, flags]


def test_all_plx_flags_fit_the_wire_contract() -> None:
    payload = encode.plx_spot_check(
        96,
        70,
        timestamp=UnknownDateTime(0, 0, 0, 0, 0, 0),
        device_clock_not_set=True,
        measurement_status=0xFFFF & ~0xA000,
        device_and_sensor_status=0xFFFFFF,
    )
    result = observe("2A5E", payload)
    assert len(result.observations[0].quality) == 16  # core.contract allows at most 16
    assert set(result.observations[0].quality) <= set(QUALITY_FLAGS)
    assert list(result.observations[0].quality) == sorted(
        result.observations[0].quality, key=QUALITY_FLAGS.index
    )
    for o in result.observations:
        assert Observation(vital=o.vital, value=o.value, unit=o.unit, quality=o.quality).quality == o.quality


def test_heart_rate_without_sensor_contact() -> None:
    assert observe("2A37", encode.heart_rate(70, sensor_contact=False)).observations[0].quality == (
        "no_sensor_contact",
    )
    assert observe("2A37", encode.heart_rate(70, sensor_contact=True)).observations[0].quality == ()


def test_intermediate_temperature_is_flagged_ongoing() -> None:
    assert observe("2A1E", encode.intermediate_temperature("35.9")).observations == (
        ClinicalObservation(Vital.BODY_TEMPERATURE, 35.9, "Cel", ("measurement_ongoing",)),
    )


# --- rejection -------------------------------------------------------------------------------


def test_implausible_spo2_is_rejected() -> None:
    result = observe("2A5E", encode.plx_spot_check(127, 72))
    assert result.observations == (ClinicalObservation(Vital.PULSE_RATE, 72.0, "/min", ()),)
    assert result.rejected == (
        RejectedValue(Vital.SPO2, 127.0, "%", "spo2 127 % outside plausible range 40-100"),
    )


def test_plausibility_is_checked_after_conversion() -> None:
    result = observe("2A1C", encode.temperature("113", unit="F"))  # 45.0 Cel: the limit, accepted
    assert values(result) == {Vital.BODY_TEMPERATURE: 45.0}
    result = observe("2A1C", encode.temperature("113.2", unit="F"))  # 45.11 Cel
    assert result.rejected == (
        RejectedValue(
            Vital.BODY_TEMPERATURE, 45.11, "Cel", "body_temperature 45.11 Cel outside plausible range 25-45"
        ),
    )


@pytest.mark.parametrize("special", ["NaN", "NRes", "+INF", "-INF", "reserved"])
def test_special_values_are_rejected(special: str) -> None:
    result = observe("2A35", encode.blood_pressure("16.0", NoValue(special), "12.5", unit="kPa"))
    assert result.rejected == (
        RejectedValue(Vital.DIASTOLIC_BP, None, "mm[Hg]", f"diastolic_bp: device sent no value ({special})"),
    )
    assert [o.vital for o in result.observations] == [Vital.SYSTOLIC_BP, Vital.MEAN_ARTERIAL_PRESSURE]


def test_unsuccessful_weight_is_rejected() -> None:
    result = observe("2A9D", encode.weight(MEASUREMENT_UNSUCCESSFUL, timestamp=datetime(2024, 1, 1, 7, 0)))
    assert result == Normalised(
        datetime(2024, 1, 1, 7, 0, tzinfo=UTC),
        (),
        (
            RejectedValue(
                Vital.BODY_WEIGHT, None, "kg", "body_weight: device sent no value (measurement unsuccessful)"
            ),
        ),
    )


def test_zero_heart_rate_is_rejected() -> None:
    assert observe("2A37", encode.heart_rate(0)).rejected == (
        RejectedValue(Vital.HEART_RATE, 0.0, "/min", "heart_rate 0 /min outside plausible range 20-300"),
    )


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (PlxMeasurementStatus.INVALID_MEASUREMENT_DETECTED, "device flagged the measurement invalid"),
        (PlxMeasurementStatus.MEASUREMENT_UNAVAILABLE, "device reports the measurement unavailable"),
    ],
)
def test_plx_values_the_device_disowns_are_rejected(status: PlxMeasurementStatus, reason: str) -> None:
    result = observe("2A5E", encode.plx_spot_check(97, 72, measurement_status=status))
    assert result.observations == ()
    assert result.rejected == (
        RejectedValue(Vital.SPO2, 97.0, "%", f"spo2 97 %: {reason}"),
        RejectedValue(Vital.PULSE_RATE, 72.0, "/min", f"pulse_rate 72 /min: {reason}"),
    )


def test_extreme_floats_are_rejected_not_crashing() -> None:
    huge = Medfloat(8388605, 127)
    result = observe("2A1C", encode.temperature(huge, unit="F"))
    assert result.observations == ()
    assert result.rejected[0].vital == Vital.BODY_TEMPERATURE
    assert result.rejected[0].value == pytest.approx(float(huge.to_decimal() - 32) * 5 / 9)
    assert "outside plausible range" in result.rejected[0].reason


def test_battery_gives_nothing() -> None:
    assert normalise(BatteryLevel(3)) == Normalised(None)
