"""A fake bleak backend: virtual BLE devices on a virtual radio, for tests and the demo.

bleak lets a caller replace its platform backend: `BleakScanner(..., backend=cls)` and
`BleakClient(..., backend=cls)` take any subclass of `BaseBleakScanner` / `BaseBleakClient`.
`VirtualRadio` builds such subclasses bound to itself (`radio.backend`), so the gateway runs
its real code path (bleak's `BleakScanner` and `BleakClient`, characteristic lookup, notify
callbacks) and only the radio underneath is simulated.

A `VirtualDevice` advertises a name and service UUIDs while nobody is connected (as the
health devices Hemma uses do), exposes a GATT table, and sends byte-exact notifications or
indications of whatever bytes it is given (`device_profiles.encode` makes conforming ones;
`inject_malformed()` makes broken ones). Readings sent while no collector is subscribed are
kept in the device's memory, like a BP cuff's stored records, and delivered on subscription.

Devices may be driven from any thread; callbacks reach the gateway on its own event loop
via `call_soon_threadsafe`, as a real backend would deliver them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakCharacteristicNotFoundError, BleakDeviceNotFoundError, BleakError
from bleak.uuids import normalize_uuid_str


@dataclass(frozen=True, slots=True)
class BleBackend:
    """Which bleak backend classes the gateway uses; None means bleak's platform backend (BlueZ on a Pi)."""

    scanner: type[BaseBleakScanner] | None = None
    client: type[BaseBleakClient] | None = None


@dataclass(frozen=True, slots=True)
class VirtualCharacteristic:
    uuid: str  # "2A5E" or a 128-bit UUID
    properties: tuple[str, ...]  # GATT properties: "notify", "indicate", "read"


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
    ) -> None:
        self.address = address
        self.name = name
        self.services = tuple(services)
        advertised = [s.uuid for s in self.services] if advertised_services is None else advertised_services
        self.advertised_services = [normalize_uuid_str(u) for u in advertised]
        self.rssi = rssi
        self.in_range = True
        self.sent = 0  # values handed to a subscribed collector
        self.overwritten = 0  # stored readings lost because the device memory was full
        self._lock = threading.Lock()
        self._client: VirtualBleakClient | None = None
        self._subscribers: dict[str, NotifyCallback] = {}
        self._values: dict[str, bytes] = {}
        self._stored: deque[tuple[str, bytes]] = deque()
        self._memory = memory
        self._malformed: deque[str] = deque()
        self._rng = random.Random(seed)
        self._chars = {normalize_uuid_str(c.uuid): c for s in self.services for c in s.characteristics}

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
            if callback is None or self._client is None or not self._client._deliver(callback, payload):
                if len(self._stored) >= self._memory:
                    self._stored.popleft()
                    self.overwritten += 1
                self._stored.append((key, payload))
            else:
                self.sent += 1
        return payload

    def set_value(self, char_uuid: str, payload: bytes) -> None:
        """The value a GATT read of `char_uuid` returns (e.g. Battery Level)."""
        self._values[normalize_uuid_str(self._characteristic(char_uuid, ("read",)).uuid)] = bytes(payload)

    def inject_malformed(self, count: int = 1, kind: str = "truncated") -> None:
        """Corrupt the next `count` sent values: "truncated" (first half) or "garbage" (random bytes)."""
        if kind not in ("truncated", "garbage"):
            raise ValueError(f"kind must be 'truncated' or 'garbage', not {kind!r}")
        self._malformed.extend([kind] * count)

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

    # --- what the fake backend calls ----------------------------------------------------------

    def _characteristic(self, char_uuid: str, modes: tuple[str, ...]) -> VirtualCharacteristic:
        char = self._chars.get(normalize_uuid_str(char_uuid))
        if char is None:
            raise KeyError(f"{self} has no characteristic {char_uuid}")
        if not set(modes) & set(char.properties):
            raise ValueError(f"{self}: characteristic {char_uuid} does not support {'/'.join(modes)}")
        return char

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

    def _detach(self, client: VirtualBleakClient) -> None:
        with self._lock:
            if self._client is client:
                self._client = None
                self._subscribers.clear()

    def _subscribe(self, client: VirtualBleakClient, key: str, callback: NotifyCallback) -> None:
        with self._lock:
            if self._client is not client:
                raise BleakError("Not connected")
            self._subscribers[key] = callback
            backlog = [p for k, p in self._stored if k == key]
            self._stored = deque((k, p) for k, p in self._stored if k != key)
            for payload in backlog:
                if client._deliver(callback, payload):
                    self.sent += 1

    def _unsubscribe(self, key: str) -> None:
        with self._lock:
            self._subscribers.pop(key, None)

    def _read(self, key: str) -> bytes:
        if key not in self._values:
            raise BleakError(f"{self.address}: characteristic {key} has no value yet")
        return self._values[key]

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


