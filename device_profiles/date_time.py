"""The GSS "Date Time" field (7 bytes) that timestamps health measurements.

Layout (GSS "Date Time"): year uint16 (1582-9999, 0 = not known), month uint8 (1-12,
0 = not known), day uint8 (1-31, 0 = not known), hours 0-23, minutes 0-59, seconds 0-59.

It carries no time zone: the device's clock is local wall time, so decoding gives a naive
`datetime` and `normalise()` attaches the device's zone. A "not known" year, month or day
is legal and common on devices whose clock was never set; decoding keeps it as
`UnknownDateTime` (so nothing is dropped and re-encoding is byte-exact) rather than
rejecting the whole measurement. A value no calendar has (month 13, 30 February,
hour 24) is a corrupt payload: DecodeError.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .errors import DecodeError

__all__ = ["DATE_TIME_SIZE", "Timestamp", "UnknownDateTime", "date_time_fields", "decode_date_time"]

DATE_TIME_SIZE = 7

# Allowed ranges per GSS "Date Time"; 0 in year/month/day means "not known".
_YEAR_MIN, _YEAR_MAX = 1582, 9999


@dataclass(frozen=True, slots=True)
class UnknownDateTime:
    """A Date Time whose year, month or day the device sent as 0 ("not known")."""

    year: int
    month: int
    day: int
    hours: int
    minutes: int
    seconds: int


Timestamp = datetime | UnknownDateTime


def _range_problem(year: int, month: int, day: int, hours: int, minutes: int, seconds: int) -> str | None:
    if year != 0 and not _YEAR_MIN <= year <= _YEAR_MAX:
        return f"year {year} outside {_YEAR_MIN}-{_YEAR_MAX} (0 = not known)"
    for name, value, high in (("month", month, 12), ("day", day, 31)):
        if value > high:
            return f"{name} {value} outside 1-{high} (0 = not known)"
    for name, value, high in (("hours", hours, 23), ("minutes", minutes, 59), ("seconds", seconds, 59)):
        if value > high:
            return f"{name} {value} outside 0-{high}"
    return None


def decode_date_time(year: int, month: int, day: int, hours: int, minutes: int, seconds: int) -> Timestamp:
    """The naive local time the device stamped, or UnknownDateTime; DecodeError if impossible."""
    if _YEAR_MIN <= year <= _YEAR_MAX and month and day and hours < 24 and minutes < 60 and seconds < 60:
        try:  # the common case: a real date; datetime checks month and day itself
            return datetime(year, month, day, hours, minutes, seconds)
        except ValueError:
            pass  # month 13, 31 April...: the checks below name the problem
    problem = _range_problem(year, month, day, hours, minutes, seconds)
    if problem:
        raise DecodeError(f"Date Time: {problem}")
    if year == 0 or month == 0 or day == 0:
        return UnknownDateTime(year, month, day, hours, minutes, seconds)
    try:
        return datetime(year, month, day, hours, minutes, seconds)  # naive: device clocks have no zone
    except ValueError as exc:  # 31 April, 29 February of a common year
        raise DecodeError(f"Date Time: {year:04d}-{month:02d}-{day:02d} does not exist ({exc})") from exc


def date_time_fields(value: Timestamp) -> tuple[int, int, int, int, int, int]:
    """The six wire fields for `value`; ValueError when the Date Time field cannot hold it."""
    if isinstance(value, UnknownDateTime):
        fields = (value.year, value.month, value.day, value.hours, value.minutes, value.seconds)
        if any(not isinstance(f, int) or f < 0 for f in fields):
            raise ValueError(f"Date Time fields must be non-negative ints: {value!r}")
        problem = _range_problem(*fields)
        if problem:
            raise ValueError(f"Date Time cannot hold {value!r}: {problem}")
        return fields
    if not isinstance(value, datetime):
        raise TypeError(f"a timestamp must be a datetime or UnknownDateTime, got {type(value).__name__}")
    if value.tzinfo is not None:
        # The field has no zone; silently dropping one would shift the reading by the offset.
        raise ValueError(f"Date Time carries no time zone; pass the device's naive local time, got {value!r}")
    if value.microsecond:
        raise ValueError(
            f"Date Time has whole seconds only; got {value.isoformat()} (use .replace(microsecond=0))"
        )
    if not _YEAR_MIN <= value.year <= _YEAR_MAX:
        raise ValueError(f"Date Time year must be {_YEAR_MIN}-{_YEAR_MAX}, got {value.year}")
    return (value.year, value.month, value.day, value.hour, value.minute, value.second)
