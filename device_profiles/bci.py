"""BerryMed pulse oximeters: the BCI protocol on a vendor 128-bit characteristic.

Source: Shanghai Berry Electronic Tech Co., "BCI Protocol V1.2" (github.com/zh2x/BCI_Protocol),
the serial protocol of BerryMed oximeters (BM1000 family), which their BLE models stream
unchanged as notifications of characteristic 49535343-1e4d-4bd9-ba61-23c647249616 in the
Microchip/ISSC "transparent UART" service 49535343-fe7d-4ae5-8fa9-9fafd205e455.

A packet is 5 bytes; bit 7 is a sync bit, set in byte 1 only:

======  ==================================================================================
byte    bits
======  ==================================================================================
1       0-3 signal strength (0-8; 15 = invalid), 4 no signal (searching too long),
        5 probe unplugged, 6 pulse beep, 7 sync = 1
2       0-6 plethysmogram sample (0-100), 7 sync = 0
3       0-3 bargraph (pulse intensity 0-15), 4 no finger, 5 pulse searching,
        6 bit 7 of the pulse rate, 7 sync = 0
4       0-6 bits 0-6 of the pulse rate (255 = invalid), 7 sync = 0
5       0-6 SpO2 in percent (127 = invalid), 7 sync = 0
======  ==================================================================================

The device sends tens of packets a second; one notification carries one or more whole
packets. The decoder requires whole, framed packets (a payload that is not a multiple of
5 bytes or whose sync bits are wrong is a DecodeError), so a corrupted notification is
counted, never half-read. `reframe` is for a link that splits packets across
notifications: it keeps the unfinished tail for the next call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .errors import DecodeError
from .ieee11073 import NoValue
from .uuids import BERRYMED_BCI_DATA, name_of

__all__ = [
    "BCI_INVALID",
    "PACKET_SIZE",
    "BciOximeterNotification",
    "BciPacket",
    "decode_bci",
    "encode_bci",
    "reframe",
]

_NAME = name_of(BERRYMED_BCI_DATA)
PACKET_SIZE: Final = 5
BCI_INVALID: Final = NoValue("invalid")  # SpO2 127 / pulse rate 255: the oximeter has no reading
_SPO2_INVALID = 127
_PULSE_INVALID = 255
_SYNC = 0x80


@dataclass(frozen=True, slots=True)
class BciPacket:
    spo2: int | NoValue  # percent; BCI_INVALID for 127
    pulse_rate: int | NoValue  # beats per minute; BCI_INVALID for 255
    pleth: int = 0  # plethysmogram sample 0-100 (the waveform on the display)
    bargraph: int = 0  # pulse intensity bar 0-15
    signal_strength: int = 0  # 0-8, 15 = invalid
    no_signal: bool = False  # byte 1 bit 4: searching too long
    probe_unplugged: bool = False  # byte 1 bit 5
    pulse_beep: bool = False  # byte 1 bit 6: a beat was detected in this sample
    no_finger: bool = False  # byte 3 bit 4
    pulse_searching: bool = False  # byte 3 bit 5


@dataclass(frozen=True, slots=True)
class BciOximeterNotification:
    packets: tuple[BciPacket, ...]  # oldest first

    @property
    def latest(self) -> BciPacket:
        return self.packets[-1]


def _packet(p: bytes | bytearray | memoryview, offset: int) -> BciPacket:
    b1, b2, b3, b4, b5 = p[offset : offset + PACKET_SIZE]
    if not b1 & _SYNC or (b2 | b3 | b4 | b5) & _SYNC:
        raise DecodeError(
            # No packet bytes in the message: they carry SpO2 and pulse, and errors reach logs.
            f"{_NAME}: bytes {offset}-{offset + 4} are not a BCI packet (sync bit must be set in the "
            "first byte only)"
        )
    pulse = b4 | (b3 & 0x40) << 1
    return BciPacket(
        spo2=BCI_INVALID if b5 == _SPO2_INVALID else b5,
        pulse_rate=BCI_INVALID if pulse == _PULSE_INVALID else pulse,
        pleth=b2,
        bargraph=b3 & 0x0F,
        signal_strength=b1 & 0x0F,
        no_signal=bool(b1 & 0x10),
        probe_unplugged=bool(b1 & 0x20),
        pulse_beep=bool(b1 & 0x40),
        no_finger=bool(b3 & 0x10),
        pulse_searching=bool(b3 & 0x20),
    )


def decode_bci(payload: bytes) -> BciOximeterNotification:
    if not payload:
        raise DecodeError(f"{_NAME}: empty payload")
    if len(payload) % PACKET_SIZE:
        raise DecodeError(
            f"{_NAME}: {len(payload)} bytes is not a whole number of {PACKET_SIZE}-byte packets "
            "(split across notifications? see bci.reframe)"
        )
    return BciOximeterNotification(tuple(_packet(payload, i) for i in range(0, len(payload), PACKET_SIZE)))


def reframe(buffer: bytes) -> tuple[bytes, bytes]:
    """(whole packets, leftover) from bytes received so far: skips bytes before the first
    sync byte (a packet's start) and keeps an unfinished packet for the next call.

    Pure: the caller keeps the leftover and prepends it to the next notification.
    """
    start = next((i for i, b in enumerate(buffer) if b & _SYNC), len(buffer))
    body = buffer[start:]
    whole = len(body) - len(body) % PACKET_SIZE
    return bytes(body[:whole]), bytes(body[whole:])


def _int(value: object, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise ValueError(f"{what} must be an int 0..{high}, got {value!r}")
    return value


def encode_bci(packets: tuple[BciPacket, ...] | list[BciPacket] | BciPacket) -> bytes:
    """The notification payload for one packet or several (the simulator's oximeter)."""
    if isinstance(packets, BciPacket):
        packets = (packets,)
    if not packets:
        raise ValueError("a BCI notification carries at least one packet")
    out = bytearray()
    for p in packets:
        spo2 = _SPO2_INVALID if p.spo2 == BCI_INVALID else _int(p.spo2, _SPO2_INVALID - 1, "spo2")
        pulse = _PULSE_INVALID if p.pulse_rate == BCI_INVALID else _int(p.pulse_rate, 254, "pulse_rate")
        out += bytes(
            (
                _SYNC
                | _int(p.signal_strength, 15, "signal_strength")
                | p.no_signal << 4
                | p.probe_unplugged << 5
                | p.pulse_beep << 6,
                _int(p.pleth, 127, "pleth"),
                _int(p.bargraph, 15, "bargraph")
                | p.no_finger << 4
                | p.pulse_searching << 5
                | (pulse & 0x80) >> 1,
                pulse & 0x7F,
                spo2,
            )
        )
    return bytes(out)
