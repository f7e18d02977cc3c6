"""Body weight: Weight Measurement (0x2A9D).

Layout from the GSS "Weight Measurement" entry, meanings from the Weight Scale Service
(WSS) v1.0. Unlike the medfloat characteristics, the values here are unsigned fixed-point
integers whose resolution Flags bit 0 chooses:

==========  ===================  ====================
field       SI (bit 0 = 0)       Imperial (bit 0 = 1)
==========  ===================  ====================
Weight      uint16 x 0.005 kg    uint16 x 0.01 lb
BMI         uint16 x 0.1         uint16 x 0.1
Height      uint16 x 0.001 m     uint16 x 0.1 in
==========  ===================  ====================

Decoded values are exact `Decimal`s (raw x resolution). Weight 0xFFFF is the special value
"Measurement Unsuccessful"; WSS then forbids the BMI and Height fields, so a payload with
both is rejected as contradictory.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from .date_time import Timestamp
from .errors import DecodeError
from .fixed_point import steps
from .ieee11073 import NoValue
from .layout import DATE_TIME, U8, U16, Field, Layout
from .uuids import WEIGHT_MEASUREMENT, name_of

__all__ = ["MEASUREMENT_UNSUCCESSFUL", "WeightMeasurement", "decode_weight", "encode_weight"]

WeightUnit = Literal["kg", "lb"]

MEASUREMENT_UNSUCCESSFUL = NoValue("measurement unsuccessful")
_UNSUCCESSFUL_RAW = 0xFFFF

_WEIGHT_RESOLUTION = {"kg": Decimal("0.005"), "lb": Decimal("0.01")}
_HEIGHT_RESOLUTION = {"kg": Decimal("0.001"), "lb": Decimal("0.1")}  # metres / inches
_BMI_RESOLUTION = Decimal("0.1")


@dataclass(frozen=True, slots=True)
class WeightMeasurement:
    weight: Decimal | NoValue  # in `unit`; NoValue("measurement unsuccessful") for 0xFFFF
    unit: WeightUnit  # Flags bit 0: "kg" (SI) or "lb" (Imperial); height follows it
    timestamp: Timestamp | None = None
    user_id: int | None = None  # 0xFF = unknown user
    bmi: Decimal | None = None  # kg/m2, sent together with height
    height: Decimal | None = None  # metres when unit is "kg", inches when "lb"

    @property
    def height_unit(self) -> Literal["m", "in"]:
        return "m" if self.unit == "kg" else "in"


_IMPERIAL = 0x01
_TIMESTAMP = 0x02
_USER_ID = 0x04
_BMI_AND_HEIGHT = 0x08

_WM = Layout(
    name_of(WEIGHT_MEASUREMENT),
    (
        Field("weight", U16),
        Field("timestamp", DATE_TIME, _TIMESTAMP),
        Field("user_id", U8, _USER_ID),
        Field("bmi", U16, _BMI_AND_HEIGHT),
        Field("height", U16, _BMI_AND_HEIGHT),
    ),
)


def decode_weight(payload: bytes) -> WeightMeasurement:
    flags, values = _WM.unpack(payload)
    unit: WeightUnit = "lb" if flags & _IMPERIAL else "kg"
    raw_weight = values.pop("weight")
    if raw_weight == _UNSUCCESSFUL_RAW:
        if "bmi" in values:
            raise DecodeError(
                f"{_WM.characteristic}: weight is 0xFFFF (measurement unsuccessful) "
                "but BMI and Height are present, which WSS forbids"
            )
        weight: Decimal | NoValue = MEASUREMENT_UNSUCCESSFUL
    else:
        weight = raw_weight * _WEIGHT_RESOLUTION[unit]
    if "bmi" in values:
        values["bmi"] = values["bmi"] * _BMI_RESOLUTION
        values["height"] = values["height"] * _HEIGHT_RESOLUTION[unit]
    return WeightMeasurement(weight=weight, unit=unit, **values)


def encode_weight(
    value: object,
    *,
    unit: WeightUnit = "kg",
    timestamp: Timestamp | None = None,
    user_id: int | None = None,
    bmi: object | None = None,
    height: object | None = None,
) -> bytes:
    """A Weight Measurement payload. `value` in kg or lb and `height` in m or in, per `unit`.

    Values must be exact multiples of the resolution (70.125 kg, not 70.123): a scale
    displays what it sends, so a value off the grid means the caller mixed up units.
    Pass MEASUREMENT_UNSUCCESSFUL as `value` for the 0xFFFF special value.
    """
    if unit not in ("kg", "lb"):
        raise ValueError(f"weight unit must be 'kg' or 'lb', got {unit!r}")
    if (bmi is None) != (height is None):
        raise ValueError("BMI and Height share one flag bit: give both or neither")
    flags = _IMPERIAL if unit == "lb" else 0
    if isinstance(value, NoValue):
        if value != MEASUREMENT_UNSUCCESSFUL:
            raise ValueError(f"the only special weight is {MEASUREMENT_UNSUCCESSFUL!r}, got {value!r}")
        if bmi is not None:
            raise ValueError("WSS forbids BMI and Height with an unsuccessful measurement")
        raw_weight = _UNSUCCESSFUL_RAW
    else:
        # 0xFFFF is the special value, so the largest weight is 0xFFFE steps.
        raw_weight = steps(value, _WEIGHT_RESOLUTION[unit], "weight", limit=_UNSUCCESSFUL_RAW - 1)
    values: dict[str, object] = {"weight": raw_weight, "timestamp": timestamp, "user_id": user_id}
    if timestamp is not None:
        flags |= _TIMESTAMP
    if user_id is not None:
        flags |= _USER_ID
    if bmi is not None:
        flags |= _BMI_AND_HEIGHT
        values["bmi"] = steps(bmi, _BMI_RESOLUTION, "bmi")
        values["height"] = steps(height, _HEIGHT_RESOLUTION[unit], "height")
    return _WM.pack(flags, values)
