"""Status and feature fields as frozen dataclasses of named booleans, one per defined bit.

A subclass lists its bits once (`_BITS`: field name -> bit index, from the GSS table of the
field) and gets `from_bits` / `to_bits`. Undefined (RFU) bits are ignored on receipt and
sent as 0, the SIG convention every decoder here follows.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

__all__ = ["NamedBits", "checked_bits"]


class NamedBits:
    """Mixin for `@dataclass(frozen=True, slots=True)` classes whose fields are all bools."""

    __slots__ = ()
    _BITS: ClassVar[tuple[tuple[str, int], ...]]

    @classmethod
    def from_bits(cls, bits: int) -> Self:
        return cls(**{name: bool(bits >> bit & 1) for name, bit in cls._BITS})

    def to_bits(self) -> int:
        return sum(1 << bit for name, bit in self._BITS if getattr(self, name))

    @classmethod
    def defined_mask(cls) -> int:
        return sum(1 << bit for _, bit in cls._BITS)

    def set_names(self) -> tuple[str, ...]:
        """The names of the bits that are set, in bit order."""
        return tuple(name for name, _ in self._BITS if getattr(self, name))


def checked_bits(value: Any, cls: type[NamedBits], what: str) -> int:
    """`value` (an instance of `cls`) as its bit field; TypeError for anything else."""
    if not isinstance(value, cls):
        raise TypeError(f"{what} must be a {cls.__name__}, got {value!r}")
    return value.to_bits()
