"""The narrative of the end-of-stay summary's FHIR document (fhir_api.stay_document): one XHTML `<div>`
per Composition section, and one for the Composition itself. Pure.

A document's narrative is what a person reads (FHIR R4 3.3.1: the attested content), so each section
says what the printed document (dashboard.stay_summary_document) says, in the same words and with the
same values: both write them with care.stay_summary_text. Every text from the database is escaped
here (`_e`); the markup is only the few elements FHIR's narrative allows (p, ul, li, table, b).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from html import escape
from zoneinfo import ZoneInfo

from care import stay_summary_text as t
from care.enrolment import OUTCOMES_SV
from care.stay_summary import AlertStep, StaySummary

XHTML = "http://www.w3.org/1999/xhtml"
PLAN_UNKNOWN = (
    "Mätplanen vid utskrivningen är inte känd (patienten skrevs ut innan planens historik sparades)."
)


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def div(*parts: str) -> str:
    return f'<div xmlns="{XHTML}">{"".join(parts)}</div>'


def _p(text: str, *, bold: str | None = None) -> str:
    head = f"<b>{_e(bold)}</b> " if bold else ""
    return f"<p>{head}{_e(text)}</p>"


def _ul(items: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"


def _table(head: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    top = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{top}</tr></thead><tbody>{body}</tbody></table>"


def composition_text(s: StaySummary, zone: ZoneInfo) -> str:
    """Who, where and when: the head of the printed document."""
    until = "pågår" if s.preliminary else t.day_text(s.until, zone)
    parts = [
        _p(
            "Sammanfattning av vårdtiden" + (" (preliminär, patienten är inskriven)" if s.preliminary else "")
        ),
        _p(
            f"{s.name}{f', född {s.birth_year}' if s.birth_year else ''}"
            f"{f', personnummer {s.personal_number}' if s.personal_number else ''}",
            bold="Patient",
        ),
        _p(
            f"{s.setting.care_provider_name} · {s.setting.care_unit_name} · {s.setting.ward_name}",
            bold="Vårdgivare",
        ),
        _p(f"{t.day_text(s.started, zone)} – {until} ({t.stay_days(s)} dygn)", bold="Vårdtid"),
    ]
    return div(*parts)


def _admission(s: StaySummary, zone: ZoneInfo) -> list[str]:
    a = s.admission
    parts = [
        _p(a.care_reason or "–", bold="Vårdorsak:"),
        _p(a.pathway_title or a.pathway_id or "–", bold="Vårdförlopp:"),
        _p(
            t.date_time(a.admitted_at, zone) + (f" av {a.admitted_by}" if a.admitted_by else ""),
            bold="Inskriven:",
        ),
    ]
    if a.provisional_level:
        parts.append(
            _p(f"{t.level_sv(a.provisional_level)} (enligt vårdförloppet)", bold="Förslag vid inskrivning:")
        )
    return parts


def _care_levels(s: StaySummary, zone: ZoneInfo) -> list[str]:
    if not s.levels:
        return [_p("Ingen vårdnivå satt av läkare under vårdtiden.")]
    rows = [(t.date_time(lv.at, zone), t.level_sv(lv.level), lv.by, lv.reason) for lv in s.levels]
    return [_table(("Från", "Vårdnivå", "Beslutad av", "Skäl"), rows)]


def _vitals(s: StaySummary, zone: ZoneInfo) -> list[str]:
    if not s.vitals:
        return [_p("Inga mätvärden under vårdtiden.")]
    rows = []
    limits = []
    for v in s.vitals:
        rows.append((
            f"{t.vital_name(v.vital)} (LOINC {v.loinc})",
            f"{t.value_text(v.vital, v.first_value)} ({t.date_time(v.first_at, zone)})",
            f"{t.value_text(v.vital, v.last_value)} ({t.date_time(v.last_at, zone)})",
            f"{t.value_text(v.vital, v.minimum)} – {t.value_text(v.vital, v.maximum)}",
            t.value_text(v.vital, v.mean),
            f"{v.n}{', varav några med kvalitetsflagga' if v.flagged else ''}",
        ))  # fmt: skip
        limits += [
            f"{t.vital_name(v.vital)}: personlig gräns {t.rule_name(lim.rule)}, "
            f"{t.priority_sv(lim.priority).lower()} {t.value_text(v.vital, lim.limit_value)} ({lim.set_by})"
            for lim in v.limits
        ]
    parts = [_table(("Parameter", "Första", "Senaste", "Min–max", "Medel", "Antal"), rows)]
    if limits:
        parts.append(_ul(limits))
    return parts


def _alerts(s: StaySummary, zone: ZoneInfo) -> list[str]:
    parts = []
    if s.alert_counts:
        rows = [(t.rule_name(c.rule), c.high, c.medium, c.low) for c in s.alert_counts]
        parts.append(_table(("Regel", "Hög", "Medel", "Låg"), rows))
    else:
        parts.append(_p("Inga larm om patientens tillstånd under vårdtiden."))
    if s.technical_alerts:
        word = "tekniskt larm" if s.technical_alerts == 1 else "tekniska larm"
        parts.append(_p(f"Dessutom {s.technical_alerts} {word} (utrustning, uteblivna mätningar)."))
    if s.high_alerts:
        parts.append(_p("Höga larm och vad som gjordes:"))
        lines = []
        for h in s.high_alerts:
            steps = [_step(st, zone) for st in h.steps] or ["Ingen åtgärd registrerad"]
            lines.append(f"{t.date_time(h.opened_at, zone)} {h.message} – " + "; ".join(steps))
        parts.append(_ul(lines))
    return parts


def _step(step: AlertStep, zone: ZoneInfo) -> str:
    by = f" av {step.by}" if step.by else ""
    note = f": »{step.note}«" if step.note else ""
    return f"{t.STEP_SV.get(step.kind, step.kind)}{by} {t.date_time(step.at, zone)}{note}"


def _questionnaires(s: StaySummary, zone: ZoneInfo) -> list[str]:
    if not s.questionnaires:
        return [_p("Inga besvarade frågeformulär.")]
    rows = [
        (t.date_time(q.authored_at, zone), t.questionnaire_title(q.questionnaire), q.score, reported)
        for q in s.questionnaires
        for reported in [t.flags_text(q.flags) or "–"]
    ]
    return [_table(("Besvarat", "Formulär", "Poäng", "Rapporterat"), rows)]


def _contacts(s: StaySummary, zone: ZoneInfo) -> list[str]:
    if not s.contacts:
        return [_p("Inga kontaktförfrågningar.")]
    lines = []
    for c in s.contacts:
        via = t.CONTACT_SOURCE_SV.get(c.source, c.source)
        line = f"{t.date_time(c.received_at, zone)} {t.contact_reason(c)} (via {via})"
        line += f": »{c.message}«" if c.message else ""
        line += f". {t.contact_answer(c, zone)}" + (f": »{c.close_note}«" if c.close_note else "")
        lines.append(line)
    return [_ul(lines)]


def _plan(s: StaySummary, zone: ZoneInfo) -> list[str]:
    parts = []
    if not s.plan_known:
        parts.append(_p(PLAN_UNKNOWN))
    if s.plan:
        parts += [_p("Mätplan:"), _ul(t.plan_text(p) for p in s.plan)]
    elif s.plan_known:
        parts.append(_p("Ingen mätplan."))
    if s.schedules:
        items = (f"{t.questionnaire_title(q.questionnaire)}: kl. {', '.join(q.times)}" for q in s.schedules)
        parts += [_p("Frågeformulär:"), _ul(items)]
    if s.self_care:
        items = (
            f"Vid {t.rule_name(sc.rule).lower()}: {sc.text} ({sc.set_by}, {t.day_text(sc.set_at, zone)})"
            for sc in s.self_care
        )
        parts += [_p("Egenvård:"), _ul(items)]
    else:
        parts.append(_p("Inga egenvårdsråd."))
    return parts


def _discharge(s: StaySummary, zone: ZoneInfo) -> list[str]:
    d = s.discharge
    if d is None:
        return [_p("Inte utskriven.")]
    parts = [
        _p(t.date_time(d.at, zone) + (f" av {d.by}" if d.by else ""), bold="Utskriven:"),
        _p(OUTCOMES_SV.get(d.outcome, "–") if d.outcome else "–", bold="Utfall:"),
    ]
    if d.note:
        parts.append(_p(d.note, bold="Anteckning:"))
    return parts


_SECTIONS: dict[str, Callable[[StaySummary, ZoneInfo], list[str]]] = {
    "admission": _admission,
    "care_levels": _care_levels,
    "vitals": _vitals,
    "alerts": _alerts,
    "questionnaires": _questionnaires,
    "contacts": _contacts,
    "plan": _plan,
    "discharge": _discharge,
}


def section_text(key: str, s: StaySummary, zone: ZoneInfo) -> str:
    """The `<div>` of care.stay_summary.SECTIONS' section `key` (KeyError for a section unknown here)."""
    return div(*_SECTIONS[key](s, zone))
