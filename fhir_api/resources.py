"""Hemma's rows as FHIR R4 resources (fhir.resources' R4B models, whose R4 subset these are). Pure.

Each builder takes a frozen dataclass of facts read from the database (fhir_api.queries reads them)
and returns a validated model: never a hand-assembled dict. Ids:

* Patient, Encounter and CarePlan: the patient's id. A `patients` row is one home-care stay (one
  enrolment, one discharge), so the stay's Encounter and its CarePlan share the id.
* Observation: `<measurement uuid>.<kind>` for a reading (codes.VITAL_KEYS: `.bp` is the panel of the
  systolic and diastolic of one measurement), `m<manual observation id>.<acvpu|o2>` for what a person
  observed that lives only in manual_observations (a counted respiration rate is a reading).
* Device: `<kit device id>.<kit assignment id>`: one device in one patient's lend of the kit, so a
  device lent to two patients in turn is two resources and neither shows the other patient.
* Flag: the alert's id. QuestionnaireResponse: the response's own id, as care.questionnaires stored it.
* Organization: `p-<care provider id>` or `u-<care unit id>` (the two tables' ids may coincide).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.annotation import Annotation
from fhir.resources.R4B.careplan import CarePlan, CarePlanActivity, CarePlanActivityDetail
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.device import Device, DeviceDeviceName
from fhir.resources.R4B.encounter import Encounter, EncounterHospitalization
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.observation import Observation, ObservationComponent
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.timing import Timing, TimingRepeat

from core.vitals import VITALS, Vital
from fhir_api import codes

# --- facts ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Provider:
    """The care provider (vårdgivare) whose ward cares for the patient."""

    id: str
    name: str
    hsa_id: str | None


@dataclass(frozen=True, slots=True)
class StayFacts:
    """A patients row: the person as far as Hemma knows them, and their one home-care stay."""

    patient_id: uuid.UUID
    display_name: str
    personal_number: str | None  # "YYYYMMDD-NNNN" (care.personal_numbers)
    birth_year: int | None
    care_reason: str | None
    enrolled_at: datetime
    discharged_at: datetime | None
    discharge_outcome: str | None
    pathway: str | None
    provider: Provider
    last_updated: datetime


@dataclass(frozen=True, slots=True)
class Reading:
    """An observations row (with the diastolic of the same measurement for the BP panel)."""

    patient_id: uuid.UUID
    measurement_id: uuid.UUID
    vital: Vital
    time: datetime
    value: float
    quality: tuple[str, ...]
    gateway_id: str
    device_address: str
    device_id: str | None  # the Device resource's id, when the kit's device is registered
    stored_at: datetime
    diastolic: float | None = None
    diastolic_quality: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ManualFacts:
    """What a person observed that only manual_observations holds: consciousness or air/oxygen."""

    id: int
    patient_id: uuid.UUID
    key: str  # codes.MANUAL_ACVPU or codes.MANUAL_OXYGEN
    time: datetime
    consciousness: str | None
    on_oxygen: bool | None
    oxygen_l_min: float | None
    source: str  # 'nurse' or 'patient'
    entered_at: datetime


@dataclass(frozen=True, slots=True)
class KitDeviceFacts:
    device_id: str  # "<kit device id>.<kit assignment id>"
    patient_id: uuid.UUID
    address: str
    gateway_id: str
    manufacturer: str | None
    model: str | None
    label_sv: str | None
    decoders: tuple[str, ...]  # the profile's measurement decoders (codes.DEVICE_TYPES)
    active: bool  # in the kit and the kit still lent to this patient
    last_updated: datetime


@dataclass(frozen=True, slots=True)
class AlertFacts:
    id: int
    patient_id: uuid.UUID
    rule: str
    priority: str
    state: str  # 'open', 'acknowledged', 'resolved' (pending alerts are never exchanged)
    condition: str  # 'physiological' or 'technical'
    message: str  # Swedish, as staff read it
    opened_at: datetime
    resolved_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OrganisationFacts:
    """A care provider (vårdgivare, omsorgsgivare) or one of its care units (vårdenhet)."""

    id: str  # care_providers.id or care_units.id
    name: str
    hsa_id: str | None
    provider_id: str | None = None  # set for a care unit: the provider it belongs to


@dataclass(frozen=True, slots=True)
class PlanFacts:
    """The stay's monitoring plan and the self-care agreed with the patient."""

    patient_id: uuid.UUID
    in_care: bool
    enrolled_at: datetime
    discharged_at: datetime | None
    monitoring: tuple[tuple[str, int], ...]  # (vital, every minutes)
    self_care: tuple[tuple[str, str], ...]  # (rule, the instruction's text)
    last_updated: datetime


