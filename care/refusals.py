"""Why a care command said no: a code and its parameters, never prose.

Every command in `care` refuses by raising `Refused(RefusalCode.X, **params)`. Entry points look the
text up by code: the dashboard's Swedish for staff in `care.texts_sv` (with its HTTP status in
dashboard.care_orders), the operator's English in `care.texts_en` (the exception's own message, what
the `hemma` CLI prints). Nobody parses a message to find out what was refused.

Parameters carry ids, field values an operator typed that are not patient data (a rule key, a
number, a time), and never a name, personal number or birth year: they end up in terminals and logs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

log = logging.getLogger(__name__)


class RefusalCode(StrEnum):
    """One value per decision that can refuse. The values are stable identifiers (tests and API
    clients may compare them); a new refusal needs a text in both texts_en and texts_sv."""

    # Who acts (care.acting): params username, action; role; ward_id.
    NO_ACTIVE_ACCOUNT = "no_active_account"
    ROLE = "role"
    WARD_ACCESS = "ward"
    # The patient (care.acting): params patient_id; discharged_on.
    NO_PATIENT = "no_patient"
    PATIENT_DISCHARGED = "patient_discharged"
    # Wards and enrolment (care.enrolment).
    WARD_ID_FORM = "ward_id_form"
    WARD_NAME_EMPTY = "ward_name_empty"
    ESCALATION_MINUTES = "escalation_minutes"
    NO_WARD = "no_ward"
    PATIENT_NAME_EMPTY = "patient_name_empty"
    KIT_ID_FORM = "kit_id_form"
    BIRTH_YEAR = "birth_year"
    KIT_LENT = "kit_lent"
    PERSONAL_NUMBER_ENROLLED = "personal_number_enrolled"
    PERSONAL_NUMBER_DISCHARGED = "personal_number_discharged"
    NO_PATIENT_WITH_KIT = "no_patient_with_kit"
    # Admission (care.admission, care.inclusion, care.pathways, care.personal_numbers): params maximum;
    # missing (how many items are not confirmed); minimum. Never the personal number or the name.
    PERSONAL_NUMBER_FORM = "personal_number_form"
    PATIENT_NAME_TOO_LONG = "patient_name_too_long"
    ADMISSION_CARE_REASON = "admission_care_reason"
    UNKNOWN_PATHWAY = "unknown_pathway"
    KIT_NOT_OFFERED = "kit_not_offered"
    INCLUSION_ITEMS = "inclusion_items"
    INCLUSION_CHANGED = "inclusion_changed"
    INCLUSION_NOT_CONFIRMED = "inclusion_not_confirmed"
    INCLUSION_OVERRIDE_REASON = "inclusion_override_reason"
    # The ward's escalation ladder (care.escalation_ladder): params maximum, max_minutes; target;
    # physician; and the hand-off a receiver takes (one answer for "none to you" and "no grant").
    LADDER_STEPS = "ladder_steps"
    LADDER_TARGET = "ladder_target"
    LADDER_PHYSICIAN = "ladder_physician"
    LADDER_PHONE = "ladder_phone"
    NO_HANDOFF = "no_handoff"
    # Discharge (care.enrolment.discharge): params outcome, known; maximum.
    DISCHARGE_OUTCOME = "discharge_outcome"
    DISCHARGE_NOTE_TOO_LONG = "discharge_note_too_long"
    # Staff accounts and paging addresses (care.staff).
    NO_STAFF_ACCOUNT = "no_staff_account"
    USERNAME_FORM = "username_form"
    CONTACT_EMPTY = "contact_empty"
    CONTACT_FORM = "contact_form"
    # The on-call rota (care.oncall).
    ONCALL_LEVEL = "oncall_level"
    STAFF_DISABLED = "staff_disabled"
    NO_CONTACT = "no_contact"
    SHIFT_ZONE = "shift_zone"
    SHIFT_ENDS_FIRST = "shift_ends_first"
    SHIFT_TOO_LONG = "shift_too_long"
    SHIFT_TOO_FAR_AHEAD = "shift_too_far_ahead"
    NO_ONCALL_SHIFT = "no_oncall_shift"  # params shift_id
    # The admin's staff page (care.staff): params role, known.
    STAFF_ROLE_CHOICE = "staff_role_choice"
    STAFF_NAME_EMPTY = "staff_name_empty"  # params maximum
    STAFF_EXISTS = "staff_exists"  # params username
    STAFF_OWN_ACCOUNT = "staff_own_account"  # an admin may not disable or demote their own account
    # The handover summary (care.shifts): a shift named like 2026-12-06-natt that has begun.
    HANDOVER_SHIFT = "handover_shift"
    # Personal alert limits (care.limits).
    UNKNOWN_RULE = "unknown_rule"
    NO_SUCH_PRIORITY = "no_such_priority"
    IMPOSSIBLE_LIMIT = "impossible_limit"
    LIMIT_REASON_MISSING = "limit_reason_missing"
    LIMIT_END_ZONE = "limit_end_zone"
    LIMIT_END_PAST = "limit_end_past"
    LIMIT_END_TOO_FAR = "limit_end_too_far"
    NO_LIMIT = "no_limit"
    LIMIT_ALREADY_REVOKED = "limit_already_revoked"
    # Trying a limit on the stored readings (care.limit_replay): params rule; period, known.
    LIMIT_ORDER = "limit_order"  # a high-priority limit nearer normal than the medium one
    REPLAY_PERIOD = "replay_period"
    REPLAY_NOTHING = "replay_nothing"  # neither a limit nor a scale to try
    # Monitoring plans (care.plans).
    UNKNOWN_VITAL = "unknown_vital"
    PLAN_WHOLE_MINUTES = "plan_whole_minutes"
    PLAN_RANGE = "plan_range"
    NO_PLAN = "no_plan"
    # A kit's devices (care.kit).
    NO_KIT = "no_kit"
    PATIENT_WITHOUT_KIT = "patient_without_kit"
    DEVICE_ADDRESS_FORM = "device_address_form"
    UNKNOWN_PROFILE = "unknown_profile"
    PASSKEY_MISSING = "passkey_missing"
    PASSKEY_NOT_USED = "passkey_not_used"
    PASSKEY_FORM = "passkey_form"
    DEVICE_ON_ANOTHER_KIT = "device_on_another_kit"
    DEVICE_IN_KIT = "device_in_kit"
    KIT_FULL = "kit_full"
    NO_KIT_DEVICE = "no_kit_device"
    # Kit assignment bounded in time and the kit's stock state (care.kit_assignments, care.kit_states):
    # params state, event; gateway_id; patient_id.
    KIT_STATE = "kit_state"
    KIT_ASSIGNMENT_OVERLAP = "kit_assignment_overlap"
    PATIENT_HAS_KIT = "patient_has_kit"
    KIT_NOT_LENT = "kit_not_lent"
    KIT_EXISTS = "kit_exists"
    KIT_LEND_START = "kit_lend_start"
    # Contact requests from the box's button (care.contact).
    NO_CONTACT_REQUEST = "no_contact_request"
    CONTACT_REQUEST_CLOSED = "contact_request_closed"
    CONTACT_REQUEST_TAKEN = "contact_request_taken"
    CONTACT_NOTE_MISSING = "contact_note_missing"
    CONTACT_NOTE_TOO_LONG = "contact_note_too_long"
    # The patient realm (care.patient_access, care.patient_enrolment): params action; label; pin.
    PATIENT_REALM_ACTION = "patient_realm_action"
    DEVICE_LABEL = "device_label"
    CONSENT_MISSING = "consent_missing"
    CONSENT_TOO_LONG = "consent_too_long"
    PIN_FORM = "pin_form"
    NO_PATIENT_DEVICE = "no_patient_device"
    PATIENT_DEVICE_REVOKED = "patient_device_revoked"
    ENROLMENT_LINK_INVALID = "enrolment_link_invalid"  # unknown, used, expired or revoked: one answer
    ENROLMENT_PIN_WRONG = "enrolment_pin_wrong"  # params attempts_left
    ENROLMENT_PIN_LOCKED = "enrolment_pin_locked"
    # Organisations and shared care (care.organisations, care.sharing; issue 12): params org_id; hsa_id;
    # provider_id, unit_id; role; username; purpose; maximum; grant_id; block_id. Never a patient's data.
    ORG_ID_FORM = "org_id_form"
    ORG_NAME = "org_name"
    ORG_KIND = "org_kind"
    ORG_EXISTS = "org_exists"
    HSA_ID_FORM = "hsa_id_form"
    HSA_ID_TAKEN = "hsa_id_taken"
    NO_CARE_PROVIDER = "no_care_provider"
    NO_CARE_UNIT = "no_care_unit"
    STAFF_TITLE = "staff_title"
    ROLE_WITHOUT_WARDS = "role_without_wards"  # a partner or log reviewer is given wards
    NOT_A_PARTNER = "not_a_partner"
    GRANT_PURPOSE = "grant_purpose"
    GRANT_PERIOD = "grant_period"
    GRANT_CONSENT = "grant_consent"
    SHARING_NOTE_TOO_LONG = "sharing_note_too_long"
    PATIENT_BLOCKED = "patient_blocked"  # a block (spärr) in force against the partner's care provider
    NO_GRANT = "no_grant"
    GRANT_ENDED = "grant_ended"
    NO_BLOCK = "no_block"
    BLOCK_LIFTED = "block_lifted"
    BLOCK_EXISTS = "block_exists"
    BLOCK_OWN_PROVIDER = "block_own_provider"
    PARTNER_NO_ACCESS = "partner_no_access"  # no grant in force: the partner learns nothing more
    PARTNER_PURPOSE = "partner_purpose"  # the grant's purpose does not allow this (params action)
    # Questionnaires (care.questionnaires): params questionnaire; link_id; problem.
    UNKNOWN_QUESTIONNAIRE = "unknown_questionnaire"
    QUESTIONNAIRE_VERSION = "questionnaire_version"
    ANSWER_INVALID = "answer_invalid"
    SCHEDULE_TIMES = "schedule_times"
    NO_SCHEDULE = "no_schedule"
    # Messages, contact from the app, self-care (care.messages, care.contact, care.self_care).
    MESSAGE_EMPTY = "message_empty"
    MESSAGE_TOO_LONG = "message_too_long"  # params maximum
    CONTACT_REASON = "contact_reason"
    CONTACT_MESSAGE_TOO_LONG = "contact_message_too_long"  # params maximum
    CALL_WITHIN_RANGE = "call_within_range"  # params minimum, maximum
    TOO_MANY_REQUESTS = "too_many_requests"  # params what, per_minutes
    NO_MESSAGE = "no_message"
    SELF_CARE_RULE = "self_care_rule"  # params rule
    SELF_CARE_TEXT_EMPTY = "self_care_text_empty"
    SELF_CARE_TEXT_TOO_LONG = "self_care_text_too_long"  # params maximum
    NO_SELF_CARE = "no_self_care"
    # A patient-realm text holding control or direction-override characters (care.messages.clean_text).
    TEXT_CHARACTERS = "text_characters"
    # The SpO2 scale order (care.orders).
    SCALE_CHOICE = "scale_choice"
    SCALE_REASON_MISSING = "scale_reason_missing"
    # Care levels (care.care_levels): params level, known; minimum, maximum.
    CARE_LEVEL_CHOICE = "care_level_choice"
    CARE_LEVEL_REASON = "care_level_reason"
    # Manual observations (care.observations).
    OBSERVATION_ZONE = "observation_zone"
    OBSERVATION_IN_FUTURE = "observation_in_future"
    OBSERVATION_TOO_OLD = "observation_too_old"
    OBSERVATION_EMPTY = "observation_empty"
    RESPIRATION_IMPOSSIBLE = "respiration_impossible"
    RESPIRATION_NOT_WHOLE = "respiration_not_whole"
    CONSCIOUSNESS_CHOICE = "consciousness_choice"
    OXYGEN_FLOW_WITHOUT_OXYGEN = "oxygen_flow_without_oxygen"
    OXYGEN_FLOW_RANGE = "oxygen_flow_range"
    OBSERVER_MISSING = "observer_missing"
    PATIENT_REPORT_WITH_STAFF = "patient_report_with_staff"
    OBSERVATION_SOURCE = "observation_source"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A typed refusal: what was refused (`code`) and the values its texts need (`params`)."""

    code: RefusalCode
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


class Refused(ValueError):
    """A care command's refusal. `refusal` is what entry points read; the message is the operator's
    English text (care.texts_en), so `str()` is what the CLI prints and a log may carry."""

    def __init__(self, code: RefusalCode, **params: Any) -> None:
        from care import texts_en

        self.refusal = Refusal(code, MappingProxyType(dict(params)))
        super().__init__(texts_en.text(self.refusal))

    @property
    def code(self) -> RefusalCode:
        return self.refusal.code

    @property
    def params(self) -> Mapping[str, Any]:
        return self.refusal.params


def render_text(
    texts: Mapping[RefusalCode, Callable[[Mapping[str, Any]], str]], refusal: Refusal, fallback: str
) -> str:
    """`refusal` in one audience's words (texts_sv, texts_en, texts_patient_sv). A text that needs a
    parameter the refusing command did not give becomes `fallback` and an error in the log (the code
    only: parameters may hold patient data), never a 500 for the person who met the refusal."""
    found = texts.get(refusal.code)
    if found is None:
        return fallback
    try:
        return found(refusal.params)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        log.error("the text of refusal %s lacks a parameter (%s)", refusal.code, type(exc).__name__)
        return fallback
