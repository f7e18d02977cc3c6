"""Property tests: random bytes never escape as anything but a dataclass or DecodeError, and
random valid values survive encode -> parse unchanged.

Seeds: hypothesis runs derandomized (the seed is derived from each test's name and
parameters) with no example database, so the same examples run on every machine and a
failure prints its minimal example together with the @reproduce_failure blob.

Counts per characteristic, every registered decoder (21), every run:
* test_random_payloads: 1 000 examples x 10 payloads = 10 000 blind payloads of 0-40 bytes,
  which covers truncated and over-long payloads of every characteristic (the longest,
  Body Composition Measurement, is 30 bytes);
* test_random_field_values: 200 x 10 = 2 000 payloads behind an all-fields Flags value,
  so random bytes reach every field decoder (dates, special values, status bits);
* test_encode_then_parse_round_trips: 200 random valid values.
Batches of 10 payloads per example keep hypothesis' per-example overhead out of the
runtime: 10 000 single-payload examples per characteristic would take ~90 s on their own.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device_profiles import (
    BCI_INVALID,
    DECODERS,
    FAT_MEASUREMENT_UNSUCCESSFUL,
    MEASUREMENT_UNSUCCESSFUL,
    AdjustReason,
    BatteryLevel,
    BciOximeterNotification,
    BciPacket,
    BloodPressureFeature,
    BloodPressureMeasurement,
    BloodPressureMeasurementStatus,
    BodyCompositionFeature,
    BodyCompositionMeasurement,
    CurrentTime,
    DateTimeCharacteristic,
    DayOfWeek,
    DecodeError,
    GlucoseFeature,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    GlucoseSampleLocation,
    GlucoseSensorStatus,
    GlucoseType,
    HeartRateMeasurement,
    HeightResolution,
    IntermediateCuffPressure,
    IntermediateTemperature,
    Medfloat,
    NoValue,
    PlxContinuousMeasurement,
    PlxDeviceAndSensorStatus,
    PlxFeatures,
    PlxMeasurementStatus,
    PlxSpotCheckMeasurement,
    PulseRateRange,
    RacpOpCode,
    RacpResponse,
    RacpResponseCode,
    TemperatureMeasurement,
    TemperatureType,
    UnknownDateTime,
    WeightMeasurement,
    WeightResolution,
    WeightScaleFeature,
    encode,
    normalise,
    parse,
    uuids,
)
from device_profiles.glucose_context import CarbohydrateId, GlucoseHealth, GlucoseTester, Meal, MedicationId
from device_profiles.registry import DECODERS_BY_NAME
from tests.test_device_profiles_catalogue import VALID_PAYLOADS

BATCH = 10
FUZZ = settings(
    max_examples=1000,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FIELD_FUZZ = settings(FUZZ, max_examples=200)
ROUND_TRIP = settings(max_examples=200, derandomize=True, database=None, deadline=None)

RESULT_TYPES = {uuid: decoder.result for uuid, decoder in DECODERS.items()}
BCI = uuids.BERRYMED_BCI_DATA


def _check_parse(uuid: str, payload: bytes) -> Any:
    """parse() gives the characteristic's dataclass or a DecodeError naming it; nothing else.

    A decoded value re-encodes to a payload that decodes to the same thing, and normalises
    without raising (the gateway normalises everything parse returns).
    """
    try:
        decoded = parse(uuid, payload)
    except DecodeError as exc:
        assert uuids.NAMES[uuid] in str(exc)
        return None
    assert type(decoded) is RESULT_TYPES[uuid]
    assert parse(uuid, encode.measurement(decoded)) == decoded
    normalised = normalise(decoded)
    for observation in normalised.observations:
        assert len(observation.quality) <= 16
    return decoded


@pytest.mark.parametrize("uuid", sorted(DECODERS))
@FUZZ
@given(payloads=st.lists(st.binary(max_size=40), min_size=BATCH, max_size=BATCH))
def test_random_payloads(uuid: str, payloads: list[bytes]) -> None:
    for payload in payloads:
        _check_parse(uuid, payload)


# Flags of a payload with every optional field, and that payload's length, so random field
# bytes reach every decoder. Flags are the first byte(s) of the payload, little-endian.
ALL_FIELDS: dict[str, tuple[bytes, int]] = {
    "2A5E": (b"\x1f", 19),
    "2A5F": (b"\x1f", 20),
    "2A35": (b"\x1e", 19),
    "2A36": (b"\x1e", 19),
    "2A1C": (b"\x07", 13),
    "2A1E": (b"\x07", 13),
    "2A9D": (b"\x0f", 15),
    "2A9C": (b"\xfe\x1f", 30),
    "2A18": (b"\x1b", 17),
    "2A34": (b"\xff", 17),
    "2A37": (b"\x1f", 9),
    "2A19": (b"", 1),  # no flags: one random byte
    "2A08": (b"", 7),
    "2A2B": (b"", 10),
    "2A52": (b"\x06\x00", 4),  # a Response Code with random request op code and response code
    "2A49": (b"", 2),
    "2A60": (b"\xff\xff", 7),
    "2A9E": (b"", 4),
    "2A51": (b"", 2),
    "2A9B": (b"", 4),
    BCI: (b"", 20),  # four packets' worth of random bytes: mostly framing errors
}


def test_all_fields_table_covers_every_decoder() -> None:
    assert set(ALL_FIELDS) == set(DECODERS)


@pytest.mark.parametrize("uuid", sorted(DECODERS))
@FIELD_FUZZ
@given(bodies=st.lists(st.binary(min_size=30, max_size=30), min_size=BATCH, max_size=BATCH))
def test_random_field_values(uuid: str, bodies: list[bytes]) -> None:
    flags, length = ALL_FIELDS[uuid]
    for body in bodies:
        payload = (flags + body)[:length]
        decoded = _check_parse(uuid, payload)
        if uuid in ("2A5F", "2A37", "2A49", "2A51", "2A9E", "2A9B", "2A60"):
            # No dates, no reserved layouts: every body decodes.
            assert decoded is not None


@pytest.mark.parametrize("decoder", sorted(VALID_PAYLOADS))
def test_every_prefix_and_extension_is_refused(decoder: str) -> None:
    # Deliberate length policy: a payload is exactly as long as its Flags say (a BCI
    # notification a whole number of packets, a Heart Rate RR list pairs of bytes).
    uuid = DECODERS_BY_NAME[decoder].uuid
    valid = VALID_PAYLOADS[decoder]
    assert type(parse(uuid, valid)) is RESULT_TYPES[uuid]
    for broken in [valid[:cut] for cut in range(len(valid))] + [valid + b"\x00" * n for n in (1, 2, 3)]:
        if decoder == "heart_rate" and len(broken) > len(valid) and (len(broken) - len(valid)) % 2 == 0:
            continue  # two more bytes would be an RR interval, but its flag is clear: checked below
        with pytest.raises(DecodeError, match=re.escape(uuids.NAMES[uuid])):
            parse(uuid, broken)
    if decoder == "heart_rate":
        with pytest.raises(DecodeError, match="trailing"):
            parse(uuid, valid + b"\x00\x00")


def test_all_fields_lengths_are_right() -> None:
    for uuid, (flags, length) in ALL_FIELDS.items():
        if uuid in ("2A19", BCI, "2A52"):
            continue
        if flags:
            assert DECODERS[uuid].decode(flags + bytes(length - len(flags))) is not None
        with pytest.raises(DecodeError, match=r"truncated|whole number|expected"):
            parse(uuid, flags + bytes(length - len(flags) - 1))
        with pytest.raises(DecodeError, match=r"trailing|whole number|expected"):
            parse(uuid, flags + bytes(length - len(flags) + 1))


# --- random valid values ---------------------------------------------------------------------

_SPECIAL_REASONS = ["NaN", "NRes", "+INF", "-INF", "reserved"]
_SFLOAT_SPECIAL = {2047, 2046, -2048, -2047, -2046}
_FLOAT_SPECIAL = {8388607, 8388606, -8388608, -8388607, -8388606}

specials = st.sampled_from([NoValue(r) for r in _SPECIAL_REASONS])
sfloats = st.one_of(
    st.builds(Medfloat, st.integers(-2048, 2047), st.integers(-8, 7)).filter(
        lambda m: m.exponent != 0 or m.mantissa not in _SFLOAT_SPECIAL
    ),
    specials,
)
floats32 = st.one_of(
    st.builds(Medfloat, st.integers(-(2**23), 2**23 - 1), st.integers(-128, 127)).filter(
        lambda m: m.exponent != 0 or m.mantissa not in _FLOAT_SPECIAL
    ),
    specials,
)
unknown_dates = st.builds(
    UnknownDateTime,
    st.sampled_from([0, 1582, 2024, 9999]),
    st.integers(0, 12),
    st.integers(0, 31),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
).filter(lambda d: 0 in (d.year, d.month, d.day))
known_dates = st.datetimes(min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)).map(
    lambda d: d.replace(microsecond=0)
)
dates = unknown_dates | known_dates
timestamps = st.none() | dates
user_ids = st.none() | st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)
plx_status = st.none() | u16.map(lambda v: PlxMeasurementStatus(v & sum(PlxMeasurementStatus)))
plx_device = st.none() | st.integers(0, 0xFFFFFF).map(
    lambda v: PlxDeviceAndSensorStatus(v & sum(PlxDeviceAndSensorStatus))
)
bp_status = st.none() | st.builds(
    BloodPressureMeasurementStatus,
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.sampled_from(list(PulseRateRange)),
    st.booleans(),
)


def _codes(enum: Any, bits: int) -> st.SearchStrategy[Any]:
    """A code as the decoder gives it back: the enum member when defined, else the int."""
    table = {int(m): m for m in enum}
    return st.integers(0, (1 << bits) - 1).map(lambda c: table.get(c, c))


temperature_types = st.none() | _codes(TemperatureType, 8)


@st.composite
def plx_continuous(draw: st.DrawFn) -> PlxContinuousMeasurement:
    fast = draw(st.none() | st.tuples(sfloats, sfloats))
    slow = draw(st.none() | st.tuples(sfloats, sfloats))
    return PlxContinuousMeasurement(
        draw(sfloats),
        draw(sfloats),
        *(fast or (None, None)),
        *(slow or (None, None)),
        draw(plx_status),
        draw(plx_device),
        draw(st.none() | sfloats),
    )


@st.composite
def weights(draw: st.DrawFn) -> WeightMeasurement:
    unit = draw(st.sampled_from(["kg", "lb"]))
    raw = draw(u16)
    weight = MEASUREMENT_UNSUCCESSFUL if raw == 0xFFFF else raw * Decimal("0.005" if unit == "kg" else "0.01")
    bmi = height = None
    if raw != 0xFFFF and draw(st.booleans()):
        bmi = draw(u16) * Decimal("0.1")
        height = draw(u16) * Decimal("0.001" if unit == "kg" else "0.1")
    return WeightMeasurement(weight, unit, draw(timestamps), draw(user_ids), bmi, height)


@st.composite
def body_compositions(draw: st.DrawFn) -> BodyCompositionMeasurement:
    unit = draw(st.sampled_from(["kg", "lb"]))
    mass = Decimal("0.005" if unit == "kg" else "0.01")
    height = Decimal("0.001" if unit == "kg" else "0.1")
    fat = draw(u16)

    def scaled(step: Decimal) -> Decimal | None:
        return draw(st.none() | u16.map(lambda raw: raw * step))

    return BodyCompositionMeasurement(
        body_fat_percentage=FAT_MEASUREMENT_UNSUCCESSFUL if fat == 0xFFFF else fat * Decimal("0.1"),
        unit=unit,
        timestamp=draw(timestamps),
        user_id=draw(user_ids),
        basal_metabolism=draw(st.none() | u16),
        muscle_percentage=scaled(Decimal("0.1")),
        muscle_mass=scaled(mass),
        fat_free_mass=scaled(mass),
        soft_lean_mass=scaled(mass),
        body_water_mass=scaled(mass),
        impedance=scaled(Decimal("0.1")),
        weight=scaled(mass),
        height=scaled(height),
        multiple_packet=draw(st.booleans()),
    )


@st.composite
def glucose_measurements(draw: st.DrawFn) -> GlucoseMeasurement:
    has_concentration = draw(st.booleans())
    return GlucoseMeasurement(
        sequence_number=draw(u16),
        base_time=draw(dates),
        time_offset=draw(st.none() | st.integers(-0x8000, 0x7FFF)),
        concentration=draw(sfloats) if has_concentration else None,
        unit=draw(st.sampled_from(["kg/L", "mol/L"])),
        sample_type=draw(_codes(GlucoseType, 4)) if has_concentration else None,
        sample_location=draw(_codes(GlucoseSampleLocation, 4)) if has_concentration else None,
        sensor_status=draw(st.none() | st.integers(0, 0xFFF).map(GlucoseSensorStatus.from_bits)),
        context_follows=draw(st.booleans()),
    )


@st.composite
def glucose_contexts(draw: st.DrawFn) -> GlucoseMeasurementContext:
    def pair(first: st.SearchStrategy[Any], second: st.SearchStrategy[Any]) -> tuple[Any, Any]:
        return draw(st.none().map(lambda _: (None, None)) | st.tuples(first, second))

    carbohydrate_id, carbohydrate = pair(_codes(CarbohydrateId, 8), sfloats)
    tester, health = pair(_codes(GlucoseTester, 4), _codes(GlucoseHealth, 4))
    duration, intensity = pair(u16, st.integers(0, 255))
    medication_id, medication = pair(_codes(MedicationId, 8), sfloats)
    return GlucoseMeasurementContext(
        sequence_number=draw(u16),
        extended_flags_present=draw(st.booleans()),
        carbohydrate_id=carbohydrate_id,
        carbohydrate=carbohydrate,
        meal=draw(st.none() | _codes(Meal, 8)),
        tester=tester,
        health=health,
        exercise_duration=duration,
        exercise_intensity=intensity,
        medication_id=medication_id,
        medication=medication,
        medication_unit=draw(st.sampled_from(["kg", "L"])),
        hba1c=draw(st.none() | sfloats),
    )


bci_packets = st.builds(
    BciPacket,
    spo2=st.integers(0, 126) | st.just(BCI_INVALID),
    pulse_rate=st.integers(0, 254) | st.just(BCI_INVALID),
    pleth=st.integers(0, 127),
    bargraph=st.integers(0, 15),
    signal_strength=st.integers(0, 15),
    no_signal=st.booleans(),
    probe_unplugged=st.booleans(),
    pulse_beep=st.booleans(),
    no_finger=st.booleans(),
    pulse_searching=st.booleans(),
)
racp_responses = st.one_of(
    st.builds(
        RacpResponse,
        st.just(RacpOpCode.RESPONSE_CODE),
        _codes(RacpOpCode, 8),
        _codes(RacpResponseCode, 8),
    ),
    st.builds(RacpResponse, st.just(RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE), number_of_records=u16),
)

MEASUREMENTS: dict[str, st.SearchStrategy[Any]] = {
    "2A5E": st.builds(
        PlxSpotCheckMeasurement,
        sfloats,
        sfloats,
        timestamps,
        plx_status,
        plx_device,
        st.none() | sfloats,
        st.booleans(),
    ),
    "2A5F": plx_continuous(),
    "2A35": st.builds(
        BloodPressureMeasurement,
        sfloats,
        sfloats,
        sfloats,
        st.sampled_from(["mmHg", "kPa"]),
        timestamps,
        st.none() | sfloats,
        user_ids,
        bp_status,
    ),
    "2A36": st.builds(
        IntermediateCuffPressure,
        sfloats,
        st.sampled_from(["mmHg", "kPa"]),
        timestamps,
        st.none() | sfloats,
        user_ids,
        bp_status,
    ),
    "2A1C": st.builds(
        TemperatureMeasurement, floats32, st.sampled_from(["C", "F"]), timestamps, temperature_types
    ),
    "2A1E": st.builds(
        IntermediateTemperature, floats32, st.sampled_from(["C", "F"]), timestamps, temperature_types
    ),
    "2A9D": weights(),
    "2A9C": body_compositions(),
    "2A18": glucose_measurements(),
    "2A34": glucose_contexts(),
    "2A37": st.builds(
        HeartRateMeasurement,
        u16,
        st.none() | st.booleans(),
        st.none() | u16,
        st.lists(u16.map(lambda t: t / 1024), max_size=9).map(tuple),
    ),
    "2A19": st.builds(BatteryLevel, st.integers(0, 100)),
    "2A08": st.builds(DateTimeCharacteristic, dates),
    "2A2B": st.builds(
        CurrentTime,
        dates,
        st.sampled_from(list(DayOfWeek)),
        st.integers(0, 255),
        st.integers(0, 15).map(AdjustReason),
    ),
    "2A52": racp_responses,
    "2A49": st.integers(0, 0x3F).map(BloodPressureFeature.from_bits),
    "2A51": st.integers(0, 0x7FF).map(GlucoseFeature.from_bits),
    "2A9E": st.builds(
        WeightScaleFeature,
        st.booleans(),
        st.booleans(),
        st.booleans(),
        _codes(WeightResolution, 4),
        _codes(HeightResolution, 3),
    ),
    "2A9B": st.builds(
        BodyCompositionFeature,
        *[st.booleans()] * 11,
        _codes(WeightResolution, 4),
        _codes(HeightResolution, 3),
    ),
    "2A60": st.builds(
        PlxFeatures,
        plx_status,
        plx_device,
        *[st.booleans()] * 6,
    ),
    BCI: st.lists(bci_packets, min_size=1, max_size=4).map(lambda ps: BciOximeterNotification(tuple(ps))),
}


def test_round_trip_table_covers_every_decoder() -> None:
    assert set(MEASUREMENTS) == set(DECODERS)


@pytest.mark.parametrize("uuid", sorted(MEASUREMENTS))
@ROUND_TRIP
@given(data=st.data())
def test_encode_then_parse_round_trips(uuid: str, data: st.DataObject) -> None:
    measurement = data.draw(MEASUREMENTS[uuid])
    payload = encode.measurement(measurement)
    assert parse(uuid, payload) == measurement
    assert encode.measurement(parse(uuid, payload)) == payload


@ROUND_TRIP
@given(value=st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-20, max_value=20))
def test_sfloat_keeps_decimals_exact(value: Decimal) -> None:
    from device_profiles.ieee11073 import unpack_sfloat

    decoded = unpack_sfloat(int.from_bytes(encode.sfloat(value), "little"))
    assert isinstance(decoded, Medfloat)
    assert decoded.to_decimal() == value


@ROUND_TRIP
@given(
    value=st.floats(allow_nan=False, allow_infinity=False, min_value=-1000, max_value=1000).map(
        lambda f: round(f, 3)
    )
)
def test_float32_keeps_floats_exact(value: float) -> None:
    from device_profiles.ieee11073 import unpack_float32

    decoded = unpack_float32(int.from_bytes(encode.float32(value), "little"))
    assert isinstance(decoded, Medfloat)
    assert float(decoded) == value
    assert decoded.to_decimal() == Decimal(repr(value))
