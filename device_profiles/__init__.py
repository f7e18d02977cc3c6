"""What devices say: pure decoding of Bluetooth LE health characteristics.

    measurement = device_profiles.parse("2A35", payload)       # frozen dataclass, or DecodeError
    result = device_profiles.normalise(measurement, device_tz=ZoneInfo("Europe/Stockholm"))
    payload = device_profiles.encode.blood_pressure(120, 80, 93)  # for the simulator

No I/O, no clock, no Bluetooth stack: bytes in, dataclasses out. Modules by family:
`plx`, `blood_pressure`, `temperature`, `weight`, `heart_rate`, `battery`; shared field
types in `ieee11073` (SFLOAT/FLOAT), `date_time` and `layout`; `registry` maps UUIDs to
decoders, `normalise` maps readings to `hemma.vitals`, `catalogue` loads device profiles
(it is the one module that imports pydantic, so import it explicitly).

Decoding decisions, the same for every characteristic:

* Length: a payload must be exactly as long as its Flags announce; shorter or longer is a
  DecodeError (extra bytes most likely belong to a field we cannot see, see `layout`).
  Heart Rate is the exception by construction: its RR list fills the rest of the payload.
* RFU flag and status bits are ignored on receipt (SIG convention: sent as 0, ignored when
  received); they are not preserved, so re-encoding sends them as 0.
* Reserved enumeration codes are kept, not rejected: a temperature type of 0 or 10-255
  stays a plain int, pulse-rate range 3 is `PulseRateRange.RESERVED`. Battery levels above
  100 % are a DecodeError (reserved, and a gauge reading 230 % hides a fault).
* Date Time: "not known" (year, month or day 0) decodes to `UnknownDateTime`, never an
  error, so a device whose clock was never set still delivers readings; an impossible
  date (month 13, 30 February, hour 24, year outside 1582-9999) is a DecodeError.
* SFLOAT/FLOAT special values decode to `NoValue(reason)`, never to a number; weight 0xFFFF
  to `NoValue("measurement unsuccessful")`.
"""

from __future__ import annotations

from . import encode, uuids
from .battery import BatteryLevel
from .blood_pressure import (
    BloodPressureMeasurement,
    BloodPressureMeasurementStatus,
    IntermediateCuffPressure,
    PulseRateRange,
)
from .date_time import UnknownDateTime
from .errors import DecodeError, DeviceProfilesError, ProfileError
from .heart_rate import HeartRateMeasurement
from .ieee11073 import Medfloat, NoValue
from .normalise import QUALITY_FLAGS, ClinicalObservation, Normalised, RejectedValue, normalise
from .plx import (
    PlxContinuousMeasurement,
    PlxDeviceAndSensorStatus,
    PlxMeasurementStatus,
    PlxSpotCheckMeasurement,
)
from .registry import DECODERS, Measurement, parse
from .temperature import IntermediateTemperature, TemperatureMeasurement, TemperatureType
from .weight import MEASUREMENT_UNSUCCESSFUL, WeightMeasurement

__all__ = [
    "DECODERS",
    "MEASUREMENT_UNSUCCESSFUL",
    "QUALITY_FLAGS",
    "BatteryLevel",
    "BloodPressureMeasurement",
    "BloodPressureMeasurementStatus",
    "ClinicalObservation",
    "DecodeError",
    "DeviceProfilesError",
    "HeartRateMeasurement",
    "IntermediateCuffPressure",
    "IntermediateTemperature",
    "Measurement",
    "Medfloat",
    "NoValue",
    "Normalised",
    "PlxContinuousMeasurement",
    "PlxDeviceAndSensorStatus",
    "PlxMeasurementStatus",
    "PlxSpotCheckMeasurement",
    "ProfileError",
    "PulseRateRange",
    "RejectedValue",
    "TemperatureMeasurement",
    "TemperatureType",
    "UnknownDateTime",
    "WeightMeasurement",
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