class VirtualRadio:
    """The air around one home: devices that advertise and accept connections."""

    def __init__(self, *, advertise_interval_s: float = 0.05, connect_latency_s: float = 0.0) -> None:
        self.advertise_interval_s = advertise_interval_s
        self.connect_latency_s = connect_latency_s
        self._devices: dict[str, VirtualDevice] = {}
        scanner = type("VirtualBleakScanner", (VirtualBleakScanner,), {"radio": self})
        client = type("VirtualBleakClient", (VirtualBleakClient,), {"radio": self})
        self.backend = BleBackend(scanner=scanner, client=client)

    def add(self, device: VirtualDevice) -> VirtualDevice:
        self._devices[device.address.upper()] = device
        return device

    def remove(self, address: str) -> None:
        device = self._devices.pop(address.upper(), None)
        if device is not None:
            device.drop_connection()

    def device(self, address: str) -> VirtualDevice:
        device = self._devices.get(address.upper())
        if device is None or not device.in_range:
            raise BleakDeviceNotFoundError(address, f"device {address} was not found")
        return device

    def advertising(self) -> list[VirtualDevice]:
        return [d for d in list(self._devices.values()) if d.in_range and not d.connected]


class VirtualBleakScanner(BaseBleakScanner):
    """Reports an advertisement from every advertising device on the radio each interval."""

    radio: ClassVar[VirtualRadio]

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.seen_devices = {}
        self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        while True:
            for device in self.radio.advertising():
                adv = AdvertisementData(
                    local_name=device.name,
                    manufacturer_data={},
                    service_data={},
                    service_uuids=list(device.advertised_services),
                    tx_power=None,
                    rssi=device.rssi,
                    platform_data=(),
                )
                if self.is_allowed_uuid(adv.service_uuids):
                    ble_device = self.create_or_update_device(
                        device.address, device.address, device.name, None, adv
                    )
                    self.call_detection_callbacks(ble_device, adv)
            await asyncio.sleep(self.radio.advertise_interval_s)


class VirtualBleakClient(BaseBleakClient):
    """A GATT client connection to a `VirtualDevice`."""

    radio: ClassVar[VirtualRadio]

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout)
        self._device: VirtualDevice | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def name(self) -> str:
        return self._device.name if self._device else self.address

    @property
    def mtu_size(self) -> int:
        return 23

    @property
    def is_connected(self) -> bool:
        return self._device is not None and self._device._client is self

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        device = self.radio.device(self.address)
        if self.radio.connect_latency_s:
            await asyncio.sleep(self.radio.connect_latency_s)
        self._loop = asyncio.get_running_loop()
        device._attach(self)
        self._device = device
        self.services = device._gatt()

    async def disconnect(self) -> None:
        if self._device is not None:
            self._device._detach(self)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def unpair(self) -> None:
        return None

    def _connected_device(self) -> VirtualDevice:
        if not self.is_connected or self._device is None:
            raise BleakError("Not connected")
        return self._device

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, **kwargs: Any) -> bytearray:
        return bytearray(self._connected_device()._read(characteristic.uuid))

    async def read_gatt_descriptor(self, descriptor: Any, **kwargs: Any) -> bytearray:
        raise BleakError("virtual devices have no readable descriptors")

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        raise BleakCharacteristicNotFoundError(characteristic.uuid)

    async def write_gatt_descriptor(self, descriptor: Any, data: Any) -> None:
        raise BleakError("virtual devices have no writable descriptors")

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        device = self._connected_device()
        if not {"notify", "indicate"} & set(characteristic.properties):
            raise BleakError(f"characteristic {characteristic.uuid} does not notify or indicate")
        device._subscribe(self, characteristic.uuid, callback)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        self._connected_device()._unsubscribe(characteristic.uuid)

    # --- called by the device, from any thread ----------------------------------------------------

    def _deliver(self, callback: NotifyCallback, payload: bytes) -> bool:
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(callback, bytearray(payload))
        except RuntimeError:  # the loop closed between the check and the call
            return False
        return True

    def _lost(self) -> None:
        loop, callback = self._loop, self._disconnected_callback
        if loop is not None and callback is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(callback)
