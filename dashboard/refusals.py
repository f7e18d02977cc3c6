"""A care command's refusal as the API answers it: the HTTP status and field by code, the Swedish text
from care.texts_sv. The one place the dashboard maps refusals; every route that runs a care command
(orders, observations) raises what `action_error` returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from care import texts_sv
from care.refusals import RefusalCode as C
from care.refusals import Refused
from dashboard.errors import ActionError, InvalidInput, OrderRefused, WardForbidden

# (HTTP status, the request field a 422 names). 403: not this person's to do; 404: what the request
# names does not exist; 409: it exists but its state forbids it; 422: the input is refused.
HTTP: Mapping[C, tuple[int, str | None]] = MappingProxyType(
    {
        C.NO_ACTIVE_ACCOUNT: (403, None),
        C.ROLE: (403, None),
        C.WARD_ACCESS: (403, None),
        C.NO_PATIENT: (404, None),
        C.PATIENT_DISCHARGED: (409, None),
        C.WARD_ID_FORM: (422, "ward_id"),
        C.WARD_NAME_EMPTY: (422, "name"),
        C.ESCALATION_MINUTES: (422, "escalate_after_minutes"),
        C.NO_WARD: (404, None),
        C.PATIENT_NAME_EMPTY: (422, "display_name"),
        C.KIT_ID_FORM: (422, "gateway_id"),
        C.BIRTH_YEAR: (422, "birth_year"),
        C.KIT_LENT: (409, None),
        C.PERSONAL_NUMBER_ENROLLED: (409, None),
        C.PERSONAL_NUMBER_DISCHARGED: (409, None),
        C.NO_PATIENT_WITH_KIT: (404, None),
        C.PERSONAL_NUMBER_FORM: (422, "personal_number"),
        C.PATIENT_NAME_TOO_LONG: (422, "display_name"),
        C.ADMISSION_CARE_REASON: (422, "care_reason"),
        C.UNKNOWN_PATHWAY: (422, "pathway"),
        C.KIT_NOT_OFFERED: (409, "gateway_id"),
        C.INCLUSION_ITEMS: (422, "items"),
        C.INCLUSION_CHANGED: (409, "confirmed"),
        C.INCLUSION_NOT_CONFIRMED: (422, "confirmed"),
        C.INCLUSION_OVERRIDE_REASON: (422, "override_reason"),
        C.LADDER_STEPS: (422, "steps"),
        C.LADDER_TARGET: (422, "steps"),
        C.LADDER_PHYSICIAN: (422, "steps"),
        C.LADDER_PHONE: (422, "phone"),
        C.NO_HANDOFF: (404, None),
        C.DISCHARGE_OUTCOME: (422, "outcome"),
        C.DISCHARGE_NOTE_TOO_LONG: (422, "note"),
        C.NO_STAFF_ACCOUNT: (404, None),
        C.USERNAME_FORM: (422, "username"),
        C.CONTACT_EMPTY: (422, None),
        C.CONTACT_FORM: (422, None),
        C.ONCALL_LEVEL: (422, "level"),
        C.STAFF_DISABLED: (409, None),
        C.NO_CONTACT: (409, None),
        C.SHIFT_ZONE: (422, "starts_at"),
        C.SHIFT_ENDS_FIRST: (422, "ends_at"),
        C.SHIFT_TOO_LONG: (422, "ends_at"),
        C.SHIFT_TOO_FAR_AHEAD: (422, "ends_at"),
        C.NO_ONCALL_SHIFT: (404, None),
        C.STAFF_ROLE_CHOICE: (422, "role"),
        C.STAFF_NAME_EMPTY: (422, "display_name"),
        C.STAFF_EXISTS: (409, None),
        C.STAFF_OWN_ACCOUNT: (409, None),
        C.HANDOVER_SHIFT: (422, "skift"),
        C.UNKNOWN_RULE: (422, "rule"),
        C.NO_SUCH_PRIORITY: (422, "priority"),
        C.IMPOSSIBLE_LIMIT: (422, "limit"),
        C.LIMIT_REASON_MISSING: (422, "reason"),
        C.LIMIT_END_ZONE: (422, "valid_until"),
        C.LIMIT_END_PAST: (422, "valid_until"),
        C.LIMIT_END_TOO_FAR: (422, "valid_until"),
        C.NO_LIMIT: (404, None),
        C.LIMIT_ALREADY_REVOKED: (409, None),
        C.LIMIT_ORDER: (422, "limit"),
        C.REPLAY_PERIOD: (422, "period"),
        C.REPLAY_NOTHING: (422, "limit"),
        C.UNKNOWN_VITAL: (422, "vital"),
        C.PLAN_WHOLE_MINUTES: (422, "every_minutes"),
        C.PLAN_RANGE: (422, "every_minutes"),
        C.NO_PLAN: (404, None),
        C.NO_KIT: (404, None),
        C.PATIENT_WITHOUT_KIT: (404, None),
        C.KIT_STATE: (409, None),
        C.KIT_ASSIGNMENT_OVERLAP: (409, None),
        C.PATIENT_HAS_KIT: (409, None),
        C.KIT_NOT_LENT: (409, None),
        C.KIT_EXISTS: (409, None),
        C.KIT_LEND_START: (422, "starts_at"),
        C.DEVICE_ADDRESS_FORM: (422, "address"),
        C.UNKNOWN_PROFILE: (422, "profile"),
        C.PASSKEY_MISSING: (422, "passkey"),
        C.PASSKEY_NOT_USED: (422, "passkey"),
        C.PASSKEY_FORM: (422, "passkey"),
        C.DEVICE_ON_ANOTHER_KIT: (409, None),
        C.DEVICE_IN_KIT: (409, None),
        C.KIT_FULL: (409, None),
        C.NO_KIT_DEVICE: (404, None),
        C.NO_CONTACT_REQUEST: (404, None),
        C.CONTACT_REQUEST_CLOSED: (409, None),
        C.CONTACT_REQUEST_TAKEN: (409, None),
        C.CONTACT_NOTE_MISSING: (422, "note"),
        C.CONTACT_NOTE_TOO_LONG: (422, "note"),
        C.PATIENT_REALM_ACTION: (403, None),
        C.DEVICE_LABEL: (422, "label"),
        C.CONSENT_MISSING: (422, "consent"),
        C.CONSENT_TOO_LONG: (422, "consent"),
        C.PIN_FORM: (422, "pin"),
        C.NO_PATIENT_DEVICE: (404, None),
        C.PATIENT_DEVICE_REVOKED: (409, None),
        C.ENROLMENT_LINK_INVALID: (404, None),
        C.ENROLMENT_PIN_WRONG: (422, "pin"),
        C.ENROLMENT_PIN_LOCKED: (409, None),
        C.UNKNOWN_QUESTIONNAIRE: (404, None),
        C.QUESTIONNAIRE_VERSION: (409, None),
        C.ANSWER_INVALID: (422, None),
        C.SCHEDULE_TIMES: (422, "times"),
        C.NO_SCHEDULE: (404, None),
        C.MESSAGE_EMPTY: (422, "body"),
        C.MESSAGE_TOO_LONG: (422, "body"),
        C.CONTACT_REASON: (422, "reason"),
        C.CONTACT_MESSAGE_TOO_LONG: (422, "message"),
        C.CALL_WITHIN_RANGE: (422, "call_within_minutes"),
        C.TOO_MANY_REQUESTS: (429, None),
        C.NO_MESSAGE: (404, None),
        C.SELF_CARE_RULE: (422, "rule"),
        C.SELF_CARE_TEXT_EMPTY: (422, "text"),
        C.SELF_CARE_TEXT_TOO_LONG: (422, "text"),
        C.NO_SELF_CARE: (404, None),
        C.TEXT_CHARACTERS: (422, None),
        C.SCALE_CHOICE: (422, "scale"),
        C.SCALE_REASON_MISSING: (422, "reason"),
        C.CARE_LEVEL_CHOICE: (422, "level"),
        C.CARE_LEVEL_REASON: (422, "reason"),
        C.OBSERVATION_ZONE: (422, "time"),
        C.OBSERVATION_IN_FUTURE: (422, "time"),
        C.OBSERVATION_TOO_OLD: (422, "time"),
        C.OBSERVATION_EMPTY: (422, None),
        C.RESPIRATION_IMPOSSIBLE: (422, "respiratory_rate"),
        C.RESPIRATION_NOT_WHOLE: (422, "respiratory_rate"),
        C.CONSCIOUSNESS_CHOICE: (422, "consciousness"),
        C.OXYGEN_FLOW_WITHOUT_OXYGEN: (422, "oxygen_l_min"),
        C.OXYGEN_FLOW_RANGE: (422, "oxygen_l_min"),
        C.OBSERVER_MISSING: (422, None),
        C.PATIENT_REPORT_WITH_STAFF: (422, None),
        C.OBSERVATION_SOURCE: (422, None),
    }
)


def action_error(exc: Refused) -> ActionError:
    """The ActionError (status, Swedish message, field) the API answers a refusal with."""
    status, field = HTTP[exc.code]
    message = texts_sv.text(exc.refusal)
    if status == 422:
        return InvalidInput(message, field)
    if exc.code is C.WARD_ACCESS:
        return WardForbidden(str(exc.params["ward_id"]))
    # The reason (never shown to staff, may be logged) is the code: ids and values stay out of logs.
    return OrderRefused(status, f"refused: {exc.code}", message)
