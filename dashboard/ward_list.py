"""The ward overview's compact list (issue 11, "Scan the ward"): what one line says about a patient.

`_list.html` renders one `<tr>` per patient with these words; the page and the live hub render a row
with the same macro (dashboard.rendering), as they do a card. The list carries no action forms: the
actions live on the card and the record, so 500 rows stay a few hundred bytes each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from core.vitals import Vital
from dashboard.model import PatientCard, VitalReading

__all__ = ["KIT_WORDS", "CompactValue", "compact_time", "compact_values", "kit_state"]

# Shown on one line in this order; mean arterial pressure is left to the card (the list shows sys/dia).
_LINE_VITALS = (
    Vital.SPO2,
    Vital.PULSE_RATE,
    Vital.HEART_RATE,
    Vital.RESPIRATORY_RATE,
    Vital.BODY_TEMPERATURE,
    Vital.BODY_WEIGHT,
    Vital.GLUCOSE,
)
KIT_WORDS = {"online": "Ansluten", "offline": "Frånkopplad", "unknown": "Okänd", "none": "Ingen"}


@dataclass(frozen=True, slots=True)
class CompactValue:
    label: str  # "SpO₂ ", "BT ": a no-break space joins it to its value
    text: str  # "94 %", "142/88"
    name: str  # what a screen reader says: "Syremättnad"
    stale: bool


def compact_values(card: PatientCard, now: datetime) -> list[CompactValue]:
    """The latest key vitals as short "label value" pairs, blood pressure as one "BT sys/dia"."""
    by_vital = {r.vital: r for r in card.vitals}
    found = [_value(by_vital[v], now) for v in _LINE_VITALS[:1] if v in by_vital]
    sys, dia = by_vital.get(Vital.SYSTOLIC_BP), by_vital.get(Vital.DIASTOLIC_BP)
    if sys is not None:
        text = f"{sys.text}/{dia.text}" if dia is not None else sys.text
        stale = sys.is_stale(now) or (dia is not None and dia.is_stale(now))
        found.append(CompactValue("BT\u00a0", text, "Blodtryck", stale))
    found += [_value(by_vital[v], now) for v in _LINE_VITALS[1:] if v in by_vital]
    return found


def _value(reading: VitalReading, now: datetime) -> CompactValue:
    unit = reading.unit_text if reading.unit_text in ("%", "°C", "kg") else ""
    text = f"{reading.text}\u00a0{unit}" if unit else reading.text  # never broken from its unit
    return CompactValue(reading.label + "\u00a0", text, reading.name, reading.is_stale(now))


def compact_time(at: datetime) -> str:
    """A `<time datetime>` value to the second in UTC ("2026-03-01T14:05:09Z"): 500 rows carry two."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def kit_state(card: PatientCard) -> str:
    """online, offline, unknown or none (no home unit): the list's Hemenhet column and its class."""
    return card.gateway.status if card.gateway is not None else "none"
