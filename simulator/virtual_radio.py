"""A fake bleak backend: virtual BLE devices on a virtual radio, for tests and the demo.

bleak lets a caller replace its platform backend: `BleakScanner(..., backend=cls)` and
`BleakClient(..., backend=cls)` take any subclass of `BaseBleakScanner` / `BaseBleakClient`.
`VirtualRadio` builds such subclasses bound to itself (`radio.backend`), so the gateway runs
its real code path (bleak's `BleakScanner` and `BleakClient`, characteristic lookup, notify
callbacks, writes) and only the radio underneath is simulated. The devices on it are
`VirtualDevice`s (simulator.virtual_peripheral, re-exported here).

Devices may be driven from any thread; callbacks reach the gateway on its own event loop
via `call_soon_threadsafe`, as a real backend would deliver them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.exc import BleakDeviceNotFoundError, BleakError

from gateway.ble import BleBackend
from simulator.virtual_peripheral import VirtualCharacteristic, VirtualDevice, VirtualService

D = TypeVar("D", bound=VirtualDevice)

__all__ = [
    "BleBackend",
    "VirtualBleakClient",
    "VirtualBleakScanner",
    "VirtualCharacteristic",
    "VirtualDevice",
    "VirtualRadio",
    "VirtualService",
]


class VirtualRadio:
    """The air around one home: devices that advertise and accept connections."""

    def __init__(self, *, advertise_interval_s: float = 0.05, connect_latency_s: float = 0.0) -> None:
        self.advertise_interval_s = advertise_interval_s
        self.connect_latency_s = connect_latency_s
        self._devices: dict[str, VirtualDevice] = {}
        scanner = type("VirtualBleakScanner", (VirtualBleakScanner,), {"radio": self})
        client = type("VirtualBleakClient", (VirtualBleakClient,), {"radio": self})
        # Its pair() takes the passkey (VirtualBleakClient.pair), so passkey devices can be tested.
        self.backend = BleBackend(scanner=scanner, client=client, passkey_entry=True)

    def add(self, device: D) -> D:
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

    async def pair(self, *args: Any, passkey: str | None = None, **kwargs: Any) -> None:
        """Bond; `passkey` is what a BlueZ agent would enter when the device asks for one."""
        self._connected_device()._pair(self, passkey)

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
        self._connected_device()._write(self, characteristic.uuid, bytes(data))

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
