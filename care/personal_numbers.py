"""Swedish personal identity numbers (personnummer) and coordination numbers (samordningsnummer). Pure.

Skatteverket's form (SKV 704): YYMMDD-NNNC, the last digit C a Luhn (mod 10) check digit over the ten
digits; a samordningsnummer adds 60 to the day. Hemma stores the 12-digit form with the century,
"YYYYMMDD-NNNN" (patients.personal_number), and derives the birth year from it, so the two can never
disagree. Refusals never carry the number: it is patient data (care.refusals).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from care.refusals import RefusalCode, Refused

_FORM = re.compile(r"^([0-9]{4})([0-9]{2})([0-9]{2})-?([0-9]{4})$")  # ASCII digits only
COORDINATION_DAY_OFFSET = 60


@dataclass(frozen=True, slots=True)
class PersonalNumber:
    number: str  # "YYYYMMDD-NNNN"
    birth_year: int
    coordination: bool  # a samordningsnummer


def luhn_ok(digits: str) -> bool:
    """The Luhn check over `digits` (the ten of YYMMDDNNNC): doubled every other digit from the left."""
    total = 0
    for i, ch in enumerate(digits):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def check_personal_number(text: str, *, today: date) -> PersonalNumber:
    """A personnummer or samordningsnummer written with 12 digits ("19121212-1212", with or without
    the hyphen, spaces around allowed); PERSONAL_NUMBER_FORM for anything else: a wrong form, a date
    that does not exist or lies ahead, a wrong check digit."""
    match = _FORM.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise Refused(RefusalCode.PERSONAL_NUMBER_FORM)
    year, month, day, serial = int(match[1]), int(match[2]), int(match[3]), match[4]
    coordination = day > COORDINATION_DAY_OFFSET
    try:
        born = date(year, month, day - COORDINATION_DAY_OFFSET if coordination else day)
    except ValueError:
        raise Refused(RefusalCode.PERSONAL_NUMBER_FORM) from None
    if born > today or year < 1890:  # patients.birth_year's CHECK
        raise Refused(RefusalCode.PERSONAL_NUMBER_FORM)
    if not luhn_ok(f"{match[1][2:]}{match[2]}{match[3]}{serial}"):
        raise Refused(RefusalCode.PERSONAL_NUMBER_FORM)
    return PersonalNumber(f"{match[1]}{match[2]}{match[3]}-{serial}", year, coordination)
