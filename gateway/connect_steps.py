"""What the gateway does right after connecting to a device: its profile's connect steps.

`DeviceLink.run()` executes `Profile.connect_steps` (device_profiles.catalogue) in order on a
connected bleak client:

* ``subscribe``: enable notifications / indications on the profile's characteristics and
  read the "read" ones; values go to `on_value` undecoded.
* ``read_features``: read the Feature characteristic once and hand it to `on_value`; the
  decoder keeps what the device supports (it is no clinical observation).
* ``write_date_time`` / ``write_current_time``: write the device's local wall time, from
  the injected `device_clock` (the gateway clock in the device's zone; A&D monitors release
  their stored readings only after this write).
* ``racp_report_all``: with the RACP's indications and the measurements subscribed, write
  "report all stored records" and wait for the Response Code indication. The records
  arrive meanwhile as ordinary measurement notifications with their device timestamps.
  RACP responses are control-point traffic, not readings: they are decoded here, since
  the procedure waits on them, and counted per response code.

Failures, counted per ``"<address>/<step>"`` in `ConnectStepCounters` and logged without
patient data:

* The device lacks the characteristic: an optional step is skipped; otherwise a warning,
  and the next step runs (the rest of the profile may still deliver readings).
* A read fails, or an optional write or subscription fails: counted, next step.
* A required write or subscription fails: `ConnectStepFailed`; `BleCentral` drops the link
  and retries with back-off, so the write is retried on the next connection (the device
  keeps its readings until then).
* RACP: a timeout or an error response is counted and logged; the link stays up.
* The link drops during the steps: the remaining steps are not attempted; `BleCentral`
  sees the disconnect and reconnects when the device advertises again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakError

import device_profiles
from device_profiles import RacpOpCode, RacpResponse, RacpResponseCode
from device_profiles.catalogue import CharacteristicSpec, ConnectAction, Profile
from device_profiles.uuids import RECORD_ACCESS_CONTROL_POINT, long_uuid, name_of
from gateway.errors import GatewayError

__all__ = ["ConnectStepCounters", "ConnectStepFailed", "DeviceLink", "OnValue"]

log = logging.getLogger(__name__)

OnValue = Callable[[str, str, bytes], None]
# What a GATT operation raises when it fails: the stack, the link, or the device said no.
_GATT_ERRORS = (BleakError, OSError, TimeoutError)


class ConnectStepFailed(GatewayError):
    """A required connect step failed; the link is useless until it succeeds, so retry later."""


@dataclass
class ConnectStepCounters:
    """Per `"<address>/<step>"` counts, across connections; shown in the gateway's stats."""

    done: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)  # optional step, characteristic absent
    missing: Counter[str] = field(default_factory=Counter)  # required characteristic absent
    failed: Counter[str] = field(default_factory=Counter)  # GATT error or timeout
    racp_responses: Counter[str] = field(default_factory=Counter)  # "<address>/<response code>"
    callback_errors: int = 0  # on_value raised inside a notification callback (a bug)

    def as_dict(self) -> dict[str, object]:
        return {
            "ble_connect_steps": dict(self.done),
            "ble_steps_skipped": dict(self.skipped),
            "ble_steps_missing": dict(self.missing),
            "ble_step_failures": dict(self.failed),
            "racp_responses": dict(self.racp_responses),
            "ble_callback_errors": self.callback_errors,
        }


