"""IEEE 11073-20601 SFLOAT / FLOAT: special values, sign and exponent edges, exact encoding."""

from __future__ import annotations

import math
import struct
from decimal import Decimal

import pytest

from device_profiles import Medfloat, NoValue, encode
from device_profiles.ieee11073 import (
    float32_from_value,
    pack_float32,
    pack_sfloat,
    sfloat_from_value,
    unpack_float32,
    unpack_sfloat,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Special values: exponent 0 with these mantissas only (20601 Annex F.8).
        (0x07FF, NoValue("NaN")),
        (0x0800, NoValue("NRes")),
        (0x07FE, NoValue("+INF")),
        (0x0802, NoValue("-INF")),
        (0x0801, NoValue("reserved")),
        # The same mantissas with another exponent are numbers.
        (0x17FF, Medfloat(2047, 1)),
        (0xF7FF, Medfloat(2047, -1)),
        (0x1800, Medfloat(-2048, 1)),
        (0x87FE, Medfloat(2046, -8)),
        (0x7802, Medfloat(-2046, 7)),
        (0x1801, Medfloat(-2047, 1)),
        # Signs and exponent edges.
        (0x0000, Medfloat(0, 0)),
        (0x0FFF, Medfloat(-1, 0)),  # not NaN: mantissa 0xFFF is -1
        (0x07FD, Medfloat(2045, 0)),  # the largest ordinary mantissa at exponent 0
        (0x0803, Medfloat(-2045, 0)),
        (0x0001, Medfloat(1, 0)),
        (0x7001, Medfloat(1, 7)),  # largest exponent
        (0x8001, Medfloat(1, -8)),  # smallest exponent
        (0xF16E, Medfloat(366, -1)),
        (0xFFFF, Medfloat(-1, -1)),
        (0x77FF, Medfloat(2047, 7)),  # largest SFLOAT: 20 470 000 000
        (0x8800, Medfloat(-2048, -8)),
    ],
)
def test_sfloat_decode(raw: int, expected: Medfloat | NoValue) -> None:
    assert unpack_sfloat(raw) == expected
    assert pack_sfloat(expected) == raw


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0x007FFFFF, NoValue("NaN")),
        (0x00800000, NoValue("NRes")),
        (0x007FFFFE, NoValue("+INF")),
        (0x00800002, NoValue("-INF")),
        (0x00800001, NoValue("reserved")),
        (0x017FFFFF, Medfloat(8388607, 1)),
        (0xFF800000, Medfloat(-8388608, -1)),
        (0x00FFFFFF, Medfloat(-1, 0)),
        (0x00000000, Medfloat(0, 0)),
        (0x007FFFFD, Medfloat(8388605, 0)),
        (0x7F000001, Medfloat(1, 127)),
        (0x80000001, Medfloat(1, -128)),
        (0xFF00016E, Medfloat(366, -1)),
        (0xFE000E08, Medfloat(3592, -2)),
    ],
)
def test_float_decode(raw: int, expected: Medfloat | NoValue) -> None:
    assert unpack_float32(raw) == expected
    assert pack_float32(expected) == raw


def test_every_sfloat_is_a_number_or_one_of_five_specials() -> None:
    specials = {}
    for raw in range(0x10000):
        value = unpack_sfloat(raw)
        if isinstance(value, NoValue):
            specials[raw] = value.reason
        else:
            assert pack_sfloat(value) == raw
            assert -2048 <= value.mantissa <= 2047 and -8 <= value.exponent <= 7
    assert specials == {0x07FF: "NaN", 0x0800: "NRes", 0x07FE: "+INF", 0x0802: "-INF", 0x0801: "reserved"}