# --- small parts ---------------------------------------------------------------------------------


def _concept(codings: Sequence[tuple[str, str]], text: str, displays: Mapping[str, str] | None = None) -> Any:
    shown = displays or {}
    return CodeableConcept(
        coding=[Coding(system=s, code=c, display=shown.get(c)) for s, c in codings], text=text
    )


def _ref(kind: str, id_: object, display: str | None = None) -> Reference:
    return Reference(reference=f"{kind}/{id_}", display=display)


def _meta(last_updated: datetime, *profiles: str) -> Meta:
    return Meta(lastUpdated=last_updated, profile=list(profiles) or None)


def personal_identifier(number: str) -> Identifier:
    """Personnummer or samordningsnummer (day + 60, care.personal_numbers), 12 digits without hyphen."""
    digits = number.replace("-", "")
    coordination = int(digits[6:8]) > 60
    system = codes.SAMORDNINGSNUMMER if coordination else codes.PERSONNUMMER
    return Identifier(system=system, value=digits)


def provider_reference(provider: Provider) -> Reference:
    ident = Identifier(system=codes.HSA_ID, value=provider.hsa_id) if provider.hsa_id else None
    return Reference(identifier=ident, display=provider.name)


def organization_id(facts: OrganisationFacts) -> str:
    return f"u-{facts.id}" if facts.provider_id else f"p-{facts.id}"


# --- builders ------------------------------------------------------------------------------------


def organization(facts: OrganisationFacts) -> Organization:
    """A care provider ('prov') or care unit ('dept', part of its provider), named by its HSA-id."""
    unit = facts.provider_id is not None
    kind, text = ("dept", "Vårdenhet") if unit else ("prov", "Vårdgivare")
    return Organization(
        id=organization_id(facts),
        identifier=[Identifier(system=codes.HSA_ID, value=facts.hsa_id)] if facts.hsa_id else None,
        active=True,
        type=[_concept([(codes.ORGANIZATION_TYPE, kind)], text)],
        name=facts.name,
        partOf=_ref("Organization", f"p-{facts.provider_id}") if unit else None,
    )


def patient(facts: StayFacts) -> Patient:
    # Birth year only (data minimisation): the exchange needs the age, not the birthday.
    died = facts.discharge_outcome == "died"
    return Patient(
        id=str(facts.patient_id),
        meta=_meta(facts.last_updated),
        identifier=[personal_identifier(facts.personal_number)] if facts.personal_number else None,
        active=facts.discharged_at is None,
        name=[HumanName(text=facts.display_name)],
        # FHIR's date allows a year alone; the model's annotation says only `date`.
        birthDate=str(facts.birth_year) if facts.birth_year else None,  # type: ignore[arg-type]
        deceasedBoolean=True if died else None,
        managingOrganization=provider_reference(facts.provider),
    )


