"""Feature characteristics: every defined bit by name, resolution codes, optional support fields."""

from __future__ import annotations

from decimal import Decimal

import pytest

from device_profiles import (
    BloodPressureFeature,
    BodyCompositionFeature,
    DecodeError,
    GlucoseFeature,
    HeightResolution,
    Normalised,
    PlxDeviceAndSensorStatus,
    PlxFeatures,
    PlxMeasurementStatus,
    WeightResolution,
    WeightScaleFeature,
    encode,
    normalise,
    parse,
)

BP_BITS = [
    "body_movement_detection",
    "cuff_fit_detection",
    "irregular_pulse_detection",
    "pulse_rate_range_detection",
    "measurement_position_detection",
    "multiple_bonds",
]
GLUCOSE_BITS = [
    "low_battery_detection",
    "sensor_malfunction_detection",
    "sensor_sample_size",
    "sensor_strip_insertion_error_detection",
    "sensor_strip_type_error_detection",
    "sensor_result_high_low_detection",
    "sensor_temperature_high_low_detection",
    "sensor_read_interrupt_detection",
    "general_device_fault",
    "time_fault",
    "multiple_bonds",
]


@pytest.mark.parametrize(("bit", "name"), list(enumerate(BP_BITS)))
def test_blood_pressure_feature_bits(bit: int, name: str) -> None:
    payload = (1 << bit).to_bytes(2, "little")
    assert parse("2A49", payload) == BloodPressureFeature(**{name: True})
    assert encode.measurement(parse("2A49", payload)) == payload


@pytest.mark.parametrize(("bit", "name"), list(enumerate(GLUCOSE_BITS)))
def test_glucose_feature_bits(bit: int, name: str) -> None:
    payload = (1 << bit).to_bytes(2, "little")
    assert parse("2A51", payload) == GlucoseFeature(**{name: True})
    assert encode.measurement(parse("2A51", payload)) == payload


def test_rfu_feature_bits_are_ignored() -> None:
    assert parse("2A49", bytes.fromhex("ffff")) == BloodPressureFeature(**dict.fromkeys(BP_BITS, True))
    assert parse("2A51", bytes.fromhex("fff8")) == GlucoseFeature(
        multiple_bonds=False, **dict.fromkeys(GLUCOSE_BITS[:8], True)
    )
    assert encode.measurement(parse("2A49", bytes.fromhex("ffff"))) == bytes.fromhex("3f00")


def test_weight_scale_feature() -> None:
    # bits 0-2 set; weight resolution 7 (bits 3-6) = 0x38; height resolution 2 (bits 7-9) = 0x100
    decoded = parse("2A9E", bytes.fromhex("3f010000"))
    assert decoded == WeightScaleFeature(
        timestamp=True,
        multiple_users=True,
        bmi=True,
        weight_resolution=WeightResolution.KG_0_005_OR_LB_0_01,
        height_resolution=HeightResolution.M_0_005_OR_IN_0_5,
    )
    assert encode.measurement(decoded) == bytes.fromhex("3f010000")
    assert parse("2A9E", bytes.fromhex("000000ff")) == WeightScaleFeature()  # bits 10-31 RFU


@pytest.mark.parametrize(
    ("code", "kg", "lb"),
    [
        (0, None, None),
        (1, "0.5", "1"),
        (2, "0.2", "0.5"),
        (3, "0.1", "0.2"),
        (4, "0.05", "0.1"),
        (5, "0.02", "0.05"),
        (6, "0.01", "0.02"),
        (7, "0.005", "0.01"),
    ],
)
def test_weight_resolution_codes(code: int, kg: str | None, lb: str | None) -> None:
    decoded = parse("2A9E", (code << 3).to_bytes(4, "little"))
    resolution = decoded.weight_resolution
    assert isinstance(resolution, WeightResolution)
    assert (resolution.kg, resolution.lb) == (kg and Decimal(kg), lb and Decimal(lb))


