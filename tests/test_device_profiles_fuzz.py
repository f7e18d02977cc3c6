"""Property tests: random bytes never escape as anything but a dataclass or DecodeError, and
random valid measurements survive encode -> parse unchanged.

Derandomized (a fixed seed derived from each test), no example database: the same
examples run on every machine, and a failure prints its minimal example.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device_profiles import (
    DECODERS,
    MEASUREMENT_UNSUCCESSFUL,
    BatteryLevel,
    BloodPressureMeasurement,
    BloodPressureMeasurementStatus,
    DecodeError,
    HeartRateMeasurement,
    IntermediateCuffPressure,
    IntermediateTemperature,
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
    uuids,
)

FUZZ = settings(
    max_examples=2000,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# Random bodies behind an all-fields Flags byte: every example reaches the field decoders,
# so fewer are needed than for blind payloads (which mostly fail the length check).
FIELD_FUZZ = settings(FUZZ, max_examples=1000)
ROUND_TRIP = settings(max_examples=400, derandomize=True, database=None, deadline=None)

RESULT_TYPES = {uuid: decoder.result for uuid, decoder in DECODERS.items()}


def _check_parse(uuid: str, payload: bytes) -> Any:
    """parse() gives the characteristic's dataclass or a DecodeError naming it; nothing else."""
    try:
        decoded = parse(uuid, payload)
    except DecodeError as exc:
        assert uuids.NAMES[uuid] in str(exc)
        return None
    assert type(decoded) is RESULT_TYPES[uuid]
    # Decoded values re-encode to a payload that decodes to the same thing.
    assert parse(uuid, encode.measurement(decoded)) == decoded
    return decoded


@pytest.mark.parametrize("uuid", sorted(DECODERS))
@FUZZ
@given(payload=st.binary(max_size=64))
def test_random_payloads(uuid: str, payload: bytes) -> None:
    _check_parse(uuid, payload)


# Flags of a payload with every optional field, so random field bytes reach every decoder:
# dates, special values, status bits. Lengths are those of the full payloads.
ALL_FIELDS = {
    "2A5E": (0x1F, 19),
    "2A5F": (0x1F, 20),
    "2A35": (0x1E, 19),
    "2A36": (0x1E, 19),
    "2A1C": (0x07, 13),
    "2A1E": (0x07, 13),
    "2A9D": (0x0F, 15),
    "2A37": (0x1F, 9),
    "2A19": (0x64, 1),
}


@pytest.mark.parametrize("uuid", sorted(DECODERS))
@FIELD_FUZZ
@given(body=st.binary(min_size=20, max_size=20))
def test_random_field_values(uuid: str, body: bytes) -> None:
    flags, length = ALL_FIELDS[uuid]
    payload = (bytes([flags]) + body)[:length]
    decoded = _check_parse(uuid, payload)
    if uuid in ("2A5F", "2A37"):  # no dates, no reserved values: every body decodes
        assert decoded is not None


def test_all_fields_lengths_are_right() -> None:
    for uuid, (flags, length) in ALL_FIELDS.items():
        if uuid != "2A19":
            with pytest.raises(DecodeError, match=r"truncated|whole number"):
                parse(uuid, bytes([flags]) + bytes(length - 2))
            with pytest.raises(DecodeError, match=r"trailing|whole number"):
                parse(uuid, bytes([flags]) + bytes(length))


# --- random valid measurements ---------------------------------------------------------------

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
timestamps = (
    st.none()
    | unknown_dates
    | st.datetimes(min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)).map(
        lambda d: d.replace(microsecond=0)
    )
)
user_ids = st.none() | st.integers(0, 255)
plx_status = st.none() | st.integers(0, 0xFFFF).map(
    lambda v: PlxMeasurementStatus(v & sum(PlxMeasurementStatus))
)
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
temperature_types = st.none() | st.integers(0, 255).map(lambda c: TemperatureType(c) if 1 <= c <= 9 else c)


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
    raw = draw(st.integers(0, 0xFFFF))
    weight = MEASUREMENT_UNSUCCESSFUL if raw == 0xFFFF else raw * Decimal("0.005" if unit == "kg" else "0.01")
    bmi = height = None
    if raw != 0xFFFF and draw(st.booleans()):
        bmi = draw(st.integers(0, 0xFFFF)) * Decimal("0.1")
        height = draw(st.integers(0, 0xFFFF)) * Decimal("0.001" if unit == "kg" else "0.1")
    return WeightMeasurement(weight, unit, draw(timestamps), draw(user_ids), bmi, height)


MEASUREMENTS = {
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
    "2A37": st.builds(
        HeartRateMeasurement,
        st.integers(0, 0xFFFF),
        st.none() | st.booleans(),
        st.none() | st.integers(0, 0xFFFF),
        st.lists(st.integers(0, 0xFFFF).map(lambda t: t / 1024), max_size=9).map(tuple),
    ),
    "2A19": st.builds(BatteryLevel, st.integers(0, 100)),
}


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
