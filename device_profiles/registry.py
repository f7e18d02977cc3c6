"""The decoder table: characteristic UUID -> decoder, and `parse`, the one entry point.

Profile files name decoders by `Decoder.name`; the catalogue checks those names, the
characteristic UUID and the GATT property (notify / indicate / read) against this table,
so a profile cannot promise something no decoder delivers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from . import uuids
from .battery import BatteryLevel, decode_battery_level
from .blood_pressure import (
    BloodPressureMeasurement,
    IntermediateCuffPressure,
    decode_blood_pressure,
    decode_intermediate_cuff_pressure,
)
from .errors import DecodeError
from .heart_rate import HeartRateMeasurement, decode_heart_rate
from .plx import (
    PlxContinuousMeasurement,
    PlxSpotCheckMeasurement,
    decode_plx_continuous,
    decode_plx_spot_check,
)
from .temperature import (
    IntermediateTemperature,
    TemperatureMeasurement,
    decode_intermediate_temperature,
    decode_temperature,
)
from .weight import WeightMeasurement, decode_weight

__all__ = ["DECODERS", "DECODERS_BY_NAME", "Decoder", "Measurement", "parse"]

Measurement = (
    PlxSpotCheckMeasurement
    | PlxContinuousMeasurement
    | BloodPressureMeasurement
    | IntermediateCuffPressure
    | TemperatureMeasurement
    | IntermediateTemperature
    | WeightMeasurement
    | HeartRateMeasurement
    | BatteryLevel
)


@dataclass(frozen=True, slots=True)
class Decoder:
    name: str  # what profile files write in "decoder"
    uuid: str  # 16-bit characteristic UUID, upper case
    services: frozenset[str]  # services the characteristic belongs to
    modes: frozenset[str]  # GATT properties the service spec gives it
    decode: Callable[[bytes], Measurement]
    result: type

    @property
    def characteristic(self) -> str:
        return uuids.name_of(self.uuid)


def _decoder(
    name: str, uuid: str, service: str, modes: str, decode: Callable[[bytes], Measurement], result: type
) -> Decoder:
    return Decoder(name, uuid, frozenset({service}), frozenset(modes.split()), decode, result)


# Modes per service specification: measurements that must not be lost are indicated
# (acknowledged), streams and in-progress values are notified.
_ALL: Final = (
    _decoder(
        "plx_spot_check",
        uuids.PLX_SPOT_CHECK_MEASUREMENT,
        uuids.PULSE_OXIMETER_SERVICE,
        "indicate",
        decode_plx_spot_check,
        PlxSpotCheckMeasurement,
    ),
    _decoder(
        "plx_continuous",
        uuids.PLX_CONTINUOUS_MEASUREMENT,
        uuids.PULSE_OXIMETER_SERVICE,
        "notify",
        decode_plx_continuous,
        PlxContinuousMeasurement,
    ),
    _decoder(
        "blood_pressure",
        uuids.BLOOD_PRESSURE_MEASUREMENT,
        uuids.BLOOD_PRESSURE_SERVICE,
        "indicate",
        decode_blood_pressure,
        BloodPressureMeasurement,
    ),
    _decoder(
        "intermediate_cuff_pressure",
        uuids.INTERMEDIATE_CUFF_PRESSURE,
        uuids.BLOOD_PRESSURE_SERVICE,
        "notify",
        decode_intermediate_cuff_pressure,
        IntermediateCuffPressure,
    ),
    _decoder(
        "temperature",
        uuids.TEMPERATURE_MEASUREMENT,
        uuids.HEALTH_THERMOMETER_SERVICE,
        "indicate",
        decode_temperature,
        TemperatureMeasurement,
    ),
    _decoder(
        "intermediate_temperature",
        uuids.INTERMEDIATE_TEMPERATURE,
        uuids.HEALTH_THERMOMETER_SERVICE,
        "notify",
        decode_intermediate_temperature,
        IntermediateTemperature,
    ),
    _decoder(
        "weight",
        uuids.WEIGHT_MEASUREMENT,
        uuids.WEIGHT_SCALE_SERVICE,
        "indicate",
        decode_weight,
        WeightMeasurement,
    ),
    _decoder(
        "heart_rate",
        uuids.HEART_RATE_MEASUREMENT,
        uuids.HEART_RATE_SERVICE,
        "notify",
        decode_heart_rate,
        HeartRateMeasurement,
    ),
    _decoder(
        "battery_level",
        uuids.BATTERY_LEVEL,
        uuids.BATTERY_SERVICE,
        "read notify",
        decode_battery_level,
        BatteryLevel,
    ),
)

DECODERS: Final[Mapping[str, Decoder]] = MappingProxyType({d.uuid: d for d in _ALL})
DECODERS_BY_NAME: Final[Mapping[str, Decoder]] = MappingProxyType({d.name: d for d in _ALL})


def parse(uuid: str, payload: bytes | bytearray | memoryview) -> Measurement:
    """Decode one characteristic value into its frozen dataclass.

    `uuid` is "2A5E" (any case, optional 0x) or the 128-bit Base-UUID form bleak reports.
    Raises DecodeError, and nothing else, for a malformed payload or an unknown UUID.
    """
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise TypeError(f"payload must be bytes, got {type(payload).__name__}")
    try:
        short = uuids.short_uuid(uuid)
    except DecodeError as exc:
        raise DecodeError(f"cannot choose a decoder: {exc}") from exc
    decoder = DECODERS.get(short)
    if decoder is None:
        known = ", ".join(f"{d.uuid} {uuids.NAMES[d.uuid]}" for d in _ALL)
        raise DecodeError(f"no decoder for characteristic {uuids.name_of(short)}; known: {known}")
    return decoder.decode(bytes(payload))
