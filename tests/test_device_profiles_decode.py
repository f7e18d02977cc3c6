"""Byte fixtures for every characteristic and every flag combination.

Each characteristic's payload is written as literal hex, one chunk per GSS field in the
order the GSS lays them out; the tests assemble every flag combination from those chunks
and compare the whole decoded dataclass. Each fixture must also re-encode byte for byte.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from device_profiles import (
    MEASUREMENT_UNSUCCESSFUL,
    BatteryLevel,
    BloodPressureMeasurement,
    BloodPressureMeasurementStatus,
    DecodeError,
    HeartRateMeasurement,
    IntermediateCuffPressure,
    IntermediateTemperature,
    Medfloat,
    NoValue,
    PlxContinuousMeasurement,
    PlxDeviceAndSensorStatus,
    PlxMeasurementStatus,
    PlxSpotCheckMeasurement,
    PulseRateRange,
    TemperatureMeasurement,
    TemperatureType,
    UnknownDateTime,
    WeightMeasurement,
    encode,
    parse,
)

Case = tuple[str, bytes, Any]


def flag_combinations(
    cls: type,
    base: dict[str, Any],
    mandatory: str,
    optional: list[tuple[int, str, dict[str, Any]]],
) -> Iterator[Any]:
    """pytest params for every subset of `optional` (flag bit, hex chunk, expected fields).

    Chunks are listed in GSS field order; a chunk of "" is a flag that adds no field.
    """
    for r in range(len(optional) + 1):
        for chosen in itertools.combinations(optional, r):
            flags = 0
            expected = dict(base)
            hex_payload = mandatory
            for bit, chunk, fields in chosen:
                flags |= bit
                hex_payload += chunk
                expected.update(fields)
            payload = bytes([flags]) + bytes.fromhex(hex_payload.replace(" ", ""))
            yield pytest.param(payload, cls(**expected), id=f"flags=0x{flags:02X}")


# --- PLX Spot-Check Measurement 0x2A5E -------------------------------------------------------

SPOT_CHECK = list(
    flag_combinations(
        PlxSpotCheckMeasurement,
        {"spo2": Medfloat(97, 0), "pulse_rate": Medfloat(72, 0)},
        "6100 4800",  # SpO2 97 %, PR 72 bpm (SFLOAT, exponent 0)
        [
            (0x01, "e807 03 01 08 1e 00", {"timestamp": datetime(2024, 3, 1, 8, 30, 0)}),
            (0x02, "4000", {"measurement_status": PlxMeasurementStatus.EARLY_ESTIMATED_DATA}),
            (
                0x04,
                "202000",
                {
                    "device_and_sensor_status": PlxDeviceAndSensorStatus.LOW_PERFUSION_DETECTED
                    | PlxDeviceAndSensorStatus.SENSOR_DISPLACED
                },
            ),
            (0x08, "23f0", {"pulse_amplitude_index": Medfloat(35, -1)}),  # 0xF023: exponent -1, mantissa 35
            (0x10, "", {"device_clock_not_set": True}),
        ],
    )
)


@pytest.mark.parametrize(("payload", "expected"), SPOT_CHECK)
def test_plx_spot_check(payload: bytes, expected: PlxSpotCheckMeasurement) -> None:
    assert parse("2A5E", payload) == expected
    assert encode.measurement(expected) == payload


# --- PLX Continuous Measurement 0x2A5F -------------------------------------------------------

CONTINUOUS = list(
    flag_combinations(
        PlxContinuousMeasurement,
        {"spo2": Medfloat(98, 0), "pulse_rate": Medfloat(60, 0)},
        "6200 3c00",
        [
            (0x01, "cff3 3d00", {"spo2_fast": Medfloat(975, -1), "pulse_rate_fast": Medfloat(61, 0)}),
            (0x02, "6100 3b00", {"spo2_slow": Medfloat(97, 0), "pulse_rate_slow": Medfloat(59, 0)}),
            (0x04, "8000", {"measurement_status": PlxMeasurementStatus.VALIDATED_DATA}),
            (
                0x08,
                "010000",
                {"device_and_sensor_status": PlxDeviceAndSensorStatus.EXTENDED_DISPLAY_UPDATE_ONGOING},
            ),
            (0x10, "7bf0", {"pulse_amplitude_index": Medfloat(123, -1)}),
        ],
    )
)


@pytest.mark.parametrize(("payload", "expected"), CONTINUOUS)
def test_plx_continuous(payload: bytes, expected: PlxContinuousMeasurement) -> None:
    assert parse("2A5F", payload) == expected
    assert encode.measurement(expected) == payload


# --- Blood Pressure Measurement 0x2A35 / Intermediate Cuff Pressure 0x2A36 --------------------

BP_STATUS = BloodPressureMeasurementStatus(  # 0x002D = bits 0, 2, 3 (range = 1) and 5
    body_movement=True,
    cuff_fit_loose=False,
    irregular_pulse=True,
    pulse_rate_range=PulseRateRange.EXCEEDS,
    improper_measurement_position=True,
)
BP_OPTIONAL: list[tuple[int, str, dict[str, Any]]] = [
    (0x01, "", {"unit": "kPa"}),
    (0x02, "e707 0c 1f 17 3b 3a", {"timestamp": datetime(2023, 12, 31, 23, 59, 58)}),
    (0x04, "4000", {"pulse_rate": Medfloat(64, 0)}),
    (0x08, "01", {"user_id": 1}),
    (0x10, "2d00", {"measurement_status": BP_STATUS}),
]
BLOOD_PRESSURE = list(
    flag_combinations(
        BloodPressureMeasurement,
        {
            "systolic": Medfloat(120, 0),
            "diastolic": Medfloat(80, 0),
            "mean_arterial_pressure": Medfloat(93, 0),
            "unit": "mmHg",
        },
        "7800 5000 5d00",
        BP_OPTIONAL,
    )
)
CUFF = list(
    flag_combinations(
        IntermediateCuffPressure,
        {"current_cuff_pressure": Medfloat(140, 0), "unit": "mmHg"},
        "8c00 ff07 ff07",  # the unused diastolic and MAP subfields are NaN (BLS)
        BP_OPTIONAL,
    )
)


@pytest.mark.parametrize(("payload", "expected"), BLOOD_PRESSURE)
def test_blood_pressure(payload: bytes, expected: BloodPressureMeasurement) -> None:
    assert parse("2A35", payload) == expected
    assert encode.measurement(expected) == payload


@pytest.mark.parametrize(("payload", "expected"), CUFF)
def test_intermediate_cuff_pressure(payload: bytes, expected: IntermediateCuffPressure) -> None:
    assert parse("2A36", payload) == expected
    assert encode.measurement(expected) == payload


@pytest.mark.parametrize(
    ("bits", "pulse_rate_range"),
    [
        (0x0000, PulseRateRange.WITHIN),
        (0x0008, PulseRateRange.EXCEEDS),
        (0x0010, PulseRateRange.BELOW),
        (0x0018, PulseRateRange.RESERVED),
    ],
)
def test_blood_pressure_pulse_rate_range(bits: int, pulse_rate_range: PulseRateRange) -> None:
    payload = bytes.fromhex("10 7800 5000 5d00") + bits.to_bytes(2, "little")
    status = parse("2A35", payload).measurement_status
    assert status == BloodPressureMeasurementStatus(pulse_rate_range=pulse_rate_range)


def test_blood_pressure_each_status_bit() -> None:
    def status(bits: int) -> BloodPressureMeasurementStatus | None:
        return parse(
            "2A35", bytes.fromhex("10 7800 5000 5d00") + bits.to_bytes(2, "little")
        ).measurement_status

    assert status(0x0001) == BloodPressureMeasurementStatus(body_movement=True)
    assert status(0x0002) == BloodPressureMeasurementStatus(cuff_fit_loose=True)
    assert status(0x0004) == BloodPressureMeasurementStatus(irregular_pulse=True)
    assert status(0x0020) == BloodPressureMeasurementStatus(improper_measurement_position=True)
    assert status(0xFFC0) == BloodPressureMeasurementStatus()  # bits 6-15 are RFU: ignored


def test_intermediate_cuff_pressure_ignores_unused_subfields() -> None:
    # Some monitors send 0x0000 instead of NaN in the unused subfields.
    assert parse("2A36", bytes.fromhex("00 8c00 0000 0000")) == IntermediateCuffPressure(
        Medfloat(140, 0), "mmHg"
    )


# --- Temperature Measurement 0x2A1C / Intermediate Temperature 0x2A1E ------------------------

TEMPERATURE_OPTIONAL: list[tuple[int, str, dict[str, Any]]] = [
    (0x01, "", {"unit": "F"}),
    (0x02, "e807 02 1d 0c 00 00", {"timestamp": datetime(2024, 2, 29, 12, 0, 0)}),
    (0x04, "01", {"temperature_type": TemperatureType.ARMPIT}),
]
TEMPERATURE = list(
    flag_combinations(
        TemperatureMeasurement,
        {"temperature": Medfloat(366, -1), "unit": "C"},
        "6e0100ff",  # FLOAT 0xFF00016E: exponent -1, mantissa 366
        TEMPERATURE_OPTIONAL,
    )
)
INTERMEDIATE_TEMPERATURE = list(
    flag_combinations(
        IntermediateTemperature,
        {"temperature": Medfloat(3592, -2), "unit": "C"},
        "080e00fe",  # FLOAT 0xFE000E08: exponent -2, mantissa 3592
        TEMPERATURE_OPTIONAL,
    )
)


@pytest.mark.parametrize(("payload", "expected"), TEMPERATURE)
def test_temperature(payload: bytes, expected: TemperatureMeasurement) -> None:
    assert parse("2A1C", payload) == expected
    assert encode.measurement(expected) == payload


@pytest.mark.parametrize(("payload", "expected"), INTERMEDIATE_TEMPERATURE)
def test_intermediate_temperature(payload: bytes, expected: IntermediateTemperature) -> None:
    assert parse("2A1E", payload) == expected
    assert encode.measurement(expected) == payload


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (1, TemperatureType.ARMPIT),
        (2, TemperatureType.BODY),
        (3, TemperatureType.EAR),
        (4, TemperatureType.FINGER),
        (5, TemperatureType.GASTROINTESTINAL_TRACT),
        (6, TemperatureType.MOUTH),
        (7, TemperatureType.RECTUM),
        (8, TemperatureType.TOE),
        (9, TemperatureType.TYMPANUM),
        (0, 0),
        (10, 10),
        (255, 255),  # reserved codes are kept as plain ints
    ],
)
def test_temperature_type_codes(code: int, expected: int) -> None:
    decoded = parse("2A1C", bytes.fromhex("04 6e0100ff") + bytes([code]))
    assert decoded.temperature_type == expected
    assert type(decoded.temperature_type) is type(expected)
    assert encode.measurement(decoded) == bytes.fromhex("04 6e0100ff") + bytes([code])


# --- Weight Measurement 0x2A9D ------------------------------------------------------------------


@pytest.mark.parametrize("flags", range(16))
def test_weight(flags: int) -> None:
    imperial = bool(flags & 0x01)
    chunks = ["b036"]  # uint16 14000: 70.000 kg or 140.00 lb
    expected: dict[str, Any] = {
        "weight": Decimal("140.00") if imperial else Decimal("70.000"),
        "unit": "lb" if imperial else "kg",
    }
    if flags & 0x02:
        chunks.append("e707 0c 1f 17 3b 3a")
        expected["timestamp"] = datetime(2023, 12, 31, 23, 59, 58)
    if flags & 0x04:
        chunks.append("ff")
        expected["user_id"] = 0xFF  # "unknown user"
    if flags & 0x08:
        chunks.append("e500 bc02")  # BMI 229 x 0.1; height 700 x 0.001 m or x 0.1 in
        expected["bmi"] = Decimal("22.9")
        expected["height"] = Decimal("70.0") if imperial else Decimal("0.700")
    payload = bytes([flags]) + bytes.fromhex("".join(chunks).replace(" ", ""))
    decoded = parse("2A9D", payload)
    assert decoded == WeightMeasurement(**expected)
    assert decoded.height_unit == ("in" if imperial else "m")
    assert encode.measurement(decoded) == payload


def test_weight_measurement_unsuccessful() -> None:
    payload = bytes.fromhex("06 ffff e707 0c 1f 17 3b 3a 02")
    assert parse("2A9D", payload) == WeightMeasurement(
        MEASUREMENT_UNSUCCESSFUL, "kg", datetime(2023, 12, 31, 23, 59, 58), 2
    )
    assert encode.measurement(parse("2A9D", payload)) == payload


def test_weight_unsuccessful_with_bmi_is_rejected() -> None:
    with pytest.raises(DecodeError, match="WSS forbids"):
        parse("2A9D", bytes.fromhex("08 ffff e500 bc02"))


def test_weight_largest_values() -> None:
    decoded = parse("2A9D", bytes.fromhex("08 feff ffff ffff"))
    assert decoded == WeightMeasurement(
        Decimal("327.670"), "kg", bmi=Decimal("6553.5"), height=Decimal("65.535")
    )


# --- Heart Rate Measurement 0x2A37 --------------------------------------------------------------

CONTACT = {0b00: None, 0b01: None, 0b10: False, 0b11: True}  # (supported, detected) in bits 2, 1


@pytest.mark.parametrize("flags", range(32))
def test_heart_rate(flags: int) -> None:
    chunks = ["4800" if flags & 0x01 else "48"]  # 72 bpm as uint16 or uint8
    energy = rr = None
    if flags & 0x08:
        chunks.append("e803")
        energy = 1000
    if flags & 0x10:
        chunks.append("0004 2003")  # 1024/1024 s, 800/1024 s
        rr = (1.0, 0.78125)
    payload = bytes([flags]) + bytes.fromhex("".join(chunks).replace(" ", ""))
    expected = HeartRateMeasurement(72, CONTACT[(flags >> 1) & 0b11], energy, rr or ())
    assert parse("2A37", payload) == expected
    contact_bits = flags & 0b0110 if flags & 0b0100 else 0  # 0b01 "not supported" re-encodes as 0b00
    canonical = bytes([flags & ~0b0110 | contact_bits]) + payload[1:]
    assert (
        encode.heart_rate(
            72,
            sensor_contact=expected.sensor_contact,
            energy_expended=energy,
            rr_intervals=expected.rr_intervals,
            uint16=bool(flags & 0x01),
        )
        == canonical
    )


def test_heart_rate_uint16_value_above_255() -> None:
    assert parse("2A37", bytes.fromhex("01 2c01")) == HeartRateMeasurement(300)
    assert encode.heart_rate(300) == bytes.fromhex("01 2c01")


def test_heart_rate_many_rr_intervals() -> None:
    payload = bytes.fromhex("10 50") + bytes.fromhex("0004") * 9
    assert parse("2A37", payload) == HeartRateMeasurement(80, rr_intervals=(1.0,) * 9)


@pytest.mark.parametrize(
    ("hex_payload", "message"),
    [
        ("10 48", "no interval"),  # RR flag without intervals
        ("10 48 0004 20", "whole number"),  # half an interval
        ("00 48 00", "trailing"),
        ("08 48 e8", "truncated"),  # energy expended cut short
        ("01 48", "truncated"),  # uint16 value cut short
        ("", "empty"),
    ],
)
def test_heart_rate_malformed(hex_payload: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        parse("2A37", bytes.fromhex(hex_payload))


# --- Battery Level 0x2A19 ------------------------------------------------------------------------


@pytest.mark.parametrize("level", [0, 1, 55, 100])
def test_battery_level(level: int) -> None:
    assert parse("2A19", bytes([level])) == BatteryLevel(level)
    assert encode.battery_level(level) == bytes([level])


@pytest.mark.parametrize("payload", [b"", b"\x65", b"\xff", b"\x50\x00"])
def test_battery_level_malformed(payload: bytes) -> None:
    with pytest.raises(DecodeError, match="Battery Level"):
        parse("2A19", payload)


# --- Date Time ---------------------------------------------------------------------------------


def _bp_at(date_hex: str) -> bytes:
    return bytes.fromhex("02 7800 5000 5d00" + date_hex.replace(" ", ""))


@pytest.mark.parametrize(
    ("date_hex", "expected"),
    [
        ("2e06 0a 0f 00 00 00", datetime(1582, 10, 15)),  # first year the GSS allows
        ("0f27 0c 1f 17 3b 3b", datetime(9999, 12, 31, 23, 59, 59)),
        ("e807 02 1d 00 00 00", datetime(2024, 2, 29)),  # leap day
        ("0000 03 01 08 1e 00", UnknownDateTime(0, 3, 1, 8, 30, 0)),  # year not known
        ("e807 00 01 08 1e 00", UnknownDateTime(2024, 0, 1, 8, 30, 0)),  # month not known
        ("e807 03 00 08 1e 00", UnknownDateTime(2024, 3, 0, 8, 30, 0)),  # day not known
        ("0000 00 00 00 00 00", UnknownDateTime(0, 0, 0, 0, 0, 0)),
    ],
)
def test_date_time(date_hex: str, expected: datetime | UnknownDateTime) -> None:
    decoded = parse("2A35", _bp_at(date_hex))
    assert decoded.timestamp == expected
    assert encode.measurement(decoded) == _bp_at(date_hex)


@pytest.mark.parametrize(
    ("date_hex", "message"),
    [
        ("e707 02 1d 00 00 00", "does not exist"),  # 29 February 2023
        ("e807 04 1f 00 00 00", "does not exist"),  # 31 April
        ("e807 0d 01 00 00 00", "month 13"),
        ("e807 01 20 00 00 00", "day 32"),
        ("e807 01 01 18 00 00", "hours 24"),
        ("e807 01 01 00 3c 00", "minutes 60"),
        ("e807 01 01 00 00 3c", "seconds 60"),  # no leap seconds in Date Time
        ("2d06 01 01 00 00 00", "year 1581"),
        ("1027 01 01 00 00 00", "year 10000"),
        ("0000 0d 01 00 00 00", "month 13"),  # impossible even when the year is not known
    ],
)
def test_date_time_impossible(date_hex: str, message: str) -> None:
    with pytest.raises(DecodeError, match=f"Blood Pressure Measurement.*timestamp.*{message}"):
        parse("2A35", _bp_at(date_hex))


# --- RFU bits, length policy, UUID forms ---------------------------------------------------------


@pytest.mark.parametrize(
    ("uuid", "payload", "rfu_flags"),
    [
        ("2A5E", bytes.fromhex("00 6100 4800"), 0xE0),
        ("2A5F", bytes.fromhex("00 6200 3c00"), 0xE0),
        ("2A35", bytes.fromhex("00 7800 5000 5d00"), 0xE0),
        ("2A36", bytes.fromhex("00 8c00 ff07 ff07"), 0xE0),
        ("2A1C", bytes.fromhex("00 6e0100ff"), 0xF8),
        ("2A1E", bytes.fromhex("00 6e0100ff"), 0xF8),
        ("2A9D", bytes.fromhex("00 b036"), 0xF0),
        ("2A37", bytes.fromhex("00 48"), 0xE0),
    ],
)
def test_rfu_flag_bits_are_ignored(uuid: str, payload: bytes, rfu_flags: int) -> None:
    # SIG convention: RFU bits are sent as 0 and ignored on receipt.
    assert parse(uuid, bytes([payload[0] | rfu_flags]) + payload[1:]) == parse(uuid, payload)


def test_rfu_status_bits_are_dropped() -> None:
    spot = parse(
        "2A5E", bytes.fromhex("06 6100 4800 1f00 ffffff")
    )  # measurement status bits 0-4, device bits 16-23
    assert spot.measurement_status == PlxMeasurementStatus(0)
    assert spot.device_and_sensor_status == PlxDeviceAndSensorStatus(0xFFFF)


# Every characteristic with every optional field present: the inputs for the truncation tests.
FULL_PAYLOADS = {
    "2A5E": SPOT_CHECK[-1].values[0],
    "2A5F": CONTINUOUS[-1].values[0],
    "2A35": BLOOD_PRESSURE[-1].values[0],
    "2A36": CUFF[-1].values[0],
    "2A1C": TEMPERATURE[-1].values[0],
    "2A1E": INTERMEDIATE_TEMPERATURE[-1].values[0],
    "2A9D": bytes.fromhex("0f b036 e7070c1f173b3a ff e500 bc02"),
    "2A37": bytes.fromhex("1f 4800 e803 0004 2003"),
    "2A19": bytes.fromhex("64"),
}


@pytest.mark.parametrize("uuid", FULL_PAYLOADS)
def test_every_prefix_is_truncated(uuid: str) -> None:
    payload = FULL_PAYLOADS[uuid]
    for cut in range(len(payload)):
        prefix = payload[:cut]
        if uuid == "2A37" and cut == len(payload) - 2:
            # Heart rate: the RR list has no count, so dropping the last interval is a valid payload.
            assert parse(uuid, prefix).rr_intervals == (1.0,)
            continue
        with pytest.raises(DecodeError):
            parse(uuid, prefix)


@pytest.mark.parametrize("uuid", FULL_PAYLOADS)
@pytest.mark.parametrize("extra", [b"\x00", b"\xff\xff\xff"])
def test_trailing_bytes_are_rejected(uuid: str, extra: bytes) -> None:
    payload = FULL_PAYLOADS[uuid]
    if uuid == "2A37" and len(extra) % 2 == 0:
        pytest.skip("an even number of extra bytes is more RR intervals")
    with pytest.raises(DecodeError, match=r"trailing|whole number|expected 1 byte"):
        parse(uuid, payload + extra)


def test_truncation_message_names_the_fields() -> None:
    with pytest.raises(DecodeError) as err:
        parse("2A35", bytes.fromhex("1e 7800 5000 5d00 e707"))
    assert str(err.value) == (
        "Blood Pressure Measurement (0x2A35): truncated: flags 0x1E announce 19 bytes "
        "(Flags, systolic, diastolic, mean_arterial_pressure, timestamp, pulse_rate, user_id, "
        "measurement_status), got 9"
    )


@pytest.mark.parametrize(
    "uuid",
    [
        "2A35",
        "2a35",
        "0x2A35",
        " 2A35 ",
        "00002a35-0000-1000-8000-00805f9b34fb",
        "00002A35-0000-1000-8000-00805F9B34FB",
    ],
)
def test_parse_accepts_uuid_forms(uuid: str) -> None:
    assert parse(uuid, BLOOD_PRESSURE[0].values[0]) == BLOOD_PRESSURE[0].values[1]


@pytest.mark.parametrize(
    ("uuid", "message"),
    [
        ("2A1D", "no decoder for characteristic 0x2A1D"),  # Temperature Type: not decoded
        ("FFF1", "no decoder for characteristic 0xFFF1"),
        # A vendor UUID is a valid characteristic name; this one (Nordic UART) has no decoder.
        (
            "6E400003-B5A3-F393-E0A9-E50E24DCCA9E",
            "no decoder for characteristic 6e400003-b5a3-f393-e0a9-e50e24dcca9e",
        ),
        ("blood pressure", "cannot choose a decoder: not a Bluetooth UUID"),
        ("2A5", "cannot choose a decoder: not a Bluetooth UUID"),
    ],
)
def test_parse_unknown_uuid(uuid: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        parse(uuid, b"\x00")


def test_parse_accepts_bytearray_and_memoryview() -> None:
    payload = FULL_PAYLOADS["2A5E"]
    assert parse("2A5E", bytearray(payload)) == parse("2A5E", memoryview(payload)) == SPOT_CHECK[-1].values[1]


def test_parse_rejects_non_bytes() -> None:
    with pytest.raises(TypeError, match="payload must be bytes"):
        parse("2A5E", "006100")  # type: ignore[arg-type]


def test_special_values_inside_measurements() -> None:
    decoded = parse("2A35", bytes.fromhex("04 ff07 0008 fe07 0208"))
    assert decoded == BloodPressureMeasurement(
        NoValue("NaN"), NoValue("NRes"), NoValue("+INF"), "mmHg", pulse_rate=NoValue("-INF")
    )
