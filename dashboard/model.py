"""What the dashboard shows, as frozen dataclasses, and how values are written for Swedish staff.

The same objects feed the Jinja templates (server-rendered page) and the JSON the
websocket and API send (`to_json`), so both renderings show the same facts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from hemma.vitals import DISPLAY_UNITS, VITALS, Vital

# Swedish regions run the wards; all clock times on screen are local Swedish time.
DISPLAY_TIMEZONE = "Europe/Stockholm"
# A reading older than this is greyed out on the overview (the kit may be unused or broken).
STALE_AFTER = timedelta(hours=24)

PRIORITY_RANK = {"high": 0, "medium": 1, "low": 2}
PRIORITY_LABELS = {"high": "Hög", "medium": "Medel", "low": "Låg"}
ALERT_STATE_LABELS = {"open": "Aktivt", "acknowledged": "Kvitterat", "resolved": "Avslutat"}
ALERT_EVENT_LABELS = {
    "opened": "Öppnat",
    "escalated": "Eskalerat",
    "reprioritised": "Omprioriterat",
    "acknowledged": "Kvitterat",
    "resolved": "Avslutat",
    "notified": "Aviserat",
    "notification_failed": "Avisering misslyckades",
}
GATEWAY_LABELS = {
    "online": "Hemenhet ansluten",
    "offline": "Hemenhet frånkopplad",
    "unknown": "Hemenhet okänd",
}
ROLE_LABELS = {"nurse": "Sjuksköterska", "physician": "Läkare", "admin": "Administratör"}
# UCUM codes are for machines; staff read the usual symbols.
UNIT_DISPLAY = DISPLAY_UNITS
_MONTHS = ("jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec")
# Sorting names the Swedish way: å, ä, ö come after z.
_SWEDISH_ORDER = str.maketrans({"å": "{", "ä": "|", "ö": "}", "æ": "|", "ø": "}"})


@lru_cache(maxsize=1)
def display_zone() -> ZoneInfo:
    return ZoneInfo(DISPLAY_TIMEZONE)


def known_vital(name: str) -> Vital | None:
    """The Vital for a stored name, or None for a vital this version does not know (shown raw)."""
    try:
        return Vital(name)
    except ValueError:
        return None


def swedish_sort_key(name: str) -> str:
    return name.casefold().translate(_SWEDISH_ORDER)


def format_value(value: float, decimals: int) -> str:
    """97 or 37,2: fixed decimals from hemma.vitals and the Swedish decimal comma."""
    return f"{value:.{decimals}f}".replace(".", ",")


def format_clock(at: datetime | None, now: datetime) -> str:
    """'14:03' today, '12 nov 14:03' another day, in Swedish local time."""
    if at is None:
        return ""
    local, today = at.astimezone(display_zone()), now.astimezone(display_zone())
    clock = f"{local.hour:02d}:{local.minute:02d}"
    if local.date() == today.date():
        return clock
    return f"{local.day} {_MONTHS[local.month - 1]} {clock}"


def format_date_time(at: datetime | None) -> str:
    """'23 nov 2026 14:03' in Swedish local time, for dates on the patient record."""
    if at is None:
        return ""
    local = at.astimezone(display_zone())
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year} {local.hour:02d}:{local.minute:02d}"


def format_age(at: datetime | None, now: datetime) -> str:
    """How long ago, the way the page's JavaScript writes it too ('nyss', '5 min sedan')."""
    if at is None:
        return ""
    seconds = (now - at).total_seconds()
    if seconds < 60:
        return "nyss"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min sedan"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} tim sedan"
    return f"{hours // 24} d sedan"


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


@dataclass(frozen=True, slots=True)
class StaffUser:
    id: int
    username: str
    display_name: str
    role: str
    ward_ids: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)

    def can_see(self, ward_id: str) -> bool:
        return self.is_admin or ward_id in self.ward_ids


@dataclass(frozen=True, slots=True)
class Ward:
    id: str
    name: str
    patient_count: int = 0
    open_high: int = 0
    open_medium: int = 0


