"""The end-of-stay summary as a FHIR R4 document (issue 12: "as a FHIR Bundle ... available to primary
care and the municipality through the shared access"): care.stay_summary's StaySummary as a Bundle of
type `document`, built with fhir_api.resources' builders and fhir.resources' R4B models.

The Bundle (FHIR R4 3.3 Documents): a fresh `urn:uuid` identifier and the moment it was made; first the
Composition (LOINC 18842-5 Discharge summary; `preliminary` while the patient is still admitted, `final`
after discharge; the care unit as author, its care provider as custodian; title "Sammanfattning av
vårdtiden"), then every resource a section refers to: the Patient, the Encounter of the stay, the care
unit's and provider's Organizations (HSA-id), one Observation per vital with the stay's statistics,
a Flag per high alert, the QuestionnaireResponses as stored, the CarePlan in force at discharge.

Decisions:

* One section per care.stay_summary.SECTIONS, in its order, coded with its LOINC section code where
  one fits and always with Hemma's own section code (`codes.HEMMA_SUMMARY_SECTION`), its narrative
  (fhir_api.stay_narrative) the printed document's words.
* The vitals' trend: per vital one Observation of the stay's statistics, effective over the first to
  the last reading, its components first, last (Hemma's codes: HL7's observation-statistics has none),
  minimum, maximum, average and count (HL7's). It claims the vital-signs profile only for a vital whose
  LOINC code is in the profile's value set (so not glucose) and meets it there: category vital-signs,
  a LOINC code, subject, effectivePeriod, and components whose values are UCUM Quantities (vs-2: with
  components, no value[x] is needed). Single readings stay where they are, `/fhir/Observation`.
* Every entry's fullUrl is a `urn:uuid` made from its type and id (uuid5: the same resource gets the
  same fullUrl in every version of the document), and every reference inside the Bundle is rewritten
  to it, so the document stands alone: a reader resolves each reference without asking Hemma.
* A stored response that is not a valid QuestionnaireResponse (a row written before responses were
  stored) stays in the section's narrative and is left out of the entries, not a refusal.

`document_facts` reads (storage.steps, within the caller's access decision and log row); `stay_bundle`
is pure.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from fhir.resources.R4B.annotation import Annotation
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.composition import Composition, CompositionEvent, CompositionSection
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.narrative import Narrative
from fhir.resources.R4B.observation import Observation, ObservationComponent
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource
from pydantic import BaseModel, ValidationError

from care import stay_summary_text as t
from care.stay_summary import (
    DOCUMENT_LOINC,
    SECTIONS,
    HighAlert,
    Section,
    StaySummary,
    VitalTrend,
    stay_summary,
)
from core.vitals import VITALS, Vital
from fhir_api import codes, resources
from fhir_api.stay_narrative import composition_text, section_text
from storage.steps import Sql, Steps

TITLE = "Sammanfattning av vårdtiden"
# The resource types whose patient data the document carries: a system client's token must read them
# all (a document is whole or not sent). Composition and Organization carry no more than these.
INCLUDED_TYPES = ("Patient", "Encounter", "Observation", "Flag", "QuestionnaireResponse", "CarePlan")
LOINC_DISPLAYS = {
    DOCUMENT_LOINC: "Discharge summary",
    "46241-6": "Hospital admission diagnosis Narrative - Reported",
    "8648-8": "Hospital course Narrative",
    "8716-3": "Vital signs",
    "10187-3": "Review of systems Narrative - Reported",
    "18776-5": "Plan of care note",
    "8650-4": "Hospital discharge disposition Narrative",
}
VITAL_SIGNS_LOINC = codes.VITAL_SIGNS_LOINC
_VITAL_SIGNS = ("vital-signs", "Vital Signs", "Vitalparametrar")
_POINT_OF_CARE = ("laboratory", "Laboratory", "Patientnära analys")  # capillary glucose: no vital sign
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, f"{codes.HEMMA}/stay-summary")


@dataclass(frozen=True, slots=True)
class StoredResponse:
    response: Any  # the QuestionnaireResponse as care.questionnaires stored it (JSON)
    authored_at: datetime


@dataclass(frozen=True, slots=True)
class StayDocumentFacts:
    summary: StaySummary
    responses: tuple[StoredResponse, ...]  # oldest first, as summary.questionnaires


def document_facts(patient_id: uuid.UUID, *, now: datetime | None = None) -> Steps[StayDocumentFacts]:
    """The summary and the stored questionnaire responses of the stay (care.stay_summary's reads)."""
    summary = yield from stay_summary(patient_id, now=now)
    rows = yield Sql(
        "SELECT response, authored_at FROM questionnaire_responses WHERE patient_id = %s"
        " ORDER BY authored_at, id",
        (patient_id,),
        fetch="all",
    )
    return StayDocumentFacts(summary, tuple(StoredResponse(r, at) for r, at in rows))


# --- the resources ---------------------------------------------------------------------------------


def _stay_facts(s: StaySummary) -> resources.StayFacts:
    return resources.StayFacts(
        patient_id=s.patient_id,
        display_name=s.name,
        personal_number=s.personal_number,
        birth_year=s.birth_year,
        care_reason=s.admission.care_reason,
        enrolled_at=s.admission.admitted_at,
        discharged_at=s.discharge.at if s.discharge else None,
        discharge_outcome=s.discharge.outcome if s.discharge else None,
        pathway=s.admission.pathway_id,
        provider=resources.Provider(
            s.setting.care_provider_id, s.setting.care_provider_name, s.setting.care_provider_hsa_id
        ),
        last_updated=s.until,
    )


def _organisations(s: StaySummary) -> tuple[resources.OrganisationFacts, resources.OrganisationFacts]:
    c = s.setting
    provider = resources.OrganisationFacts(c.care_provider_id, c.care_provider_name, c.care_provider_hsa_id)
    unit = resources.OrganisationFacts(
        c.care_unit_id, c.care_unit_name, c.care_unit_hsa_id, c.care_provider_id
    )
    return unit, provider


def _vital_concept(vital: Vital) -> CodeableConcept:
    info = VITALS[vital]
    codings = [Coding(system=codes.LOINC, code=code) for code in (info.loinc, *info.loinc_also)]
    if info.mdc in codes.MDC_CODES:
        codings.append(Coding(system=codes.MDC, code=codes.MDC_CODES[info.mdc]))
    return CodeableConcept(coding=codings, text=info.display)


def _statistic(system: str, code: str, display: str, text: str, quantity: Quantity) -> ObservationComponent:
    concept = CodeableConcept(coding=[Coding(system=system, code=code, display=display)], text=text)
    return ObservationComponent(code=concept, valueQuantity=quantity)


def trend_observation(s: StaySummary, trend: VitalTrend) -> Observation:
    """The stay's statistics of one vital (see the module's docstring)."""
    info = VITALS[trend.vital]
    vital_sign = info.loinc in VITAL_SIGNS_LOINC

    def value(v: float) -> Quantity:
        return Quantity(
            value=resources.decimal(round(v, 2)), unit=info.display_unit, system=codes.UCUM, code=info.ucum
        )

    stats = codes.OBSERVATION_STATISTICS
    category = _VITAL_SIGNS if vital_sign else _POINT_OF_CARE
    notes = [
        f"Personlig larmgräns: {t.rule_name(lim.rule)}, {t.priority_sv(lim.priority).lower()}"
        f" {t.value_text(trend.vital, lim.limit_value)} (satt av {lim.set_by})"
        for lim in trend.limits
    ]
    if trend.flagged:
        notes.append("Några mätningar bar enhetens kvalitetsflagga.")
    return Observation(
        id=f"{s.patient_id}.{trend.vital.value.replace('_', '-')}",
        meta=Meta(profile=[codes.VITAL_SIGNS_PROFILE]) if vital_sign else None,
        status="preliminary" if s.preliminary else "final",
        category=[
            CodeableConcept(
                coding=[Coding(system=codes.OBSERVATION_CATEGORY, code=category[0], display=category[1])],
                text=category[2],
            )
        ],
        code=_vital_concept(trend.vital),
        subject=Reference(reference=f"Patient/{s.patient_id}"),
        encounter=Reference(reference=f"Encounter/{s.patient_id}"),
        effectivePeriod=Period(start=trend.first_at, end=trend.last_at),
        component=[
            _statistic(codes.HEMMA_STATISTIC, "first", "First value", "Första", value(trend.first_value)),
            _statistic(codes.HEMMA_STATISTIC, "last", "Last value", "Senaste", value(trend.last_value)),
            _statistic(stats, "minimum", "Minimum", "Lägsta", value(trend.minimum)),
            _statistic(stats, "maximum", "Maximum", "Högsta", value(trend.maximum)),
            _statistic(stats, "average", "Average", "Medel", value(trend.mean)),
            _statistic(
                stats,
                "count",
                "Count",
                "Antal mätningar",
                Quantity(value=Decimal(trend.n), unit="mätningar", system=codes.UCUM, code="1"),
            ),
        ],
        note=[Annotation(text=n) for n in notes] or None,
    )


def _flag(s: StaySummary, alert: HighAlert) -> Any:
    resolved = next((st.at for st in alert.steps if st.kind == "resolved"), None)
    return resources.flag(
        resources.AlertFacts(
            id=alert.id,
            patient_id=s.patient_id,
            rule=alert.rule,
            priority="high",
            state=alert.state,
            condition="physiological",
            message=alert.message,
            opened_at=alert.opened_at,
            resolved_at=resolved,
            updated_at=max((st.at for st in alert.steps), default=alert.opened_at),
        )
    )


def _responses(facts: StayDocumentFacts) -> list[Any]:
    built = []
    for stored in facts.responses:
        try:
            built.append(resources.questionnaire_response(stored.response, stored.authored_at))
        except (ValidationError, TypeError, ValueError):
            continue  # see the module's docstring: the narrative still lists it
    return built


def _vital_name(vital: Vital | str) -> str:
    return vital.value if isinstance(vital, Vital) else vital


def _care_plan(s: StaySummary) -> Any | None:
    if not s.plan_known and not s.self_care:
        return None
    return resources.care_plan(
        resources.PlanFacts(
            patient_id=s.patient_id,
            in_care=s.preliminary,
            enrolled_at=s.admission.admitted_at,
            discharged_at=s.discharge.at if s.discharge else None,
            monitoring=tuple((_vital_name(p.vital), p.every_minutes) for p in s.plan),
            self_care=tuple((sc.rule, sc.text) for sc in s.self_care),
            last_updated=s.until,
        )
    )


# --- the document ----------------------------------------------------------------------------------


def _key(resource: Resource) -> str:
    return f"{resource.get_resource_type()}/{resource.id}"


def full_url(resource: Resource) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, _key(resource))}"


