"""What the dashboard shows, as frozen dataclasses: the member of staff, the ward overview's cards and
their alerts, and the Swedish labels of stored codes.

The same objects feed the Jinja templates (dashboard.rendering: the page and the live hub's card
fragments alike) and the JSON API (`to_json`, data for integrators, never rendered by the page). The
patient record's own parts are in dashboard.patient_record; how values and times are written for
Swedish staff is dashboard.formatting.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from alerts.messages_sv import SYMPTOM_SV
from alerts.texts_sv import PRIORITY_SV
from care import permissions
from care.care_levels import ReviewState, review_state
from core.vitals import DISPLAY_UNITS, VITALS, Vital
from dashboard.formatting import display_zone, format_value, swedish_sort_key

if TYPE_CHECKING:
    from dashboard.news2_summary import News2Summary

# A reading older than this is greyed out on the overview (the kit may be unused or broken).
STALE_AFTER = timedelta(hours=24)

PRIORITY_RANK = {"high": 0, "medium": 1, "low": 2}
PRIORITY_LABELS = {p.label: text for p, text in PRIORITY_SV.items()}  # the one home: alerts.texts_sv
ALERT_STATE_LABELS = {
    "pending": "Väntande",
    "open": "Aktivt",
    "acknowledged": "Kvitterat",
    "resolved": "Avslutat",
}
# The states staff see. 'pending' is the engine's own: a request waiting for its hold time, which
# may still be withdrawn; it is never shown, counted or acknowledgeable.
LIVE_STATES = ("open", "acknowledged")
PHYSIOLOGICAL = "physiological"
TECHNICAL = "technical"
CONDITION_LABELS = {PHYSIOLOGICAL: "Fysiologiskt", TECHNICAL: "Teknik"}
# The snooze lengths offered on each alert: the longest three of these within the priority's cap
# (alerts.store.SNOOZE_CAP), e.g. 15/30 min for high, 30 min/1 h/4 h for medium, 1/4/24 h for low.
SNOOZE_CHOICES_MINUTES = (15, 30, 60, 240, 1440)
ACVPU_LABELS = {
    "A": "Vaken",
    "C": "Ny förvirring",
    "V": "Reagerar på tilltal",
    "P": "Reagerar på smärta",
    "U": "Ingen reaktion",
}
GATEWAY_LABELS = {
    "online": "Hemenhet ansluten",
    "offline": "Hemenhet frånkopplad",
    "unknown": "Hemenhet okänd",
}
ROLE_LABELS = {
    "nurse": "Sjuksköterska",
    "physician": "Läkare",
    "admin": "Administratör",
    "partner": "Samverkanspartner",
    "log_reviewer": "Loggranskare",
}
# UCUM codes are for machines; staff read the usual symbols.
UNIT_DISPLAY = DISPLAY_UNITS


def known_vital(name: str) -> Vital | None:
    """The Vital for a stored name, or None for a vital this version does not know (shown raw)."""
    try:
        return Vital(name)
    except ValueError:
        return None


def threshold_label(vital: Vital, direction: str) -> str:
    """A threshold rule key as staff name it: 'Syremättnad, låg' (direction 'below'), 'Puls, hög'."""
    return f"{VITALS[vital].display}, {'låg' if direction == 'below' else 'hög'}"


def snooze_caps_minutes() -> dict[str, int]:
    """The snooze cap per priority label, in whole minutes, from alerts.store.SNOOZE_CAP."""
    from alerts.store import SNOOZE_CAP

    return {priority.label: int(cap.total_seconds() // 60) for priority, cap in SNOOZE_CAP.items()}


def snooze_choices_for(priority: str) -> tuple[int, ...]:
    cap = snooze_caps_minutes().get(priority, 0)
    return tuple(m for m in SNOOZE_CHOICES_MINUTES if m <= cap)[-3:]


def iso_or_none(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


@dataclass(frozen=True, slots=True)
class StaffUser:
    id: int
    username: str
    display_name: str
    role: str
    ward_ids: frozenset[str]
    # Issue 12: the account's care unit and provider (care_units), and its HSA-id when it has one.
    care_unit_id: str = "region-hemma"
    care_provider_id: str = "region"
    hsa_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)

    def can_see(self, ward_id: str) -> bool:
        return permissions.may_see_ward(self.role, self.ward_ids, ward_id)

    def may(self, action: str) -> bool:
        """Whether this role may do a clinical action (care.permissions.Action value); templates ask
        this to decide which buttons to offer."""
        return permissions.may(self.role, action)

    @property
    def permitted_actions(self) -> tuple[str, ...]:
        """Every clinical action this role may do (the page's `data-may`, for staff tooling; the page's
        buttons are rendered by the server per role, dashboard.rendering)."""
        return permissions.permitted(self.role)


@dataclass(frozen=True, slots=True)
class Ward:
    id: str
    name: str
    patient_count: int = 0
    open_high: int = 0  # open physiological alerts
    open_medium: int = 0
    open_technical: int = 0  # open technical alarms, any priority


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
            "time": iso_or_none(self.time),
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
            "status_at": iso_or_none(self.status_at),
            "last_message_at": iso_or_none(self.last_message_at),
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
    note: str | None = None  # the newest note of an acknowledgement or snooze
    condition: str = PHYSIOLOGICAL
    snoozed_until: datetime | None = None
    snoozed_by: str | None = None  # display name
    resolved_by: str | None = None  # display name, when staff ended the alert

    @property
    def priority_label(self) -> str:
        return PRIORITY_LABELS.get(self.priority, self.priority)

    @property
    def state_label(self) -> str:
        return ALERT_STATE_LABELS.get(self.state, self.state)

    @property
    def technical(self) -> bool:
        return self.condition == TECHNICAL

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def snooze_choices(self) -> tuple[int, ...]:
        return snooze_choices_for(self.priority) if self.live else ()

    def snoozed(self, now: datetime) -> bool:
        """Acknowledged with a snooze that has not run out yet."""
        return self.state == "acknowledged" and self.snoozed_until is not None and self.snoozed_until > now

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
            "observed_at": iso_or_none(self.observed_at),
            "opened_at": iso_or_none(self.opened_at),
            "acknowledged_at": iso_or_none(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
            "note": self.note,
            "condition": self.condition,
            "snoozed_until": iso_or_none(self.snoozed_until),
            "snoozed_by": self.snoozed_by,
            "snooze_minutes": list(self.snooze_choices),
        }


# A contact request's state as staff read it (migration 0010); the patient's words are care.contact's.
CONTACT_STATE_SV = {"open": "Väntar", "taken": "Tagen", "closed": "Avslutad"}
# Why the patient asked (care.contact.APP_REASONS), as staff read it; the button gives no reason.
CONTACT_REASON_SV = {
    "feeling_worse": "Mår sämre",
    "treatment_question": "Fråga om behandlingen",
    "technical": "Tekniskt problem",
    "other": "Annat",
}
# "Ringer inom" offered when taking a contact request (care.contact: 1 min to 24 h; 30 min preselected).
CALL_WITHIN_CHOICES = (15, 30, 60, 120, 240)
# How much of the newest unread message the card shows (the record shows it whole).
MESSAGE_EXCERPT_LENGTH = 80


def report_flag_sv(code: str) -> str:
    """What a questionnaire answer reported (questionnaire_responses.flags), as the card's "Rapporterar:
    mycket mer andfådd", in the alert texts' words (alerts.messages_sv.SYMPTOM_SV, the one list of flags).
    A code it does not know is shown as a phrase of its own words rather than hidden."""
    return SYMPTOM_SV.get(code) or code.replace("_", " ").replace("-", " ").replace(":", " ")


def excerpt(text: str | None, length: int = MESSAGE_EXCERPT_LENGTH) -> str | None:
    """The first words of a patient's text on one line, cut with an ellipsis (never mid-way silently)."""
    if text is None:
        return None
    line = " ".join(text.split())
    return line if len(line) <= length else line[: length - 1].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class ContactRequestView:
    """ "Kontakta mig" from the box (care.contact): who took it and when, who closed it with what answer."""

    id: int
    state: str  # 'open' | 'taken' | 'closed'
    source: str  # 'button'
    requested_at: datetime  # the box's clock (shown only in the record)
    received_at: datetime  # ingest's: the time staff read as "bad om kontakt"
    taken_by: str | None = None  # display names
    taken_at: datetime | None = None
    closed_by: str | None = None
    closed_at: datetime | None = None
    note: str | None = None
    reason: str = "contact_request"  # care.contact.APP_REASONS, or the button's
    message: str | None = None  # the patient's own line, from the app
    call_within_minutes: int | None = None  # promised when taken

    @property
    def state_label(self) -> str:
        return CONTACT_STATE_SV.get(self.state, self.state)

    @property
    def reason_label(self) -> str | None:
        """Why the patient asked, or None for the button (which says nothing but "call me")."""
        return CONTACT_REASON_SV.get(self.reason) if self.source == "app" else None

    @property
    def message_excerpt(self) -> str | None:
        return excerpt(self.message)

    def to_json(self) -> dict[str, Any]:
        """The request as the overview's JSON gives it (dashboard.answers.ContactAnswer)."""
        return {
            "id": self.id,
            "state": self.state,
            "source": self.source,
            "reason": self.reason,
            "message": self.message,
            "received_at": iso_or_none(self.received_at),
            "taken_by": self.taken_by,
            "taken_at": iso_or_none(self.taken_at),
            "call_within_minutes": self.call_within_minutes,
        }

    @property
    def source_label(self) -> str:
        from alerts.messages_sv import CONTACT_SOURCE_SV

        return CONTACT_SOURCE_SV.get(self.source, self.source)


