"""The decoder table: characteristic UUID -> decoder, and `parse`, the one entry point.

Profile files name decoders by `Decoder.name`; the catalogue checks those names, the
characteristic UUID and the GATT property (notify / indicate / read) against this table,
so a profile cannot promise something no decoder delivers. Keys are canonical UUIDs
(`uuids.canonical_uuid`): "2A5E" for SIG characteristics, the lower-case 128-bit form for
vendor ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from . import uuids
from .battery import BatteryLevel, decode_battery_level
from .bci import BciOximeterNotification, decode_bci
from .blood_pressure import (
    BloodPressureMeasurement,
    IntermediateCuffPressure,
    decode_blood_pressure,
    decode_intermediate_cuff_pressure,
)
from .body_composition import BodyCompositionMeasurement, decode_body_composition
from .current_time import (
    CurrentTime,
    DateTimeCharacteristic,
    decode_current_time,
    decode_date_time_characteristic,
)
from .errors import DecodeError
from .features import (
    BloodPressureFeature,
    BodyCompositionFeature,
    GlucoseFeature,
    PlxFeatures,
    WeightScaleFeature,
    decode_blood_pressure_feature,
    decode_body_composition_feature,
    decode_glucose_feature,
    decode_plx_features,
    decode_weight_scale_feature,
)
from .glucose import GlucoseMeasurement, decode_glucose
from .glucose_context import GlucoseMeasurementContext, decode_glucose_context
from .heart_rate import HeartRateMeasurement, decode_heart_rate
from .plx import (
    PlxContinuousMeasurement,
    PlxSpotCheckMeasurement,
    decode_plx_continuous,
    decode_plx_spot_check,
)
from .racp import RacpResponse, decode_racp_response
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
    | BodyCompositionMeasurement
    | GlucoseMeasurement
    | GlucoseMeasurementContext
    | HeartRateMeasurement
    | BatteryLevel
    | DateTimeCharacteristic
    | CurrentTime
    | RacpResponse
    | BloodPressureFeature
    | PlxFeatures
    | WeightScaleFeature
    | GlucoseFeature
    | BodyCompositionFeature
    | BciOximeterNotification
)


@dataclass(frozen=True, slots=True)
class Decoder:
    name: str  # what profile files write in "decoder"
    uuid: str  # canonical characteristic UUID: "2A5E", or a vendor 128-bit UUID in lower case
    services: frozenset[str]  # services the characteristic belongs to; empty = any service
    modes: frozenset[str]  # GATT properties the service spec gives it
    decode: Callable[[bytes], Measurement]
    result: type

    @property
    def characteristic(self) -> str:
        return uuids.name_of(self.uuid)


def _decoder(
    name: str, uuid: str, services: str, modes: str, decode: Callable[[bytes], Measurement], result: type
) -> Decoder:
    return Decoder(name, uuid, frozenset(services.split()), frozenset(modes.split()), decode, result)


U = uuids
# Modes per service specification: measurements that must not be lost are indicated
# (acknowledged), streams and in-progress values are notified; feature characteristics
# are read once. The RACP is written by the collector and indicates its responses; only
# the responses are decoded by `parse`.
_ALL: Final = (
    _decoder(
        "plx_spot_check",
        U.PLX_SPOT_CHECK_MEASUREMENT,
        U.PULSE_OXIMETER_SERVICE,
        "indicate",
        decode_plx_spot_check,
        PlxSpotCheckMeasurement,
    ),
    _decoder(
        "plx_continuous",
        U.PLX_CONTINUOUS_MEASUREMENT,
        U.PULSE_OXIMETER_SERVICE,
        "notify",
        decode_plx_continuous,
        PlxContinuousMeasurement,
    ),
    _decoder(
        "plx_features", U.PLX_FEATURES, U.PULSE_OXIMETER_SERVICE, "read", decode_plx_features, PlxFeatures
    ),
    _decoder(
        "blood_pressure",
        U.BLOOD_PRESSURE_MEASUREMENT,
        U.BLOOD_PRESSURE_SERVICE,
        "indicate",
        decode_blood_pressure,
        BloodPressureMeasurement,
    ),
    _decoder(
        "intermediate_cuff_pressure",
        U.INTERMEDIATE_CUFF_PRESSURE,
        U.BLOOD_PRESSURE_SERVICE,
        "notify",
        decode_intermediate_cuff_pressure,
        IntermediateCuffPressure,
    ),
    _decoder(
        "blood_pressure_feature",
        U.BLOOD_PRESSURE_FEATURE,
        U.BLOOD_PRESSURE_SERVICE,
        "read",
        decode_blood_pressure_feature,
        BloodPressureFeature,
    ),
    _decoder(
        "temperature",
        U.TEMPERATURE_MEASUREMENT,
        U.HEALTH_THERMOMETER_SERVICE,
        "indicate",
        decode_temperature,
        TemperatureMeasurement,
    ),
    _decoder(
        "intermediate_temperature",
        U.INTERMEDIATE_TEMPERATURE,
        U.HEALTH_THERMOMETER_SERVICE,
        "notify",
        decode_intermediate_temperature,
        IntermediateTemperature,
    ),
    _decoder(
        "weight", U.WEIGHT_MEASUREMENT, U.WEIGHT_SCALE_SERVICE, "indicate", decode_weight, WeightMeasurement
    ),
    _decoder(
        "weight_scale_feature",
        U.WEIGHT_SCALE_FEATURE,
        U.WEIGHT_SCALE_SERVICE,
        "read",
        decode_weight_scale_feature,
        WeightScaleFeature,
    ),
    _decoder(
        "body_composition",
        U.BODY_COMPOSITION_MEASUREMENT,
        U.BODY_COMPOSITION_SERVICE,
        "indicate",
        decode_body_composition,
        BodyCompositionMeasurement,
    ),
    _decoder(
        "body_composition_feature",
        U.BODY_COMPOSITION_FEATURE,
        U.BODY_COMPOSITION_SERVICE,
        "read",
        decode_body_composition_feature,
        BodyCompositionFeature,
    ),
    _decoder(
        "glucose", U.GLUCOSE_MEASUREMENT, U.GLUCOSE_SERVICE, "notify", decode_glucose, GlucoseMeasurement
    ),
    _decoder(
        "glucose_context",
        U.GLUCOSE_MEASUREMENT_CONTEXT,
        U.GLUCOSE_SERVICE,
        "notify",
        decode_glucose_context,
        GlucoseMeasurementContext,
    ),
    _decoder(
        "glucose_feature",
        U.GLUCOSE_FEATURE,
        U.GLUCOSE_SERVICE,
        "read",
        decode_glucose_feature,
        GlucoseFeature,
    ),
    _decoder(
        "racp_response",
        U.RECORD_ACCESS_CONTROL_POINT,
        f"{U.GLUCOSE_SERVICE} {U.PULSE_OXIMETER_SERVICE}",
        "indicate",
        decode_racp_response,
        RacpResponse,
    ),
    _decoder(
        "heart_rate",
        U.HEART_RATE_MEASUREMENT,
        U.HEART_RATE_SERVICE,
        "notify",
        decode_heart_rate,
        HeartRateMeasurement,
    ),
    _decoder(
        "battery_level", U.BATTERY_LEVEL, U.BATTERY_SERVICE, "read notify", decode_battery_level, BatteryLevel
    ),
    # Date Time sits in whichever service uses it (A&D: Blood Pressure, Weight Scale).
    _decoder("date_time", U.DATE_TIME, "", "read", decode_date_time_characteristic, DateTimeCharacteristic),
    _decoder(
        "current_time",
        U.CURRENT_TIME,
        U.CURRENT_TIME_SERVICE,
        "read notify",
        decode_current_time,
        CurrentTime,
    ),
    _decoder(
        "bci_oximeter",
        U.BERRYMED_BCI_DATA,
        U.BERRYMED_TRANSPARENT_UART_SERVICE,
        "notify",
        decode_bci,
        BciOximeterNotification,
    ),
)

_BY_UUID: Final[dict[str, Decoder]] = {d.uuid: d for d in _ALL}
DECODERS: Final[Mapping[str, Decoder]] = MappingProxyType(_BY_UUID)
DECODERS_BY_NAME: Final[Mapping[str, Decoder]] = MappingProxyType({d.name: d for d in _ALL})


def parse(uuid: str, payload: bytes | bytearray | memoryview) -> Measurement:
    """Decode one characteristic value into its frozen dataclass.

    `uuid` is "2A5E" (any case, optional 0x), the 128-bit Base-UUID form bleak reports, or a
    vendor 128-bit UUID in any case. Raises DecodeError, and nothing else, for a malformed
    payload or an unknown UUID.
    """
    if type(payload) is not bytes:
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise TypeError(f"payload must be bytes, got {type(payload).__name__}")
        payload = bytes(payload)
    # Fast path: the canonical form, as profiles and the gateway pass it.
    decoder = _BY_UUID.get(uuid) if type(uuid) is str else None
    if decoder is None:
        try:
            canonical = uuids.canonical_uuid(uuid)
        except DecodeError as exc:
            raise DecodeError(f"cannot choose a decoder: {exc}") from exc
        decoder = DECODERS.get(canonical)
        if decoder is None:
            known = ", ".join(f"{d.uuid} {uuids.NAMES[d.uuid]}" for d in _ALL)
            raise DecodeError(f"no decoder for characteristic {uuids.name_of(canonical)}; known: {known}")
    return decoder.decode(payload)