def encounter(facts: StayFacts) -> Encounter:
    disposition = codes.DISCHARGE_DISPOSITIONS.get(facts.discharge_outcome or "")
    hospitalization = None
    if disposition is not None:
        code, text = disposition
        hospitalization = EncounterHospitalization(
            dischargeDisposition=_concept([(codes.DISCHARGE_DISPOSITION, code)], text)
        )
    return Encounter(
        id=str(facts.patient_id),
        meta=_meta(facts.last_updated),
        status="finished" if facts.discharged_at else "in-progress",
        # `class` is a Python keyword: the model's field is class_fhir (its alias is "class").
        class_fhir=Coding(system=codes.ACT_CODE, code="HH", display="home health"),  # type: ignore[call-arg]
        type=[CodeableConcept(text=f"Sjukhusvård i hemmet ({facts.pathway})")] if facts.pathway else None,
        subject=_ref("Patient", facts.patient_id),
        period=Period(start=facts.enrolled_at, end=facts.discharged_at),
        reasonCode=[CodeableConcept(text=facts.care_reason)] if facts.care_reason else None,
        hospitalization=hospitalization,
        serviceProvider=provider_reference(facts.provider),
    )


def _quantity(value: float, vital: Vital) -> Quantity:
    info = VITALS[vital]
    return Quantity(value=decimal(value), unit=info.display_unit, system=codes.UCUM, code=info.ucum)


def decimal(value: float) -> Decimal:
    """A stored double as FHIR's decimal, written as Python's shortest repr (81.1, not 81.09999…)."""
    return Decimal(repr(float(value)))


def _quality_note(flags: Sequence[str]) -> list[Annotation] | None:
    # The device's own words for a doubtful reading (device_profiles.quality), kept as they are: staff
    # see the same flags, and a receiving system can tell a reading taken during movement.
    if not flags:
        return None
    return [Annotation(text="Enhetens kvalitetsflaggor: " + ", ".join(flags))]


def _vital_signs_category() -> CodeableConcept:
    return _concept(
        [(codes.OBSERVATION_CATEGORY, "vital-signs")], "Vitalparametrar", {"vital-signs": "Vital Signs"}
    )


def _point_of_care_category() -> CodeableConcept:
    return _concept(
        [(codes.OBSERVATION_CATEGORY, "laboratory")], "Patientnära analys", {"laboratory": "Laboratory"}
    )


def observation(reading: Reading) -> Observation:
    """A reading, in the vital-signs profile where its code is a vital sign (capillary glucose is not):
    LOINC first, MDC beside it, UCUM units, the device."""
    key = codes.VITAL_KEYS[reading.vital]
    manual = reading.gateway_id == "manual"  # care.observations.MANUAL_GATEWAY_ID: a person counted it
    device = None
    if reading.device_id is not None:
        device = _ref("Device", reading.device_id)
    elif not manual:
        device = Reference(
            identifier=Identifier(system=codes.BLUETOOTH_ADDRESS, value=reading.device_address),
            display="Bluetooth-enhet",
        )
    vital_sign = key == "bp" or VITALS[reading.vital].loinc in codes.VITAL_SIGNS_LOINC
    profiles = (codes.VITAL_SIGNS_PROFILE, *([codes.BP_PROFILE] if key == "bp" else [])) if vital_sign else ()
    common: dict[str, Any] = {
        "id": f"{reading.measurement_id}.{key}",
        "meta": _meta(reading.stored_at, *profiles),
        "status": "final",
        "category": [_vital_signs_category() if vital_sign else _point_of_care_category()],
        "subject": _ref("Patient", reading.patient_id),
        "encounter": _ref("Encounter", reading.patient_id),
        "effectiveDateTime": reading.time,
        "device": device,
        "method": CodeableConcept(text="Räknad av personal eller patient") if manual else None,
    }
    if key == "bp":
        flags = tuple(dict.fromkeys((*reading.quality, *reading.diastolic_quality)))
        components = [_component(Vital.SYSTOLIC_BP, reading.value)]
        if reading.diastolic is not None:
            components.append(_component(Vital.DIASTOLIC_BP, reading.diastolic))
        return Observation(
            code=_concept(codes.observation_codings("bp"), codes.BP_PANEL_DISPLAY),
            component=components,
            note=_quality_note(flags),
            **common,
        )
    info = VITALS[reading.vital]
    return Observation(
        code=_concept(codes.observation_codings(key), info.display),
        valueQuantity=_quantity(reading.value, reading.vital),
        note=_quality_note(reading.quality),
        **common,
    )


