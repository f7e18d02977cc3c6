"""The BLE side of the gateway: scan, recognise devices, keep them connected, hand over values.

Everything goes through bleak's public `BleakScanner` and `BleakClient`; which backend they
drive (BlueZ on a Pi, or `simulator.virtual_radio` in tests and the demo) is the only thing
that changes. Measurement values are handed to `on_value(address, characteristic, payload)`
on the event loop, undecoded: decoding is not this module's business.

Health devices advertise when they have something to send and accept one central at a
time, so the scanner runs all along and each recognised device gets a task that connects,
runs its profile's connect steps (`gateway.connect_steps`: set the clock, read features,
subscribe, ask for stored records), and waits for the link to drop; then the device
advertises again and is reconnected. Failed connects and failed required steps back off
per device. Connects are serialised because BlueZ handles concurrent connection attempts
badly; the steps after them are not (a meter's record transfer must not hold up the rest).

Only the kit's own devices (gateway.kit): an advertisement is served only when its address is
in the applied `KitConfig` with the profile it matches; any other compatible device becomes an
`UnknownDevice` fact and is never connected to. A new config (`apply_config`) disconnects the
devices it drops; the ones it adds are connected at their next advertisement. Without any
config nothing is read.

Pairing: for a profile whose `pairing` is "just_works" or "passkey" the gateway pairs (bonds)
right after connecting, before the connect steps; with the kit device's passkey for "passkey".
bleak's `BleakClient.pair()` does just-works on BlueZ; entering a passkey needs a BlueZ agent,
which bleak does not provide and this gateway does not implement yet, so a backend says whether
its `pair()` takes a `passkey` (`BleBackend.passkey_entry`: the virtual radio's does, BlueZ's
does not) and a passkey device on a backend without it is refused and counted (gateway.kit),
never connected unpaired. A failed pairing is counted per address and retried with back-off.

Device clocks: the gateway's clock (`clock`, aware) shown in the devices' zone (`device_tz`),
as the naive local wall time the Date Time and Current Time characteristics carry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakError

from core.contract import KitConfig, KitDevice
from device_profiles import DeviceProfilesError
from device_profiles.catalogue import Profile, match_profile
from gateway.connect_steps import ConnectStepCounters, ConnectStepFailed, DeviceLink, OnValue
from gateway.errors import GatewayError
from gateway.kit import KitRoster

log = logging.getLogger(__name__)

__all__ = ["BleBackend", "BleCentral", "OnValue", "PairingFailed", "device_local_time"]


@dataclass(frozen=True, slots=True)
class BleBackend:
    """Which bleak backend classes the gateway uses; None means bleak's platform backend (BlueZ on a Pi)."""

    scanner: type[BaseBleakScanner] | None = None
    client: type[BaseBleakClient] | None = None
    # Whether the client's pair() takes `passkey=` (six digits) and enters it. bleak's BlueZ backend
    # does not (a passkey needs a BlueZ agent): passkey devices are then refused, not read unpaired.
    passkey_entry: bool = False


class PairingFailed(GatewayError):
    """Pairing (bonding) with a kit device failed or was refused: wrong passkey, or the device said no."""


_RETRY_MIN_S = 1.0
_RETRY_MAX_S = 60.0
_SCANNER_RETRY_S = 10.0
_RACP_TIMEOUT_S = 30.0  # GLS leaves it open; meters with hundreds of records need seconds


