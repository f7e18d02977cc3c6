"""At most one published measurement per device and stream per interval, the latest of each.

Streaming characteristics notify far more often than vital signs change: a BerryMed
oximeter sends tens of BCI packets a second, PLX Continuous Measurement and Heart Rate
Measurement about one a second. Publishing each would flood ingest and the charts with
near-identical rows, so the gateway keeps, per device and stream, the newest measurement of
each window of `interval_s` and publishes that one when the window closes (the latest,
not the first: it is the freshest state of the patient when the window ends). Readings it
replaces are counted in `superseded`; nothing is replaced silently.

Only streams are limited. Spot-check and indicated measurements (PLX Spot-Check, blood
pressure, temperature, weight, glucose records) are each a reading someone took, and pass
straight through. Values the decoder rejected (a BCI "probe unplugged" packet) never
become measurements, so they neither reach nor replace a held one; the decoder counts them.

The catalogue has no per-profile field for the interval, so it is one gateway setting
(`Gateway(stream_interval_s=...)`) for every stream characteristic below.

Pure bookkeeping, no clock: the caller schedules `release(key)` `interval_s` after an
`offer` that opened a window (the gateway does it with the event loop's timer) and drains
`release_all()` when it stops, so no held reading is lost at shutdown.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

from core.contract import Measurement
from device_profiles import uuids

__all__ = ["DEFAULT_STREAM_INTERVAL_S", "STREAM_CHARACTERISTICS", "StreamRateLimiter"]

DEFAULT_STREAM_INTERVAL_S: Final = 5.0
# Canonical UUIDs of characteristics that stream (notified continuously while measuring).
STREAM_CHARACTERISTICS: Final = frozenset(
    {uuids.PLX_CONTINUOUS_MEASUREMENT, uuids.HEART_RATE_MEASUREMENT, uuids.BERRYMED_BCI_DATA}
)


class StreamRateLimiter:
    """Holds the newest stream measurement per `"<device>/<characteristic>"` until its window closes."""

    def __init__(self, interval_s: float = DEFAULT_STREAM_INTERVAL_S) -> None:
        if not interval_s > 0:
            raise ValueError(f"stream interval must be > 0 seconds, got {interval_s!r}")
        self.interval_s = interval_s
        self.superseded: Counter[str] = Counter()  # readings replaced by a newer one in their window
        self._held: dict[str, Measurement] = {}

    @staticmethod
    def applies_to(measurement: Measurement) -> bool:
        return measurement.characteristic in STREAM_CHARACTERISTICS

    @staticmethod
    def key(measurement: Measurement) -> str:
        return f"{measurement.device_id}/{measurement.characteristic}"

    @property
    def held(self) -> int:
        return len(self._held)

    def offer(self, measurement: Measurement) -> bool:
        """Hold `measurement` as the newest of its window; True when it opened the window."""
        key = self.key(measurement)
        opened = key not in self._held
        if not opened:
            self.superseded[key] += 1
        self._held[key] = measurement
        return opened

    def release(self, key: str) -> Measurement | None:
        """Close the window of `key`: its newest measurement, to publish (None if already released)."""
        return self._held.pop(key, None)

    def release_all(self) -> list[Measurement]:
        held, self._held = list(self._held.values()), {}
        return held
