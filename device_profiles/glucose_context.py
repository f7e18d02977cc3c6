"""Glucose Measurement Context (0x2A34): what was going on when a glucose sample was taken.

Layout from the GSS "Glucose Measurement Context" entry, meanings from the Glucose Service
(GLS) v1.0. It follows the Glucose Measurement with the same Sequence Number when that
measurement's "Context Information Follows" flag is set. Flags (8 bits):

* bit 0: Carbohydrate ID (uint8) and Carbohydrate (SFLOAT, kilograms) present
* bit 1: Meal (uint8) present
* bit 2: Tester-Health (one octet: Tester low nibble, Health high nibble) present
* bit 3: Exercise Duration (uint16 seconds, 65535 = overrun) and Exercise Intensity
  (uint8 percent) present
* bit 4: Medication ID (uint8) and Medication (SFLOAT) present
* bit 5: Medication unit, kilograms (0) or litres (1)
* bit 6: HbA1c (SFLOAT, percent) present
* bit 7: Extended Flags (8 bits, all RFU in GLS 1.0) present, right after Sequence Number

Context is not a vital sign in `core.vitals`; it is decoded for completeness and for a
gateway that wants to label a glucose reading "fasting" or "after a meal".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal

from .bits import code_table
from .ieee11073 import MedValue
from .layout import SFLOAT, U8, U16, Field, Layout
from .uuids import GLUCOSE_MEASUREMENT_CONTEXT, name_of

__all__ = [
    "EXERCISE_DURATION_OVERRUN",
    "CarbohydrateId",
    "GlucoseHealth",
    "GlucoseMeasurementContext",
    "GlucoseTester",
    "Meal",
    "MedicationId",
    "decode_glucose_context",
    "encode_glucose_context",
]

MedicationUnit = Literal["kg", "L"]
EXERCISE_DURATION_OVERRUN = 0xFFFF  # GSS: "Overrun", the exercise lasted longer than 65534 s


class CarbohydrateId(IntEnum):
    BREAKFAST = 1
    LUNCH = 2
    DINNER = 3
    SNACK = 4
    DRINK = 5
    SUPPER = 6
    BRUNCH = 7


class Meal(IntEnum):
    PREPRANDIAL = 1  # before meal
    POSTPRANDIAL = 2  # after meal
    FASTING = 3
    CASUAL = 4  # snacks, drinks, etc.
    BEDTIME = 5


class GlucoseTester(IntEnum):
    SELF = 1
    HEALTH_CARE_PROFESSIONAL = 2
    LAB_TEST = 3
    NOT_AVAILABLE = 15


class GlucoseHealth(IntEnum):
    MINOR_HEALTH_ISSUES = 1
    MAJOR_HEALTH_ISSUES = 2
    DURING_MENSES = 3
    UNDER_STRESS = 4
    NO_HEALTH_ISSUES = 5
    NOT_AVAILABLE = 15


class MedicationId(IntEnum):
    RAPID_ACTING_INSULIN = 1
    SHORT_ACTING_INSULIN = 2
    INTERMEDIATE_ACTING_INSULIN = 3
    LONG_ACTING_INSULIN = 4
    PRE_MIXED_INSULIN = 5


@dataclass(frozen=True, slots=True)
class GlucoseMeasurementContext:
    """Reserved enumeration codes (0, and those past the last defined one) stay plain ints."""

    sequence_number: int  # that of the Glucose Measurement this context belongs to
    extended_flags_present: bool = False  # Flags bit 7; the field's bits are all RFU
    carbohydrate_id: CarbohydrateId | int | None = None
    carbohydrate: MedValue | None = None  # kilograms
    meal: Meal | int | None = None
    tester: GlucoseTester | int | None = None
    health: GlucoseHealth | int | None = None
    exercise_duration: int | None = None  # seconds; EXERCISE_DURATION_OVERRUN = overrun
    exercise_intensity: int | None = None  # percent
    medication_id: MedicationId | int | None = None
    medication: MedValue | None = None  # in `medication_unit`
    medication_unit: MedicationUnit = "kg"  # Flags bit 5
    hba1c: MedValue | None = None  # percent


_CARBOHYDRATE = 0x01
_MEAL = 0x02
_TESTER_HEALTH = 0x04
_EXERCISE = 0x08
_MEDICATION = 0x10
_MEDICATION_LITRES = 0x20
_HBA1C = 0x40
_EXTENDED_FLAGS = 0x80

_GMC = Layout(
    name_of(GLUCOSE_MEASUREMENT_CONTEXT),
    (
        Field("sequence_number", U16),
        Field("extended_flags", U8, _EXTENDED_FLAGS),
        Field("carbohydrate_id", U8, _CARBOHYDRATE),
        Field("carbohydrate", SFLOAT, _CARBOHYDRATE),
        Field("meal", U8, _MEAL),
        Field("tester_health", U8, _TESTER_HEALTH),
        Field("exercise_duration", U16, _EXERCISE),
        Field("exercise_intensity", U8, _EXERCISE),
        Field("medication_id", U8, _MEDICATION),
        Field("medication", SFLOAT, _MEDICATION),
        Field("hba1c", SFLOAT, _HBA1C),
    ),
)

# Reserved codes stay plain ints: the context must not cost the record.
_ENUMS: dict[str, dict[int, IntEnum]] = {
    "carbohydrate_id": code_table(CarbohydrateId),
    "meal": code_table(Meal),
    "tester": code_table(GlucoseTester),
    "health": code_table(GlucoseHealth),
    "medication_id": code_table(MedicationId),
}


def decode_glucose_context(payload: bytes) -> GlucoseMeasurementContext:
    flags, values = _GMC.unpack(payload)
    values.pop("extended_flags", None)  # all bits RFU: ignored on receipt
    nibbles = values.pop("tester_health", None)
    if nibbles is not None:
        values["tester"], values["health"] = nibbles & 0x0F, nibbles >> 4
    for name, table in _ENUMS.items():
        code = values.get(name)
        if code is not None:
            values[name] = table.get(code, code)
    return GlucoseMeasurementContext(
        **values,
        extended_flags_present=bool(flags & _EXTENDED_FLAGS),
        medication_unit="L" if flags & _MEDICATION_LITRES else "kg",
    )


def _pair(first: object, second: object, what: str) -> bool:
    if (first is None) != (second is None):
        raise ValueError(f"{what} share one flag bit: give both or neither")
    return first is not None


def _nibble(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 15:
        raise ValueError(f"{what} must be a 4-bit code 0..15, got {value!r}")
    return int(value)


def encode_glucose_context(
    sequence_number: int,
    *,
    extended_flags_present: bool = False,
    carbohydrate_id: CarbohydrateId | int | None = None,
    carbohydrate: object | None = None,
    meal: Meal | int | None = None,
    tester: GlucoseTester | int | None = None,
    health: GlucoseHealth | int | None = None,
    exercise_duration: int | None = None,
    exercise_intensity: int | None = None,
    medication_id: MedicationId | int | None = None,
    medication: object | None = None,
    medication_unit: MedicationUnit = "kg",
    hba1c: object | None = None,
) -> bytes:
    """A Glucose Measurement Context payload; paired fields must come together."""
    if medication_unit not in ("kg", "L"):
        raise ValueError(f"medication unit must be 'kg' or 'L', got {medication_unit!r}")
    flags = _MEDICATION_LITRES if medication_unit == "L" else 0
    values: dict[str, Any] = {
        "sequence_number": sequence_number,
        "extended_flags": 0,
        "carbohydrate_id": carbohydrate_id,
        "carbohydrate": carbohydrate,
        "meal": meal,
        "exercise_duration": exercise_duration,
        "exercise_intensity": exercise_intensity,
        "medication_id": medication_id,
        "medication": medication,
        "hba1c": hba1c,
    }
    if extended_flags_present:
        flags |= _EXTENDED_FLAGS
    if _pair(carbohydrate_id, carbohydrate, "carbohydrate_id and carbohydrate"):
        flags |= _CARBOHYDRATE
    if meal is not None:
        flags |= _MEAL
    if _pair(tester, health, "tester and health"):
        flags |= _TESTER_HEALTH
        values["tester_health"] = _nibble(tester, "tester") | _nibble(health, "health") << 4
    if _pair(exercise_duration, exercise_intensity, "exercise_duration and exercise_intensity"):
        flags |= _EXERCISE
    if _pair(medication_id, medication, "medication_id and medication"):
        flags |= _MEDICATION
    if hba1c is not None:
        flags |= _HBA1C
    return _GMC.pack(flags, values)
