"""Device clocks: Date Time (0x2A08) and Current Time (0x2A2B), read and written.

* Date Time (GSS "Date Time"): the 7-byte field of `date_time` as a characteristic of its
  own. A&D monitors and scales expose it inside their Blood Pressure / Weight Scale
  service and expect the collector to write the current local time to it before they
  release stored readings (A&D sample app, see the and_ua651ble profile).
* Current Time (Current Time Service 1.1, GSS "Current Time"): Exact Time 256 (Date Time,
  Day of Week 0-7 with 0 = unknown, Fractions256 in 1/256 s) and an Adjust Reason bit
  field (bit 0 manual update, 1 external reference, 2 time-zone change, 3 DST change;
  bits 4-7 RFU, ignored on receipt).

Both carry local wall time without a zone. The encoders take the naive local time the
caller has already computed (`simulator.virtual_devices.device_clock` does it from a zone);
nothing here reads a clock.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, IntFlag
from typing import Final

from .date_time import DATE_TIME_SIZE, Timestamp, date_time_fields, decode_date_time
from .errors import DecodeError
from .uuids import CURRENT_TIME, DATE_TIME, name_of

__all__ = [
    "NO_ADJUSTMENT",
    "AdjustReason",
    "CurrentTime",
    "DateTimeCharacteristic",
    "DayOfWeek",
    "decode_current_time",
    "decode_date_time_characteristic",
    "encode_current_time",
    "encode_date_time",
]


class DayOfWeek(IntEnum):
    UNKNOWN = 0
    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7


class AdjustReason(IntFlag):
    MANUAL_TIME_UPDATE = 1 << 0
    EXTERNAL_REFERENCE_TIME_UPDATE = 1 << 1
    CHANGE_OF_TIME_ZONE = 1 << 2
    CHANGE_OF_DST = 1 << 3


NO_ADJUSTMENT: Final = AdjustReason(0)


@dataclass(frozen=True, slots=True)
class DateTimeCharacteristic:
    """The value of a Date Time characteristic (not the field inside measurements)."""

    date_time: Timestamp


@dataclass(frozen=True, slots=True)
class CurrentTime:
    date_time: Timestamp  # local wall time, whole seconds
    day_of_week: DayOfWeek
    fractions256: int  # 1/256 s past `date_time`
    adjust_reason: AdjustReason = NO_ADJUSTMENT


_DATE_TIME = struct.Struct("<HBBBBB")
_CURRENT_TIME = struct.Struct("<HBBBBBBBB")
_ADJUST_REASON_DEFINED = sum(AdjustReason)


def decode_date_time_characteristic(payload: bytes) -> DateTimeCharacteristic:
    if len(payload) != DATE_TIME_SIZE:
        raise DecodeError(f"{name_of(DATE_TIME)}: expected {DATE_TIME_SIZE} bytes, got {len(payload)}")
    try:
        return DateTimeCharacteristic(decode_date_time(*_DATE_TIME.unpack(payload)))
    except DecodeError as exc:
        raise DecodeError(f"{name_of(DATE_TIME)}: {exc}") from exc


def decode_current_time(payload: bytes) -> CurrentTime:
    name = name_of(CURRENT_TIME)
    if len(payload) != _CURRENT_TIME.size:
        raise DecodeError(f"{name}: expected {_CURRENT_TIME.size} bytes, got {len(payload)}")
    *fields, day, fractions, reason = _CURRENT_TIME.unpack(payload)
    try:
        when = decode_date_time(*fields)
    except DecodeError as exc:
        raise DecodeError(f"{name}: {exc}") from exc
    if day > 7:
        raise DecodeError(f"{name}: day of week {day} outside 0-7 (0 = not known)")
    return CurrentTime(when, DayOfWeek(day), fractions, AdjustReason(reason & _ADJUST_REASON_DEFINED))


def encode_date_time(value: Timestamp) -> bytes:
    """7 bytes for a Date Time characteristic write: the device's naive local time
    (sub-second digits are dropped: setting a clock, the field has whole seconds only)."""
    return _DATE_TIME.pack(*date_time_fields(_whole_seconds(value)))


def encode_current_time(
    value: Timestamp,
    *,
    adjust_reason: AdjustReason | int = NO_ADJUSTMENT,
    day_of_week: DayOfWeek | int | None = None,
    fractions256: int | None = None,
) -> bytes:
    """10 bytes for a Current Time write: `value` is the device's naive local time.

    Day of week and Fractions256 are derived from `value` (its microseconds, truncated to
    1/256 s) unless given; a date that is not known has day of week 0 (unknown).
    """
    if isinstance(value, datetime) and value.microsecond:
        if fractions256 is not None:
            raise ValueError("give the sub-second part either as microseconds or as fractions256, not both")
        fractions256 = value.microsecond * 256 // 1_000_000
    if fractions256 is None:
        fractions256 = 0
    if isinstance(fractions256, bool) or not isinstance(fractions256, int) or not 0 <= fractions256 <= 255:
        raise ValueError(f"fractions256 must be an int 0..255, got {fractions256!r}")
    if day_of_week is None:
        day_of_week = value.isoweekday() if isinstance(value, datetime) else DayOfWeek.UNKNOWN
    if isinstance(day_of_week, bool) or not isinstance(day_of_week, int) or not 0 <= day_of_week <= 7:
        raise ValueError(f"day_of_week must be 0..7 (0 = unknown), got {day_of_week!r}")
    reason = int(adjust_reason)
    if not 0 <= reason <= 0xFF or reason & ~_ADJUST_REASON_DEFINED:
        raise ValueError(f"adjust_reason has bits CTS does not define: {adjust_reason!r}")
    fields = date_time_fields(_whole_seconds(value))
    return _CURRENT_TIME.pack(*fields, int(day_of_week), fractions256, reason)


def _whole_seconds(value: Timestamp) -> Timestamp:
    return value.replace(microsecond=0) if isinstance(value, datetime) else value
