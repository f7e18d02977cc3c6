"""Date Time (0x2A08) and Current Time (0x2A2B): decoding what devices report, encoding what
the gateway writes to set their clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from device_profiles import (
    AdjustReason,
    CurrentTime,
    DateTimeCharacteristic,
    DayOfWeek,
    DecodeError,
    Normalised,
    UnknownDateTime,
    encode,
    normalise,
    parse,
)

# 2024-03-01 08:30:15 was a Friday.
FRIDAY = datetime(2024, 3, 1, 8, 30, 15)
DATE_TIME_HEX = "e807 03 01 08 1e 0f"


def test_date_time_characteristic() -> None:
    payload = bytes.fromhex(DATE_TIME_HEX)
    assert parse("2A08", payload) == DateTimeCharacteristic(FRIDAY)
    assert encode.date_time(FRIDAY) == payload
    assert encode.measurement(DateTimeCharacteristic(FRIDAY)) == payload


def test_date_time_not_known() -> None:
    decoded = parse("2A08", bytes.fromhex("0000 00 00 08 1e 0f"))
    assert decoded == DateTimeCharacteristic(UnknownDateTime(0, 0, 0, 8, 30, 15))
    assert encode.measurement(decoded) == bytes.fromhex("0000 00 00 08 1e 0f")


def test_writing_a_clock_drops_sub_seconds() -> None:
    # Setting a clock: the field has whole seconds; the measurement encoders refuse instead.
    assert encode.date_time(FRIDAY.replace(microsecond=999_999)) == bytes.fromhex(DATE_TIME_HEX)


@pytest.mark.parametrize(
    "hex_payload", ["", "e807 03 01 08 1e", f"{DATE_TIME_HEX} 00", "e807 0d 01 08 1e 0f"]
)
def test_corrupt_date_time(hex_payload: str) -> None:
    with pytest.raises(DecodeError, match=r"Date Time \(0x2A08\)"):
        parse("2A08", bytes.fromhex(hex_payload))


# --- Current Time ------------------------------------------------------------------------------

CURRENT_TIME_HEX = f"{DATE_TIME_HEX} 05 80 02"  # Friday, 128/256 s, external reference update


def test_current_time() -> None:
    payload = bytes.fromhex(CURRENT_TIME_HEX)
    expected = CurrentTime(FRIDAY, DayOfWeek.FRIDAY, 128, AdjustReason.EXTERNAL_REFERENCE_TIME_UPDATE)
    assert parse("2A2B", payload) == expected
    assert encode.measurement(expected) == payload


def test_current_time_encoder_derives_day_and_fractions() -> None:
    # 0.5 s = 128/256 s; the day of week comes from the date.
    written = encode.current_time(
        FRIDAY.replace(microsecond=500_000), adjust_reason=AdjustReason.EXTERNAL_REFERENCE_TIME_UPDATE
    )
    assert written == bytes.fromhex(CURRENT_TIME_HEX)
    assert encode.current_time(FRIDAY.replace(microsecond=3_906)) == bytes.fromhex(
        f"{DATE_TIME_HEX} 05 00 00"
    )
    assert encode.current_time(FRIDAY.replace(microsecond=3_907)) == bytes.fromhex(
        f"{DATE_TIME_HEX} 05 01 00"
    )


@pytest.mark.parametrize("days", range(7))
def test_day_of_week_follows_the_date(days: int) -> None:
    day = FRIDAY + timedelta(days=days)
    decoded = parse("2A2B", encode.current_time(day))
    assert decoded.day_of_week == DayOfWeek(day.isoweekday())
    assert decoded.date_time == day


def test_unknown_date_has_unknown_day() -> None:
    unknown = UnknownDateTime(0, 0, 0, 8, 30, 15)
    payload = encode.current_time(unknown)
    assert payload == bytes.fromhex("0000 00 00 08 1e 0f 00 00 00")
    assert parse("2A2B", payload) == CurrentTime(unknown, DayOfWeek.UNKNOWN, 0)


def test_adjust_reason_bits() -> None:
    for bit, reason in enumerate(AdjustReason):
        payload = bytes.fromhex(f"{DATE_TIME_HEX} 05 00") + bytes([1 << bit])
        assert parse("2A2B", payload).adjust_reason == reason
    for bits in range(16):  # every combination round-trips
        payload = bytes.fromhex(f"{DATE_TIME_HEX} 05 00") + bytes([bits])
        assert parse("2A2B", payload).adjust_reason == AdjustReason(bits)
        assert encode.measurement(parse("2A2B", payload)) == payload
    rfu = parse("2A2B", bytes.fromhex(f"{DATE_TIME_HEX} 05 00 f3"))  # bits 4-7 RFU
    assert rfu.adjust_reason == AdjustReason.MANUAL_TIME_UPDATE | AdjustReason.EXTERNAL_REFERENCE_TIME_UPDATE


@pytest.mark.parametrize(
    ("hex_payload", "message"),
    [
        ("", "expected 10 bytes"),
        (f"{DATE_TIME_HEX} 05 80", "expected 10 bytes"),
        (f"{CURRENT_TIME_HEX} 00", "expected 10 bytes"),
        (f"{DATE_TIME_HEX} 08 00 00", "day of week 8 outside 0-7"),
        ("e807 02 1e 08 1e 0f 05 00 00", "2024-02-30 does not exist"),
    ],
)
def test_corrupt_current_time(hex_payload: str, message: str) -> None:
    with pytest.raises(DecodeError, match=rf"Current Time \(0x2A2B\): .*{message}"):
        parse("2A2B", bytes.fromhex(hex_payload))


def test_current_time_encoder_refusals() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        encode.current_time(FRIDAY.replace(tzinfo=UTC))
    with pytest.raises(ValueError, match="either as microseconds or as fractions256"):
        encode.current_time(FRIDAY.replace(microsecond=1), fractions256=3)
    with pytest.raises(ValueError, match="fractions256"):
        encode.current_time(FRIDAY, fractions256=256)
    with pytest.raises(ValueError, match="day_of_week"):
        encode.current_time(FRIDAY, day_of_week=8)
    with pytest.raises(ValueError, match="adjust_reason"):
        encode.current_time(FRIDAY, adjust_reason=0x10)


def test_clocks_are_not_observations() -> None:
    assert normalise(parse("2A2B", bytes.fromhex(CURRENT_TIME_HEX))) == Normalised(None)
    assert normalise(parse("2A08", bytes.fromhex(DATE_TIME_HEX))) == Normalised(None)
