"""FHIR search parameters, checked once. Pure: query pairs in, a typed `Search` or a `Refusal` out.

Strict handling (FHIR R4 3.1.1.5.9, `Prefer: handling=strict` as the only mode): an unknown
parameter, a modifier Hemma does not support or a value it cannot read is a 400 OperationOutcome,
never ignored, so a consumer never mistakes an unfiltered answer for a filtered one. Nothing from the
query reaches SQL as text: ids become UUIDs, codes become Hemma's observation kinds, dates become
datetimes, personal numbers digits.

Dates (`date`, `_lastUpdated`): `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or a date-time with or without
seconds, fractions and offset, behind a prefix `eq` (default), `gt`, `ge`, `lt` or `le`. A value is a
range as long as its precision (FHIR 3.1.1.4.2): `le2024-05` is "before June 2024". A time without an
offset is the site's zone (HEMMA_SITE_TIMEZONE). A `+` in an offset that a URL turned into a space is
read back as `+`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final

from fhir_api import codes

DEFAULT_COUNT: Final = 50
MAX_COUNT: Final = 200  # _count beyond it is capped (FHIR lets the server page smaller)
MAX_OFFSET: Final = 1_000_000
RESOURCE_TYPES: Final = (
    "Patient", "Encounter", "Observation", "Device", "Flag", "QuestionnaireResponse", "CarePlan",
)  # fmt: skip
_COMMON: Final = frozenset({"_id", "_lastUpdated", "_count", "_offset", "_format"})
_BY_PATIENT: Final = frozenset({"patient", "subject"})
PARAMETERS: Final[dict[str, frozenset[str]]] = {
    "Patient": _COMMON | {"identifier"},
    "Encounter": _COMMON | _BY_PATIENT | {"status"},
    "Observation": _COMMON | _BY_PATIENT | {"code", "date", "category"},
    "Device": _COMMON | {"patient"},
    "Flag": _COMMON | _BY_PATIENT | {"status"},
    "QuestionnaireResponse": _COMMON | _BY_PATIENT,
    "CarePlan": _COMMON | _BY_PATIENT,
}
_REPEATABLE: Final = frozenset({"date", "_lastUpdated"})
STATUSES: Final[dict[str, frozenset[str]]] = {
    "Flag": frozenset({"active", "inactive"}),
    "Encounter": frozenset({"in-progress", "finished"}),
}
CATEGORIES: Final[dict[str, frozenset[str]]] = {
    "vital-signs": frozenset(codes.VITAL_KEYS.values()),
    "exam": frozenset(codes.MANUAL_KEYS),
}
_JSON_FORMATS: Final = frozenset({"json", "application/json", "application/fhir+json"})
_FHIR_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_DATE: Final = re.compile(
    r"(eq|gt|ge|lt|le)?(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?"
    r"(Z|[+\- ]\d{2}:\d{2})?)?)?)?",
    re.ASCII,  # \d would take any script's digits (fullwidth digits), and int() reads them
)
_PERSONAL: Final = re.compile(r"(\d{8})-?(\d{4})", re.ASCII)


class Refusal(Exception):
    """A request FHIR cannot answer: HTTP status, OperationOutcome issue code, Swedish diagnostics
    that never repeat the input. (A plain class: contextlib sets __traceback__ on exceptions passing
    through `async with`, which a frozen dataclass refuses.)"""

    def __init__(self, status: int, code: str, text: str) -> None:
        super().__init__(status, code, text)
        self.status, self.code, self.text = status, code, text


def invalid(text: str) -> Refusal:
    return Refusal(400, "invalid", text)


@dataclass(frozen=True, slots=True)
class DateBound:
    """One `date` or `_lastUpdated` condition: the column `op` the range [start, end) (end None: the
    value's range reaches past what a datetime holds, e.g. the year 9999)."""

    op: str
    start: datetime
    end: datetime | None


@dataclass(frozen=True, slots=True)
class Search:
    resource_type: str
    count: int = DEFAULT_COUNT
    offset: int = 0
    ids: tuple[str, ...] | None = None
    patient: str | None = None  # a Patient id as given (not necessarily a UUID)
    last_updated: tuple[DateBound, ...] = ()
    dates: tuple[DateBound, ...] = ()
    kinds: frozenset[str] | None = None  # Observation kinds (codes.ALL_OBSERVATION_KEYS) matched
    status: str | None = None
    personal_number: str | None = None  # "YYYYMMDD-NNNN"
    coordination: bool | None = None  # the identifier's system, when given
    pairs: tuple[tuple[str, str], ...] = field(default=())  # what the links repeat, without _offset
    # Not a search parameter: the push (fhir_api.notifications) asks for the changes after this
    # (last_updated, id), oldest change first, instead of the newest resources first.
    changed_after: tuple[datetime, str] | None = None


def parse(resource_type: str, pairs: Sequence[tuple[str, str]], zone: tzinfo) -> Search:
    """The search `pairs` (the query string, in order) for `resource_type`; Refusal otherwise."""
    allowed = PARAMETERS[resource_type]
    seen: set[str] = set()
    values: dict[str, object] = {}
    dates: list[DateBound] = []
    updated: list[DateBound] = []
    kinds: frozenset[str] | None = None
    for name, value in pairs:
        if name not in allowed:
            raise Refusal(400, "not-supported", "Okänd sökparameter eller modifierare för resurstypen")
        if name in seen and name not in _REPEATABLE:
            raise invalid("En sökparameter får bara anges en gång")
        seen.add(name)
        if value == "":
            raise invalid("En sökparameter saknar värde")
        if name == "_count":
            values["count"] = min(_integer(value, "_count"), MAX_COUNT)
        elif name == "_offset":
            offset = _integer(value, "_offset")
            if offset > MAX_OFFSET:
                raise invalid("_offset är för stort")
            values["offset"] = offset
        elif name == "_format":
            if value not in _JSON_FORMATS:
                raise Refusal(406, "not-supported", "Hemma svarar bara med application/fhir+json")
        elif name == "_id":
            values["ids"] = tuple(_fhir_id(part) for part in value.split(","))
        elif name in ("patient", "subject"):
            if "patient" in values:
                raise invalid("Ange patienten en gång")
            values["patient"] = _patient_reference(value)
        elif name == "date":
            dates.append(parse_date(value, zone))
        elif name == "_lastUpdated":
            updated.append(parse_date(value, zone))
        elif name == "code":
            kinds = frozenset().union(*(_token_kinds(token) for token in value.split(",")))
        elif name == "category":
            kinds = _category_kinds(value, kinds)
        elif name == "status":
            if value not in STATUSES[resource_type]:
                raise invalid("Okänd status för resurstypen")
            values["status"] = value
        elif name == "identifier":
            values["personal_number"], values["coordination"] = _personal_identifier(value)
    kept = tuple((n, v) for n, v in pairs if n not in ("_offset", "_count"))
    return Search(
        resource_type=resource_type,
        count=int(values.get("count", DEFAULT_COUNT)),  # type: ignore[call-overload]
        offset=int(values.get("offset", 0)),  # type: ignore[call-overload]
        ids=values.get("ids"),  # type: ignore[arg-type]
        patient=values.get("patient"),  # type: ignore[arg-type]
        last_updated=tuple(updated),
        dates=tuple(dates),
        kinds=kinds,
        status=values.get("status"),  # type: ignore[arg-type]
        personal_number=values.get("personal_number"),  # type: ignore[arg-type]
        coordination=values.get("coordination"),  # type: ignore[arg-type]
        pairs=kept,
    )


def _integer(value: str, name: str) -> int:
    if not re.fullmatch(r"[0-9]{1,18}", value):
        raise invalid(f"{name} måste vara ett icke-negativt heltal")
    return int(value)


def _fhir_id(value: str) -> str:
    if not _FHIR_ID.fullmatch(value):
        raise invalid("Ogiltigt id")
    return value


def _patient_reference(value: str) -> str:
    """`<id>` or `Patient/<id>` (FHIR 3.1.1.4.10): the id."""
    if value.startswith("Patient/"):
        value = value[len("Patient/") :]
    return _fhir_id(value)


def _token_kinds(token: str) -> frozenset[str]:
    if "|" in token:
        system, _, code = token.partition("|")
        if "|" in code:
            raise invalid("Ogiltig kod")
        return codes.keys_for_token(system, code or None)
    return codes.keys_for_token(None, token)


def _category_kinds(value: str, kinds: frozenset[str] | None) -> frozenset[str]:
    found: set[str] = set()
    for token in value.split(","):
        system, _, code = token.rpartition("|")
        if system not in ("", codes.OBSERVATION_CATEGORY) or code not in CATEGORIES:
            continue  # a category Hemma never sets matches nothing
        found |= CATEGORIES[code]
    return frozenset(found) if kinds is None else kinds & found


def _personal_identifier(value: str) -> tuple[str, bool | None]:
    system, bar, number = value.rpartition("|")
    coordination: bool | None = None
    if bar:
        if system == codes.PERSONNUMMER:
            coordination = False
        elif system == codes.SAMORDNINGSNUMMER:
            coordination = True
        elif system != "":
            raise invalid("Hemma söker patienter bara på personnummer eller samordningsnummer")
    match = _PERSONAL.fullmatch(number)
    if match is None:
        raise invalid("Personnumret ska skrivas med tolv siffror")
    return f"{match[1]}-{match[2]}", coordination


def parse_date(value: str, zone: tzinfo) -> DateBound:
    """A prefixed FHIR date, dateTime or instant as a bound; Refusal for anything else."""
    match = _DATE.fullmatch(value)
    if match is None:
        raise invalid("Ogiltigt datum (skriv till exempel ge2024-05-01 eller lt2024-05-01T12:00:00+02:00)")
    op = match[1] or "eq"
    year, month, day, hour, minute, second, fraction, offset = match.groups()[1:]
    try:
        tz = _offset(offset, zone) if hour is not None else zone
        start = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int(((fraction or ".0")[1:] + "000000")[:6]),
            tzinfo=tz,
        )
    except ValueError:
        raise invalid("Ogiltigt datum") from None
    if start.year < 1:
        raise invalid("Ogiltigt datum")
    return DateBound(op, start, _range_end(start, month, day, minute, second, fraction))


def _offset(text: str | None, zone: tzinfo) -> tzinfo:
    if text is None:
        return zone
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 14 or minutes > 59:
        raise ValueError("offset")
    from datetime import timezone

    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _range_end(
    start: datetime,
    month: str | None,
    day: str | None,
    minute: str | None,
    second: str | None,
    fraction: str | None,
) -> datetime | None:
    try:
        if month is None:
            return start.replace(year=start.year + 1)
        if day is None:
            return (
                start.replace(year=start.year + 1, month=1)
                if start.month == 12
                else start.replace(month=start.month + 1)
            )
        if minute is None:
            return start + timedelta(days=1)
        if second is None:
            return start + timedelta(minutes=1)
        if fraction is None:
            return start + timedelta(seconds=1)
        return start + timedelta(microseconds=1)
    except (ValueError, OverflowError):
        return None  # past year 9999: the range is open above


def as_patient_uuid(value: str | None) -> uuid.UUID | None:
    """A Patient id as Hemma's UUID, or None when it cannot be one (it then matches nothing)."""
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
