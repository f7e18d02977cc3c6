"""Flag-driven characteristic layouts: which fields a Flags byte makes present, packed with struct.

Every health characteristic here has the same shape (GSS, each characteristic's table):
a Flags field (8 bits; 16 for Body Composition Measurement and PLX Features), mandatory
fields, then optional fields in a fixed order, each present when its flag bit is set. A
`Layout` describes that once and makes one `struct.Struct` per combination of flag bits
covering the whole payload, so decoding is a length check and a single `unpack`, and
encoding is the same table run backwards.

Length policy (applies to every characteristic): the payload must be exactly as long as
its flags say. Shorter is truncated; longer is an error too, because the spare bytes are
most likely a field from a newer spec version announced by a flag bit we treat as RFU,
and guessing past it would misread everything after it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .date_time import date_time_fields, decode_date_time
from .errors import DecodeError
from .ieee11073 import (
    float32_from_value,
    pack_float32,
    pack_sfloat,
    sfloat_from_value,
    unpack_float32,
    unpack_sfloat,
)

__all__ = ["DATE_TIME", "FLOAT", "S16", "SFLOAT", "U8", "U16", "U24", "U32", "Codec", "Field", "Layout"]


@dataclass(frozen=True, slots=True)
class Codec:
    """How one GSS field type maps to struct codes and back."""

    name: str
    fmt: str  # struct codes (little-endian, no padding)
    decode: Callable[..., Any] | None  # takes the unpacked values of `fmt`; None: the value as unpacked
    encode: Callable[[Any], tuple[int, ...]]  # gives values for `fmt`

    @property
    def count(self) -> int:
        return len(self.fmt)


def _uint(bits: int) -> Callable[[Any], tuple[int, ...]]:
    def encode(value: Any) -> tuple[int, ...]:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an int, got {value!r}")
        if not 0 <= value < 1 << bits:
            raise ValueError(f"{value} does not fit uint{bits} (0..{(1 << bits) - 1})")
        return (value,) if bits != 24 else (value & 0xFFFF, value >> 16)

    return encode


def _sint16(value: Any) -> tuple[int, ...]:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an int, got {value!r}")
    if not -0x8000 <= value <= 0x7FFF:
        raise ValueError(f"{value} does not fit sint16 (-32768..32767)")
    return (value,)


def _encode_sfloat(value: Any) -> tuple[int, ...]:
    return (pack_sfloat(sfloat_from_value(value)),)


def _encode_float(value: Any) -> tuple[int, ...]:
    return (pack_float32(float32_from_value(value)),)


def _join_u24(low: int, high: int) -> int:
    return low | high << 16


U8 = Codec("uint8", "B", None, _uint(8))
U16 = Codec("uint16", "H", None, _uint(16))
U24 = Codec("uint24", "HB", _join_u24, _uint(24))  # struct has no 3-byte code: low 16 bits, then high 8
U32 = Codec("uint32", "I", None, _uint(32))
S16 = Codec("sint16", "h", None, _sint16)
SFLOAT = Codec("SFLOAT", "H", unpack_sfloat, _encode_sfloat)
FLOAT = Codec("FLOAT", "I", unpack_float32, _encode_float)
DATE_TIME = Codec("Date Time", "HBBBBB", decode_date_time, date_time_fields)


@dataclass(frozen=True, slots=True)
class Field:
    """One field: present always (`flag` 0) or when `flag` (a bit mask of Flags) is set."""

    name: str
    codec: Codec
    flag: int = 0


@dataclass(frozen=True, slots=True)
class _Plan:
    unpacker: struct.Struct
    fields: tuple[Field, ...]
    names: str  # for error messages
    # Per present field: (name, decode or None, first index into the unpacked tuple, count).
    steps: tuple[tuple[str, Callable[..., Any] | None, int, int], ...]


class Layout:
    """The fields of one characteristic after its Flags field.

    With an 8-bit Flags field all 256 flag values are planned up front (a handful of
    distinct Structs each), so decoding does one tuple index per payload. A 16-bit Flags
    field is planned per combination of its field-selecting bits on first use (at most
    2^k plans for k such bits) and cached; the layout never changes meaning after
    construction either way.
    """

    __slots__ = ("_cache", "_field_mask", "_flags_size", "_plans", "characteristic", "fields")

    def __init__(self, characteristic: str, fields: tuple[Field, ...], *, flags_size: int = 1) -> None:
        if flags_size not in (1, 2):
            raise ValueError(f"flags_size must be 1 or 2 bytes, got {flags_size}")
        self.characteristic = characteristic  # e.g. "PLX Spot-Check Measurement (0x2A5E)"
        self.fields = fields
        self._flags_size = flags_size
        field_mask = 0
        for f in fields:
            field_mask |= f.flag
        self._field_mask = field_mask
        self._cache: dict[int, _Plan] = {}
        self._plans: tuple[_Plan, ...] = (
            tuple(self._plan(flags) for flags in range(256)) if flags_size == 1 else ()
        )

    def _plan(self, flags: int) -> _Plan:
        key = flags & self._field_mask
        plan = self._cache.get(key)
        if plan is None:
            present = tuple(f for f in self.fields if f.flag == 0 or f.flag & key)
            fmt = ("<B" if self._flags_size == 1 else "<H") + "".join(f.codec.fmt for f in present)
            names = ", ".join(["Flags", *(f.name for f in present)])
            steps = []
            index = 1
            for f in present:
                steps.append((f.name, f.codec.decode, index, f.codec.count))
                index += f.codec.count
            plan = self._cache[key] = _Plan(struct.Struct(fmt), present, names, tuple(steps))
        return plan

    def unpack(self, payload: bytes) -> tuple[int, dict[str, Any]]:
        """(flags, {field name: decoded value}) for present fields; absent fields are left out."""
        if len(payload) < self._flags_size:
            raise DecodeError(
                f"{self.characteristic}: {'empty payload' if not payload else 'truncated'} "
                f"(no {8 * self._flags_size}-bit Flags field)"
            )
        if self._flags_size == 1:
            flags = payload[0]
            plan = self._plans[flags]
        else:
            flags = payload[0] | payload[1] << 8
            plan = self._plan(flags)
        size = plan.unpacker.size
        if len(payload) != size:
            problem = "truncated" if len(payload) < size else f"{len(payload) - size} trailing byte(s)"
            raise DecodeError(
                f"{self.characteristic}: {problem}: flags 0x{flags:0{2 * self._flags_size}X} announce "
                f"{size} bytes ({plan.names}), got {len(payload)}"
            )
        raw = plan.unpacker.unpack(payload)
        values: dict[str, Any] = {}
        for name, decode, i, n in plan.steps:
            if decode is None:
                values[name] = raw[i]
                continue
            try:
                values[name] = decode(raw[i]) if n == 1 else decode(*raw[i : i + n])
            except DecodeError as exc:
                raise DecodeError(f"{self.characteristic}: field {name}: {exc}") from exc
        return raw[0], values

    def pack(self, flags: int, values: Mapping[str, Any]) -> bytes:
        """The payload for `flags` with the present fields taken from `values`."""
        plan = self._plan(flags)
        out: list[int] = [flags]
        for f in plan.fields:
            try:
                out.extend(f.codec.encode(values[f.name]))
            except (ValueError, TypeError) as exc:
                raise type(exc)(f"{self.characteristic}: {f.name}: {exc}") from exc
        return plan.unpacker.pack(*out)
