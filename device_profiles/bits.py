"""Status and feature fields as frozen dataclasses of named booleans, one per defined bit.

A subclass lists its bits once (`_BITS`: field name -> bit index, from the GSS table of the
field) and gets `from_bits` / `to_bits`. Undefined (RFU) bits are ignored on receipt and
sent as 0, the SIG convention every decoder here follows.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag
from typing import Any, ClassVar, Final, Self, TypeVar

__all__ = ["NamedBits", "checked_bits", "code_table", "flag_value"]

# Decoded bit fields are immutable and a function of their bits alone, so they are memoised
# (building one is most of the cost of decoding a status field). Bounded: once the memo
# holds _MEMO_MAX values, new ones are built every time instead of stored.
_MEMO: Final[dict[tuple[type, int], Any]] = {}
_MEMO_MAX: Final = 16384

F = TypeVar("F", bound=IntFlag)
E = TypeVar("E", bound=IntEnum)


class NamedBits:
    """Mixin for `@dataclass(frozen=True, slots=True)` classes whose fields are all bools."""

    __slots__ = ()
    _BITS: ClassVar[tuple[tuple[str, int], ...]]

    @classmethod
    def from_bits(cls, bits: int) -> Self:
        key = (cls, bits & cls.defined_mask())
        value: Self | None = _MEMO.get(key)
        if value is None:
            value = cls(**{name: bool(bits >> bit & 1) for name, bit in cls._BITS})
            if len(_MEMO) < _MEMO_MAX:
                _MEMO[key] = value
        return value

    def to_bits(self) -> int:
        return sum(1 << bit for name, bit in self._BITS if getattr(self, name))

    @classmethod
    def defined_mask(cls) -> int:
        mask = _MEMO.get((cls, -1))
        if mask is None:
            mask = _MEMO[(cls, -1)] = sum(1 << bit for _, bit in cls._BITS)
        return int(mask)

    def set_names(self) -> tuple[str, ...]:
        """The names of the bits that are set, in bit order."""
        return tuple(name for name, _ in self._BITS if getattr(self, name))


def checked_bits(value: Any, cls: type[NamedBits], what: str) -> int:
    """`value` (an instance of `cls`) as its bit field; TypeError for anything else."""
    if not isinstance(value, cls):
        raise TypeError(f"{what} must be a {cls.__name__}, got {value!r}")
    return value.to_bits()


def flag_value(cls: type[F], bits: int) -> F:
    """`cls(bits)`, memoised like `NamedBits.from_bits` (IntFlag construction is slow)."""
    key = (cls, bits)
    value: F | None = _MEMO.get(key)
    if value is None:
        value = cls(bits)
        if len(_MEMO) < _MEMO_MAX:
            _MEMO[key] = value
    return value


def code_table(enum: type[E]) -> dict[int, E]:
    """{code: member} for decoding: `table.get(code, code)` keeps reserved codes as ints,
    ten times faster than calling the enum and catching ValueError."""
    return {int(member): member for member in enum}