def _section(section: Section, s: StaySummary, zone: ZoneInfo, entries: list[str]) -> CompositionSection:
    key = section.key
    codings = (
        [Coding(system=codes.LOINC, code=section.loinc, display=LOINC_DISPLAYS[section.loinc])]
        if section.loinc
        else []
    )
    codings.append(Coding(system=codes.HEMMA_SUMMARY_SECTION, code=key))
    title = "Plan och egenvård i dag" if key == "plan" and s.preliminary else section.title_sv
    return CompositionSection(
        title=title,
        code=CodeableConcept(coding=codings, text=title),
        text=Narrative(status="generated", div=section_text(key, s, zone)),
        entry=[Reference(reference=k) for k in entries] or None,
    )


def stay_bundle(facts: StayDocumentFacts, *, at: datetime, zone: ZoneInfo) -> Bundle:
    """The document of the stay, made at `at`; narrative times in `zone` (the site's)."""
    s = facts.summary
    stay = _stay_facts(s)
    unit_facts, provider_facts = _organisations(s)
    patient, encounter = resources.patient(stay), resources.encounter(stay)
    unit, provider = resources.organization(unit_facts), resources.organization(provider_facts)
    # The provider the builders name by HSA-id only is in the Bundle: refer to it as well.
    for ref in (patient.managingOrganization, encounter.serviceProvider):
        if ref is not None:
            ref.reference = _key(provider)
    trends = [trend_observation(s, v) for v in s.vitals]
    flags = [_flag(s, h) for h in s.high_alerts]
    responses = _responses(facts)
    plan = _care_plan(s)
    entries_of: dict[str, list[Resource]] = {
        "admission": [encounter],
        "vitals": list(trends),
        "alerts": list(flags),
        "questionnaires": list(responses),
        "plan": [plan] if plan is not None else [],
        "discharge": [encounter] if s.discharge else [],
    }
    composition = Composition(
        id=f"{s.patient_id}.summary",
        language="sv",
        text=Narrative(status="generated", div=composition_text(s, zone)),
        identifier=Identifier(system=codes.HEMMA_STAY_SUMMARY, value=str(s.patient_id)),
        status="preliminary" if s.preliminary else "final",
        type=CodeableConcept(
            coding=[Coding(system=codes.LOINC, code=DOCUMENT_LOINC, display=LOINC_DISPLAYS[DOCUMENT_LOINC])],
            text=TITLE,
        ),
        subject=Reference(reference=_key(patient), display=s.name),
        encounter=Reference(reference=_key(encounter)),
        date=at,
        author=[Reference(reference=_key(unit), display=s.setting.care_unit_name)],
        title=TITLE,
        custodian=Reference(reference=_key(provider), display=s.setting.care_provider_name),
        event=[CompositionEvent(period=Period(start=s.started, end=None if s.preliminary else s.until))],
        section=[_section(sec, s, zone, [_key(r) for r in entries_of.get(sec.key, [])]) for sec in SECTIONS],
    )
    included: list[Resource] = [
        composition,
        patient,
        encounter,
        unit,
        provider,
        *trends,
        *flags,
        *responses,
    ]
    if plan is not None:
        included.append(plan)
    urls = {_key(r): full_url(r) for r in included}
    for resource in included:
        for ref in _references(resource):
            if ref.reference in urls:
                ref.reference = urls[ref.reference]
    document_id = uuid.uuid4()
    return Bundle(
        id=str(document_id),
        meta=Meta(lastUpdated=at),
        identifier=Identifier(system=codes.RFC_3986, value=f"urn:uuid:{document_id}"),
        type="document",
        timestamp=at,
        entry=[BundleEntry(fullUrl=urls[_key(r)], resource=r) for r in included],
    )


def _references(model: BaseModel) -> Iterator[Reference]:
    """Every Reference inside `model`, however deep (subject, encounter, section entries, partOf...)."""
    for name in type(model).model_fields:
        value = getattr(model, name, None)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, Reference):
                yield item
            if isinstance(item, BaseModel):
                yield from _references(item)


def bundle_json(bundle: Bundle) -> str:
    return bundle.model_dump_json(exclude_none=True)
