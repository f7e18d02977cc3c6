"""Quality flags against the wire contract: the pattern, the 16-flag cap, every status bit."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from core.contract import Measurement, Observation
from device_profiles import (
    QUALITY_FLAGS,
    BciPacket,
    BloodPressureMeasurementStatus,
    GlucoseSensorStatus,
    PlxDeviceAndSensorStatus,
    PlxMeasurementStatus,
    PulseRateRange,
    UnknownDateTime,
    encode,
    normalise,
    parse,
)
from device_profiles.quality import GLUCOSE_STATUS_QUALITY, MAX_FLAGS, ordered_flags
from device_profiles.registry import DECODERS_BY_NAME
from tests.test_device_profiles_catalogue import VALID_PAYLOADS

CONTRACT_FLAG = re.compile(r"^[a-z][a-z0-9_]{0,40}$")  # core.contract _QUALITY_FLAG
CLOCK_UNKNOWN = UnknownDateTime(0, 0, 0, 12, 0, 0)


def test_flags_fit_the_contract_pattern() -> None:
    assert len(set(QUALITY_FLAGS)) == len(QUALITY_FLAGS)
    for flag in QUALITY_FLAGS:
        assert CONTRACT_FLAG.fullmatch(flag), flag


def test_contract_cap_is_ours() -> None:
    assert Observation.model_fields["quality"].metadata[0].max_length == MAX_FLAGS


def test_every_glucose_status_bit_has_a_flag() -> None:
    assert set(GLUCOSE_STATUS_QUALITY) == {name for name, _ in GlucoseSensorStatus._BITS}
    assert set(GLUCOSE_STATUS_QUALITY.values()) <= set(QUALITY_FLAGS)


# The most flags each characteristic can raise at once: every status bit set and an unknown clock.
WORST_CASES = {
    "plx_spot_check": encode.plx_spot_check(
        97,
        72,
        timestamp=CLOCK_UNKNOWN,
        measurement_status=PlxMeasurementStatus(sum(PlxMeasurementStatus))
        & ~PlxMeasurementStatus.INVALID_MEASUREMENT_DETECTED
        & ~PlxMeasurementStatus.MEASUREMENT_UNAVAILABLE,
        device_and_sensor_status=PlxDeviceAndSensorStatus(sum(PlxDeviceAndSensorStatus)),
        device_clock_not_set=True,
    ),
    "plx_continuous": encode.plx_continuous(
        97,
        72,
        measurement_status=PlxMeasurementStatus(0x5FE0),  # all but unavailable / invalid
        device_and_sensor_status=PlxDeviceAndSensorStatus(0xFFFF),
    ),
    "blood_pressure": encode.blood_pressure(
        120,
        80,
        93,
        timestamp=CLOCK_UNKNOWN,
        pulse_rate=60,
        measurement_status=BloodPressureMeasurementStatus(True, True, True, PulseRateRange.EXCEEDS, True),
    ),
    "glucose": encode.glucose(
        1,
        CLOCK_UNKNOWN,
        concentration="0.00099",
        sample_type=1,
        sample_location=1,
        sensor_status=GlucoseSensorStatus.from_bits(0xFFF),
    ),
    "bci_oximeter": encode.bci_oximeter(BciPacket(97, 72, no_signal=True, pulse_searching=True)),
    "intermediate_temperature": encode.intermediate_temperature("36.6", timestamp=CLOCK_UNKNOWN),
    "heart_rate": encode.heart_rate(60, sensor_contact=False),
    "weight": encode.weight(70, timestamp=CLOCK_UNKNOWN),
    "body_composition": encode.body_composition("21.3", timestamp=CLOCK_UNKNOWN, weight=70),
}


@pytest.mark.parametrize("decoder", sorted(WORST_CASES))
def test_worst_case_fits_the_contract(decoder: str) -> None:
    uuid = DECODERS_BY_NAME[decoder].uuid
    result = normalise(parse(uuid, WORST_CASES[decoder]))
    assert result.observations, result.rejected
    for o in result.observations:
        assert len(o.quality) <= MAX_FLAGS
        assert o.quality == ordered_flags(o.quality)  # QUALITY_FLAGS order, no duplicates
    # The whole measurement goes on the wire as the gateway would send it.
    Measurement(
        id="00000000-0000-0000-0000-000000000001",
        device_id="02:48:4D:00:01:01",
        characteristic=uuid if len(uuid) == 4 else "FFFF",  # vendor UUIDs: see the contract note
        raw=WORST_CASES[decoder].hex(),
        effective_time=datetime(2024, 1, 1).astimezone(),
        received_time=datetime(2024, 1, 1).astimezone(),
        observations=tuple(
            Observation(vital=o.vital, value=o.value, unit=o.unit, quality=o.quality)
            for o in result.observations
        ),
    )


def test_plx_worst_case_is_exactly_the_cap() -> None:
    result = normalise(parse("2A5E", WORST_CASES["plx_spot_check"]))
    assert len(result.observations[0].quality) == MAX_FLAGS


def test_ordered_flags_caps_by_priority() -> None:
    every = list(reversed(QUALITY_FLAGS))
    assert ordered_flags(every) == QUALITY_FLAGS[:MAX_FLAGS]


@pytest.mark.parametrize("decoder", sorted(VALID_PAYLOADS))
def test_every_decoded_type_normalises(decoder: str) -> None:
    # The gateway calls normalise() on whatever parse() returns; no type may be missing.
    result = normalise(parse(DECODERS_BY_NAME[decoder].uuid, VALID_PAYLOADS[decoder]))
    assert result.effective_time is None or result.effective_time.tzinfo is not None
