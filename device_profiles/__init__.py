"""What devices say: pure decoding of Bluetooth LE health characteristics.

    measurement = device_profiles.parse("2A35", payload)       # frozen dataclass, or DecodeError
    result = device_profiles.normalise(measurement, device_tz=ZoneInfo("Europe/Stockholm"))
    payload = device_profiles.encode.blood_pressure(120, 80, 93)  # for the simulator

No I/O, no clock, no Bluetooth stack: bytes in, dataclasses out. Modules by family:
`plx`, `blood_pressure`, `temperature`, `weight`, `body_composition`, `glucose`,
`glucose_context`, `heart_rate`, `battery`, `features` (what a device supports),
`current_time` (Date Time and Current Time, read and written), `racp` (Record Access
Control Point requests and responses) and `bci` (BerryMed's vendor protocol); shared field
types in `ieee11073` (SFLOAT/FLOAT), `date_time`, `layout`, `fixed_point` and `bits`;
`registry` maps UUIDs to decoders, `normalise` maps readings to `core.vitals` (with the
flag vocabulary in `quality`), `catalogue` loads device profiles (it is the one module that
imports pydantic, so import it explicitly), `bench` measures decode throughput
(`python -m benchmarks.device_profiles`).

Decoding decisions, the same for every characteristic:

* Length: a payload must be exactly as long as its Flags announce; shorter or longer is a
  DecodeError (extra bytes most likely belong to a field we cannot see, see `layout`).
  Heart Rate is the exception by construction: its RR list fills the rest of the payload;
  a BCI notification is any whole number of 5-byte packets.
* RFU flag and status bits are ignored on receipt (SIG convention: sent as 0, ignored when
  received); they are not preserved, so re-encoding sends them as 0.
* Reserved enumeration codes are kept, not rejected: a temperature type of 0 or 10-255
  stays a plain int, pulse-rate range 3 is `PulseRateRange.RESERVED`, a glucose sample
  type 11 stays 11. Battery levels above 100 % are a DecodeError (reserved, and a gauge
  reading 230 % hides a fault); so is a value outside a field's defined range (day of
  week 9) or a control-point op code whose layout is unknown.
* Date Time: "not known" (year, month or day 0) decodes to `UnknownDateTime`, never an
  error, so a device whose clock was never set still delivers readings; an impossible
  date (month 13, 30 February, hour 24, year outside 1582-9999) is a DecodeError.
* SFLOAT/FLOAT special values decode to `NoValue(reason)`, never to a number; weight and
  body-fat 0xFFFF to `NoValue("measurement unsuccessful")`, BCI 127/255 to
  `NoValue("invalid")`.
* UUIDs: SIG characteristics by their 16-bit form ("2A5E", any case, or the Base-UUID long
  form); vendor characteristics by their 128-bit form, any case (`uuids.canonical_uuid`).
"""

from __future__ import annotations

from . import encode, uuids
from .battery import BatteryLevel
from .bci import BCI_INVALID, BciOximeterNotification, BciPacket
from .blood_pressure import (
    BloodPressureMeasurement,
    BloodPressureMeasurementStatus,
    IntermediateCuffPressure,
    PulseRateRange,
)
from .body_composition import FAT_MEASUREMENT_UNSUCCESSFUL, BodyCompositionMeasurement
from .current_time import AdjustReason, CurrentTime, DateTimeCharacteristic, DayOfWeek
from .date_time import UnknownDateTime
from .errors import DecodeError, DeviceProfilesError, ProfileError
from .features import (
    BloodPressureFeature,
    BodyCompositionFeature,
    GlucoseFeature,
    HeightResolution,
    PlxFeatures,
    WeightResolution,
    WeightScaleFeature,
)
from .glucose import GlucoseMeasurement, GlucoseSampleLocation, GlucoseSensorStatus, GlucoseType
from .glucose_context import (
    EXERCISE_DURATION_OVERRUN,
    CarbohydrateId,
    GlucoseHealth,
    GlucoseMeasurementContext,
    GlucoseTester,
    Meal,
    MedicationId,
)
from .heart_rate import HeartRateMeasurement
from .ieee11073 import Medfloat, NoValue
from .normalise import QUALITY_FLAGS, ClinicalObservation, Normalised, RejectedValue, normalise
from .plx import (
    PlxContinuousMeasurement,
    PlxDeviceAndSensorStatus,
    PlxMeasurementStatus,
    PlxSpotCheckMeasurement,
)
from .racp import (
    RacpFilterType,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponse,
    RacpResponseCode,
    decode_racp_request,
)
from .registry import DECODERS, Measurement, parse
from .temperature import IntermediateTemperature, TemperatureMeasurement, TemperatureType
from .weight import MEASUREMENT_UNSUCCESSFUL, WeightMeasurement

__all__ = [
    "BCI_INVALID",
    "DECODERS",
    "EXERCISE_DURATION_OVERRUN",
    "FAT_MEASUREMENT_UNSUCCESSFUL",
    "MEASUREMENT_UNSUCCESSFUL",
    "QUALITY_FLAGS",
    "AdjustReason",
    "BatteryLevel",
    "BciOximeterNotification",
    "BciPacket",
    "BloodPressureFeature",
    "BloodPressureMeasurement",
    "BloodPressureMeasurementStatus",
    "BodyCompositionFeature",
    "BodyCompositionMeasurement",
    "CarbohydrateId",
    "ClinicalObservation",
    "CurrentTime",
    "DateTimeCharacteristic",
    "DayOfWeek",
    "DecodeError",
    "DeviceProfilesError",
    "GlucoseFeature",
    "GlucoseHealth",
    "GlucoseMeasurement",
    "GlucoseMeasurementContext",
    "GlucoseSampleLocation",
    "GlucoseSensorStatus",
    "GlucoseTester",
    "GlucoseType",
    "HeartRateMeasurement",
    "HeightResolution",
    "IntermediateCuffPressure",
    "IntermediateTemperature",
    "Meal",
    "Measurement",
    "Medfloat",
    "MedicationId",
    "NoValue",
    "Normalised",
    "PlxContinuousMeasurement",
    "PlxDeviceAndSensorStatus",
    "PlxFeatures",
    "PlxMeasurementStatus",
    "PlxSpotCheckMeasurement",
    "ProfileError",
    "PulseRateRange",
    "RacpFilterType",
    "RacpOpCode",
    "RacpOperator",
    "RacpRequest",
    "RacpResponse",
    "RacpResponseCode",
    "RejectedValue",
    "TemperatureMeasurement",
    "TemperatureType",
    "UnknownDateTime",
    "WeightMeasurement",
    "WeightResolution",
    "WeightScaleFeature",
    "decode_racp_request",
    "encode",
    "normalise",
    "parse",
    "uuids",
]


def __getattr__(name: str) -> object:
    # `device_profiles.catalogue` without an explicit import, while keeping pydantic out of
    # the import of decoders alone.
    if name == "catalogue":
        import importlib

        return importlib.import_module(f"{__name__}.catalogue")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
