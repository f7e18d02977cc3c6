"""What a rule is: its family of alert keys, when it runs, what it must be given, and a pure `evaluate`.

Nightscout's plugins each *request* notifications and one module decides (`lib/plugins/index.js`,
`lib/notifications.js`); Hemma's rules are the same shape. A rule

* names its `family`: the kind of alert key it produces (`RuleFamily`, the one home of the key
  prefixes the engine, the store's callers and paging used to repeat as strings);
* says when it runs (`trigger`: with each batch of readings for the patients it touched, or on the
  engine's timer for every patient in care; `every`: a slower cadence than the timer's);
* asks for its inputs as a typed `InputRequest` (`alerts.inputs`), which one reads module fulfils
  (`ingest.rule_inputs`); a rule never sees a database connection;
* and `evaluate(inputs, now)` returns alert requests and clears (`alerts.model.RuleOutput`), the text
  rendered from the kernel's facts by `alerts.messages_sv`.

The list of rules is `alerts.registry.RULES`. Adding a rule means one kernel file (its arrays, its
facts, its `Rule`) and one entry there.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum, StrEnum
from typing import Generic, Protocol, TypeVar

from alerts.model import RuleOutput
from alerts.thresholds import threshold_keys
from core.vitals import Vital


class RuleFamily(StrEnum):
    """Every kind of alert key, one member per rule family.

    A *keyed* family has one alert per patient and subject (`missing:spo2`, `battery_low:<device>`):
    its keys are `<family>:<subject>`. The others have one key per patient (`news2`). Threshold keys
    are the ward-default table's own names (`spo2_low`, `alerts.thresholds`), with no common prefix.
    """

    THRESHOLD = "threshold"
    NEWS2 = "news2"
    WEIGHT_GAIN = "weight_gain_3d"
    WEIGHT_BASELINE = "weight_above_baseline"
    TREND = "trend"  # trend:<what>, alerts.trends
    MISSING = "missing"  # missing:<vital>, alerts.missing
    GATEWAY_OFFLINE = "gateway_offline"
    RECEIPTS_OVERDUE = "receipts_overdue"
    DEVICE_SILENT = "device_silent"  # device_silent:<device>
    BATTERY_LOW = "battery_low"  # battery_low:<device>
    CLOCK_NOT_SET = "clock_not_set"  # clock_not_set:<device>
    CONFIG_NOT_APPLIED = "config_not_applied"  # alerts.kit_config
    CONTACT_REQUEST_OPEN = "contact_request_open"  # alerts.contact: the box's button, nobody took it
    SYMPTOMS = "symptoms"  # symptoms:<questionnaire>, alerts.symptoms: what the patient reported
    NOTIFICATION_FAILING = "notification_failing"  # notification_failing:<channel>, paging.alarms

    @property
    def keyed(self) -> bool:
        return self in _KEYED

    @property
    def prefix(self) -> str:
        """What every key of the family starts with (a keyed family's ends with the colon)."""
        if self is RuleFamily.THRESHOLD:
            raise ValueError("threshold keys share no prefix: see alerts.thresholds.threshold_keys()")
        return f"{self.value}:" if self.keyed else self.value

    def key(self, subject: str | None = None) -> str:
        """The alert key for `subject` (keyed families) or the family's one key."""
        if self.keyed != (subject is not None):
            raise ValueError(f"rule family {self.value} {'needs' if self.keyed else 'takes no'} subject")
        return self.prefix + (subject or "")


_KEYED = frozenset(
    {
        RuleFamily.TREND,
        RuleFamily.MISSING,
        RuleFamily.DEVICE_SILENT,
        RuleFamily.BATTERY_LOW,
        RuleFamily.CLOCK_NOT_SET,
        RuleFamily.NOTIFICATION_FAILING,
        RuleFamily.SYMPTOMS,
    }
)


def family_of(rule_key: str) -> RuleFamily:
    """The family a stored alert key belongs to; ValueError for a key no rule produces."""
    head, colon, _ = rule_key.partition(":")
    try:
        family = RuleFamily(head)
    except ValueError:
        family = None
    if family is not None and family is not RuleFamily.THRESHOLD and family.keyed == bool(colon):
        return family
    if not colon and rule_key in threshold_keys():
        return RuleFamily.THRESHOLD
    raise ValueError(f"no rule family produces the alert key {rule_key!r}")


class Trigger(Enum):
    # With each committed batch, for the patients and vitals it touched (and, on the timer, for the
    # manual observations entered and the questionnaires answered since: they are a batch too, one a
    # nurse typed or the patient answered).
    BATCH = "batch"
    # On the engine's timer (HEMMA_ENGINE_TICK_SECONDS), for every patient in care.
    TICK = "tick"


@dataclass(frozen=True, slots=True)
class Scope:
    """Who a run of the rules is about. A batch fills `touched` (and `entered`, `answered`), the timer
    `in_care`."""

    touched: Mapping[Vital, frozenset[uuid.UUID]] = field(default_factory=dict)
    entered: frozenset[uuid.UUID] = frozenset()  # patients with a new manual observation
    # Patients with a new questionnaire response, by questionnaire id (care.questionnaires).
    answered: Mapping[str, frozenset[uuid.UUID]] = field(default_factory=dict)
    in_care: tuple[uuid.UUID, ...] = ()

    def patients_of(self, vitals: tuple[Vital, ...]) -> set[uuid.UUID]:
        return {p for v in vitals for p in self.touched.get(v, ())}

    def answering(self, questionnaires: tuple[str, ...] | None = None) -> set[uuid.UUID]:
        """Patients who answered any of `questionnaires` (None: any questionnaire)."""
        chosen = tuple(self.answered) if questionnaires is None else questionnaires
        return {p for q in chosen for p in self.answered.get(q, ())}


@dataclass(frozen=True, slots=True)
class WithEachBatch:
    """Base of a rule run with each committed batch, for the patients and vitals it touched. Its clears
    go to the store as they are: it judged only those patients, so there are few."""

    trigger: Trigger = field(default=Trigger.BATCH, init=False)
    every: timedelta | None = field(default=None, init=False)
    clears_where_live: bool = field(default=False, init=False)


@dataclass(frozen=True, slots=True)
class OnTheTimer:
    """Base of a rule run on the engine's timer for every patient in care (a rule may set a slower
    `every`). It judges everyone each tick, so its clears go to the store only where an alert of its
    family is live."""

    trigger: Trigger = field(default=Trigger.TICK, init=False)
    every: timedelta | None = field(default=None, init=False)
    clears_where_live: bool = field(default=True, init=False)


T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
InputsT = TypeVar("InputsT")


class InputRequest(Generic[T_co]):
    """A typed ask for inputs of type T_co; `ingest.rule_inputs.RuleInputs.load` fulfils it."""

    __slots__ = ()


class Rule(Protocol[InputsT]):
    """One rule of the registry. Implementations are frozen dataclasses in their kernel's module."""

    @property
    def family(self) -> RuleFamily: ...

    @property
    def trigger(self) -> Trigger: ...

    @property
    def every(self) -> timedelta | None:
        """A cadence slower than the timer's (tick rules), or None: every time the trigger fires."""
        ...

    @property
    def clears_where_live(self) -> bool:
        """True for rules judging every patient on the timer: their clears go to the store only where
        an alert of the family is live, instead of one clear per patient per tick."""
        ...

    def request(self, scope: Scope) -> InputRequest[InputsT] | None:
        """The inputs to load for `scope`, or None when nobody in it concerns this rule."""
        ...

    def evaluate(self, inputs: InputsT, now: datetime) -> RuleOutput:
        """Pure: arrays in, requests and clears out. Never reads the clock, never does I/O."""
        ...
