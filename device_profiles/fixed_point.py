"""Unsigned fixed-point fields (weight, BMI, height, body composition): raw x resolution.

The Weight Scale and Body Composition characteristics carry masses, lengths and
percentages as uint16 counts of a resolution that Flags bit 0 (SI / Imperial) chooses.
Decoding gives the exact `Decimal` raw x resolution; encoding refuses values off the grid
(a scale displays what it sends, so 70.123 kg means the caller mixed up units).
"""

from __future__ import annotations

from decimal import Decimal

from .ieee11073 import decimal_from_value

__all__ = ["steps"]


def steps(value: object, resolution: Decimal, what: str, *, limit: int = 0xFFFF) -> int:
    """`value` as a whole number of `resolution` steps; ValueError unless exact and in range."""
    number = decimal_from_value(value)
    if not number.is_finite():
        raise ValueError(f"{what} must be finite, got {value!r}")
    count = number / resolution
    if count != count.to_integral_value():
        raise ValueError(f"{what} {value} is not a multiple of the {resolution} resolution")
    if not 0 <= count <= limit:
        raise ValueError(f"{what} {value} outside 0..{limit * resolution}")
    return int(count)
