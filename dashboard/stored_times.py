"""Timestamps read back as PostgreSQL holds them, never failing a page.

PostgreSQL's timestamptz spans 4713 BC to 294276 AD and 'infinity'; Python's datetime only years 1 to
9999. One stored value outside that (a limit "valid until" 9999-12-31T23:59:59-14:00 is year 10000 in
UTC, issue 8) would make every read of the row raise, and the patient's record answer 500 for good.
care's commands bound every time a person types; this keeps the dashboard readable whatever got stored
before or by other means. Such a value reads as FAR_FUTURE or FAR_PAST: still far off, and still a
date in any time zone the pages show it in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from psycopg import DataError
from psycopg.types.datetime import TimestamptzBinaryLoader, TimestamptzLoader

if TYPE_CHECKING:
    import psycopg
    from psycopg.abc import Buffer

FAR_FUTURE = datetime(9999, 12, 30, tzinfo=UTC)
FAR_PAST = datetime(1, 1, 2, tzinfo=UTC)


class _Timestamptz(TimestamptzLoader):
    def load(self, data: Buffer) -> datetime:
        try:
            return super().load(data)
        except DataError:  # '-infinity', '... BC' or 'infinity', '10000-01-01 ...'
            text = bytes(data)
            return FAR_PAST if text.startswith(b"-") or text.endswith(b"BC") else FAR_FUTURE


class _TimestamptzBinary(TimestamptzBinaryLoader):
    def load(self, data: Buffer) -> datetime:
        try:
            return super().load(data)
        except DataError:  # microseconds since 2000-01-01: the sign says which side
            return FAR_PAST if int.from_bytes(bytes(data), "big", signed=True) < 0 else FAR_FUTURE


def read_any_timestamp(conn: psycopg.AsyncConnection | psycopg.Connection) -> None:
    """Make `conn` read out-of-range timestamptz values as FAR_FUTURE / FAR_PAST instead of raising."""
    conn.adapters.register_loader("timestamptz", _Timestamptz)
    conn.adapters.register_loader("timestamptz", _TimestamptzBinary)
