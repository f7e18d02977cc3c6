"""Who may do what: the one home of Hemma's role decisions.

Staff have one role (`staff_users.role`): `nurse`, `physician` or `admin`. Clinical actions are for
clinicians; an `admin` runs the system (accounts, wards, kits) and sees every ward, but never acts on
a patient's care. Every entry point asks this module and nothing else: care's commands (through
care.acting, so the CLI and the dashboard's orders and observations alike), the dashboard's alert
actions, the page templates deciding which buttons to offer, and the escalator choosing whom to page.

A refusal is identified by the action refused; the Swedish text staff read is looked up by it here,
never recovered from the English text an operator reads.

Pure: no I/O, importable from anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from types import MappingProxyType


class Role(StrEnum):
    NURSE = "nurse"
    PHYSICIAN = "physician"
    ADMIN = "admin"
    # Issue 12: roles that see no ward. A partner (a municipal home-care nurse, a GP) reads only the
    # patients granted to them (care.sharing, PartnerAction); the log reviewer reads the access log
    # (AdminAction.REVIEW_ACCESS_LOG) and no record.
    PARTNER = "partner"
    LOG_REVIEWER = "log_reviewer"


class Action(StrEnum):
    """Clinical actions. The values are also the access_log actions that record them."""

    ACKNOWLEDGE_ALERT = "acknowledge_alert"
    SNOOZE_ALERT = "snooze_alert"
    RESOLVE_ALERT = "resolve_alert"
    RECORD_OBSERVATION = "record_observation"
    SET_ALERT_LIMIT = "set_alert_limit"
    REVOKE_ALERT_LIMIT = "revoke_alert_limit"
    ORDER_SPO2_SCALE = "order_spo2_scale"
    SET_MONITORING_PLAN = "set_monitoring_plan"
    CLEAR_MONITORING_PLAN = "clear_monitoring_plan"
    # Being on the on-call rota: escalated high alerts are paged to this person (paging/escalator.py).
    BE_ON_CALL = "be_on_call"
    # "Kontakta mig" from the box (care.contact): a named clinician takes the patient's request, and
    # closes it with the answer given.
    TAKE_CONTACT_REQUEST = "take_contact_request"
    CLOSE_CONTACT_REQUEST = "close_contact_request"
    # The patient's way in (issue 10): enrol or revoke the patient's and relatives' app devices
    # (care.patient_enrolment), schedule questionnaires (care.questionnaires), write the agreed
    # self-care instruction for a rule (care.self_care), write to the patient (care.messages).
    MANAGE_PATIENT_APP = "manage_patient_app"
    SET_QUESTIONNAIRE_SCHEDULE = "set_questionnaire_schedule"
    SET_SELF_CARE = "set_self_care"
    SEND_PATIENT_MESSAGE = "send_patient_message"
    # Plan by level of need (issue 11, care.care_levels): a physician sets the patient's care level
    # (röd/gul/grön) with a reason; a nurse or physician marks the patient reviewed ("granskad").
    SET_CARE_LEVEL = "set_care_level"
    REVIEW_PATIENT = "review_patient"
    # End the home care episode with its outcome (care.enrolment.discharge, issue 11): alerts, plans
    # and reminders stop, open requests close, the kit is freed. A clinical decision, so not an admin's.
    DISCHARGE_PATIENT = "discharge_patient"
    # Admit a patient from the dashboard (issue 11): identity, diagnosis, pathway with its plan
    # template, care level, the ward's inclusion checklist. A clinical decision, so not an admin's.
    ADMIT_PATIENT = "admit_patient"
    # The ward's inclusion criteria for hospital-at-home (the checklist of an admission): a medical
    # decision of the ward's physicians.
    SET_INCLUSION_CRITERIA = "set_inclusion_criteria"
    # Try a proposed personal limit or SpO2 scale on the patient's stored readings (care.limit_replay):
    # a read, so whoever looks after the patient may; saving it stays SET_ALERT_LIMIT / ORDER_SPO2_SCALE.
    REPLAY_LIMIT = "replay_limit"
    # Shared care (issue 12, care.sharing): give a partner (municipal nurse, GP) time-boxed access to
    # this patient with the patient's consent, or end it; record or lift the patient's block (spärr).
    SHARE_WITH_PARTNER = "share_with_partner"
    RECORD_PATIENT_BLOCK = "record_patient_block"
    # The ward's escalation ladder across care providers (issue 12): a medical decision, like the
    # ward's inclusion criteria.
    SET_ESCALATION_LADDER = "set_escalation_ladder"


class EquipmentAction(StrEnum):
    """Work on a kit's equipment, not on a patient's care (so not an `Action`: an admin does none of
    those). The values are also the access_log actions that record them."""

    # Add, remove or replace a device of a home kit (care.kit). Nurses and physicians hand a kit out
    # at enrolment and pair its devices at the patient's home; IT admins replace a faulty device (and
    # prepare kits in stock). It changes what the kit reads, never a clinical decision.
    MANAGE_KIT_DEVICES = "manage_kit_devices"
    # Lend a kit to a patient, or take it back (issue 11: an assignment bounded in time). Done by the
    # clinicians who admit and visit the patient.
    ASSIGN_KIT = "assign_kit"
    # A kit's stock state between patients: returned, cleaned, back in stock (issue 11). Clinicians and
    # IT admins both handle kits coming back.
    MANAGE_KIT_STOCK = "manage_kit_stock"


class AdminAction(StrEnum):
    """Running the system on the dashboard (issue 11): staff accounts and the on-call rota. An admin's
    work, never a clinical action. The values are also the access_log actions that record them."""

    MANAGE_STAFF = "manage_staff"  # create accounts, change role and wards, disable, reset a password
    MANAGE_ROTA = "manage_rota"  # add and remove on-call shifts
    # Issue 12: care providers and units, and FHIR system clients (SMART Backend Services).
    MANAGE_ORGANISATIONS = "manage_organisations"
    MANAGE_SYSTEM_CLIENTS = "manage_system_clients"
    # The region's log reviewer reads and exports the access log (Patientdatalagen 4 kap. 3 §,
    # HSLF-FS 2016:40 4 kap. 9 §). Not the admin's: who runs the system does not audit its use.
    REVIEW_ACCESS_LOG = "review_access_log"


class PatientAction(StrEnum):
    """What a patient's enrolled device may do in the patient realm (care.patient_access). The values
    are also the access_log actions that record them. Staff roles never hold these, and a device never
    holds a staff `Action`: the two realms share no permission."""

    VIEW_TODAY = "patient_view_today"  # Idag: what to measure, done and due, the plain words, self-care
    VIEW_VALUES = "patient_view_values"  # Mina värden: numbers and charts of the last weeks
    VIEW_ACCESS_LOG = "patient_view_access_log"  # Vem har läst: the patient's log extract, live
    ANSWER_QUESTIONNAIRE = "patient_answer_questionnaire"
    REQUEST_CONTACT = "patient_request_contact"  # Kontakta mig
    READ_MESSAGES = "patient_read_messages"
    SEND_MESSAGE = "patient_send_message"


class PartnerAction(StrEnum):
    """What a partner (Role.PARTNER) may do for one patient under a grant in force (care.sharing), by
    the grant's purpose (PARTNER_ALLOWED). The values are also the access_log actions that record
    them. A partner holds no staff `Action` and sees no ward."""

    VIEW_PATIENT = "partner_view_patient"  # the focused view: values, alerts for them, plan, self-care
    VIEW_STAY_SUMMARY = "partner_view_stay_summary"  # the end-of-stay summary (document and Bundle)
    CONTACT_WARD = "partner_contact_ward"  # write to the ward about the patient
    ACKNOWLEDGE_VISIT = "partner_acknowledge_visit"  # take a home visit the escalation ladder asked for


class Holder(StrEnum):
    """Who holds an enrolled device (patient_devices.holder)."""

    PATIENT = "patient"
    RELATIVE = "relative"


AnyAction = Action | EquipmentAction | AdminAction

_CLINICIANS = frozenset({Role.NURSE, Role.PHYSICIAN})
_PHYSICIANS = frozenset({Role.PHYSICIAN})

ALLOWED_ROLES = MappingProxyType(
    {
        Action.ACKNOWLEDGE_ALERT: _CLINICIANS,
        Action.SNOOZE_ALERT: _CLINICIANS,
        Action.RESOLVE_ALERT: _CLINICIANS,
        Action.RECORD_OBSERVATION: _CLINICIANS,
        Action.SET_MONITORING_PLAN: _CLINICIANS,
        Action.CLEAR_MONITORING_PLAN: _CLINICIANS,
        Action.TAKE_CONTACT_REQUEST: _CLINICIANS,
        Action.CLOSE_CONTACT_REQUEST: _CLINICIANS,
        Action.MANAGE_PATIENT_APP: _CLINICIANS,
        Action.SET_QUESTIONNAIRE_SCHEDULE: _CLINICIANS,
        # The agreed self-care action is written by the nurse from the physician's order (nurse-led
        # heart-failure care titrates diuretics under delegation), so both roles may write it.
        Action.SET_SELF_CARE: _CLINICIANS,
        Action.SEND_PATIENT_MESSAGE: _CLINICIANS,
        Action.REVIEW_PATIENT: _CLINICIANS,
        Action.REPLAY_LIMIT: _CLINICIANS,
        Action.DISCHARGE_PATIENT: _CLINICIANS,
        Action.ADMIT_PATIENT: _CLINICIANS,
        # A personal limit or a scale order changes when the engine raises an alarm: a medical order.
        Action.SET_ALERT_LIMIT: _PHYSICIANS,
        Action.REVOKE_ALERT_LIMIT: _PHYSICIANS,
        Action.ORDER_SPO2_SCALE: _PHYSICIANS,
        # The care level sets how often the patient must be reviewed: a medical decision.
        Action.SET_CARE_LEVEL: _PHYSICIANS,
        Action.SET_INCLUSION_CRITERIA: _PHYSICIANS,
        Action.SHARE_WITH_PARTNER: _CLINICIANS,
        Action.RECORD_PATIENT_BLOCK: _CLINICIANS,
        Action.SET_ESCALATION_LADDER: _PHYSICIANS,
        # Escalation goes to the physician on call (levels: jourläkare, bakjour, medical lead).
        Action.BE_ON_CALL: _PHYSICIANS,
    }
)
EQUIPMENT_ALLOWED_ROLES = MappingProxyType(
    {
        EquipmentAction.MANAGE_KIT_DEVICES: frozenset({Role.NURSE, Role.PHYSICIAN, Role.ADMIN}),
        EquipmentAction.ASSIGN_KIT: _CLINICIANS,
        EquipmentAction.MANAGE_KIT_STOCK: frozenset({Role.NURSE, Role.PHYSICIAN, Role.ADMIN}),
    }
)
ADMIN_ALLOWED_ROLES = MappingProxyType(
    {
        AdminAction.MANAGE_STAFF: frozenset({Role.ADMIN}),
        AdminAction.MANAGE_ROTA: frozenset({Role.ADMIN}),
        AdminAction.MANAGE_ORGANISATIONS: frozenset({Role.ADMIN}),
        AdminAction.MANAGE_SYSTEM_CLIENTS: frozenset({Role.ADMIN}),
        AdminAction.REVIEW_ACCESS_LOG: frozenset({Role.LOG_REVIEWER}),
    }
)

# A partner's grant purpose (partner_grants.purpose) decides what the partner may do for the patient.
_PARTNER_READ = frozenset({PartnerAction.VIEW_PATIENT, PartnerAction.VIEW_STAY_SUMMARY})
PARTNER_ALLOWED = MappingProxyType(
    {
        "read": _PARTNER_READ,
        "read_contact": _PARTNER_READ | {PartnerAction.CONTACT_WARD},
        "home_visit": _PARTNER_READ | {PartnerAction.CONTACT_WARD, PartnerAction.ACKNOWLEDGE_VISIT},
    }
)


def partner_may(purpose: str, action: PartnerAction | str) -> bool:
    """Whether a grant for `purpose` lets its partner do `action`; False for an unknown purpose. An
    unknown action is a programming error (ValueError)."""
    return PartnerAction(action) in PARTNER_ALLOWED.get(purpose, frozenset())


# A relative, with the patient's recorded consent, helps: sees what is due today and the agreed
# self-care, asks for contact and writes to the team. The numbers and charts, the answers about how the
# patient feels, and the log of who read the record stay the patient's own (Patientdatalagen 8 kap.
# 5 §: the log extract is the patient's right); a relative's report of symptoms would also be scored as
# the patient's.
PATIENT_ALLOWED = MappingProxyType(
    {
        Holder.PATIENT: frozenset(PatientAction),
        Holder.RELATIVE: frozenset(
            {
                PatientAction.VIEW_TODAY,
                PatientAction.REQUEST_CONTACT,
                PatientAction.READ_MESSAGES,
                PatientAction.SEND_MESSAGE,
            }
        ),
    }
)


def patient_may(holder: str, action: PatientAction | str) -> bool:
    """Whether a device held by `holder` ('patient' or 'relative') may do `action`; False for any
    other holder. An unknown action is a programming error (ValueError)."""
    named = PatientAction(action)
    try:
        return named in PATIENT_ALLOWED[Holder(holder)]
    except ValueError:
        return False


# What staff read when the dashboard refuses an action for their role, by the action refused.
REFUSALS_SV = MappingProxyType(
    {
        Action.ACKNOWLEDGE_ALERT: "Endast sjuksköterskor och läkare får kvittera larm",
        Action.SNOOZE_ALERT: "Endast sjuksköterskor och läkare får snooza larm",
        Action.RESOLVE_ALERT: "Endast sjuksköterskor och läkare får avsluta larm",
        Action.RECORD_OBSERVATION: "Endast sjuksköterskor och läkare kan registrera observationer",
        Action.SET_MONITORING_PLAN: "Endast sjuksköterskor och läkare får ändra mätplanen",
        Action.CLEAR_MONITORING_PLAN: "Endast sjuksköterskor och läkare får ändra mätplanen",
        Action.SET_ALERT_LIMIT: "Endast läkare får ändra larmgränser",
        Action.REVOKE_ALERT_LIMIT: "Endast läkare får ändra larmgränser",
        Action.ORDER_SPO2_SCALE: "Endast läkare får ordinera SpO₂-skala",
        Action.BE_ON_CALL: "Endast läkare kan ha jour",
        Action.TAKE_CONTACT_REQUEST: "Endast sjuksköterskor och läkare får ta kontaktförfrågningar",
        Action.CLOSE_CONTACT_REQUEST: "Endast sjuksköterskor och läkare får avsluta kontaktförfrågningar",
        Action.MANAGE_PATIENT_APP: "Endast sjuksköterskor och läkare får ansluta eller spärra patientens app",
        Action.SET_QUESTIONNAIRE_SCHEDULE: "Endast sjuksköterskor och läkare får schemalägga frågeformulär",
        Action.SET_SELF_CARE: "Endast sjuksköterskor och läkare får skriva egenvårdsråd",
        Action.SEND_PATIENT_MESSAGE: "Endast sjuksköterskor och läkare får skriva till patienten",
        Action.SET_CARE_LEVEL: "Endast läkare får ändra vårdnivån",
        Action.REVIEW_PATIENT: "Endast sjuksköterskor och läkare får markera patienten som granskad",
        Action.REPLAY_LIMIT: "Endast sjuksköterskor och läkare kan pröva en larmgräns",
        Action.DISCHARGE_PATIENT: "Endast sjuksköterskor och läkare får skriva ut patienter",
        Action.ADMIT_PATIENT: "Endast sjuksköterskor och läkare får skriva in patienter",
        Action.SET_INCLUSION_CRITERIA: "Endast läkare får ändra avdelningens inklusionskriterier",
        Action.SHARE_WITH_PARTNER: (
            "Endast sjuksköterskor och läkare får dela patienten med kommun eller vårdcentral"
        ),
        Action.RECORD_PATIENT_BLOCK: "Endast sjuksköterskor och läkare får registrera eller häva en spärr",
        Action.SET_ESCALATION_LADDER: "Endast läkare får ändra avdelningens eskaleringstrappa",
    }
)
EQUIPMENT_REFUSALS_SV = MappingProxyType(
    {
        EquipmentAction.MANAGE_KIT_DEVICES: (
            "Endast sjuksköterskor, läkare och IT-administratörer får ändra utrustningen"
        ),
        EquipmentAction.ASSIGN_KIT: (
            "Endast sjuksköterskor och läkare får låna ut eller ta tillbaka en hemlåda"
        ),
        EquipmentAction.MANAGE_KIT_STOCK: (
            "Endast sjuksköterskor, läkare och IT-administratörer får ändra hemlådornas lagerstatus"
        ),
    }
)
ADMIN_REFUSALS_SV = MappingProxyType(
    {
        AdminAction.MANAGE_STAFF: "Endast IT-administratörer får ändra personalkonton",
        AdminAction.MANAGE_ROTA: "Endast IT-administratörer får ändra jourschemat",
        AdminAction.MANAGE_ORGANISATIONS: "Endast IT-administratörer får ändra vårdgivare och vårdenheter",
        AdminAction.MANAGE_SYSTEM_CLIENTS: "Endast IT-administratörer får ändra systemklienter",
        AdminAction.REVIEW_ACCESS_LOG: "Endast loggranskare får läsa åtkomstloggen",
    }
)

# The same refusal for an operator at the command line: "only physicians <doing>".
_DOING_EN: MappingProxyType[AnyAction, str] = MappingProxyType(
    {
        Action.ACKNOWLEDGE_ALERT: "acknowledge alerts",
        Action.SNOOZE_ALERT: "snooze alerts",
        Action.RESOLVE_ALERT: "end alerts",
        Action.RECORD_OBSERVATION: "record observations",
        Action.SET_MONITORING_PLAN: "set monitoring plans",
        Action.CLEAR_MONITORING_PLAN: "change monitoring plans",
        Action.SET_ALERT_LIMIT: "set limits",
        Action.REVOKE_ALERT_LIMIT: "revoke limits",
        Action.ORDER_SPO2_SCALE: "order the SpO2 scale",
        Action.BE_ON_CALL: "go on call",
        Action.TAKE_CONTACT_REQUEST: "take contact requests",
        Action.CLOSE_CONTACT_REQUEST: "close contact requests",
        Action.MANAGE_PATIENT_APP: "enrol or revoke a patient's app devices",
        Action.SET_QUESTIONNAIRE_SCHEDULE: "schedule questionnaires",
        Action.SET_SELF_CARE: "write self-care instructions",
        Action.SEND_PATIENT_MESSAGE: "write to patients",
        Action.SET_CARE_LEVEL: "set care levels",
        Action.REVIEW_PATIENT: "mark patients reviewed",
        Action.REPLAY_LIMIT: "try alert limits on stored readings",
        Action.DISCHARGE_PATIENT: "discharge patients",
        Action.ADMIT_PATIENT: "admit patients",
        Action.SET_INCLUSION_CRITERIA: "set inclusion criteria",
        Action.SHARE_WITH_PARTNER: "share a patient with a partner",
        Action.RECORD_PATIENT_BLOCK: "record or lift a patient's block",
        Action.SET_ESCALATION_LADDER: "set the escalation ladder",
        EquipmentAction.MANAGE_KIT_DEVICES: "change a kit's devices",
        EquipmentAction.ASSIGN_KIT: "lend or take back kits",
        EquipmentAction.MANAGE_KIT_STOCK: "change a kit's stock state",
        AdminAction.MANAGE_STAFF: "change staff accounts",
        AdminAction.MANAGE_ROTA: "change the on-call rota",
        AdminAction.MANAGE_ORGANISATIONS: "change care providers and units",
        AdminAction.MANAGE_SYSTEM_CLIENTS: "change system clients",
        AdminAction.REVIEW_ACCESS_LOG: "review the access log",
    }
)


def _action(action: AnyAction | str) -> AnyAction:
    """The Action, EquipmentAction or AdminAction named; ValueError for an unknown one (a programming
    error)."""
    for kind in (Action, EquipmentAction):
        try:
            return kind(action)
        except ValueError:
            pass
    return AdminAction(action)


def _allowed(action: AnyAction | str) -> frozenset[Role]:
    named = _action(action)
    if isinstance(named, Action):
        return ALLOWED_ROLES[named]
    if isinstance(named, EquipmentAction):
        return EQUIPMENT_ALLOWED_ROLES[named]
    return ADMIN_ALLOWED_ROLES[named]


def may(role: str, action: AnyAction | str) -> bool:
    """Whether staff with `role` may do `action`. An unknown action is a programming error (ValueError)."""
    return role in _allowed(action)


def allowed_roles(action: AnyAction | str) -> tuple[str, ...]:
    """The roles that may do `action`, in a fixed order (for SQL `= ANY(...)` and messages)."""
    return tuple(sorted(r.value for r in _allowed(action)))


def permitted(role: str) -> tuple[str, ...]:
    """Every clinical action `role` may do, e.g. for the page to know which buttons to offer."""
    return tuple(a.value for a in Action if may(role, a))


def permitted_equipment(role: str) -> tuple[str, ...]:
    """Every equipment action `role` may do (the record's kit form)."""
    return tuple(a.value for a in EquipmentAction if may(role, a))


def permitted_admin(role: str) -> tuple[str, ...]:
    """Every administrative action `role` may do (the dashboard's staff and rota pages)."""
    return tuple(a.value for a in AdminAction if may(role, a))


def may_see_ward(role: str, ward_ids: Iterable[str], ward_id: str) -> bool:
    """Ward access: nurses and physicians see the wards they are given (staff_ward_access); an admin
    sees every ward; a partner or log reviewer sees none, whatever rows an operator gave them."""
    return role == Role.ADMIN or (role in _CLINICIANS and ward_id in set(ward_ids))


def refusal_sv(action: AnyAction | str) -> str:
    """The Swedish text staff read when their role may not do `action`."""
    named = _action(action)
    if isinstance(named, Action):
        return REFUSALS_SV[named]
    if isinstance(named, EquipmentAction):
        return EQUIPMENT_REFUSALS_SV[named]
    return ADMIN_REFUSALS_SV[named]


def refusal_en(username: str, role: str, action: AnyAction | str) -> str:
    """The English text an operator reads, e.g. "sara is a nurse; only physicians set limits"."""
    roles = [f"{r}s" for r in allowed_roles(action)]
    allowed = " and ".join(roles) if len(roles) < 3 else ", ".join(roles[:-1]) + " and " + roles[-1]
    article = "an" if role[:1] in ("a", "e", "i", "o", "u") else "a"
    return f"{username} is {article} {role}; only {allowed} {_DOING_EN[_action(action)]}"