@dataclass(frozen=True, slots=True)
class Report:
    """What the patient reported in a questionnaire answer: flag codes and when it was answered."""

    flags: tuple[str, ...]
    at: datetime

    @property
    def text(self) -> str:
        words = list(dict.fromkeys(report_flag_sv(code) for code in self.flags))
        return ", ".join(words)


# The care level's place in the ward's order (PatientCard.care_level_rank).
_LEVEL_RANK = {"red": 0, "yellow": 1, "green": 2}

# order_string: each number in ORDER_DIGITS decimal digits after adding ORDER_OFFSET.
ORDER_DIGITS, ORDER_OFFSET = 4, 5000


def order_string(numbers: Any, name: str, tail: str) -> str:
    """A string whose order by UTF-16 code units (JavaScript's `<`) is the order of the tuple
    (*numbers, name, tail) in Python, with `tail` ASCII (a UUID's text).

    Numbers are fixed-width digits. The name is written code point by code point in hex: four digits
    for the Basic Multilingual Plane, "~" and six for the others ("~" sorts after every hex digit, as
    those code points sort after the BMP in Python, while JavaScript would compare their surrogates).
    A space ends the name: it sorts before any digit, so "Ann" comes before "Anna" as in Python."""
    parts = []
    for number in numbers:
        shifted = int(number) + ORDER_OFFSET
        if not 0 <= shifted < 10**ORDER_DIGITS:
            raise ValueError(f"a sort number out of range: {number}")
        parts.append(f"{shifted:0{ORDER_DIGITS}d}")
    parts += (f"{ord(c):04x}" if ord(c) < 0x10000 else f"~{ord(c):06x}" for c in name)
    return "".join(parts) + " " + tail


