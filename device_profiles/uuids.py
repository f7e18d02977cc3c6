"""Bluetooth UUIDs of the health services and characteristics Hemma reads or writes.

SIG numbers from the Bluetooth SIG "Assigned Numbers" document (sections 3.4 GATT Services
and 3.8 Characteristics). A 16-bit UUID xxxx stands for 0000xxxx-0000-1000-8000-00805F9B34FB,
the Bluetooth Base UUID (Core Specification Vol 3, Part B, 2.5.1); bleak reports the long
form. Canonical form, used by profiles, the registry and the wire contract
(`canonical_uuid`): the short upper-case form for SIG UUIDs ("2A5E"), the lower-case
128-bit form for vendor UUIDs ("49535343-1e4d-4bd9-ba61-23c647249616").
"""

from __future__ import annotations

import re
import uuid as _uuid
from typing import Final

from .errors import DecodeError

# Services
PULSE_OXIMETER_SERVICE: Final = "1822"
BLOOD_PRESSURE_SERVICE: Final = "1810"
HEALTH_THERMOMETER_SERVICE: Final = "1809"
WEIGHT_SCALE_SERVICE: Final = "181D"
HEART_RATE_SERVICE: Final = "180D"
GLUCOSE_SERVICE: Final = "1808"
BATTERY_SERVICE: Final = "180F"
BODY_COMPOSITION_SERVICE: Final = "181B"
CURRENT_TIME_SERVICE: Final = "1805"

# Characteristics
PLX_SPOT_CHECK_MEASUREMENT: Final = "2A5E"
PLX_CONTINUOUS_MEASUREMENT: Final = "2A5F"
BLOOD_PRESSURE_MEASUREMENT: Final = "2A35"
INTERMEDIATE_CUFF_PRESSURE: Final = "2A36"
TEMPERATURE_MEASUREMENT: Final = "2A1C"
INTERMEDIATE_TEMPERATURE: Final = "2A1E"
WEIGHT_MEASUREMENT: Final = "2A9D"
HEART_RATE_MEASUREMENT: Final = "2A37"
BATTERY_LEVEL: Final = "2A19"
BODY_COMPOSITION_MEASUREMENT: Final = "2A9C"
GLUCOSE_MEASUREMENT: Final = "2A18"
GLUCOSE_MEASUREMENT_CONTEXT: Final = "2A34"
DATE_TIME: Final = "2A08"
CURRENT_TIME: Final = "2A2B"
RECORD_ACCESS_CONTROL_POINT: Final = "2A52"
BLOOD_PRESSURE_FEATURE: Final = "2A49"
PLX_FEATURES: Final = "2A60"
WEIGHT_SCALE_FEATURE: Final = "2A9E"
GLUCOSE_FEATURE: Final = "2A51"
BODY_COMPOSITION_FEATURE: Final = "2A9B"

# Vendor (128-bit) UUIDs, canonical lower-case form.
# BerryMed oximeters speak the BCI protocol over the Microchip/ISSC "transparent UART"
# service; the data characteristic notifies the 5-byte packets (BCI Protocol V1.2,
# github.com/zh2x/BCI_Protocol).
BERRYMED_TRANSPARENT_UART_SERVICE: Final = "49535343-fe7d-4ae5-8fa9-9fafd205e455"
BERRYMED_BCI_DATA: Final = "49535343-1e4d-4bd9-ba61-23c647249616"

