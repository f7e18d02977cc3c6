"""Glucose Measurement (0x2A18) and Glucose Measurement Context (0x2A34): byte fixtures for
every flag combination, written from the GSS field tables, and normalisation to mmol/L."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from core.contract import Observation
from core.vitals import Vital
from device_profiles import (
    QUALITY_FLAGS,
    CarbohydrateId,
    ClinicalObservation,
    DecodeError,
    GlucoseHealth,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    GlucoseSampleLocation,
    GlucoseSensorStatus,
    GlucoseTester,
    GlucoseType,
    Meal,
    Medfloat,
    MedicationId,
    Normalised,
    NoValue,
    RejectedValue,
    UnknownDateTime,
    encode,
    normalise,
    parse,
)
from tests.test_device_profiles_decode import flag_combinations

STOCKHOLM = ZoneInfo("Europe/Stockholm")
BASE = "0700 e807 03 01 08 1e 00"  # Sequence Number 7, Base Time 2024-03-01 08:30:00

# --- Glucose Measurement 0x2A18 ----------------------------------------------------------------

GLUCOSE = list(
    flag_combinations(
        GlucoseMeasurement,
        {"sequence_number": 7, "base_time": datetime(2024, 3, 1, 8, 30)},
        BASE,
        [
            (0x01, "e2ff", {"time_offset": -30}),  # sint16 -30 minutes
            (
                0x02,
                "63b0 11",  # SFLOAT 0xB063 = 99 x 10^-5 kg/L (99 mg/dL); type 1 low nibble, location 1 high
                {
                    "concentration": Medfloat(99, -5),
                    "sample_type": GlucoseType.CAPILLARY_WHOLE_BLOOD,
                    "sample_location": GlucoseSampleLocation.FINGER,
                },
            ),
            (0x04, "", {"unit": "mol/L"}),
            (
                0x08,
                "2100",
                {"sensor_status": GlucoseSensorStatus(device_battery_low=True, result_too_high=True)},
            ),
            (0x10, "", {"context_follows": True}),
        ],
    )
)


@pytest.mark.parametrize(("payload", "expected"), GLUCOSE)
def test_glucose(payload: bytes, expected: GlucoseMeasurement) -> None:
    assert parse("2A18", payload) == expected
    assert encode.measurement(expected) == payload


def test_glucose_fixture_count() -> None:
    assert len(GLUCOSE) == 2**5


@pytest.mark.parametrize(
    ("nibbles", "sample_type", "sample_location"),
    [
        (0x12, GlucoseType.CAPILLARY_PLASMA, GlucoseSampleLocation.FINGER),
        (0x29, GlucoseType.INTERSTITIAL_FLUID, GlucoseSampleLocation.ALTERNATE_SITE_TEST),
        (0x3A, GlucoseType.CONTROL_SOLUTION, GlucoseSampleLocation.EARLOBE),
        (0x48, GlucoseType.UNDETERMINED_PLASMA, GlucoseSampleLocation.CONTROL_SOLUTION),
        (0xF7, GlucoseType.UNDETERMINED_WHOLE_BLOOD, GlucoseSampleLocation.NOT_AVAILABLE),
        (0x00, 0, 0),  # reserved codes are kept as plain ints
        (0x5B, 11, 5),
        (0xEF, 15, 14),
    ],
)
def test_glucose_type_and_location_nibbles(
    nibbles: int, sample_type: object, sample_location: object
) -> None:
    payload = bytes.fromhex(f"02 {BASE} 63b0") + bytes([nibbles])
    decoded = parse("2A18", payload)
    assert (decoded.sample_type, decoded.sample_location) == (sample_type, sample_location)
    assert type(decoded.sample_type) is type(sample_type)
    assert encode.measurement(decoded) == payload


def test_each_sensor_status_bit_has_its_name() -> None:
    names = [
        "device_battery_low",
        "sensor_malfunction",
        "sample_size_insufficient",
        "strip_insertion_error",
        "strip_type_incorrect",
        "result_too_high",
        "result_too_low",
        "sensor_temperature_too_high",
        "sensor_temperature_too_low",
        "strip_pulled_too_soon",
        "general_device_fault",
        "time_fault",
    ]
    for bit, name in enumerate(names):
        payload = bytes.fromhex(f"08 {BASE}") + (1 << bit).to_bytes(2, "little")
        assert parse("2A18", payload).sensor_status == GlucoseSensorStatus(**{name: True})
    # Bits 12-15 are RFU: ignored on receipt, sent as 0.
    rfu = parse("2A18", bytes.fromhex(f"08 {BASE} 00f0"))
    assert rfu.sensor_status == GlucoseSensorStatus()
    assert encode.measurement(rfu) == bytes.fromhex(f"08 {BASE} 0000")


def test_glucose_rfu_flag_bits_are_ignored() -> None:
    assert parse("2A18", bytes.fromhex(f"e0 {BASE}")) == parse("2A18", bytes.fromhex(f"00 {BASE}"))


def test_user_facing_time_is_base_plus_offset() -> None:
    decoded = parse("2A18", bytes.fromhex(f"01 {BASE} 5a00"))  # +90 minutes
    assert decoded.user_facing_time == datetime(2024, 3, 1, 10, 0)
    unknown = parse("2A18", bytes.fromhex("01 0700 0000 00 00 08 1e 00 5a00"))
    assert unknown.base_time == UnknownDateTime(0, 0, 0, 8, 30, 0)
    assert unknown.user_facing_time == unknown.base_time  # no calendar to add minutes to


@pytest.mark.parametrize(
    "hex_payload",
    [
        "",
        "00",
        f"00 {BASE} 00",  # trailing byte
        "00 0700 e807 03 01 08 1e",  # base time cut short
        f"02 {BASE} 63b0",  # type-sample location missing
        "00 0700 e807 0d 01 08 1e 00",  # month 13
    ],
)
def test_corrupt_glucose(hex_payload: str) -> None:
    with pytest.raises(DecodeError, match="Glucose Measurement"):
        parse("2A18", bytes.fromhex(hex_payload))


def test_glucose_encoder_refuses_half_fields() -> None:
    with pytest.raises(ValueError, match="give all or none"):
        encode.glucose(1, datetime(2024, 1, 1), concentration="0.00099")
    with pytest.raises(ValueError, match="4-bit"):
        encode.glucose(1, datetime(2024, 1, 1), concentration="0.00099", sample_type=16, sample_location=1)
    with pytest.raises(ValueError, match="unit"):
        encode.glucose(1, datetime(2024, 1, 1), unit="mg/dL")  # type: ignore[arg-type]


# --- Glucose Measurement Context 0x2A34 --------------------------------------------------------

CONTEXT = list(
    flag_combinations(
        GlucoseMeasurementContext,
        {"sequence_number": 7},
        "0700",
        [
            # Extended Flags sits right after the Sequence Number, so it is listed first.
            (0x80, "00", {"extended_flags_present": True}),
            (0x01, "01 05e0", {"carbohydrate_id": CarbohydrateId.BREAKFAST, "carbohydrate": Medfloat(5, -2)}),
            (0x02, "01", {"meal": Meal.PREPRANDIAL}),
            (0x04, "51", {"tester": GlucoseTester.SELF, "health": GlucoseHealth.NO_HEALTH_ISSUES}),
            (0x08, "5802 32", {"exercise_duration": 600, "exercise_intensity": 50}),
            (
                0x10,
                "01 02a0",  # SFLOAT 0xA002 = 2 x 10^-6 (kg, or L with bit 5)
                {"medication_id": MedicationId.RAPID_ACTING_INSULIN, "medication": Medfloat(2, -6)},
            ),
            (0x20, "", {"medication_unit": "L"}),
            (0x40, "3df0", {"hba1c": Medfloat(61, -1)}),
        ],
    )
)


@pytest.mark.parametrize(("payload", "expected"), CONTEXT)
def test_glucose_context(payload: bytes, expected: GlucoseMeasurementContext) -> None:
    assert parse("2A34", payload) == expected
    assert encode.measurement(expected) == payload


def test_context_fixture_count() -> None:
    assert len(CONTEXT) == 2**8


def test_context_reserved_codes_and_extended_flags() -> None:
    payload = bytes.fromhex(
        "87 0700 ff 08 05e0 06 e6"
    )  # ext flags all RFU, carb id 8, meal 6, tester 6/health 14
    decoded = parse("2A34", payload)
    assert decoded == GlucoseMeasurementContext(
        7, True, carbohydrate_id=8, carbohydrate=Medfloat(5, -2), meal=6, tester=6, health=14
    )
    assert encode.measurement(decoded) == bytes.fromhex("87 0700 00 08 05e0 06 e6")  # RFU bits sent as 0
    not_available = parse("2A34", bytes.fromhex("04 0700 ff"))
    assert (not_available.tester, not_available.health) == (
        GlucoseTester.NOT_AVAILABLE,
        GlucoseHealth.NOT_AVAILABLE,
    )


def test_context_encoder_refuses_half_pairs() -> None:
    with pytest.raises(ValueError, match="carbohydrate_id and carbohydrate"):
        encode.glucose_context(1, carbohydrate_id=1)
    with pytest.raises(ValueError, match="tester and health"):
        encode.glucose_context(1, tester=1)
    with pytest.raises(ValueError, match="exercise_duration and exercise_intensity"):
        encode.glucose_context(1, exercise_intensity=20)
    with pytest.raises(ValueError, match="medication_id and medication"):
        encode.glucose_context(1, medication="0.000001")


# --- normalisation -----------------------------------------------------------------------------


def glucose(concentration: str, *, unit: str = "kg/L", **kwargs: object) -> Normalised:
    payload = encode.glucose(
        7,
        kwargs.pop("base_time", datetime(2024, 3, 1, 8, 30)),  # type: ignore[arg-type]
        concentration=concentration,
        unit=unit,  # type: ignore[arg-type]
        sample_type=kwargs.pop("sample_type", GlucoseType.CAPILLARY_PLASMA),  # type: ignore[arg-type]
        sample_location=kwargs.pop("sample_location", GlucoseSampleLocation.FINGER),  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )
    return normalise(parse("2A18", payload))


def test_mol_per_litre_is_a_decimal_shift() -> None:
    result = glucose("0.0055", unit="mol/L")  # 55 x 10^-4 mol/L
    assert result.observations == (ClinicalObservation(Vital.GLUCOSE, 5.5, "mmol/L"),)
    assert glucose("0.01234", unit="mol/L").observations[0].value == 12.34  # kept exactly, not rounded


@pytest.mark.parametrize(
    ("kg_per_litre", "mmol_per_litre"),
    [
        ("0.00099", 5.50),  # 99 mg/dL / 18.016 = 5.4951
        ("0.0018", 9.99),  # 180 mg/dL = 9.9911
        ("0.00072", 4.00),  # 72 mg/dL = 3.9964
        ("0.004", 22.20),  # 400 mg/dL = 22.2025
        ("0.00036", 2.00),  # 36 mg/dL = 1.9982
    ],
)
def test_kg_per_litre_via_mg_per_dl(kg_per_litre: str, mmol_per_litre: float) -> None:
    # mg/dL = kg/L x 100 000; mmol/L = mg/dL / 18.016, to 0.01 mmol/L half up.
    assert glucose(kg_per_litre).observations[0].value == mmol_per_litre


def test_glucose_time_is_user_facing_time_in_the_device_zone() -> None:
    result = glucose("0.00099", time_offset=-30)
    assert result.effective_time == datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    stockholm = normalise(
        parse("2A18", encode.glucose(7, datetime(2024, 3, 1, 8, 30), time_offset=-30)), device_tz=STOCKHOLM
    )
    assert stockholm.effective_time == datetime(2024, 3, 1, 7, 0, tzinfo=UTC)


def test_every_status_bit_becomes_a_contract_flag() -> None:
    everything = GlucoseSensorStatus.from_bits(0x0FFF)
    result = glucose("0.00099", base_time=UnknownDateTime(0, 0, 0, 8, 30, 0), sensor_status=everything)
    (observation,) = result.observations
    assert observation.quality == (
        "device_clock_not_set",
        "sensor_malfunction",
        "device_battery_low",
        "sample_size_insufficient",
        "strip_insertion_error",
        "strip_type_incorrect",
        "result_above_range",
        "result_below_range",
        "sensor_temperature_high",
        "sensor_temperature_low",
        "strip_pulled_too_soon",
        "device_fault",
        "device_time_fault",
    )
    assert set(observation.quality) <= set(QUALITY_FLAGS)
    # The wire contract takes it: at most 16 flags, each ^[a-z][a-z0-9_]{0,40}$.
    Observation(
        vital=observation.vital, value=observation.value, unit=observation.unit, quality=observation.quality
    )


def test_hi_reading_is_kept_and_flagged() -> None:
    result = glucose(
        "0.006", sensor_status=GlucoseSensorStatus(result_too_high=True)
    )  # meter clamps at 600 mg/dL
    assert result.observations == (
        ClinicalObservation(Vital.GLUCOSE, 33.3, "mmol/L", ("result_above_range",)),
    )


@pytest.mark.parametrize(
    ("sample_type", "sample_location"),
    [
        (GlucoseType.CONTROL_SOLUTION, GlucoseSampleLocation.NOT_AVAILABLE),
        (GlucoseType.CAPILLARY_WHOLE_BLOOD, GlucoseSampleLocation.CONTROL_SOLUTION),
    ],
)
def test_control_solution_is_not_the_patient(
    sample_type: GlucoseType, sample_location: GlucoseSampleLocation
) -> None:
    result = glucose("0.00099", sample_type=sample_type, sample_location=sample_location)
    assert result.observations == ()
    assert result.rejected == (
        RejectedValue(
            Vital.GLUCOSE, 5.5, "mmol/L", "glucose 5.5 mmol/L: control solution test, not a patient sample"
        ),
    )


def test_record_without_concentration_is_reported_not_dropped() -> None:
    payload = encode.glucose(
        7, datetime(2024, 3, 1, 8, 30), sensor_status=GlucoseSensorStatus(strip_insertion_error=True)
    )
    result = normalise(parse("2A18", payload))
    assert result == Normalised(
        datetime(2024, 3, 1, 8, 30, tzinfo=UTC),
        (),
        (
            RejectedValue(
                Vital.GLUCOSE,
                None,
                "mmol/L",
                "glucose: the meter sent a record without a concentration (strip_insertion_error)",
            ),
        ),
    )


def test_implausible_and_special_concentrations_are_rejected() -> None:
    (implausible,) = glucose("0.1", unit="mol/L").rejected  # 100 mmol/L
    assert implausible.reason == "glucose 100 mmol/L outside plausible range 0.5-50"
    nan = normalise(
        GlucoseMeasurement(
            7, datetime(2024, 3, 1), concentration=NoValue("NaN"), sample_type=1, sample_location=1
        )
    )
    assert nan.rejected == (
        RejectedValue(Vital.GLUCOSE, None, "mmol/L", "glucose: device sent no value (NaN)"),
    )


def test_time_past_year_9999_is_unusable_not_a_crash() -> None:
    m = GlucoseMeasurement(
        7,
        datetime(9999, 12, 31, 23, 0),
        time_offset=0x7FFF,
        concentration=Medfloat(55, -4),
        unit="mol/L",
        sample_type=1,
        sample_location=1,
    )
    result = normalise(m)
    assert result.effective_time is None
    assert result.observations[0].quality == ("device_clock_not_set",)


def test_context_is_not_an_observation() -> None:
    assert normalise(parse("2A34", CONTEXT[-1].values[0])) == Normalised(None)
