"""Device models with a connect protocol of their own, on the virtual radio.

* `DateTimeGatedDevice`: an A&D monitor or scale, which sends its stored readings only once
  the collector has written its Date Time (A&D UA-651BLE, UC-352BLE).
* `GlucoseMeter`: a Glucose Service meter, which sends its stored records when asked over
  the Record Access Control Point, then a Response Code.
* `StreamingOximeter`: a BerryMed BM1000, streaming BCI packets on a vendor characteristic.

`simulator.virtual_devices` builds them from their catalogue profiles (`and_ua651ble`,
`glucose_meter`, `berrymed_bm1000`). Payloads are byte-exact, from `device_profiles.encode`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any, Literal

from bleak.exc import BleakGATTProtocolError, BleakGATTProtocolErrorCode

import device_profiles
from device_profiles import (
    BCI_INVALID,
    BciPacket,
    GlucoseSampleLocation,
    GlucoseType,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponseCode,
    encode,
    uuids,
)
from simulator.virtual_peripheral import VirtualDevice

__all__ = [
    "DateTimeGatedDevice",
    "GlucoseMeter",
    "StreamingOximeter",
    "blood_pressure_payload",
    "device_clock",
    "device_number",
]


def device_clock(device_tz: tzinfo, at: datetime | None = None) -> datetime:
    """What a device's display clock shows: local wall time, naive, whole seconds (GSS Date Time)."""
    return (at or datetime.now(UTC)).astimezone(device_tz).replace(tzinfo=None, microsecond=0)


def device_number(value: float, digits: int = 1) -> float | int:
    """Integral values as int, others by their shortest repr (the encoders take floats that way)."""
    rounded = round(float(value), digits)
    return int(rounded) if rounded.is_integer() else rounded


def blood_pressure_payload(
    systolic: float, diastolic: float, mean_arterial: float, pulse_rate: float | None, at: datetime
) -> bytes:
    """A Blood Pressure Measurement in mmHg taken at `at` (the device's naive local time)."""
    return encode.blood_pressure(
        device_number(systolic),
        device_number(diastolic),
        device_number(mean_arterial),
        timestamp=at,
        pulse_rate=None if pulse_rate is None else device_number(pulse_rate),
    )


class DateTimeGatedDevice(VirtualDevice):
    """An A&D monitor or scale: stored readings go out only after the collector set its clock.

    A&D's sample app (see the and_ua651ble profile) writes Date Time (0x2A08), then enables
    indications; until the write, on every connection, the device keeps its readings. A
    written value must decode as a Date Time (else ATT "value not allowed", as a device
    refusing it would); `clock_writes` keeps each time set, decoded.
    """

    def __init__(self, *args: Any, device_tz: tzinfo = UTC, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.device_tz = device_tz
        self.hold_stored = True
        self.clock_writes: list[datetime] = []

    def on_connect(self) -> None:
        self.hold_stored = True

    def on_write(self, char_uuid: str, value: bytes) -> None:
        if char_uuid != uuids.DATE_TIME:
            return
        try:
            written = device_profiles.parse(uuids.DATE_TIME, value)
        except device_profiles.DecodeError:
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.VALUE_NOT_ALLOWED) from None
        assert isinstance(written, device_profiles.DateTimeCharacteristic)
        if not isinstance(written.date_time, datetime):  # "not known": no time to set the clock to
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.VALUE_NOT_ALLOWED)
        self.clock_writes.append(written.date_time)
        self.release_stored()

    def measure_blood_pressure(
        self,
        systolic: float,
        diastolic: float,
        mean_arterial: float,
        pulse_rate: float | None = None,
        *,
        at: datetime | None = None,
    ) -> bytes:
        """A Blood Pressure Measurement in mmHg, kept until the next clock write, then indicated."""
        return self.send(
            uuids.BLOOD_PRESSURE_MEASUREMENT,
            blood_pressure_payload(
                systolic, diastolic, mean_arterial, pulse_rate, device_clock(self.device_tz, at)
            ),
        )


