"""The profile catalogue: shipped files load and agree with the decoders; bad files fail loudly."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from device_profiles import BloodPressureMeasurementStatus, DecodeError, ProfileError, encode, parse, uuids
from device_profiles.catalogue import Profile, load_profile, load_profiles, match_profile
from device_profiles.registry import DECODERS, DECODERS_BY_NAME

NEW_YEAR = datetime(2024, 1, 1)
SHIPPED = Path(__file__).resolve().parent.parent / "device_profiles" / "profiles"

# One well-formed payload per decoder, with every optional field: the source of each
# profile's corrupt-input test below.
VALID_PAYLOADS: dict[str, bytes] = {
    "plx_spot_check": encode.plx_spot_check(
        97,
        72,
        timestamp=NEW_YEAR,
        measurement_status=0x0080,
        device_and_sensor_status=0x20,
        pulse_amplitude_index="2.1",
    ),
    "plx_continuous": encode.plx_continuous(
        97,
        72,
        spo2_fast=96,
        pulse_rate_fast=73,
        spo2_slow=97,
        pulse_rate_slow=71,
        measurement_status=0,
        device_and_sensor_status=0,
        pulse_amplitude_index=3,
    ),
    "blood_pressure": encode.blood_pressure(
        120,
        80,
        93,
        timestamp=NEW_YEAR,
        pulse_rate=60,
        user_id=1,
        measurement_status=BloodPressureMeasurementStatus(),
    ),
    "intermediate_cuff_pressure": encode.intermediate_cuff_pressure(80, pulse_rate=60, user_id=1),
    "temperature": encode.temperature("36.6", timestamp=NEW_YEAR, temperature_type=1),
    "intermediate_temperature": encode.intermediate_temperature("36.1", temperature_type=1),
    "weight": encode.weight(70, timestamp=NEW_YEAR, user_id=1, bmi="22.9", height="1.75"),
    "heart_rate": encode.heart_rate(300, sensor_contact=True, energy_expended=10),
    "battery_level": encode.battery_level(90),
}


def test_shipped_profiles_load() -> None:
    profiles = load_profiles()
    assert [p.id for p in profiles] == [
        "generic_blood_pressure",
        "generic_health_thermometer",
        "generic_heart_rate",
        "generic_pulse_oximeter",
        "generic_weight_scale",
    ]
    assert {p.id for p in profiles} == {f.stem for f in SHIPPED.glob("*.json")}


def test_every_standard_service_has_a_generic_profile() -> None:
    generic = {s for p in load_profiles() if p.generic for s in p.match.service_uuids}
    assert generic == {
        uuids.PULSE_OXIMETER_SERVICE,
        uuids.BLOOD_PRESSURE_SERVICE,
        uuids.HEALTH_THERMOMETER_SERVICE,
        uuids.WEIGHT_SCALE_SERVICE,
        uuids.HEART_RATE_SERVICE,
    }


@pytest.mark.parametrize("profile", load_profiles(), ids=lambda p: p.id)
def test_profiles_reference_known_decoders(profile: Profile) -> None:
    assert profile.source
    for c in profile.characteristics:
        decoder = DECODERS_BY_NAME[c.decoder]
        assert decoder.uuid == c.uuid
        assert DECODERS[c.uuid] is decoder
        assert c.mode in decoder.modes
        assert c.service in decoder.services


def test_every_decoder_has_a_corrupt_input_fixture() -> None:
    # Meta-test (STYLE.md): no profile may name a decoder without a corrupt-input test.
    used = {c.decoder for p in load_profiles() for c in p.characteristics}
    assert used <= set(VALID_PAYLOADS)
    assert set(VALID_PAYLOADS) == set(DECODERS_BY_NAME)


@pytest.mark.parametrize(
    ("profile", "characteristic"),
    [pytest.param(p, c, id=f"{p.id}-{c.decoder}") for p in load_profiles() for c in p.characteristics],
)
def test_profile_characteristic_rejects_corrupt_input(profile: Profile, characteristic: Any) -> None:
    valid = VALID_PAYLOADS[characteristic.decoder]
    decoded = parse(characteristic.uuid, valid)
    assert isinstance(decoded, DECODERS_BY_NAME[characteristic.decoder].result)
    assert encode.measurement(decoded) == valid
    for corrupt in (b"", valid[:-1], valid + b"\x00"):
        with pytest.raises(DecodeError, match=uuids.NAMES[characteristic.uuid]):
            parse(characteristic.uuid, corrupt)


# --- bad files ---------------------------------------------------------------------------------


def _write(tmp_path: Path, data: dict[str, Any] | str, name: str = "acme_ox1.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def _good(**changes: Any) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "id": "acme_ox1",
        "manufacturer": "Acme",
        "model": "OX-1",
        "match": {"name_patterns": ["OX-1 [0-9A-F]{4}"]},
        "characteristics": [
            {"uuid": "2A5F", "service": "1822", "mode": "notify", "decoder": "plx_continuous"}
        ],
        "pairing": "none",
        "source": "Acme OX-1 BLE protocol v2",
    }
    profile.update(changes)
    return profile


def test_a_good_profile_loads(tmp_path: Path) -> None:
    profile = load_profile(_write(tmp_path, _good()))
    assert profile.id == "acme_ox1"
    assert profile.characteristics[0].uuid == "2A5F"
    assert not profile.generic


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "acme_ox1.json: not valid JSON"),
        ("[]", "acme_ox1.json: \\(top level\\)"),
        (
            _good(pairing="bluetooth"),
            "acme_ox1.json: pairing: Input should be 'none', 'just_works' or 'passkey'",
        ),
        ({k: v for k, v in _good().items() if k != "source"}, "acme_ox1.json: source: Field required"),
        (_good(colour="red"), "acme_ox1.json: colour: Extra inputs are not permitted"),
        (_good(id="Acme OX1"), "acme_ox1.json: id: String should match pattern"),
        (_good(id="acme_ox2"), "acme_ox1.json: id: 'acme_ox2' must equal the file name 'acme_ox1'"),
        (_good(characteristics=[]), "acme_ox1.json: characteristics: .*at least one characteristic"),
        (
            _good(
                characteristics=[{"uuid": "2A5F", "service": "1822", "mode": "notify", "decoder": "plx_fast"}]
            ),
            "acme_ox1.json: characteristics.0.decoder: .*unknown decoder 'plx_fast'",
        ),
        (
            _good(
                characteristics=[
                    {"uuid": "2A5E", "service": "1822", "mode": "notify", "decoder": "plx_continuous"}
                ]
            ),
            r"acme_ox1.json: characteristics.0: .*uuid: PLX Spot-Check Measurement \(0x2A5E\) is not what",
        ),
        (
            _good(
                characteristics=[
                    {"uuid": "2A5F", "service": "1822", "mode": "indicate", "decoder": "plx_continuous"}
                ]
            ),
            r"acme_ox1.json: characteristics.0: .*mode: PLX Continuous Measurement \(0x2A5F\) supports",
        ),
        (
            _good(
                characteristics=[
                    {"uuid": "2A5F", "service": "1810", "mode": "notify", "decoder": "plx_continuous"}
                ]
            ),
            "acme_ox1.json: characteristics.0: .*service: .* belongs to Pulse Oximeter Service",
        ),
        (
            _good(
                characteristics=[
                    {"uuid": "2A5X", "service": "1822", "mode": "notify", "decoder": "plx_continuous"}
                ]
            ),
            "acme_ox1.json: characteristics.0.uuid: .*not a Bluetooth UUID",
        ),
        (
            _good(
                characteristics=[
                    {"uuid": "2A5F", "service": "1822", "mode": "notify", "decoder": "plx_continuous"}
                ]
                * 2
            ),
            "acme_ox1.json: .*characteristics: listed twice: 2A5F",
        ),
        (
            _good(match={"name_patterns": ["OX-1 ("]}),
            "acme_ox1.json: match.name_patterns: .*bad regular expression",
        ),
        (_good(match={}), "acme_ox1.json: match: .*give one or both"),
    ],
)
def test_corrupt_profile_names_file_and_field(
    tmp_path: Path, data: dict[str, Any] | str, message: str
) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(ProfileError, match=message):
        load_profile(path)
    with pytest.raises(ProfileError, match=message):
        load_profiles(tmp_path)


def test_a_corrupt_file_among_good_ones_fails_the_load(tmp_path: Path) -> None:
    for f in SHIPPED.glob("*.json"):
        shutil.copy(f, tmp_path)
    assert len(load_profiles(tmp_path)) == 5
    (tmp_path / "generic_heart_rate.json").write_text('{"id": "generic_heart_rate"}', encoding="utf-8")
    with pytest.raises(ProfileError, match=r"generic_heart_rate\.json: manufacturer: Field required"):
        load_profiles(tmp_path)


def test_vendor_uuids_are_kept_long(tmp_path: Path) -> None:
    profile = load_profile(
        _write(
            tmp_path,
            _good(
                match={
                    "service_uuids": [
                        "6E400001-B5A3-F393-E0A9-E50E24DCCA9E",
                        "00001822-0000-1000-8000-00805f9b34fb",
                    ]
                }
            ),
        )
    )
    assert profile.match.service_uuids == ("6e400001-b5a3-f393-e0a9-e50e24dcca9e", "1822")


# --- matching ----------------------------------------------------------------------------------


@pytest.fixture
def catalogue(tmp_path: Path) -> tuple[Profile, ...]:
    for f in SHIPPED.glob("*.json"):
        shutil.copy(f, tmp_path)
    _write(tmp_path, _good(match={"name_patterns": ["OX-1 [0-9A-F]{4}"], "service_uuids": ["1822"]}))
    _write(
        tmp_path, _good(id="acme_ox2", model="OX-2", match={"name_patterns": ["(?i)ox-2.*"]}), "acme_ox2.json"
    )
    return load_profiles(tmp_path)


def _match(catalogue: tuple[Profile, ...], name: str | None, services: list[str]) -> str | None:
    found = match_profile(catalogue, name, services)
    return found.id if found else None


def test_name_pattern_beats_generic_service(catalogue: tuple[Profile, ...]) -> None:
    assert _match(catalogue, "OX-1 12AB", ["1822"]) == "acme_ox1"
    assert _match(catalogue, "OX-1 12AB", []) == "acme_ox1"  # names match without advertised services
    assert _match(catalogue, "ox-2 home", ["1822", "180F"]) == "acme_ox2"


def test_name_patterns_match_the_whole_name(catalogue: tuple[Profile, ...]) -> None:
    assert _match(catalogue, "OX-1 12AB extra", ["1822"]) == "generic_pulse_oximeter"
    assert _match(catalogue, "MY OX-1 12AB", []) is None


@pytest.mark.parametrize(
    ("services", "expected"),
    [
        (["1822"], "generic_pulse_oximeter"),
        (["00001810-0000-1000-8000-00805f9b34fb"], "generic_blood_pressure"),
        (["0x1809", "180f"], "generic_health_thermometer"),
        (["181d"], "generic_weight_scale"),
        (["180D"], "generic_heart_rate"),
        (["180F"], None),  # battery alone is no health device
        (["6e400001-b5a3-f393-e0a9-e50e24dcca9e"], None),
        ([], None),
    ],
)
def test_generic_profiles_match_by_service(
    catalogue: tuple[Profile, ...], services: list[str], expected: str | None
) -> None:
    assert _match(catalogue, None, services) == expected
    assert _match(catalogue, "Unknown Device", services) == expected


def test_ties_go_to_more_shared_services_then_to_the_first(catalogue: tuple[Profile, ...]) -> None:
    # A watch advertising both heart rate and pulse oximetry: equal generic matches, first by id.
    assert _match(catalogue, None, ["180D", "1822"]) == "generic_heart_rate"
    assert _match(catalogue, None, ["1822", "180D"]) == "generic_heart_rate"


def test_match_rejects_garbage_service_uuids(catalogue: tuple[Profile, ...]) -> None:
    with pytest.raises(ValueError, match="not a Bluetooth UUID"):
        match_profile(catalogue, None, ["pulse oximeter"])
