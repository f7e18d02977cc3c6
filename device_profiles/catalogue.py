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

Connecting (`Profile.connect_steps`): what a collector does after connecting, in order.
`on_connect` lists the steps; without it the only step is "subscribe". Steps:

* ``subscribe``: handle `characteristics` (read the "read" ones, enable notifications or
  indications on the others). Exactly once when `on_connect` is given.
* ``read_features``: read a Feature characteristic once (`decoder` names it), to learn
  what the device supports.
* ``write_date_time`` / ``write_current_time``: write the device's local time to Date Time
  (0x2A08) or Current Time (0x2A2B); `ConnectAction.payload(device_clock)` gives the bytes.
* ``racp_report_all``: write "report all stored records" to the Record Access Control
  Point, for meters that keep readings taken while the gateway was away. It must come
  after "subscribe" and the profile must list the RACP with mode "indicate", or the
  device refuses the request (its responses would have nowhere to go).

A step with `optional: true` is skipped when the device lacks the characteristic.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from datetime import datetime
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

from .current_time import AdjustReason, encode_current_time, encode_date_time
from .errors import DecodeError, ProfileError
from .racp import RacpOpCode, RacpOperator, encode_racp_request
from .registry import DECODERS_BY_NAME
from .uuids import (
    CURRENT_TIME,
    CURRENT_TIME_SERVICE,
    DATE_TIME,
    GLUCOSE_SERVICE,
    PULSE_OXIMETER_SERVICE,
    RECORD_ACCESS_CONTROL_POINT,
    canonical_uuid,
    name_of,
)

__all__ = [
    "CONNECT_ACTIONS",
    "CharacteristicSpec",
    "ConnectAction",
    "Match",
    "Profile",
    "load_profile",
    "load_profiles",
    "match_profile",
]


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
        if decoder.services and self.service not in decoder.services:
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


ActionName = Literal["subscribe", "read_features", "write_date_time", "write_current_time", "racp_report_all"]
CONNECT_ACTIONS: tuple[str, ...] = ActionName.__args__  # type: ignore[attr-defined]

# The characteristic each writing step writes, and the services it may sit in (None: any).
_WRITES: dict[str, tuple[str, frozenset[str] | None]] = {
    "write_date_time": (DATE_TIME, None),  # A&D: inside the Blood Pressure / Weight Scale service
    "write_current_time": (CURRENT_TIME, frozenset({CURRENT_TIME_SERVICE})),
    "racp_report_all": (RECORD_ACCESS_CONTROL_POINT, frozenset({GLUCOSE_SERVICE, PULSE_OXIMETER_SERVICE})),
}


class ConnectAction(_Strict):
    """One step of `Profile.on_connect`."""

    action: ActionName
    uuid: Uuid | None = None  # the characteristic read or written; none for "subscribe"
    service: Uuid | None = None
    decoder: str | None = None  # read_features only: the feature decoder
    optional: bool = False  # skip the step when the device lacks the characteristic

    @model_validator(mode="after")
    def _complete(self) -> ConnectAction:
        if self.action == "subscribe":
            if (self.uuid, self.service, self.decoder) != (None, None, None) or self.optional:
                raise ValueError("subscribe: takes no uuid, service, decoder or optional")
            return self
        if self.uuid is None or self.service is None:
            raise ValueError(f"{self.action}: needs uuid and service")
        if self.action == "read_features":
            return self._check_feature_read()
        if self.decoder is not None:
            raise ValueError(f"{self.action}: writes, so it takes no decoder")
        uuid, services = _WRITES[self.action]
        if self.uuid != uuid:
            raise ValueError(f"uuid: {self.action} writes {name_of(uuid)}, not {name_of(self.uuid)}")
        if services is not None and self.service not in services:
            raise ValueError(
                f"service: {name_of(uuid)} is written in {', '.join(name_of(s) for s in sorted(services))}"
            )
        return self

    def _check_feature_read(self) -> ConnectAction:
        decoder = DECODERS_BY_NAME.get(self.decoder or "")
        if decoder is None:
            raise ValueError(
                f"decoder: read_features needs a known decoder, got {self.decoder!r} "
                f"(known: {', '.join(sorted(DECODERS_BY_NAME))})"
            )
        if "read" not in decoder.modes or decoder.uuid != self.uuid:
            raise ValueError(f"decoder: {self.decoder!r} does not read {name_of(str(self.uuid))}")
        if decoder.services and self.service not in decoder.services:
            raise ValueError(f"service: {decoder.characteristic} is not in {name_of(str(self.service))}")
        return self

    def payload(self, device_clock: datetime) -> bytes | None:
        """The bytes a writing step writes (None for reads and subscribe).

        `device_clock` is the device's local wall time, naive (the caller converts from the
        gateway clock and the device's zone; nothing here reads a clock).
        """
        if self.action == "write_date_time":
            return encode_date_time(device_clock)
        if self.action == "write_current_time":
            # The gateway's clock is NTP-disciplined: an external reference, not a person.
            return encode_current_time(
                device_clock, adjust_reason=AdjustReason.EXTERNAL_REFERENCE_TIME_UPDATE
            )
        if self.action == "racp_report_all":
            return encode_racp_request(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.ALL_RECORDS)
        return None


_SUBSCRIBE = ConnectAction(action="subscribe")


class Profile(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")  # = the file name without .json
    manufacturer: str = Field(min_length=1)
    model: str = Field(min_length=1)
    # What staff see when they choose or read a device (the dashboard is Swedish); every shipped
    # profile has one (tests/test_device_profiles_catalogue.py).
    label_sv: str = Field(default="", max_length=80)
    match: Match
    characteristics: tuple[CharacteristicSpec, ...]
    pairing: Literal["none", "just_works", "passkey"]
    source: str = Field(min_length=1)  # title of the spec or vendor document the profile follows
    notes: str = ""
    on_connect: tuple[ConnectAction, ...] = ()  # ordered; see the module docstring

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

    @model_validator(mode="after")
    def _connect_steps_make_sense(self) -> Profile:
        if not self.on_connect:
            return self
        actions = [a.action for a in self.on_connect]
        if actions.count("subscribe") != 1:
            raise ValueError("on_connect: list the subscribe step exactly once")
        keys = [(a.action, a.uuid) for a in self.on_connect]
        if len(set(keys)) != len(keys):
            raise ValueError("on_connect: a step is listed twice")
        subscribed_at = actions.index("subscribe")
        for i, step in enumerate(self.on_connect):
            if step.action != "racp_report_all":
                continue
            if i < subscribed_at:
                raise ValueError(
                    "on_connect: racp_report_all must come after subscribe (responses are indicated)"
                )
            if not any(
                c.uuid == step.uuid and c.service == step.service and c.mode == "indicate"
                for c in self.characteristics
            ):
                raise ValueError(
                    f"on_connect: racp_report_all needs characteristics to list {name_of(str(step.uuid))} "
                    f"in {name_of(str(step.service))} with mode 'indicate'"
                )
        return self

    @property
    def connect_steps(self) -> tuple[ConnectAction, ...]:
        """`on_connect`, or just "subscribe" for a profile that lists no steps."""
        return self.on_connect or (_SUBSCRIBE,)

    @property
    def decoders(self) -> frozenset[str]:
        """Every decoder the profile names, in characteristics and in read_features steps."""
        named = {c.decoder for c in self.characteristics}
        named |= {a.decoder for a in self.on_connect if a.decoder is not None}
        return frozenset(named)

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