class GlucoseMeter(VirtualDevice):
    """A Glucose Service meter: records stay in its memory and go out when asked over the RACP.

    "Report stored records / all records" (GLS 1.0, 3.2.2) notifies every record on 0x2A18,
    then indicates a Response Code: success, or "no records found" with none. Refused like
    a meter would: without indications enabled (ATT "CCCD improperly configured"), other
    requests with "op code not supported". `answer` overrides the code sent for a report
    request (None: the meter never answers, for timeout tests).
    """

    def __init__(
        self,
        *args: Any,
        device_tz: tzinfo = UTC,
        answer: RacpResponseCode | None = RacpResponseCode.SUCCESS,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.device_tz = device_tz
        self.answer = answer
        self.records: list[bytes] = []  # kept after reporting, as meters do
        self.racp_requests: list[RacpRequest | bytes] = []  # decoded, or the bytes when they did not decode

    def take_reading(
        self, *, mmol_per_l: float | None = None, mg_per_dl: float | None = None, at: datetime | None = None
    ) -> bytes:
        """Store a capillary plasma reading from a finger: mmol/L sent as mol/L, mg/dL as kg/L."""
        if (mmol_per_l is None) == (mg_per_dl is None):
            raise ValueError("give mmol_per_l or mg_per_dl")
        unit: Literal["mol/L", "kg/L"]
        if mmol_per_l is not None:
            concentration, unit = Decimal(str(mmol_per_l)).scaleb(-3), "mol/L"
        else:
            concentration, unit = Decimal(str(mg_per_dl)).scaleb(-5), "kg/L"  # 1 mg/dL = 1e-5 kg/L
        record = encode.glucose(
            len(self.records),
            device_clock(self.device_tz, at),
            concentration=concentration,
            unit=unit,
            sample_type=GlucoseType.CAPILLARY_PLASMA,
            sample_location=GlucoseSampleLocation.FINGER,
        )
        self.records.append(record)
        return record

    def on_write(self, char_uuid: str, value: bytes) -> None:
        if char_uuid != uuids.RECORD_ACCESS_CONTROL_POINT:
            return
        if not self.subscribed(uuids.RECORD_ACCESS_CONTROL_POINT):
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.CCCD_IMPROPERLY_CONFIGURED)
        try:
            request = device_profiles.decode_racp_request(value)
        except device_profiles.DecodeError:
            self.racp_requests.append(value)
            self._respond(value[0] if value else 0, RacpResponseCode.OP_CODE_NOT_SUPPORTED)
            return
        self.racp_requests.append(request)
        reporting_all = (request.op_code, request.operator) == (
            RacpOpCode.REPORT_STORED_RECORDS,
            RacpOperator.ALL_RECORDS,
        )
        if not reporting_all:
            self._respond(request.op_code, RacpResponseCode.OP_CODE_NOT_SUPPORTED)
            return
        if self.answer is None:
            return
        if not self.subscribed(uuids.GLUCOSE_MEASUREMENT):
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.CCCD_IMPROPERLY_CONFIGURED)
        code = self.answer
        if code == RacpResponseCode.SUCCESS:
            for record in self.records:
                self.send(uuids.GLUCOSE_MEASUREMENT, record)
            code = RacpResponseCode.SUCCESS if self.records else RacpResponseCode.NO_RECORDS_FOUND
        self._respond(request.op_code, code)

    def _respond(self, request_op_code: int, code: RacpResponseCode) -> None:
        response = encode.racp_response(request_op_code=request_op_code, response_code=code)
        self.send(uuids.RECORD_ACCESS_CONTROL_POINT, response)


class StreamingOximeter(VirtualDevice):
    """A BerryMed BM1000: BCI packets on its vendor characteristic while someone listens.

    It stores nothing (memory 0): packets sent with no collector subscribed are lost, as on
    the real device.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, memory=0, **kwargs)

    @staticmethod
    def finger_in(spo2: int, pulse_rate: int, *, pleth: int = 50) -> BciPacket:
        """A packet with a reading (`pleth`, the waveform sample, makes packets distinguishable)."""
        return BciPacket(spo2=spo2, pulse_rate=pulse_rate, pleth=pleth, bargraph=6, signal_strength=7)

    @staticmethod
    def probe_unplugged() -> BciPacket:
        return BciPacket(spo2=BCI_INVALID, pulse_rate=BCI_INVALID, signal_strength=15, probe_unplugged=True)

    def stream(
        self, packets: Iterable[BciPacket], *, hz: float = 20.0, stop: threading.Event | None = None
    ) -> list[bytes]:
        """Notify one packet per notification at `hz` (blocking); the payloads sent, in order."""
        sent: list[bytes] = []
        due = time.monotonic()
        for packet in packets:
            if stop is not None and stop.is_set():
                break
            sent.append(self.send(uuids.BERRYMED_BCI_DATA, encode.bci_oximeter(packet)))
            due += 1 / hz
            time.sleep(max(0.0, due - time.monotonic()))
        return sent
