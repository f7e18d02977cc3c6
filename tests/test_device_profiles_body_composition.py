"""Body Composition Measurement (0x2A9C): every one of the 2^13 flag combinations, written
from the GSS field table (raw counts x the resolution the units flag chooses)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.vitals import Vital
from device_profiles import (
    FAT_MEASUREMENT_UNSUCCESSFUL,
    BodyCompositionMeasurement,
    ClinicalObservation,
    DecodeError,
    Normalised,
    encode,
    normalise,
    parse,
)

KG, LB = Decimal("0.005"), Decimal("0.01")
# (flag bit, field, hex chunk, raw count, resolution SI, resolution Imperial); None = not scaled.
FIELDS: list[tuple[int, str, str, int, Decimal | None, Decimal | None]] = [
    (0x0004, "user_id", "01", 1, None, None),
    (0x0008, "basal_metabolism", "f41a", 6900, None, None),  # kJ
    (0x0010, "muscle_percentage", "9101", 401, Decimal("0.1"), Decimal("0.1")),  # 40.1 %
    (0x0020, "muscle_mass", "4416", 5700, KG, LB),  # 28.5 kg / 57.00 lb
    (0x0040, "fat_free_mass", "0c2b", 11020, KG, LB),
    (0x0080, "soft_lean_mass", "0028", 10240, KG, LB),
    (0x0100, "body_water_mass", "7c1f", 8060, KG, LB),
    (0x0200, "impedance", "0314", 5123, Decimal("0.1"), Decimal("0.1")),  # 512.3 ohm
    (0x0400, "weight", "c436", 14020, KG, LB),  # 70.1 kg / 140.20 lb
    (0x0800, "height", "d606", 1750, Decimal("0.001"), Decimal("0.1")),  # 1.75 m / 175.0 in
]
TIMESTAMP = (0x0002, "e807 03 01 08 1e 00", datetime(2024, 3, 1, 8, 30))
FAT = "d500"  # 213 x 0.1 % = 21.3 %


def _case(flags: int) -> tuple[bytes, BodyCompositionMeasurement]:
    imperial = bool(flags & 0x0001)
    hex_payload = flags.to_bytes(2, "little").hex() + FAT
    expected: dict[str, object] = {
        "body_fat_percentage": Decimal("21.3"),
        "unit": "lb" if imperial else "kg",
        "multiple_packet": bool(flags & 0x1000),
    }
    if flags & TIMESTAMP[0]:
        hex_payload += TIMESTAMP[1]
        expected["timestamp"] = TIMESTAMP[2]
    for bit, name, chunk, raw, si, imperial_step in FIELDS:
        if flags & bit:
            hex_payload += chunk
            step = imperial_step if imperial else si
            expected[name] = raw if step is None else raw * step
    return bytes.fromhex(hex_payload.replace(" ", "")), BodyCompositionMeasurement(**expected)  # type: ignore[arg-type]


def test_every_flag_combination() -> None:
    bits = [0x0001, TIMESTAMP[0], *(f[0] for f in FIELDS), 0x1000]
    assert len(bits) == 13
    seen = 0
    for r in range(len(bits) + 1):
        for chosen in itertools.combinations(bits, r):
            payload, expected = _case(sum(chosen))
            assert parse("2A9C", payload) == expected, f"flags 0x{sum(chosen):04X}"
            assert encode.measurement(expected) == payload, f"flags 0x{sum(chosen):04X}"
            seen += 1
    assert seen == 2**13


def test_named_values() -> None:
    payload, _ = _case(0x0FFE)
    assert parse("2A9C", payload) == BodyCompositionMeasurement(
        body_fat_percentage=Decimal("21.3"),
        unit="kg",
        timestamp=datetime(2024, 3, 1, 8, 30),
        user_id=1,
        basal_metabolism=6900,
        muscle_percentage=Decimal("40.1"),
        muscle_mass=Decimal("28.5"),
        fat_free_mass=Decimal("55.1"),
        soft_lean_mass=Decimal("51.2"),
        body_water_mass=Decimal("40.3"),
        impedance=Decimal("512.3"),
        weight=Decimal("70.1"),
        height=Decimal("1.75"),
    )
    imperial = parse("2A9C", _case(0x0C01)[0])
    assert (imperial.weight, imperial.height, imperial.height_unit) == (
        Decimal("140.2"),
        Decimal("175.0"),
        "in",
    )


def test_fat_measurement_unsuccessful_keeps_the_rest() -> None:
    # BCS: 0xFFFF in Body Fat Percentage = Measurement Unsuccessful; the weight is still a weight.
    decoded = parse("2A9C", bytes.fromhex("0004 ffff c436"))
    assert decoded == BodyCompositionMeasurement(FAT_MEASUREMENT_UNSUCCESSFUL, "kg", weight=Decimal("70.1"))
    assert encode.measurement(decoded) == bytes.fromhex("0004 ffff c436")
    assert normalise(decoded).observations == (ClinicalObservation(Vital.BODY_WEIGHT, 70.1, "kg"),)


def test_rfu_flag_bits_are_ignored() -> None:
    assert parse("2A9C", bytes.fromhex("00e0 d500")) == parse("2A9C", bytes.fromhex("0000 d500"))


@pytest.mark.parametrize(
    "hex_payload",
    [
        "",
        "00",  # half a Flags field
        "0000",  # no Body Fat Percentage
        "0000 d5",
        "0000 d500 00",
        "0004 d500 c4",
        "0200 d500 e807 0d 01 08 1e 00",  # month 13
    ],
)
def test_corrupt_body_composition(hex_payload: str) -> None:
    with pytest.raises(DecodeError, match=r"Body Composition Measurement \(0x2A9C\)"):
        parse("2A9C", bytes.fromhex(hex_payload))


def test_truncation_names_the_16_bit_flags() -> None:
    with pytest.raises(
        DecodeError, match=r"flags 0x0400 announce 6 bytes \(Flags, body_fat_percentage, weight\)"
    ):
        parse("2A9C", bytes.fromhex("0004 d500"))


def test_encoder_refuses_values_off_the_grid() -> None:
    with pytest.raises(ValueError, match=r"weight 70\.123 is not a multiple of the 0\.005 resolution"):
        encode.body_composition("21.3", weight="70.123")
    with pytest.raises(ValueError, match="body_fat_percentage"):
        encode.body_composition("21.35")
    with pytest.raises(ValueError, match="unit"):
        encode.body_composition("21.3", unit="st")  # type: ignore[arg-type]


# --- normalisation: only the weight is a vital --------------------------------------------------


def test_only_weight_becomes_an_observation() -> None:
    payload, _ = _case(0x0FFE)
    assert normalise(parse("2A9C", payload)) == Normalised(
        datetime(2024, 3, 1, 8, 30, tzinfo=UTC), (ClinicalObservation(Vital.BODY_WEIGHT, 70.1, "kg"),)
    )


def test_pounds_are_converted() -> None:
    decoded = parse("2A9C", bytes.fromhex("0104 d500 5f3c"))  # 15455 x 0.01 lb = 154.55 lb
    # 154.55 x 0.45359237 = 70.1027... kg
    assert normalise(decoded).observations == (ClinicalObservation(Vital.BODY_WEIGHT, 70.1, "kg"),)


def test_no_weight_no_observation() -> None:
    only_fat = parse("2A9C", bytes.fromhex("0010 d500"))  # flags 0x1000: multiple packet, no weight
    assert only_fat.multiple_packet
    assert normalise(only_fat) == Normalised(None)