@pytest.mark.parametrize(
    ("code", "m", "inch"), [(0, None, None), (1, "0.01", "1"), (2, "0.005", "0.5"), (3, "0.001", "0.1")]
)
def test_height_resolution_codes(code: int, m: str | None, inch: str | None) -> None:
    resolution = parse("2A9E", (code << 7).to_bytes(4, "little")).height_resolution
    assert isinstance(resolution, HeightResolution)
    assert (resolution.m, resolution.inch) == (m and Decimal(m), inch and Decimal(inch))


def test_reserved_resolution_codes_stay_ints() -> None:
    decoded = parse("2A9E", ((15 << 3) | (7 << 7)).to_bytes(4, "little"))
    assert (decoded.weight_resolution, decoded.height_resolution) == (15, 7)
    assert type(decoded.weight_resolution) is int
    assert encode.measurement(decoded) == ((15 << 3) | (7 << 7)).to_bytes(4, "little")


def test_body_composition_feature() -> None:
    # timestamp (bit 0), weight (bit 9), mass resolution 7 (bits 11-14), height resolution 1 (bits 15-17)
    decoded = parse("2A9B", bytes.fromhex("01ba0000"))
    assert decoded == BodyCompositionFeature(
        timestamp=True,
        weight=True,
        mass_resolution=WeightResolution.KG_0_005_OR_LB_0_01,
        height_resolution=HeightResolution.M_0_01_OR_IN_1,
    )
    everything = parse("2A9B", bytes.fromhex("ffff0100"))  # bits 0-16: mass code 15 (reserved), height 3
    assert everything == BodyCompositionFeature(
        *[True] * 11, mass_resolution=15, height_resolution=HeightResolution.M_0_001_OR_IN_0_1
    )
    assert encode.measurement(everything) == bytes.fromhex("ffff0100")


@pytest.mark.parametrize(
    ("hex_payload", "expected"),
    [
        ("c000", PlxFeatures(pulse_amplitude_index=True, multiple_bonds=True)),
        (
            "3c00",
            PlxFeatures(
                spot_check_measurement_storage=True,
                spot_check_timestamp=True,
                spo2pr_fast=True,
                spo2pr_slow=True,
            ),
        ),
        ("0100 e0ff", PlxFeatures(measurement_status_support=PlxMeasurementStatus(0xFFE0))),
        ("0100 2000", PlxFeatures(measurement_status_support=PlxMeasurementStatus.MEASUREMENT_ONGOING)),
        ("0200 ffff00", PlxFeatures(device_and_sensor_status_support=PlxDeviceAndSensorStatus(0xFFFF))),
        (
            "0300 0080 000800",
            PlxFeatures(
                measurement_status_support=PlxMeasurementStatus.INVALID_MEASUREMENT_DETECTED,
                device_and_sensor_status_support=PlxDeviceAndSensorStatus.SENSOR_UNCONNECTED_TO_USER,
            ),
        ),
    ],
)
def test_plx_features(hex_payload: str, expected: PlxFeatures) -> None:
    payload = bytes.fromhex(hex_payload)
    assert parse("2A60", payload) == expected
    assert encode.measurement(expected) == payload


def test_plx_features_support_fields_drop_rfu_bits() -> None:
    decoded = parse("2A60", bytes.fromhex("0300 ffff ffffff"))
    assert decoded.measurement_status_support == PlxMeasurementStatus(0xFFE0)  # bits 0-4 RFU
    assert decoded.device_and_sensor_status_support == PlxDeviceAndSensorStatus(0xFFFF)  # bits 16-23 RFU


