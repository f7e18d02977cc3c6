"""The handover summary of a ward and a shift (issue 11: "what changed since the last shift").

For one shift (care.shifts) of one ward: what happened from the shift's start until its end (or
until now, while it runs), grouped per patient:
- new alerts, with where they stand now (still open, acknowledged by whom, ended);
- care level changes (from → to, the physician's reason) and reviews with their notes;
- monitoring plans set, personal limits set or revoked;
- questionnaire answers, with what they report;
- contact requests received (and where they stand now), admissions and discharges;
and, as they are now, each patient's open contact requests and unread messages.

Patients are sorted by acuity: care level (röd, gul, none, grön), then open high alerts first, then
by name. The words are written here, once, for the page (dashboard.handover) and for `hemma ward
handover` alike; the reads are storage.steps, driven sync by the CLI and async by the dashboard.
The caller writes the access-log rows (one per patient shown, `care.access_log.HANDOVER`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerts.messages_sv import SYMPTOM_SV
from alerts.model import Priority
from alerts.texts_sv import PRIORITY_SV
from care.care_levels import CareLevel, LevelMeaning, meaning
from care.enrolment import OUTCOMES_SV
from care.escalation_handoffs import PROVIDER_KINDS_SV, SKIP_REASONS_SV
from care.questionnaires import catalogue
from care.refusals import RefusalCode, Refused
from care.shifts import Shift
from care.texts_sv import rule_label
from core.vitals import VITALS, Vital
from storage.steps import Sql, Steps

# Acuity order of the levels; a patient without a level is reviewed as if yellow (care.care_levels),
# so comes after yellow and before green.
_LEVEL_RANK = {CareLevel.RED: 0, CareLevel.YELLOW: 1, None: 2, CareLevel.GREEN: 3}


@dataclass(frozen=True, slots=True)
class HandoverEvent:
    at: datetime
    text: str  # what happened, in the ward's words
    by: str | None = None  # display name of who did it
    note: str | None = None  # staff's own words: a level's reason, a review's note
    attention: bool = False  # still needs someone: an open alert or request, a flagged answer


@dataclass(frozen=True, slots=True)
class HandoverPatient:
    id: uuid.UUID
    name: str
    level: LevelMeaning
    open_high_alerts: int
    open_requests: int
    unread_messages: int
    discharged: bool
    events: tuple[HandoverEvent, ...]  # oldest first

    @property
    def sort_key(self) -> tuple[int, int, str, str]:
        return (_LEVEL_RANK[self.level.level], -self.open_high_alerts, self.name.casefold(), str(self.id))


@dataclass(frozen=True, slots=True)
class Handover:
    ward_id: str
    shift: Shift
    until: datetime  # the shift's end, or now while it runs
    patients: tuple[HandoverPatient, ...]  # by acuity

    @property
    def patient_ids(self) -> list[uuid.UUID]:
        return [p.id for p in self.patients]


def _priority(label: str) -> str:
    try:
        return PRIORITY_SV[Priority.parse(label)]
    except ValueError:
        return label


def _every(minutes: int) -> str:
    if minutes % 1440 == 0:
        return f"{minutes // 1440} dygn"
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def _vital(name: str) -> str:
    try:
        return VITALS[Vital(name)].display
    except ValueError:
        return name


def _limit(rule: str, priority: str, value: float) -> str:
    from alerts.thresholds import threshold_keys

    found = threshold_keys().get(rule)
    shown = VITALS[found[0]].format(value) if found else f"{value:g}"
    return f"{rule_label(rule)}, {_priority(priority).lower()} prioritet: {shown}"


def _alert(r: Any) -> HandoverEvent:
    _pid, at, priority, message, state, acked_by, _resolved = r
    if state == "open":
        now = "öppet"
    elif state == "acknowledged":
        now = f"kvitterat av {acked_by}" if acked_by else "kvitterat"
    else:
        now = f"avslutat (kvitterat av {acked_by})" if acked_by else "avslutat"
    return HandoverEvent(
        at, f"Larm, {_priority(priority).lower()}: {message} – {now}", attention=state == "open"
    )


def _contact(r: Any) -> HandoverEvent:
    _pid, at, state, taken_by, closed_by = r
    now = {"open": "öppen", "taken": f"tagen av {taken_by}", "closed": f"avslutad av {closed_by or '–'}"}
    return HandoverEvent(at, f"Kontaktförfrågan – {now.get(state, state)}", attention=state != "closed")


def _answer(r: Any, titles: dict[str, str]) -> HandoverEvent:
    _pid, at, questionnaire, flags = r
    title = titles.get(questionnaire, questionnaire)
    if flags:
        words = ", ".join(SYMPTOM_SV.get(f) or f.replace("_", " ").replace("-", " ") for f in flags)
        return HandoverEvent(at, f"Svar på {title}: rapporterar {words}", attention=True)
    return HandoverEvent(at, f"Svar på {title}: inga avvikelser")


def _handoff(kind: str, r: Any) -> HandoverEvent:
    """A step of the escalation ladder in words: handed to whom under which care provider, or skipped."""
    if kind == "handoffs_taken":
        what = "Hembesök taget" if r[2] == "home_visit_partner" else "Överlämnat larm taget"
        return HandoverEvent(r[1], what, r[3])
    _pid, at, position, skipped, name, unit, provider_kind = r
    if skipped:
        return HandoverEvent(
            at, f"Eskaleringstrappans steg {position} hoppades över: {SKIP_REASONS_SV[skipped]}"
        )
    where = f"{unit} ({PROVIDER_KINDS_SV.get(provider_kind, provider_kind)})"
    return HandoverEvent(at, f"Larm överlämnat till {where}", name)


_PATIENTS = (
    "SELECT p.id, p.display_name, p.discharged_at IS NOT NULL, clv.level,"
    " (SELECT count(*) FROM alerts a WHERE a.patient_id = p.id AND a.state = 'open' AND a.priority = 'high'),"
    " (SELECT count(*) FROM contact_requests c WHERE c.patient_id = p.id AND c.state <> 'closed'),"
    " (SELECT count(*) FROM patient_messages m WHERE m.patient_id = p.id AND m.sender <> 'staff'"
    "   AND m.read_at IS NULL)"
    " FROM patients p LEFT JOIN LATERAL (SELECT l.level FROM care_levels l WHERE l.patient_id = p.id"
    "  ORDER BY l.set_at DESC, l.id DESC LIMIT 1) clv ON true"
    " WHERE p.ward_id = %(w)s AND p.enrolled_at < %(until)s"
    " AND (p.discharged_at IS NULL OR p.discharged_at >= %(since)s)"
)
# Each: patient id, the time, then what its event needs. Bounds: since <= at < until.
_EVENTS = {
    "alerts": "SELECT a.patient_id, a.opened_at, a.priority, a.message, a.state, s.display_name,"
    " a.resolved_at"
    " FROM alerts a LEFT JOIN staff_users s ON s.id = a.acknowledged_by"
    " WHERE a.ward_id = %(w)s AND a.opened_at >= %(since)s AND a.opened_at < %(until)s",
    "levels": "SELECT * FROM (SELECT l.patient_id, l.set_at, lag(l.level) OVER w, l.level, s.display_name,"
    "  l.reason FROM care_levels l JOIN patients p ON p.id = l.patient_id"
    "  JOIN staff_users s ON s.id = l.set_by"
    "  WHERE p.ward_id = %(w)s WINDOW w AS (PARTITION BY l.patient_id ORDER BY l.set_at, l.id)) x"
    " WHERE set_at >= %(since)s AND set_at < %(until)s",
    "reviews": "SELECT r.patient_id, r.reviewed_at, s.display_name, r.note FROM patient_reviews r"
    " JOIN patients p ON p.id = r.patient_id JOIN staff_users s ON s.id = r.reviewed_by"
    " WHERE p.ward_id = %(w)s AND r.reviewed_at >= %(since)s AND r.reviewed_at < %(until)s",
    "plans": "SELECT m.patient_id, m.set_at, m.vital, m.every_minutes, s.display_name FROM monitoring_plans m"
    " JOIN patients p ON p.id = m.patient_id LEFT JOIN staff_users s ON s.id = m.set_by"
    " WHERE p.ward_id = %(w)s AND m.set_at >= %(since)s AND m.set_at < %(until)s",
    "limits": "SELECT t.patient_id, t.set_at, t.rule, t.priority, t.limit_value, s.display_name, t.reason,"
    "  false FROM personal_thresholds t JOIN patients p ON p.id = t.patient_id"
    "  JOIN staff_users s ON s.id = t.set_by"
    "  WHERE p.ward_id = %(w)s AND t.set_at >= %(since)s AND t.set_at < %(until)s"
    " UNION ALL SELECT t.patient_id, t.revoked_at, t.rule, t.priority, t.limit_value, s.display_name, NULL,"
    "  true FROM personal_thresholds t JOIN patients p ON p.id = t.patient_id"
    "  LEFT JOIN staff_users s ON s.id = t.revoked_by"
    "  WHERE p.ward_id = %(w)s AND t.revoked_at >= %(since)s AND t.revoked_at < %(until)s",
    "answers": "SELECT q.patient_id, q.authored_at, q.questionnaire, q.flags FROM questionnaire_responses q"
    " JOIN patients p ON p.id = q.patient_id"
    " WHERE p.ward_id = %(w)s AND q.authored_at >= %(since)s AND q.authored_at < %(until)s",
    "contacts": "SELECT c.patient_id, c.received_at, c.state, t.display_name, x.display_name"
    " FROM contact_requests c JOIN patients p ON p.id = c.patient_id"
    " LEFT JOIN staff_users t ON t.id = c.taken_by LEFT JOIN staff_users x ON x.id = c.closed_by"
    " WHERE p.ward_id = %(w)s AND c.received_at >= %(since)s AND c.received_at < %(until)s",
    # The escalation ladder (issue 12): each hand-off or skipped step, and each hand-off taken.
    "handoffs": "SELECT a.patient_id, h.handed_at, h.position, h.skipped_reason, s.display_name, u.name,"
    " c.kind FROM escalation_handoffs h JOIN alerts a ON a.id = h.alert_id"
    " LEFT JOIN staff_users s ON s.id = h.staff_user_id"
    " LEFT JOIN care_units u ON u.id = s.care_unit_id LEFT JOIN care_providers c ON c.id = h.care_provider_id"
    " WHERE a.ward_id = %(w)s AND h.handed_at >= %(since)s AND h.handed_at < %(until)s",
    "handoffs_taken": "SELECT a.patient_id, h.taken_at, h.target, t.display_name FROM escalation_handoffs h"
    " JOIN alerts a ON a.id = h.alert_id JOIN staff_users t ON t.id = h.taken_by"
    " WHERE a.ward_id = %(w)s AND h.taken_at >= %(since)s AND h.taken_at < %(until)s",
    "episodes": "SELECT p.id, p.enrolled_at, 'in', NULL FROM patients p WHERE p.ward_id = %(w)s"
    "  AND p.enrolled_at >= %(since)s AND p.enrolled_at < %(until)s"
    " UNION ALL SELECT p.id, p.discharged_at, 'out', p.discharge_outcome FROM patients p"
    "  WHERE p.ward_id = %(w)s AND p.discharged_at >= %(since)s AND p.discharged_at < %(until)s",
}


def _event(kind: str, r: Any, titles: dict[str, str]) -> HandoverEvent:
    """One row of `_EVENTS[kind]` in words."""
    if kind == "alerts":
        return _alert(r)
    if kind == "levels":
        before = meaning(r[2]).word_sv if r[2] else "Ingen"
        return HandoverEvent(r[1], f"Vårdnivå: {before} → {meaning(r[3]).word_sv}", r[4], r[5])
    if kind == "reviews":
        return HandoverEvent(r[1], "Granskad", r[2], r[3])
    if kind == "plans":
        return HandoverEvent(r[1], f"Mätplan: {_vital(r[2])} minst var {_every(r[3])}", r[4])
    if kind == "limits":
        what = "Personlig gräns återkallad" if r[7] else "Personlig gräns"
        return HandoverEvent(r[1], f"{what}: {_limit(r[2], r[3], r[4])}", r[5], r[6])
    if kind == "answers":
        return _answer(r, titles)
    if kind == "contacts":
        return _contact(r)
    if kind in ("handoffs", "handoffs_taken"):
        return _handoff(kind, r)
    if r[2] == "in":
        return HandoverEvent(r[1], "Inskriven")
    return HandoverEvent(r[1], f"Utskriven: {OUTCOMES_SV.get(r[3], '–') if r[3] else '–'}")


def handover(ward_id: str, shift: Shift, now: datetime) -> Steps[Handover]:
    """The ward's summary of `shift` as it stands at `now` (the caller's clock: the database's on
    the page, so a test's seeded rows and the summary agree)."""
    if (yield Sql("SELECT 1 FROM wards WHERE id = %s", (ward_id,), fetch="one")) is None:
        raise Refused(RefusalCode.NO_WARD, ward_id=ward_id)
    until = min(shift.ends_at, now)
    bounds = {"w": ward_id, "since": shift.starts_at, "until": until}
    titles = {q.id: q.title for q in catalogue().values()}
    events: dict[uuid.UUID, list[HandoverEvent]] = {}
    for kind, query in _EVENTS.items():
        for r in (yield Sql(query, bounds, fetch="all")):
            events.setdefault(r[0], []).append(_event(kind, r, titles))
    rows = yield Sql(_PATIENTS, bounds, fetch="all")
    patients = [
        HandoverPatient(
            r[0],
            r[1],
            meaning(r[3]),
            int(r[4]),
            int(r[5]),
            int(r[6]),
            bool(r[2]),
            tuple(sorted(events.get(r[0], []), key=lambda e: e.at)),
        )
        for r in rows
        # Shown: whoever something happened to, and whoever still waits for us (open items, now).
        if r[0] in events or (not r[2] and (r[4] or r[5] or r[6]))
    ]
    return Handover(ward_id, shift, until, tuple(sorted(patients, key=lambda p: p.sort_key)))
