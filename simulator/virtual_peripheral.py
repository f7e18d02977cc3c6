"""One simulated BLE peripheral for the virtual radio (simulator.virtual_radio).

A `VirtualDevice` advertises a name and service UUIDs while nobody is connected (as the
health devices Hemma uses do), exposes a GATT table, and sends byte-exact notifications or
indications of whatever bytes it is given (`device_profiles.encode` makes conforming ones;
`inject_malformed()` makes broken ones). Readings sent while no collector is subscribed are
kept in the device's memory, like a BP cuff's stored records, and delivered on subscription
(`memory=0`: a streaming device that stores nothing). Writes are stored, logged and handed to
`on_write`, where a subclass reacts as the device model would (simulator.virtual_models: an
A&D monitor that holds its readings until its clock is set, a glucose meter answering the
Record Access Control Point); `fail_writes()` makes the next writes fail with an ATT error.
`gatt_events()` tells what the collector did, in order, for tests to check the sequence.

Pairing, as the device's profile says (`pairing`): "none" and "just_works" devices serve
anyone (a just-works `pair()` bonds without a question). A "passkey" device (a glucose meter:
GLS 1.0 requires a bonded link for its characteristics) bonds only with its own `passkey`; a
wrong one is refused with an authentication error and counted (`pairings_refused`), and until
the link is bonded it refuses subscriptions, reads and writes on its `secured_services` with
ATT "Insufficient Authentication", as a real meter does. A bond is kept across connections
(`bonded`); `forget_bond()` makes it ask again.

Devices may be driven from any thread (every state change is under the device's lock);
values reach the collector through its `VirtualBleakClient`, on the collector's loop.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import NotifyCallback
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import (
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)
from bleak.uuids import normalize_uuid_str

if TYPE_CHECKING:
    from simulator.virtual_radio import VirtualBleakClient

__all__ = ["VirtualCharacteristic", "VirtualDevice", "VirtualService"]


@dataclass(frozen=True, slots=True)
class VirtualCharacteristic:
    uuid: str  # "2A5E" or a 128-bit UUID
    properties: tuple[str, ...]  # GATT properties: "notify", "indicate", "read", "write"


@dataclass(frozen=True, slots=True)
class VirtualService:
    uuid: str
    characteristics: tuple[VirtualCharacteristic, ...]


class VirtualDevice:
    """One simulated BLE peripheral; see the module docstring."""

    def __init__(
        self,
        address: str,
        name: str,
        services: Iterable[VirtualService],
        *,
        advertised_services: Iterable[str] | None = None,
        rssi: int = -62,
        memory: int = 200,
        seed: int = 0,
        pairing: str = "none",
        passkey: str | None = None,
        secured_services: Iterable[str] = (),
    ) -> None:
        if pairing not in ("none", "just_works", "passkey"):
            raise ValueError(f"pairing must be 'none', 'just_works' or 'passkey', not {pairing!r}")
        if (pairing == "passkey") != (passkey is not None):
            raise ValueError("a passkey device needs its passkey, and only a passkey device has one")
        self.address = address
        self.name = name
        self.services = tuple(services)
        advertised = [s.uuid for s in self.services] if advertised_services is None else advertised_services
        self.advertised_services = [normalize_uuid_str(u) for u in advertised]
        self.rssi = rssi
        self.profile_id: str | None = None  # the catalogue profile it was made from (device_from_profile)
        self.pairing = pairing
        self.passkey = passkey
        self.bonded = False
        self.pairings_refused = 0  # pair() with a wrong or missing passkey
        self.security_refusals = 0  # GATT operations refused on an unbonded link
        self.in_range = True
        self.sent = 0  # values handed to a subscribed collector
        self.overwritten = 0  # stored readings lost because the device memory was full (or memory=0)
        self.hold_stored = False  # True: keep readings in memory even with a subscriber (release_stored)
        self.writes: list[tuple[str, bytes]] = []  # (characteristic as in gatt_events, value), in order
        # ("connect", address) or ("read" | "write" | "subscribe" | "send", "2A35"), the newest
        # ones (bounded: the demo runs for days); read it with gatt_events().
        self._gatt_log: deque[tuple[str, str]] = deque(maxlen=10_000)
        self._write_failures: deque[int] = deque()
        self._lock = threading.Lock()
        self._client: VirtualBleakClient | None = None
        self._subscribers: dict[str, NotifyCallback] = {}
        self._values: dict[str, bytes] = {}
        self._stored: deque[tuple[str, bytes]] = deque()
        self._memory = memory
        self._malformed: deque[str] = deque()
        self._rng = random.Random(seed)
        self._chars = {normalize_uuid_str(c.uuid): c for s in self.services for c in s.characteristics}
        secured = {normalize_uuid_str(u) for u in secured_services}
        self._secured = {
            normalize_uuid_str(c.uuid)
            for s in self.services
            if normalize_uuid_str(s.uuid) in secured
            for c in s.characteristics
        }

    def __repr__(self) -> str:
        return f"VirtualDevice({self.address!r}, {self.name!r})"

    # --- what tests and the simulator do --------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._client is not None

    def has_characteristic(self, char_uuid: str) -> bool:
        return normalize_uuid_str(char_uuid) in self._chars

    def subscribed(self, char_uuid: str) -> bool:
        return normalize_uuid_str(char_uuid) in self._subscribers

    def send(self, char_uuid: str, payload: bytes) -> bytes:
        """Notify or indicate `payload` on a characteristic; returns the bytes that went on air.

        When no collector is subscribed the value is stored and sent on subscription.
        """
        key = self._characteristic(char_uuid, ("notify", "indicate")).uuid
        key = normalize_uuid_str(key)
        with self._lock:
            payload = self._maybe_corrupt(bytes(payload))
            callback = self._subscribers.get(key)
            if self.hold_stored or callback is None or not self._deliver(key, callback, payload):
                self._store(key, payload)
        return payload

    def gatt_events(self) -> list[tuple[str, str]]:
        """What the collector did and the device sent, oldest first: ("connect", address),
        ("read" | "write" | "subscribe" | "send", characteristic as "2A35" or a vendor UUID)."""
        with self._lock:
            return list(self._gatt_log)

    def set_value(self, char_uuid: str, payload: bytes) -> None:
        """The value a GATT read of `char_uuid` returns (e.g. Battery Level)."""
        self._values[normalize_uuid_str(self._characteristic(char_uuid, ("read",)).uuid)] = bytes(payload)

    def inject_malformed(self, count: int = 1, kind: str = "truncated") -> None:
        """Corrupt the next `count` sent values: "truncated" (first half) or "garbage" (random bytes)."""
        if kind not in ("truncated", "garbage"):
            raise ValueError(f"kind must be 'truncated' or 'garbage', not {kind!r}")
        self._malformed.extend([kind] * count)

    def fail_writes(self, count: int = 1, code: int = BleakGATTProtocolErrorCode.UNLIKELY_ERROR) -> None:
        """The next `count` writes fail with ATT error `code` (bleak raises BleakGATTProtocolError)."""
        self._write_failures.extend([int(code)] * count)

    def forget_bond(self) -> None:
        """Lose the bond (a reset, or the meter paired with another phone): it asks for the passkey again."""
        with self._lock:
            self.bonded = False

    def release_stored(self) -> None:
        """Stop holding readings and send the stored ones on the characteristics subscribed now."""
        with self._lock:
            self.hold_stored = False
            for key, callback in list(self._subscribers.items()):
                self._deliver_backlog(key, callback)

    def drop_connection(self) -> None:
        """Link loss (walked out of range for a moment): the collector sees an unsolicited disconnect."""
        with self._lock:
            client, self._client = self._client, None
            self._subscribers.clear()
        if client is not None:
            client._lost()

    def leave_range(self) -> None:
        self.in_range = False
        self.drop_connection()

    def enter_range(self) -> None:
        self.in_range = True

    # --- what a device model overrides ----------------------------------------------------------

    def on_connect(self) -> None:
        """A collector connected (called before it sees the GATT table)."""

    def on_write(self, char_uuid: str, value: bytes) -> None:
        """A collector wrote `value` (char_uuid as in gatt_events); raise BleakGATTProtocolError to
        refuse it, as the device would with an ATT error."""

    # --- what the fake backend calls ----------------------------------------------------------

    def _characteristic(self, char_uuid: str, modes: tuple[str, ...]) -> VirtualCharacteristic:
        char = self._chars.get(normalize_uuid_str(char_uuid))
        if char is None:
            raise KeyError(f"{self} has no characteristic {char_uuid}")
        if not set(modes) & set(char.properties):
            raise ValueError(f"{self}: characteristic {char_uuid} does not support {'/'.join(modes)}")
        return char

    def _store(self, key: str, payload: bytes) -> None:
        if not self._memory:
            self.overwritten += 1
            return
        if len(self._stored) >= self._memory:
            self._stored.popleft()
            self.overwritten += 1
        self._stored.append((key, payload))

    def _deliver(self, key: str, callback: NotifyCallback, payload: bytes) -> bool:
        if self._client is None or not self._client._deliver(callback, payload):
            return False
        self.sent += 1
        self._gatt_log.append(("send", _short(key)))
        return True

    def _deliver_backlog(self, key: str, callback: NotifyCallback) -> None:
        backlog = [p for k, p in self._stored if k == key]
        self._stored = deque((k, p) for k, p in self._stored if k != key)
        for payload in backlog:
            self._deliver(key, callback, payload)

    def _maybe_corrupt(self, payload: bytes) -> bytes:
        if not self._malformed:
            return payload
        kind = self._malformed.popleft()
        if kind == "truncated":
            return payload[: len(payload) // 2]
        return self._rng.randbytes(max(1, len(payload)))

    def _attach(self, client: VirtualBleakClient) -> None:
        with self._lock:
            if not self.in_range:
                raise BleakDeviceNotFoundError(self.address, f"{self.address} is out of range")
            if self._client is not None and self._client is not client:
                raise BleakError(f"{self.address} is already connected to another central")
            self._client = client
            self._gatt_log.append(("connect", self.address))
        self.on_connect()

    def _pair(self, client: VirtualBleakClient, passkey: str | None) -> None:
        with self._lock:
            if self._client is not client:
                raise BleakError("Not connected")
            self._gatt_log.append(("pair", self.address))
            if self.pairing == "passkey" and passkey != self.passkey:
                self.bonded = False
                self.pairings_refused += 1
                raise BleakError(f"{self.address}: pairing refused: authentication failed")
            self.bonded = True

    def _check_security(self, key: str) -> None:
        """Under the lock: an unbonded link may not touch a secured characteristic."""
        if key in self._secured and not self.bonded:
            self.security_refusals += 1
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHENTICATION)

    def _detach(self, client: VirtualBleakClient) -> None:
        with self._lock:
            if self._client is client:
                self._client = None
                self._subscribers.clear()

    def _subscribe(self, client: VirtualBleakClient, key: str, callback: NotifyCallback) -> None:
        with self._lock:
            if self._client is not client:
                raise BleakError("Not connected")
            self._check_security(key)
            self._subscribers[key] = callback
            self._gatt_log.append(("subscribe", _short(key)))
            if not self.hold_stored:
                self._deliver_backlog(key, callback)

    def _unsubscribe(self, key: str) -> None:
        with self._lock:
            self._subscribers.pop(key, None)

    def _read(self, key: str) -> bytes:
        with self._lock:
            self._check_security(key)
            if key not in self._values:
                raise BleakError(f"{self.address}: characteristic {key} has no value yet")
            self._gatt_log.append(("read", _short(key)))
            return self._values[key]

    def _write(self, client: VirtualBleakClient, key: str, value: bytes) -> None:
        with self._lock:
            if self._client is not client:
                raise BleakError("Not connected")
            if "write" not in self._chars[key].properties:
                raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.WRITE_NOT_PERMITTED)
            self._check_security(key)
            if self._write_failures:
                raise BleakGATTProtocolError(self._write_failures.popleft())
            self._gatt_log.append(("write", _short(key)))
            self.writes.append((_short(key), value))
            if "read" in self._chars[key].properties:
                self._values[key] = value
        self.on_write(_short(key), value)  # outside the lock: the model may send in answer

    def _gatt(self) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        handles = itertools.count(1)
        for vservice in self.services:
            service = BleakGATTService(None, next(handles), normalize_uuid_str(vservice.uuid))
            collection.add_service(service)
            for vchar in vservice.characteristics:
                collection.add_characteristic(
                    BleakGATTCharacteristic(
                        None,
                        next(handles),
                        normalize_uuid_str(vchar.uuid),
                        list(vchar.properties),  # type: ignore[arg-type]
                        lambda: 20,
                        service,
                    )
                )
        return collection


_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"


def _short(key: str) -> str:
    """ "2A08" for a SIG characteristic's long form, a vendor UUID unchanged: how gatt_events names them."""
    if key.startswith("0000") and key.endswith(_BASE_SUFFIX):
        return key[4:8].upper()
    return key
