"""BerryMed BCI protocol (vendor 128-bit characteristic): packets assembled bit by bit from
the "BCI Protocol V1.2" table, framing errors, stream re-framing and normalisation."""

from __future__ import annotations

import pytest

from core.vitals import Vital
from device_profiles import (
    BCI_INVALID,
    BciOximeterNotification,
    BciPacket,
    ClinicalObservation,
    DecodeError,
    Normalised,
    RejectedValue,
    encode,
    normalise,
    parse,
    uuids,
)
from device_profiles.bci import reframe
from device_profiles.catalogue import load_profiles, match_profile

BCI = "49535343-1e4d-4bd9-ba61-23c647249616"
SYNC = 0x80


def packet(
    *,
    spo2: int = 97,
    pulse: int = 72,
    pleth: int = 48,
    bargraph: int = 4,
    signal: int = 5,
    no_signal: bool = False,
    probe_unplugged: bool = False,
    beep: bool = False,
    no_finger: bool = False,
    searching: bool = False,
) -> bytes:
    """Five bytes laid out as the protocol table says (byte 1 carries the sync bit)."""
    return bytes(
        (
            SYNC | signal | no_signal << 4 | probe_unplugged << 5 | beep << 6,
            pleth,
            bargraph | no_finger << 4 | searching << 5 | (pulse >> 7) << 6,
            pulse & 0x7F,
            spo2,
        )
    )


def test_a_packet() -> None:
    assert packet() == bytes.fromhex("85 30 04 48 61")
    assert parse(BCI, packet()) == BciOximeterNotification(
        (BciPacket(spo2=97, pulse_rate=72, pleth=48, bargraph=4, signal_strength=5),)
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"pulse": 150}, {"pulse_rate": 150}),  # bit 7 of the rate travels in byte 3 bit 6
        ({"pulse": 254}, {"pulse_rate": 254}),
        ({"pulse": 255}, {"pulse_rate": BCI_INVALID}),
        ({"spo2": 127}, {"spo2": BCI_INVALID}),
        ({"spo2": 100}, {"spo2": 100}),
        ({"no_signal": True}, {"no_signal": True}),
        ({"probe_unplugged": True}, {"probe_unplugged": True}),
        ({"beep": True}, {"pulse_beep": True}),
        ({"no_finger": True}, {"no_finger": True}),
        ({"searching": True}, {"pulse_searching": True}),
        ({"signal": 15, "bargraph": 15, "pleth": 127}, {"signal_strength": 15, "bargraph": 15, "pleth": 127}),
    ],
)
def test_each_field(fields: dict[str, object], expected: dict[str, object]) -> None:
    payload = packet(**fields)  # type: ignore[arg-type]
    base = {"spo2": 97, "pulse_rate": 72, "pleth": 48, "bargraph": 4, "signal_strength": 5}
    decoded = parse(BCI, payload)
    assert decoded.packets == (BciPacket(**{**base, **expected}),)  # type: ignore[arg-type]
    assert encode.measurement(decoded) == payload


def test_probe_unplugged_packet_from_the_device() -> None:
    # What an unplugged probe sends: signal 15 (invalid), searching, PR 255 and SpO2 127 (invalid).
    decoded = parse(BCI, bytes.fromhex("af 00 60 7f 7f"))
    assert decoded.latest == BciPacket(
        BCI_INVALID, BCI_INVALID, signal_strength=15, probe_unplugged=True, pulse_searching=True
    )


def test_several_packets_per_notification() -> None:
    payload = packet(spo2=96) + packet(spo2=97, beep=True) + packet(spo2=98) + packet(spo2=99)
    decoded = parse(BCI, payload)
    assert [p.spo2 for p in decoded.packets] == [96, 97, 98, 99]
    assert decoded.latest.spo2 == 99
    assert decoded.packets[1].pulse_beep
    assert encode.measurement(decoded) == payload


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty payload"),
        (packet()[:4], "not a whole number of 5-byte packets"),
        (packet() + b"\x00", "not a whole number"),
        (bytes.fromhex("05 30 04 48 61"), "sync bit must be set in the first byte only"),
        (bytes.fromhex("85 b0 04 48 61"), "sync bit must be set in the first byte only"),
        (packet() + bytes.fromhex("30 04 48 61 85"), r"bytes 5-9 are not a BCI packet"),  # misaligned
    ],
)
def test_framing_errors(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=rf"BerryMed BCI Data \({BCI}\): .*{message}"):
        parse(BCI, payload)


