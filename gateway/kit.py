"""The kit is the patient's own: which devices the gateway may read (issue 10).

A `KitConfig` (core.contract, downlink on the kit's retained config topic) lists the kit's
devices by address and catalogue profile. `KitRoster` holds the applied one and answers, for
each recognised advertisement, whether the gateway may connect:

* an address in the config whose catalogue match equals the listed profile: yes;
* any other compatible device (a neighbour's scale through the wall, or a listed address that
  advertises as another profile): never connected to, never read; remembered as an
  `UnknownDevice` fact (the 8 most recently seen) for the status;
* a listed device the gateway cannot serve is refused, counted per `"<address>/<reason>"` and
  logged once per applied config: a profile id the catalogue lacks (`unknown_profile`), a
  passkey profile without a passkey in the config (`no_passkey`), or a passkey profile on a
  Bluetooth backend that cannot enter a passkey (`passkey_unsupported`, see gateway.ble).

Until a kit has any configuration (a new kit before the server has published one, and no
config saved locally) the roster lists no devices: the gateway reads nothing and reports
every compatible device in range as unknown. Reading whatever is in range would record a
neighbour's values as this patient's, which is worse than a delay until staff register the kit.

Addresses are compared case-insensitively (kept upper-case, as the contract writes them). A
device using resolvable private addresses is listed by its identity address; BlueZ reports
that address once the device is bonded, which is what the gateway sees.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Sequence
from datetime import datetime, timedelta

from core.contract import MAX_UNKNOWN_DEVICES, KitConfig, KitDevice, UnknownDevice
from device_profiles.catalogue import Profile

log = logging.getLogger(__name__)

__all__ = ["KitRoster"]

# An unknown device advertises many times a second; its `seen_at` need not be finer than this.
_SEEN_RESOLUTION = timedelta(seconds=1)


class KitRoster:
    """The applied kit configuration and the compatible devices in range that are not the kit's."""

    def __init__(self, profiles: Sequence[Profile], *, passkey_entry: bool) -> None:
        self._profiles = {p.id: p for p in profiles}
        self.passkey_entry = passkey_entry
        self.config: KitConfig | None = None
        self._devices: dict[str, KitDevice] = {}
        self._refused_now: dict[str, str] = {}  # address -> reason, for the config applied now
        self.refused: Counter[str] = Counter()  # "<address>/<reason>", once per config applied
        self.mismatches: Counter[str] = Counter()  # listed address advertising another profile
        self._mismatch_logged: set[str] = set()
        self._unknown: OrderedDict[str, UnknownDevice] = OrderedDict()  # oldest seen first
        # Replaced, never mutated: the publisher thread reads it for the status.
        self.unknown_snapshot: tuple[UnknownDevice, ...] = ()

    @property
    def version(self) -> int | None:
        return self.config.version if self.config is not None else None

    @property
    def addresses(self) -> frozenset[str]:
        """The upper-case addresses the gateway may connect to now."""
        return frozenset(self._devices)

    def apply(self, config: KitConfig) -> None:
        """Make `config` the kit's; the caller checked that its version is higher."""
        devices: dict[str, KitDevice] = {}
        refused: dict[str, str] = {}
        for device in config.devices:
            address = device.address.upper()
            reason = self._refusal(device)
            if reason is None:
                devices[address] = device
                continue
            refused[address] = reason
            self.refused[f"{address}/{reason}"] += 1
            log.error("kit device %s (%s) refused: %s", address, device.profile, _REFUSAL_ADVICE[reason])
        self.config = config
        self._devices = devices
        self._refused_now = refused
        self._mismatch_logged.clear()
        for address in list(self._unknown):
            if address in devices or address in refused:
                del self._unknown[address]
        self.unknown_snapshot = tuple(self._unknown.values())

    def device_for(self, address: str, profile: Profile) -> KitDevice | None:
        """The kit device to connect to at `address` matched as `profile`; None: not the kit's."""
        key = address.upper()
        device = self._devices.get(key)
        if device is not None and device.profile == profile.id:
            return device
        if device is not None and key not in self._mismatch_logged:
            self._mismatch_logged.add(key)
            self.mismatches[key] += 1
            log.warning(
                "kit device %s is listed as %s but advertises as %s; not connecting",
                key,
                device.profile,
                profile.id,
            )
        return None

    def device_for_address(self, address: str) -> KitDevice | None:
        """The kit device listed at `address`, whatever it advertises as."""
        return self._devices.get(address.upper())

    def is_refused(self, address: str) -> bool:
        return address.upper() in self._refused_now

    def saw_unknown(self, address: str, profile: Profile, now: datetime) -> bool:
        """Remember a compatible device that is not the kit's; True when it is new to the list."""
        key = address.upper()
        known = self._unknown.get(key)
        if known is not None and known.profile == profile.id and now - known.seen_at < _SEEN_RESOLUTION:
            return False
        self._unknown.pop(key, None)
        self._unknown[key] = UnknownDevice(address=key, profile=profile.id, seen_at=now)
        while len(self._unknown) > MAX_UNKNOWN_DEVICES:
            self._unknown.popitem(last=False)
        self.unknown_snapshot = tuple(self._unknown.values())
        if known is None:
            log.info("compatible device %s (%s) in range is not the kit's; not connecting", key, profile.id)
        return known is None

    def _refusal(self, device: KitDevice) -> str | None:
        profile = self._profiles.get(device.profile)
        if profile is None:
            return "unknown_profile"
        if profile.pairing == "passkey":
            if device.passkey is None:
                return "no_passkey"
            if not self.passkey_entry:
                return "passkey_unsupported"
        return None


_REFUSAL_ADVICE = {
    "unknown_profile": "this gateway's device catalogue has no such profile; update the gateway software",
    "no_passkey": "its profile pairs with a passkey and the kit configuration gives none; "
    "register the device's passkey",
    "passkey_unsupported": "its profile pairs with a passkey, which this gateway's Bluetooth backend "
    "cannot enter (bleak has no BlueZ pairing agent and the gateway implements none yet)",
}
