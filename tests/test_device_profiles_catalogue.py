"""The profile catalogue: shipped files load and agree with the decoders; bad files fail loudly."""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from device_profiles import (
    BciPacket,
    BloodPressureMeasurementStatus,
    DecodeError,
    GlucoseSensorStatus,
    PlxFeatures,
    ProfileError,
    WeightScaleFeature,
    encode,
    normalise,
    parse,
    uuids,
)
from device_profiles.catalogue import (
    CONNECT_ACTIONS,
    ConnectAction,
    Profile,
    load_profile,
    load_profiles,
    match_profile,
)
from device_profiles.features import BloodPressureFeature, BodyCompositionFeature, GlucoseFeature
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
    "body_composition": encode.body_composition(
        "21.3", timestamp=NEW_YEAR, user_id=1, basal_metabolism=6900, weight="70.1", height="1.75"
    ),
    "glucose": encode.glucose(
        7,
        NEW_YEAR,
        time_offset=-30,
        concentration="0.00099",
        sample_type=1,
        sample_location=1,
        sensor_status=GlucoseSensorStatus(),
    ),
    "glucose_context": encode.glucose_context(7, meal=1, tester=1, health=5, hba1c="6.1"),
    "racp_response": encode.racp_response(request_op_code=1, response_code=1),
    "date_time": encode.date_time(NEW_YEAR),
    "current_time": encode.current_time(NEW_YEAR),
    "blood_pressure_feature": encode.feature(BloodPressureFeature(body_movement_detection=True)),
    "plx_features": encode.feature(PlxFeatures(measurement_status_support=0x0080, spot_check_timestamp=True)),
    "weight_scale_feature": encode.feature(WeightScaleFeature(timestamp=True, weight_resolution=7)),
    "glucose_feature": encode.feature(GlucoseFeature(time_fault=True)),
    "body_composition_feature": encode.feature(BodyCompositionFeature(weight=True, mass_resolution=7)),
    "bci_oximeter": encode.bci_oximeter(BciPacket(97, 72, pleth=48, bargraph=4, signal_strength=5)),
}


def test_shipped_profiles_load() -> None:
    profiles = load_profiles()
    assert [p.id for p in profiles] == [
        "and_ua651ble",
        "and_uc352ble",
        "berrymed_bm1000",
        "generic_blood_pressure",
        "generic_body_composition_scale",
        "generic_glucose_meter",
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
        uuids.GLUCOSE_SERVICE,
        uuids.BODY_COMPOSITION_SERVICE,
    }


@pytest.mark.parametrize("profile", load_profiles(), ids=lambda p: p.id)
def test_profiles_reference_known_decoders(profile: Profile) -> None:
    assert profile.source
    for c in profile.characteristics:
        decoder = DECODERS_BY_NAME[c.decoder]
        assert decoder.uuid == c.uuid
        assert DECODERS[c.uuid] is decoder
        assert c.mode in decoder.modes
        assert not decoder.services or c.service in decoder.services
    for step in profile.on_connect:
        assert step.action in CONNECT_ACTIONS
        if step.decoder is not None:
            assert DECODERS_BY_NAME[step.decoder].uuid == step.uuid
            assert "read" in DECODERS_BY_NAME[step.decoder].modes


@pytest.mark.parametrize("profile", [p for p in load_profiles() if not p.generic], ids=lambda p: p.id)
def test_vendor_profiles_cite_their_protocol_source(profile: Profile) -> None:
    # A device-specific profile exists because of a quirk or a vendor protocol: say where it is written down.
    assert "https://" in profile.source
    assert profile.notes


@pytest.mark.parametrize("profile", load_profiles(), ids=lambda p: p.id)
def test_every_shipped_profile_has_a_swedish_name_staff_choose_by(profile: Profile) -> None:
    # The kit's devices are chosen and listed by this name on the Swedish record (care.kit.profile_names).
    assert profile.label_sv.strip()
    assert not profile.label_sv.startswith("Any")


def test_every_decoder_has_a_corrupt_input_fixture() -> None:
    # Meta-test (STYLE.md): no profile may name a decoder without a corrupt-input test.
    used = {name for p in load_profiles() for name in p.decoders}
    assert used <= set(VALID_PAYLOADS)
    assert set(VALID_PAYLOADS) == set(DECODERS_BY_NAME)


