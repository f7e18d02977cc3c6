"""What the gateway tells ingest about its devices, and when: the `devices` of its status.

The latest Battery Level (0x2A19) of every device is kept with the time the gateway read it
(devices send it on every connection; see the profiles' "read" characteristics). The
publisher puts a snapshot into every retained "online" status: at connect, every
`status_interval_s` as a heartbeat, and promptly when a level has moved by
BATTERY_STEP_PERCENT or more from the level last published for that device, or crossed
BATTERY_LOW_PERCENT (the alert engine's battery_low limit). A device's first level is always
news.

Thread-safe: the BLE loop records levels, the publisher thread takes snapshots.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from pydantic import ValidationError

from core.contract import MAX_DEVICES_PER_STATUS, DeviceStatus

log = logging.getLogger(__name__)

BATTERY_LOW_PERCENT = 20  # battery_low fires at or below this (alerts.missing)
BATTERY_STEP_PERCENT = 5  # a change this large is published at once
# Devices remembered at most (addresses can rotate); the status carries the newest
# MAX_DEVICES_PER_STATUS of them.
_KEEP_DEVICES = 4 * MAX_DEVICES_PER_STATUS


def battery_change_matters(published: int | None, level: int) -> bool:
    """Whether `level` is worth a status now, given the level last published (None: never)."""
    if published is None:
        return True
    if abs(level - published) >= BATTERY_STEP_PERCENT:
        return True
    return (level <= BATTERY_LOW_PERCENT) != (published <= BATTERY_LOW_PERCENT)


class DeviceFacts:
    """The gateway's latest facts per device; see the module docstring."""

    def __init__(self, max_devices: int = MAX_DEVICES_PER_STATUS) -> None:
        if not 0 < max_devices <= MAX_DEVICES_PER_STATUS:
            raise ValueError(f"max_devices must be 1..{MAX_DEVICES_PER_STATUS}, got {max_devices}")
        self.max_devices = max_devices
        self._lock = threading.Lock()
        self._battery: dict[str, tuple[int, datetime]] = {}
        self._published: dict[str, int] = {}

    def record_battery(self, device_id: str, percent: int, at: datetime) -> bool:
        """Remember a device's level read at `at`; True when it should be published promptly."""
        with self._lock:
            self._battery[device_id] = (percent, at)
            if len(self._battery) > _KEEP_DEVICES:
                oldest = min(self._battery, key=lambda d: self._battery[d][1])
                del self._battery[oldest]
                self._published.pop(oldest, None)
            return battery_change_matters(self._published.get(device_id), percent)

    def battery(self) -> dict[str, tuple[int, datetime]]:
        with self._lock:
            return dict(self._battery)

    def snapshot(self) -> tuple[DeviceStatus, ...]:
        """The devices for a status about to be published (the most recently read ones, by id).

        What it returns counts as published: later changes are measured against it.
        """
        with self._lock:
            newest = sorted(self._battery.items(), key=lambda item: item[1][1], reverse=True)
            chosen = newest[: self.max_devices]
            for device_id, (percent, _) in chosen:
                self._published[device_id] = percent
        facts = []
        for device_id, (percent, at) in sorted(chosen):
            try:
                facts.append(DeviceStatus(device_id=device_id, battery_percent=percent, battery_at=at))
            except ValidationError:  # an address the contract cannot carry; its readings fail too
                log.warning("device %s: its battery level does not fit the wire contract", device_id)
        return tuple(facts)