def device_local_time(now: datetime, device_tz: tzinfo) -> datetime:
    """What a device's clock should show at `now` (aware): naive wall time in `device_tz`."""
    if now.tzinfo is None:
        raise ValueError("the gateway clock must return an aware datetime (e.g. datetime.now(UTC))")
    return now.astimezone(device_tz).replace(tzinfo=None)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class BleCentral:
    """Scans and keeps one connection per recognised device; see the module docstring."""

    def __init__(
        self,
        backend: BleBackend,
        profiles: Sequence[Profile],
        on_value: OnValue,
        *,
        device_tz: tzinfo = UTC,
        clock: Callable[[], datetime] = _utc_now,
        connect_timeout_s: float = 20.0,
        retry_min_s: float = _RETRY_MIN_S,
        racp_timeout_s: float = _RACP_TIMEOUT_S,
        config: KitConfig | None = None,
        on_unknown: Callable[[], None] | None = None,
    ) -> None:
        self.backend = backend
        self.profiles = tuple(profiles)
        self.on_value = on_value
        self.device_tz = device_tz
        self.clock = clock
        self.connect_timeout_s = connect_timeout_s
        self.retry_min_s = retry_min_s
        self.racp_timeout_s = racp_timeout_s
        self.steps = ConnectStepCounters()
        self.connects = 0
        self.connect_failures = 0
        self.link_losses = 0
        self.scanner_failures = 0
        self.pairing_failures: Counter[str] = Counter()  # per address
        self.removed_disconnects = 0  # links ended because a new kit config dropped their device
        self.kit = KitRoster(self.profiles, passkey_entry=backend.passkey_entry)
        if config is not None:
            self.kit.apply(config)
        # Called on the loop when a compatible device that is not the kit's is first seen.
        self.on_unknown = on_unknown
        self._links: dict[str, asyncio.Task[None]] = {}
        # Remembered per advertisement content: matching is a regex search per profile.
        self._profile_cache: dict[tuple[str, str | None, tuple[str, ...]], Profile | None] = {}
        self._retry_at: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._connect_lock = asyncio.Lock()
        self._stop: asyncio.Event | None = None

    @property
    def connected_devices(self) -> list[str]:
        return sorted(self._links)

    def stats(self) -> dict[str, object]:
        return {
            "ble_devices_connected": len(self._links),
            "ble_connects": self.connects,
            "ble_connect_failures": self.connect_failures,
            "ble_link_losses": self.link_losses,
            "ble_scanner_failures": self.scanner_failures,
            "ble_pairing_failures": dict(self.pairing_failures),
            "kit_config_version": self.kit.version,
            "kit_devices_refused": dict(self.kit.refused),
            "kit_profile_mismatches": dict(self.kit.mismatches),
            "kit_removed_disconnects": self.removed_disconnects,
            "unknown_devices": len(self.kit.unknown_snapshot),
            **self.steps.as_dict(),
        }

    def device_clock(self) -> datetime:
        """The time to write to a device's clock now."""
        return device_local_time(self.clock(), self.device_tz)

    def apply_config(self, config: KitConfig) -> None:
        """Make `config` the kit's (on the loop; the caller checked its version is higher): devices it
        no longer lists, or lists differently, are disconnected; added ones connect when they advertise."""
        before = {address: self.kit.device_for_address(address) for address in self._links}
        self.kit.apply(config)
        for address, task in list(self._links.items()):
            if self.kit.device_for_address(address) != before.get(address):
                self.removed_disconnects += 1
                log.info("device %s is no longer the kit's as it was; disconnecting", address)
                task.cancel()
        self._retry_at.clear()  # a device refused before (e.g. a wrong passkey) may be fixed now
        self._failures.clear()

    async def run(self, stop: asyncio.Event) -> None:
        """Scan and serve devices until `stop` is set; restarts the scanner if the adapter fails."""
        self._stop = stop
        try:
            while not stop.is_set():
                scanner = BleakScanner(
                    detection_callback=self._on_advertisement, backend=self.backend.scanner
                )
                try:
                    await scanner.start()
                except Exception as exc:  # BleakError, OSError, D-Bus errors: the adapter is not usable now
                    self.scanner_failures += 1
                    log.error(
                        "cannot scan for Bluetooth devices: %s; is the adapter up (bluetoothctl power on)? "
                        "retrying in %.0f s",
                        exc,
                        _SCANNER_RETRY_S,
                    )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), _SCANNER_RETRY_S)
                    continue
                try:
                    await stop.wait()
                finally:
                    with contextlib.suppress(BleakError, OSError):
                        await scanner.stop()
        finally:
            links = list(self._links.values())
            for task in links:
                task.cancel()
            await asyncio.gather(*links, return_exceptions=True)

    # --- advertisements -------------------------------------------------------------------------

    def _on_advertisement(self, device: BLEDevice, adv: AdvertisementData) -> None:
        address = device.address
        if address in self._links or (self._stop is not None and self._stop.is_set()):
            return
        if time.monotonic() < self._retry_at.get(address, 0.0):
            return
        profile = self._profile_for(address, adv)
        if profile is None or self.kit.is_refused(address):
            return
        kit_device = self.kit.device_for(address, profile)
        if kit_device is None:  # a compatible device, not the kit's: a fact, never a connection
            if self.kit.saw_unknown(address, profile, self.clock()) and self.on_unknown is not None:
                self.on_unknown()
            return
        task = asyncio.get_running_loop().create_task(
            self._serve(device, profile, kit_device), name=f"ble-{address}"
        )
        self._links[address] = task
        task.add_done_callback(lambda _t: self._links.pop(address, None))

    def _profile_for(self, address: str, adv: AdvertisementData) -> Profile | None:
        key = (address, adv.local_name, tuple(adv.service_uuids))
        if key not in self._profile_cache:
            if len(self._profile_cache) > 4096:  # neighbours' phones rotate random addresses
                self._profile_cache.clear()
            try:
                profile = match_profile(self.profiles, adv.local_name, adv.service_uuids)
            except DeviceProfilesError:
                profile = None  # a service UUID that is not a UUID: not one of ours
            self._profile_cache[key] = profile
            if profile is not None:
                log.info(
                    "device %s recognised as %s %s (profile %s)",
                    address,
                    profile.manufacturer,
                    profile.model,
                    profile.id,
                )
        return self._profile_cache[key]

    # --- one device -----------------------------------------------------------------------------

    async def _serve(self, device: BLEDevice, profile: Profile, kit_device: KitDevice) -> None:
        address = device.address
        lost = asyncio.Event()
        client = BleakClient(
            device,
            disconnected_callback=lambda _c: lost.set(),
            timeout=self.connect_timeout_s,
            backend=self.backend.client,
        )
        try:
            async with self._connect_lock:
                await asyncio.wait_for(client.connect(), self.connect_timeout_s)
            self.connects += 1
            if profile.pairing != "none":
                await self._pair(client, profile, kit_device)
            link = DeviceLink(
                client,
                profile,
                address,
                on_value=self.on_value,
                counters=self.steps,
                device_clock=self.device_clock,
                racp_timeout_s=self.racp_timeout_s,
            )
            await link.run()
            self._failures.pop(address, None)
            log.info("device %s connected (%s)", address, profile.id)
            if client.is_connected:
                # The stop as well as the link: on Python 3.11 asyncio.wait_for can swallow the
                # cancellation that run() sends at stop (CPython gh-86296), and a link waiting only
                # for its device would then keep the gateway from stopping.
                await _first_of(lost, self._stop)
            if self._stop is not None and self._stop.is_set():
                return
            self.link_losses += 1
            log.info("device %s disconnected; will reconnect when it advertises", address)
        except PairingFailed as exc:  # counted in _pair; nothing was read
            delay = self._retry_later(address)
            log.warning("device %s (%s): %s; retry in %.0f s", address, profile.id, exc, delay)
        except ConnectStepFailed as exc:  # counted by the link; the device keeps its readings meanwhile
            delay = self._retry_later(address)
            log.warning("device %s (%s): %s; reconnecting in %.0f s", address, profile.id, exc, delay)
        except Exception as exc:  # BleakError, OSError, TimeoutError, or a backend surprise: retry later
            self.connect_failures += 1
            delay = self._retry_later(address)
            log.warning(
                "device %s (%s): connection failed: %s; retry in %.0f s (interference or range? "
                "move the device closer to the gateway)",
                address,
                profile.id,
                exc or type(exc).__name__,
                delay,
            )
        finally:
            if client.is_connected:
                with contextlib.suppress(BleakError, OSError, TimeoutError):
                    await asyncio.wait_for(client.disconnect(), 5.0)

    async def _pair(self, client: BleakClient, profile: Profile, kit_device: KitDevice) -> None:
        """Bond before the connect steps; a device already bonded answers at once."""
        try:
            if profile.pairing == "passkey":
                # KitRoster refused the device unless there is a passkey and the backend enters it.
                assert kit_device.passkey is not None and self.backend.passkey_entry
                await asyncio.wait_for(client.pair(passkey=kit_device.passkey), self.connect_timeout_s)
            else:
                await asyncio.wait_for(client.pair(), self.connect_timeout_s)
        except (BleakError, OSError, TimeoutError) as exc:
            self.pairing_failures[kit_device.address] += 1
            reason = str(exc) or type(exc).__name__
            hint = "; is the kit's passkey for it right?" if profile.pairing == "passkey" else ""
            raise PairingFailed(f"pairing ({profile.pairing}) failed: {reason}{hint}") from exc
        log.info("device %s paired (%s)", kit_device.address, profile.pairing)

    def _retry_later(self, address: str) -> float:
        failures = self._failures[address] = self._failures.get(address, 0) + 1
        delay = min(self.retry_min_s * 2 ** (failures - 1), _RETRY_MAX_S)
        self._retry_at[address] = time.monotonic() + delay
        return delay


async def _first_of(*events: asyncio.Event | None) -> None:
    """Wait until any of `events` is set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events if e is not None]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
