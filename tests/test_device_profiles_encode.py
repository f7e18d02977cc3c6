"""Encoders: literal payloads for the simulator, round trips, and the values they refuse."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from device_profiles import (
    MEASUREMENT_UNSUCCESSFUL,
    BloodPressureMeasurement,
    BloodPressureMeasurementStatus,
    HeartRateMeasurement,
    Medfloat,
    NoValue,
    PlxContinuousMeasurement,
    PlxDeviceAndSensorStatus,
    PlxMeasurementStatus,
    PlxSpotCheckMeasurement,
    PulseRateRange,
    TemperatureMeasurement,
    TemperatureType,
    UnknownDateTime,
    WeightMeasurement,
    encode,
    parse,
)

MORNING = datetime(2024, 3, 1, 8, 30, 0)


def test_plx_spot_check_literal() -> None:
    payload = encode.plx_spot_check(
        97,
        72,
        timestamp=MORNING,
        measurement_status=PlxMeasurementStatus.MEASUREMENT_ONGOING,
        device_and_sensor_status=PlxDeviceAndSensorStatus.SENSOR_DISCONNECTED,
        pulse_amplitude_index="3.5",
    )
    assert payload == bytes.fromhex("0f 6100 4800 e807 03 01 08 1e 00 2000 008000 23f0")
    assert parse("2A5E", payload) == PlxSpotCheckMeasurement(
        Medfloat(97, 0),
        Medfloat(72, 0),
        MORNING,
        PlxMeasurementStatus.MEASUREMENT_ONGOING,
        PlxDeviceAndSensorStatus.SENSOR_DISCONNECTED,
        Medfloat(35, -1),
    )
    assert encode.plx_spot_check(
        97, 72, device_and_sensor_status=0x8000, device_clock_not_set=True
    ) == bytes.fromhex("14 6100 4800 008000")


def test_plx_continuous_literal() -> None:
    payload = encode.plx_continuous("98", 60, spo2_slow="97.5", pulse_rate_slow=59)
    assert payload == bytes.fromhex("02 6200 3c00 cff3 3b00")
    assert parse("2A5F", payload) == PlxContinuousMeasurement(
        Medfloat(98, 0), Medfloat(60, 0), spo2_slow=Medfloat(975, -1), pulse_rate_slow=Medfloat(59, 0)
    )


def test_blood_pressure_literal() -> None:
    status = BloodPressureMeasurementStatus(cuff_fit_loose=True, pulse_rate_range=PulseRateRange.BELOW)
    payload = encode.blood_pressure(
        128, 84, 99, timestamp=MORNING, pulse_rate=58, user_id=2, measurement_status=status
    )
    assert payload == bytes.fromhex("1e 8000 5400 6300 e807 03 01 08 1e 00 3a00 02 1200")
    assert parse("2A35", payload) == BloodPressureMeasurement(
        Medfloat(128, 0), Medfloat(84, 0), Medfloat(99, 0), "mmHg", MORNING, Medfloat(58, 0), 2, status
    )


def test_intermediate_cuff_pressure_literal() -> None:
    assert encode.intermediate_cuff_pressure("21.3", unit="kPa") == bytes.fromhex("01 d5f0 ff07 ff07")


def test_temperature_literal() -> None:
    payload = encode.temperature("98.6", unit="F", timestamp=MORNING, temperature_type=TemperatureType.MOUTH)
    assert payload == bytes.fromhex("07 da0300ff e807 03 01 08 1e 00 06")
    assert parse("2A1C", payload) == TemperatureMeasurement(
        Medfloat(986, -1), "F", MORNING, TemperatureType.MOUTH
    )
    assert encode.intermediate_temperature(36.61) == bytes.fromhex("00 4d0e00fe")


def test_weight_literal() -> None:
    payload = encode.weight("82.35", timestamp=MORNING, user_id=1, bmi="25.4", height="1.80")
    assert payload == bytes.fromhex("0e 5640 e807 03 01 08 1e 00 01 fe00 0807")
    assert parse("2A9D", payload) == WeightMeasurement(
        Decimal("82.35"), "kg", MORNING, 1, Decimal("25.4"), Decimal("1.8")
    )
    assert encode.weight(181.5, unit="lb", bmi=25, height="70.9") == bytes.fromhex("09 e646 fa00 c502")
    assert encode.weight(MEASUREMENT_UNSUCCESSFUL) == bytes.fromhex("00 ffff")


def test_heart_rate_literal() -> None:
    payload = encode.heart_rate(
        64, sensor_contact=True, energy_expended=12, rr_intervals=[0.9375, Decimal("1")]
    )
    assert payload == bytes.fromhex("1e 40 0c00 c003 0004")
    assert parse("2A37", payload) == HeartRateMeasurement(64, True, 12, (0.9375, 1.0))


def test_rr_intervals_round_to_the_1024th_second() -> None:
    # 0.8 s is 819.2 ticks; the sensor's timer would have counted 819.
    assert parse("2A37", encode.heart_rate(75, rr_intervals=[0.8])).rr_intervals == (819 / 1024,)


def test_unknown_date_time_round_trips() -> None:
    unknown = UnknownDateTime(0, 0, 0, 12, 0, 0)
    payload = encode.temperature("36.6", timestamp=unknown)
    assert payload == bytes.fromhex("02 6e0100ff 0000 00 00 0c 00 00")
    assert parse("2A1C", payload).timestamp == unknown


def test_special_values_encode() -> None:
    payload = encode.blood_pressure(NoValue("NaN"), float("nan"), "NaN", pulse_rate=NoValue("NRes"))
    assert payload == bytes.fromhex("04 ff07 ff07 ff07 0008")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: encode.blood_pressure(120, 80, 93, unit="mmhg"), ValueError, "unit must be"),
        (
            lambda: encode.blood_pressure(120, 80, 93, user_id=256),
            ValueError,
            "user_id: 256 does not fit uint8",
        ),
        (
            lambda: encode.blood_pressure(120, 80, 93, measurement_status=0x01),
            TypeError,
            "BloodPressureMeasurementStatus",
        ),
        (lambda: encode.blood_pressure(120, 80, "93.25"), ValueError, "mean_arterial_pressure"),
        (lambda: encode.temperature(36.6, unit="K"), ValueError, "unit must be"),
        (
            lambda: encode.temperature(36.6, timestamp=datetime(2024, 1, 1, tzinfo=UTC)),
            ValueError,
            "no time zone",
        ),
        (
            lambda: encode.temperature(36.6, timestamp=datetime(2024, 1, 1, 0, 0, 0, 500)),
            ValueError,
            "whole seconds",
        ),
        (
            lambda: encode.temperature(36.6, timestamp=datetime(1500, 1, 1)),
            ValueError,
            "year must be 1582-9999",
        ),
        (
            lambda: encode.temperature(36.6, timestamp=UnknownDateTime(0, 13, 0, 0, 0, 0)),
            ValueError,
            "month 13",
        ),
        (lambda: encode.temperature(36.6, timestamp="2024-01-01"), TypeError, "datetime or UnknownDateTime"),
        (lambda: encode.temperature(36.6, temperature_type=256), ValueError, "does not fit uint8"),
        (lambda: encode.weight("70.123"), ValueError, "not a multiple of the 0.005 resolution"),
        (lambda: encode.weight("70.12", unit="lb", bmi="22.15", height=70), ValueError, "bmi 22.15"),
        (lambda: encode.weight(70, bmi="22.1"), ValueError, "give both or neither"),
        (lambda: encode.weight(-1), ValueError, "outside 0..327.670"),
        (lambda: encode.weight("327.675"), ValueError, "outside"),  # 0xFFFF is the special value
        (lambda: encode.weight(70, unit="st"), ValueError, "unit must be"),
        (lambda: encode.weight(NoValue("NaN")), ValueError, "the only special weight"),
        (lambda: encode.weight(MEASUREMENT_UNSUCCESSFUL, bmi=20, height=2), ValueError, "forbids BMI"),
        (lambda: encode.weight(float("inf")), ValueError, "finite"),
        (lambda: encode.heart_rate(-1), ValueError, "heart rate"),
        (lambda: encode.heart_rate(70.5), ValueError, "heart rate"),  # type: ignore[arg-type]
        (lambda: encode.heart_rate(70, energy_expended=70000), ValueError, "energy expended"),
        (lambda: encode.heart_rate(70, rr_intervals=[64.0]), ValueError, "RR interval"),
        (lambda: encode.battery_level(101), ValueError, "battery level"),
        (lambda: encode.battery_level(True), ValueError, "battery level"),
        (lambda: encode.plx_continuous(97, 60, spo2_fast=97), ValueError, "give both"),
        (lambda: encode.plx_spot_check(97, 60, measurement_status=0x10000), ValueError, "uint16"),
        (lambda: encode.plx_spot_check(97, 60, device_and_sensor_status=1 << 24), ValueError, "uint24"),
        (
            lambda: encode.plx_spot_check("9.75", 60, pulse_amplitude_index=NoValue("oops")),
            ValueError,
            "oops",
        ),
        (lambda: encode.measurement(object()), TypeError, "not a device_profiles measurement"),
    ],
)
def test_encoders_refuse(call: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call()  # type: ignore[operator]