def _component(vital: Vital, value: float) -> ObservationComponent:
    info = VITALS[vital]
    codings = [(codes.LOINC, info.loinc)]
    if info.mdc in codes.MDC_CODES:
        codings.append((codes.MDC, codes.MDC_CODES[info.mdc]))
    return ObservationComponent(code=_concept(codings, info.display), valueQuantity=_quantity(value, vital))


ACVPU_SV = {"A": "Vaken", "C": "Ny förvirring", "V": "Reagerar på tilltal", "P": "Reagerar på smärta",
            "U": "Reagerar inte"}  # fmt: skip


def manual_observation(facts: ManualFacts) -> Observation:
    """Consciousness (ACVPU) or air/oxygen as a person observed it (NEWS2's other parameters)."""
    performer = [Reference(display="Patienten" if facts.source == "patient" else "Personal")]
    common: dict[str, Any] = {
        "id": f"m{facts.id}.{facts.key}",
        "meta": _meta(facts.entered_at),
        "status": "final",
        "category": [_concept([(codes.OBSERVATION_CATEGORY, "exam")], "Bedömning")],
        "subject": _ref("Patient", facts.patient_id),
        "encounter": _ref("Encounter", facts.patient_id),
        "effectiveDateTime": facts.time,
        "performer": performer,
    }
    if facts.key == codes.MANUAL_ACVPU:
        level = facts.consciousness or "A"
        return Observation(
            code=_concept(codes.observation_codings(codes.MANUAL_ACVPU), "Medvetandegrad (ACVPU)"),
            valueCodeableConcept=_concept([(codes.HEMMA_OBSERVATION, f"acvpu-{level}")], ACVPU_SV[level]),
            **common,
        )
    flow = facts.oxygen_l_min if facts.on_oxygen else 0.0
    return Observation(
        code=_concept(codes.observation_codings(codes.MANUAL_OXYGEN), "Syrgas (l/min), 0 = luft"),
        valueQuantity=Quantity(value=decimal(flow or 0.0), unit="l/min", system=codes.UCUM, code="L/min"),
        note=[Annotation(text="Andas luft" if not facts.on_oxygen else "Får syrgas")],
        **common,
    )


def device(facts: KitDeviceFacts) -> Device:
    """A kit's device in the spirit of the HL7 Personal Health Device IG: its MDC specialisation, the
    maker and model from its profile, its Bluetooth address as identifier, and the patient."""
    kinds = [codes.DEVICE_TYPES[d] for d in facts.decoders if d in codes.DEVICE_TYPES]
    kinds = list(dict.fromkeys(kinds))
    device_type = None
    if kinds:
        device_type = CodeableConcept(
            coding=[Coding(system=codes.MDC, code=code, display=text) for code, text in kinds],
            text=facts.label_sv or kinds[0][1],
        )
    return Device(
        id=facts.device_id,
        meta=_meta(facts.last_updated),
        identifier=[Identifier(system=codes.BLUETOOTH_ADDRESS, value=facts.address)],
        status="active" if facts.active else "inactive",
        manufacturer=facts.manufacturer,
        modelNumber=facts.model,
        deviceName=[DeviceDeviceName(name=facts.label_sv, type="user-friendly-name")]
        if facts.label_sv
        else None,
        type=device_type,
        patient=_ref("Patient", facts.patient_id),
        note=[Annotation(text=f"I hemlåda {facts.gateway_id}")],
    )


