"""Body composition: Body Composition Measurement (0x2A9C).

Layout from the GSS "Body Composition Measurement" entry, meanings from the Body
Composition Service (BCS) v1.0. A 16-bit Flags field, the mandatory Body Fat Percentage,
then optional fields in this order, each present when its bit is set:

=====  ====================  ==========================  ===============================
bit    field                 SI (bit 0 = 0)              Imperial (bit 0 = 1)
=====  ====================  ==========================  ===============================
1      Time Stamp            Date Time                   Date Time
2      User ID               uint8 (0xFF unknown user)   uint8
3      Basal Metabolism      uint16 kJ                   uint16 kJ
4      Muscle Percentage     uint16 x 0.1 %              uint16 x 0.1 %
5      Muscle Mass           uint16 x 0.005 kg           uint16 x 0.01 lb
6      Fat Free Mass         uint16 x 0.005 kg           uint16 x 0.01 lb
7      Soft Lean Mass        uint16 x 0.005 kg           uint16 x 0.01 lb
8      Body Water Mass       uint16 x 0.005 kg           uint16 x 0.01 lb
9      Impedance             uint16 x 0.1 ohm            uint16 x 0.1 ohm
10     Weight                uint16 x 0.005 kg           uint16 x 0.01 lb
11     Height                uint16 x 0.001 m            uint16 x 0.1 in
=====  ====================  ==========================  ===============================

Body Fat Percentage is uint16 x 0.1 %; 0xFFFF there is BCS's "Measurement Unsuccessful",
decoded as NoValue (the scale could not measure fat, e.g. bare feet not on the electrodes;
its weight may still be good, so other fields are kept). Bit 12, Multiple Packet
Measurement, says the scale split one measurement over two indications because it did
not fit the ATT MTU; each packet is decoded on its own (each is a complete layout).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

from .date_time import Timestamp
from .fixed_point import steps
from .ieee11073 import NoValue
from .layout import DATE_TIME, U8, U16, Field, Layout
from .uuids import BODY_COMPOSITION_MEASUREMENT, name_of

__all__ = [
    "FAT_MEASUREMENT_UNSUCCESSFUL",
    "BodyCompositionMeasurement",
    "decode_body_composition",
    "encode_body_composition",
]

MassUnit = Literal["kg", "lb"]

FAT_MEASUREMENT_UNSUCCESSFUL: Final = NoValue("measurement unsuccessful")
_UNSUCCESSFUL_RAW = 0xFFFF
_PERCENT = Decimal("0.1")
_OHM = Decimal("0.1")
_MASS = {"kg": Decimal("0.005"), "lb": Decimal("0.01")}
_HEIGHT = {"kg": Decimal("0.001"), "lb": Decimal("0.1")}  # metres / inches


@dataclass(frozen=True, slots=True)
class BodyCompositionMeasurement:
    body_fat_percentage: Decimal | NoValue  # percent; NoValue("measurement unsuccessful") for 0xFFFF
    unit: MassUnit  # Flags bit 0: masses in kg / lb, height in m / in
    timestamp: Timestamp | None = None
    user_id: int | None = None  # 0xFF = unknown user
    basal_metabolism: int | None = None  # kilojoules
    muscle_percentage: Decimal | None = None  # percent
    muscle_mass: Decimal | None = None
    fat_free_mass: Decimal | None = None
    soft_lean_mass: Decimal | None = None
    body_water_mass: Decimal | None = None
    impedance: Decimal | None = None  # ohm
    weight: Decimal | None = None
    height: Decimal | None = None
    multiple_packet: bool = False  # Flags bit 12: one of two packets of one measurement

    @property
    def height_unit(self) -> Literal["m", "in"]:
        return "m" if self.unit == "kg" else "in"


_IMPERIAL = 0x0001
_MULTIPLE_PACKET = 0x1000

# (field, flag bit, resolution: a Decimal, a per-unit dict, or None for a plain count)
_OPTIONAL: Final[tuple[tuple[str, int, Decimal | dict[str, Decimal] | None], ...]] = (
    ("basal_metabolism", 0x0008, None),
    ("muscle_percentage", 0x0010, _PERCENT),
    ("muscle_mass", 0x0020, _MASS),
    ("fat_free_mass", 0x0040, _MASS),
    ("soft_lean_mass", 0x0080, _MASS),
    ("body_water_mass", 0x0100, _MASS),
    ("impedance", 0x0200, _OHM),
    ("weight", 0x0400, _MASS),
    ("height", 0x0800, _HEIGHT),
)

_BCM = Layout(
    name_of(BODY_COMPOSITION_MEASUREMENT),
    (
        Field("body_fat_percentage", U16),
        Field("timestamp", DATE_TIME, 0x0002),
        Field("user_id", U8, 0x0004),
        *(Field(name, U16, bit) for name, bit, _ in _OPTIONAL),
    ),
    flags_size=2,
)


def _resolution(resolution: Decimal | dict[str, Decimal] | None, unit: str) -> Decimal | None:
    return resolution[unit] if isinstance(resolution, dict) else resolution


# Per unit: (field, resolution) of the fixed-point fields.
_SCALED: Final = {
    unit: tuple((name, step) for name, _, res in _OPTIONAL if (step := _resolution(res, unit)) is not None)
    for unit in ("kg", "lb")
}


def decode_body_composition(payload: bytes) -> BodyCompositionMeasurement:
    flags, values = _BCM.unpack(payload)
    unit: MassUnit = "lb" if flags & _IMPERIAL else "kg"
    fat = values.pop("body_fat_percentage")
    for name, step in _SCALED[unit]:
        raw = values.get(name)
        if raw is not None:
            values[name] = raw * step
    return BodyCompositionMeasurement(
        body_fat_percentage=FAT_MEASUREMENT_UNSUCCESSFUL if fat == _UNSUCCESSFUL_RAW else fat * _PERCENT,
        unit=unit,
        multiple_packet=bool(flags & _MULTIPLE_PACKET),
        **values,
    )


def encode_body_composition(
    body_fat_percentage: object,
    *,
    unit: MassUnit = "kg",
    timestamp: Timestamp | None = None,
    user_id: int | None = None,
    basal_metabolism: int | None = None,
    muscle_percentage: object | None = None,
    muscle_mass: object | None = None,
    fat_free_mass: object | None = None,
    soft_lean_mass: object | None = None,
    body_water_mass: object | None = None,
    impedance: object | None = None,
    weight: object | None = None,
    height: object | None = None,
    multiple_packet: bool = False,
) -> bytes:
    """A Body Composition Measurement payload; masses in kg or lb and height in m or in, per
    `unit`, each an exact multiple of its resolution. Pass FAT_MEASUREMENT_UNSUCCESSFUL as
    the body fat percentage for the 0xFFFF special value."""
    if unit not in ("kg", "lb"):
        raise ValueError(f"body composition unit must be 'kg' or 'lb', got {unit!r}")
    flags = (_IMPERIAL if unit == "lb" else 0) | (_MULTIPLE_PACKET if multiple_packet else 0)
    if isinstance(body_fat_percentage, NoValue):
        if body_fat_percentage != FAT_MEASUREMENT_UNSUCCESSFUL:
            raise ValueError(f"the only special body fat value is {FAT_MEASUREMENT_UNSUCCESSFUL!r}")
        fat = _UNSUCCESSFUL_RAW
    else:
        fat = steps(body_fat_percentage, _PERCENT, "body_fat_percentage", limit=_UNSUCCESSFUL_RAW - 1)
    values: dict[str, Any] = {"body_fat_percentage": fat, "timestamp": timestamp, "user_id": user_id}
    if timestamp is not None:
        flags |= 0x0002
    if user_id is not None:
        flags |= 0x0004
    given = {
        "basal_metabolism": basal_metabolism,
        "muscle_percentage": muscle_percentage,
        "muscle_mass": muscle_mass,
        "fat_free_mass": fat_free_mass,
        "soft_lean_mass": soft_lean_mass,
        "body_water_mass": body_water_mass,
        "impedance": impedance,
        "weight": weight,
        "height": height,
    }
    for name, bit, resolution in _OPTIONAL:
        value = given[name]
        if value is None:
            continue
        flags |= bit
        step = _resolution(resolution, unit)
        values[name] = value if step is None else steps(value, step, name)
    return _BCM.pack(flags, values)
