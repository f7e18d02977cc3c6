"""The words and small drawings of the end-of-stay summary (care.stay_summary): pure functions of the
summary and a time zone, no SQL. The printed document (dashboard.stay_summary_document) and `hemma
patient summary` both write the stay with these, so a value reads the same on paper and in a terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from alerts.messages_sv import SYMPTOM_SV, TREND_TEXT
from alerts.model import Priority
from alerts.rule import RuleFamily
from alerts.texts_sv import PRIORITY_SV
from care.care_levels import meaning
from care.contact import BUTTON_REASON_SV, REASONS_SV
from care.enrolment import OUTCOMES_SV
from care.questionnaires import catalogue
from care.stay_summary import ContactRequest, HighAlert, PlanItem, StaySummary, VitalTrend
from care.texts_sv import rule_label
from core.vitals import VITALS, Vital

_MONTHS = ("jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec")

# The engine's rule families by the ward's name for them (a threshold key is named by rule_label, a
# trend by alerts.messages_sv.TREND_TEXT).
FAMILY_SV = {
    RuleFamily.NEWS2: "NEWS2, förhöjd risk",
    RuleFamily.WEIGHT_GAIN: "Viktökning på 3 dygn",
    RuleFamily.WEIGHT_BASELINE: "Vikten över patientens baslinje",
    RuleFamily.MISSING: "Planerad mätning uteblev",
    RuleFamily.SYMPTOMS: "Patienten rapporterade symtom",
    RuleFamily.CONTACT_REQUEST_OPEN: "Kontaktförfrågan som ingen tog",
}
STEP_SV = {
    "acknowledged": "Kvitterat",
    "snoozed": "Snoozat",
    "escalated": "Eskalerat",
    "reprioritised": "Omprioriterat",
    "resolved": "Avslutat",
}
SOURCE_SV = {"level": "följer vårdnivån", "clinician": "satt av vårdpersonal"}
ANSWERED_BY_SV = {"app": "patientens app", "simulator": "hemenheten", "staff": "vårdpersonal per telefon"}
CONTACT_SOURCE_SV = {"button": "knappen", "app": "appen"}


def date_time(at: datetime, zone: ZoneInfo) -> str:
    """'4 mar 2026 08:10' in the site's time."""
    local = at.astimezone(zone)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year} {local:%H:%M}"


def day_text(at: datetime, zone: ZoneInfo) -> str:
    local = at.astimezone(zone)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}"


def stay_days(summary: StaySummary) -> int:
    """Calendar days the stay touched, counted as care days are (the day of admission is day 1)."""
    return (summary.until.date() - summary.started.date()).days + 1


def level_sv(level: str | None) -> str:
    return meaning(level).word_sv


def rule_name(rule: str) -> str:
    """'Syremättnad, låg', 'Viktökning på 3 dygn', 'Syremättnaden sjunker'."""
    named = rule_label(rule)
    if named != rule:
        return named
    if rule in TREND_TEXT:
        return TREND_TEXT[rule]
    family = rule.split(":", 1)[0]
    try:
        return FAMILY_SV.get(RuleFamily(family), rule)
    except ValueError:
        return rule


def priority_sv(priority: Priority | str) -> str:
    return PRIORITY_SV[priority if isinstance(priority, Priority) else Priority.parse(priority)]


def value_text(vital: Vital | None, value: float | None) -> str:
    if value is None:
        return "–"
    if vital is None:
        return f"{value:g}".replace(".", ",")
    return VITALS[vital].format(value)


def vital_name(vital: Vital | str) -> str:
    return VITALS[vital].display if isinstance(vital, Vital) else vital


def every_text(minutes: int) -> str:
    """'var 4:e timme', 'en gång per dygn', 'var 30:e minut'."""
    if minutes % 1440 == 0:
        days = minutes // 1440
        return "en gång per dygn" if days == 1 else f"var {days}:e dygn"
    if minutes % 60 == 0:
        hours = minutes // 60
        return "varje timme" if hours == 1 else f"var {hours}:e timme"
    return f"var {minutes}:e minut"


def plan_text(item: PlanItem) -> str:
    source = SOURCE_SV.get(item.source, item.source)
    return f"{vital_name(item.vital)}: {every_text(item.every_minutes)} ({source})"


def questionnaire_title(questionnaire: str) -> str:
    found = catalogue().get(questionnaire)
    return found.title if found else questionnaire


def flags_text(flags: Sequence[str]) -> str:
    return ", ".join(SYMPTOM_SV.get(f, f) for f in flags)


def contact_reason(c: ContactRequest) -> str:
    return REASONS_SV.get(c.reason, BUTTON_REASON_SV if c.source == "button" else "Annat")


def contact_answer(c: ContactRequest, zone: ZoneInfo) -> str:
    """How a request was answered: who took it, the promised call, who closed it with which note."""
    parts = []
    if c.taken_by and c.taken_at:
        promised = f", ringer inom {c.call_within_minutes} min" if c.call_within_minutes else ""
        parts.append(f"tagen av {c.taken_by} {date_time(c.taken_at, zone)}{promised}")
    if c.closed_by and c.closed_at:
        parts.append(f"avslutad av {c.closed_by} {date_time(c.closed_at, zone)}")
    if not parts:
        return "Ingen tog förfrågan"
    line = "; ".join(parts)
    return line[:1].upper() + line[1:]


def alert_outcome(alert: HighAlert, zone: ZoneInfo) -> str:
    """One line of what was done: 'Kvitterat av Sara 4 mar 08:12 · Eskalerat …'."""
    if not alert.steps:
        return "Ingen åtgärd registrerad"
    return " · ".join(
        f"{STEP_SV.get(s.kind, s.kind)}{f' av {s.by}' if s.by else ''} {date_time(s.at, zone)}"
        for s in alert.steps
    )