class DeviceLink:
    """One connection's connect steps and notification callbacks; see the module docstring."""

    def __init__(
        self,
        client: BleakClient,
        profile: Profile,
        address: str,
        *,
        on_value: OnValue,
        counters: ConnectStepCounters,
        device_clock: Callable[[], datetime],
        racp_timeout_s: float,
    ) -> None:
        self.client = client
        self.profile = profile
        self.address = address
        self.on_value = on_value
        self.counters = counters
        self.device_clock = device_clock
        self.racp_timeout_s = racp_timeout_s
        self._subscribed: set[str] = set()  # canonical UUIDs
        self._racp_waiter: asyncio.Future[RacpResponse] | None = None
        self._values_during_racp = 0

    async def run(self) -> None:
        """Run every step in order; ConnectStepFailed when a required one failed."""
        for step in self.profile.connect_steps:
            if not self.client.is_connected:
                return  # the device hung up (A&D monitors do, once they have sent)
            if step.action == "subscribe":
                done = await self._subscribe()
            else:
                done = await self._step(step)
            if done:
                self.counters.done[f"{self.address}/{step.action}"] += 1

    async def _step(self, step: ConnectAction) -> bool:
        char = self._characteristic(step)
        if char is None:
            return False
        try:
            if step.action == "read_features":
                self._hand_over(str(step.uuid), await self.client.read_gatt_char(char))
                return True
            payload = step.payload(self.device_clock())
            assert payload is not None  # every step but subscribe and read_features writes
            if step.action == "racp_report_all":
                return await self._racp_report_all(step, char, payload)
            await self.client.write_gatt_char(char, payload, response=True)
        except _GATT_ERRORS as exc:
            # Features only inform; a clock or RACP write the profile requires gates the readings.
            required = not step.optional and step.action != "read_features"
            self._failed(step.action, f"{step.action} ({name_of(str(step.uuid))})", exc, required=required)
            return False
        log.info("device %s: clock set (%s)", self.address, name_of(str(step.uuid)))
        return True

    # --- steps ------------------------------------------------------------------------------------

    async def _subscribe(self) -> bool:
        """Done unless a required characteristic is absent (a failed read is counted, not fatal)."""
        ok = True
        for spec in self.profile.characteristics:
            char = self.client.services.get_characteristic(long_uuid(spec.uuid))
            if char is None:
                if not spec.optional:
                    ok = False
                    self.counters.missing[f"{self.address}/subscribe"] += 1
                    log.warning(
                        "device %s lacks %s that profile %s requires; its readings cannot be collected",
                        self.address,
                        name_of(spec.uuid),
                        self.profile.id,
                    )
                continue
            try:
                if spec.mode == "read":
                    self._hand_over(spec.uuid, await self.client.read_gatt_char(char))
                else:
                    await self.client.start_notify(char, self._callback_for(spec))
                    self._subscribed.add(spec.uuid)
            except _GATT_ERRORS as exc:  # e.g. battery not readable yet: not worth dropping the link
                # A measurement the profile requires cannot arrive without its subscription.
                required = not spec.optional and spec.mode != "read"
                self._failed("subscribe", f"{spec.mode} {name_of(spec.uuid)}", exc, required=required)
                if not self.client.is_connected:
                    return False
        return ok

    async def _racp_report_all(
        self, step: ConnectAction, char: BleakGATTCharacteristic, payload: bytes
    ) -> bool:
        key = f"{self.address}/{step.action}"
        if RECORD_ACCESS_CONTROL_POINT not in self._subscribed:
            # The device refuses the request without somewhere to indicate the responses.
            self.counters.failed[key] += 1
            log.warning(
                "device %s: RACP indications are not enabled; stored records not requested", self.address
            )
            return False
        waiter = self._racp_waiter = asyncio.get_running_loop().create_future()
        self._values_during_racp = 0
        try:
            await self.client.write_gatt_char(char, payload, response=True)
            try:
                response = await asyncio.wait_for(waiter, self.racp_timeout_s)
            except TimeoutError:
                self.counters.failed[key] += 1
                log.warning(
                    "device %s: no answer to 'report all stored records' within %.0f s (%d values arrived)",
                    self.address,
                    self.racp_timeout_s,
                    self._values_during_racp,
                )
                return False
        finally:
            self._racp_waiter = None
        if response.response_code not in (RacpResponseCode.SUCCESS, RacpResponseCode.NO_RECORDS_FOUND):
            self.counters.failed[key] += 1
            log.warning(
                "device %s: 'report all stored records' refused: %s",
                self.address,
                _code_name(response.response_code),
            )
            return False
        log.info(
            "device %s: stored records reported (%s, %d values)",
            self.address,
            _code_name(response.response_code),
            self._values_during_racp,
        )
        return True

    # --- notifications ----------------------------------------------------------------------------

    def _callback_for(self, spec: CharacteristicSpec) -> Callable[[BleakGATTCharacteristic, bytearray], None]:
        if spec.uuid == RECORD_ACCESS_CONTROL_POINT:
            return self._on_racp
        return functools.partial(self._on_notification, spec.uuid)

    def _on_notification(self, char_uuid: str, _sender: BleakGATTCharacteristic, data: bytearray) -> None:
        if self._racp_waiter is not None:
            self._values_during_racp += 1
        self._hand_over(char_uuid, data)

    def _hand_over(self, char_uuid: str, data: bytes | bytearray) -> None:
        # Runs inside bleak's notification callback: nothing may escape it.
        try:
            self.on_value(self.address, char_uuid, bytes(data))
        except Exception:
            self.counters.callback_errors += 1
            log.exception("device %s: handling a %s value failed", self.address, name_of(char_uuid))

    def _on_racp(self, _sender: BleakGATTCharacteristic, data: bytearray) -> None:
        try:
            response = device_profiles.parse(RECORD_ACCESS_CONTROL_POINT, bytes(data))
        except device_profiles.DecodeError as exc:
            self.counters.racp_responses[f"{self.address}/malformed"] += 1
            log.warning("device %s: malformed RACP response (%d bytes, %s)", self.address, len(data), exc)
            return
        except Exception:
            self.counters.callback_errors += 1
            log.exception("device %s: handling a RACP response failed", self.address)
            return
        assert isinstance(response, RacpResponse)
        if response.op_code == RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE:
            self.counters.racp_responses[f"{self.address}/number_of_records"] += 1
            return
        self.counters.racp_responses[f"{self.address}/{_code_name(response.response_code)}"] += 1
        waiter = self._racp_waiter
        if (
            waiter is not None
            and not waiter.done()
            and response.request_op_code == RacpOpCode.REPORT_STORED_RECORDS
        ):
            waiter.set_result(response)

    # --- helpers ----------------------------------------------------------------------------------

    def _characteristic(self, step: ConnectAction) -> BleakGATTCharacteristic | None:
        char = self.client.services.get_characteristic(long_uuid(str(step.uuid)))
        if char is not None:
            return char
        key = f"{self.address}/{step.action}"
        if step.optional:
            self.counters.skipped[key] += 1
            log.debug(
                "device %s has no %s; optional step %s skipped",
                self.address,
                name_of(str(step.uuid)),
                step.action,
            )
        else:
            self.counters.missing[key] += 1
            log.warning(
                "device %s lacks %s that profile %s needs for step %s; continuing without it",
                self.address,
                name_of(str(step.uuid)),
                self.profile.id,
                step.action,
            )
        return None

    def _failed(self, step: str, what: str, exc: BaseException, *, required: bool) -> None:
        self.counters.failed[f"{self.address}/{step}"] += 1
        reason = str(exc) or type(exc).__name__
        log.warning("device %s (%s): %s failed: %s", self.address, self.profile.id, what, reason)
        if required and self.client.is_connected:
            raise ConnectStepFailed(f"{what} failed on {self.address}: {reason}") from exc


def _code_name(code: RacpResponseCode | int | None) -> str:
    return code.name.lower() if isinstance(code, RacpResponseCode) else f"code_{code}"
