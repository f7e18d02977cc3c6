"""Admission to the virtual ward (inskrivning, issue 11): identity, care reason, pathway, checklist, kit,
plan and level, as one command in one transaction. The dashboard's admission page
(dashboard.admission) and `hemma patient admit` run `admit`.

Steps, in order: the identity is checked (name; personnummer or samordningsnummer by its date and Luhn
check digit, the birth year derived from it, care.personal_numbers); the care reason and the pathway
(care.pathways); who acts (Action.ADMIT_PATIENT: nurses and physicians of the ward); the ward's
inclusion checklist (care.inclusion.decide_checklist: all confirmed, or a physician's override with a
reason); the kit is free; the patient and the kit (care.enrolment.enrol, the one writer of patients);
the admission row (migration 0017); the pathway's plan (monitoring_plans rows with source 'level', at
the level's frequencies, care.care_levels.level_plan_minutes) and questionnaire schedules
(care.questionnaires.set_schedule); the care level; the access-log row `admit_patient`.

Who sets the care level: it is a physician's decision (Action.SET_CARE_LEVEL), so
* a physician admitting chooses the level (the pathway's suggestion is offered) and it is set with its
  reason, as on the record (care.care_levels.set_level);
* a nurse admitting sets no level. The patient is "Ingen vårdnivå" (reviewed daily, escalated on the
  ward's time) until a physician decides; the plan is laid down at the frequency of the pathway's
  suggested level, kept as `admissions.provisional_level`, and follows the level from the physician's
  first decision on. A nurse naming a level is refused (ROLE), never silently ignored.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from care.acting import CareSteps, Origin, acting_staff, audited, check_ward_access
from care.care_levels import LEVELS, CareLevel, LevelMeaning, check_level, level_plan_minutes, set_level
from care.enrolment import GATEWAY_ID, enrol
from care.inclusion import criteria, decide_checklist
from care.kit import config_changed
from care.kit_assignments import available_kits
from care.messages import clean_text
from care.pathways import Pathway, pathway, pathways
from care.permissions import Action, may
from care.personal_numbers import check_personal_number
from care.questionnaires.schedules import set_schedule
from care.refusals import RefusalCode, Refused
from core.events import VitalsChanged
from core.vitals import Vital
from storage.steps import Notify, Sql, Steps

MAX_NAME_LENGTH = 100
MIN_CARE_REASON, MAX_CARE_REASON = 3, 200


@dataclass(frozen=True, slots=True)
class Admitted:
    patient_id: uuid.UUID
    ward_id: str
    gateway_id: str
    pathway: str
    level: CareLevel | None  # set by the admitting physician; None: a physician is still to decide
    provisional_level: CareLevel | None  # the pathway's suggestion the plan follows meanwhile
    plan: tuple[tuple[Vital, int], ...]  # (vital, every minutes)
    questionnaires: tuple[tuple[str, tuple[str, ...]], ...]  # (questionnaire, times)
    overridden: tuple[str, ...]  # the criteria a physician admitted over


def template_plan(chosen: Pathway, meant: LevelMeaning) -> tuple[tuple[Vital, int], ...]:
    """Pure: the monitoring plan a pathway lays down on a level, (vital, minutes) in the template's order
    (what the admission page shows before anyone admits)."""
    return tuple((vital, level_plan_minutes(meant, vital)) for vital in chosen.vitals)


def find_pathway(pathway_id: object) -> Pathway:
    chosen = pathway(str(pathway_id)) if isinstance(pathway_id, str) else None
    if chosen is None:
        raise Refused(RefusalCode.UNKNOWN_PATHWAY, pathway=str(pathway_id)[:40], known=tuple(pathways()))
    return chosen


def check_name(display_name: str) -> str:
    text = clean_text(display_name, maximum=MAX_NAME_LENGTH, empty=RefusalCode.PATIENT_NAME_EMPTY,
                      too_long=RefusalCode.PATIENT_NAME_TOO_LONG)  # fmt: skip
    assert text is not None  # `empty` refuses
    return text


def check_care_reason(care_reason: str) -> str:
    text = clean_text(care_reason, maximum=len(care_reason), empty=None,
                      too_long=RefusalCode.ADMISSION_CARE_REASON)  # fmt: skip
    if text is None or not MIN_CARE_REASON <= len(text) <= MAX_CARE_REASON:
        raise Refused(RefusalCode.ADMISSION_CARE_REASON, minimum=MIN_CARE_REASON, maximum=MAX_CARE_REASON)
    return text


def _kits_to_offer(ward_id: str) -> Steps[list[str]]:
    """The kits a ward may lend: in stock or cleaned (care.kit_assignments.available_kits; a returned
    kit is cleaned first). Kits have no ward of their own: the stock is shared."""
    return list((yield from available_kits()))


def _kit_is_free(gateway_id: str, ward_id: str) -> Steps[None]:
    offered = yield from _kits_to_offer(ward_id)
    if gateway_id in offered:
        return
    lent = yield Sql("SELECT 1 FROM gateways WHERE id = %s AND patient_id IS NOT NULL", (gateway_id,),
                     fetch="one")  # fmt: skip
    if lent is not None:
        raise Refused(RefusalCode.KIT_LENT, gateway_id=gateway_id)
    raise Refused(RefusalCode.KIT_NOT_OFFERED, gateway_id=gateway_id)


@dataclass(frozen=True, slots=True)
class AdmissionChoices:
    """What the admission page offers: the pathways, the free kits, the ward's checklist."""

    pathways: tuple[Pathway, ...]
    kits: tuple[str, ...]
    criteria: tuple[str, ...]


