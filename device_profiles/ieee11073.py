"""IEEE 11073-20601 SFLOAT and FLOAT ("medfloat16" / "medfloat32" in the GSS), kept exact.

Health-device characteristics carry their readings as a base-10 mantissa and exponent,
so 36.6 degC travels as 366 x 10^-1. Turning that into a binary float first would make
36.6 into 36.600000000000001 and lose the precision the device declared, so decoding
keeps the pair (`Medfloat`) and only `to_decimal()` / `float()` interpret it.

Layouts (IEEE 11073-20601 Annex F.8 "SFLOAT-Type", F.7 "FLOAT-Type"; both little-endian
on the air per the GSS):

* SFLOAT: 16 bits = 4-bit exponent (high nibble) + 12-bit mantissa, both two's complement.
* FLOAT:  32 bits = 8-bit exponent (high byte) + 24-bit mantissa, both two's complement.

Special values are particular mantissas *with exponent 0* only; the same mantissa with any
other exponent is an ordinary number (0x17FF is 2047 x 10^1, 0x0FFF is -1).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

__all__ = [
    "NAN",
    "NEGATIVE_INFINITY",
    "NRES",
    "POSITIVE_INFINITY",
    "RESERVED",
    "MedValue",
    "Medfloat",
    "NoValue",
    "decimal_from_value",
    "float32_from_value",
    "pack_float32",
    "pack_sfloat",
    "sfloat_from_value",
    "unpack_float32",
    "unpack_sfloat",
]


@dataclass(frozen=True, slots=True)
class Medfloat:
    """An exact decimal `mantissa x 10^exponent`, as the device sent it.

    Equality is on the pair, so Medfloat(250, -1) != Medfloat(25, 0) although both are 25;
    compare `to_decimal()` values when the representation does not matter.
    """

    mantissa: int
    exponent: int

    def to_decimal(self) -> Decimal:
        # Built from the tuple form: exact, independent of the decimal context's precision.
        sign = 1 if self.mantissa < 0 else 0
        digits = tuple(int(d) for d in str(abs(self.mantissa)))
        return Decimal((sign, digits, self.exponent))

    def __float__(self) -> float:
        return float(self.to_decimal())

    def __str__(self) -> str:
        return str(self.to_decimal())


@dataclass(frozen=True, slots=True)
class NoValue:
    """A field that holds no number, and why: "NaN", "NRes" (below the device's resolution),
    "+INF", "-INF", "reserved" (a reserved special value), or a characteristic-specific reason
    such as "measurement unsuccessful" (Weight Measurement 0xFFFF)."""

    reason: str

    def __str__(self) -> str:
        return f"no value ({self.reason})"


NAN: Final = NoValue("NaN")
NRES: Final = NoValue("NRes")
POSITIVE_INFINITY: Final = NoValue("+INF")
NEGATIVE_INFINITY: Final = NoValue("-INF")
RESERVED: Final = NoValue("reserved")

MedValue = Medfloat | NoValue


@dataclass(frozen=True, slots=True)
class _Format:
    name: str
    mantissa_bits: int
    exponent_bits: int

    @property
    def mantissa_max(self) -> int:
        return (1 << (self.mantissa_bits - 1)) - 1

    @property
    def mantissa_min(self) -> int:
        return -(1 << (self.mantissa_bits - 1))

    @property
    def exponent_max(self) -> int:
        return (1 << (self.exponent_bits - 1)) - 1

    @property
    def exponent_min(self) -> int:
        return -(1 << (self.exponent_bits - 1))

    @property
    def special_mantissas(self) -> dict[int, NoValue]:
        return _SPECIAL_MANTISSAS[self.name]


def _special_mantissas(mantissa_bits: int) -> dict[int, NoValue]:
    # 20601 Annex F.8 table: NaN = +(2^(n-1) - 1), NRes = -(2^(n-1)),
    # +INF = +(2^(n-1) - 2), -INF = -(2^(n-1) - 2), reserved = -(2^(n-1) - 1); exponent 0.
    top = (1 << (mantissa_bits - 1)) - 1
    return {
        top: NAN,
        -(top + 1): NRES,
        top - 1: POSITIVE_INFINITY,
        -(top - 1): NEGATIVE_INFINITY,
        -top: RESERVED,
    }


_SPECIAL_MANTISSAS: Final = {"SFLOAT": _special_mantissas(12), "FLOAT": _special_mantissas(24)}
_SFLOAT: Final = _Format("SFLOAT", mantissa_bits=12, exponent_bits=4)
_FLOAT: Final = _Format("FLOAT", mantissa_bits=24, exponent_bits=8)


def _build_tables(fmt: _Format) -> tuple[dict[int, NoValue], dict[str, int]]:
    mask = (1 << fmt.mantissa_bits) - 1
    specials = {mantissa & mask: value for mantissa, value in fmt.special_mantissas.items()}
    by_reason = {value.reason: raw for raw, value in specials.items()}
    return specials, by_reason


_SFLOAT_SPECIAL, _SFLOAT_SPECIAL_RAW = _build_tables(_SFLOAT)
_FLOAT_SPECIAL, _FLOAT_SPECIAL_RAW = _build_tables(_FLOAT)


# Decoded values are immutable and a function of the raw bits alone, so they are memoised:
# a device repeats the same few hundred readings, and building a Medfloat is most of the
# cost of decoding one. SFLOAT has 65536 raw values (the memo cannot outgrow that); FLOAT
# has 2^32, so its memo stops growing at _FLOAT_MEMO_MAX entries.
_SFLOAT_MEMO: Final[dict[int, MedValue]] = dict(_SFLOAT_SPECIAL)
_FLOAT_MEMO: Final[dict[int, MedValue]] = dict(_FLOAT_SPECIAL)
_FLOAT_MEMO_MAX: Final = 4096


def unpack_sfloat(raw: int) -> MedValue:
    """Decode a 16-bit SFLOAT (already read little-endian into an int)."""
    value = _SFLOAT_MEMO.get(raw)
    if value is None:
        if not 0 <= raw <= 0xFFFF:
            raise ValueError(f"an SFLOAT is 16 bits, got {raw!r}")
        exponent = raw >> 12
        mantissa = raw & 0x0FFF
        value = _SFLOAT_MEMO[raw] = Medfloat(
            mantissa - 0x1000 if mantissa & 0x800 else mantissa, exponent - 16 if exponent & 0x8 else exponent
        )
    return value


def unpack_float32(raw: int) -> MedValue:
    """Decode a 32-bit FLOAT (already read little-endian into an int)."""
    value = _FLOAT_MEMO.get(raw)
    if value is None:
        exponent = raw >> 24
        mantissa = raw & 0x00FFFFFF
        value = Medfloat(
            mantissa - 0x1000000 if mantissa & 0x800000 else mantissa,
            exponent - 256 if exponent & 0x80 else exponent,
        )
        if len(_FLOAT_MEMO) < _FLOAT_MEMO_MAX:
            _FLOAT_MEMO[raw] = value
    return value


def pack_sfloat(value: MedValue) -> int:
    return _pack(value, _SFLOAT, _SFLOAT_SPECIAL_RAW)


def pack_float32(value: MedValue) -> int:
    return _pack(value, _FLOAT, _FLOAT_SPECIAL_RAW)


def _pack(value: MedValue, fmt: _Format, special_raw: dict[str, int]) -> int:
    if isinstance(value, NoValue):
        try:
            return special_raw[value.reason]
        except KeyError:
            raise ValueError(
                f"{fmt.name} has no special value {value.reason!r} (known: {', '.join(special_raw)})"
            ) from None
    problem = _range_problem(value.mantissa, value.exponent, fmt)
    if problem:
        raise ValueError(f"{value!r} does not fit {fmt.name}: {problem}")
    mantissa_mask = (1 << fmt.mantissa_bits) - 1
    exponent_mask = (1 << fmt.exponent_bits) - 1
    return ((value.exponent & exponent_mask) << fmt.mantissa_bits) | (value.mantissa & mantissa_mask)


def _range_problem(mantissa: int, exponent: int, fmt: _Format) -> str | None:
    if not fmt.exponent_min <= exponent <= fmt.exponent_max:
        return f"exponent {exponent} outside {fmt.exponent_min}..{fmt.exponent_max}"
    if not fmt.mantissa_min <= mantissa <= fmt.mantissa_max:
        return f"mantissa {mantissa} outside {fmt.mantissa_min}..{fmt.mantissa_max}"
    special = fmt.special_mantissas.get(mantissa) if exponent == 0 else None
    if special is not None:
        return f"mantissa {mantissa} with exponent 0 is the special value {special.reason}"
    return None


def sfloat_from_value(value: object) -> MedValue:
    """The SFLOAT that holds `value` exactly; ValueError when none does.

    Accepts Medfloat / NoValue (checked and returned), Decimal, int, str, and float (taken
    by its shortest repr, so 36.6 means Decimal("36.6")). A NaN or infinite Decimal/float
    becomes the matching special value.
    """
    return _from_value(value, _SFLOAT)


def float32_from_value(value: object) -> MedValue:
    """As `sfloat_from_value`, for the 32-bit FLOAT."""
    return _from_value(value, _FLOAT)


def _from_value(value: object, fmt: _Format) -> MedValue:
    if isinstance(value, NoValue):
        pack = pack_sfloat if fmt is _SFLOAT else pack_float32
        pack(value)  # raises for a reason this format cannot carry
        return value
    if isinstance(value, Medfloat):
        problem = _range_problem(value.mantissa, value.exponent, fmt)
        if problem:
            raise ValueError(f"{value!r} does not fit {fmt.name}: {problem}")
        return value
    number = decimal_from_value(value)
    if number.is_nan():
        return NAN
    if number.is_infinite():
        return NEGATIVE_INFINITY if number < 0 else POSITIVE_INFINITY
    sign, digits, raw_exponent = number.as_tuple()
    assert isinstance(raw_exponent, int)  # "n"/"N"/"F" only for NaN and infinity, handled above
    exponent = raw_exponent
    mantissa = int("".join(map(str, digits)))
    if sign:
        mantissa = -mantissa
    if mantissa == 0:
        exponent = min(max(exponent, fmt.exponent_min), fmt.exponent_max)
    # Keep the caller's precision ("36.60" -> 3660 x 10^-2 in a FLOAT) where it fits; shed trailing zeros
    # only when the mantissa or exponent would not fit otherwise.
    while (
        _range_problem(mantissa, exponent, fmt)
        and mantissa % 10 == 0
        and mantissa
        and exponent < fmt.exponent_max
    ):
        mantissa //= 10
        exponent += 1
    # A large exponent can be traded for mantissa digits (1E+9 -> 100 x 10^7 in SFLOAT).
    while exponent > fmt.exponent_max and fmt.mantissa_min <= mantissa * 10 <= fmt.mantissa_max:
        mantissa *= 10
        exponent -= 1
    problem = _range_problem(mantissa, exponent, fmt)
    if problem:
        raise ValueError(f"{value!r} cannot be represented exactly as {fmt.name} ({problem})")
    return Medfloat(mantissa, exponent)


def decimal_from_value(value: object) -> Decimal:
    """`value` as the Decimal the caller meant; floats by their shortest repr."""
    if isinstance(value, bool):
        raise TypeError(f"a measurement value cannot be a bool: {value!r}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # repr() is the shortest string that round-trips, i.e. the decimal the caller typed.
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
    raise TypeError(f"expected Decimal, int, float, str, Medfloat or NoValue, got {type(value).__name__}")
