"""Value types passed from rules to the alert store."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum


class Priority(IntEnum):
    """IEC 60601-1-8 alarm priorities; the integer order is the severity order."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, label: str) -> Priority:
        return cls[label.upper()]


class AlarmCondition(StrEnum):
    """IEC 60601-1-8's two kinds of alarm condition: about the patient, or about the equipment."""

    PHYSIOLOGICAL = "physiological"
    TECHNICAL = "technical"


@dataclass(frozen=True, slots=True)
class AlertRequest:
    """A rule's wish that an alert exist for (patient, rule) at this priority."""

    patient_id: uuid.UUID
    rule: str
    vital: str | None
    priority: Priority
    message: str
    value: float | None
    threshold: float | None
    observed_at: datetime
    # Technical alarms (missing data, gateway offline, battery) are about the kit, not the patient: the
    # lifecycle may route them to the kit's operator and need not latch them like a high physiological alarm.
    condition: AlarmCondition = AlarmCondition.PHYSIOLOGICAL
    # How long the alert waits as 'pending' before it opens; None: alerts.lifecycle.HOLD's.
    hold: timedelta | None = None


@dataclass(frozen=True, slots=True)
class AlertClear:
    """A rule's statement that its condition no longer holds for (patient, rule)."""

    patient_id: uuid.UUID
    rule: str
    observed_at: datetime


# What every rule function returns: the alerts it wants to exist and the ones whose condition has ended.
RuleOutput = tuple[list[AlertRequest], list[AlertClear]]


def epoch_seconds(at: datetime) -> float:
    """An aware datetime as float seconds since the epoch: the time unit of every array in the engine.

    Engine arrays hold times as float64 epoch seconds with NaN for "never": float64 keeps sub-microsecond
    resolution for centuries, and NaN padding works for times exactly as for values.
    """
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at.isoformat()}: the alert engine only takes aware datetimes")
    return at.timestamp()


def from_epoch_seconds(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
