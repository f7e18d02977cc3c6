"""The device catalogue: one JSON profile per device model, validated when loaded.

A profile says how to recognise a device from its advertisement and which characteristics
to subscribe to with which decoder. Device knowledge lives in these files, not in code
branches on names. Files are `device_profiles/profiles/<id>.json` (shipped as package
data); the schema is `Profile` below, and every decoder name, characteristic UUID,
service and GATT mode must agree with `registry.DECODERS`.

Matching (`match_profile`): a profile with `name_patterns` is specific and matches only
when the advertised local name fully matches one pattern (Python `re.fullmatch`, case
sensitive; write `(?i)` to ignore case). A profile without patterns is generic and
matches when the device advertises one of its `service_uuids`. Specific beats generic;
among equals, more shared services wins, then the earlier profile (load order is by id).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import DecodeError, ProfileError
from .registry import DECODERS_BY_NAME
from .uuids import canonical_uuid, name_of

__all__ = ["CharacteristicSpec", "Match", "Profile", "load_profile", "load_profiles", "match_profile"]


def _uuid(value: str) -> str:
    try:
        return canonical_uuid(value)
    except DecodeError as exc:
        raise ValueError(str(exc)) from None


Uuid = Annotated[str, AfterValidator(_uuid)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    name_patterns: tuple[str, ...] = ()  # regexes for the advertised local name
    service_uuids: tuple[Uuid, ...] = ()  # advertised service UUIDs

    @field_validator("name_patterns")
    @classmethod
    def _compile(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None
        return patterns

    @model_validator(mode="after")
    def _something(self) -> Match:
        if not self.name_patterns and not self.service_uuids:
            raise ValueError(
                "name_patterns / service_uuids: give one or both, or the profile matches nothing"
            )
        return self


class CharacteristicSpec(_Strict):
    uuid: Uuid
    service: Uuid
    mode: Literal["notify", "indicate", "read"]
    decoder: str
    optional: bool = False  # the device may lack it (e.g. Battery Service, PLX spot-check vs continuous)

    @field_validator("decoder")
    @classmethod
    def _known_decoder(cls, name: str) -> str:
        if name not in DECODERS_BY_NAME:
            raise ValueError(f"unknown decoder {name!r} (known: {', '.join(sorted(DECODERS_BY_NAME))})")
        return name

    @model_validator(mode="after")
    def _agrees_with_decoder(self) -> CharacteristicSpec:
        # Messages start with the field at fault: pydantic reports model-level errors at the
        # characteristic, not at the field.
        decoder = DECODERS_BY_NAME[self.decoder]
        if decoder.uuid != self.uuid:
            raise ValueError(
                f"uuid: {name_of(self.uuid)} is not what decoder {self.decoder!r} reads "
                f"({decoder.characteristic})"
            )
        if self.service not in decoder.services:
            raise ValueError(
                f"service: {decoder.characteristic} belongs to "
                f"{', '.join(name_of(s) for s in sorted(decoder.services))}, not {name_of(self.service)}"
            )
        if self.mode not in decoder.modes:
            raise ValueError(
                f"mode: {decoder.characteristic} supports {' / '.join(sorted(decoder.modes))}, "
                f"not {self.mode!r}"
            )
        return self


class Profile(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")  # = the file name without .json
    manufacturer: str = Field(min_length=1)
    model: str = Field(min_length=1)
    match: Match
    characteristics: tuple[CharacteristicSpec, ...]
    pairing: Literal["none", "just_works", "passkey"]
    source: str = Field(min_length=1)  # title of the spec or vendor document the profile follows
    notes: str = ""

    @field_validator("characteristics")
    @classmethod
    def _some(cls, characteristics: tuple[CharacteristicSpec, ...]) -> tuple[CharacteristicSpec, ...]:
        # A validator rather than Field(min_length=1): that one also fires, misleadingly,
        # when an item fails validation.
        if not characteristics:
            raise ValueError("a profile needs at least one characteristic")
        return characteristics

    @model_validator(mode="after")
    def _unique_characteristics(self) -> Profile:
        seen = [c.uuid for c in self.characteristics]
        duplicates = sorted({u for u in seen if seen.count(u) > 1})
        if duplicates:
            raise ValueError(f"characteristics: listed twice: {', '.join(duplicates)}")
        return self

    @property
    def generic(self) -> bool:
        return not self.match.name_patterns

    def name_matches(self, name: str | None) -> bool:
        return name is not None and any(re.fullmatch(p, name) for p in self.match.name_patterns)


def load_profile(path: Traversable | str | os.PathLike[str]) -> Profile:
    """One profile file, validated; ProfileError naming the file and field otherwise."""
    file = Path(path) if isinstance(path, str | os.PathLike) else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{file.name}: cannot read: {exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{file.name}: not valid JSON: {exc}") from exc
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()
        )
        raise ProfileError(f"{file.name}: {problems}") from exc
    stem = file.name.removesuffix(".json")
    if profile.id != stem:
        raise ProfileError(f"{file.name}: id: {profile.id!r} must equal the file name {stem!r}")
    return profile


def load_profiles(directory: str | os.PathLike[str] | None = None) -> tuple[Profile, ...]:
    """Every *.json profile in `directory` (default: the shipped catalogue), sorted by id."""
    root: Traversable = (
        resources.files("device_profiles") / "profiles" if directory is None else Path(directory)
    )
    files = sorted((f for f in root.iterdir() if f.name.endswith(".json")), key=lambda f: f.name)
    return tuple(load_profile(f) for f in files)


def match_profile(
    profiles: Iterable[Profile], name: str | None, service_uuids: Iterable[str]
) -> Profile | None:
    """The profile for a device advertising `name` and `service_uuids`, or None."""
    advertised = {canonical_uuid(u) for u in service_uuids}
    best: Profile | None = None
    best_score: tuple[int, int] = (0, 0)
    for profile in profiles:
        shared = len(advertised.intersection(profile.match.service_uuids))
        if profile.generic:
            score = (1, shared) if shared else (0, 0)
        else:
            score = (2, shared) if profile.name_matches(name) else (0, 0)
        if score > best_score:
            best, best_score = profile, score
    return best
