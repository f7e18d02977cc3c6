"""Battery Level (0x2A19): one uint8, percent of full charge (GSS "Battery Level", 0-100)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DecodeError
from .uuids import BATTERY_LEVEL, name_of

__all__ = ["BatteryLevel", "decode_battery_level", "encode_battery_level"]

_NAME = name_of(BATTERY_LEVEL)


@dataclass(frozen=True, slots=True)
class BatteryLevel:
    battery_level: int  # percent


def decode_battery_level(payload: bytes) -> BatteryLevel:
    if len(payload) != 1:
        raise DecodeError(f"{_NAME}: expected 1 byte, got {len(payload)}")
    level = payload[0]
    if level > 100:
        # 101-255 are reserved; a gateway showing "230 %" would hide a firmware fault.
        raise DecodeError(f"{_NAME}: {level} % is outside 0-100 (101-255 are reserved)")
    return BatteryLevel(level)


def encode_battery_level(percent: int) -> bytes:
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise ValueError(f"battery level must be an int 0..100 %, got {percent!r}")
    return bytes([percent])