@pytest.mark.parametrize(
    ("uuid", "hex_payload"),
    [
        ("2A49", ""),
        ("2A49", "00"),
        ("2A49", "000000"),
        ("2A51", "0000 00"),
        ("2A9E", "000000"),
        ("2A9E", "0000000000"),
        ("2A9B", "00"),
        ("2A60", "01"),
        ("2A60", "0100 e0"),  # support field announced, cut short
        ("2A60", "0000 00"),
    ],
)
def test_corrupt_features(uuid: str, hex_payload: str) -> None:
    with pytest.raises(DecodeError, match="Feature"):
        parse(uuid, bytes.fromhex(hex_payload))


def test_features_are_not_observations() -> None:
    assert normalise(parse("2A9E", bytes.fromhex("3f010000"))) == Normalised(None)
    assert normalise(parse("2A60", bytes.fromhex("c000"))) == Normalised(None)


def test_feature_encoder_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="not a feature"):
        encode.feature(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="4-bit"):
        encode.feature(WeightScaleFeature(weight_resolution=16))


# --- every combination of defined bits ---------------------------------------------------------


def test_every_blood_pressure_and_glucose_feature_combination() -> None:
    for uuid, cls, names in (("2A49", BloodPressureFeature, BP_BITS), ("2A51", GlucoseFeature, GLUCOSE_BITS)):
        for bits in range(1 << len(names)):
            payload = bits.to_bytes(2, "little")
            expected = cls(**{name: bool(bits >> i & 1) for i, name in enumerate(names)})
            assert parse(uuid, payload) == expected
            assert encode.measurement(expected) == payload


def test_every_weight_scale_feature_combination() -> None:
    for flags in range(8):
        for weight_code in range(16):
            for height_code in range(8):
                bits = flags | weight_code << 3 | height_code << 7
                decoded = parse("2A9E", bits.to_bytes(4, "little"))
                assert (decoded.timestamp, decoded.multiple_users, decoded.bmi) == (
                    bool(flags & 1),
                    bool(flags & 2),
                    bool(flags & 4),
                )
                assert (decoded.weight_resolution, decoded.height_resolution) == (weight_code, height_code)
                assert encode.measurement(decoded) == bits.to_bytes(4, "little")


BODY_COMPOSITION_FEATURE_BITS = [
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
]


def test_every_body_composition_feature_flag_combination() -> None:
    for flags in range(1 << 11):
        bits = flags | 7 << 11 | 3 << 15  # resolutions: 0.005 kg, 0.001 m
        decoded = parse("2A9B", bits.to_bytes(4, "little"))
        assert decoded == BodyCompositionFeature(
            **{name: bool(flags >> i & 1) for i, name in enumerate(BODY_COMPOSITION_FEATURE_BITS)},
            mass_resolution=WeightResolution.KG_0_005_OR_LB_0_01,
            height_resolution=HeightResolution.M_0_001_OR_IN_0_1,
        )
        assert encode.measurement(decoded) == bits.to_bytes(4, "little")


def test_every_plx_features_flag_combination() -> None:
    names = ["spot_check_measurement_storage", "spot_check_timestamp", "spo2pr_fast", "spo2pr_slow",
             "pulse_amplitude_index", "multiple_bonds"]  # fmt: skip
    for flags in range(256):
        hex_payload = flags.to_bytes(2, "little").hex()
        expected: dict[str, object] = {name: bool(flags >> (i + 2) & 1) for i, name in enumerate(names)}
        if flags & 0x01:
            hex_payload += "4000"  # Measurement Status Support: early estimated data
            expected["measurement_status_support"] = PlxMeasurementStatus.EARLY_ESTIMATED_DATA
        if flags & 0x02:
            hex_payload += "200000"  # Device and Sensor Status Support: low perfusion
            expected["device_and_sensor_status_support"] = PlxDeviceAndSensorStatus.LOW_PERFUSION_DETECTED
        payload = bytes.fromhex(hex_payload)
        assert parse("2A60", payload) == PlxFeatures(**expected)  # type: ignore[arg-type]
        assert encode.measurement(PlxFeatures(**expected)) == payload  # type: ignore[arg-type]
