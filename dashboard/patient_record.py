"""What the patient record shows (`/patients/{id}`), as frozen dataclasses: observations, alert
history, personal limits, manual observations, orders, the monitoring plan and the devices.

The record's card and alerts are the overview's (dashboard.model); dashboard.queries builds these and
the record page's templates render them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from care.enrolment import OUTCOMES_SV
from core.vitals import VITALS
from dashboard.formatting import format_minutes, format_value
from dashboard.model import (
    ACVPU_LABELS,
    PRIORITY_LABELS,
    UNIT_DISPLAY,
    AlertView,
    ContactRequestView,
    PatientCard,
    iso_or_none,
    known_vital,
)

if TYPE_CHECKING:
    from dashboard.news2_summary import News2Summary


ALERT_EVENT_LABELS = {
    "pending": "Väntade (fördröjning)",
    "opened": "Öppnat",
    "escalated": "Eskalerat",
    "reprioritised": "Omprioriterat",
    "acknowledged": "Kvitterat",
    "snoozed": "Snoozat",
    "snooze_expired": "Snooze slut",
    "resolved": "Avslutat",
    "withdrawn": "Återkallat",
    "notified": "Aviserat",
    "notification_failed": "Avisering misslyckades",
    # The ward's escalation ladder (issue 12); the note names the receiver and their care provider.
    "handed_off": "Eskaleringstrappa",
    "handoff_skipped": "Eskaleringstrappa",
    "handoff_taken": "Eskaleringstrappa",
}


@dataclass(frozen=True, slots=True)
class Observation:
    time: datetime
    vital: str
    value: float
    unit: str
    quality: tuple[str, ...]
    device_id: str

    @property
    def label(self) -> str:
        known = known_vital(self.vital)
        return VITALS[known].display if known else self.vital

    @property
    def text(self) -> str:
        known = known_vital(self.vital)
        return format_value(self.value, VITALS[known].decimals if known else 2)

    @property
    def unit_text(self) -> str:
        return UNIT_DISPLAY.get(self.unit, self.unit)


@dataclass(frozen=True, slots=True)
class AlertEventView:
    at: datetime
    kind: str
    actor: str
    priority: str | None
    note: str | None

    @property
    def kind_label(self) -> str:
        return ALERT_EVENT_LABELS.get(self.kind, self.kind)


@dataclass(frozen=True, slots=True)
class AlertHistoryEntry:
    alert: AlertView
    resolved_at: datetime | None
    events: tuple[AlertEventView, ...]


@dataclass(frozen=True, slots=True)
class PersonalLimit:
    """A physician's own alert limit for this patient, in force now."""

    rule: str
    priority: str
    limit_text: str  # "86 %"
    reason: str
    set_by: str
    set_at: datetime
    valid_until: datetime | None
    id: int = 0  # personal_thresholds.id, what "Återkalla" names
    key: str = ""  # the rule key, "spo2_low"

    @property
    def priority_label(self) -> str:
        return PRIORITY_LABELS.get(self.priority, self.priority)


@dataclass(frozen=True, slots=True)
class DischargeView:
    """How the episode ended. All None for a discharge from before migration 0014 (no outcome asked)."""

    outcome: str | None
    note: str | None
    by: str | None  # display name

    @property
    def outcome_sv(self) -> str | None:
        return OUTCOMES_SV.get(self.outcome, self.outcome) if self.outcome else None


@dataclass(frozen=True, slots=True)
class PatientRecord:
    card: PatientCard
    personal_number: str | None
    enrolled_at: datetime
    discharged_at: datetime | None
    observations: tuple[Observation, ...]
    observations_truncated: bool
    alert_history: tuple[AlertHistoryEntry, ...]
    ward_name: str = ""
    personal_limits: tuple[PersonalLimit, ...] = ()
    manual_observations: tuple[ManualObservationView, ...] = ()
    spo2_scale: Spo2ScaleView | None = None
    monitoring_plan: tuple[MonitoringPlanItem, ...] = ()
    devices: tuple[DeviceView, ...] = ()
    contact_requests: tuple[ContactRequestView, ...] = ()  # newest first
    news2: News2Summary | None = None
    discharge: DischargeView | None = None
    now: datetime | None = None  # the database's clock when the record was read


@dataclass(frozen=True, slots=True)
class ManualObservationView:
    """What a nurse (or the patient) observed and entered by hand."""

    id: int
    time: datetime
    respiratory_rate: float | None
    consciousness: str | None
    on_oxygen: bool | None
    oxygen_l_min: float | None
    source: str  # 'nurse' | 'patient'
    entered_by: str | None  # display name of the staff member
    entered_at: datetime
    evaluated: bool

    @property
    def respiratory_rate_text(self) -> str:
        return "–" if self.respiratory_rate is None else f"{format_value(self.respiratory_rate, 0)} /min"

    @property
    def consciousness_text(self) -> str:
        if self.consciousness is None:
            return "–"
        return f"{self.consciousness} – {ACVPU_LABELS.get(self.consciousness, '')}".rstrip(" –")

    @property
    def oxygen_text(self) -> str:
        if self.on_oxygen is None:
            return "–"
        if not self.on_oxygen:
            return "Luft"
        if self.oxygen_l_min is None:
            return "Syrgas"
        return f"Syrgas {format_value(self.oxygen_l_min, 1 if self.oxygen_l_min % 1 else 0)} l/min"

    @property
    def who(self) -> str:
        if self.source == "patient":
            return "Patienten"
        return self.entered_by or "Personal"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": iso_or_none(self.time),
            "respiratory_rate": self.respiratory_rate,
            "consciousness": self.consciousness,
            "on_oxygen": self.on_oxygen,
            "oxygen_l_min": self.oxygen_l_min,
            "source": self.source,
            "entered_by": self.entered_by,
            "entered_at": iso_or_none(self.entered_at),
        }


@dataclass(frozen=True, slots=True)
class Spo2ScaleView:
    """The physician's order in force for how SpO2 is scored in NEWS2."""

    scale: int
    reason: str
    ordered_by: str
    ordered_at: datetime

    @property
    def label(self) -> str:
        return "Skala 2 (hyperkapni)" if self.scale == 2 else "Skala 1"


@dataclass(frozen=True, slots=True)
class MonitoringPlanItem:
    vital: str
    every_minutes: int
    last_at: datetime | None  # the newest stored value of this vital

    @property
    def label(self) -> str:
        known = known_vital(self.vital)
        return VITALS[known].display if known else self.vital

    @property
    def every_text(self) -> str:
        return f"var {format_minutes(self.every_minutes)}"

    def overdue(self, now: datetime) -> bool:
        return self.last_at is None or now - self.last_at > timedelta(minutes=self.every_minutes)


@dataclass(frozen=True, slots=True)
class DeviceView:
    device_id: str
    last_seen_at: datetime
    battery_percent: int | None
    battery_at: datetime | None
    clock_not_set: bool

    @property
    def battery_text(self) -> str:
        return "–" if self.battery_percent is None else f"{self.battery_percent} %"

    @property
    def battery_low(self) -> bool:
        return self.battery_percent is not None and self.battery_percent <= 20
