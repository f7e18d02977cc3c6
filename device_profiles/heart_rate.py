"""Heart rate: Heart Rate Measurement (0x2A37).

Layout from the GSS "Heart Rate Measurement" entry, meanings from the Heart Rate Service
(HRS) v1.0. Flags:

* bit 0: Heart Rate Value format, uint8 (0) or uint16 (1), beats per minute
* bits 1-2: Sensor Contact Status: 0b00 / 0b01 not supported, 0b10 supported but no
  contact, 0b11 supported and in contact (bit 2 = supported, bit 1 = detected)
* bit 3: Energy Expended present (uint16, kilojoules since the last reset)
* bit 4: RR-Interval present: one or more uint16 in 1/1024 s, filling the rest of the payload

The RR list has no count, so this characteristic cannot use `Layout`; the rest of the
payload must be a whole number of uint16s, at least one when bit 4 is set.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import DecodeError
from .uuids import HEART_RATE_MEASUREMENT, name_of

__all__ = ["HeartRateMeasurement", "decode_heart_rate", "encode_heart_rate"]

_NAME = name_of(HEART_RATE_MEASUREMENT)

_UINT16_VALUE = 0x01
_CONTACT_DETECTED = 0x02
_CONTACT_SUPPORTED = 0x04
_ENERGY_EXPENDED = 0x08
_RR_INTERVALS = 0x10

_RR_TICKS_PER_SECOND = 1024
_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    heart_rate: int  # beats per minute
    sensor_contact: bool | None = None  # None: the sensor does not report contact
    energy_expended: int | None = None  # kilojoules
    # Seconds. raw / 1024 is a binary fraction, so the float is exact and raw = s * 1024.
    rr_intervals: tuple[float, ...] = ()


def decode_heart_rate(payload: bytes) -> HeartRateMeasurement:
    if not payload:
        raise DecodeError(f"{_NAME}: empty payload (no Flags byte)")
    flags = payload[0]
    value_size = 2 if flags & _UINT16_VALUE else 1
    energy_size = 2 if flags & _ENERGY_EXPENDED else 0
    fixed = 1 + value_size + energy_size
    if len(payload) < fixed:
        raise DecodeError(
            f"{_NAME}: truncated: flags 0x{flags:02X} announce at least {fixed} bytes, got {len(payload)}"
        )
    heart_rate = (_U16 if value_size == 2 else _U8).unpack_from(payload, 1)[0]
    energy = _U16.unpack_from(payload, 1 + value_size)[0] if energy_size else None
    rest = len(payload) - fixed
    if flags & _RR_INTERVALS:
        if rest == 0:
            raise DecodeError(f"{_NAME}: truncated: RR-Interval flag set but no interval follows")
        if rest % 2:
            raise DecodeError(f"{_NAME}: RR-Interval field is {rest} bytes, not a whole number of uint16")
        ticks = struct.unpack_from(f"<{rest // 2}H", payload, fixed)
        rr = tuple(t / _RR_TICKS_PER_SECOND for t in ticks)
    elif rest:
        raise DecodeError(
            f"{_NAME}: {rest} trailing byte(s) after {fixed} bytes that flags 0x{flags:02X} announce"
        )
    else:
        rr = ()
    contact = bool(flags & _CONTACT_DETECTED) if flags & _CONTACT_SUPPORTED else None
    return HeartRateMeasurement(heart_rate, contact, energy, rr)


def encode_heart_rate(
    bpm: int,
    *,
    sensor_contact: bool | None = None,
    energy_expended: int | None = None,
    rr_intervals: Iterable[float] = (),
    uint16: bool = False,
) -> bytes:
    """A Heart Rate Measurement payload.

    The value is sent as uint8 when it fits, else (or with `uint16=True`) as uint16.
    RR intervals are seconds, rounded to the nearest 1/1024 s tick the way the sensor's
    own timer quantises them; a value already on the grid round-trips exactly.
    """
    if isinstance(bpm, bool) or not isinstance(bpm, int) or not 0 <= bpm <= 0xFFFF:
        raise ValueError(f"heart rate must be an int 0..65535 bpm, got {bpm!r}")
    flags = 0
    if uint16 or bpm > 0xFF:
        flags |= _UINT16_VALUE
    out = bytearray()
    if sensor_contact is not None:
        flags |= _CONTACT_SUPPORTED | (_CONTACT_DETECTED if sensor_contact else 0)
    out += (_U16 if flags & _UINT16_VALUE else _U8).pack(bpm)
    if energy_expended is not None:
        if (
            isinstance(energy_expended, bool)
            or not isinstance(energy_expended, int)
            or not 0 <= energy_expended <= 0xFFFF
        ):
            raise ValueError(f"energy expended must be an int 0..65535 kJ, got {energy_expended!r}")
        flags |= _ENERGY_EXPENDED
        out += _U16.pack(energy_expended)
    for seconds in rr_intervals:
        scaled = float(seconds) * _RR_TICKS_PER_SECOND
        ticks = round(scaled) if math.isfinite(scaled) else -1
        if not 0 <= ticks <= 0xFFFF:
            raise ValueError(f"RR interval {seconds!r} s outside 0..{0xFFFF / _RR_TICKS_PER_SECOND} s")
        flags |= _RR_INTERVALS
        out += _U16.pack(ticks)
    return bytes([flags]) + bytes(out)
