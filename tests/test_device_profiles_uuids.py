"""UUID helpers and the package's import footprint."""

from __future__ import annotations

import subprocess
import sys

import pytest

from device_profiles import DecodeError, uuids


@pytest.mark.parametrize(
    "value",
    [
        "2A5E",
        "2a5e",
        "0x2A5E",
        "0X2a5e",
        " 2A5E\n",
        "00002a5e-0000-1000-8000-00805f9b34fb",
        "00002A5E-0000-1000-8000-00805F9B34FB",
        "{00002a5e-0000-1000-8000-00805f9b34fb}",
        "00002a5e00001000800000805f9b34fb",
    ],
)
def test_short_and_full_uuid(value: str) -> None:
    assert uuids.short_uuid(value) == "2A5E"
    assert uuids.full_uuid(value) == "00002a5e-0000-1000-8000-00805f9b34fb"
    assert uuids.canonical_uuid(value) == "2A5E"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "2A5",
        "2A5E5",
        "2A5G",
        "0x",
        "pulse",
        "00002a5e-0000-1000-8000-00805f9b34fc",
        "6e400001-b5a3-f393-e0a9-e50e24dcca9e",
        None,
        0x2A5E,
    ],
)
def test_short_uuid_rejects_garbage(value: object) -> None:
    with pytest.raises(DecodeError, match="not a 16-bit Bluetooth SIG UUID"):
        uuids.short_uuid(value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a 16-bit Bluetooth SIG UUID"):
        uuids.full_uuid(value)  # type: ignore[arg-type]


def test_canonical_uuid_keeps_vendor_uuids_long() -> None:
    assert (
        uuids.canonical_uuid("6E400001-B5A3-F393-E0A9-E50E24DCCA9E") == "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
    )
    with pytest.raises(DecodeError, match="not a Bluetooth UUID"):
        uuids.canonical_uuid("6E400001-B5A3")


def test_assigned_numbers() -> None:
    assert (
        uuids.PULSE_OXIMETER_SERVICE,
        uuids.BLOOD_PRESSURE_SERVICE,
        uuids.HEALTH_THERMOMETER_SERVICE,
        uuids.WEIGHT_SCALE_SERVICE,
        uuids.HEART_RATE_SERVICE,
        uuids.GLUCOSE_SERVICE,
        uuids.BATTERY_SERVICE,
    ) == ("1822", "1810", "1809", "181D", "180D", "1808", "180F")
    assert (
        uuids.PLX_SPOT_CHECK_MEASUREMENT,
        uuids.PLX_CONTINUOUS_MEASUREMENT,
        uuids.BLOOD_PRESSURE_MEASUREMENT,
        uuids.INTERMEDIATE_CUFF_PRESSURE,
        uuids.TEMPERATURE_MEASUREMENT,
        uuids.INTERMEDIATE_TEMPERATURE,
        uuids.WEIGHT_MEASUREMENT,
        uuids.HEART_RATE_MEASUREMENT,
        uuids.BATTERY_LEVEL,
    ) == ("2A5E", "2A5F", "2A35", "2A36", "2A1C", "2A1E", "2A9D", "2A37", "2A19")


def test_name_of() -> None:
    assert uuids.name_of("00002a9d-0000-1000-8000-00805f9b34fb") == "Weight Measurement (0x2A9D)"
    assert uuids.name_of("FFF0") == "0xFFF0"
    assert uuids.name_of("garbage") == "'garbage'"
    assert (
        uuids.name_of("49535343-1E4D-4BD9-BA61-23C647249616")
        == "BerryMed BCI Data (49535343-1e4d-4bd9-ba61-23c647249616)"
    )
    assert uuids.name_of("6E400001-B5A3-F393-E0A9-E50E24DCCA9E") == "6e400001-b5a3-f393-e0a9-e50e24dcca9e"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2A5E", "00002a5e-0000-1000-8000-00805f9b34fb"),
        ("00002A5E-0000-1000-8000-00805F9B34FB", "00002a5e-0000-1000-8000-00805f9b34fb"),
        ("49535343-1E4D-4BD9-BA61-23C647249616", "49535343-1e4d-4bd9-ba61-23c647249616"),
        ("{49535343-1e4d-4bd9-ba61-23c647249616}", "49535343-1e4d-4bd9-ba61-23c647249616"),
    ],
)
def test_long_uuid_is_what_bleak_looks_up(value: str, expected: str) -> None:
    # long_uuid, unlike full_uuid, accepts vendor UUIDs: the gateway subscribes to both kinds.
    assert uuids.long_uuid(value) == expected
    assert uuids.long_uuid(uuids.canonical_uuid(value)) == expected


def test_long_uuid_rejects_garbage() -> None:
    with pytest.raises(DecodeError, match="not a Bluetooth UUID"):
        uuids.long_uuid("2A5G")


def test_new_assigned_numbers() -> None:
    # Bluetooth SIG Assigned Numbers 3.4 / 3.8.
    assert (uuids.BODY_COMPOSITION_SERVICE, uuids.CURRENT_TIME_SERVICE) == ("181B", "1805")
    assert (
        uuids.BODY_COMPOSITION_MEASUREMENT,
        uuids.GLUCOSE_MEASUREMENT,
        uuids.GLUCOSE_MEASUREMENT_CONTEXT,
        uuids.DATE_TIME,
        uuids.CURRENT_TIME,
        uuids.RECORD_ACCESS_CONTROL_POINT,
        uuids.BLOOD_PRESSURE_FEATURE,
        uuids.PLX_FEATURES,
        uuids.WEIGHT_SCALE_FEATURE,
        uuids.GLUCOSE_FEATURE,
        uuids.BODY_COMPOSITION_FEATURE,
    ) == ("2A9C", "2A18", "2A34", "2A08", "2A2B", "2A52", "2A49", "2A60", "2A9E", "2A51", "2A9B")


def test_import_is_light() -> None:
    # The gateway on a Raspberry Pi imports the decoders; keep heavy and I/O libraries out.
    heavy = ("numpy", "bleak", "paho", "psycopg", "pydantic")
    code = (
        "import sys, device_profiles; device_profiles.parse('2A19', b'\\x10'); "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_catalogue_is_reachable_from_the_package() -> None:
    import device_profiles

    assert device_profiles.catalogue.load_profiles()[0].id == "and_ua651ble"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = device_profiles.nothing  # type: ignore[attr-defined]