# --- sparklines ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sparkline:
    """A small line of a vital's daily means, in SVG user units: `points` for a <polyline>, the
    dots at the first and last day, and the minimum and maximum the drawing spans."""

    width: int
    height: int
    points: str
    first: tuple[float, float]
    last: tuple[float, float]
    low: float
    high: float


def sparkline(
    values: Sequence[float], *, width: int = 160, height: int = 36, pad: int = 4
) -> Sparkline | None:
    """The line through `values` (oldest first), scaled to the box; None for no values. A flat series
    is drawn through the middle; a single value is a dot."""
    if not values:
        return None
    low, high = min(values), max(values)
    span = high - low
    inner_w, inner_h = width - 2 * pad, height - 2 * pad
    step = inner_w / (len(values) - 1) if len(values) > 1 else 0.0
    coords = []
    for i, v in enumerate(values):
        x = pad + (i * step if len(values) > 1 else inner_w / 2)
        y = pad + (inner_h / 2 if span == 0 else inner_h * (high - v) / span)
        coords.append((round(x, 1), round(y, 1)))
    points = " ".join(f"{x:g},{y:g}" for x, y in coords)
    return Sparkline(width, height, points, coords[0], coords[-1], low, high)


def trend_sparkline(trend: VitalTrend) -> Sparkline | None:
    return sparkline([d.mean for d in trend.days])


# --- plain text (`hemma patient summary`) -----------------------------------------------------------------


def plain_text(summary: StaySummary, zone: ZoneInfo) -> str:
    """The summary as lines of text, names only: the personnummer is not printed to a terminal (the
    HTML document, `--html`, carries it as a printed record must)."""
    s = summary
    head = "Sammanfattning av vårdtiden" + (" (preliminär, patienten är inskriven)" if s.preliminary else "")
    lines = [head, f"{s.name}{f', född {s.birth_year}' if s.birth_year else ''}",
             f"{s.setting.care_provider_name} · {s.setting.care_unit_name} · {s.setting.ward_name}",
             f"Vårdtid: {day_text(s.started, zone)} – {'pågår' if s.preliminary else day_text(s.until, zone)}"
             f" ({stay_days(s)} dygn)", ""]  # fmt: skip
    a = s.admission
    by = f" av {a.admitted_by}" if a.admitted_by else ""
    lines += ["Inskrivning", f"  Vårdorsak: {a.care_reason or '–'}",
              f"  Vårdförlopp: {a.pathway_title or a.pathway_id or '–'}",
              f"  Inskriven {date_time(a.admitted_at, zone)}{by}", ""]  # fmt: skip
    lines.append("Vårdnivå")
    if not s.levels:
        lines.append("  Ingen vårdnivå satt")
    for lv in s.levels:
        lines.append(f"  {date_time(lv.at, zone)} {level_sv(lv.level)} – {lv.by}: {lv.reason}")
    lines += ["", "Vitalparametrar (första, senaste, min–max, medel; n mätningar)"]
    if not s.vitals:
        lines.append("  Inga mätvärden")
    for t in s.vitals:
        lines.append(
            f"  {vital_name(t.vital)} [LOINC {t.loinc}]: {value_text(t.vital, t.first_value)} →"
            f" {value_text(t.vital, t.last_value)};"
            f" {value_text(t.vital, t.minimum)}–{value_text(t.vital, t.maximum)};"
            f" medel {value_text(t.vital, t.mean)}; n={t.n}"
        )
        for lim in t.limits:
            lines.append(f"    personlig gräns: {rule_name(lim.rule)}, {priority_sv(lim.priority).lower()}:"
                         f" {value_text(t.vital, lim.limit_value)} ({lim.set_by})")  # fmt: skip
    lines += ["", "Larm (hög/medel/låg)"]
    for c in s.alert_counts:
        lines.append(f"  {rule_name(c.rule)}: {c.high}/{c.medium}/{c.low}")
    if s.technical_alerts:
        lines.append(f"  Tekniska larm: {s.technical_alerts}")
    for h in s.high_alerts:
        lines.append(f"  Högt larm {date_time(h.opened_at, zone)}: {h.message} – {alert_outcome(h, zone)}")
        lines += [f"      »{st.note}«" for st in h.steps if st.note]
    lines += ["", "Frågeformulär"]
    for q in s.questionnaires:
        flagged = f" – {flags_text(q.flags)}" if q.flags else ""
        title = questionnaire_title(q.questionnaire)
        lines.append(f"  {date_time(q.authored_at, zone)} {title}: poäng {q.score}{flagged}")
    lines += ["", "Kontaktförfrågningar"]
    for request in s.contacts:
        answer = contact_answer(request, zone)
        lines.append(f"  {date_time(request.received_at, zone)} {contact_reason(request)} – {answer}")
        if request.close_note:
            lines.append(f"      »{request.close_note}«")
    lines += ["", "Plan vid utskrivning" if not s.preliminary else "Plan i dag"]
    if not s.plan_known:
        lines.append("  Inte känd (utskriven innan planens historik sparades)")
    lines += [f"  {plan_text(p)}" for p in s.plan]
    lines += [f"  {questionnaire_title(q.questionnaire)}: {', '.join(q.times)}" for q in s.schedules]
    lines += [f"  Egenvård vid {rule_name(sc.rule)}: {sc.text}" for sc in s.self_care]
    if s.discharge:
        d = s.discharge
        outcome = OUTCOMES_SV.get(d.outcome, "–") if d.outcome else "–"
        lines += ["", "Utskrivning", f"  {date_time(d.at, zone)}{f' av {d.by}' if d.by else ''}: {outcome}"]
        if d.note:
            lines.append(f"      »{d.note}«")
    return "\n".join(lines)