def _decoders_of(profile: Profile) -> list[tuple[str, str]]:
    """(decoder, characteristic uuid) for every value the profile reads or subscribes to."""
    named = [(c.decoder, c.uuid) for c in profile.characteristics]
    return named + [(a.decoder, str(a.uuid)) for a in profile.on_connect if a.decoder is not None]


@pytest.mark.parametrize(
    ("profile", "decoder", "uuid"),
    [pytest.param(p, d, u, id=f"{p.id}-{d}") for p in load_profiles() for d, u in _decoders_of(p)],
)
def test_profile_characteristic_rejects_corrupt_input(profile: Profile, decoder: str, uuid: str) -> None:
    valid = VALID_PAYLOADS[decoder]
    decoded = parse(uuid, valid)
    assert isinstance(decoded, DECODERS_BY_NAME[decoder].result)
    assert encode.measurement(decoded) == valid
    normalise(decoded)  # the gateway normalises everything parse returns
    for corrupt in (b"", valid[:-1], valid + b"\x00"):
        with pytest.raises(DecodeError, match=re.escape(uuids.NAMES[uuid])):
            parse(uuid, corrupt)


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
    assert len(load_profiles(tmp_path)) == len(list(SHIPPED.glob("*.json")))
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
        (["1808"], "generic_glucose_meter"),
        (["181B"], "generic_body_composition_scale"),
        (["181B", "181D"], "generic_body_composition_scale"),  # a body composition scale weighs too
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


# --- on_connect ----------------------------------------------------------------------------------

GLUCOSE_CHARACTERISTICS = [
    {"uuid": "2A18", "service": "1808", "mode": "notify", "decoder": "glucose"},
    {"uuid": "2A52", "service": "1808", "mode": "indicate", "decoder": "racp_response"},
]
SUBSCRIBE = {"action": "subscribe"}
RACP_ALL = {"action": "racp_report_all", "uuid": "2A52", "service": "1808"}