@dataclass(frozen=True, slots=True)
class VitalReading:
    vital: Vital
    value: float
    unit: str
    time: datetime
    quality: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return VITALS[self.vital].short

    @property
    def name(self) -> str:
        return VITALS[self.vital].display

    @property
    def text(self) -> str:
        return format_value(self.value, VITALS[self.vital].decimals)

    @property
    def unit_text(self) -> str:
        return UNIT_DISPLAY.get(self.unit, self.unit)

    def is_stale(self, now: datetime) -> bool:
        return now - self.time > STALE_AFTER

    def to_json(self) -> dict[str, Any]:
        return {
            "vital": self.vital.value,
            "label": self.label,
            "name": self.name,
            "value": self.value,
            "text": self.text,
            "unit": self.unit_text,
            "time": _iso(self.time),
            "quality": list(self.quality),
        }


@dataclass(frozen=True, slots=True)
class GatewayView:
    id: str
    status: str
    status_at: datetime | None
    last_message_at: datetime | None

    @property
    def label(self) -> str:
        return GATEWAY_LABELS.get(self.status, self.status)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "label": self.label,
            "status_at": _iso(self.status_at),
            "last_message_at": _iso(self.last_message_at),
        }


@dataclass(frozen=True, slots=True)
class AlertView:
    id: int
    patient_id: uuid.UUID
    ward_id: str
    rule: str
    vital: str | None
    priority: str
    state: str
    message: str
    value: float | None
    observed_at: datetime
    opened_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None  # display name of the staff member
    note: str | None = None  # the acknowledgement note

    @property
    def priority_label(self) -> str:
        return PRIORITY_LABELS.get(self.priority, self.priority)

    @property
    def state_label(self) -> str:
        return ALERT_STATE_LABELS.get(self.state, self.state)

    def sort_key(self) -> tuple[int, int, float]:
        return (PRIORITY_RANK.get(self.priority, 3), self.state != "open", -self.opened_at.timestamp())

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "patient_id": str(self.patient_id),
            "rule": self.rule,
            "vital": self.vital,
            "priority": self.priority,
            "priority_label": self.priority_label,
            "state": self.state,
            "message": self.message,
            "value": self.value,
            "observed_at": _iso(self.observed_at),
            "opened_at": _iso(self.opened_at),
            "acknowledged_at": _iso(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class PatientCard:
    """One patient on the ward overview: identity, latest vitals, kit status, live alerts."""

    id: uuid.UUID
    ward_id: str
    name: str
    birth_year: int | None
    care_reason: str | None
    gateway: GatewayView | None
    vitals: tuple[VitalReading, ...] = ()
    alerts: tuple[AlertView, ...] = ()

    def age(self, now: datetime) -> int | None:
        if self.birth_year is None:
            return None
        return now.astimezone(display_zone()).year - self.birth_year

    @property
    def rank(self) -> int:
        """0 with a live high alert, 1 with medium, 2 otherwise: the ward list's first sort key."""
        ranks = [PRIORITY_RANK[a.priority] for a in self.alerts if a.priority in ("high", "medium")]
        return min(ranks, default=2)

    @property
    def top_priority(self) -> str | None:
        return min((a.priority for a in self.alerts), key=lambda p: PRIORITY_RANK.get(p, 3), default=None)

    def sort_key(self) -> tuple[int, str, str]:
        return (self.rank, swedish_sort_key(self.name), str(self.id))

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "ward_id": self.ward_id,
            "name": self.name,
            "age": self.age(now),
            "care_reason": self.care_reason,
            "rank": self.rank,
            "top_priority": self.top_priority,
            "gateway": self.gateway.to_json() if self.gateway else None,
            "vitals": [v.to_json() for v in self.vitals],
            "alerts": [a.to_json() for a in self.alerts],
        }


@dataclass(frozen=True, slots=True)
class WardOverview:
    ward: Ward
    patients: tuple[PatientCard, ...]
    at: datetime

    def open_alerts(self, priority: str) -> int:
        return sum(1 for p in self.patients for a in p.alerts if a.state == "open" and a.priority == priority)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "snapshot",
            "ward": {"id": self.ward.id, "name": self.ward.name},
            "at": self.at.isoformat(),
            "patients": [p.to_json(self.at) for p in self.patients],
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

    @property
    def priority_label(self) -> str:
        return PRIORITY_LABELS.get(self.priority, self.priority)


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
