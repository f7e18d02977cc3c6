"""Care pathways (vårdförlopp) and their plan templates: data, not code (issue 11, admission).

Each `data/<id>.toml` names what a patient on the pathway measures (vitals for the monitoring plan, at
the frequency the care level sets: care.care_levels.level_plan_minutes), which questionnaires they
answer at which local times (care.questionnaires), the care level the pathway suggests, and an optional
note for the admitting clinician. Every file is checked when first used, against the vitals, the
questionnaire catalogue and the levels Hemma knows: a template naming something unknown fails loudly
at start-up and in the tests, never at a patient's admission.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

from core.vitals import Vital

PATHWAY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")  # admissions.pathway's CHECK
_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
_KEYS = {"id", "title", "description", "suggested_level", "vitals", "questionnaires", "note"}
_LEVELS = ("red", "yellow", "green")  # care.care_levels.CareLevel (care imports this package, not back)


class PathwayError(ValueError):
    """A pathway file that is not a valid template; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class QuestionnairePlan:
    questionnaire: str
    times: tuple[str, ...]  # "HH:MM", local, in order


@dataclass(frozen=True, slots=True)
class Pathway:
    id: str
    title: str
    description: str
    suggested_level: str  # 'red' | 'yellow' | 'green'
    vitals: tuple[Vital, ...]
    questionnaires: tuple[QuestionnairePlan, ...]
    note: str | None


@functools.cache
def pathways() -> Mapping[str, Pathway]:
    """Every shipped pathway by id, in title order (checked once, on first use)."""
    loaded = load_directory()
    return dict(sorted(loaded.items(), key=lambda item: item[1].title))


def pathway(pathway_id: str) -> Pathway | None:
    return pathways().get(pathway_id)


def load_directory(directory: str | Path | None = None) -> dict[str, Pathway]:
    """Every `*.toml` in `directory` (default: the shipped data), by id."""
    root: Traversable = resources.files("care.pathways") / "data" if directory is None else Path(directory)
    files = sorted((f for f in root.iterdir() if f.name.endswith(".toml")), key=lambda f: f.name)
    loaded = [load_file(f) for f in files]
    return {p.id: p for p in loaded}


def load_file(path: Traversable | Path) -> Pathway:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PathwayError(f"{path.name}: not readable TOML ({exc})") from exc
    return parse(data, name=path.name)


def parse(data: Mapping[str, Any], *, name: str) -> Pathway:
    """A pathway template checked; `name` is the file's name (its stem must be the id)."""
    from care.questionnaires.definitions import catalogue

    unknown = set(data) - _KEYS
    if unknown:
        raise PathwayError(f"{name}: unknown keys {sorted(unknown)}")
    pid = data.get("id")
    if not isinstance(pid, str) or not PATHWAY_ID.fullmatch(pid) or f"{pid}.toml" != name:
        raise PathwayError(f"{name}: `id` must be the file's name (lower case, digits, hyphens)")
    for key in ("title", "description"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise PathwayError(f"{name}: `{key}` is missing")
    if data.get("suggested_level") not in _LEVELS:
        raise PathwayError(f"{name}: `suggested_level` must be one of {', '.join(_LEVELS)}")
    vitals = _vitals(data.get("vitals"), name)
    known = catalogue()
    plans = []
    for entry in data.get("questionnaires", []):
        if not isinstance(entry, dict) or set(entry) != {"id", "times"}:
            raise PathwayError(f"{name}: each [[questionnaires]] has exactly `id` and `times`")
        if entry["id"] not in known:
            raise PathwayError(f"{name}: questionnaire {entry['id']!r} is not in care/questionnaires/data")
        times = entry["times"]
        if (
            not isinstance(times, list)
            or not 1 <= len(times) <= 6
            or not all(isinstance(t, str) and _TIME.fullmatch(t) for t in times)
            or len(set(times)) != len(times)
        ):
            raise PathwayError(f'{name}: {entry["id"]}: `times` are 1 to 6 distinct "HH:MM"')
        plans.append(QuestionnairePlan(entry["id"], tuple(sorted(times))))
    if len({p.questionnaire for p in plans}) != len(plans):
        raise PathwayError(f"{name}: a questionnaire appears more than once")
    note = data.get("note")
    if note is not None and (not isinstance(note, str) or not note.strip()):
        raise PathwayError(f"{name}: `note`, when given, is text")
    return Pathway(
        pid, data["title"].strip(), data["description"].strip(), data["suggested_level"], vitals,
        tuple(plans), note.strip() if note else None,
    )  # fmt: skip


def _vitals(value: object, name: str) -> tuple[Vital, ...]:
    if not isinstance(value, list) or not value:
        raise PathwayError(f"{name}: `vitals` lists at least one vital")
    try:
        vitals = tuple(Vital(v) for v in value)
    except ValueError:
        raise PathwayError(f"{name}: `vitals` names a vital Hemma does not know") from None
    if len(set(vitals)) != len(vitals):
        raise PathwayError(f"{name}: a vital appears more than once")
    # The plan's vitals (dashboard.care_orders.PLAN_VITALS): diastolic and mean pressure come with
    # every systolic reading, so a plan names systolic only.
    if Vital.DIASTOLIC_BP in vitals or Vital.MEAN_ARTERIAL_PRESSURE in vitals:
        raise PathwayError(f"{name}: blood pressure is planned as systolic_bp (the rest come with it)")
    return vitals