def _meter(on_connect: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    return _good(
        match={"service_uuids": ["1808"]},
        characteristics=changes.pop("characteristics", GLUCOSE_CHARACTERISTICS),
        on_connect=on_connect,
        **changes,
    )


def test_connect_steps_default_to_subscribe() -> None:
    thermometer = next(p for p in load_profiles() if p.id == "generic_health_thermometer")
    assert thermometer.on_connect == ()
    assert thermometer.connect_steps == (ConnectAction(action="subscribe"),)


def test_shipped_connect_sequences() -> None:
    steps = {p.id: [(a.action, a.uuid) for a in p.connect_steps] for p in load_profiles()}
    assert steps["and_ua651ble"] == [("write_date_time", "2A08"), ("subscribe", None)]
    assert steps["and_uc352ble"] == [("write_date_time", "2A08"), ("subscribe", None)]
    assert steps["generic_glucose_meter"] == [
        ("read_features", "2A51"),
        ("write_current_time", "2A2B"),
        ("subscribe", None),
        ("racp_report_all", "2A52"),
    ]


def test_writing_steps_know_their_bytes() -> None:
    clock = datetime(2024, 3, 1, 8, 30, 15)
    date_time = ConnectAction(action="write_date_time", uuid="2A08", service="1810")
    current_time = ConnectAction(action="write_current_time", uuid="2A2B", service="1805")
    racp = ConnectAction(action="racp_report_all", uuid="2A52", service="1808")
    assert date_time.payload(clock) == bytes.fromhex("e807 03 01 08 1e 0f")
    # Friday, 0/256 s, adjust reason "external reference time update" (the gateway runs NTP).
    assert current_time.payload(clock) == bytes.fromhex("e807 03 01 08 1e 0f 05 00 02")
    assert racp.payload(clock) == bytes.fromhex("0101")
    assert ConnectAction(action="subscribe").payload(clock) is None
    reader = ConnectAction(action="read_features", uuid="2A51", service="1808", decoder="glucose_feature")
    assert reader.payload(clock) is None


def test_a_good_meter_loads(tmp_path: Path) -> None:
    profile = load_profile(_write(tmp_path, _meter([SUBSCRIBE, RACP_ALL])))
    assert [a.action for a in profile.connect_steps] == ["subscribe", "racp_report_all"]
    assert profile.decoders == {"glucose", "racp_response"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_meter([{"action": "reboot"}]), "on_connect.0.action: Input should be 'subscribe', 'read_features'"),
        (_meter([RACP_ALL]), "list the subscribe step exactly once"),
        (_meter([SUBSCRIBE, SUBSCRIBE]), "list the subscribe step exactly once"),
        (_meter([RACP_ALL, SUBSCRIBE]), "racp_report_all must come after subscribe"),
        (_meter([SUBSCRIBE, RACP_ALL, RACP_ALL]), "a step is listed twice"),
        (
            _meter([SUBSCRIBE, RACP_ALL], characteristics=GLUCOSE_CHARACTERISTICS[:1]),
            r"racp_report_all needs characteristics to list Record Access Control Point \(0x2A52\)",
        ),
        (_meter([{"action": "subscribe", "uuid": "2A52"}]), "subscribe: takes no uuid"),
        (
            _meter([{"action": "write_date_time", "uuid": "2A08"}, SUBSCRIBE]),
            "write_date_time: needs uuid and service",
        ),
        (
            _meter([{"action": "write_current_time", "uuid": "2A08", "service": "1805"}, SUBSCRIBE]),
            r"uuid: write_current_time writes Current Time \(0x2A2B\), not Date Time \(0x2A08\)",
        ),
        (
            _meter([{"action": "write_current_time", "uuid": "2A2B", "service": "1808"}, SUBSCRIBE]),
            r"service: Current Time \(0x2A2B\) is written in Current Time Service",
        ),
        (
            _meter(
                [
                    {"action": "write_date_time", "uuid": "2A08", "service": "1810", "decoder": "date_time"},
                    SUBSCRIBE,
                ]
            ),
            "writes, so it takes no decoder",
        ),
        (
            _meter(
                [
                    {"action": "read_features", "uuid": "2A51", "service": "1808", "decoder": "glucose"},
                    SUBSCRIBE,
                ]
            ),
            r"decoder: 'glucose' does not read Glucose Feature \(0x2A51\)",
        ),
        (
            _meter(
                [{"action": "read_features", "uuid": "2A51", "service": "1808", "decoder": "nope"}, SUBSCRIBE]
            ),
            "read_features needs a known decoder, got 'nope'",
        ),
        (
            _meter(
                [
                    {
                        "action": "read_features",
                        "uuid": "2A51",
                        "service": "1810",
                        "decoder": "glucose_feature",
                    },
                    SUBSCRIBE,
                ]
            ),
            r"service: Glucose Feature \(0x2A51\) is not in Blood Pressure Service",
        ),
        (
            _meter([SUBSCRIBE, {"action": "racp_report_all", "uuid": "2A52", "service": "1810"}]),
            r"service: Record Access Control Point \(0x2A52\) is written in Glucose Service",
        ),
    ],
)
def test_bad_connect_steps_name_file_and_field(tmp_path: Path, data: dict[str, Any], message: str) -> None:
    with pytest.raises(ProfileError, match=f"acme_ox1.json: .*{message}"):
        load_profile(_write(tmp_path, data))


# --- the shipped kit: which profile a real device gets -------------------------------------------


@pytest.mark.parametrize(
    ("name", "services", "expected"),
    [
        ("A&D_UA-651BLE_1A2B3C", ["1810", "180F"], "and_ua651ble"),
        ("A&D_UA-651BLE", ["1810"], "and_ua651ble"),
        ("A&D_UC-352BLE_0F1E2D", ["181D"], "and_uc352ble"),
        ("BLESmart_0000021F", ["1810"], "generic_blood_pressure"),  # an Omron: standard service
        ("Contour7830H6123456", ["1808"], "generic_glucose_meter"),
        ("MI_SCALE", ["181B", "181D"], "generic_body_composition_scale"),
        ("BerryMed", ["49535343-fe7d-4ae5-8fa9-9fafd205e455"], "berrymed_bm1000"),
        ("HMSoft", ["49535343-fe7d-4ae5-8fa9-9fafd205e455"], None),  # the UART service alone proves nothing
    ],
)
def test_real_devices_get_their_profile(name: str, services: list[str], expected: str | None) -> None:
    found = match_profile(load_profiles(), name, services)
    assert (found.id if found else None) == expected


def test_the_a_and_d_quirk_is_data_not_code() -> None:
    ua651 = next(p for p in load_profiles() if p.id == "and_ua651ble")
    generic = next(p for p in load_profiles() if p.id == "generic_blood_pressure")
    # Same standard measurement characteristic; the difference is the connect sequence.
    assert ua651.characteristics[0] == generic.characteristics[0]
    assert ua651.connect_steps[0] == ConnectAction(action="write_date_time", uuid="2A08", service="1810")
    assert "andengineering/AndroidSampleCode" in ua651.source
