"""Questionnaires as data: `care/questionnaires/data/<id>.json`, each a FHIR R4 Questionnaire.

A file is read and checked once, on first use (`catalogue`), and a broken one fails with a message
naming the file and the item at fault (`QuestionnaireError`); the test suite loads every file, so a
broken one fails the build, never a patient's form. Two checks:

* FHIR's own (fhir.resources, the R4B models: Questionnaire is the same in R4): the resource's shape;
* Hemma's: the file's id is its name and its canonical `url` Hemma's; `status` active; a title;
  items of the kinds the patient app renders (choice, string, text, boolean), with unique linkIds;
  every choice option has a code, a display text, unique codes within its item, and an integer
  score (the standard `ordinalValue` extension); a flag (`FLAG_EXTENSION`: a code and an alert
  priority) names a symptom alerts.messages_sv can word, with one priority per code.

The score is the sum of the chosen options' ordinals (shown to staff only); a flag is what the
`symptoms` alert rule raises (alerts.symptoms).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from alerts.messages_sv import SYMPTOM_SV
from alerts.model import Priority

CANONICAL_BASE = "https://hemma.se/fhir/Questionnaire/"
ORDINAL_EXTENSION = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
HINT_EXTENSION = "http://hl7.org/fhir/StructureDefinition/entryFormat"
FLAG_EXTENSION = "https://hemma.se/fhir/StructureDefinition/alert-flag"
# The id of a questionnaire, as questionnaire_schedules' CHECK allows it.
QUESTIONNAIRE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_LINK_ID = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
MAX_FREE_TEXT = 500  # characters of one free-text answer (and the most an item's maxLength may say)


class ItemKind(StrEnum):
    """The FHIR item types the patient app renders."""

    CHOICE = "choice"
    STRING = "string"  # one line
    TEXT = "text"  # several lines
    BOOLEAN = "boolean"


class QuestionnaireError(ValueError):
    """A questionnaire file that is not what Hemma can show and score: names the file and the item."""


@dataclass(frozen=True, slots=True)
class Flag:
    code: str  # a key of alerts.messages_sv.SYMPTOM_SV
    priority: Priority


@dataclass(frozen=True, slots=True)
class Option:
    code: str
    display: str
    system: str | None
    ordinal: int
    flag: Flag | None


@dataclass(frozen=True, slots=True)
class Question:
    link_id: str
    text: str
    kind: ItemKind
    required: bool
    options: tuple[Option, ...] = ()  # choice items only
    max_length: int = MAX_FREE_TEXT  # string and text items
    hint: str | None = None  # the entryFormat extension: what to write, shown under the field

    def option(self, code: str) -> Option | None:
        return next((o for o in self.options if o.code == code), None)

    @property
    def free_text(self) -> bool:
        return self.kind in (ItemKind.STRING, ItemKind.TEXT)


@dataclass(frozen=True, slots=True)
class Questionnaire:
    """One questionnaire as Hemma uses it; `resource` is the file's FHIR JSON."""

    id: str
    url: str
    version: str
    title: str
    description: str
    questions: tuple[Question, ...]
    resource: Mapping[str, Any]

    @property
    def canonical(self) -> str:
        """`url|version`: what a QuestionnaireResponse names as its questionnaire."""
        return f"{self.url}|{self.version}"

    def question(self, link_id: str) -> Question | None:
        return next((q for q in self.questions if q.link_id == link_id), None)


# --- loading --------------------------------------------------------------------------------------------


@functools.cache
def catalogue() -> Mapping[str, Questionnaire]:
    """Every shipped questionnaire by id, sorted by id (checked once, on first use)."""
    return load_directory()


def questionnaire(questionnaire_id: str) -> Questionnaire | None:
    return catalogue().get(questionnaire_id)


def load_directory(directory: str | Path | None = None) -> dict[str, Questionnaire]:
    """Every `*.json` in `directory` (default: the shipped data), by id."""
    root: Traversable = (
        resources.files("care.questionnaires") / "data" if directory is None else Path(directory)
    )
    files = sorted((f for f in root.iterdir() if f.name.endswith(".json")), key=lambda f: f.name)
    loaded = [load_file(f) for f in files]
    return {q.id: q for q in loaded}


