"""The operator's English text of each refusal, by code: what `hemma` prints after "hemma: ".

The command line is run by operators (IT, the ward's system administrator) from scripts and
runbooks written in English, and these are the texts its tests and runbooks pin; staff at the
dashboard read `care.texts_sv` for the same codes. A table, not logic: each entry formats the
refusal's params and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from care.permissions import refusal_en
from care.refusals import Refusal, render_text
from care.refusals import RefusalCode as C

_Text = Callable[[Mapping[str, Any]], str]


def _at(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _role(p: Mapping[str, Any]) -> str:
    return refusal_en(p["username"], p["role"], p["action"])


_FORM = "characters of a-z, 0-9 and -, starting with a letter or digit"

TEXTS: Mapping[C, _Text] = MappingProxyType(
    {
        C.NO_ACTIVE_ACCOUNT: lambda p: f"no active staff account {p['username']}",
        C.ROLE: _role,
        C.WARD_ACCESS: lambda p: f"{p['username']} has no access to ward {p['ward_id']}",
        C.NO_PATIENT: lambda p: f"no patient {p['patient_id']}",
        C.PATIENT_DISCHARGED: lambda p: f"patient {p['patient_id']} was discharged on {p['discharged_on']}",
        C.WARD_ID_FORM: lambda p: f"ward id {p['ward_id']!r}: use 2 to 63 {_FORM}",
        C.WARD_NAME_EMPTY: lambda p: "a ward needs a name",
        C.ESCALATION_MINUTES: lambda p: f"escalation after {p['minutes']} min: choose 1 to 120 minutes",
        C.NO_WARD: lambda p: f"no ward {p['ward_id']}: create it first with `hemma ward add`",
        C.PATIENT_NAME_EMPTY: lambda p: "the patient's name is empty",
        C.KIT_ID_FORM: lambda p: f"kit id {p['gateway_id']!r}: use 3 to 63 {_FORM}",
        C.BIRTH_YEAR: lambda p: f"the birth year must be between {p['minimum']} and {p['maximum']}",
        C.KIT_LENT: lambda p: f"gateway {p['gateway_id']} is already lent to another patient",
        C.PERSONAL_NUMBER_FORM: lambda p: (
            "the personal number is not valid: 12 digits, YYYYMMDD-NNNN, a real date and a correct"
            " check digit (a coordination number is fine)"
        ),
        C.PATIENT_NAME_TOO_LONG: lambda p: f"the name is at most {p['maximum']} characters",
        C.ADMISSION_CARE_REASON: lambda p: (
            f"give the diagnosis or care reason ({p['minimum']} to {p['maximum']} characters)"
        ),
        C.UNKNOWN_PATHWAY: lambda p: f"no pathway {p['pathway']!r}; known: {', '.join(p['known'])}",
        C.KIT_NOT_OFFERED: lambda p: f"kit {p['gateway_id']} is not in stock (unknown, or not free)",
        C.INCLUSION_ITEMS: lambda p: (
            f"inclusion criteria: 1 to 20 distinct items, one per line, each 3 to {p['maximum']} characters"
        ),
        C.INCLUSION_CHANGED: lambda p: (
            "the ward's inclusion criteria changed since they were read; read them again"
        ),
        C.INCLUSION_NOT_CONFIRMED: lambda p: (
            f"{p['missing']} inclusion criteria not confirmed: all are required, or a physician's"
            " override with a reason"
        ),
        C.INCLUSION_OVERRIDE_REASON: lambda p: (
            "admitting over unconfirmed criteria needs a reason"
            f" ({p['minimum']} to {p['maximum']} characters)"
        ),
        C.LADDER_STEPS: lambda p: (
            f"an escalation ladder has 1 to {p['maximum']} steps, each of 1 to {p['max_minutes']} minutes"
        ),
        C.LADDER_TARGET: lambda p: (
            f"unknown ladder step {p['target']!r}: home_visit_partner, ward_physician[=USERNAME] or on_call"
        ),
        C.LADDER_PHYSICIAN: lambda p: f"{p['physician']} is not an enabled physician of ward {p['ward_id']}",
        C.LADDER_PHONE: lambda p: "the ward's phone: digits, spaces and dashes, e.g. 040-33 10 00",
        C.NO_HANDOFF: lambda p: (
            f"alert {p['alert_id']} was not handed to staff {p['staff_user_id']},"
            " or no grant in force allows it"
        ),
        C.PERSONAL_NUMBER_ENROLLED: lambda p: (
            f"the personal number is already that of patient {p['patient_id']}, who is enrolled"
        ),
        C.PERSONAL_NUMBER_DISCHARGED: lambda p: (
            f"the personal number is already that of patient {p['patient_id']}, discharged on"
            f" {p['discharged_on']}; enrolling a discharged patient again is not supported yet"
        ),
        C.NO_PATIENT_WITH_KIT: lambda p: f"no enrolled patient holds kit {p['gateway_id']}",
        C.DISCHARGE_OUTCOME: lambda p: f"the outcome of a discharge is one of: {', '.join(p['known'])}",
        C.DISCHARGE_NOTE_TOO_LONG: lambda p: f"the discharge note is longer than {p['maximum']} characters",
        C.ORG_ID_FORM: lambda p: f"id {p['org_id']!r}: use 2 to 63 {_FORM}",
        C.ORG_NAME: lambda p: f"a name has {p['minimum']} to {p['maximum']} characters",
        C.ORG_KIND: lambda p: f"kind must be one of {', '.join(p['known'])}",
        C.ORG_EXISTS: lambda p: f"{p['org_id']} exists already",
        C.HSA_ID_FORM: lambda p: (
            f"HSA-id {p['hsa_id']!r} is not of the form SE, ten digits, '-' and 1-31 letters or digits"
            " (e.g. SE2321000016-1234)"
        ),
        C.HSA_ID_TAKEN: lambda p: f"HSA-id {p['hsa_id']} belongs to another account, provider or unit",
        C.NO_CARE_PROVIDER: lambda p: f"no care provider {p['provider_id']}",
        C.NO_CARE_UNIT: lambda p: f"no care unit {p['unit_id']}",
        C.STAFF_TITLE: lambda p: f"a title has {p['minimum']} to {p['maximum']} characters",
        C.ROLE_WITHOUT_WARDS: lambda p: f"a {p['role']} sees no ward: give no --ward",
        C.NOT_A_PARTNER: lambda p: f"{p['username']} is not an enabled partner account",
        C.GRANT_PURPOSE: lambda p: f"purpose must be one of {', '.join(p['known'])}",
        C.GRANT_PERIOD: lambda p: f"a grant lasts from 1 to {p['maximum']} days and ends in the future",
        C.GRANT_CONSENT: lambda p: "a grant needs the consent of the patient or their representative",
        C.SHARING_NOTE_TOO_LONG: lambda p: f"the note is longer than {p['maximum']} characters",
        C.PATIENT_BLOCKED: lambda p: (
            f"the patient has blocked sharing with {p['provider_id']}: no grant to its staff"
        ),
        C.NO_GRANT: lambda p: f"no partner grant {p['grant_id']}",
        C.GRANT_ENDED: lambda p: f"partner grant {p['grant_id']} has ended or was revoked already",
        C.NO_BLOCK: lambda p: f"no block {p['block_id']}",
        C.BLOCK_LIFTED: lambda p: f"block {p['block_id']} was lifted already",
        C.BLOCK_EXISTS: lambda p: f"a block against {p['provider_id']} is in force already",
        C.BLOCK_OWN_PROVIDER: lambda p: (
            f"{p['provider_id']} is the ward's own care provider; a block is against another one"
        ),
        C.PARTNER_NO_ACCESS: lambda p: f"no patient {p['patient_id']}",
        C.PARTNER_PURPOSE: lambda p: "the grant's purpose does not allow this",
        C.NO_STAFF_ACCOUNT: lambda p: f"no staff account {p['username']}",
        C.USERNAME_FORM: lambda p: "username must be 2-64 characters: lowercase a-z, digits, '.', '_' or '-'",
        C.CONTACT_EMPTY: lambda p: "give at least one of e-mail, ntfy topic or webhook URL",
        C.CONTACT_FORM: lambda p: (
            f"contact for {p['username']} refused: an e-mail needs an @, an ntfy topic only letters,"
            " digits, - and _, a webhook URL must start with http:// or https://"
        ),
        C.ONCALL_LEVEL: lambda p: f"on-call level must be 1, 2 or 3, got {p['level']}",
        C.STAFF_DISABLED: lambda p: f"staff account {p['username']} is disabled",
        C.NO_CONTACT: lambda p: f"{p['username']} has no contact details: run `hemma staff contact` first",
        C.SHIFT_ZONE: lambda p: "shift times must carry a time zone",
        C.SHIFT_ENDS_FIRST: lambda p: "a shift must end after it starts",
        C.SHIFT_TOO_LONG: lambda p: f"a shift may last at most {p['days']} days",
        C.SHIFT_TOO_FAR_AHEAD: lambda p: "a shift must end within a year from now",
        C.NO_ONCALL_SHIFT: lambda p: f"no on-call shift {p['shift_id']}",
        C.STAFF_ROLE_CHOICE: lambda p: f"role must be one of {', '.join(p['known'])}",
        C.STAFF_NAME_EMPTY: lambda p: (
            f"a staff account needs a display name (at most {p.get('maximum', 100)} characters)"
        ),
        C.STAFF_EXISTS: lambda p: f"staff account {p['username']} exists already",
        C.STAFF_OWN_ACCOUNT: lambda p: f"{p['username']} may not disable or demote their own account",
        C.HANDOVER_SHIFT: lambda p: (
            "not a shift that has begun: write e.g. 2026-12-06-natt (dag, kvall or natt)"
        ),
        C.UNKNOWN_RULE: lambda p: f"unknown threshold rule {p['rule']!r}; known: {', '.join(p['known'])}",
        C.NO_SUCH_PRIORITY: lambda p: (
            f"rule {p['rule']} has no {p['priority']} limit to replace (it has: {', '.join(p['has'])})"
        ),
        C.IMPOSSIBLE_LIMIT: lambda p: (
            f"limit {p['limit']:g} {p['unit']} is not a possible {p['vital']} value"
        ),
        C.LIMIT_REASON_MISSING: lambda p: "a reason is required (who asked for it and why)",
        C.LIMIT_ORDER: lambda p: (
            f"rule {p['rule']}: the high-priority limit must lie further from normal than the medium one"
        ),
        C.REPLAY_PERIOD: lambda p: f"period must be one of {', '.join(p['known'])}",
        C.REPLAY_NOTHING: lambda p: "give a limit or an SpO2 scale to try",
        C.LIMIT_END_ZONE: lambda p: "the limit's end time must carry a time zone",
        C.LIMIT_END_PAST: lambda p: f"the limit's end time {_at(p['valid_until'])} is not in the future",
        C.LIMIT_END_TOO_FAR: lambda p: (
            f"the limit's end time {_at(p['valid_until'])} is more than a year ahead;"
            " leave it out for a limit until further notice"
        ),
        C.NO_LIMIT: lambda p: (
            f"no personal limit {p['limit_id']}"
            + (f" of patient {p['patient_id']}" if p.get("patient_id") else "")
        ),
        C.LIMIT_ALREADY_REVOKED: lambda p: (
            f"personal limit {p['limit_id']} was already revoked on {p['revoked_at']:%Y-%m-%d %H:%M}"
        ),
        C.UNKNOWN_VITAL: lambda p: f"unknown vital {p['vital']!r}; known: {', '.join(p['known'])}",
        C.PLAN_WHOLE_MINUTES: lambda p: f"plan interval must be whole minutes, got {p['every']}",
        C.PLAN_RANGE: lambda p: (
            f"plan interval must be between {p['minimum_minutes']} minutes and {p['maximum_days']} days,"
            f" got {p['every']}"
        ),
        C.NO_CONTACT_REQUEST: lambda p: f"patient {p['patient_id']} has no contact request {p['request_id']}",
        C.CONTACT_REQUEST_CLOSED: lambda p: f"contact request {p['request_id']} is already closed",
        C.CONTACT_REQUEST_TAKEN: lambda p: (
            f"contact request {p['request_id']} is already taken by {p['taken_by']}"
        ),
        C.CONTACT_NOTE_MISSING: lambda p: "give the answer given (a short note) to close the request",
        C.CONTACT_NOTE_TOO_LONG: lambda p: f"the note is longer than {p['maximum']} characters",
        C.NO_PLAN: lambda p: f"patient {p['patient_id']} has no monitoring plan for {p['vital']}",
        C.NO_KIT: lambda p: f"no kit {p['gateway_id']}",
        C.PATIENT_WITHOUT_KIT: lambda p: f"patient {p['patient_id']} has no kit",
        C.KIT_STATE: lambda p: f"a kit that is {p['state']} cannot be changed by '{p['event']}'",
        C.KIT_ASSIGNMENT_OVERLAP: lambda p: f"kit {p['gateway_id']} is lent to a patient over that time",
        C.PATIENT_HAS_KIT: lambda p: f"patient {p['patient_id']} already has kit {p['gateway_id']}",
        C.KIT_NOT_LENT: lambda p: f"kit {p['gateway_id']} is not lent to anyone",
        C.KIT_EXISTS: lambda p: f"kit {p['gateway_id']} is registered already",
        C.KIT_LEND_START: lambda p: f"a lend starts within the last {p['days']} days and not in the future",
        C.DEVICE_ADDRESS_FORM: lambda p: (
            f"device address {p['address']!r}: use six hex pairs separated by ':', e.g. A4:C1:38:00:00:01"
        ),
        C.UNKNOWN_PROFILE: lambda p: f"no device profile {p['profile']!r}; known: {', '.join(p['known'])}",
        C.PASSKEY_MISSING: lambda p: (
            f"profile {p['profile']} pairs with a passkey: give --passkey (6 digits)"
        ),
        C.PASSKEY_NOT_USED: lambda p: f"profile {p['profile']} pairs without a passkey: leave --passkey out",
        C.PASSKEY_FORM: lambda p: "the passkey is six digits",
        C.DEVICE_ON_ANOTHER_KIT: lambda p: (
            f"device {p['address']} belongs to kit {p['other_gateway_id']}; remove it there first"
        ),
        C.DEVICE_IN_KIT: lambda p: (
            f"device {p['address']} is in kit {p['gateway_id']} already with another profile or passkey;"
            " remove it first"
        ),
        C.KIT_FULL: lambda p: f"kit {p['gateway_id']} has {p['maximum']} devices, the most a kit may have",
        C.NO_KIT_DEVICE: lambda p: f"kit {p['gateway_id']} has no device {p['address']}",
        C.PATIENT_REALM_ACTION: lambda p: f"this enrolled device may not {p['action']}",
        C.DEVICE_LABEL: lambda p: "name the device or the relative (1 to 80 characters)",
        C.CONSENT_MISSING: lambda p: "a relative needs the patient's consent recorded (how and when given)",
        C.CONSENT_TOO_LONG: lambda p: f"the consent note is longer than {p['maximum']} characters",
        C.PIN_FORM: lambda p: "the PIN is 4 to 6 digits",
        C.NO_PATIENT_DEVICE: lambda p: f"patient {p['patient_id']} has no enrolled device {p['device_id']}",
        C.PATIENT_DEVICE_REVOKED: lambda p: f"device {p['device_id']} is already revoked",
        C.ENROLMENT_LINK_INVALID: lambda p: "the enrolment link is unknown, used, expired or revoked",
        C.ENROLMENT_PIN_WRONG: lambda p: f"wrong PIN; {p['attempts_left']} attempts left",
        C.ENROLMENT_PIN_LOCKED: lambda p: "too many wrong PINs: the link is void; staff must make a new one",
        C.UNKNOWN_QUESTIONNAIRE: lambda p: f"no questionnaire {p['questionnaire']!r}",
        C.QUESTIONNAIRE_VERSION: lambda p: (
            f"questionnaire {p['questionnaire']} is at version {p['current']}, the answer is for {p['given']}"
        ),
        C.ANSWER_INVALID: lambda p: (
            f"answer to {p['link_id']!r} does not fit the questionnaire: {p['problem']}"
        ),
        C.SCHEDULE_TIMES: lambda p: "give 1 to 6 times of day as HH:MM",
        C.NO_SCHEDULE: lambda p: f"patient {p['patient_id']} has no schedule for {p['questionnaire']}",
        C.MESSAGE_EMPTY: lambda p: "the message is empty",
        C.MESSAGE_TOO_LONG: lambda p: f"the message is longer than {p['maximum']} characters",
        C.CONTACT_REASON: lambda p: "reason must be feeling_worse, treatment_question, technical or other",
        C.CONTACT_MESSAGE_TOO_LONG: lambda p: f"the line is longer than {p['maximum']} characters",
        C.CALL_WITHIN_RANGE: lambda p: f"call within {p['minimum']} to {p['maximum']} minutes",
        C.TOO_MANY_REQUESTS: lambda p: f"too many {p['what']} in {p['per_minutes']} minutes; wait a while",
        C.NO_MESSAGE: lambda p: f"patient {p['patient_id']} has no message {p['message_id']}",
        C.SELF_CARE_RULE: lambda p: f"no alert rule {p['rule']!r} a self-care instruction can follow",
        C.TEXT_CHARACTERS: lambda p: "the text holds control or direction-override characters",
        C.SELF_CARE_TEXT_EMPTY: lambda p: "the self-care instruction is empty",
        C.SELF_CARE_TEXT_TOO_LONG: lambda p: f"the instruction is longer than {p['maximum']} characters",
        C.NO_SELF_CARE: lambda p: f"patient {p['patient_id']} has no self-care instruction for {p['rule']}",
        C.SCALE_CHOICE: lambda p: (
            f"SpO2 scale must be 1 (standard) or 2 (hypercapnic, target 88–92 %), got {p['scale']}"
        ),
        C.SCALE_REASON_MISSING: lambda p: (
            "a reason is required (the clinical indication, e.g. verified hypercapnia)"
        ),
        C.CARE_LEVEL_CHOICE: lambda p: f"care level must be red, yellow or green, got {p['level']!r}",
        C.CARE_LEVEL_REASON: lambda p: (
            f"a reason for the care level is required ({p['minimum']} to {p['maximum']} characters)"
        ),
        C.OBSERVATION_ZONE: lambda p: "observation time must carry a time zone",
        C.OBSERVATION_IN_FUTURE: lambda p: f"observation time {_at(p['at'])} is in the future",
        C.OBSERVATION_TOO_OLD: lambda p: (
            f"observation time {_at(p['at'])} is more than {p['days']} days ago; check the date"
        ),
        C.OBSERVATION_EMPTY: lambda p: (
            "give at least one of respiration rate, consciousness (ACVPU) or air/oxygen"
        ),
        C.RESPIRATION_NOT_WHOLE: lambda p: (
            f"respiration rate {p['value']:g} /min is not a whole number of breaths (count a full minute)"
        ),
        C.RESPIRATION_IMPOSSIBLE: lambda p: (
            f"respiration rate {p['value']:g} /min is not possible"
            f" (between {p['minimum']:g} and {p['maximum']:g})"
        ),
        C.CONSCIOUSNESS_CHOICE: lambda p: (
            f"consciousness must be one of A, C, V, P, U (ACVPU), got {p['given']!r}"
        ),
        C.OXYGEN_FLOW_WITHOUT_OXYGEN: lambda p: (
            "an oxygen flow is given but the patient is not recorded as on oxygen"
        ),
        C.OXYGEN_FLOW_RANGE: lambda p: (
            f"oxygen flow must be above 0 and at most {p['maximum']:g} l/min, got {p['flow']:g}"
        ),
        C.OBSERVER_MISSING: lambda p: "an observation by staff needs the username of who made it",
        C.PATIENT_REPORT_WITH_STAFF: lambda p: "an observation reported by the patient has no staff username",
        C.OBSERVATION_SOURCE: lambda p: f"source must be 'nurse' (staff) or 'patient', got {p['source']!r}",
    }
)


FALLBACK = "The action could not be carried out. Check the details and try again."


def text(refusal: Refusal) -> str:
    """The English text of `refusal`."""
    return render_text(TEXTS, refusal, FALLBACK)
