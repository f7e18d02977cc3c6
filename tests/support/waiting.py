"""Polling for a condition that a real service reaches asynchronously."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 15.0, what: str = "condition") -> T:
    """Return the first truthy value of `predicate`, or fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def past_local_midnight_if_near(margin_s: float = 180.0, zone: str = "Europe/Stockholm") -> None:
    """Wait until just after the site's midnight when it is less than `margin_s` away.

    A test of what the patient must do *today* (a daily task turning done) spans a few seconds; when
    the site's day ends inside them the app is right to show the new day's task as due, and the test
    would fail for the clock, not the code. Outside the last minutes of the day this returns at once.
    """
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    local = datetime.now(UTC).astimezone(ZoneInfo(zone))
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    left = (midnight - local).total_seconds()
    if left < margin_s:
        time.sleep(left + 2)