def flag(facts: AlertFacts) -> Flag:
    """An alert: active while open or acknowledged, inactive once ended; its priority as the
    flag-priority extension; the message as staff read it."""
    code, text = codes.FLAG_PRIORITIES.get(facts.priority, ("PN", "Ingen prioritet"))
    category = "clinical" if facts.condition == "physiological" else "safety"
    return Flag(
        id=str(facts.id),
        meta=_meta(facts.updated_at),
        extension=[
            Extension(
                url=codes.FLAG_PRIORITY_EXTENSION,
                valueCodeableConcept=_concept([(codes.FLAG_PRIORITY, code)], text),
            )
        ],
        status="inactive" if facts.state == "resolved" else "active",
        category=[
            CodeableConcept(
                coding=[
                    Coding(system=codes.FLAG_CATEGORY, code=category),
                    Coding(system=codes.HEMMA_ALERT_CONDITION, code=facts.condition),
                ],
                text="Tekniskt larm" if facts.condition == "technical" else "Kliniskt larm",
            )
        ],
        code=_concept([(codes.HEMMA_ALERT_RULE, facts.rule)], facts.message),
        subject=_ref("Patient", facts.patient_id),
        encounter=_ref("Encounter", facts.patient_id),
        period=Period(start=facts.opened_at, end=facts.resolved_at),
    )


def questionnaire_response(stored: Mapping[str, Any], last_updated: datetime) -> QuestionnaireResponse:
    """The response as care.questionnaires stored it (already an R4B QuestionnaireResponse, built and
    validated there), with the stay it was given in and when it was stored."""
    response = QuestionnaireResponse.model_validate(stored)
    response.meta = _meta(last_updated)
    if response.subject is not None and response.encounter is None:
        response.encounter = Reference(
            reference=str(response.subject.reference).replace("Patient/", "Encounter/")
        )
    return response


def _every(minutes: int) -> tuple[TimingRepeat, str]:
    """The plan's interval as a Timing and in Swedish ("var 4:e timme")."""
    for size, unit, word in ((1440, "d", "dygn"), (60, "h", "timme"), (1, "min", "minut")):
        if minutes % size == 0:
            n = minutes // size
            ordinal = (
                "varje"
                if n == 1
                else f"var {n}:{'a' if n % 10 in (1, 2) and n % 100 not in (11, 12) else 'e'}"
            )
            return TimingRepeat(frequency=1, period=Decimal(n), periodUnit=unit), f"{ordinal} {word}"
    raise AssertionError("unreachable: every minute count divides by 1")


_VITAL_NAMES = frozenset(v.value for v in Vital)


def care_plan(facts: PlanFacts) -> CarePlan:
    """The stay's plan: what to measure how often (monitoring_plans) and the self-care agreed with
    the patient for an alert rule (self_care_instructions)."""
    status = "in-progress" if facts.in_care else "completed"
    activities = []
    for vital_name, minutes in facts.monitoring:
        info = VITALS.get(Vital(vital_name)) if vital_name in _VITAL_NAMES else None
        codings = [(codes.LOINC, info.loinc)] if info else [(codes.HEMMA_PLAN, f"measure-{vital_name}")]
        text = info.display if info else vital_name
        repeat, every = _every(minutes)
        activities.append(
            CarePlanActivity(
                detail=CarePlanActivityDetail(
                    kind="ServiceRequest",
                    code=_concept(codings, text),
                    status=status,
                    scheduledTiming=Timing(repeat=repeat),
                    description=f"Mät {text.lower()} {every}",
                )
            )
        )
    for rule, text in facts.self_care:
        activities.append(
            CarePlanActivity(
                detail=CarePlanActivityDetail(
                    code=_concept([(codes.HEMMA_ALERT_RULE, rule)], "Egenvård"),
                    status=status,
                    description=text,
                )
            )
        )
    return CarePlan(
        id=str(facts.patient_id),
        meta=_meta(facts.last_updated),
        status="active" if facts.in_care else "completed",
        intent="plan",
        title="Övervakningsplan och egenvård",
        subject=_ref("Patient", facts.patient_id),
        encounter=_ref("Encounter", facts.patient_id),
        period=Period(start=facts.enrolled_at, end=facts.discharged_at),
        activity=activities or None,
    )
