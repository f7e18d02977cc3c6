"""The end-of-stay summary (issue 12): one patient's episode from admission to discharge, or to now for a
patient still admitted ("preliminär"), read from the database into one typed value.

A patient row is one episode (care.enrolment: a personnummer is never enrolled twice), so the stay is
the patient's whole record: admitted at `patients.enrolled_at` (the admission's row, migration 0017,
says on which pathway and by whom), ended at `patients.discharged_at` with its outcome (0014).

What it holds, section by section (`SECTIONS`: the order of the printed document and of the FHIR
Composition's sections, fhir_api.stay_document, with the LOINC section code where one fits):
identity and the care provider (0018); the admission (diagnosis as the care reason, pathway); the care
level over time (care_levels: who, why); per vital the trend over the stay from the rollups
(storage.rollups: day buckets and the first five minutes, never raw rows) with the personal limits in
force at the end; alerts counted by rule and priority, every high alert with what was done
(alert_events: acknowledged, snoozed, escalated, resolved, with who and the note); questionnaire
results; contact requests and their answers; the plan and the self-care instructions in force at the
end (the plan from its history, migration 0024, because a discharge deletes it).

Pure reads as storage.steps, driven sync by `hemma patient summary` and async by the dashboard; the
caller checks who may read and writes the access-log row (care.access_log.STAY_SUMMARY or
PARTNER_STAY_SUMMARY). The words are care.stay_summary_text's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from alerts.model import Priority
from alerts.store import SHOWN_SQL
from care.care_levels import CareLevel
from care.refusals import RefusalCode, Refused
from core.vitals import VITALS, Vital
from storage import rollups
from storage.steps import Sql, Steps

# Composition.type of the document: LOINC 18842-5 "Discharge summary".
DOCUMENT_LOINC = "18842-5"


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    title_sv: str
    loinc: str | None  # the Composition.section.code; None: a Hemma section with no LOINC of its own


# The LOINC section codes are those of discharge summaries (C-CDA's Discharge Summary, HL7 Europe's
# Hospital Discharge Report): 46241-6 Hospital admission diagnosis Narrative - Reported, 8648-8
# Hospital course Narrative, 8716-3 Vital signs, 10187-3 Review of systems Narrative - Reported (the
# symptom questionnaires), 18776-5 Plan of care note, 8650-4 Hospital discharge disposition Narrative.
# Alerts and contact requests have no LOINC section of their own: Hemma's section code only.
SECTIONS: tuple[Section, ...] = (
    Section("admission", "Inskrivning och diagnos", "46241-6"),
    Section("care_levels", "Vårdnivå under vårdtiden", "8648-8"),
    Section("vitals", "Vitalparametrar", "8716-3"),
    Section("alerts", "Larm och åtgärder", None),
    Section("questionnaires", "Frågeformulär", "10187-3"),
    Section("contacts", "Kontaktförfrågningar", None),
    Section("plan", "Plan och egenvård vid utskrivning", "18776-5"),
    Section("discharge", "Utskrivning", "8650-4"),
)


@dataclass(frozen=True, slots=True)
class CareSetting:
    ward_id: str
    ward_name: str
    care_unit_id: str
    care_unit_name: str
    care_unit_hsa_id: str | None
    care_provider_id: str
    care_provider_name: str
    care_provider_hsa_id: str | None


@dataclass(frozen=True, slots=True)
class Admission:
    care_reason: str | None  # the diagnosis as the admitting clinician wrote it
    pathway_id: str | None  # None: enrolled before admissions existed (`hemma patient enrol`)
    pathway_title: str | None
    admitted_at: datetime
    admitted_by: str | None  # display name
    provisional_level: CareLevel | None  # a nurse's admission: the pathway's suggestion


@dataclass(frozen=True, slots=True)
class Discharge:
    at: datetime
    outcome: str | None  # patients.discharge_outcome; None for a discharge before migration 0014
    note: str | None
    by: str | None  # display name


@dataclass(frozen=True, slots=True)
class LevelChange:
    id: int
    at: datetime
    level: CareLevel
    reason: str
    by: str


@dataclass(frozen=True, slots=True)
class DayValues:
    day: date  # a UTC day (the rollups' day buckets start on the epoch)
    n: int
    minimum: float
    maximum: float
    mean: float


@dataclass(frozen=True, slots=True)
class PersonalLimit:
    id: int
    rule: str
    priority: Priority
    limit_value: float
    reason: str
    set_by: str
    set_at: datetime
    valid_until: datetime | None


@dataclass(frozen=True, slots=True)
class VitalTrend:
    vital: Vital
    n: int
    first_at: datetime  # the start of the first five-minute bucket
    first_value: float  # the mean of it (the reading itself when it holds one)
    last_at: datetime
    last_value: float  # the newest reading
    minimum: float
    maximum: float
    mean: float
    days: tuple[DayValues, ...]  # oldest first
    limits: tuple[PersonalLimit, ...]  # personal limits in force at the end of the stay
    flagged: bool  # some reading carried a quality flag

    @property
    def loinc(self) -> str:
        return VITALS[self.vital].loinc

    @property
    def ucum(self) -> str:
        return VITALS[self.vital].ucum


@dataclass(frozen=True, slots=True)
class AlertCount:
    rule: str
    high: int
    medium: int
    low: int

    @property
    def total(self) -> int:
        return self.high + self.medium + self.low


@dataclass(frozen=True, slots=True)
class AlertStep:
    at: datetime
    kind: str  # alert_events.kind: acknowledged, snoozed, escalated, reprioritised, resolved
    by: str | None  # display name of the staff member; None: the engine or the escalator
    note: str | None


@dataclass(frozen=True, slots=True)
class HighAlert:
    id: int
    rule: str
    vital: Vital | None
    message: str
    value: float | None
    observed_at: datetime
    opened_at: datetime
    state: str
    steps: tuple[AlertStep, ...]  # oldest first

    @property
    def acknowledged(self) -> AlertStep | None:
        return next((s for s in self.steps if s.kind == "acknowledged"), None)

    @property
    def escalated(self) -> tuple[AlertStep, ...]:
        return tuple(s for s in self.steps if s.kind == "escalated")


@dataclass(frozen=True, slots=True)
class QuestionnaireResult:
    response_id: uuid.UUID
    questionnaire: str
    authored_at: datetime
    source: str  # app, simulator, staff
    score: int
    flags: tuple[str, ...]  # alerts.messages_sv.SYMPTOM_SV codes
    flag_priorities: tuple[Priority, ...]


@dataclass(frozen=True, slots=True)
class ContactRequest:
    id: int
    source: str  # button, app
    reason: str
    message: str | None
    received_at: datetime
    state: str
    taken_by: str | None
    taken_at: datetime | None
    call_within_minutes: int | None
    closed_by: str | None
    closed_at: datetime | None
    close_note: str | None


@dataclass(frozen=True, slots=True)
class PlanItem:
    vital: Vital | str
    every_minutes: int
    source: str  # 'level' (follows the care level) or 'clinician'


@dataclass(frozen=True, slots=True)
class ScheduleItem:
    questionnaire: str
    times: tuple[str, ...]  # "HH:MM", local


@dataclass(frozen=True, slots=True)
class SelfCare:
    rule: str
    text: str
    set_by: str
    set_at: datetime


@dataclass(frozen=True, slots=True)
class StaySummary:
    patient_id: uuid.UUID
    name: str
    personal_number: str | None
    birth_year: int | None
    setting: CareSetting
    admission: Admission
    discharge: Discharge | None  # None: still admitted, the summary is preliminary
    until: datetime  # the end of the stay, or the moment of reading for a patient still admitted
    levels: tuple[LevelChange, ...]  # oldest first
    vitals: tuple[VitalTrend, ...]  # in core.vitals order
    alert_counts: tuple[AlertCount, ...]  # physiological, by rule
    technical_alerts: int  # technical alarms opened during the stay
    high_alerts: tuple[HighAlert, ...]  # oldest first
    questionnaires: tuple[QuestionnaireResult, ...]  # oldest first
    contacts: tuple[ContactRequest, ...]  # oldest first
    plan_known: bool  # False: discharged before the plan's history was kept (migration 0024)
    plan: tuple[PlanItem, ...]
    schedules: tuple[ScheduleItem, ...]
    self_care: tuple[SelfCare, ...]

    @property
    def preliminary(self) -> bool:
        return self.discharge is None

    @property
    def started(self) -> datetime:
        return self.admission.admitted_at

    def alerts_total(self, priority: Priority) -> int:
        return sum(getattr(c, priority.label) for c in self.alert_counts)


# --- the reads ----------------------------------------------------------------------------------------

_PATIENT = (
    "SELECT p.display_name, p.personal_number, p.birth_year, p.care_reason, p.enrolled_at, p.discharged_at,"
    " p.discharge_outcome, p.discharge_note, ds.display_name, w.id, w.name, u.id, u.name, u.hsa_id, c.id,"
    " c.name, c.hsa_id, a.pathway, a.provisional_level, a.admitted_at, ad.display_name,"
    " p.discharged_at IS NULL OR p.discharged_at >= COALESCE("
    "   (SELECT applied_at FROM schema_migrations WHERE version = 24), '-infinity'),"
    " now()"
    " FROM patients p JOIN wards w ON w.id = p.ward_id JOIN care_units u ON u.id = w.care_unit_id"
    " JOIN care_providers c ON c.id = u.provider_id LEFT JOIN staff_users ds ON ds.id = p.discharged_by"
    " LEFT JOIN admissions a ON a.patient_id = p.id LEFT JOIN staff_users ad ON ad.id = a.admitted_by"
    " WHERE p.id = %s"
)


def stay_summary(patient_id: uuid.UUID, *, now: datetime | None = None) -> Steps[StaySummary]:
    """The summary of the patient's stay; `now` (default the database's clock) ends a stay still running."""
    from care.pathways import pathway

    row = yield Sql(_PATIENT, (patient_id,), fetch="one")
    if row is None:
        raise Refused(RefusalCode.NO_PATIENT, patient_id=patient_id)
    (name, personal_number, birth_year, care_reason, enrolled_at, discharged_at, outcome, note, discharged_by,
     ward_id, ward_name, unit_id, unit_name, unit_hsa, provider_id, provider_name, provider_hsa, pathway_id,
     provisional, admitted_at, admitted_by, plan_known, db_now) = row  # fmt: skip
    until = discharged_at or now or db_now
    found = pathway(pathway_id) if pathway_id else None
    levels = yield from _levels(patient_id)
    vitals = yield from _vitals(patient_id, until)
    counts, technical, high = yield from _alerts(patient_id)
    questionnaires = yield from _questionnaires(patient_id)
    contacts = yield from _contacts(patient_id)
    plan, schedules = yield from _plan(patient_id, until)
    self_care = yield from _self_care(patient_id)
    return StaySummary(
        patient_id=patient_id,
        name=name,
        personal_number=personal_number,
        birth_year=birth_year,
        setting=CareSetting(
            ward_id, ward_name, unit_id, unit_name, unit_hsa, provider_id, provider_name, provider_hsa
        ),
        admission=Admission(
            care_reason,
            pathway_id,
            found.title if found else None,
            admitted_at or enrolled_at,
            admitted_by,
            CareLevel(provisional) if provisional else None,
        ),
        discharge=Discharge(discharged_at, outcome, note, discharged_by) if discharged_at else None,
        until=until,
        levels=levels,
        vitals=vitals,
        alert_counts=counts,
        technical_alerts=technical,
        high_alerts=high,
        questionnaires=questionnaires,
        contacts=contacts,
        plan_known=bool(plan_known),
        plan=plan,
        schedules=schedules,
        self_care=self_care,
    )


def _levels(patient_id: uuid.UUID) -> Steps[tuple[LevelChange, ...]]:
    rows = yield Sql(
        "SELECT l.id, l.set_at, l.level, l.reason, s.display_name FROM care_levels l"
        " JOIN staff_users s ON s.id = l.set_by WHERE l.patient_id = %s ORDER BY l.set_at, l.id",
        (patient_id,),
        fetch="all",
    )
    return tuple(LevelChange(int(i), at, CareLevel(level), reason, by) for i, at, level, reason, by in rows)


def _vitals(patient_id: uuid.UUID, until: datetime) -> Steps[tuple[VitalTrend, ...]]:
    timescale_row = yield Sql(rollups.ROLLUP_SOURCE_QUERY, (rollups.TIMESCALE_MARKER,), fetch="one")
    timescale = bool(timescale_row and timescale_row[0])
    day_width, first_width = rollups.WIDTHS[-1], rollups.WIDTHS[0]
    day_source, day_clause = rollups.source_for(day_width, timescale)
    first_source, first_clause = rollups.source_for(first_width, timescale)
    days = yield Sql(
        f"SELECT vital, bucket, n, min_value, max_value, sum_value, last_time, last_value, flagged"
        f" FROM {day_source} WHERE patient_id = %s AND {day_clause} AND bucket <= %s ORDER BY vital, bucket",
        (patient_id, until),
        fetch="all",
    )
    firsts = yield Sql(
        f"SELECT DISTINCT ON (vital) vital, bucket, sum_value / n FROM {first_source}"
        f" WHERE patient_id = %s AND {first_clause} ORDER BY vital, bucket",
        (patient_id,),
        fetch="all",
    )
    limits = yield from _limits(patient_id, until)
    first_of = {v: (at, float(value)) for v, at, value in firsts}
    by_vital: dict[str, list[Any]] = {}
    for r in days:
        by_vital.setdefault(r[0], []).append(r)
    trends = []
    for vital in Vital:
        rows = by_vital.get(vital.value)
        if not rows or vital.value not in first_of:
            continue
        n = sum(int(r[2]) for r in rows)
        newest = max(rows, key=lambda r: r[6])
        first_at, first_value = first_of[vital.value]
        trends.append(
            VitalTrend(
                vital=vital,
                n=n,
                first_at=first_at,
                first_value=first_value,
                last_at=newest[6],
                last_value=float(newest[7]),
                minimum=min(float(r[3]) for r in rows),
                maximum=max(float(r[4]) for r in rows),
                mean=sum(float(r[5]) for r in rows) / n,
                days=tuple(
                    DayValues(r[1].date(), int(r[2]), float(r[3]), float(r[4]), float(r[5]) / int(r[2]))
                    for r in rows
                ),
                limits=tuple(lim for lim in limits if _limit_vital(lim.rule) is vital),
                flagged=any(bool(r[8]) for r in rows),
            )
        )
    return tuple(trends)


def _limit_vital(rule: str) -> Vital | None:
    from alerts.thresholds import threshold_keys

    found = threshold_keys().get(rule)
    return found[0] if found else None


def _limits(patient_id: uuid.UUID, at: datetime) -> Steps[list[PersonalLimit]]:
    rows = yield Sql(
        "SELECT t.id, t.rule, t.priority, t.limit_value, t.reason, s.display_name, t.set_at, t.valid_until"
        " FROM personal_thresholds t JOIN staff_users s ON s.id = t.set_by"
        " WHERE t.patient_id = %(p)s AND t.set_at <= %(at)s"
        " AND (t.revoked_at IS NULL OR t.revoked_at > %(at)s)"
        " AND (t.valid_until IS NULL OR t.valid_until > %(at)s) ORDER BY t.rule, t.priority",
        {"p": patient_id, "at": at},
        fetch="all",
    )
    return [
        PersonalLimit(int(i), rule, Priority.parse(prio), float(value), reason, by, set_at, until)
        for i, rule, prio, value, reason, by, set_at, until in rows
    ]


def _alerts(patient_id: uuid.UUID) -> Steps[tuple[tuple[AlertCount, ...], int, tuple[HighAlert, ...]]]:
    """Alerts that opened (pending ones withdrawn before opening were never shown to anyone)."""
    rows = yield Sql(
        "SELECT a.id, a.rule, a.vital, a.priority, a.condition, a.message, a.value, a.observed_at,"
        " a.opened_at, a.state FROM alerts a WHERE a.patient_id = %s AND"
        + SHOWN_SQL
        + " ORDER BY a.opened_at, a.id",
        (patient_id,),
        fetch="all",
    )
    steps = yield Sql(
        "SELECT e.alert_id, e.at, e.kind, s.display_name, e.note FROM alert_events e"
        " JOIN alerts a ON a.id = e.alert_id"
        " LEFT JOIN staff_users s ON e.actor = 'staff:' || s.username"
        " WHERE a.patient_id = %s AND a.priority = 'high' AND a.condition = 'physiological'"
        " AND e.kind IN ('acknowledged', 'snoozed', 'escalated', 'reprioritised', 'resolved')"
        " ORDER BY e.at, e.id",
        (patient_id,),
        fetch="all",
    )
    steps_of: dict[int, list[AlertStep]] = {}
    for alert_id, at, kind, by, note in steps:
        steps_of.setdefault(int(alert_id), []).append(AlertStep(at, kind, by, note))
    counts: dict[str, dict[str, int]] = {}
    technical = 0
    high = []
    for alert_id, rule, vital, priority, condition, message, value, observed_at, opened_at, state in rows:
        if condition == "technical":
            technical += 1
            continue
        counts.setdefault(rule, {"high": 0, "medium": 0, "low": 0})[priority] += 1
        if priority == "high":
            high.append(HighAlert(int(alert_id), rule, _known_vital(vital), message,
                                  None if value is None else float(value), observed_at, opened_at, state,
                                  tuple(steps_of.get(int(alert_id), ()))))  # fmt: skip
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1]["high"], -sum(kv[1].values()), kv[0]))
    return (
        tuple(AlertCount(rule, c["high"], c["medium"], c["low"]) for rule, c in ordered),
        technical,
        tuple(high),
    )


def _known_vital(name: str | None) -> Vital | None:
    try:
        return Vital(name) if name else None
    except ValueError:
        return None


def _questionnaires(patient_id: uuid.UUID) -> Steps[tuple[QuestionnaireResult, ...]]:
    rows = yield Sql(
        "SELECT response_id, questionnaire, authored_at, source, score, flags, flag_priorities"
        " FROM questionnaire_responses WHERE patient_id = %s ORDER BY authored_at, id",
        (patient_id,),
        fetch="all",
    )
    return tuple(
        QuestionnaireResult(
            rid, q, at, source, int(score), tuple(flags), tuple(Priority.parse(p) for p in prios)
        )
        for rid, q, at, source, score, flags, prios in rows
    )


def _contacts(patient_id: uuid.UUID) -> Steps[tuple[ContactRequest, ...]]:
    rows = yield Sql(
        "SELECT c.id, c.source, c.reason, c.message, c.received_at, c.state, t.display_name, c.taken_at,"
        " c.call_within_minutes, s.display_name, c.closed_at, c.close_note"
        " FROM contact_requests c LEFT JOIN staff_users t ON t.id = c.taken_by"
        " LEFT JOIN staff_users s ON s.id = c.closed_by WHERE c.patient_id = %s ORDER BY c.received_at, c.id",
        (patient_id,),
        fetch="all",
    )
    return tuple(ContactRequest(int(r[0]), *r[1:]) for r in rows)


def _plan(
    patient_id: uuid.UUID, at: datetime
) -> Steps[tuple[tuple[PlanItem, ...], tuple[ScheduleItem, ...]]]:
    """The plan in force at `at`, from its history (migration 0024): a discharge deletes the plan itself."""
    in_force = "patient_id = %(p)s AND valid_from <= %(at)s AND (valid_to IS NULL OR valid_to >= %(at)s)"
    plan = yield Sql(
        "SELECT DISTINCT ON (vital) vital, every_minutes, source FROM monitoring_plan_history WHERE "
        + in_force
        + " ORDER BY vital, valid_from DESC, id DESC",
        {"p": patient_id, "at": at},
        fetch="all",
    )
    schedules = yield Sql(
        "SELECT DISTINCT ON (questionnaire) questionnaire, times FROM questionnaire_schedule_history WHERE "
        + in_force
        + " ORDER BY questionnaire, valid_from DESC, id DESC",
        {"p": patient_id, "at": at},
        fetch="all",
    )
    order = {v.value: i for i, v in enumerate(Vital)}
    items = sorted(plan, key=lambda r: order.get(r[0], len(order)))
    return (
        tuple(PlanItem(Vital(v) if v in order else v, int(every), source) for v, every, source in items),
        tuple(ScheduleItem(q, tuple(f"{t:%H:%M}" for t in times)) for q, times in schedules),
    )


def _self_care(patient_id: uuid.UUID) -> Steps[tuple[SelfCare, ...]]:
    rows = yield Sql(
        "SELECT i.rule, i.text, s.display_name, i.set_at FROM self_care_instructions i"
        " JOIN staff_users s ON s.id = i.set_by WHERE i.patient_id = %s ORDER BY i.set_at, i.rule",
        (patient_id,),
        fetch="all",
    )
    return tuple(SelfCare(*r) for r in rows)