def test_medfloat_is_exact() -> None:
    value = Medfloat(366, -1)
    assert value.to_decimal() == Decimal("36.6")
    assert str(value.to_decimal()) == "36.6"
    assert float(value) == 36.6
    assert Medfloat(-1, -1).to_decimal() == Decimal("-0.1")
    assert Medfloat(2047, 7).to_decimal() == Decimal("20470000000")
    assert Medfloat(1, -128).to_decimal() == Decimal("1E-128")
    assert str(Medfloat(3660, -2)) == "36.60"  # the declared precision survives
    assert Medfloat(250, -1) != Medfloat(25, 0)  # representations differ...
    assert Medfloat(250, -1).to_decimal() == Medfloat(25, 0).to_decimal()  # ...the numbers do not


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (97, Medfloat(97, 0)),
        ("97", Medfloat(97, 0)),
        ("97.0", Medfloat(970, -1)),  # keeps the stated precision
        (97.5, Medfloat(975, -1)),
        (Decimal("36.60"), Medfloat(366, -1)),  # 3660 does not fit 12 bits: trailing zero shed
        (36.6, Medfloat(366, -1)),  # float taken by its shortest repr, not 36.600000000000001
        ("-0.1", Medfloat(-1, -1)),
        (0, Medfloat(0, 0)),
        ("0E-20", Medfloat(0, -8)),  # zero fits any exponent: clamped
        ("0E+20", Medfloat(0, 7)),
        (2045, Medfloat(2045, 0)),
        (20470, Medfloat(2047, 1)),  # 2047 at exponent 0 would be NaN; exponent 1 is fine
        ("1E+9", Medfloat(100, 7)),  # exponent above 7 traded for mantissa digits
        ("3E+8", Medfloat(30, 7)),
        (1e9, Medfloat(1000, 6)),  # repr "1000000000.0"
        ("0.00000001", Medfloat(1, -8)),
        ("1.000000000", Medfloat(1000, -3)),
        (Medfloat(2047, 1), Medfloat(2047, 1)),
        (NoValue("NRes"), NoValue("NRes")),
        (float("nan"), NoValue("NaN")),
        (float("inf"), NoValue("+INF")),
        (float("-inf"), NoValue("-INF")),
        (Decimal("-Infinity"), NoValue("-INF")),
        ("NaN", NoValue("NaN")),
    ],
)
def test_sfloat_from_value(value: object, expected: Medfloat | NoValue) -> None:
    assert sfloat_from_value(value) == expected
    assert encode.sfloat(value) == struct.pack("<H", pack_sfloat(expected))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2046, "special value \\+INF"),
        (2047, "special value NaN"),
        (-2046, "special value -INF"),
        (-2047, "special value reserved"),
        (-2048, "special value NRes"),
        (2048, "mantissa 2048"),
        ("0.123456789", "exponent -9"),
        ("1E-9", "exponent -9"),
        ("36.63", "mantissa 3663"),
        ("3E+11", "exponent 9 outside"),  # 300 x 10^9 is as far as the mantissa stretches
        (Medfloat(2048, 0), "mantissa 2048"),
        (Medfloat(1, 8), "exponent 8"),
        (Medfloat(2047, 0), "special value NaN"),
        ("ninety", "not a decimal number"),
        (NoValue("measurement unsuccessful"), "no special value"),
    ],
)
def test_sfloat_unrepresentable(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode.sfloat(value)


@pytest.mark.parametrize("value", [True, None, [1], b"\x01"])
def test_sfloat_rejects_non_numbers(value: object) -> None:
    with pytest.raises(TypeError):
        encode.sfloat(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("36.63", Medfloat(3663, -2)),
        ("8388605", Medfloat(8388605, 0)),
        ("83886070", Medfloat(8388607, 1)),
        (98.6, Medfloat(986, -1)),
        ("1E-128", Medfloat(1, -128)),
        ("1E+130", Medfloat(1000, 127)),
        (float("nan"), NoValue("NaN")),
    ],
)
def test_float32_from_value(value: object, expected: Medfloat | NoValue) -> None:
    assert float32_from_value(value) == expected
    assert encode.float32(value) == struct.pack("<I", pack_float32(expected))


@pytest.mark.parametrize("value", [8388606, 8388607, -8388608, "1E-129", "0.123456789012"])
def test_float32_unrepresentable(value: object) -> None:
    with pytest.raises(ValueError, match="cannot be represented exactly as FLOAT"):
        encode.float32(value)


def test_encoded_bytes_are_little_endian() -> None:
    assert encode.sfloat("36.6") == bytes.fromhex("6ef1")
    assert encode.float32("36.6") == bytes.fromhex("6e0100ff")
    assert encode.sfloat(math.nan) == bytes.fromhex("ff07")
    assert encode.float32(math.inf) == bytes.fromhex("feff7f00")


def test_memoised_decoding_is_the_same_decoding() -> None:
    # Decoded values are memoised (SFLOAT fully, FLOAT up to a cap); past the cap and on
    # repeat the answers must not change. Bit patterns spread over the whole FLOAT space.
    from device_profiles import ieee11073

    raws = [(i * 0x9E3779B1) & 0xFFFFFFFF for i in range(ieee11073._FLOAT_MEMO_MAX + 500)]
    first = [unpack_float32(raw) for raw in raws]
    assert len(ieee11073._FLOAT_MEMO) <= ieee11073._FLOAT_MEMO_MAX + len(ieee11073._FLOAT_SPECIAL)
    assert [unpack_float32(raw) for raw in raws] == first
    for raw, value in zip(raws, first, strict=True):
        exponent, mantissa = raw >> 24, raw & 0xFFFFFF
        if isinstance(value, Medfloat):
            assert value.mantissa == (mantissa - 0x1000000 if mantissa & 0x800000 else mantissa)
            assert value.exponent == (exponent - 256 if exponent & 0x80 else exponent)
            assert pack_float32(value) == raw
    assert unpack_sfloat(0x0001) is unpack_sfloat(0x0001)  # frozen values are shared, never mutated


def test_sfloat_refuses_more_than_16_bits() -> None:
    with pytest.raises(ValueError, match="16 bits"):
        unpack_sfloat(0x10000)