def test_vendor_uuid_forms() -> None:
    assert parse(BCI.upper(), packet()) == parse("{" + BCI + "}", packet()) == parse(BCI, packet())
    assert uuids.canonical_uuid(BCI.upper()) == BCI


def test_reframe_keeps_the_unfinished_packet() -> None:
    one, two = packet(spo2=96), packet(spo2=97)
    whole, rest = reframe(b"\x30\x04" + one + two[:3])  # starts mid-packet, ends mid-packet
    assert (whole, rest) == (one, two[:3])
    whole, rest = reframe(rest + two[3:])
    assert (whole, rest) == (two, b"")
    assert reframe(b"\x01\x02\x03") == (b"", b"")  # no sync byte: nothing to keep


def test_encoder_refusals() -> None:
    with pytest.raises(ValueError, match="spo2"):
        encode.bci_oximeter(BciPacket(127, 72))  # 127 is the invalid marker: pass BCI_INVALID
    with pytest.raises(ValueError, match="pulse_rate"):
        encode.bci_oximeter(BciPacket(97, 255))
    with pytest.raises(ValueError, match="at least one packet"):
        encode.bci_oximeter([])


# --- normalisation -----------------------------------------------------------------------------


def observe(payload: bytes) -> Normalised:
    return normalise(parse(BCI, payload))


def test_spo2_and_pulse_of_the_newest_packet() -> None:
    assert observe(packet(spo2=95, pulse=70) + packet(spo2=96, pulse=71)) == Normalised(
        None,
        (ClinicalObservation(Vital.SPO2, 96.0, "%"), ClinicalObservation(Vital.PULSE_RATE, 71.0, "/min")),
    )


def test_status_bits_become_flags() -> None:
    result = observe(packet(searching=True, no_signal=True))
    assert {o.quality for o in result.observations} == {("measurement_ongoing", "signal_questionable")}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"probe_unplugged": True}, "oximeter reports the probe unplugged"),
        ({"no_finger": True}, "oximeter reports no finger in the probe"),
    ],
)
def test_readings_without_a_finger_are_rejected(fields: dict[str, bool], reason: str) -> None:
    result = observe(packet(**fields))  # type: ignore[arg-type]
    assert result.observations == ()
    assert result.rejected == (
        RejectedValue(Vital.SPO2, 97.0, "%", f"spo2 97 %: {reason}"),
        RejectedValue(Vital.PULSE_RATE, 72.0, "/min", f"pulse_rate 72 /min: {reason}"),
    )


def test_invalid_markers_are_no_value() -> None:
    result = observe(packet(spo2=127, pulse=255, searching=True))
    assert result.rejected == (
        RejectedValue(Vital.SPO2, None, "%", "spo2: device sent no value (invalid)"),
        RejectedValue(Vital.PULSE_RATE, None, "/min", "pulse_rate: device sent no value (invalid)"),
    )


def test_impossible_spo2_is_rejected() -> None:
    (rejected,) = observe(packet(spo2=120)).rejected
    assert rejected.reason == "spo2 120 % outside plausible range 40-100"


# --- the profile -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("BerryMed", "berrymed_bm1000"),
        ("BM1000C", "berrymed_bm1000"),
        ("BM1000", "berrymed_bm1000"),
        ("BM2000", None),
    ],
)
def test_recognised_by_name(name: str, expected: str | None) -> None:
    found = match_profile(load_profiles(), name, ["49535343-FE7D-4AE5-8FA9-9FAFD205E455"])
    assert (found.id if found else None) == expected


def test_profile_subscribes_to_the_vendor_characteristic() -> None:
    (profile,) = [p for p in load_profiles() if p.id == "berrymed_bm1000"]
    (spec,) = profile.characteristics
    assert (spec.uuid, spec.mode, spec.decoder) == (BCI, "notify", "bci_oximeter")
    assert uuids.long_uuid(spec.uuid) == BCI
    assert "BCI Protocol V1.2" in profile.source


def test_every_status_bit_combination() -> None:
    names = ["no_signal", "probe_unplugged", "beep", "no_finger", "searching"]
    fields = ["no_signal", "probe_unplugged", "pulse_beep", "no_finger", "pulse_searching"]
    for bits in range(1 << len(names)):
        on = {name: bool(bits >> i & 1) for i, name in enumerate(names)}
        payload = packet(pulse=200, **on)  # type: ignore[arg-type]
        (decoded,) = parse(BCI, payload).packets
        assert [getattr(decoded, f) for f in fields] == list(on.values())
        assert decoded.pulse_rate == 200
        assert encode.measurement(parse(BCI, payload)) == payload