NAMES: Final[dict[str, str]] = {
    PULSE_OXIMETER_SERVICE: "Pulse Oximeter Service",
    BLOOD_PRESSURE_SERVICE: "Blood Pressure Service",
    HEALTH_THERMOMETER_SERVICE: "Health Thermometer Service",
    WEIGHT_SCALE_SERVICE: "Weight Scale Service",
    HEART_RATE_SERVICE: "Heart Rate Service",
    GLUCOSE_SERVICE: "Glucose Service",
    BATTERY_SERVICE: "Battery Service",
    BODY_COMPOSITION_SERVICE: "Body Composition Service",
    CURRENT_TIME_SERVICE: "Current Time Service",
    PLX_SPOT_CHECK_MEASUREMENT: "PLX Spot-Check Measurement",
    PLX_CONTINUOUS_MEASUREMENT: "PLX Continuous Measurement",
    BLOOD_PRESSURE_MEASUREMENT: "Blood Pressure Measurement",
    INTERMEDIATE_CUFF_PRESSURE: "Intermediate Cuff Pressure",
    TEMPERATURE_MEASUREMENT: "Temperature Measurement",
    INTERMEDIATE_TEMPERATURE: "Intermediate Temperature",
    WEIGHT_MEASUREMENT: "Weight Measurement",
    HEART_RATE_MEASUREMENT: "Heart Rate Measurement",
    BATTERY_LEVEL: "Battery Level",
    BODY_COMPOSITION_MEASUREMENT: "Body Composition Measurement",
    GLUCOSE_MEASUREMENT: "Glucose Measurement",
    GLUCOSE_MEASUREMENT_CONTEXT: "Glucose Measurement Context",
    DATE_TIME: "Date Time",
    CURRENT_TIME: "Current Time",
    RECORD_ACCESS_CONTROL_POINT: "Record Access Control Point",
    BLOOD_PRESSURE_FEATURE: "Blood Pressure Feature",
    PLX_FEATURES: "PLX Features",
    WEIGHT_SCALE_FEATURE: "Weight Scale Feature",
    GLUCOSE_FEATURE: "Glucose Feature",
    BODY_COMPOSITION_FEATURE: "Body Composition Feature",
    BERRYMED_TRANSPARENT_UART_SERVICE: "BerryMed Transparent UART Service",
    BERRYMED_BCI_DATA: "BerryMed BCI Data",
}

_BASE_SUFFIX: Final = "-0000-1000-8000-00805f9b34fb"
_SHORT = re.compile(r"(?:0[xX])?([0-9a-fA-F]{4})")


def full_uuid(value: str) -> str:
    """The 128-bit form, lower case: full_uuid("2A5E") == "00002a5e-0000-1000-8000-00805f9b34fb"."""
    return f"0000{short_uuid(value).lower()}{_BASE_SUFFIX}"


def long_uuid(value: str) -> str:
    """The 128-bit form of any Bluetooth UUID, lower case: what bleak looks characteristics up by.

    Like `full_uuid`, but a vendor UUID is allowed (and returned in canonical form).
    """
    canonical = canonical_uuid(value)
    return f"0000{canonical.lower()}{_BASE_SUFFIX}" if len(canonical) == 4 else canonical


def short_uuid(value: str) -> str:
    """The 16-bit form, upper case: "2A5E" from "2a5e", "0x2A5E" or the Base-UUID long form.

    DecodeError (a ValueError) for anything else, including vendor 128-bit UUIDs, which
    have no 16-bit form; use `canonical_uuid` where those are allowed.
    """
    result = _short_or_none(value)
    if result is None:
        raise DecodeError(
            f"not a 16-bit Bluetooth SIG UUID: {value!r} "
            "(expected e.g. '2A5E' or '00002a5e-0000-1000-8000-00805f9b34fb')"
        )
    return result


def canonical_uuid(value: str) -> str:
    """ "2A5E" for a SIG UUID in either form, the lower-case 128-bit form for a vendor UUID."""
    result = _short_or_none(value)
    if result is not None:
        return result
    parsed = _parse_long(value)
    if parsed is None:
        raise DecodeError(f"not a Bluetooth UUID: {value!r}")
    return str(parsed)


def name_of(value: str) -> str:
    """A readable name for a UUID, for error messages: "PLX Spot-Check Measurement (0x2A5E)",
    "BerryMed BCI Data (49535343-1e4d-4bd9-ba61-23c647249616)"."""
    try:
        canonical = canonical_uuid(value)
    except DecodeError:
        return repr(value)
    name = NAMES.get(canonical)
    shown = f"0x{canonical}" if len(canonical) == 4 else canonical
    return f"{name} ({shown})" if name else shown


def _short_or_none(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    match = _SHORT.fullmatch(value.strip())
    if match:
        return match.group(1).upper()
    parsed = _parse_long(value)
    if parsed is None:
        return None
    text = str(parsed)
    if text.startswith("0000") and text.endswith(_BASE_SUFFIX):
        return text[4:8].upper()
    return None


def _parse_long(value: object) -> _uuid.UUID | None:
    if not isinstance(value, str) or len(value.strip()) < 32:
        return None
    try:
        return _uuid.UUID(value.strip())
    except ValueError:
        return None