# How long a questionnaire answer's flag stays on the card.
REPORT_SHOWN_FOR = timedelta(hours=24)


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
    news2: News2Summary | None = None
    # The request staff must see first: the oldest nobody has taken, else the oldest being handled.
    contact: ContactRequestView | None = None
    contact_open_count: int = 0  # requests nobody has taken (the ward header's count)
    unread_messages: int = 0  # from the patient's side, no clinician has read (care.messages)
    unread_excerpt: str | None = None  # the newest unread one's first words
    report: Report | None = None  # the newest questionnaire answer with a flag, in the last 24 h
    # The care level in force (care.care_levels; None: none set) and the review clock's inputs.
    care_level: str | None = None
    last_reviewed_at: datetime | None = None
    enrolled_at: datetime | None = None
    # Searched by (dashboard.ward_view), never rendered on the overview nor in its JSON.
    personal_number: str | None = None
    # Staff ids who have taken this patient on (dashboard.ward_view's "Mina"; queries' attending_staff).
    attending_staff: frozenset[int] = frozenset()

    def review(self, now: datetime) -> ReviewState:
        """The level's meaning and when the patient is next due for review (care.care_levels)."""
        return review_state(self.care_level, self.last_reviewed_at, self.enrolled_at or now, now)

    def age(self, now: datetime) -> int | None:
        if self.birth_year is None:
            return None
        return now.astimezone(display_zone()).year - self.birth_year

    @property
    def physiological_alerts(self) -> tuple[AlertView, ...]:
        return tuple(a for a in self.alerts if not a.technical)

    @property
    def technical_alerts(self) -> tuple[AlertView, ...]:
        return tuple(a for a in self.alerts if a.technical)

    @property
    def rank(self) -> int:
        """0 with a live high physiological alert, 1 with medium, 2 otherwise: the first sort key."""
        ranks = [
            PRIORITY_RANK[a.priority] for a in self.physiological_alerts if a.priority in ("high", "medium")
        ]
        return min(ranks, default=2)

    @property
    def tech_rank(self) -> int:
        """0 with an unacknowledged technical alarm, else 1: sorts after `rank`, before the name."""
        return 0 if any(a.state == "open" for a in self.technical_alerts) else 1

    @property
    def top_priority(self) -> str | None:
        """The worst physiological priority (the card's colour); technical alarms never colour it."""
        return min(
            (a.priority for a in self.physiological_alerts),
            key=lambda p: PRIORITY_RANK.get(p, 3),
            default=None,
        )

    @property
    def news2_urgency(self) -> int:
        """NEWS2 risk band, then (partial) total: higher sorts first; 0 without a summary."""
        return self.news2.urgency if self.news2 is not None else 0

    @property
    def care_level_rank(self) -> int:
        """Röd 0, gul 1, grön 2. A patient without a level ranks with gul: care.care_levels reviews it
        as often, until a physician decides."""
        return _LEVEL_RANK.get(self.care_level or "yellow", 1)

    @property
    def worst_alert(self) -> AlertView | None:
        """The alert the compact list names: the worst physiological one, else the worst technical."""
        return (self.physiological_alerts or self.technical_alerts or (None,))[0]

    @property
    def last_reading_at(self) -> datetime | None:
        return max((r.time for r in self.vitals), default=None)

    @property
    def contact_waiting(self) -> bool:
        """A contact request nobody has taken yet."""
        return self.contact is not None and self.contact.state == "open"

    def sort_key(self) -> tuple[int, int, int, int, int, str, str]:
        """The ward's one order, acuity then risk (cards, list and JSON alike): physiological alerts,
        then a contact request nobody has taken, then the care level (röd first), then an open
        technical alarm, then NEWS2 (higher first), then the name in Swedish order.

        A waiting request ranks with medium alerts (its alarm, `contact_request_open`, is medium) and
        first among them: the patient is waiting for a person now, which a medium reading does not
        say. Below a high alert: a patient in danger by the readings comes before one who asked. Once
        taken, the card goes back to its place: someone is on it."""
        rank = min(self.rank, 1) if self.contact_waiting else self.rank
        return (rank, 0 if self.contact_waiting else 1, self.care_level_rank, self.tech_rank,
                -self.news2_urgency, swedish_sort_key(self.name), str(self.id))  # fmt: skip

    def order_key(self) -> str:
        """`sort_key` as one string that a browser's `<` orders the same way (the page's `data-order`,
        dashboard.js): a live delta carries only the changed cards, each placing itself, never the
        ward's whole order."""
        *numbers, name, pid = self.sort_key()
        return order_string(numbers, name, pid)

    def to_json(self, now: datetime) -> dict[str, Any]:
        review = self.review(now)
        return {
            "id": str(self.id),
            "ward_id": self.ward_id,
            "name": self.name,
            "age": self.age(now),
            "care_reason": self.care_reason,
            "rank": self.rank,
            "tech_rank": self.tech_rank,
            "top_priority": self.top_priority,
            "gateway": self.gateway.to_json() if self.gateway else None,
            "news2": self.news2.to_json() if self.news2 else None,
            "vitals": [v.to_json() for v in self.vitals],
            "alerts": [a.to_json() for a in self.alerts],
            "contact": self.contact.to_json() if self.contact else None,
            "unread_messages": self.unread_messages,
            "care_level": self.care_level,
            "review_due_at": review.due_at.isoformat(),
            "review_overdue": review.overdue,
        }


@dataclass(frozen=True, slots=True)
class WardOverview:
    ward: Ward
    patients: tuple[PatientCard, ...]
    at: datetime

    def open_alerts(self, priority: str) -> int:
        """Unacknowledged physiological alerts of one priority (the header's red and yellow chips)."""
        return sum(
            1
            for p in self.patients
            for a in p.physiological_alerts
            if a.state == "open" and a.priority == priority
        )

    def open_technical(self) -> int:
        """Unacknowledged technical alarms, counted apart ("2 tekniska")."""
        return sum(1 for p in self.patients for a in p.technical_alerts if a.state == "open")

    def open_contact_requests(self) -> int:
        """Contact requests nobody has taken yet."""
        return sum(p.contact_open_count for p in self.patients)

    def unread_messages(self) -> int:
        """Messages from patients and relatives no clinician has read yet."""
        return sum(p.unread_messages for p in self.patients)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "snapshot",
            "ward": {"id": self.ward.id, "name": self.ward.name},
            "at": self.at.isoformat(),
            "patients": [p.to_json(self.at) for p in self.patients],
        }