def admission_choices(ward_id: str) -> Steps[AdmissionChoices]:
    kits = yield from _kits_to_offer(ward_id)
    items = yield from criteria(ward_id)
    return AdmissionChoices(tuple(pathways().values()), tuple(kits), tuple(items))


def admit(
    *,
    ward_id: str,
    display_name: str,
    personal_number: str,
    care_reason: str,
    pathway_id: str,
    gateway_id: str,
    confirmed: Sequence[str],
    override_reason: str | None = None,
    level: str | None = None,
    level_reason: str | None = None,
    by: str,
    origin: Origin | None,
    today: datetime | None = None,
) -> CareSteps[Admitted]:
    """Admit a patient to `ward_id` on a pathway with a free kit (see the module's text)."""
    name = check_name(display_name)
    identity = check_personal_number(personal_number, today=(today or datetime.now(UTC)).date())
    reason = check_care_reason(care_reason)
    chosen = find_pathway(pathway_id)
    if not isinstance(gateway_id, str) or not GATEWAY_ID.fullmatch(gateway_id):
        raise Refused(RefusalCode.KIT_NOT_OFFERED, gateway_id=str(gateway_id)[:64])
    decided = check_level(level) if level else None
    staff = yield from acting_staff(by, Action.ADMIT_PATIENT)
    ward = yield Sql("SELECT 1 FROM wards WHERE id = %s FOR SHARE", (ward_id,), fetch="one")
    if ward is None:
        raise Refused(RefusalCode.NO_WARD, ward_id=ward_id)
    yield from check_ward_access(staff, ward_id, Action.ADMIT_PATIENT)
    if decided is not None and not may(staff.role, Action.SET_CARE_LEVEL):
        raise Refused(RefusalCode.ROLE, username=by, role=staff.role, action=Action.SET_CARE_LEVEL)
    items = yield from criteria(ward_id)
    checklist = decide_checklist(items, confirmed, override_reason, staff)
    # One admission of a person at a time: a second one (a double click, a second tab) waits here for
    # the first to end, then finds the number taken (enrol's check), never the UNIQUE index's error.
    yield Sql("SELECT pg_advisory_xact_lock(hashtextextended('hemma admit ' || %s, 0))", (identity.number,))
    yield from _kit_is_free(gateway_id, ward_id)
    # enrol writes the patient and lends the kit; its own access-log row (an operator's) is not written:
    # this admission's row names the member of staff.
    enrolled = yield from enrol(ward_id=ward_id, display_name=name, gateway_id=gateway_id,
                                personal_number=identity.number, birth_year=identity.birth_year,
                                care_reason=reason, origin=None)  # fmt: skip
    patient_id = enrolled.patient_id
    provisional = None if decided is not None else CareLevel(chosen.suggested_level)
    yield Sql(
        "INSERT INTO admissions (patient_id, ward_id, pathway, provisional_level, admitted_by, confirmed,"
        " not_confirmed, override_reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (patient_id, ward_id, chosen.id, provisional.value if provisional else None, staff.id,
         list(checklist.confirmed), list(checklist.not_confirmed), checklist.override_reason),
    )  # fmt: skip
    plan = template_plan(chosen, LEVELS[decided or CareLevel(chosen.suggested_level)])
    for vital, minutes in plan:
        yield Sql(
            "INSERT INTO monitoring_plans (patient_id, vital, every_minutes, set_by, source)"
            " VALUES (%s, %s, %s, %s, 'level')",
            (patient_id, vital.value, minutes, staff.id),
        )
    yield from config_changed(patient_id=patient_id)  # the plan is the kit's schedule
    for q in chosen.questionnaires:
        yield from set_schedule(patient_id=patient_id, questionnaire=q.questionnaire, times=q.times,
                                by=by, origin=origin)  # fmt: skip
    if decided is not None:
        why = level_reason or f"Vid inskrivning, vårdförlopp {chosen.title}"
        yield from set_level(patient_id=patient_id, level=decided, reason=why, by=by, origin=origin)
    context = f"pathway:{chosen.id} gateway:{gateway_id}" + (" override" if checklist.not_confirmed else "")
    yield from audited(origin, staff=staff, username=by, patient_id=patient_id,
                       action=Action.ADMIT_PATIENT, context=context)  # fmt: skip
    yield Notify(VitalsChanged(ward_id, (patient_id,)))
    return Admitted(
        patient_id, ward_id, gateway_id, chosen.id, decided, provisional, plan,
        tuple((q.questionnaire, q.times) for q in chosen.questionnaires), checklist.not_confirmed,
    )  # fmt: skip