def load_file(path: Traversable | Path) -> Questionnaire:
    """One file, checked; QuestionnaireError naming the file otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise QuestionnaireError(f"{path.name}: not readable JSON ({exc})") from exc
    return parse(data, name=path.name)


def parse(data: object, *, name: str) -> Questionnaire:
    """A Questionnaire resource (parsed JSON) checked by FHIR's rules and Hemma's. `name` is the file's
    name (its stem must be the id)."""
    from fhir.resources.R4B.questionnaire import Questionnaire as FhirQuestionnaire
    from pydantic import ValidationError

    if not isinstance(data, dict) or data.get("resourceType") != "Questionnaire":
        raise QuestionnaireError(f"{name}: not a FHIR Questionnaire (resourceType)")
    try:
        FhirQuestionnaire.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise QuestionnaireError(
            f"{name}: not a valid FHIR Questionnaire at {where}: {first['msg']}"
        ) from None
    return _hemma(data, name)


def _hemma(data: dict[str, Any], name: str) -> Questionnaire:
    qid = data.get("id")
    if not isinstance(qid, str) or not QUESTIONNAIRE_ID.fullmatch(qid) or f"{qid}.json" != name:
        raise QuestionnaireError(f"{name}: `id` must be the file's name (lower case, digits, hyphens)")
    if data.get("url") != CANONICAL_BASE + qid:
        raise QuestionnaireError(f"{name}: `url` must be {CANONICAL_BASE}{qid}")
    for key in ("version", "title"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise QuestionnaireError(f"{name}: `{key}` is missing")
    if data.get("status") != "active":
        raise QuestionnaireError(f"{name}: `status` must be active (a draft or retired one is not offered)")
    items = data.get("item") or []
    if not items:
        raise QuestionnaireError(f"{name}: no items")
    questions = tuple(_question(item, name) for item in items)
    link_ids = [q.link_id for q in questions]
    if len(set(link_ids)) != len(link_ids):
        raise QuestionnaireError(f"{name}: a linkId appears more than once")
    priorities: dict[str, Priority] = {}
    for question in questions:
        for option in question.options:
            if option.flag is None:
                continue
            seen = priorities.setdefault(option.flag.code, option.flag.priority)
            if seen is not option.flag.priority:
                raise QuestionnaireError(
                    f"{name}: item {question.link_id!r}: flag {option.flag.code!r} has two priorities"
                )
    return Questionnaire(
        id=qid, url=data["url"], version=data["version"], title=data["title"].strip(),
        description=str(data.get("description") or ""), questions=questions, resource=data,
    )  # fmt: skip


def _question(item: dict[str, Any], name: str) -> Question:
    link_id = item.get("linkId", "")
    at = f"{name}: item {link_id!r}"
    if not _LINK_ID.fullmatch(link_id):
        raise QuestionnaireError(f"{at}: a linkId is lower case letters, digits and hyphens")
    try:
        kind = ItemKind(str(item.get("type")))
    except ValueError:
        raise QuestionnaireError(
            f"{at}: type {item.get('type')!r} is not one the patient app shows"
        ) from None
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        raise QuestionnaireError(f"{at}: no question text")
    if item.get("item") or item.get("enableWhen"):
        raise QuestionnaireError(f"{at}: nested items and enableWhen are not supported")
    options = tuple(_option(o, at) for o in item.get("answerOption") or ())
    if kind is ItemKind.CHOICE:
        if not options:
            raise QuestionnaireError(f"{at}: a choice item needs answerOption")
        codes = [o.code for o in options]
        if len(set(codes)) != len(codes):
            raise QuestionnaireError(f"{at}: an option code appears more than once")
    elif options:
        raise QuestionnaireError(f"{at}: only a choice item has answerOption")
    max_length = item.get("maxLength", MAX_FREE_TEXT)
    if not 1 <= max_length <= MAX_FREE_TEXT:
        raise QuestionnaireError(f"{at}: maxLength must be 1 to {MAX_FREE_TEXT}")
    hint = _extension(item, HINT_EXTENSION)
    return Question(
        link_id=link_id, text=text.strip(), kind=kind, required=bool(item.get("required", False)),
        options=options, max_length=max_length,
        hint=hint.get("valueString") if hint is not None else None,
    )  # fmt: skip


def _option(option: dict[str, Any], at: str) -> Option:
    coding = option.get("valueCoding")
    if not isinstance(coding, dict):
        raise QuestionnaireError(f"{at}: every option is a valueCoding")
    code, display = coding.get("code", ""), coding.get("display")
    if not _CODE.fullmatch(code):
        raise QuestionnaireError(f"{at}: option code {code!r}: lower case letters, digits and hyphens")
    if not isinstance(display, str) or not display.strip():
        raise QuestionnaireError(f"{at}: option {code!r} has no display text")
    ordinal = _extension(option, ORDINAL_EXTENSION)
    value = None if ordinal is None else ordinal.get("valueDecimal")
    if value is None:
        raise QuestionnaireError(f"{at}: option {code!r} has no {ORDINAL_EXTENSION} (its score)")
    number = Decimal(str(value))
    if number != number.to_integral_value() or number < 0:
        raise QuestionnaireError(f"{at}: option {code!r}: the score must be a whole number, 0 or more")
    return Option(code, display.strip(), coding.get("system"), int(number), _flag(option, at, code))


def _flag(option: dict[str, Any], at: str, code: str) -> Flag | None:
    flags = [e for e in option.get("extension") or () if e.get("url") == FLAG_EXTENSION]
    if not flags:
        return None
    if len(flags) > 1:
        raise QuestionnaireError(f"{at}: option {code!r} has more than one flag")
    parts = {e.get("url"): e.get("valueCode") for e in flags[0].get("extension") or ()}
    flag_code, priority = parts.get("code"), parts.get("priority")
    if flag_code not in SYMPTOM_SV:
        raise QuestionnaireError(
            f"{at}: option {code!r}: flag {flag_code!r} is not a known symptom"
            f" (alerts.messages_sv.SYMPTOM_SV: {', '.join(sorted(SYMPTOM_SV))})"
        )
    if priority not in ("low", "medium", "high"):
        raise QuestionnaireError(f"{at}: option {code!r}: flag priority must be low, medium or high")
    return Flag(flag_code, Priority.parse(priority))


def _extension(element: dict[str, Any], url: str) -> dict[str, Any] | None:
    found = [e for e in element.get("extension") or () if isinstance(e, dict) and e.get("url") == url]
    return found[0] if found else None
