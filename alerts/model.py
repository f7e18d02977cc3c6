"""Value types passed from rules to the alert store."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum


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


@dataclass(frozen=True, slots=True)
class AlertClear:
    """A rule's statement that its condition no longer holds for (patient, rule)."""

    patient_id: uuid.UUID
    rule: str
    observed_at: datetime
